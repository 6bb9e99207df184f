//! Elementwise activations: `dx = dy · f'(x)` (or `f'` from the output for Sigmoid and Tanh).
//! At the kinks (ReLU at 0, Clip at its bounds, HardSwish at ±3) the derivative taken is the
//! one-sided one of the flat side, as torch does.

use super::{BackwardArgs, InputGrads, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::Op;
use ndarray::{ArrayD, Zip};

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

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
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
