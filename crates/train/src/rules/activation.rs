//! Elementwise activations: `dx = dy · f'(x)` (or `f'` from the output for Sigmoid and Tanh).
//! At the kinks (ReLU at 0, Clip at its bounds, HardSwish at ±3) the derivative taken is the
//! one-sided one of the flat side, as torch does.

use super::{BackwardArgs, ForwardArgs, InputGrads, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::{Op, Tensor};
use ndarray::{ArrayD, ArrayViewD, Zip};
use rayon::prelude::*;

/// The scalar at input `slot` of Clip, or `default` when absent.
fn bound(a: &BackwardArgs<'_>, slot: usize, default: f32) -> Result<f32, TrainError> {
    match a.inputs.get(slot).copied().flatten() {
        None => Ok(default),
        Some(t) => {
            let v = t.to_f32_vec();
            if v.len() != 1 {
                return Err(invalid(a.node, format!("Clip bound at input {slot} has {} values", v.len())));
            }
            Ok(v[0])
        }
    }
}

/// ReLU forward: contiguous f32 input in parallel chunks, anything else on the reference kernel.
pub(super) fn relu_forward(a: &ForwardArgs<'_>) -> Result<Vec<Tensor>, TrainError> {
    let fast = |x: &Tensor| -> Option<Tensor> {
        let x = x.view::<f32>()?;
        let xs = x.as_slice()?;
        let mut y = vec![0f32; xs.len()];
        y.par_chunks_mut(CHUNK).zip(xs.par_chunks(CHUNK)).for_each(|(y, x)| {
            y.iter_mut().zip(x).for_each(|(y, &x)| *y = if x > 0.0 { x } else { 0.0 });
        });
        ArrayD::from_shape_vec(x.raw_dim(), y).ok().map(Tensor::from)
    };
    match a.inputs.first().copied().flatten().and_then(fast) {
        Some(y) => Ok(vec![y]),
        None => lithe_kernels::reference::eval(a.op, a.inputs, a.num_outputs)
            .map_err(|e| TrainError::Kernel { node: a.node.to_string(), source: e }),
    }
}

/// Elements per parallel task of the elementwise fast paths.
const CHUNK: usize = 1 << 14;

/// ReLU backward without copying the output gradient first, when the input and the gradient
/// are contiguous and of one shape.
fn relu_backward_fast(a: &BackwardArgs<'_>, x: &ArrayViewD<'_, f32>) -> Option<ArrayD<f32>> {
    let g = a.grads.first()?.as_ref()?;
    let (xs, gs) = (x.as_slice()?, g.as_slice()?);
    if g.shape() != x.shape() {
        return None;
    }
    let mut gx = vec![0f32; xs.len()];
    gx.par_chunks_mut(CHUNK).zip(xs.par_chunks(CHUNK)).zip(gs.par_chunks(CHUNK)).for_each(|((o, x), g)| {
        o.iter_mut().zip(x).zip(g).for_each(|((o, &x), &g)| *o = if x > 0.0 { g } else { 0.0 });
    });
    ArrayD::from_shape_vec(x.raw_dim(), gx).ok()
}

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    if matches!(a.op, Op::Relu)
        && let Some(gx) = relu_backward_fast(a, &a.x(0)?)
    {
        let mut out = vec![None; a.inputs.len()];
        out[0] = Some(gx);
        return Ok(out);
    }
    let mut g = a.gy(0)?;
    let x = a.x(0)?;
    let map_x = |g: &mut ArrayD<f32>, f: &dyn Fn(f32) -> f32| Zip::from(g).and(&x).for_each(|g, &x| *g *= f(x));
    match a.op {
        Op::Identity | Op::Dropout => {}
        Op::Relu => map_x(&mut g, &|x| if x > 0.0 { 1.0 } else { 0.0 }),
        Op::Clip => {
            let (lo, hi) = (bound(a, 1, f32::NEG_INFINITY)?, bound(a, 2, f32::INFINITY)?);
            map_x(&mut g, &|x| if x > lo && x < hi { 1.0 } else { 0.0 })
        }
        Op::LeakyRelu { alpha } => map_x(&mut g, &|x| if x > 0.0 { 1.0 } else { *alpha }),
        Op::HardSigmoid { alpha, beta } => map_x(&mut g, &|x| {
            let v = alpha * x + beta;
            if v > 0.0 && v < 1.0 { *alpha } else { 0.0 }
        }),
        Op::HardSwish => map_x(&mut g, &|x| {
            if x <= -3.0 {
                0.0
            } else if x >= 3.0 {
                1.0
            } else {
                (2.0 * x + 3.0) / 6.0
            }
        }),
        Op::Sigmoid => {
            let y = a.y(0)?;
            Zip::from(&mut g).and(&y).for_each(|g, &y| *g *= y * (1.0 - y));
        }
        Op::Tanh => {
            let y = a.y(0)?;
            Zip::from(&mut g).and(&y).for_each(|g, &y| *g *= 1.0 - y * y);
        }
        Op::PRelu => {
            let slope = a.x(1)?;
            let sb = slope.broadcast(x.raw_dim()).ok_or_else(|| {
                invalid(a.node, format!("slope {:?} does not broadcast to {:?}", slope.shape(), x.shape()))
            })?;
            let gs = if a.need(1) {
                let mut t = g.clone();
                Zip::from(&mut t).and(&x).for_each(|t, &x| *t = if x < 0.0 { *t * x } else { 0.0 });
                Some(unbroadcast(t, slope.shape()))
            } else {
                None
            };
            Zip::from(&mut g).and(&x).and(&sb).for_each(|g, &x, &s| *g *= if x > 0.0 { 1.0 } else { s });
            return Ok(vec![Some(g), gs]);
        }
        _ => return Err(a.no_rule("")),
    }
    let mut out = vec![None; a.inputs.len()];
    out[0] = Some(g);
    Ok(out)
}
