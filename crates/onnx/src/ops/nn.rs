//! Convolutions, normalization, pooling, dense layers and softmax.

use super::auto_pad;
use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::Op;
use lithe_ir::op::{AutoPad, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, GemmAttrs, PoolAttrs, SoftmaxAttrs};

pub(crate) fn register(r: &mut Registry) {
    r.add("Conv", conv);
    r.add("ConvTranspose", conv_transpose);
    r.add("BatchNormalization", batch_norm);
    r.add("MaxPool", max_pool);
    r.add("AveragePool", average_pool);
    r.add("GlobalAveragePool", global_average_pool);
    r.add("GlobalMaxPool", global_max_pool);
    r.add("Gemm", gemm);
    r.add("MatMul", matmul);
    r.add("LayerNormalization", layer_norm);
    r.add("Softmax", softmax);
}

super::direct!(global_average_pool, Op::GlobalAveragePool);
super::direct!(global_max_pool, Op::GlobalMaxPool);
super::direct!(matmul, Op::MatMul);

fn even_pads(ctx: &NodeCtx<'_>) -> Result<Vec<usize>, OnnxError> {
    let pads = ctx.usizes("pads")?.unwrap_or_default();
    if pads.len() % 2 != 0 {
        return Err(ctx.err(format!("pads {pads:?} must have an even number of entries")));
    }
    Ok(pads)
}

pub(super) fn conv_attrs(ctx: &NodeCtx<'_>) -> Result<ConvAttrs, OnnxError> {
    let group = ctx.int_or("group", 1)?;
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| ctx.err(format!("group must be at least 1, found {group}")))?;
    let auto_pad = auto_pad(ctx)?;
    let pads = even_pads(ctx)?;
    if auto_pad != AutoPad::NotSet && pads.iter().any(|&p| p != 0) {
        tracing::debug!(node = %ctx.name, "auto_pad is set; explicit pads are ignored");
    }
    Ok(ConvAttrs {
        kernel_shape: ctx.usizes("kernel_shape")?,
        strides: ctx.usizes("strides")?.unwrap_or_default(),
        dilations: ctx.usizes("dilations")?.unwrap_or_default(),
        pads,
        auto_pad,
        group,
        epilogue: Default::default(),
    })
}

fn conv(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let attrs = conv_attrs(ctx)?;
    let (x, w, b) = (ctx.input(0)?, ctx.input(1)?, ctx.opt_input(2));
    ctx.emit(Op::Conv(attrs), &[Some(x), Some(w), b])
}

fn conv_transpose(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let conv = conv_attrs(ctx)?;
    let (x, w, b) = (ctx.input(0)?, ctx.input(1)?, ctx.opt_input(2));
    let mut output_shape = ctx.usizes("output_shape")?;
    // Some exporters give the full output shape (N, C, spatial...); keep the spatial part.
    let spatial = ctx.input_rank(0).or_else(|| ctx.input_rank(1)).map(|r| r.saturating_sub(2));
    if let (Some(os), Some(n)) = (&mut output_shape, spatial)
        && n > 0
        && os.len() == n + 2
    {
        os.drain(..2);
    }
    let attrs =
        ConvTransposeAttrs { conv, output_padding: ctx.usizes("output_padding")?.unwrap_or_default(), output_shape };
    ctx.emit(Op::ConvTranspose(attrs), &[Some(x), Some(w), b])
}

fn batch_norm(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    if ctx.output_count() > 1 {
        return Err(ctx.err(
            "training outputs (running mean/var, saved mean/var) are not supported; only inference-mode BatchNormalization is",
        ));
    }
    if ctx.opset >= 14 && ctx.flag("training_mode", false)? {
        return Err(ctx.err("training_mode=1 is not supported; only inference-mode BatchNormalization is"));
    }
    if ctx.opset < 9 && !ctx.flag("spatial", true)? {
        return Err(ctx.err("spatial=0 (per-activation normalization) is not supported"));
    }
    if ctx.opset < 7 && ctx.int("is_test")? == Some(0) {
        tracing::warn!(node = %ctx.name, "is_test=0 ignored: BatchNormalization imported in inference mode");
    }
    let epsilon = ctx.float_or("epsilon", 1e-5)?;
    let mut inputs = Vec::with_capacity(5);
    for i in 0..5 {
        inputs.push(Some(ctx.input(i)?));
    }
    ctx.emit(Op::BatchNormalization { epsilon }, &inputs)
}

fn pool_attrs(ctx: &NodeCtx<'_>) -> Result<PoolAttrs, OnnxError> {
    let kernel_shape = ctx.usizes("kernel_shape")?.ok_or_else(|| ctx.err("attribute 'kernel_shape' is required"))?;
    Ok(PoolAttrs {
        kernel_shape,
        strides: ctx.usizes("strides")?.unwrap_or_default(),
        dilations: ctx.usizes("dilations")?.unwrap_or_default(),
        pads: even_pads(ctx)?,
        auto_pad: auto_pad(ctx)?,
        ceil_mode: ctx.flag("ceil_mode", false)?,
    })
}

fn max_pool(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    if ctx.has_output(1) {
        return Err(ctx.err("the Indices output is not supported"));
    }
    let attrs = pool_attrs(ctx)?;
    let x = ctx.input(0)?;
    ctx.emit_n(Op::MaxPool(attrs), &[Some(x)], 1)
}

fn average_pool(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let attrs = AvgPoolAttrs { pool: pool_attrs(ctx)?, count_include_pad: ctx.flag("count_include_pad", false)? };
    let x = ctx.input(0)?;
    ctx.emit(Op::AveragePool(attrs), &[Some(x)])
}

fn gemm(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let attrs = GemmAttrs {
        alpha: ctx.float_or("alpha", 1.0)?,
        beta: ctx.float_or("beta", 1.0)?,
        trans_a: ctx.flag("transA", false)?,
        trans_b: ctx.flag("transB", false)?,
    };
    let (a, b, c) = (ctx.input(0)?, ctx.input(1)?, ctx.opt_input(2));
    ctx.emit(Op::Gemm(attrs), &[Some(a), Some(b), c])
}

fn layer_norm(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let stash = ctx.int_or("stash_type", 1)?;
    if stash != 1 {
        tracing::warn!(node = %ctx.name, stash, "stash_type ignored: LayerNormalization computes in f32");
    }
    let axis = ctx.int_or("axis", -1)?;
    let epsilon = ctx.float_or("epsilon", 1e-5)?;
    let (x, scale, bias) = (ctx.input(0)?, ctx.input(1)?, ctx.opt_input(2));
    // Mean and InvStdDev only when something reads them.
    let n = (1..3).rev().find(|&i| ctx.output_used(i)).map_or(1, |i| i + 1);
    ctx.emit_n(Op::LayerNormalization { axis, epsilon }, &[Some(x), Some(scale), bias], n)
}

fn softmax(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let legacy = ctx.opset < 13;
    let axis = ctx.int_or("axis", if legacy { 1 } else { -1 })?;
    // Coercing to 2-D at the last axis is the same as a plain softmax over it.
    let last = ctx.input_rank(0).is_some_and(|r| r > 0 && (axis == -1 || axis == r as i64 - 1));
    let x = ctx.input(0)?;
    ctx.emit(Op::Softmax(SoftmaxAttrs { axis, coerce_2d: legacy && !last }), &[Some(x)])
}
