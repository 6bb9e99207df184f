//! Activation functions.

use super::{input_dtype, scalar_of};
use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::Op;

pub(crate) fn register(r: &mut Registry) {
    r.add("Relu", relu);
    r.add("Sigmoid", sigmoid);
    r.add("Tanh", tanh);
    r.add("HardSwish", hard_swish);
    r.add("PRelu", prelu);
    r.add("LeakyRelu", leaky_relu);
    r.add("HardSigmoid", hard_sigmoid);
    r.add("Clip", clip);
}

super::direct!(relu, Op::Relu);
super::direct!(sigmoid, Op::Sigmoid);
super::direct!(tanh, Op::Tanh);
super::direct!(hard_swish, Op::HardSwish);
super::direct!(prelu, Op::PRelu);

fn leaky_relu(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let alpha = ctx.float_or("alpha", 0.01)?;
    let x = ctx.input(0)?;
    ctx.emit(Op::LeakyRelu { alpha }, &[Some(x)])
}

fn hard_sigmoid(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let alpha = ctx.float_or("alpha", 0.2)?;
    let beta = ctx.float_or("beta", 0.5)?;
    let x = ctx.input(0)?;
    ctx.emit(Op::HardSigmoid { alpha, beta }, &[Some(x)])
}

/// Clip: `min`/`max` attributes before opset 11 become constant inputs of the input's dtype.
fn clip(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let x = ctx.input(0)?;
    if ctx.opset >= 11 {
        let (lo, hi) = (ctx.opt_input(1), ctx.opt_input(2));
        return ctx.emit(Op::Clip, &[Some(x), lo, hi]);
    }
    let dtype = input_dtype(ctx, 0);
    let lo = ctx.float("min")?.map(|v| ctx.constant("min", scalar_of(dtype, v)));
    let hi = ctx.float("max")?.map(|v| ctx.constant("max", scalar_of(dtype, v)));
    ctx.emit(Op::Clip, &[Some(x), lo, hi])
}
