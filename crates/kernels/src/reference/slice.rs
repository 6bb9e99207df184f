//! Slice with ONNX semantics: negative starts/ends count from the end, out-of-range values
//! clamp (so `INT_MAX`/`INT_MIN` mean "to the end"/"to the beginning"), negative steps walk
//! backwards.

use super::util::{axes_set, index_list, invalid, keep_quant, pick_axes};
use crate::KernelError;
use lithe_ir::{Tensor, dispatch_view};

/// The positions a slice `start..end` by `step` takes from an axis of size `dim`, after ONNX
/// clamping: `(first, count)`, element `k` being `first + k * step`. `step` must not be 0.
pub fn axis_range(dim: usize, start: i64, end: i64, step: i64) -> Result<(usize, usize), KernelError> {
    if step == 0 {
        return Err(invalid("Slice", "step must not be 0"));
    }
    if dim == 0 {
        return Ok((0, 0));
    }
    let d = i128::try_from(dim).map_err(|_| invalid("Slice", "axis too large"))?;
    let wrap = |v: i64| if v < 0 { i128::from(v) + d } else { i128::from(v) };
    let (s, e) = (wrap(start), wrap(end));
    let step = i128::from(step);
    let (first, count) = if step > 0 {
        let (s, e) = (s.clamp(0, d), e.clamp(0, d));
        (s, if e > s { (e - s - 1) / step + 1 } else { 0 })
    } else {
        let (s, e) = (s.clamp(0, d - 1), e.clamp(-1, d - 1));
        (s, if s > e { (s - e - 1) / -step + 1 } else { 0 })
    };
    let conv = |v: i128| usize::try_from(v).map_err(|_| invalid("Slice", "slice bounds out of range"));
    Ok((conv(first)?, conv(count)?))
}

/// Slice `data`: for each `axes[i]` (default `0..starts.len()`, negative counts from the end),
/// take `starts[i]..ends[i]` by `steps[i]` (default 1). Index tensors are i64 or i32.
pub fn slice(
    data: &Tensor,
    starts: &Tensor,
    ends: &Tensor,
    axes: Option<&Tensor>,
    steps: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    const OP: &str = "Slice";
    let starts = index_list(OP, "starts", starts)?;
    let ends = index_list(OP, "ends", ends)?;
    let n = starts.len();
    let axes = match axes {
        Some(t) => index_list(OP, "axes", t)?,
        None => (0..n as i64).collect(),
    };
    let steps = match steps {
        Some(t) => index_list(OP, "steps", t)?,
        None => vec![1; n],
    };
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Err(invalid(
            OP,
            format!("starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} differ in length"),
        ));
    }
    let shape = data.shape();
    super::checked_num_elements(OP, shape)?;
    let axes = axes_set(OP, &axes, shape.len())?;
    let mut picks: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d).collect()).collect();
    for (i, &ax) in axes.iter().enumerate() {
        let (Some(&s), Some(&e), Some(&st), Some(&dim)) = (starts.get(i), ends.get(i), steps.get(i), shape.get(ax))
        else {
            return Err(invalid(OP, "slice parameters out of range"));
        };
        let (first, count) = axis_range(dim, s, e, st)?;
        let positions = (0..count)
            .map(|k| {
                let p = first as i128 + k as i128 * i128::from(st);
                usize::try_from(p).map_err(|_| invalid(OP, "slice position out of range"))
            })
            .collect::<Result<Vec<usize>, _>>()?;
        if let Some(slot) = picks.get_mut(ax) {
            *slot = positions;
        }
    }
    let out = dispatch_view!(&data.data_view(), a => Tensor::from(pick_axes(OP, a, &picks)?));
    Ok(keep_quant(data, out))
}
