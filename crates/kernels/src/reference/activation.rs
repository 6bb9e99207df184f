//! Activations: Relu, LeakyRelu, PRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Clip.
//!
//! Float activations compute in f32 (f16 widens and rounds back once). NaN inputs give NaN.

use super::broadcast::{broadcast_shapes, zip2};
use super::dispatch::{float, numeric};
use super::num::{Float, Num};
use super::util::invalid;
use crate::KernelError;
use lithe_ir::Tensor;
use ndarray::ArrayViewD;

/// Apply `f` in f32 to every element of a float tensor.
pub(crate) fn map_f32(op: &'static str, x: &Tensor, f: impl Fn(f32) -> f32) -> Result<Tensor, KernelError> {
    fn go<T: Float>(a: &ArrayViewD<'_, T>, f: &dyn Fn(f32) -> f32) -> Tensor {
        Tensor::from(a.mapv(|v| T::from_f32(f(v.to_f32()))))
    }
    float!(x, op, a => Ok(go(a, &f)))
}

/// `v` clamped to `[0, 1]`, NaN kept.
fn clamp01(v: f32) -> f32 {
    v.clamp(0.0, 1.0)
}

/// `max(x, 0)` for any numeric dtype.
pub fn relu(x: &Tensor) -> Result<Tensor, KernelError> {
    fn go<T: Num>(a: &ArrayViewD<'_, T>) -> Tensor {
        Tensor::from(a.mapv(|v| if v < T::zero() { T::zero() } else { v }))
    }
    numeric!(x, "Relu", a => Ok(go(a)))
}

/// `x` if `x >= 0` else `alpha * x` (float).
pub fn leaky_relu(x: &Tensor, alpha: f32) -> Result<Tensor, KernelError> {
    map_f32("LeakyRelu", x, |v| if v >= 0.0 { v } else { alpha * v })
}

/// `x` if `x >= 0` else `slope * x`, with `slope` broadcast to `x`'s shape (one numeric dtype).
pub fn prelu(x: &Tensor, slope: &Tensor) -> Result<Tensor, KernelError> {
    let shape = broadcast_shapes("PRelu", &[x.shape(), slope.shape()])?;
    if shape != x.shape() {
        return Err(invalid(
            "PRelu",
            format!("slope shape {:?} does not broadcast to X shape {:?}", slope.shape(), x.shape()),
        ));
    }
    super::dispatch::numeric_pair!(x, slope, "PRelu", (a, s) => {
        zip2("PRelu", a, s, |v, k| Ok(if v < Num::zero() { v.mul(k) } else { v })).map(Tensor::from)
    })
}

/// `1 / (1 + exp(-x))`, evaluated without overflow for large `|x|`.
pub fn sigmoid(x: &Tensor) -> Result<Tensor, KernelError> {
    map_f32("Sigmoid", x, |v| {
        if v >= 0.0 {
            1.0 / (1.0 + (-v).exp())
        } else {
            let e = v.exp();
            e / (1.0 + e)
        }
    })
}

/// `max(0, min(1, alpha * x + beta))`.
pub fn hard_sigmoid(x: &Tensor, alpha: f32, beta: f32) -> Result<Tensor, KernelError> {
    map_f32("HardSigmoid", x, |v| clamp01(alpha * v + beta))
}

/// `x * max(0, min(1, x / 6 + 1 / 2))`.
pub fn hard_swish(x: &Tensor) -> Result<Tensor, KernelError> {
    map_f32("HardSwish", x, |v| v * clamp01(v * (1.0 / 6.0) + 0.5))
}

/// Hyperbolic tangent.
pub fn tanh(x: &Tensor) -> Result<Tensor, KernelError> {
    map_f32("Tanh", x, f32::tanh)
}

/// Clamp to `[min, max]`; each bound is an optional one-element tensor of `x`'s dtype (absent:
/// unbounded). When `min > max` every element becomes `max`, as ONNX specifies. NaN stays NaN.
pub fn clip(x: &Tensor, min: Option<&Tensor>, max: Option<&Tensor>) -> Result<Tensor, KernelError> {
    numeric!(x, "Clip", a => clip_typed(a, min, max))
}

fn clip_typed<T: Num>(
    a: &ArrayViewD<'_, T>,
    min: Option<&Tensor>,
    max: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    let bound = |t: Option<&Tensor>, what: &str| -> Result<Option<T>, KernelError> {
        let Some(t) = t else { return Ok(None) };
        let v = t.view_in_place::<T>().ok_or_else(|| {
            invalid("Clip", format!("{what} must have the input's dtype {}, found {}", T::DTYPE, t.dtype()))
        })?;
        if v.len() != 1 {
            return Err(invalid("Clip", format!("{what} must have one element, found shape {:?}", v.shape())));
        }
        Ok(v.iter().next().copied())
    };
    let (lo, hi) = (bound(min, "min")?, bound(max, "max")?);
    Ok(Tensor::from(a.mapv(|v| {
        let v = match lo {
            Some(l) if v < l => l,
            _ => v,
        };
        match hi {
            Some(h) if v > h => h,
            _ => v,
        }
    })))
}
