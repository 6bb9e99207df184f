//! `Pad` for every dtype: constant, reflect, edge and wrap modes, negative pads (cropping) and
//! an optional subset of axes.
//!
//! Negative pads crop first; the positive pads are then filled relative to the cropped extent.
//! Pads wider than the data repeat the pattern (numpy semantics): reflect mirrors back and forth,
//! wrap cycles.

use super::conv::{contiguous, row_major_strides};
use crate::KernelError;
use lithe_ir::op::{PadMode, normalize_axis};
use lithe_ir::{DType, Element, Tensor, dispatch_view};
use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};

const OP: &str = "Pad";
/// The largest padded tensor (in elements) this kernel will build.
const MAX_ELEMENTS: i64 = super::MAX_ELEMENTS as i64;

/// Pad `x` by `pads` (integers: all begins then all ends, one pair per entry of `axes`, or per
/// axis of `x` when `axes` is absent; negative entries crop). `value` (same dtype as `x`, one
/// element; absent or empty means zero) fills constant mode. `axes` may be negative.
pub fn pad(
    mode: PadMode,
    x: &Tensor,
    pads: &Tensor,
    value: Option<&Tensor>,
    axes: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    let shape = x.shape();
    let rank = shape.len();
    let pads = int_values(pads, "pads")?;
    let axes: Vec<usize> = match axes {
        None => (0..rank).collect(),
        Some(t) => {
            let raw = int_values(t, "axes")?;
            let mut out = Vec::with_capacity(raw.len());
            for a in raw {
                let ax = normalize_axis(a, rank).map_err(|e| invalid(e.to_string()))?;
                if out.contains(&ax) {
                    return Err(invalid(format!("axis {a} is repeated in axes")));
                }
                out.push(ax);
            }
            out
        }
    };
    if pads.len() != 2 * axes.len() {
        return Err(invalid(format!(
            "pads has {} entries but {} axes need {} (begins then ends)",
            pads.len(),
            axes.len(),
            2 * axes.len()
        )));
    }
    let mut begin = vec![0i64; rank];
    let mut end = vec![0i64; rank];
    for (i, &ax) in axes.iter().enumerate() {
        begin[ax] = pads[i];
        end[ax] = pads[i + axes.len()];
    }
    let plans = (0..rank)
        .map(|ax| axis_plan(mode, shape[ax], begin[ax], end[ax]).map_err(|d| invalid(format!("axis {ax}: {d}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let total = plans.iter().try_fold(1i64, |acc, p| acc.checked_mul(p.out).filter(|&v| v <= MAX_ELEMENTS));
    if total.is_none() {
        return Err(invalid(format!("padding shape {shape:?} by {pads:?} gives more than {MAX_ELEMENTS} elements")));
    }
    let maps: Vec<Vec<Option<usize>>> = plans.iter().map(|&p| axis_map(mode, p)).collect();
    let value = match value {
        Some(v) if mode == PadMode::Constant && !v.is_empty() => {
            if v.len() != 1 || v.dtype() != x.dtype() {
                return Err(invalid(format!(
                    "constant_value must be one {} element, got dtype {} shape {:?}",
                    x.dtype(),
                    v.dtype(),
                    v.shape()
                )));
            }
            Some(v)
        }
        _ => None,
    };
    let data = dispatch_view!(&x.data_view(), a => {
        let fill = match value {
            Some(v) => v.view_in_place().and_then(|arr| arr.iter().next().copied()).unwrap_or_default(),
            None => Default::default(),
        };
        Element::wrap(gather(a, &maps, fill))
    });
    Ok(Tensor::from(data))
}

/// How one axis is cropped and padded.
#[derive(Clone, Copy, Debug)]
struct AxisPlan {
    /// Elements cropped at the beginning.
    crop_begin: i64,
    /// Elements kept after cropping.
    kept: i64,
    /// Elements added at the beginning.
    pad_begin: i64,
    /// Output size.
    out: i64,
}

/// Plan one axis of size `n` padded by `begin`/`end`, or say why that is impossible.
fn axis_plan(mode: PadMode, n: usize, begin: i64, end: i64) -> Result<AxisPlan, String> {
    let n = i64::try_from(n).map_err(|_| "axis too large".to_string())?;
    let crop_begin = begin.saturating_neg().max(0);
    let crop_end = end.saturating_neg().max(0);
    let kept = n.saturating_sub(crop_begin).saturating_sub(crop_end);
    if kept < 0 {
        return Err(format!("pads ({begin}, {end}) crop more than the size {n}"));
    }
    let (pad_begin, pad_end) = (begin.max(0), end.max(0));
    if kept == 0 && (pad_begin > 0 || pad_end > 0) && mode != PadMode::Constant {
        return Err(format!("{mode:?} padding needs at least one element, the axis has none after cropping"));
    }
    let out = kept
        .checked_add(pad_begin)
        .and_then(|v| v.checked_add(pad_end))
        .filter(|&v| v <= MAX_ELEMENTS)
        .ok_or_else(|| format!("pads ({begin}, {end}) make the axis too large"))?;
    Ok(AxisPlan { crop_begin, kept, pad_begin, out })
}

/// The source index of each output position along one axis (`None` for the constant fill).
fn axis_map(mode: PadMode, p: AxisPlan) -> Vec<Option<usize>> {
    let kept = p.kept;
    (0..p.out)
        .map(|j| {
            let q = j - p.pad_begin;
            let q = if (0..kept).contains(&q) {
                Some(q)
            } else {
                match mode {
                    PadMode::Constant => None,
                    PadMode::Edge => Some(q.clamp(0, kept - 1)),
                    PadMode::Wrap => Some(q.rem_euclid(kept)),
                    PadMode::Reflect if kept == 1 => Some(0),
                    PadMode::Reflect => {
                        let period = 2 * (kept - 1);
                        let r = q.rem_euclid(period);
                        Some(if r < kept { r } else { period - r })
                    }
                }
            };
            q.map(|q| (q + p.crop_begin) as usize)
        })
        .collect()
}

/// Build the output whose element at index `(j0, j1, ...)` is `x[maps[0][j0], maps[1][j1], ...]`,
/// or `fill` when any map entry is `None`.
fn gather<T: Element>(x: &ArrayViewD<'_, T>, maps: &[Vec<Option<usize>>], fill: T) -> ArrayD<T> {
    let src = contiguous(x);
    let strides = row_major_strides(x.shape());
    let offsets: Vec<Vec<Option<usize>>> =
        maps.iter().zip(&strides).map(|(m, &s)| m.iter().map(|o| o.map(|i| i * s)).collect()).collect();
    let out_shape: Vec<usize> = maps.iter().map(Vec::len).collect();
    ArrayD::from_shape_fn(IxDyn(&out_shape), |idx| {
        let mut off = 0;
        for (ax, &j) in idx.slice().iter().enumerate() {
            match offsets[ax][j] {
                Some(o) => off += o,
                None => return fill,
            }
        }
        src[off]
    })
}

/// The elements of an integer tensor as i64.
fn int_values(t: &Tensor, what: &str) -> Result<Vec<i64>, KernelError> {
    match t.dtype() {
        DType::I64 | DType::I32 | DType::I16 | DType::I8 | DType::U8 => Ok(t.to_i64_vec()),
        d => Err(invalid(format!("{what} must be an integer tensor, got dtype {d}"))),
    }
}

fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: OP, detail }
}
