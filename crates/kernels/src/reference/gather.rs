//! Gather: pick slices along an axis by index.

use super::checked_num_elements;
use super::util::{array, axis_index, index_values, invalid, keep_quant, row_major};
use crate::KernelError;
use lithe_ir::{Element, Tensor, dispatch_view};
use ndarray::{ArrayD, ArrayViewD};

/// Gather along `axis` (negative counts from the end): the output shape is
/// `data.shape[..axis] ++ indices.shape ++ data.shape[axis+1..]`. Indices are i32 or i64;
/// negative ones count from the end; out-of-range ones are an error.
pub fn gather(data: &Tensor, indices: &Tensor, axis: i64) -> Result<Tensor, KernelError> {
    const OP: &str = "Gather";
    let shape = data.shape();
    let ax = axis_index(OP, axis, shape.len())?;
    let dim = shape.get(ax).copied().unwrap_or(0);
    let idx = index_values(OP, "indices", indices)?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i.checked_add(dim as i64) } else { Some(i) };
            j.and_then(|j| usize::try_from(j).ok())
                .filter(|&j| j < dim)
                .ok_or_else(|| invalid(OP, format!("index {i} out of range for axis {ax} of size {dim}")))
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let (head, tail) = shape.split_at(ax);
    let tail = tail.get(1..).unwrap_or(&[]);
    let out_shape: Vec<usize> = head.iter().chain(indices.shape()).chain(tail).copied().collect();
    checked_num_elements(OP, &out_shape)?;
    let outer = checked_num_elements(OP, head)?;
    let inner = checked_num_elements(OP, tail)?;
    let out = dispatch_view!(&data.data_view(), a => Tensor::from(take(a, &idx, outer, dim, inner, &out_shape)?));
    Ok(keep_quant(data, out))
}

fn take<T: Element>(
    a: &ArrayViewD<'_, T>,
    idx: &[usize],
    outer: usize,
    dim: usize,
    inner: usize,
    out_shape: &[usize],
) -> Result<ArrayD<T>, KernelError> {
    const OP: &str = "Gather";
    let src = row_major(a);
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &k in idx {
            let base = (o * dim + k) * inner;
            let block = src.get(base..base + inner).ok_or_else(|| invalid(OP, "index out of range"))?;
            out.extend_from_slice(block);
        }
    }
    array(OP, out_shape, out)
}
