//! LayerNormalization over axes `axis..rank` (statistics recomputed in f64 from the input):
//! with `x̂ = (x − μ)·s`, `s = 1/√(σ² + ε)` per row of `D` elements and `g = dy·γ`,
//! `dx = s/D · (D·g − Σg − x̂·Σ g·x̂)`, `dγ = Σ dy·x̂`, `dβ = Σ dy` (both reduced to their
//! shapes with `unbroadcast`). Gradients reaching the Mean and InvStdDev outputs are an error.

use super::{BackwardArgs, InputGrads, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::op::normalize_axis;
use ndarray::{ArrayD, IxDyn};

pub(super) fn backward(a: &BackwardArgs<'_>, axis: i64, epsilon: f32) -> Result<InputGrads, TrainError> {
    if a.grads.iter().skip(1).any(Option::is_some) {
        return Err(a.no_rule("a gradient through the Mean or InvStdDev output"));
    }
    let x = a.x(0)?;
    let shape = x.shape().to_vec();
    let ax = normalize_axis(axis, shape.len()).map_err(|e| invalid(a.node, e.to_string()))?;
    let norm_shape = &shape[ax..];
    let d: usize = norm_shape.iter().product();
    let scale = a.x(1)?;
    let gamma: Vec<f64> = scale
        .broadcast(IxDyn(norm_shape))
        .ok_or_else(|| invalid(a.node, format!("scale {:?} does not broadcast to {norm_shape:?}", scale.shape())))?
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let xs: Vec<f32> = x.iter().copied().collect();
    let gy: Vec<f32> = a.gy(0)?.iter().copied().collect();
    let eps = f64::from(epsilon);
    let mut dx = vec![0f32; xs.len()];
    let mut dgamma = vec![0f32; xs.len()];
    if d > 0 {
        let n = d as f64;
        let rows = xs.chunks(d).zip(gy.chunks(d)).zip(dx.chunks_mut(d).zip(dgamma.chunks_mut(d)));
        for ((row, gyr), (dxr, dgr)) in rows {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
            let s = 1.0 / (var + eps).sqrt();
            let xhat: Vec<f64> = row.iter().map(|&v| (f64::from(v) - mean) * s).collect();
            let g: Vec<f64> = gyr.iter().zip(&gamma).map(|(&dy, &gm)| f64::from(dy) * gm).collect();
            let sum_g: f64 = g.iter().sum();
            let sum_gx: f64 = g.iter().zip(&xhat).map(|(g, x)| g * x).sum();
            for (((o, dg), (&gi, &xh)), &dy) in dxr.iter_mut().zip(dgr).zip(g.iter().zip(&xhat)).zip(gyr) {
                *o = (s / n * (n * gi - sum_g - xh * sum_gx)) as f32;
                *dg = (f64::from(dy) * xh) as f32;
            }
        }
    }
    let to_array = |v: Vec<f32>| ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| invalid(a.node, e.to_string()));
    let mut out = vec![None; a.inputs.len()];
    out[0] = a.need(0).then(|| to_array(dx)).transpose()?;
    if a.need(1) {
        out[1] = Some(unbroadcast(to_array(dgamma)?, scale.shape()));
    }
    if a.need(2) && a.inputs.len() > 2 {
        out[2] = Some(unbroadcast(to_array(gy)?, a.x(2)?.shape()));
    }
    Ok(out)
}
