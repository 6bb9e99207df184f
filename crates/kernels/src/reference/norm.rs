//! Normalizations: `BatchNormalization` (inference mode) and `LayerNormalization`.
//! Arithmetic is done in f64 and rounded to f32 once.

use super::conv::contiguous;
use crate::KernelError;
use lithe_ir::Tensor;
use lithe_ir::op::normalize_axis;
use ndarray::{ArrayViewD, IxDyn};

/// `(x - mean) / sqrt(var + epsilon) * scale + bias` per channel (axis 1) of `x`
/// (`N x C x ...`, rank >= 2); `scale`, `bias`, `mean`, `var` have shape `[C]`. f32 only.
pub fn batch_norm(
    epsilon: f32,
    x: &Tensor,
    scale: &Tensor,
    bias: &Tensor,
    mean: &Tensor,
    var: &Tensor,
) -> Result<Tensor, KernelError> {
    const OP: &str = "BatchNormalization";
    let xa = f32_arg(OP, x, "input X")?;
    let shape = xa.shape();
    if shape.len() < 2 {
        return Err(KernelError::Invalid {
            op: OP,
            detail: format!("input must have rank >= 2 (N x C x ...), got shape {shape:?}"),
        });
    }
    let channels = shape[1];
    let per_channel = |t: &Tensor, what: &str| -> Result<Vec<f64>, KernelError> {
        let a = f32_arg(OP, t, what)?;
        if a.shape() != [channels] {
            return Err(KernelError::Invalid {
                op: OP,
                detail: format!(
                    "{what} shape {:?} must be [{channels}] (the channels of input shape {shape:?})",
                    a.shape()
                ),
            });
        }
        Ok(a.iter().map(|&v| f64::from(v)).collect())
    };
    let (s, b, m, v) = (
        per_channel(scale, "scale")?,
        per_channel(bias, "bias B")?,
        per_channel(mean, "mean")?,
        per_channel(var, "var")?,
    );
    let inner: usize = shape[2..].iter().product();
    let eps = f64::from(epsilon);
    let data = contiguous(&xa);
    let mut y = Vec::with_capacity(data.len());
    for (p, plane) in data.chunks(inner.max(1)).enumerate().take(shape[0] * channels) {
        let c = p % channels;
        let inv_std = 1.0 / (v[c] + eps).sqrt();
        y.extend(plane.iter().map(|&xv| ((f64::from(xv) - m[c]) * inv_std * s[c] + b[c]) as f32));
    }
    Ok(Tensor::from_vec(shape, y)?)
}

/// Normalize `x` over axes `axis..rank` (mean and variance per leading index, computed in two
/// passes in f64), then multiply by `scale` and add `bias`, both broadcast to the normalized
/// shape `x.shape[axis..]`. f32 only.
pub fn layer_norm(
    axis: i64,
    epsilon: f32,
    x: &Tensor,
    scale: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    layer_norm_with_stats(axis, epsilon, x, scale, bias).map(|(y, _, _)| y)
}

/// Layer normalization returning `(Y, Mean, InvStdDev)`; Mean and InvStdDev have X's shape with
/// the normalized axes set to 1, as ONNX's optional outputs.
pub fn layer_norm_with_stats(
    axis: i64,
    epsilon: f32,
    x: &Tensor,
    scale: &Tensor,
    bias: Option<&Tensor>,
) -> Result<(Tensor, Tensor, Tensor), KernelError> {
    const OP: &str = "LayerNormalization";
    let xa = f32_arg(OP, x, "input X")?;
    let shape = xa.shape();
    let axis = normalize_axis(axis, shape.len()).map_err(|e| KernelError::Invalid { op: OP, detail: e.to_string() })?;
    let norm_shape = &shape[axis..];
    let n: usize = norm_shape.iter().product();
    let broadcast = |t: &Tensor, what: &str| -> Result<Vec<f64>, KernelError> {
        let a = f32_arg(OP, t, what)?;
        let bc = a.broadcast(IxDyn(norm_shape)).ok_or_else(|| KernelError::Invalid {
            op: OP,
            detail: format!("{what} shape {:?} does not broadcast to the normalized shape {norm_shape:?}", a.shape()),
        })?;
        Ok(bc.iter().map(|&v| f64::from(v)).collect())
    };
    let s = broadcast(scale, "scale")?;
    let b = match bias {
        Some(t) => broadcast(t, "bias B")?,
        None => vec![0.0; n],
    };
    let eps = f64::from(epsilon);
    let data = contiguous(&xa);
    let mut y = Vec::with_capacity(data.len());
    let mut means = Vec::new();
    let mut inv_stds = Vec::new();
    for row in data.chunks(n.max(1)) {
        let len = row.len() as f64;
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / len;
        let var = row.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / len;
        let inv_std = 1.0 / (var + eps).sqrt();
        y.extend(
            row.iter().zip(s.iter().zip(&b)).map(|(&v, (&sv, &bv))| ((f64::from(v) - mean) * inv_std * sv + bv) as f32),
        );
        means.push(mean as f32);
        inv_stds.push(inv_std as f32);
    }
    let stat_shape: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if i < axis { d } else { 1 }).collect();
    let rows: usize = shape[..axis].iter().product();
    // An empty normalized extent still has one statistic per row.
    means.resize(rows, f32::NAN);
    inv_stds.resize(rows, f32::NAN);
    Ok((Tensor::from_vec(shape, y)?, Tensor::from_vec(&stat_shape, means)?, Tensor::from_vec(&stat_shape, inv_stds)?))
}

fn f32_arg<'a>(op: &'static str, t: &'a Tensor, what: &str) -> Result<ArrayViewD<'a, f32>, KernelError> {
    t.view_in_place::<f32>().ok_or_else(|| KernelError::Unsupported {
        op,
        detail: format!("{what} has dtype {}, only f32 is supported", t.dtype()),
    })
}
