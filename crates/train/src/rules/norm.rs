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
use ndarray::{Array1, Array3, ArrayD, ArrayView3, ArrayViewD, Axis, Ix3};

/// The statistics of one batch-norm node in a training-mode forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct BnStats {
    /// Batch mean per channel.
    pub mean: Vec<f32>,
    /// Unbiased batch variance per channel (what the running variance tracks).
    pub var: Vec<f32>,
}

/// `x` as `N x C x S`.
fn as3<'a>(node: &str, x: &'a ArrayViewD<'a, f32>) -> Result<ArrayView3<'a, f32>, TrainError> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(invalid(node, format!("BatchNormalization input must have rank >= 2, got {s:?}")));
    }
    let rest: usize = s[2..].iter().product();
    x.view()
        .into_shape_with_order((s[0], s[1], rest))
        .map_err(|e| invalid(node, format!("input is not contiguous: {e}")))
        .map(|v| v.into_dimensionality::<Ix3>().expect("rank 3"))
}

fn per_channel(node: &str, inputs: &[Option<&Tensor>], slot: usize, c: usize) -> Result<Array1<f32>, TrainError> {
    let v = f32_input(node, inputs, slot)?;
    if v.len() != c {
        return Err(invalid(node, format!("input {slot} has {} values for {c} channels", v.len())));
    }
    Ok(v.iter().copied().collect())
}

/// Batch mean and biased variance per channel (sums in f64).
fn batch_stats(x: &ArrayView3<'_, f32>) -> (Vec<f64>, Vec<f64>) {
    let (n, c, s) = x.dim();
    let m = (n * s).max(1) as f64;
    (0..c)
        .map(|ch| {
            let plane = x.index_axis(Axis(1), ch);
            let mean = plane.iter().map(|&v| v as f64).sum::<f64>() / m;
            let var = plane.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / m;
            (mean, var)
        })
        .unzip()
}

pub(super) fn train_forward(a: &ForwardArgs<'_>, eps: f32) -> Result<(Tensor, BnStats), TrainError> {
    let xd = f32_input(a.node, a.inputs, 0)?;
    let xs = xd.as_standard_layout();
    let xsv = xs.view();
    let x = as3(a.node, &xsv)?;
    let (n, c, s) = x.dim();
    let gamma = per_channel(a.node, a.inputs, 1, c)?;
    let beta = per_channel(a.node, a.inputs, 2, c)?;
    let (mean, var) = batch_stats(&x);
    let mut y = Array3::<f32>::zeros((n, c, s));
    for ch in 0..c {
        let inv = 1.0 / (var[ch] + eps as f64).sqrt();
        let (scale, shift) =
            ((gamma[ch] as f64 * inv) as f32, (beta[ch] as f64 - gamma[ch] as f64 * inv * mean[ch]) as f32);
        y.index_axis_mut(Axis(1), ch).zip_mut_with(&x.index_axis(Axis(1), ch), |o, &v| *o = v * scale + shift);
    }
    let m = (n * s) as f64;
    let unbiased = if m > 1.0 { m / (m - 1.0) } else { 1.0 };
    let stats = BnStats {
        mean: mean.iter().map(|&v| v as f32).collect(),
        var: var.iter().map(|&v| (v * unbiased) as f32).collect(),
    };
    let y = y.into_shape_with_order(xd.shape()).map_err(|e| invalid(a.node, e.to_string()))?;
    Ok((Tensor::from(y), stats))
}

pub(super) fn backward(a: &BackwardArgs<'_>, eps: f32) -> Result<InputGrads, TrainError> {
    let xd = a.x(0)?;
    let xs = xd.as_standard_layout();
    let xsv = xs.view();
    let x = as3(a.node, &xsv)?;
    let (n, c, s) = x.dim();
    let gamma = per_channel(a.node, a.inputs, 1, c)?;
    let gyd = a.gy(0)?.as_standard_layout().into_owned();
    let gyv = gyd.view();
    let gy = as3(a.node, &gyv)?;
    let (mean, var) = match a.mode {
        Mode::Train => batch_stats(&x),
        Mode::Eval => {
            let m = per_channel(a.node, a.inputs, 3, c)?;
            let v = per_channel(a.node, a.inputs, 4, c)?;
            (m.iter().map(|&v| v as f64).collect(), v.iter().map(|&v| v as f64).collect())
        }
    };
    let m = (n * s) as f64;
    let mut gx = Array3::<f32>::zeros((n, c, s));
    let mut gg = Array1::<f32>::zeros(c);
    let mut gb = Array1::<f32>::zeros(c);
    for ch in 0..c {
        let inv = 1.0 / (var[ch] + eps as f64).sqrt();
        let xc = x.index_axis(Axis(1), ch);
        let gc = gy.index_axis(Axis(1), ch);
        let (mut sum_g, mut sum_gx) = (0f64, 0f64);
        ndarray::Zip::from(&xc).and(&gc).for_each(|&xv, &g| {
            sum_g += g as f64;
            sum_gx += g as f64 * (xv as f64 - mean[ch]) * inv;
        });
        gb[ch] = sum_g as f32;
        gg[ch] = sum_gx as f32;
        if a.need(0) {
            let k = gamma[ch] as f64 * inv;
            let mut dst = gx.index_axis_mut(Axis(1), ch);
            match a.mode {
                Mode::Train => ndarray::Zip::from(&mut dst).and(&xc).and(&gc).for_each(|o, &xv, &g| {
                    let xhat = (xv as f64 - mean[ch]) * inv;
                    *o = (k / m * (m * g as f64 - sum_g - xhat * sum_gx)) as f32;
                }),
                Mode::Eval => ndarray::Zip::from(&mut dst).and(&gc).for_each(|o, &g| *o = (k * g as f64) as f32),
            }
        }
    }
    let gx = if a.need(0) {
        Some(gx.into_shape_with_order(xd.shape()).map_err(|e| invalid(a.node, e.to_string()))?)
    } else {
        None
    };
    let shape_of = |slot: usize| a.inputs[slot].map(|t| t.shape().to_vec()).unwrap_or_default();
    let reshape = |v: Array1<f32>, slot: usize| -> Result<ArrayD<f32>, TrainError> {
        v.into_shape_with_order(shape_of(slot)).map_err(|e| invalid(a.node, e.to_string()))
    };
    Ok(vec![
        gx,
        if a.need(1) { Some(reshape(gg, 1)?) } else { None },
        if a.need(2) { Some(reshape(gb, 2)?) } else { None },
    ])
}
