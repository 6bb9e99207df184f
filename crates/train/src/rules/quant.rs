//! QuantizeLinear and DequantizeLinear: the straight-through estimator of a fake-quantize pair.
//!
//! `DequantizeLinear` is linear in its integer input: `dq = dy·scale` (the integer-valued
//! input gets an f32 gradient). `QuantizeLinear` is a step function; its straight-through
//! estimator is `dx = dq / scale` where `x` lies inside the representable range
//! `[(qmin - zp)·scale, (qmax - zp)·scale]` and 0 outside (a saturated value does not move
//! the output). A `QuantizeLinear -> DequantizeLinear` pair therefore passes `dy` through
//! unchanged inside the range and stops it outside: the clipped straight-through estimator.
//! Scales and zero points get no gradient.

use super::{BackwardArgs, InputGrads};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::{DType, Tensor};
use ndarray::ArrayD;

/// Per-element scale and zero point of a quantize/dequantize node.
struct Params {
    scale: Vec<f32>,
    zero_point: Vec<f32>,
    /// Elements per step along the axis (1 for per-tensor parameters).
    inner: usize,
    channels: usize,
}

impl Params {
    fn new(a: &BackwardArgs<'_>, shape: &[usize], axis: i64) -> Result<Self, TrainError> {
        let scale = a
            .inputs
            .get(1)
            .copied()
            .flatten()
            .and_then(|t| t.view::<f32>())
            .ok_or_else(|| invalid(a.node, "scale (input 1) is missing or not f32"))?;
        let scale: Vec<f32> = scale.iter().copied().collect();
        let zero_point: Vec<f32> = match a.inputs.get(2).copied().flatten() {
            Some(z) => z.to_f32_vec(),
            None => vec![0.0; scale.len()],
        };
        if zero_point.len() != scale.len() {
            return Err(invalid(a.node, format!("{} scales but {} zero points", scale.len(), zero_point.len())));
        }
        if scale.len() == 1 {
            return Ok(Params { scale, zero_point, inner: 1, channels: 1 });
        }
        let rank = shape.len() as i64;
        let ax = if axis < 0 { axis + rank } else { axis };
        if ax < 0 || ax >= rank {
            return Err(invalid(a.node, format!("axis {axis} out of range for rank {rank}")));
        }
        let ax = ax as usize;
        if shape[ax] != scale.len() {
            return Err(invalid(a.node, format!("{} scales for {} slices along axis {ax}", scale.len(), shape[ax])));
        }
        Ok(Params { scale, zero_point, inner: shape[ax + 1..].iter().product::<usize>().max(1), channels: shape[ax] })
    }

    fn channel(&self, i: usize) -> usize {
        if self.channels == 1 { 0 } else { (i / self.inner) % self.channels }
    }
}

/// The integer range of a quantized dtype.
fn int_range(node: &str, dtype: DType) -> Result<(f32, f32), TrainError> {
    match dtype {
        DType::U8 => Ok((0.0, 255.0)),
        DType::I8 => Ok((-128.0, 127.0)),
        DType::I16 => Ok((-32768.0, 32767.0)),
        other => Err(invalid(node, format!("quantized dtype {other} has no straight-through rule"))),
    }
}

/// The gradient of output 0 in standard layout, zeros when absent.
fn output_grad(a: &BackwardArgs<'_>) -> Result<Vec<f32>, TrainError> {
    let y: &Tensor = a.outputs.first().copied().ok_or_else(|| invalid(a.node, "no output"))?;
    match a.grads.first() {
        Some(Some(g)) => {
            if g.shape() != y.shape() {
                return Err(invalid(a.node, format!("gradient {:?} for an output {:?}", g.shape(), y.shape())));
            }
            Ok(g.iter().copied().collect())
        }
        _ => Ok(vec![0.0; y.len()]),
    }
}

/// `QuantizeLinear(x, scale, zp)`: `dx = dq / scale` inside the representable range, else 0.
pub(crate) fn quantize_backward(a: &BackwardArgs<'_>, axis: i64) -> Result<InputGrads, TrainError> {
    let mut out: InputGrads = vec![None; a.inputs.len()];
    if !a.need(0) {
        return Ok(out);
    }
    let x = a.x(0)?;
    let to = a.outputs.first().map(|t| t.dtype()).ok_or_else(|| invalid(a.node, "no output"))?;
    let (qmin, qmax) = int_range(a.node, to)?;
    let p = Params::new(a, x.shape(), axis)?;
    let gq = output_grad(a)?;
    let gx: Vec<f32> = x
        .iter()
        .zip(&gq)
        .enumerate()
        .map(|(i, (&v, &g))| {
            let c = p.channel(i);
            let (s, z) = (p.scale[c], p.zero_point[c]);
            let inside = v >= (qmin - z) * s && v <= (qmax - z) * s;
            if inside && s > 0.0 { g / s } else { 0.0 }
        })
        .collect();
    out[0] = Some(ArrayD::from_shape_vec(x.shape(), gx).map_err(|e| invalid(a.node, e.to_string()))?);
    Ok(out)
}

/// `DequantizeLinear(q, scale, zp)`: `dq = dy·scale`, an f32 gradient for the integer input.
pub(crate) fn dequantize_backward(a: &BackwardArgs<'_>, axis: i64) -> Result<InputGrads, TrainError> {
    let mut out: InputGrads = vec![None; a.inputs.len()];
    if !a.need(0) {
        return Ok(out);
    }
    let q = a.inputs.first().copied().flatten().ok_or_else(|| invalid(a.node, "input 0 is missing"))?;
    let p = Params::new(a, q.shape(), axis)?;
    let gy = output_grad(a)?;
    let gq: Vec<f32> = gy.iter().enumerate().map(|(i, &g)| g * p.scale[p.channel(i)]).collect();
    out[0] = Some(ArrayD::from_shape_vec(q.shape(), gq).map_err(|e| invalid(a.node, e.to_string()))?);
    Ok(out)
}
