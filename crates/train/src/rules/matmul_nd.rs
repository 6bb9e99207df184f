//! MatMul in its general numpy form (the forms `linear.rs` does not take: a right operand of
//! rank other than 2, or a 1-D left one): operands of rank 1 are promoted (a 1 prepended to
//! `A`, appended to `B`), batch axes broadcast. Per batch item `dA = dY·Bᵀ`, `dB = Aᵀ·dY`,
//! then summed back over the axes each operand was broadcast along.

use super::{BackwardArgs, InputGrads, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use ndarray::{ArrayD, ArrayView3, Axis, IxDyn, s};

/// `v` reshaped to `shape` (same number of elements).
fn reshaped(node: &str, v: ArrayD<f32>, shape: &[usize]) -> Result<ArrayD<f32>, TrainError> {
    v.as_standard_layout().into_owned().into_shape_with_order(IxDyn(shape)).map_err(|e| invalid(node, e.to_string()))
}

/// `v` (of rank 3) as a 3-D view.
fn view3<'v>(node: &str, v: &'v ArrayD<f32>) -> Result<ArrayView3<'v, f32>, TrainError> {
    v.view().into_dimensionality().map_err(|e| invalid(node, e.to_string()))
}

/// Numpy broadcasting of two batch shapes.
fn broadcast_batch(node: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>, TrainError> {
    let n = a.len().max(b.len());
    let pad = |v: &[usize]| -> Vec<usize> { std::iter::repeat_n(1, n - v.len()).chain(v.iter().copied()).collect() };
    let (a, b) = (pad(a), pad(b));
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Ok(x),
            (1, _) => Ok(y),
            (_, 1) => Ok(x),
            _ => Err(invalid(node, format!("batch shapes {a:?} and {b:?} do not broadcast"))),
        })
        .collect()
}

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let (x, w) = (a.x(0)?, a.x(1)?);
    if x.ndim() == 0 || w.ndim() == 0 {
        return Err(invalid(a.node, "MatMul operands must have rank >= 1"));
    }
    // Promote rank-1 operands to matrices.
    let mut xs = x.shape().to_vec();
    if xs.len() == 1 {
        xs.insert(0, 1);
    }
    let mut ws = w.shape().to_vec();
    if ws.len() == 1 {
        ws.push(1);
    }
    let (m, k, n) = (xs[xs.len() - 2], xs[xs.len() - 1], ws[ws.len() - 1]);
    if ws[ws.len() - 2] != k {
        return Err(invalid(a.node, format!("A {:?} and B {:?} do not chain", x.shape(), w.shape())));
    }
    let batch = broadcast_batch(a.node, &xs[..xs.len() - 2], &ws[..ws.len() - 2])?;
    let nb: usize = batch.iter().product();
    let full = |rows: usize, cols: usize| -> Vec<usize> { batch.iter().copied().chain([rows, cols]).collect() };
    let bcast = |v: ArrayD<f32>, shape: &[usize], to: Vec<usize>| -> Result<ArrayD<f32>, TrainError> {
        let v = reshaped(a.node, v, shape)?;
        let b = v
            .broadcast(IxDyn(&to))
            .ok_or_else(|| invalid(a.node, format!("{shape:?} does not broadcast to {to:?}")))?;
        reshaped(a.node, b.to_owned(), &[nb, to[to.len() - 2], to[to.len() - 1]])
    };
    let x3 = bcast(x.to_owned(), &xs, full(m, k))?;
    let w3 = bcast(w.to_owned(), &ws, full(k, n))?;
    let g3 = reshaped(a.node, a.gy(0)?, &[nb, m, n])?;
    let (xv, wv, gv) = (view3(a.node, &x3)?, view3(a.node, &w3)?, view3(a.node, &g3)?);
    let mut out = vec![None, None];
    if a.need(0) {
        let mut dx = ArrayD::zeros(IxDyn(&[nb, m, k]));
        for i in 0..nb {
            dx.slice_mut(s![i, .., ..]).assign(&gv.index_axis(Axis(0), i).dot(&wv.index_axis(Axis(0), i).t()));
        }
        let dx = unbroadcast(reshaped(a.node, dx, &full(m, k))?, &xs);
        out[0] = Some(reshaped(a.node, dx, x.shape())?);
    }
    if a.need(1) {
        let mut dw = ArrayD::zeros(IxDyn(&[nb, k, n]));
        for i in 0..nb {
            dw.slice_mut(s![i, .., ..]).assign(&xv.index_axis(Axis(0), i).t().dot(&gv.index_axis(Axis(0), i)));
        }
        let dw = unbroadcast(reshaped(a.node, dw, &full(k, n))?, &ws);
        out[1] = Some(reshaped(a.node, dw, w.shape())?);
    }
    Ok(out)
}
