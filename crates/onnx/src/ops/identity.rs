//! Ops that pass their input through in inference: Identity, Dropout; and Cast.

use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use crate::types::dtype_from_onnx;
use lithe_ir::{Op, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("Identity", identity);
    r.add("Dropout", dropout);
    r.add("Cast", cast);
}

fn identity(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let x = ctx.input(0)?;
    ctx.emit(Op::Identity, &[Some(x)])
}

/// Dropout in inference mode (the ratio kept for training); the optional mask output is all
/// true. A constant false `training_mode` is dropped: inference is the IR op's own mode.
fn dropout(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    if ctx.opset >= 12 {
        if ctx.opt_input(2).is_some() {
            match ctx.const_input(2).map(|v| v.to_i64_vec()) {
                Some(v) if v.iter().all(|&x| x == 0) => {}
                Some(_) => return Err(ctx.err("training_mode=true is not supported")),
                None => return Err(ctx.err("a non-constant training_mode input is not supported")),
            }
        }
    } else if ctx.opset < 7 && ctx.int("is_test")? == Some(0) {
        tracing::warn!(node = %ctx.name, "is_test=0 ignored: Dropout imported in inference mode");
    }
    let with_mask = ctx.output_count() >= 2;
    if with_mask && ctx.opset < 10 && ctx.output_used(1) {
        return Err(
            ctx.err("the mask output before opset 10 has the input's dtype; only the boolean mask is supported")
        );
    }
    let x = ctx.input(0)?;
    // The drop ratio is kept (an input from opset 12, an attribute before) so that training
    // the imported graph drops what the model says; inference ignores it.
    let ratio = if ctx.opset >= 12 {
        ctx.opt_input(1)
    } else {
        ctx.float("ratio")?.map(|p| ctx.constant("ratio", Tensor::scalar(p)))
    };
    ctx.emit_n(Op::Dropout, &[Some(x), ratio], if with_mask { 2 } else { 1 })
}

fn cast(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let code = ctx.int("to")?.ok_or_else(|| ctx.err("attribute 'to' is required"))?;
    let code = i32::try_from(code).map_err(|_| ctx.err(format!("unknown data type {code}")))?;
    let to = dtype_from_onnx(code).map_err(|m| ctx.err(format!("cast target: {m}")))?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Cast { to }, &[Some(x)])
}
