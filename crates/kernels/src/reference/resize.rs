//! `Resize` (and `Upsample`): nearest, N-D multilinear and cubic interpolation with every ONNX
//! coordinate transformation mode, following the ONNX operator specification.
//!
//! Interpolation is separable: along each axis, every output index maps to a source coordinate
//! and from there to a few (input index, weight) taps; an output element is the sum over all
//! combinations of one tap per axis of the product of the weights times the input element.
//! Indices past an edge are clamped to it. Coordinates and sums are computed in f64.

use super::conv::{contiguous, row_major_strides};
use crate::KernelError;
use lithe_ir::op::{CoordTransform, NearestMode, ResizeAttrs, ResizeMode};
use lithe_ir::{Element, Tensor, dispatch_view};
use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};

const OP: &str = "Resize";
use super::MAX_ELEMENTS;

/// The input taps of one output index along one axis: `(input index, weight)` pairs, or `None`
/// when the source coordinate is outside the input in `tf_crop_and_resize` mode (the output is
/// then `extrapolation_value`).
type Taps = Option<Vec<(usize, f64)>>;

/// Resize `x` to the size given by `sizes` (integers, one per axis) or `floor(in * scale)` from
/// `scales` (floats, one per axis); exactly one of them must be present (an empty tensor counts as
/// absent). `roi` (`[starts..., ends...]`, normalized) is read only in `tf_crop_and_resize` mode.
/// Nearest mode works on every dtype; linear and cubic on f32.
pub fn resize(
    a: &ResizeAttrs,
    x: &Tensor,
    roi: Option<&Tensor>,
    scales: Option<&Tensor>,
    sizes: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    let in_shape = x.shape();
    let rank = in_shape.len();
    if rank == 0 {
        return Err(invalid("input must have rank >= 1".to_string()));
    }
    let (out_shape, scale) =
        output_geometry(in_shape, scales.filter(|t| !t.is_empty()), sizes.filter(|t| !t.is_empty()))?;
    let roi = if a.coord == CoordTransform::TfCropAndResize {
        let t = roi
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("tf_crop_and_resize needs the roi input".to_string()))?;
        if !t.dtype().is_float() || t.len() != 2 * rank {
            return Err(invalid(format!(
                "roi must be {} floats (starts then ends), got dtype {} shape {:?}",
                2 * rank,
                t.dtype(),
                t.shape()
            )));
        }
        let v: Vec<f64> = t.to_f32_vec().into_iter().map(f64::from).collect();
        (0..rank).map(|i| (v[i], v[i + rank])).collect()
    } else {
        vec![(0.0, 1.0); rank]
    };
    let taps: Vec<Vec<Taps>> = (0..rank)
        .map(|ax| {
            let axis = Axis { input: in_shape[ax], output: out_shape[ax], scale: scale[ax], roi: roi[ax] };
            (0..axis.output).map(|o| axis_taps(a, &axis, o)).collect()
        })
        .collect();
    match a.mode {
        ResizeMode::Nearest => {
            let data = dispatch_view!(&x.data_view(), arr => Element::wrap(sample_nearest(arr, &taps, &out_shape, a.extrapolation_value)));
            Ok(Tensor::from(data))
        }
        ResizeMode::Linear | ResizeMode::Cubic => {
            let xa = x.view_in_place::<f32>().ok_or_else(|| KernelError::Unsupported {
                op: OP,
                detail: format!("{:?} mode on dtype {} (only f32)", a.mode, x.dtype()),
            })?;
            Ok(Tensor::from(interpolate(&xa, &taps, &out_shape, a.extrapolation_value)))
        }
    }
}

