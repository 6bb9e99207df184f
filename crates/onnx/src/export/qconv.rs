//! `QConv` and `QAdd`, the int8 ops `lithe-passes` makes from QDQ patterns, back to those
//! patterns. `QAdd` becomes `QuantizeLinear(DequantizeLinear(A) + DequantizeLinear(B))`,
//! `QGlobalAveragePool` `QuantizeLinear(GlobalAveragePool(DequantizeLinear(X)))`. `QConv`:
//! `DequantizeLinear(X, x_scale, x_zero_point)`, `DequantizeLinear(W, w_scale)` (axis 0 when
//! the scale is per output channel), `Conv(·, ·, B)`, then the epilogue's `Add(residual)` and
//! activation, and `QuantizeLinear(·, y_scale, y_zero_point)` when the output is u8.
//!
//! An int32 bias becomes `DequantizeLinear(B, x_scale·w_scale)` (axis 0 when per channel), the
//! form onnxruntime fuses back into its integer `QLinearConv`.
//!
//! The ONNX form computes in f32 what QConv accumulates exactly in i32 and scales once, so the
//! two agree up to f32 rounding (a u8 output may differ by one level where a value sits on a
//! rounding boundary).

use super::NodeCx;
use super::attrs;
use super::fused::{Chain, conv_then_epilogue, fused_input};
use crate::OnnxError;
use lithe_ir::DType;
use lithe_ir::op::{Activation, QConvAttrs};

pub(super) fn qconv(cx: &mut NodeCx<'_, '_>, a: &QConvAttrs) -> Result<(), OnnxError> {
    cx.at_most(9)?;
    let e = a.conv.epilogue;
    if e.activation == Activation::PRelu {
        return Err(cx.err("a fused PRelu is not allowed in QConv"));
    }
    let quantized = match a.to {
        DType::U8 => true,
        DType::F32 => false,
        t => return Err(cx.err(format!("output dtype {t} (expected u8 or f32)"))),
    };
    let x = cx.req(0, "X")?;
    let (x_scale, x_zp) = (cx.req(1, "x_scale")?, cx.req(2, "x_zero_point")?);
    let (w, w_scale) = (cx.req(3, "W")?, cx.req(4, "w_scale")?);
    let mut b = cx.opt(5);
    let int_bias = cx.input_type(5).is_some_and(|t| t.dtype == DType::I32);
    let residual = fused_input(cx, 6, e.residual, "residual")?;
    let y_q = if quantized {
        Some((cx.req(7, "y_scale")?, cx.req(8, "y_zero_point")?))
    } else {
        if cx.opt(7).is_some() || cx.opt(8).is_some() {
            return Err(cx.err("y_scale/y_zero_point are set but the output is f32"));
        }
        None
    };
    let out = cx.single_output()?;
    let per_channel = cx.const_input(4).map_or_else(
        || cx.input_type(4).and_then(|t| t.shape.as_ref()).and_then(|s| s.num_elements()).is_none_or(|n| n > 1),
        |s| s.len() > 1,
    );

    let xf = cx.fresh_value(&out, "x_f32");
    cx.push(
        "dequantize_x",
        "DequantizeLinear",
        &[Some(x), Some(x_scale.clone()), Some(x_zp)],
        vec![xf.clone()],
        vec![],
    );
    let wf = cx.fresh_value(&out, "w_f32");
    let w_axis = if per_channel { vec![attrs::int("axis", 0)] } else { vec![] };
    cx.push("dequantize_w", "DequantizeLinear", &[Some(w), Some(w_scale.clone())], vec![wf.clone()], w_axis.clone());
    if int_bias {
        // The int32 bias at scale x_scale·w_scale, as onnxruntime writes it.
        let bias_scale = cx.fresh_value(&out, "bias_scale");
        cx.push("bias_scale", "Mul", &[Some(x_scale), Some(w_scale)], vec![bias_scale.clone()], vec![]);
        let bf = cx.fresh_value(&out, "b_f32");
        cx.push("dequantize_b", "DequantizeLinear", &[b.clone(), Some(bias_scale)], vec![bf.clone()], w_axis);
        b = Some(bf);
    }

    let stages = 1 + usize::from(residual.is_some()) + usize::from(!e.activation.is_none()) + usize::from(quantized);
    let mut chain = Chain::new(out, stages);
    let cur = conv_then_epilogue(cx, &mut chain, &a.conv, "conv", [xf, wf], b, residual, None, DType::F32)?;
    if let Some((s, z)) = y_q {
        let next = chain.next(cx, "quantize");
        cx.push("", "QuantizeLinear", &[Some(cur), Some(s), Some(z)], vec![next], vec![]);
    }
    Ok(())
}

pub(super) fn qadd(cx: &mut NodeCx<'_, '_>) -> Result<(), OnnxError> {
    cx.at_most(8)?;
    let a = [cx.req(0, "A")?, cx.req(1, "a_scale")?, cx.req(2, "a_zero_point")?];
    let b = [cx.req(3, "B")?, cx.req(4, "b_scale")?, cx.req(5, "b_zero_point")?];
    let (c_scale, c_zp) = (cx.req(6, "c_scale")?, cx.req(7, "c_zero_point")?);
    let out = cx.single_output()?;
    let mut dequantized = Vec::new();
    for (label, [q, s, z]) in [("a", a), ("b", b)] {
        let f = cx.fresh_value(&out, &format!("{label}_f32"));
        cx.push(
            &format!("dequantize_{label}"),
            "DequantizeLinear",
            &[Some(q), Some(s), Some(z)],
            vec![f.clone()],
            vec![],
        );
        dequantized.push(Some(f));
    }
    let sum = cx.fresh_value(&out, "sum");
    cx.push("add", "Add", &dequantized, vec![sum.clone()], vec![]);
    cx.push("", "QuantizeLinear", &[Some(sum), Some(c_scale), Some(c_zp)], vec![out], vec![]);
    Ok(())
}

pub(super) fn qglobal_average_pool(cx: &mut NodeCx<'_, '_>) -> Result<(), OnnxError> {
    cx.at_most(5)?;
    let (x, x_scale, x_zp) = (cx.req(0, "X")?, cx.req(1, "x_scale")?, cx.req(2, "x_zero_point")?);
    let (y_scale, y_zp) = (cx.req(3, "y_scale")?, cx.req(4, "y_zero_point")?);
    let out = cx.single_output()?;
    let xf = cx.fresh_value(&out, "x_f32");
    cx.push("dequantize_x", "DequantizeLinear", &[Some(x), Some(x_scale), Some(x_zp)], vec![xf.clone()], vec![]);
    let pooled = cx.fresh_value(&out, "pooled");
    cx.push("pool", "GlobalAveragePool", &[Some(xf)], vec![pooled.clone()], vec![]);
    cx.push("", "QuantizeLinear", &[Some(pooled), Some(y_scale), Some(y_zp)], vec![out], vec![]);
    Ok(())
}
