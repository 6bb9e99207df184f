//! onnxruntime's quantized operator formats: QLinearConv, QLinearMatMul, ConvInteger,
//! MatMulInteger (opset 10 on) and DynamicQuantizeLinear (opset 11 on).
//!
//! The first four have no IR operator of their own: each is decomposed at import into the QDQ
//! form the rest of Lithe already runs (`docs/quantization.md`):
//!
//! ```text
//! QLinearConv:   x -> DequantizeLinear(x_scale, x_zp)  ─┐
//!                w -> DequantizeLinear(w_scale, w_zp)  ─┼─ Conv (f32) -> QuantizeLinear(y_scale, y_zp)
//!                B -> DequantizeLinear(x_scale·w_scale)┘   (axis 0 for per-channel w and B)
//! QLinearMatMul: a -> DequantizeLinear, b -> DequantizeLinear -> MatMul (f32) -> QuantizeLinear
//! ConvInteger:   x -> DequantizeLinear(1, x_zp), w -> DequantizeLinear(1, w_zp) -> Conv -> Cast(i32)
//! MatMulInteger: A -> DequantizeLinear(1, a_zp), B -> DequantizeLinear(1, b_zp) -> MatMul -> Cast(i32)
//! ```
//!
//! Node and value names are the ONNX node's name plus a label (`conv1/x_dequantized`, ...), and
//! the last node keeps the ONNX node's name and output, so errors and profiles name the node.
//!
//! Exactness: every dequantized operand `(q - zp)·scale` is one f32 product of an exact
//! integer difference. With unit scales (the `*Integer` ops) the f32 products are exact
//! integers and the f32 sums are exact while every partial sum stays below 2^24 in magnitude
//! (about 260 products of extreme 8-bit values, far more in practice), so ConvInteger and
//! MatMulInteger equal ONNX's int32 results there. For QLinearConv/QLinearMatMul the f32
//! accumulation rounds like any f32 conv, so an output may differ from an int32-accumulating
//! engine by one quantization step where the exact value lies next to a rounding boundary. The
//! int8 pass of `lithe-passes` rewrites `DequantizeLinear(u8 x) -> Conv(DequantizeLinear(s8 W))
//! -> QuantizeLinear` into an int8 kernel node that accumulates in exact int32 again; the
//! decomposition keeps that shape (x's dequantize at Conv input 0, the constant weight's at
//! input 1, the bias at input 2, the QuantizeLinear reading the Conv).
//!
//! Malformed nodes (wrong dtypes, scale and zero point of different lengths, per-axis lengths
//! that do not match the data) are [`OnnxError::Node`] errors naming the node. Weights need not
//! be constants: every step of the decomposition runs on computed tensors too.

use super::nn::conv_attrs;
use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::{DType, Dim, Op, Outlet, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("QLinearConv", qlinear_conv);
    r.add("QLinearMatMul", qlinear_matmul);
    r.add("ConvInteger", conv_integer);
    r.add("MatMulInteger", matmul_integer);
    r.add("DynamicQuantizeLinear", dynamic_quantize_linear);
}

/// The 8-bit types of quantized data and zero points.
const INT8: [DType; 2] = [DType::U8, DType::I8];

fn need_opset(ctx: &NodeCtx<'_>, since: i64) -> Result<(), OnnxError> {
    if ctx.opset < since {
        return Err(ctx
            .err(format!("{} exists from opset {since} on; the model imports opset {}", ctx.node.op_type, ctx.opset)));
    }
    Ok(())
}

/// The dtype of input `slot`, checked against `allowed` when it is known.
fn dtype_in(ctx: &NodeCtx<'_>, slot: usize, what: &str, allowed: &[DType]) -> Result<Option<DType>, OnnxError> {
    let Some(t) = ctx.input_type(slot) else { return Ok(None) };
    if !allowed.contains(&t.dtype) {
        let names: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        return Err(ctx.err(format!("{what} must be {}, found {}", names.join(" or "), t.dtype)));
    }
    Ok(Some(t.dtype))
}