/// The output shape and the per-axis scale (`output / input` when `sizes` is given).
fn output_geometry(
    in_shape: &[usize],
    scales: Option<&Tensor>,
    sizes: Option<&Tensor>,
) -> Result<(Vec<usize>, Vec<f64>), KernelError> {
    let rank = in_shape.len();
    let (out, scale): (Vec<usize>, Vec<f64>) = match (scales, sizes) {
        (Some(_), Some(_)) => return Err(invalid("both scales and sizes are given".to_string())),
        (None, None) => return Err(invalid("one of scales and sizes is needed".to_string())),
        (Some(s), None) => {
            if !s.dtype().is_float() || s.len() != rank {
                return Err(invalid(format!(
                    "scales must be {rank} floats (one per axis), got dtype {} shape {:?}",
                    s.dtype(),
                    s.shape()
                )));
            }
            let s: Vec<f64> = s.to_f32_vec().into_iter().map(f64::from).collect();
            let mut out = Vec::with_capacity(rank);
            for (&n, &sc) in in_shape.iter().zip(&s) {
                if !(sc.is_finite() && sc > 0.0) {
                    return Err(invalid(format!("scales {s:?} must be positive and finite")));
                }
                let o = (n as f64 * sc).floor();
                if o > MAX_ELEMENTS as f64 {
                    return Err(invalid(format!("scale {sc} makes axis of size {n} too large")));
                }
                out.push(o as usize);
            }
            (out, s)
        }
        (None, Some(z)) => {
            if !z.dtype().is_integer() || z.len() != rank {
                return Err(invalid(format!(
                    "sizes must be {rank} integers (one per axis), got dtype {} shape {:?}",
                    z.dtype(),
                    z.shape()
                )));
            }
            let mut out = Vec::with_capacity(rank);
            let mut scale = Vec::with_capacity(rank);
            for (&n, &o) in in_shape.iter().zip(&z.to_i64_vec()) {
                let o = usize::try_from(o)
                    .ok()
                    .filter(|&o| o <= MAX_ELEMENTS)
                    .ok_or_else(|| invalid(format!("size {o} out of range")))?;
                if n == 0 && o > 0 {
                    return Err(invalid(format!("cannot resize an empty axis to size {o}")));
                }
                out.push(o);
                scale.push(if n == 0 { 1.0 } else { o as f64 / n as f64 });
            }
            (out, scale)
        }
    };
    super::checked_num_elements(OP, &out)?;
    Ok((out, scale))
}

/// One axis of the resize.
struct Axis {
    input: usize,
    output: usize,
    scale: f64,
    /// Normalized (start, end) of the region of interest (tf_crop_and_resize only).
    roi: (f64, f64),
}

/// The input coordinate that output index `o` maps to, and whether it is outside the input
/// (only tf_crop_and_resize reports that).
fn source_coord(mode: CoordTransform, ax: &Axis, o: usize) -> (f64, bool) {
    let (o, s, n_in, n_out) = (o as f64, ax.scale, ax.input as f64, ax.output as f64);
    let half_pixel = (o + 0.5) / s - 0.5;
    match mode {
        CoordTransform::HalfPixel => (half_pixel, false),
        CoordTransform::HalfPixelSymmetric => {
            let adjustment = n_out / (s * n_in);
            let offset = n_in / 2.0 * (1.0 - adjustment);
            (offset + half_pixel, false)
        }
        CoordTransform::PytorchHalfPixel => (if ax.output > 1 { half_pixel } else { 0.0 }, false),
        CoordTransform::AlignCorners => (if ax.output > 1 { o * (n_in - 1.0) / (n_out - 1.0) } else { 0.0 }, false),
        CoordTransform::Asymmetric => (o / s, false),
        CoordTransform::TfCropAndResize => {
            let (start, end) = ax.roi;
            let c = if ax.output > 1 {
                start * (n_in - 1.0) + o * (end - start) * (n_in - 1.0) / (n_out - 1.0)
            } else {
                0.5 * (start + end) * (n_in - 1.0)
            };
            (c, c < 0.0 || c > n_in - 1.0)
        }
    }
}

/// The taps of output index `o` along one axis.
fn axis_taps(a: &ResizeAttrs, ax: &Axis, o: usize) -> Taps {
    let (c, outside) = source_coord(a.coord, ax, o);
    if outside {
        return None;
    }
    let last = ax.input as i64 - 1;
    let clamp = |i: i64| i.clamp(0, last) as usize;
    let floor = c.floor();
    let frac = c - floor;
    let base = floor as i64;
    let taps = match a.mode {
        ResizeMode::Nearest => {
            let up = match a.nearest {
                NearestMode::RoundPreferFloor => frac > 0.5,
                NearestMode::RoundPreferCeil => frac >= 0.5,
                NearestMode::Floor => false,
                NearestMode::Ceil => frac > 0.0,
            };
            vec![(clamp(base + i64::from(up)), 1.0)]
        }
        ResizeMode::Linear => {
            let w = [(base, 1.0 - frac), (base + 1, frac)];
            finish(&w, a.exclude_outside, ax.input, clamp)
        }
        ResizeMode::Cubic => {
            let w = cubic_weights(frac, f64::from(a.cubic_coeff_a));
            let w = [(base - 1, w[0]), (base, w[1]), (base + 1, w[2]), (base + 2, w[3])];
            finish(&w, a.exclude_outside, ax.input, clamp)
        }
    };
    Some(taps)
}

