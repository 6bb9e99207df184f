//! Reductions and arg-reductions.

use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::Op;
use lithe_ir::op::{ArgAttrs, ReduceAttrs};

pub(crate) fn register(r: &mut Registry) {
    r.add("ReduceMean", reduce_mean);
    r.add("ReduceSum", reduce_sum);
    r.add("ReduceMax", reduce_max);
    r.add("ArgMax", arg_max);
}

/// A reduction whose axes moved from an attribute to input 1 at `input_form_opset`.
fn reduce(ctx: &mut NodeCtx<'_>, input_form_opset: i64, make: fn(ReduceAttrs) -> Op) -> Result<(), OnnxError> {
    let keepdims = ctx.flag("keepdims", true)?;
    let x = ctx.input(0)?;
    let (axes, noop_with_empty_axes) = if ctx.opset >= input_form_opset {
        (ctx.opt_input(1), ctx.flag("noop_with_empty_axes", false)?)
    } else {
        let axes = match ctx.ints("axes")? {
            Some(a) if !a.is_empty() => Some(ctx.const_i64("axes", &a)?),
            _ => None,
        };
        (axes, false)
    };
    ctx.emit(make(ReduceAttrs { keepdims, noop_with_empty_axes }), &[Some(x), axes])
}

fn reduce_mean(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    reduce(ctx, 18, Op::ReduceMean)
}

fn reduce_sum(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    reduce(ctx, 13, Op::ReduceSum)
}

fn reduce_max(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    reduce(ctx, 18, Op::ReduceMax)
}

fn arg_max(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let attrs = ArgAttrs {
        axis: ctx.int_or("axis", 0)?,
        keepdims: ctx.flag("keepdims", true)?,
        select_last_index: ctx.flag("select_last_index", false)?,
    };
    let x = ctx.input(0)?;
    ctx.emit(Op::ArgMax(attrs), &[Some(x)])
}
