//! Ops that change only the shape: Reshape, Flatten, Squeeze, Unsqueeze.
//!
//! The elements keep their row-major order; per-tensor quantization parameters are kept.

use super::checked_num_elements;
use super::util::{array, axes_set, index_list, invalid, keep_quant, row_major};
use crate::KernelError;
use lithe_ir::{Tensor, dispatch_view};

/// `t`'s elements in row-major order with a new `shape` of the same element count.
pub fn with_shape(op: &'static str, t: &Tensor, shape: &[usize]) -> Result<Tensor, KernelError> {
    let n = checked_num_elements(op, shape)?;
    if n != t.len() {
        return Err(invalid(
            op,
            format!("cannot reshape {:?} ({} elements) to {shape:?} ({n} elements)", t.shape(), t.len()),
        ));
    }
    let out = dispatch_view!(&t.data_view(), a => Tensor::from(array(op, shape, row_major(a))?));
    Ok(keep_quant(t, out))
}

/// Reshape `data` to the i64 `shape` tensor: `-1` (at most once) infers a size, `0` copies the
/// input size at that position unless `allowzero` (then it means an empty axis).
pub fn reshape(data: &Tensor, shape: &Tensor, allowzero: bool) -> Result<Tensor, KernelError> {
    const OP: &str = "Reshape";
    let spec = index_list(OP, "shape", shape)?;
    let mut dims = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            -1 => {
                if infer.replace(i).is_some() {
                    return Err(invalid(OP, format!("shape {spec:?} has more than one -1")));
                }
                dims.push(1);
            }
            0 if !allowzero => {
                let d = data.shape().get(i).copied().ok_or_else(|| {
                    invalid(
                        OP,
                        format!("shape {spec:?} copies axis {i} (0) but the input has rank {}", data.shape().len()),
                    )
                })?;
                dims.push(d);
            }
            s if s >= 0 => {
                dims.push(usize::try_from(s).map_err(|_| invalid(OP, format!("shape value {s} too large")))?)
            }
            s => return Err(invalid(OP, format!("shape {spec:?} has invalid value {s}"))),
        }
    }
    if let Some(i) = infer {
        if allowzero && spec.contains(&0) {
            return Err(invalid(OP, format!("shape {spec:?} mixes -1 with 0 while allowzero is set")));
        }
        let known = checked_num_elements(OP, &dims)?;
        if known == 0 || !data.len().is_multiple_of(known) {
            return Err(invalid(
                OP,
                format!("cannot infer -1 in {spec:?} for input {:?} ({} elements)", data.shape(), data.len()),
            ));
        }
        if let Some(d) = dims.get_mut(i) {
            *d = data.len() / known;
        }
    }
    with_shape(OP, data, &dims)
}

/// Flatten to 2-D: axes before `axis` (in `-rank..=rank`) form the rows, the rest the columns.
pub fn flatten(x: &Tensor, axis: i64) -> Result<Tensor, KernelError> {
    const OP: &str = "Flatten";
    let rank = x.shape().len();
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&a) {
        return Err(invalid(OP, format!("axis {axis} out of range for rank {rank}")));
    }
    let (head, tail) = x.shape().split_at(a as usize);
    let rows = checked_num_elements(OP, head)?;
    let cols = checked_num_elements(OP, tail)?;
    with_shape(OP, x, &[rows, cols])
}

/// Remove the size-1 `axes` (i64, negative counts from the end), or every size-1 axis when
/// `axes` is absent.
pub fn squeeze(data: &Tensor, axes: Option<&Tensor>) -> Result<Tensor, KernelError> {
    const OP: &str = "Squeeze";
    let shape = data.shape();
    let remove = match axes {
        Some(t) => {
            let axes = axes_set(OP, &index_list(OP, "axes", t)?, shape.len())?;
            if let Some(&a) = axes.iter().find(|&&a| shape.get(a) != Some(&1)) {
                return Err(invalid(OP, format!("axis {a} of shape {shape:?} is not 1")));
            }
            axes
        }
        None => (0..shape.len()).filter(|&a| shape.get(a) == Some(&1)).collect(),
    };
    let dims: Vec<usize> = shape.iter().enumerate().filter(|(i, _)| !remove.contains(i)).map(|(_, &d)| d).collect();
    with_shape(OP, data, &dims)
}

/// Insert size-1 axes at `axes` (i64 positions in the output, negative counts from the output's
/// end, any order, no repeats).
pub fn unsqueeze(data: &Tensor, axes: &Tensor) -> Result<Tensor, KernelError> {
    const OP: &str = "Unsqueeze";
    let spec = index_list(OP, "axes", axes)?;
    let out_rank = data.shape().len() + spec.len();
    let insert = axes_set(OP, &spec, out_rank)?;
    let mut rest = data.shape().iter();
    let dims: Vec<usize> =
        (0..out_rank).map(|i| if insert.contains(&i) { 1 } else { rest.next().copied().unwrap_or(1) }).collect();
    with_shape(OP, data, &dims)
}
