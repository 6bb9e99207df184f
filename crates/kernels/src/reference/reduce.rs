//! Reductions: ReduceMean, ReduceSum, ReduceMax and ArgMax.

use super::dispatch::numeric;
use super::num::Num;
use super::util::{array, axes_set, axis_index, index_list, invalid, row_major, strides};
use crate::KernelError;
use lithe_ir::op::{ArgAttrs, ReduceAttrs};
use lithe_ir::{Element, Tensor, TensorView};
use ndarray::{ArrayD, ArrayViewD};

/// Which reduction to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Arithmetic mean (floats sum in f64; integers truncate; empty float sets give NaN).
    Mean,
    /// Sum (floats in f64; integers wrap in their own width; empty sets give 0).
    Sum,
    /// Maximum (NaN propagates; empty sets give -inf or the type's minimum).
    Max,
}

impl Reduction {
    fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "ReduceMean",
            Reduction::Sum => "ReduceSum",
            Reduction::Max => "ReduceMax",
        }
    }
}

/// `f` applied to the elements of `a` grouped by their position outside `axes`: one output
/// element per group, in row-major order; each group lists its elements in row-major order.
/// The output keeps the reduced axes with size 1 when `keepdims`, else drops them.
fn grouped<T: Element, R: Element>(
    op: &'static str,
    a: &ArrayViewD<'_, T>,
    axes: &[usize],
    keepdims: bool,
    mut f: impl FnMut(&[T]) -> Result<R, KernelError>,
) -> Result<ArrayD<R>, KernelError> {
    let shape = a.shape();
    let kept: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let kept_strides = strides(&kept);
    let groups_len = super::checked_num_elements(op, &kept)?;
    let mut groups: Vec<Vec<T>> = vec![Vec::new(); groups_len];
    let mut pos = vec![0usize; shape.len()];
    for v in row_major(a) {
        let mut g = 0usize;
        for (k, (&p, &s)) in pos.iter().zip(&kept_strides).enumerate() {
            if !axes.contains(&k) {
                g += p * s;
            }
        }
        if let Some(group) = groups.get_mut(g) {
            group.push(v);
        }
        for (p, &len) in pos.iter_mut().zip(shape).rev() {
            *p += 1;
            if *p < len {
                break;
            }
            *p = 0;
        }
    }
    let out = groups.iter().map(|g| f(g)).collect::<Result<Vec<R>, _>>()?;
    let out_shape: Vec<usize> = if keepdims {
        kept
    } else {
        shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
    };
    array(op, &out_shape, out)
}

/// Reduce `data` over `axes` (1-D i64, negative counts from the end). Absent or empty `axes`
/// reduce every axis, or copy the input when `noop_with_empty_axes`.
pub fn reduce(
    kind: Reduction,
    attrs: &ReduceAttrs,
    data: &Tensor,
    axes: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    let op = kind.name();
    let rank = data.shape().len();
    let spec = match axes {
        Some(t) => index_list(op, "axes", t)?,
        None => Vec::new(),
    };
    let axes = if spec.is_empty() {
        if attrs.noop_with_empty_axes {
            return Ok(data.clone());
        }
        (0..rank).collect()
    } else {
        axes_set(op, &spec, rank)?
    };
    let keep = attrs.keepdims;
    if let (Reduction::Max, TensorView::Bool(a)) = (kind, &data.data_view()) {
        return grouped(op, a, &axes, keep, |g| Ok(g.iter().any(|&b| b))).map(Tensor::from);
    }
    fn go<T: Num>(
        op: &'static str,
        kind: Reduction,
        a: &ArrayViewD<'_, T>,
        axes: &[usize],
        keep: bool,
    ) -> Result<Tensor, KernelError> {
        grouped(op, a, axes, keep, |g| match kind {
            Reduction::Sum => Ok(T::sum(g)),
            Reduction::Mean => T::mean(g).ok_or_else(|| invalid(op, "mean of an empty set of integers")),
            Reduction::Max => Ok(g.iter().fold(T::lowest(), |m, &v| {
                if m.is_nan() || v.is_nan() {
                    if m.is_nan() { m } else { v }
                } else if v > m {
                    v
                } else {
                    m
                }
            })),
        })
        .map(Tensor::from)
    }
    numeric!(data, op, a => go(op, kind, a, &axes, keep))
}

/// Index (i64) of the largest element along `attrs.axis`: the first one on ties, or the last
/// with `select_last_index`. NaN counts as larger than every number. The axis must be non-empty.
pub fn arg_max(x: &Tensor, attrs: &ArgAttrs) -> Result<Tensor, KernelError> {
    const OP: &str = "ArgMax";
    let ax = axis_index(OP, attrs.axis, x.shape().len())?;
    if x.shape().get(ax) == Some(&0) {
        return Err(invalid(OP, format!("axis {ax} of shape {:?} is empty", x.shape())));
    }
    fn go<T: Num>(a: &ArrayViewD<'_, T>, ax: usize, attrs: &ArgAttrs) -> Result<Tensor, KernelError> {
        grouped(OP, a, &[ax], attrs.keepdims, |g| {
            let mut best: Option<(usize, T)> = None;
            for (i, &v) in g.iter().enumerate() {
                let better = match best {
                    None => true,
                    Some((_, b)) if b.is_nan() => attrs.select_last_index && v.is_nan(),
                    Some((_, b)) => v.is_nan() || v > b || (attrs.select_last_index && v == b),
                };
                if better {
                    best = Some((i, v));
                }
            }
            Ok(best.map_or(0, |(i, _)| i as i64))
        })
        .map(Tensor::from)
    }
    numeric!(x, OP, a => go(a, ax, attrs))
}