/// The element count of input `slot` when it is a scalar or 1-D of known length; `Err` for
/// rank 2 or more (the caller decides whether that is allowed).
fn vector_len(ctx: &NodeCtx<'_>, slot: usize) -> Result<Option<usize>, usize> {
    let Some(shape) = ctx.input_type(slot).and_then(|t| t.shape.as_ref()) else { return Ok(None) };
    match shape.dims() {
        [] => Ok(Some(1)),
        [Dim::Known(n)] => Ok(Some(*n)),
        [_] => Ok(None),
        d => Err(d.len()),
    }
}

/// Size of axis `axis` (negative counts from the end) of input `slot`, when known.
fn dim_of(ctx: &NodeCtx<'_>, slot: usize, axis: i64) -> Option<usize> {
    let shape = ctx.input_type(slot)?.shape.as_ref()?;
    let r = shape.rank() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return None;
    }
    shape.dims().get(a as usize)?.known()
}

/// One quantization parameter pair: how a scale (or a unit scale) and an optional zero point
/// apply to the data.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Params {
    /// One value for the whole tensor.
    PerTensor,
    /// One value per slice along `axis` (of `len` slices).
    PerAxis { axis: i64, len: usize },
    /// Rank 2 or more, broadcast against the data (QLinearMatMul/MatMulInteger `[.., M, 1]` and
    /// `[.., 1, N]` forms): dequantized with Cast, Sub and Mul.
    Broadcast,
}

/// How the scale at `scale_slot` (or, without one, the zero point) and the zero point at
/// `zp_slot` quantize the data at `data_slot`: checks that both have the same length and that a
/// per-axis length is the size of `axis` of the data. `what` names the pair in errors.
fn params(
    ctx: &NodeCtx<'_>,
    what: &str,
    data_slot: usize,
    scale_slot: Option<usize>,
    zp_slot: Option<usize>,
    axis: i64,
    broadcast_ok: bool,
) -> Result<Params, OnnxError> {
    let mut len: Option<usize> = None;
    let mut broadcast = false;
    for slot in [scale_slot, zp_slot].into_iter().flatten() {
        if ctx.opt_input(slot).is_none() {
            continue;
        }
        match vector_len(ctx, slot) {
            Ok(Some(n)) => {
                if let Some(prev) = len
                    && prev != n
                {
                    return Err(ctx.err(format!("{what}: the scale has {prev} elements, the zero point {n}")));
                }
                len = Some(n);
            }
            Ok(None) => {}
            Err(_) if broadcast_ok => broadcast = true,
            Err(rank) => {
                return Err(ctx.err(format!("{what}: scale and zero point must be scalars or 1-D, found rank {rank}")));
            }
        }
    }
    if broadcast {
        return Ok(Params::Broadcast);
    }
    match len {
        None if [scale_slot, zp_slot].into_iter().flatten().any(|s| ctx.opt_input(s).is_some()) => {
            // 1-D of unknown length: the data's axis decides.
            match dim_of(ctx, data_slot, axis) {
                Some(n) if n > 1 => Ok(Params::PerAxis { axis, len: n }),
                _ => Err(ctx.err(format!("{what}: the length of the scale and zero point is unknown"))),
            }
        }
        None | Some(1) => Ok(Params::PerTensor),
        Some(n) => match dim_of(ctx, data_slot, axis) {
            Some(d) if d != n => {
                Err(ctx.err(format!("{what}: {n} per-axis values, but axis {axis} of the data has size {d}")))
            }
            _ => Ok(Params::PerAxis { axis, len: n }),
        },
    }
}

