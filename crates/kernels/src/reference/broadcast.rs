//! Numpy-style (multidirectional) broadcasting.
//!
//! Shapes are aligned at their last axis; missing leading axes count as 1. Along each axis the
//! sizes must be equal or one of them 1 (which stretches, also to 0).

use super::checked_num_elements;
use super::util::{array, invalid};
use crate::KernelError;
use lithe_ir::Element;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

/// The broadcast shape of `shapes`, or an error naming `op` when they are incompatible or the
/// result exceeds [`MAX_ELEMENTS`](super::MAX_ELEMENTS).
pub fn broadcast_shapes(op: &'static str, shapes: &[&[usize]]) -> Result<Vec<usize>, KernelError> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let offset = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[offset + i];
            if *o == d || d == 1 {
                continue;
            }
            if *o == 1 {
                *o = d;
            } else {
                return Err(invalid(op, format!("shapes {shapes:?} cannot be broadcast together")));
            }
        }
    }
    checked_num_elements(op, &out)?;
    Ok(out)
}

/// A view of `a` broadcast to `shape` (which must be a broadcast of `a`'s shape).
pub fn broadcast_to<'a, T>(
    op: &'static str,
    a: &'a ArrayViewD<'_, T>,
    shape: &[usize],
) -> Result<ArrayViewD<'a, T>, KernelError> {
    a.broadcast(IxDyn(shape))
        .ok_or_else(|| invalid(op, format!("shape {:?} cannot be broadcast to {shape:?}", a.shape())))
}

/// `f(a, b)` elementwise over `a` and `b` broadcast together.
pub fn zip2<A: Element, B: Element, R: Element>(
    op: &'static str,
    a: &ArrayViewD<'_, A>,
    b: &ArrayViewD<'_, B>,
    mut f: impl FnMut(A, B) -> Result<R, KernelError>,
) -> Result<ArrayD<R>, KernelError> {
    let shape = broadcast_shapes(op, &[a.shape(), b.shape()])?;
    let (va, vb) = (broadcast_to(op, a, &shape)?, broadcast_to(op, b, &shape)?);
    let data = va.iter().zip(vb.iter()).map(|(&x, &y)| f(x, y)).collect::<Result<Vec<R>, _>>()?;
    array(op, &shape, data)
}

/// `f(a, b, c)` elementwise over `a`, `b` and `c` broadcast together.
pub fn zip3<A: Element, B: Element, C: Element, R: Element>(
    op: &'static str,
    a: &ArrayViewD<'_, A>,
    b: &ArrayViewD<'_, B>,
    c: &ArrayViewD<'_, C>,
    mut f: impl FnMut(A, B, C) -> R,
) -> Result<ArrayD<R>, KernelError> {
    let shape = broadcast_shapes(op, &[a.shape(), b.shape(), c.shape()])?;
    let (va, vb, vc) = (broadcast_to(op, a, &shape)?, broadcast_to(op, b, &shape)?, broadcast_to(op, c, &shape)?);
    let data: Vec<R> = va.iter().zip(vb.iter()).zip(vc.iter()).map(|((&x, &y), &z)| f(x, y, z)).collect();
    array(op, &shape, data)
}
