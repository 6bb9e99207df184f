//! Batch normalization: training mode (batch statistics) and eval mode (running statistics).
//!
//! Train: `x̂ = (x - μ_B) / sqrt(σ²_B + ε)` over the batch and spatial axes (`m` values per
//! channel), `y = γ x̂ + β`; `dβ = Σ dy`, `dγ = Σ dy·x̂`,
//! `dx = γ / (m·sqrt(σ²_B + ε)) · (m·dy - Σ dy - x̂·Σ dy·x̂)`.
//! Eval: `x̂` uses the running mean and variance, which are constants: `dx = γ·dy / sqrt(σ² + ε)`.

use super::{BackwardArgs, ForwardArgs, InputGrads, f32_input};
use crate::error::invalid;
use crate::{Mode, TrainError};
use lithe_ir::Tensor;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;
use std::borrow::Cow;

/// The statistics of one batch-norm node in a training-mode forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct BnStats {
    /// Batch mean per channel.
    pub mean: Vec<f32>,
    /// Unbiased batch variance per channel (what the running variance tracks).
    pub var: Vec<f32>,
}

/// `(N, C, S)` of a batch-norm input of shape `shape` (`S` the product of the spatial axes).
fn ncs(node: &str, shape: &[usize]) -> Result<(usize, usize, usize), TrainError> {
    if shape.len() < 2 {
        return Err(invalid(node, format!("BatchNormalization input must have rank >= 2, got {shape:?}")));
    }
    Ok((shape[0], shape[1], shape[2..].iter().product()))
}

/// The elements of `a` in standard order, borrowed when already contiguous.
fn standard<'a>(a: &'a ArrayViewD<'a, f32>) -> Cow<'a, [f32]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

fn per_channel(node: &str, inputs: &[Option<&Tensor>], slot: usize, c: usize) -> Result<Vec<f32>, TrainError> {
    let v = f32_input(node, inputs, slot)?;
    if v.len() != c {
        return Err(invalid(node, format!("input {slot} has {} values for {c} channels", v.len())));
    }
    Ok(v.iter().copied().collect())
}