/// Input `slot` as an f32 scale: f32 as it is, f16 (where `allow_f16`) cast to f32.
fn scale_f32(ctx: &mut NodeCtx<'_>, slot: usize, what: &str, allow_f16: bool) -> Result<Outlet, OnnxError> {
    let allowed: &[DType] = if allow_f16 { &[DType::F32, DType::F16] } else { &[DType::F32] };
    let dtype = dtype_in(ctx, slot, what, allowed)?;
    let o = ctx.input(slot)?;
    if dtype != Some(DType::F16) {
        return Ok(o);
    }
    if let Some(t) = ctx.const_input(slot) {
        let t = t.cast(DType::F32);
        return Ok(ctx.constant(&format!("{what}_f32"), t));
    }
    ctx.intermediate(&format!("{what}_f32"), Op::Cast { to: DType::F32 }, &[Some(o)])
}

/// Check that the zero point at `zp_slot` has the dtype of the data at `data_slot`.
fn zp_dtype(ctx: &NodeCtx<'_>, data_slot: usize, zp_slot: usize, what: &str) -> Result<(), OnnxError> {
    let (Some(d), Some(z)) = (ctx.input_type(data_slot), ctx.input_type(zp_slot)) else { return Ok(()) };
    if ctx.opt_input(zp_slot).is_some() && d.dtype != z.dtype {
        return Err(ctx.err(format!("{what}: the zero point is {}, the data {}", z.dtype, d.dtype)));
    }
    Ok(())
}

/// A scalar 1.0, or ones of `len`: the unit scale of the `*Integer` ops' dequantization.
fn unit_scale(ctx: &mut NodeCtx<'_>, label: &str, p: Params) -> Result<Outlet, OnnxError> {
    let t = match p {
        Params::PerAxis { len, .. } => Tensor::from_vec(&[len], vec![1.0f32; len])?,
        Params::PerTensor | Params::Broadcast => Tensor::scalar(1.0f32),
    };
    Ok(ctx.constant(label, t))
}

/// `q` dequantized to f32 with `scale` and the optional `zp` as `p` says, named `label`.
fn dequantize(
    ctx: &mut NodeCtx<'_>,
    label: &str,
    q: Outlet,
    scale: Outlet,
    zp: Option<Outlet>,
    p: Params,
) -> Result<Outlet, OnnxError> {
    match p {
        Params::PerTensor => ctx.intermediate(label, Op::DequantizeLinear { axis: 1 }, &[Some(q), Some(scale), zp]),
        Params::PerAxis { axis, .. } => {
            ctx.intermediate(label, Op::DequantizeLinear { axis }, &[Some(q), Some(scale), zp])
        }
        Params::Broadcast => {
            // (q - zp) is exact in f32 for 8-bit values; one product, as DequantizeLinear.
            let qf = ctx.intermediate(&format!("{label}_f32"), Op::Cast { to: DType::F32 }, &[Some(q)])?;
            let centered = match zp {
                None => qf,
                Some(z) => {
                    let zf =
                        ctx.intermediate(&format!("{label}_zero_point_f32"), Op::Cast { to: DType::F32 }, &[Some(z)])?;
                    ctx.intermediate(&format!("{label}_centered"), Op::Sub, &[Some(qf), Some(zf)])?
                }
            };
            ctx.intermediate(label, Op::Mul, &[Some(centered), Some(scale)])
        }
    }
}

/// The f32 output scale and the quantized dtype of QLinear* outputs (that of `y_zero_point`).
fn output_params(ctx: &mut NodeCtx<'_>, allow_f16: bool) -> Result<(Outlet, Outlet, DType), OnnxError> {
    let to = dtype_in(ctx, 7, "y_zero_point", &INT8)?.ok_or_else(|| ctx.err("the dtype of y_zero_point is unknown"))?;
    for (slot, what) in [(6, "y_scale"), (7, "y_zero_point")] {
        match vector_len(ctx, slot) {
            Ok(Some(1) | None) => {}
            Ok(Some(n)) => return Err(ctx.err(format!("{what} must hold one value (per tensor), found {n}"))),
            Err(rank) => return Err(ctx.err(format!("{what} must hold one value (per tensor), found rank {rank}"))),
        }
    }
    let y_scale = scale_f32(ctx, 6, "y_scale", allow_f16)?;
    let y_zp = ctx.input(7)?;
    Ok((y_scale, y_zp, to))
}