/// Turn (unclamped index, weight) pairs into taps: with `exclude_outside`, indices outside the
/// input get weight 0 and the rest are renormalized to sum to 1; indices are then clamped and
/// zero weights dropped.
fn finish(w: &[(i64, f64)], exclude_outside: bool, input: usize, clamp: impl Fn(i64) -> usize) -> Vec<(usize, f64)> {
    let inside = |i: i64| i >= 0 && (i as u64) < input as u64;
    let mut w: Vec<(i64, f64)> = w.to_vec();
    if exclude_outside {
        for (i, wt) in &mut w {
            if !inside(*i) {
                *wt = 0.0;
            }
        }
        let sum: f64 = w.iter().map(|p| p.1).sum();
        if sum != 0.0 {
            for p in &mut w {
                p.1 /= sum;
            }
        }
    }
    w.into_iter().filter(|p| p.1 != 0.0).map(|(i, wt)| (clamp(i), wt)).collect()
}

/// Keys cubic convolution weights of the four taps `floor - 1 ..= floor + 2` for fractional
/// position `t` in `[0, 1)` with coefficient `a`.
fn cubic_weights(t: f64, a: f64) -> [f64; 4] {
    // |d| <= 1: (a + 2)|d|^3 - (a + 3)|d|^2 + 1; 1 < |d| < 2: a|d|^3 - 5a|d|^2 + 8a|d| - 4a.
    let near = |d: f64| ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0;
    let far = |d: f64| ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// Nearest-neighbour sampling (every tap list holds one index with weight 1).
fn sample_nearest<T: Element>(
    x: &ArrayViewD<'_, T>,
    taps: &[Vec<Taps>],
    out_shape: &[usize],
    extrapolation: f32,
) -> ArrayD<T> {
    let src = contiguous(x);
    let strides = row_major_strides(x.shape());
    let offsets: Vec<Vec<Option<usize>>> = taps
        .iter()
        .zip(&strides)
        .map(|(t, &s)| t.iter().map(|tp| tp.as_ref().and_then(|v| v.first()).map(|&(i, _)| i * s)).collect())
        .collect();
    let fill = T::from_f64(f64::from(extrapolation));
    ArrayD::from_shape_fn(IxDyn(out_shape), |idx| {
        let mut off = 0;
        for (ax, &o) in idx.slice().iter().enumerate() {
            match offsets[ax][o] {
                Some(v) => off += v,
                None => return fill,
            }
        }
        src[off]
    })
}

/// Weighted sampling for linear and cubic modes.
fn interpolate(x: &ArrayViewD<'_, f32>, taps: &[Vec<Taps>], out_shape: &[usize], extrapolation: f32) -> ArrayD<f32> {
    let src = contiguous(x);
    let strides = row_major_strides(x.shape());
    let scaled: Vec<Vec<Taps>> = taps
        .iter()
        .zip(&strides)
        .map(|(t, &s)| t.iter().map(|tp| tp.as_ref().map(|v| v.iter().map(|&(i, w)| (i * s, w)).collect())).collect())
        .collect();
    let mut sel: Vec<&[(usize, f64)]> = Vec::with_capacity(taps.len());
    ArrayD::from_shape_fn(IxDyn(out_shape), |idx| {
        sel.clear();
        for (ax, &o) in idx.slice().iter().enumerate() {
            match &scaled[ax][o] {
                Some(t) => sel.push(t),
                None => return extrapolation,
            }
        }
        weighted_sum(&src, 0, 1.0, &sel) as f32
    })
}

/// Sum over one tap per axis of the product of the weights times `src` at the summed offsets.
fn weighted_sum(src: &[f32], base: usize, weight: f64, sel: &[&[(usize, f64)]]) -> f64 {
    match sel.split_first() {
        None => weight * f64::from(src[base]),
        Some((first, rest)) => first.iter().map(|&(off, w)| weighted_sum(src, base + off, weight * w, rest)).sum(),
    }
}

fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: OP, detail }
}