/// `Σ f(a[i], b[i])` with eight independent f32 accumulators (so it vectorizes), added up in f64.
#[inline]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| f(x, y) as f64).sum();
    for (xa, xb) in ca.zip(cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(xa).zip(xb) {
            *s += f(x, y);
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>() + tail
}

/// Per channel, `Σ_n f(channel, plane of x, plane of y)` in f64; channels in parallel.
fn channel_sums(
    x: &[f32],
    y: &[f32],
    (n, c, s): (usize, usize, usize),
    f: impl Fn(usize, &[f32], &[f32]) -> f64 + Sync,
) -> Vec<f64> {
    (0..c)
        .into_par_iter()
        .map(|ch| (0..n).map(|i| f(ch, &x[(i * c + ch) * s..][..s], &y[(i * c + ch) * s..][..s])).sum())
        .collect()
}

/// Batch mean and biased variance per channel (two passes; plane sums in f32 lanes, totals in f64).
fn batch_stats(x: &[f32], dims: (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let m = (dims.0 * dims.2).max(1) as f64;
    let mean: Vec<f64> = channel_sums(x, x, dims, |_, p, _| lane_sum(p, p, |v, _| v)).iter().map(|s| s / m).collect();
    let var = channel_sums(x, x, dims, |ch, p, _| {
        let mu = mean[ch] as f32;
        lane_sum(p, p, |v, _| (v - mu) * (v - mu))
    });
    (mean, var.iter().map(|s| s / m).collect())
}

/// `out[i, ch, :] = f(ch, x[i, ch, :], y[i, ch, :])`, batch items in parallel.
fn per_plane_map(
    x: &[f32],
    y: &[f32],
    (n, c, s): (usize, usize, usize),
    f: impl Fn(usize, &[f32], &[f32], &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut out = vec![0f32; n * c * s];
    if s > 0 && c > 0 {
        out.par_chunks_mut(c * s).zip(x.par_chunks(c * s)).zip(y.par_chunks(c * s)).for_each(|((o, xi), yi)| {
            for (ch, ((op, xp), yp)) in o.chunks_mut(s).zip(xi.chunks(s)).zip(yi.chunks(s)).enumerate() {
                f(ch, xp, yp, op);
            }
        });
    }
    out
}

pub(super) fn train_forward(a: &ForwardArgs<'_>, eps: f32) -> Result<(Tensor, BnStats), TrainError> {
    let xd = f32_input(a.node, a.inputs, 0)?;
    let dims @ (n, c, s) = ncs(a.node, xd.shape())?;
    let xs = standard(&xd);
    let gamma = per_channel(a.node, a.inputs, 1, c)?;
    let beta = per_channel(a.node, a.inputs, 2, c)?;
    let (mean, var) = batch_stats(&xs, dims);
    let (scale, shift): (Vec<f32>, Vec<f32>) = (0..c)
        .map(|ch| {
            let inv = 1.0 / (var[ch] + eps as f64).sqrt();
            ((gamma[ch] as f64 * inv) as f32, (beta[ch] as f64 - gamma[ch] as f64 * inv * mean[ch]) as f32)
        })
        .unzip();
    let y = per_plane_map(&xs, &xs, dims, |ch, xp, _, o| {
        let (k, b) = (scale[ch], shift[ch]);
        o.iter_mut().zip(xp).for_each(|(o, &v)| *o = v * k + b);
    });
    let m = (n * s) as f64;
    let unbiased = if m > 1.0 { m / (m - 1.0) } else { 1.0 };
    let stats = BnStats {
        mean: mean.iter().map(|&v| v as f32).collect(),
        var: var.iter().map(|&v| (v * unbiased) as f32).collect(),
    };
    let y = ArrayD::from_shape_vec(IxDyn(xd.shape()), y).map_err(|e| invalid(a.node, e.to_string()))?;
    Ok((Tensor::from(y), stats))
}

pub(super) fn backward(a: &BackwardArgs<'_>, eps: f32) -> Result<InputGrads, TrainError> {
    let xd = a.x(0)?;
    let dims @ (n, c, s) = ncs(a.node, xd.shape())?;
    let xs = standard(&xd);
    let gamma = per_channel(a.node, a.inputs, 1, c)?;
    let zeros;
    let gyd = match a.grads.first() {
        Some(Some(g)) => g.view(),
        _ => {
            zeros = a.gy(0)?;
            zeros.view()
        }
    };
    if gyd.shape() != xd.shape() {
        return Err(invalid(a.node, format!("output gradient {:?} for input {:?}", gyd.shape(), xd.shape())));
    }
    let gys = standard(&gyd);
    let (mean, var) = match a.mode {
        Mode::Train => batch_stats(&xs, dims),
        Mode::Eval => {
            let m = per_channel(a.node, a.inputs, 3, c)?;
            let v = per_channel(a.node, a.inputs, 4, c)?;
            (m.iter().map(|&v| v as f64).collect(), v.iter().map(|&v| v as f64).collect())
        }
    };
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps as f64).sqrt()).collect();
    let sum_g = channel_sums(&gys, &gys, dims, |_, g, _| lane_sum(g, g, |v, _| v));
    let sum_gx = channel_sums(&xs, &gys, dims, |ch, x, g| {
        let mu = mean[ch] as f32;
        lane_sum(x, g, |x, g| g * (x - mu)) * inv[ch]
    });
    let gx = if a.need(0) {
        let m = (n * s) as f64;
        // dx = k·dy + u·x + v per channel, with k = γ/σ and, in train mode,
        // u = −k·inv·Σdy·x̂ / m, v = −k·Σdy / m − u·μ.
        let coef: Vec<[f32; 3]> = (0..c)
            .map(|ch| {
                let k = gamma[ch] as f64 * inv[ch];
                match a.mode {
                    Mode::Train => {
                        let u = -k * inv[ch] * sum_gx[ch] / m;
                        [k as f32, u as f32, (-k * sum_g[ch] / m - u * mean[ch]) as f32]
                    }
                    Mode::Eval => [k as f32, 0.0, 0.0],
                }
            })
            .collect();
        let gx = per_plane_map(&xs, &gys, dims, |ch, xp, gp, o| {
            let [k, u, v] = coef[ch];
            o.iter_mut().zip(xp).zip(gp).for_each(|((o, &x), &g)| *o = k * g + u * x + v);
        });
        Some(ArrayD::from_shape_vec(IxDyn(xd.shape()), gx).map_err(|e| invalid(a.node, e.to_string()))?)
    } else {
        None
    };
    let shape_of = |slot: usize| a.inputs[slot].map(|t| t.shape().to_vec()).unwrap_or_default();
    let as_input = |v: &[f64], slot: usize| -> Result<ArrayD<f32>, TrainError> {
        ArrayD::from_shape_vec(IxDyn(&shape_of(slot)), v.iter().map(|&x| x as f32).collect())
            .map_err(|e| invalid(a.node, e.to_string()))
    };
    Ok(vec![
        gx,
        if a.need(1) { Some(as_input(&sum_gx, 1)?) } else { None },
        if a.need(2) { Some(as_input(&sum_g, 2)?) } else { None },
    ])
}