fn qlinear_conv(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    need_opset(ctx, 10)?;
    let attrs = conv_attrs(ctx)?;
    dtype_in(ctx, 0, "x", &INT8)?;
    dtype_in(ctx, 3, "w", &INT8)?;
    zp_dtype(ctx, 0, 2, "x")?;
    zp_dtype(ctx, 3, 5, "w")?;
    if params(ctx, "x", 0, Some(1), Some(2), 1, false)? != Params::PerTensor {
        return Err(ctx.err("x_scale and x_zero_point must hold one value (per tensor)"));
    }
    let wp = params(ctx, "w", 3, Some(4), Some(5), 0, false)?;
    let (y_scale, y_zp, to) = output_params(ctx, false)?;
    let x_scale = scale_f32(ctx, 1, "x_scale", false)?;
    let w_scale = scale_f32(ctx, 4, "w_scale", false)?;
    let (x, x_zp, w, w_zp) = (ctx.input(0)?, ctx.input(2)?, ctx.input(3)?, ctx.input(5)?);
    let xd = dequantize(ctx, "x_dequantized", x, x_scale, Some(x_zp), Params::PerTensor)?;
    let wd = dequantize(ctx, "w_dequantized", w, w_scale, Some(w_zp), wp)?;
    let bias = match ctx.opt_input(8) {
        None => None,
        Some(b) => {
            dtype_in(ctx, 8, "the bias B", &[DType::I32])?;
            if let Some(shape) = ctx.input_type(8).and_then(|t| t.shape.as_ref())
                && shape.rank() != 1
            {
                return Err(ctx.err(format!("the bias B must be 1-D, found shape {shape}")));
            }
            if let (Some(nb), Some(m)) = (dim_of(ctx, 8, 0), dim_of(ctx, 3, 0))
                && nb != m
            {
                return Err(ctx.err(format!("the bias B has {nb} elements for {m} output channels")));
            }
            // int32 with scale x_scale * w_scale and zero point 0 (the ONNX rule).
            let scale = match (ctx.const_input(1), ctx.const_input(4)) {
                (Some(xs), Some(ws)) => {
                    let t = lithe_kernels::reference::eval(&Op::Mul, &[Some(xs), Some(ws)], 1)
                        .ok()
                        .and_then(|mut v| v.pop())
                        .ok_or_else(|| ctx.err("x_scale and w_scale do not multiply"))?;
                    ctx.constant("bias_scale", t)
                }
                _ => ctx.intermediate("bias_scale", Op::Mul, &[Some(x_scale), Some(w_scale)])?,
            };
            let bp = match wp {
                Params::PerAxis { len, .. } => Params::PerAxis { axis: 0, len },
                _ => Params::PerTensor,
            };
            Some(dequantize(ctx, "bias_dequantized", b, scale, None, bp)?)
        }
    };
    let y = ctx.intermediate("conv", Op::Conv(attrs), &[Some(xd), Some(wd), bias])?;
    ctx.emit(Op::QuantizeLinear { axis: 1, to }, &[Some(y), Some(y_scale), Some(y_zp)])
}

