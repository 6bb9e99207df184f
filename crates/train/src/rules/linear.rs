//! Gemm, MatMul (with a 2-D right operand) and FullyConnected on the packed GEMM frame with the
//! CPU's microkernel ([`crate::gemm`]).
//!
//! With `Y = A'·B'`: `dA' = dY·B'ᵀ`, `dB' = A'ᵀ·dY`; transposed operands are strided views
//! (no copies), so `dA` for `trans_a` is computed directly as `B'·dYᵀ`, and so on.

use super::{BackwardArgs, ForwardArgs, InputGrads, f32_input, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use crate::gemm::kernel_for_rows;
use lithe_ir::op::{FcAttrs, GemmAttrs};
use lithe_ir::{DType, Tensor};
use lithe_kernels::gemm::{GemmEpilogue, GemmInput, MatRef, sgemm};
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

/// `m x n` product of strided `a` (`m x k`) and `b` (`k x n`), on all rayon threads.
fn mm(node: &str, m: usize, n: usize, k: usize, a: MatRef<'_>, b: MatRef<'_>) -> Result<Vec<f32>, TrainError> {
    let mut c = vec![0f32; m * n];
    sgemm(
        kernel_for_rows(m),
        m,
        n,
        k,
        GemmInput::Strided(a),
        GemmInput::Strided(b),
        &mut c,
        n.max(1),
        &GemmEpilogue::default(),
        rayon::current_num_threads(),
    )
    .map_err(|e| TrainError::Kernel { node: node.to_string(), source: e })?;
    Ok(c)
}

fn slice<'a>(node: &str, a: &'a ArrayViewD<'a, f32>) -> Result<&'a [f32], TrainError> {
    a.as_slice().ok_or_else(|| invalid(node, "operand is not contiguous"))
}

fn mat<'a>(node: &str, data: &'a [f32], rows: usize, cols: usize) -> Result<MatRef<'a>, TrainError> {
    MatRef::row_major(data, rows, cols).map_err(|e| TrainError::Kernel { node: node.to_string(), source: e })
}

fn arr(node: &str, shape: &[usize], v: Vec<f32>) -> Result<ArrayD<f32>, TrainError> {
    ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| invalid(node, e.to_string()))
}

/// `(M, K, N)` of a Gemm and the views `A'`, `B'`.
fn gemm_dims(node: &str, attrs: &GemmAttrs, a: &[usize], b: &[usize]) -> Result<(usize, usize, usize), TrainError> {
    if a.len() != 2 || b.len() != 2 {
        return Err(invalid(node, format!("Gemm needs 2-D A and B, got {a:?} and {b:?}")));
    }
    let (m, k) = if attrs.trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
    let (kb, n) = if attrs.trans_b { (b[1], b[0]) } else { (b[0], b[1]) };
    if k != kb {
        return Err(invalid(node, format!("Gemm inner sizes differ: A {a:?}, B {b:?}")));
    }
    Ok((m, k, n))
}

fn view<'a>(node: &str, data: &'a [f32], shape: &[usize], trans: bool) -> Result<MatRef<'a>, TrainError> {
    let v = mat(node, data, shape[0], shape[1])?;
    Ok(if trans { v.t() } else { v })
}

pub(super) fn gemm_forward(a: &ForwardArgs<'_>, attrs: &GemmAttrs) -> Result<Tensor, TrainError> {
    let x = f32_input(a.node, a.inputs, 0)?.as_standard_layout().into_owned();
    let w = f32_input(a.node, a.inputs, 1)?.as_standard_layout().into_owned();
    let (m, k, n) = gemm_dims(a.node, attrs, x.shape(), w.shape())?;
    let (xv, wv) = (x.view(), w.view());
    let av = view(a.node, slice(a.node, &xv)?, x.shape(), attrs.trans_a)?;
    let bv = view(a.node, slice(a.node, &wv)?, w.shape(), attrs.trans_b)?;
    let mut y = arr(a.node, &[m, n], mm(a.node, m, n, k, av, bv)?)?;
    if attrs.alpha != 1.0 {
        y *= attrs.alpha;
    }
    if let Some(c) = a.inputs.get(2).copied().flatten() {
        let c = c.view::<f32>().ok_or_else(|| invalid(a.node, "C is not f32"))?;
        let cb = c
            .broadcast(IxDyn(&[m, n]))
            .ok_or_else(|| invalid(a.node, format!("C {:?} does not broadcast to [{m}, {n}]", c.shape())))?;
        y.scaled_add(attrs.beta, &cb);
    }
    Ok(Tensor::from(y))
}

