//! Shape and layout manipulation: concat, reshape, transpose, squeeze, pad, slice, split,
//! gather, shape, expand.

use super::{input_dtype, scalar_of};
use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::Op;
use lithe_ir::op::PadMode;

pub(crate) fn register(r: &mut Registry) {
    r.add("Concat", concat);
    r.add("Reshape", reshape);
    r.add("Flatten", flatten);
    r.add("Transpose", transpose);
    r.add("Squeeze", squeeze);
    r.add("Unsqueeze", unsqueeze);
    r.add("Pad", pad);
    r.add("Slice", slice);
    r.add("Split", split);
    r.add("Gather", gather);
    r.add("Shape", shape);
    r.add("Expand", expand);
}

super::direct!(expand, Op::Expand);

fn concat(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let axis = match ctx.int("axis")? {
        Some(a) => a,
        None if ctx.opset < 4 => 1,
        None => return Err(ctx.err("attribute 'axis' is required")),
    };
    let inputs: Vec<_> = ctx.inputs_from(0).into_iter().flatten().map(Some).collect();
    if inputs.is_empty() {
        return Err(ctx.err("needs at least one input"));
    }
    ctx.emit(Op::Concat { axis }, &inputs)
}

fn reshape(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let x = ctx.input(0)?;
    let shape = if ctx.opset < 5 {
        let s = ctx.ints("shape")?.ok_or_else(|| ctx.err("attribute 'shape' is required before opset 5"))?;
        ctx.const_i64("shape", &s)?
    } else {
        ctx.input(1)?
    };
    let allowzero = ctx.opset >= 14 && ctx.flag("allowzero", false)?;
    ctx.emit(Op::Reshape { allowzero }, &[Some(x), Some(shape)])
}

fn flatten(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let axis = ctx.int_or("axis", 1)?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Flatten { axis }, &[Some(x)])
}

fn transpose(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let perm = ctx.usizes("perm")?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Transpose { perm }, &[Some(x)])
}

/// Axes from the `axes` attribute (before `input_form_opset`) or input 1.
fn axes_input(
    ctx: &mut NodeCtx<'_>,
    input_form_opset: i64,
    required: bool,
) -> Result<Option<lithe_ir::Outlet>, OnnxError> {
    if ctx.opset >= input_form_opset {
        return Ok(ctx.opt_input(1));
    }
    match ctx.ints("axes")? {
        Some(a) => Ok(Some(ctx.const_i64("axes", &a)?)),
        None if required => Err(ctx.err("attribute 'axes' is required")),
        None => Ok(None),
    }
}

fn squeeze(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let x = ctx.input(0)?;
    let axes = axes_input(ctx, 13, false)?;
    ctx.emit(Op::Squeeze, &[Some(x), axes])
}

fn unsqueeze(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let x = ctx.input(0)?;
    let axes = axes_input(ctx, 13, true)?;
    let axes = axes.ok_or_else(|| ctx.err("input 'axes' is required"))?;
    ctx.emit(Op::Unsqueeze, &[Some(x), Some(axes)])
}

fn pad_mode(ctx: &NodeCtx<'_>) -> Result<PadMode, OnnxError> {
    let m = ctx.string_or("mode", "constant")?;
    match m.as_str() {
        "constant" => Ok(PadMode::Constant),
        "reflect" => Ok(PadMode::Reflect),
        "edge" => Ok(PadMode::Edge),
        "wrap" => Ok(PadMode::Wrap),
        _ => Err(ctx.err(format!("unknown mode '{m}' (expected constant, reflect, edge or wrap)"))),
    }
}

/// Pad: before opset 11 `pads` (opset 1: `paddings`) and `value` are attributes.
fn pad(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let mode = pad_mode(ctx)?;
    let x = ctx.input(0)?;
    if ctx.opset >= 11 {
        let (pads, value, axes) = (ctx.input(1)?, ctx.opt_input(2), ctx.opt_input(3));
        return ctx.emit(Op::Pad { mode }, &[Some(x), Some(pads), value, axes]);
    }
    let key = if ctx.opset < 2 { "paddings" } else { "pads" };
    let pads = ctx.ints(key)?.ok_or_else(|| ctx.err(format!("attribute '{key}' is required")))?;
    if pads.len() % 2 != 0 {
        return Err(ctx.err(format!("{key} {pads:?} must have an even number of entries")));
    }
    let pads = ctx.const_i64("pads", &pads)?;
    let value = match ctx.float("value")? {
        Some(v) if v != 0.0 => {
            let dtype = input_dtype(ctx, 0);
            Some(ctx.constant("value", scalar_of(dtype, v)))
        }
        _ => None,
    };
    ctx.emit(Op::Pad { mode }, &[Some(x), Some(pads), value])
}

/// Slice: before opset 10 `starts`, `ends` and `axes` are attributes.
fn slice(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let x = ctx.input(0)?;
    if ctx.opset >= 10 {
        let (s, e) = (ctx.input(1)?, ctx.input(2)?);
        let (axes, steps) = (ctx.opt_input(3), ctx.opt_input(4));
        return ctx.emit(Op::Slice, &[Some(x), Some(s), Some(e), axes, steps]);
    }
    let starts = ctx.ints("starts")?.ok_or_else(|| ctx.err("attribute 'starts' is required"))?;
    let ends = ctx.ints("ends")?.ok_or_else(|| ctx.err("attribute 'ends' is required"))?;
    if starts.len() != ends.len() {
        return Err(ctx.err(format!("starts {starts:?} and ends {ends:?} differ in length")));
    }
    let axes = ctx.ints("axes")?;
    if let Some(a) = &axes
        && a.len() != starts.len()
    {
        return Err(ctx.err(format!("axes {a:?} and starts {starts:?} differ in length")));
    }
    let s = ctx.const_i64("starts", &starts)?;
    let e = ctx.const_i64("ends", &ends)?;
    let a = match axes {
        Some(a) => Some(ctx.const_i64("axes", &a)?),
        None => None,
    };
    ctx.emit(Op::Slice, &[Some(x), Some(s), Some(e), a])
}

/// Split: sizes from the `split` attribute before opset 13, from input 1 after; the number of
/// outputs is the node's output count.
fn split(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let axis = ctx.int_or("axis", 0)?;
    let num_outputs = ctx.node.output.len();
    if num_outputs == 0 {
        return Err(ctx.err("has no outputs"));
    }
    if let Some(n) = ctx.int("num_outputs")? {
        if n != num_outputs as i64 {
            return Err(ctx.err(format!("num_outputs is {n} but the node has {num_outputs} outputs")));
        }
        if ctx.opt_input(1).is_some() {
            return Err(ctx.err("num_outputs and the split input must not both be given"));
        }
    }
    let x = ctx.input(0)?;
    let sizes = if ctx.opset >= 13 || ctx.opt_input(1).is_some() {
        ctx.opt_input(1)
    } else {
        match ctx.ints("split")? {
            Some(s) if !s.is_empty() => Some(ctx.const_i64("split", &s)?),
            _ => None,
        }
    };
    ctx.emit_n(Op::Split { axis, num_outputs }, &[Some(x), sizes], num_outputs)
}

fn gather(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let axis = ctx.int_or("axis", 0)?;
    let (x, i) = (ctx.input(0)?, ctx.input(1)?);
    ctx.emit(Op::Gather { axis }, &[Some(x), Some(i)])
}

fn shape(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let (start, end) = if ctx.opset >= 15 { (ctx.int_or("start", 0)?, ctx.int("end")?) } else { (0, None) };
    let x = ctx.input(0)?;
    ctx.emit(Op::Shape { start, end }, &[Some(x)])
}
