//! Converters, one module per operator family. Each module's `register` adds its converters to
//! the [`Registry`].

mod activation;
mod constant;
mod identity;
mod math;
mod nn;
mod qlinear;
mod quant;
mod reduce;
mod resize;
mod shape;

use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::op::AutoPad;
use lithe_ir::{DType, Tensor};

/// Register every converter.
pub(crate) fn register_all(r: &mut Registry) {
    activation::register(r);
    constant::register(r);
    identity::register(r);
    math::register(r);
    nn::register(r);
    qlinear::register(r);
    quant::register(r);
    reduce::register(r);
    resize::register(r);
    shape::register(r);
}

/// Define a converter that maps the node to `op` with its inputs as listed.
macro_rules! direct {
    ($name:ident, $op:expr) => {
        fn $name(ctx: &mut $crate::context::NodeCtx<'_>) -> Result<(), $crate::OnnxError> {
            let inputs = ctx.inputs_from(0);
            ctx.emit($op, &inputs)
        }
    };
}
pub(crate) use direct;

/// The `auto_pad` attribute of conv and pool ops (`NOTSET` when absent or empty).
pub(crate) fn auto_pad(ctx: &NodeCtx<'_>) -> Result<AutoPad, OnnxError> {
    let s = ctx.string_or("auto_pad", "NOTSET")?;
    match s.trim().to_ascii_uppercase().as_str() {
        "NOTSET" | "" => Ok(AutoPad::NotSet),
        "VALID" => Ok(AutoPad::Valid),
        "SAME_UPPER" => Ok(AutoPad::SameUpper),
        "SAME_LOWER" => Ok(AutoPad::SameLower),
        _ => Err(ctx.err(format!("unknown auto_pad '{s}' (expected NOTSET, VALID, SAME_UPPER or SAME_LOWER)"))),
    }
}

/// A rank-0 tensor of `dtype` holding `v` (converted like ONNX Cast).
pub(crate) fn scalar_of(dtype: DType, v: f32) -> Tensor {
    Tensor::scalar(v).cast(dtype)
}

/// The dtype known so far of input `i`, defaulting to f32.
pub(crate) fn input_dtype(ctx: &NodeCtx<'_>, i: usize) -> DType {
    ctx.input_type(i).map_or(DType::F32, |t| t.dtype)
}
