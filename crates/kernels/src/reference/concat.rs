//! Concat: join tensors along an axis.

use super::util::{axis_index, invalid};
use crate::KernelError;
use lithe_ir::{Element, Tensor, dispatch_view};
use ndarray::{ArrayViewD, Axis};

/// Concatenate `inputs` (one dtype, one rank, equal sizes except along `axis`) along `axis`
/// (negative counts from the end). Inputs with size 0 along `axis` contribute nothing.
pub fn concat(inputs: &[&Tensor], axis: i64) -> Result<Tensor, KernelError> {
    const OP: &str = "Concat";
    let first = inputs.first().ok_or_else(|| invalid(OP, "needs at least one input"))?;
    let rank = first.shape().len();
    let ax = axis_index(OP, axis, rank)?;
    for t in inputs {
        let (s, f) = (t.shape(), first.shape());
        let compatible = s.len() == rank && (0..rank).all(|i| i == ax || s.get(i) == f.get(i));
        if !compatible {
            return Err(invalid(OP, format!("input shapes {f:?} and {s:?} differ outside axis {ax}")));
        }
    }
    dispatch_view!(&first.data_view(), a => join(a, inputs, ax))
}

fn join<T: Element>(_first: &ArrayViewD<'_, T>, inputs: &[&Tensor], ax: usize) -> Result<Tensor, KernelError> {
    const OP: &str = "Concat";
    let views = inputs
        .iter()
        .map(|t| {
            t.view_in_place::<T>()
                .ok_or_else(|| invalid(OP, format!("inputs must share a dtype, found {} and {}", T::DTYPE, t.dtype())))
        })
        .collect::<Result<Vec<ArrayViewD<'_, T>>, _>>()?;
    let total = inputs.iter().try_fold(0usize, |n, t| n.checked_add(t.len()));
    if total.is_none_or(|n| n > super::MAX_ELEMENTS) {
        return Err(invalid(OP, format!("output exceeds the limit of {} elements", super::MAX_ELEMENTS)));
    }
    ndarray::concatenate(Axis(ax), &views)
        .map(Tensor::from)
        .map_err(|e| invalid(OP, format!("cannot concatenate: {e}")))
}