fn qlinear_matmul(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    need_opset(ctx, 10)?;
    let allow_f16 = ctx.opset >= 21;
    dtype_in(ctx, 0, "a", &INT8)?;
    dtype_in(ctx, 3, "b", &INT8)?;
    zp_dtype(ctx, 0, 2, "a")?;
    zp_dtype(ctx, 3, 5, "b")?;
    // Per row of a (axis -2), per column of b (axis -1).
    let ap = params(ctx, "a", 0, Some(1), Some(2), -2, true)?;
    let bp = params(ctx, "b", 3, Some(4), Some(5), -1, true)?;
    let (y_scale, y_zp, to) = output_params(ctx, allow_f16)?;
    let a_scale = scale_f32(ctx, 1, "a_scale", allow_f16)?;
    let b_scale = scale_f32(ctx, 4, "b_scale", allow_f16)?;
    let (a, a_zp, b, b_zp) = (ctx.input(0)?, ctx.input(2)?, ctx.input(3)?, ctx.input(5)?);
    let ad = dequantize(ctx, "a_dequantized", a, a_scale, Some(a_zp), ap)?;
    let bd = dequantize(ctx, "b_dequantized", b, b_scale, Some(b_zp), bp)?;
    let y = ctx.intermediate("matmul", Op::MatMul, &[Some(ad), Some(bd)])?;
    ctx.emit(Op::QuantizeLinear { axis: -1, to }, &[Some(y), Some(y_scale), Some(y_zp)])
}

fn conv_integer(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    need_opset(ctx, 10)?;
    let attrs = conv_attrs(ctx)?;
    dtype_in(ctx, 0, "x", &INT8)?;
    dtype_in(ctx, 1, "w", &INT8)?;
    zp_dtype(ctx, 0, 2, "x")?;
    zp_dtype(ctx, 1, 3, "w")?;
    if params(ctx, "x", 0, None, Some(2), 1, false)? != Params::PerTensor {
        return Err(ctx.err("x_zero_point must hold one value (per tensor)"));
    }
    let wp = params(ctx, "w", 1, None, Some(3), 0, false)?;
    let (x, w, x_zp, w_zp) = (ctx.input(0)?, ctx.input(1)?, ctx.opt_input(2), ctx.opt_input(3));
    let xs = unit_scale(ctx, "x_unit_scale", Params::PerTensor)?;
    let ws = unit_scale(ctx, "w_unit_scale", wp)?;
    let xd = dequantize(ctx, "x_dequantized", x, xs, x_zp, Params::PerTensor)?;
    let wd = dequantize(ctx, "w_dequantized", w, ws, w_zp, wp)?;
    let y = ctx.intermediate("conv", Op::Conv(attrs), &[Some(xd), Some(wd)])?;
    ctx.emit(Op::Cast { to: DType::I32 }, &[Some(y)])
}

fn matmul_integer(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    need_opset(ctx, 10)?;
    dtype_in(ctx, 0, "A", &INT8)?;
    dtype_in(ctx, 1, "B", &INT8)?;
    zp_dtype(ctx, 0, 2, "A")?;
    zp_dtype(ctx, 1, 3, "B")?;
    // Per row of A (axis -2), per column of B (axis -1).
    let ap = params(ctx, "A", 0, None, Some(2), -2, true)?;
    let bp = params(ctx, "B", 1, None, Some(3), -1, true)?;
    let (a, b, a_zp, b_zp) = (ctx.input(0)?, ctx.input(1)?, ctx.opt_input(2), ctx.opt_input(3));
    let a_s = unit_scale(ctx, "a_unit_scale", ap)?;
    let b_s = unit_scale(ctx, "b_unit_scale", bp)?;
    let ad = dequantize(ctx, "a_dequantized", a, a_s, a_zp, ap)?;
    let bd = dequantize(ctx, "b_dequantized", b, b_s, b_zp, bp)?;
    let y = ctx.intermediate("matmul", Op::MatMul, &[Some(ad), Some(bd)])?;
    ctx.emit(Op::Cast { to: DType::I32 }, &[Some(y)])
}

fn dynamic_quantize_linear(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    need_opset(ctx, 11)?;
    dtype_in(ctx, 0, "x", &[DType::F32])?;
    let x = ctx.input(0)?;
    ctx.emit_n(Op::DynamicQuantizeLinear, &[Some(x)], 3)
}
