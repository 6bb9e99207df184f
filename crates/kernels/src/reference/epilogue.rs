//! Fused epilogues: the residual add and activation that `lithe-passes` folds into Conv and
//! FullyConnected, applied here with the standalone kernels so the fused op is exactly the
//! unfused sequence.

use super::util::invalid;
use super::{activation, arithmetic, matmul};
use crate::KernelError;
use lithe_ir::Tensor;
use lithe_ir::op::{Activation, Epilogue, FcAttrs};

/// Apply `act` to `y` (`slope` is the PReLU slope input when `act` is PReLU).
pub fn apply_activation(
    op: &'static str,
    act: &Activation,
    y: Tensor,
    slope: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    match act {
        Activation::None => Ok(y),
        Activation::Relu => activation::relu(&y),
        Activation::Clip { min, max } => {
            let bound = |v: f32| -> Result<Tensor, KernelError> { Ok(Tensor::scalar(v).cast(y.dtype())) };
            activation::clip(&y, Some(&bound(*min)?), Some(&bound(*max)?))
        }
        Activation::LeakyRelu { alpha } => activation::leaky_relu(&y, *alpha),
        Activation::PRelu => {
            let s = slope.ok_or_else(|| invalid(op, "a fused PRelu needs its slope input".to_string()))?;
            activation::prelu(&y, s)
        }
        Activation::HardSwish => activation::hard_swish(&y),
        Activation::HardSigmoid { alpha, beta } => activation::hard_sigmoid(&y, *alpha, *beta),
        Activation::Sigmoid => activation::sigmoid(&y),
        Activation::Tanh => activation::tanh(&y),
    }
}

/// `activation(y + residual)`: the conv epilogue after bias. The residual must have `y`'s shape.
pub fn apply_epilogue(
    e: &Epilogue,
    y: Tensor,
    residual: Option<&Tensor>,
    slope: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    let y = match (e.residual, residual) {
        (false, None) => y,
        (true, Some(r)) => {
            if r.shape() != y.shape() {
                return Err(invalid(
                    "Conv",
                    format!("residual shape {:?} differs from the output shape {:?}", r.shape(), y.shape()),
                ));
            }
            arithmetic::add(&y, r)?
        }
        (true, None) => return Err(invalid("Conv", "a fused residual needs input 3".to_string())),
        (false, Some(_)) => return Err(invalid("Conv", "input 3 is set but no residual is fused".to_string())),
    };
    apply_activation("Conv", &e.activation, y, slope)
}

/// `activation(X · W + B)` with X `[..., K]`, W `[K, N]`, B `[N]`.
pub fn fully_connected(
    f: &FcAttrs,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    slope: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    if w.shape().len() != 2 {
        return Err(invalid("FullyConnected", format!("W must be 2-D, found shape {:?}", w.shape())));
    }
    if x.shape().is_empty() {
        return Err(invalid("FullyConnected", "X must have rank >= 1".to_string()));
    }
    let mut y = matmul::matmul(x, w)?;
    if let Some(b) = b {
        if b.shape() != [w.shape()[1]] {
            return Err(invalid("FullyConnected", format!("bias shape {:?} must be [{}]", b.shape(), w.shape()[1])));
        }
        y = arithmetic::add(&y, b)?;
    }
    apply_activation("FullyConnected", &f.activation, y, slope)
}
