//! Small helpers shared by the reference kernels: errors, index inputs, array building.

use crate::KernelError;
use lithe_ir::{Element, Tensor, TensorView};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// A [`KernelError::Invalid`] for `op`.
pub(crate) fn invalid(op: &'static str, detail: impl Into<String>) -> KernelError {
    KernelError::Invalid { op, detail: detail.into() }
}

/// A [`KernelError::Unsupported`] for `op`.
pub(crate) fn unsupported(op: &'static str, detail: impl Into<String>) -> KernelError {
    KernelError::Unsupported { op, detail: detail.into() }
}

/// The values of an integer index tensor (`i32` or `i64`) in row-major order.
pub(crate) fn index_values(op: &'static str, what: &str, t: &Tensor) -> Result<Vec<i64>, KernelError> {
    match t.data_view() {
        TensorView::I64(a) => Ok(a.iter().copied().collect()),
        TensorView::I32(a) => Ok(a.iter().map(|&v| i64::from(v)).collect()),
        _ => Err(invalid(op, format!("{what} must be i64 or i32, found {}", t.dtype()))),
    }
}

/// The values of a 1-D (or scalar) integer index tensor.
pub(crate) fn index_list(op: &'static str, what: &str, t: &Tensor) -> Result<Vec<i64>, KernelError> {
    if t.shape().len() > 1 {
        return Err(invalid(op, format!("{what} must be 1-D, found shape {:?}", t.shape())));
    }
    index_values(op, what, t)
}

/// Resolve a possibly negative `axis` against `rank` (valid range `-rank..rank`).
pub(crate) fn axis_index(op: &'static str, axis: i64, rank: usize) -> Result<usize, KernelError> {
    let r = i64::try_from(rank).map_err(|_| invalid(op, "rank too large"))?;
    let a = if axis < 0 { axis.checked_add(r) } else { Some(axis) };
    match a {
        Some(a) if (0..r).contains(&a) => Ok(a as usize),
        _ => Err(invalid(op, format!("axis {axis} out of range for rank {rank}"))),
    }
}

/// Resolve a list of possibly negative axes against `rank`, rejecting duplicates.
pub(crate) fn axes_set(op: &'static str, axes: &[i64], rank: usize) -> Result<Vec<usize>, KernelError> {
    let mut out = Vec::with_capacity(axes.len());
    for &ax in axes {
        let a = axis_index(op, ax, rank)?;
        if out.contains(&a) {
            return Err(invalid(op, format!("axis {ax} repeated in {axes:?}")));
        }
        out.push(a);
    }
    Ok(out)
}

/// Build an array from row-major elements, checking the element count.
pub(crate) fn array<T: Element>(op: &'static str, shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>, KernelError> {
    super::checked_num_elements(op, shape)?;
    let n = data.len();
    ArrayD::from_shape_vec(IxDyn(shape), data)
        .map_err(|e| invalid(op, format!("{n} elements do not fill shape {shape:?}: {e}")))
}

/// The elements of `a` in row-major order, whatever its memory layout.
pub(crate) fn row_major<T: Element>(a: &ArrayViewD<'_, T>) -> Vec<T> {
    a.iter().copied().collect()
}

/// Copy per-tensor quantization parameters from `src` to `out` (data-movement ops keep them;
/// per-axis parameters are dropped because the axis may move).
pub(crate) fn keep_quant(src: &Tensor, mut out: Tensor) -> Tensor {
    if let Some(q) = &src.quant
        && q.axis.is_none()
    {
        out.quant = Some(q.clone());
    }
    out
}

/// Row-major strides of `shape` (in elements).
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// The sub-array of `a` that takes, along each axis `k`, the positions `picks[k]` (in order,
/// repeats allowed): `out[i0, i1, ...] = a[picks[0][i0], picks[1][i1], ...]`.
pub(crate) fn pick_axes<T: Element>(
    op: &'static str,
    a: &ArrayViewD<'_, T>,
    picks: &[Vec<usize>],
) -> Result<ArrayD<T>, KernelError> {
    let shape: Vec<usize> = picks.iter().map(Vec::len).collect();
    if picks.len() != a.ndim() {
        return Err(invalid(op, format!("{} index lists for rank {}", picks.len(), a.ndim())));
    }
    for (k, (list, &dim)) in picks.iter().zip(a.shape()).enumerate() {
        if let Some(&bad) = list.iter().find(|&&i| i >= dim) {
            return Err(invalid(op, format!("index {bad} out of range for axis {k} of size {dim}")));
        }
    }
    let n = super::checked_num_elements(op, &shape)?;
    let src = row_major(a);
    let st = strides(a.shape());
    let mut out = Vec::with_capacity(n);
    let mut pos = vec![0usize; shape.len()];
    for _ in 0..n {
        let mut offset = 0usize;
        for ((p, list), s) in pos.iter().zip(picks).zip(&st) {
            let i = list.get(*p).copied().unwrap_or(usize::MAX);
            offset = offset.saturating_add(i.saturating_mul(*s));
        }
        let v = src.get(offset).copied().ok_or_else(|| invalid(op, "index out of range"))?;
        out.push(v);
        // Advance the row-major odometer.
        for (p, &len) in pos.iter_mut().zip(&shape).rev() {
            *p += 1;
            if *p < len {
                break;
            }
            *p = 0;
        }
    }
    array(op, &shape, out)
}
