//! QuantizeLinear and DequantizeLinear (opsets 10 to 21): per-tensor or per-axis scales.
//! Blocked quantization (`block_size`) and float8/int4 types are reported as unsupported.

use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use crate::types::dtype_from_onnx;
use lithe_ir::{DType, Op};

pub(crate) fn register(r: &mut Registry) {
    r.add("QuantizeLinear", quantize_linear);
    r.add("DequantizeLinear", dequantize_linear);
}

/// The `axis` attribute (opset 13 on; earlier opsets are per tensor, where the axis is unused).
fn axis(ctx: &NodeCtx<'_>) -> Result<i64, OnnxError> {
    if ctx.int_or("block_size", 0)? != 0 {
        return Err(ctx.err("blocked quantization (block_size != 0) is not supported"));
    }
    ctx.int_or("axis", 1)
}

fn quantize_linear(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let axis = axis(ctx)?;
    let zero_point = ctx.opt_input(2);
    let to = match zero_point {
        Some(_) => ctx.input_type(2).map(|t| t.dtype).ok_or_else(|| ctx.err("the zero point's dtype is unknown"))?,
        None => match ctx.int("output_dtype")? {
            Some(0) | None => DType::U8,
            Some(code) => {
                let code = i32::try_from(code).map_err(|_| ctx.err(format!("unknown output_dtype {code}")))?;
                dtype_from_onnx(code).map_err(|m| ctx.err(format!("output_dtype: {m}")))?
            }
        },
    };
    if !matches!(to, DType::U8 | DType::I8 | DType::I16) {
        return Err(ctx.err(format!("quantizing to {to} is not supported (u8, i8 and i16 are)")));
    }
    let inputs = [Some(ctx.input(0)?), Some(ctx.input(1)?), zero_point];
    ctx.emit(Op::QuantizeLinear { axis, to }, &inputs)
}

fn dequantize_linear(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let axis = axis(ctx)?;
    let inputs = [Some(ctx.input(0)?), Some(ctx.input(1)?), ctx.opt_input(2)];
    ctx.emit(Op::DequantizeLinear { axis }, &inputs)
}