pub(super) fn gemm_backward(a: &BackwardArgs<'_>, attrs: &GemmAttrs) -> Result<InputGrads, TrainError> {
    let x = a.x(0)?.as_standard_layout().into_owned();
    let w = a.x(1)?.as_standard_layout().into_owned();
    let (m, k, n) = gemm_dims(a.node, attrs, x.shape(), w.shape())?;
    let mut gy = a.gy(0)?.as_standard_layout().into_owned();
    let (xv, wv) = (x.view(), w.view());
    let av = view(a.node, slice(a.node, &xv)?, x.shape(), attrs.trans_a)?;
    let bv = view(a.node, slice(a.node, &wv)?, w.shape(), attrs.trans_b)?;
    let gc = match a.inputs.get(2).copied().flatten() {
        Some(c) if a.need(2) => Some(unbroadcast(&gy * attrs.beta, c.shape())),
        _ => None,
    };
    if attrs.alpha != 1.0 {
        gy *= attrs.alpha;
    }
    let gyv = gy.view();
    let g = mat(a.node, slice(a.node, &gyv)?, m, n)?;
    let ga = if a.need(0) {
        Some(if attrs.trans_a {
            arr(a.node, &[k, m], mm(a.node, k, m, n, bv, g.t())?)?
        } else {
            arr(a.node, &[m, k], mm(a.node, m, k, n, g, bv.t())?)?
        })
    } else {
        None
    };
    let gb = if a.need(1) {
        Some(if attrs.trans_b {
            arr(a.node, &[n, k], mm(a.node, n, k, m, g.t(), av)?)?
        } else {
            arr(a.node, &[k, n], mm(a.node, k, n, m, av.t(), g)?)?
        })
    } else {
        None
    };
    Ok(vec![ga, gb, gc])
}

/// True when MatMul's operands are f32 with `A` of rank >= 2 and a 2-D `B` (the forms with a
/// backward rule; others run on the reference kernel and have none).
pub(super) fn matmul_is_2d_weight(inputs: &[Option<&Tensor>]) -> bool {
    match (inputs.first().copied().flatten(), inputs.get(1).copied().flatten()) {
        (Some(x), Some(w)) => {
            x.dtype() == DType::F32 && w.dtype() == DType::F32 && x.shape().len() >= 2 && w.shape().len() == 2
        }
        _ => false,
    }
}

/// `X[.., K] · W[K, N]` with the leading axes of `X` flattened into rows.
fn rows_times(node: &str, x: &ArrayViewD<'_, f32>, w: &ArrayViewD<'_, f32>) -> Result<ArrayD<f32>, TrainError> {
    let (k, n) = (w.shape()[0], w.shape()[1]);
    if x.shape().last() != Some(&k) {
        return Err(invalid(node, format!("X {:?} does not end in W's {k} rows", x.shape())));
    }
    let rows = x.len() / k.max(1);
    let xs = x.as_standard_layout();
    let ws = w.as_standard_layout();
    let y = mm(
        node,
        rows,
        n,
        k,
        mat(node, slice(node, &xs.view())?, rows, k)?,
        mat(node, slice(node, &ws.view())?, k, n)?,
    )?;
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rank >= 1") = n;
    arr(node, &shape, y)
}

/// Gradients of `X[.., K] · W[K, N]` with respect to X and W.
fn rows_times_backward(
    a: &BackwardArgs<'_>,
    x: &ArrayViewD<'_, f32>,
    w: &ArrayViewD<'_, f32>,
    gy: &ArrayViewD<'_, f32>,
) -> Result<[Option<ArrayD<f32>>; 2], TrainError> {
    let (k, n) = (w.shape()[0], w.shape()[1]);
    let rows = x.len() / k.max(1);
    let xs = x.as_standard_layout();
    let ws = w.as_standard_layout();
    let gs = gy.as_standard_layout();
    let (xs, ws, gs) = (xs.view(), ws.view(), gs.view());
    let xm = mat(a.node, slice(a.node, &xs)?, rows, k)?;
    let wm = mat(a.node, slice(a.node, &ws)?, k, n)?;
    let gm = mat(a.node, slice(a.node, &gs)?, rows, n)?;
    let gx = if a.need(0) { Some(arr(a.node, x.shape(), mm(a.node, rows, k, n, gm, wm.t())?)?) } else { None };
    let gw = if a.need(1) { Some(arr(a.node, &[k, n], mm(a.node, k, n, rows, xm.t(), gm)?)?) } else { None };
    Ok([gx, gw])
}

pub(super) fn matmul_forward(a: &ForwardArgs<'_>) -> Result<Tensor, TrainError> {
    let x = f32_input(a.node, a.inputs, 0)?;
    let w = f32_input(a.node, a.inputs, 1)?;
    Ok(Tensor::from(rows_times(a.node, &x, &w)?))
}

pub(super) fn matmul_backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    if !matmul_is_2d_weight(a.inputs) {
        return Err(a.no_rule("only f32 A of rank >= 2 times a 2-D B"));
    }
    let (x, w) = (a.x(0)?, a.x(1)?);
    let gy = a.gy(0)?;
    let [gx, gw] = rows_times_backward(a, &x, &w, &gy.view())?;
    Ok(vec![gx, gw])
}

pub(super) fn fc_backward(a: &BackwardArgs<'_>, attrs: &FcAttrs) -> Result<InputGrads, TrainError> {
    if !attrs.activation.is_none() {
        return Err(a.no_rule(format!("a fused {} activation (train the unfused graph)", attrs.activation.name())));
    }
    let (x, w) = (a.x(0)?, a.x(1)?);
    if w.ndim() != 2 {
        return Err(invalid(a.node, format!("W must be 2-D, got {:?}", w.shape())));
    }
    let gy = a.gy(0)?;
    let [gx, gw] = rows_times_backward(a, &x, &w, &gy.view())?;
    let gb = if a.need(2) {
        let n = w.shape()[1];
        let rows = gy.len() / n.max(1);
        let g2 = gy.to_shape((rows, n)).map_err(|e| invalid(a.node, e.to_string()))?.sum_axis(Axis(0));
        Some(g2.into_dyn())
    } else {
        None
    };
    Ok(vec![gx, gw, gb])
}
