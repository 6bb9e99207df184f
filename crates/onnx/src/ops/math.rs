//! Elementwise arithmetic, comparisons and selection.

use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::{Op, Outlet};

pub(crate) fn register(r: &mut Registry) {
    r.add("Add", add);
    r.add("Sub", sub);
    r.add("Mul", mul);
    r.add("Div", div);
    r.add("Pow", pow);
    r.add("Equal", equal);
    r.add("Sqrt", sqrt);
    r.add("Exp", exp);
    r.add("Log", log);
    r.add("Neg", neg);
    r.add("Abs", abs);
    r.add("Erf", erf);
    r.add("Where", where_);
    r.add("Min", min);
    r.add("Max", max);
}

super::direct!(sqrt, Op::Sqrt);
super::direct!(exp, Op::Exp);
super::direct!(log, Op::Log);
super::direct!(neg, Op::Neg);
super::direct!(abs, Op::Abs);
super::direct!(erf, Op::Erf);
super::direct!(where_, Op::Where);

fn variadic(ctx: &mut NodeCtx<'_>, op: Op) -> Result<(), OnnxError> {
    let inputs: Vec<_> = ctx.inputs_from(0).into_iter().flatten().map(Some).collect();
    if inputs.is_empty() {
        return Err(ctx.err("needs at least one input"));
    }
    ctx.emit(op, &inputs)
}

fn min(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    variadic(ctx, Op::Min)
}

fn max(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    variadic(ctx, Op::Max)
}

/// The second operand of a binary op, adjusted for the pre-opset-7 `broadcast`/`axis` attributes.
///
/// Before opset 7, `broadcast=1` let B match a run of A's axes starting at `axis`. Numpy-style
/// broadcasting (the IR's rule) aligns trailing axes, so B gets trailing size-1 axes appended.
fn legacy_second_operand(ctx: &mut NodeCtx<'_>) -> Result<Outlet, OnnxError> {
    let b = ctx.input(1)?;
    if ctx.opset >= 7 || !ctx.flag("broadcast", false)? {
        return Ok(b);
    }
    let Some(axis) = ctx.int("axis")? else {
        return Ok(b);
    };
    let (Some(ra), Some(rb)) = (ctx.input_rank(0), ctx.input_rank(1)) else {
        return Err(ctx.err("legacy broadcast with 'axis' needs the ranks of both inputs to be known"));
    };
    let axis = if axis < 0 { axis + ra as i64 } else { axis };
    let trailing = ra as i64 - axis - rb as i64;
    if axis < 0 || trailing < 0 {
        return Err(ctx.err(format!("legacy broadcast axis {axis} does not fit input ranks {ra} and {rb}")));
    }
    if trailing == 0 {
        return Ok(b);
    }
    let axes: Vec<i64> = (rb as i64..rb as i64 + trailing).collect();
    let axes = ctx.const_i64("broadcast_axes", &axes)?;
    ctx.intermediate("broadcast", Op::Unsqueeze, &[Some(b), Some(axes)])
}

fn binary(ctx: &mut NodeCtx<'_>, op: Op) -> Result<(), OnnxError> {
    let a = ctx.input(0)?;
    let b = legacy_second_operand(ctx)?;
    ctx.emit(op, &[Some(a), Some(b)])
}

fn add(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    binary(ctx, Op::Add)
}

fn sub(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    binary(ctx, Op::Sub)
}

fn mul(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    binary(ctx, Op::Mul)
}

fn div(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    binary(ctx, Op::Div)
}

fn pow(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    binary(ctx, Op::Pow)
}

fn equal(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    binary(ctx, Op::Equal)
}
