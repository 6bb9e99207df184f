//! The `fuse_qdq_conv` pass: a 2-D Conv that reads `DequantizeLinear` of a u8 activation and
//! of constant s8 weights becomes one [`Op::QConv`] run by the int8 kernels.
//!
//! Matched: `Conv(DequantizeLinear(x: u8, x_scale, x_zp), DequantizeLinear(W: const s8,
//! w_scale per tensor or per output channel, zero point 0), B?)` with any fused epilogue but
//! PRelu. The bias may be f32 or `DequantizeLinear` of a constant int32 (onnxruntime's QDQ
//! form), folded to f32. The QConv's output is f32; when every reader of it is a
//! `QuantizeLinear` to u8 with the same constant scalar scale and zero point, the QConv
//! requantizes itself and those readers go away (the output keeps the quantized value's name).
//! A requantizing QConv without a residual then takes its bias as int32 at scale
//! `x_scale·w_scale` and requantizes with integer arithmetic, as onnxruntime does with the same
//! QDQ model (it quantizes float biases the same way before fusing `QLinearConv`), so both
//! engines give the same bytes.
//!
//! A `FullyConnected` on a 2-D `DequantizeLinear(u8)` input with `DequantizeLinear` of a
//! constant s8 `K x N` weight (per tensor or per output column) becomes the same QConv as a
//! 1x1 convolution between two reshapes (`[B, K] -> [B, K, 1, 1]`, `[B, N, 1, 1] -> [B, N]`).
//!
//! Rounding differs from the QDQ graph only in where f32 products are rounded: the QDQ graph
//! sums dequantized products in f32, the QConv sums exact integers and scales once, so results
//! agree to f32 rounding and a requantized output to within one step where a value sits on a
//! rounding boundary.

use crate::util::{absorb, common_u8_quantize, input_at, replace_readers};
use crate::{Pass, PassError};
use lithe_ir::op::{Activation, QConvAttrs};
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Outlet, Tensor};
use lithe_kernels::reference::quantize::dequantize_linear;

/// The constant at `o`, if any.
fn constant(g: &Graph, o: Option<Outlet>) -> Option<&Tensor> {
    g.const_value(o?)
}

/// A `DequantizeLinear` node producing `o`: its (q, scale, zero point?) inputs and axis.
fn dequantize_of(g: &Graph, o: Outlet) -> Option<(Outlet, Outlet, Option<Outlet>, i64)> {
    let Op::DequantizeLinear { axis } = g.get_node(o.node)?.op else { return None };
    let q = input_at(g, o.node, 0)?;
    let s = input_at(g, o.node, 1)?;
    Some((q, s, input_at(g, o.node, 2), axis))
}

/// True when `t` holds exactly one value.
fn is_single(t: &Tensor) -> bool {
    t.shape().iter().product::<usize>() == 1
}

/// True when the zero point at `o` is absent or a constant of zeros.
fn zero_or_absent(g: &Graph, o: Option<Outlet>) -> bool {
    match o {
        None => true,
        Some(o) => constant(g, Some(o)).is_some_and(|t| t.to_f32_vec().iter().all(|&v| v == 0.0)),
    }
}

/// The parts of a matched conv.
struct Matched {
    x: Outlet,
    x_scale: Outlet,
    x_zero_point: Option<Outlet>,
    w: Outlet,
    w_scale: Outlet,
    bias: Option<Bias>,
}

/// The conv's bias: an f32 value, or a constant int32 `DequantizeLinear` to fold.
enum Bias {
    F32(Outlet),
    Folded(Tensor),
}

/// The activation input: `DequantizeLinear` of a u8 value with constant scalar parameters.
fn match_activation(g: &Graph, o: Outlet) -> Option<(Outlet, Outlet, Option<Outlet>)> {
    let (x, s, z, _) = dequantize_of(g, o)?;
    if g.value(x).ty.dtype != DType::U8 || !constant(g, Some(s)).is_some_and(is_single) {
        return None;
    }
    if let Some(z) = z
        && !constant(g, Some(z)).is_some_and(is_single)
    {
        return None;
    }
    Some((x, s, z))
}

/// The weight input: `DequantizeLinear` of a constant s8 tensor of rank `rank`, zero point 0,
/// one scale or one per output channel (axis `channel_axis`).
fn match_weight(g: &Graph, o: Outlet, rank: usize, channel_axis: usize) -> Option<(Outlet, Outlet)> {
    let (w, s, z, axis) = dequantize_of(g, o)?;
    let wt = constant(g, Some(w))?;
    let st = constant(g, Some(s))?;
    if wt.dtype() != DType::I8 || wt.shape().len() != rank || st.dtype() != DType::F32 || !zero_or_absent(g, z) {
        return None;
    }
    let per_channel = st.shape().len() == 1 && st.shape()[0] == wt.shape()[channel_axis] && !is_single(st);
    let on_axis = axis == channel_axis as i64 || axis == channel_axis as i64 - rank as i64;
    (is_single(st) || (per_channel && on_axis)).then_some((w, s))
}

impl Matched {
    /// The x zero point (a u8 zero constant when absent) and the f32 bias (a constant when
    /// folded), added to `g` under `name`.
    fn zero_point_and_bias(&self, g: &mut Graph, name: &str) -> (Outlet, Option<Outlet>) {
        let x_zero_point = match self.x_zero_point {
            Some(z) => z,
            None => g.add_const(format!("{name}.x_zero_point"), Tensor::scalar(0u8)),
        };
        let bias = match &self.bias {
            None => None,
            Some(Bias::F32(o)) => Some(*o),
            Some(Bias::Folded(t)) => Some(g.add_const(format!("{name}.bias"), t.clone())),
        };
        (x_zero_point, bias)
    }
}

/// The bias input: absent, f32, or a constant int32 `DequantizeLinear` (folded here).
fn match_bias(g: &Graph, o: Option<Outlet>) -> Option<Option<Bias>> {
    let Some(o) = o else { return Some(None) };
    if g.value(o).ty.dtype != DType::F32 {
        return None;
    }
    if let Some((q, s, z, axis)) = dequantize_of(g, o)
        && let (Some(qt), Some(st)) = (constant(g, Some(q)), constant(g, Some(s)))
        && qt.dtype() == DType::I32
    {
        let zt = constant(g, z);
        if z.is_some() && zt.is_none() {
            return Some(Some(Bias::F32(o)));
        }
        return dequantize_linear(qt, st, zt, axis).ok().map(|t| Some(Bias::Folded(t)));
    }
    Some(Some(Bias::F32(o)))
}

fn matched(g: &Graph, conv: NodeId) -> Option<Matched> {
    let node = g.get_node(conv)?;
    let Op::Conv(c) = &node.op else { return None };
    if matches!(c.epilogue.activation, Activation::PRelu) || node.outputs.len() != 1 {
        return None;
    }
    let out = &g.value(Outlet::new(conv, 0)).ty;
    if out.dtype != DType::F32 || out.shape.as_ref().is_none_or(|s| s.rank() != 4) {
        return None;
    }
    let (x, x_scale, x_zero_point) = match_activation(g, input_at(g, conv, 0)?)?;
    let (w, w_scale) = match_weight(g, input_at(g, conv, 1)?, 4, 0)?;
    let bias = match_bias(g, input_at(g, conv, 2))?;
    Some(Matched { x, x_scale, x_zero_point, w, w_scale, bias })
}

/// A FullyConnected on a 2-D dequantized u8 input with a dequantized s8 `K x N` weight.
fn matched_fc(g: &Graph, fc: NodeId) -> Option<(Matched, Activation)> {
    let node = g.get_node(fc)?;
    let Op::FullyConnected(a) = &node.op else { return None };
    if matches!(a.activation, Activation::PRelu) || node.outputs.len() != 1 || node.num_inputs > 3 {
        return None;
    }
    let x = input_at(g, fc, 0)?;
    if g.value(x).ty.shape.as_ref().is_none_or(|s| s.rank() != 2) {
        return None;
    }
    let (x, x_scale, x_zero_point) = match_activation(g, x)?;
    let (w, w_scale) = match_weight(g, input_at(g, fc, 1)?, 2, 1)?;
    let bias = match_bias(g, input_at(g, fc, 2))?;
    Some((Matched { x, x_scale, x_zero_point, w, w_scale, bias }, a.activation))
}

/// The `fuse_qdq_conv` pass (see the module documentation).
#[derive(Debug, Default)]
pub struct FuseQdqConv;

impl FuseQdqConv {
    fn try_fuse(g: &mut Graph, id: NodeId) -> Result<bool, IrError> {
        // A QConv fused in an earlier round may have gained a QuantizeLinear reader since
        // (another pass moved it next to the conv).
        if let Some(Op::QConv(a)) = g.get_node(id).map(|n| &n.op)
            && a.to == DType::F32
        {
            return requantize_in_place(g, Outlet::new(id, 0));
        }
        if Self::try_fuse_conv(g, id)? {
            return Ok(true);
        }
        Self::try_fuse_fc(g, id)
    }

    /// A FullyConnected as `Reshape -> 1x1 QConv -> Reshape`.
    fn try_fuse_fc(g: &mut Graph, fc: NodeId) -> Result<bool, IrError> {
        let Some((m, activation)) = matched_fc(g, fc) else { return Ok(false) };
        let Some(wt) = constant(g, Some(m.w)) else { return Ok(false) };
        let Ok(wv) = wt.expect_view::<i8>("weight") else { return Ok(false) };
        let &[k, n] = wt.shape() else { return Ok(false) };
        // `K x N` to `[N, K, 1, 1]`.
        let mut transposed = vec![0i8; k * n];
        for ((r, c), &v) in wv.indexed_iter().map(|(ix, v)| ((ix[0], ix[1]), v)) {
            transposed[c * k + r] = v;
        }
        let name = g.node(fc).name.clone();
        let w = g.add_const(format!("{name}.weight_nk11"), Tensor::from_vec(&[n, k, 1, 1], transposed)?);
        let (x_zero_point, bias) = m.zero_point_and_bias(g, &name);
        let to_nchw = g.add_const(format!("{name}.shape_in"), Tensor::from_vec(&[4], vec![0i64, k as i64, 1, 1])?);
        let x4 = g.add_node_inferred(
            format!("{name}.to_nchw"),
            Op::Reshape { allowzero: false },
            &[Some(m.x), Some(to_nchw)],
            1,
        )?[0];
        let mut conv = lithe_ir::op::ConvAttrs::default();
        conv.epilogue.activation = activation;
        let inputs = [Some(x4), Some(m.x_scale), Some(x_zero_point), Some(w), Some(m.w_scale), bias];
        let q =
            g.add_node_inferred(format!("{name}.int8"), Op::QConv(QConvAttrs { conv, to: DType::F32 }), &inputs, 1)?[0];
        let to_2d = g.add_const(format!("{name}.shape_out"), Tensor::from_vec(&[2], vec![0i64, n as i64])?);
        let y =
            g.add_node_inferred(format!("{name}.to_2d"), Op::Reshape { allowzero: false }, &[Some(q), Some(to_2d)], 1)?
                [0];
        absorb(g, y, Outlet::new(fc, 0))?;
        g.remove_node(fc);
        tracing::debug!(fc = %name, "FullyConnected on dequantized int8 operands became a 1x1 QConv");
        Ok(true)
    }

    fn try_fuse_conv(g: &mut Graph, conv: NodeId) -> Result<bool, IrError> {
        let Some(m) = matched(g, conv) else { return Ok(false) };
        let Op::Conv(attrs) = g.node(conv).op.clone() else { return Ok(false) };
        let name = g.node(conv).name.clone();
        let (x_zero_point, bias) = m.zero_point_and_bias(g, &name);
        let residual = if attrs.epilogue.residual { input_at(g, conv, 3) } else { None };
        let inputs = [Some(m.x), Some(m.x_scale), Some(x_zero_point), Some(m.w), Some(m.w_scale), bias, residual];
        let q = g.add_node_inferred(
            format!("{name}.int8"),
            Op::QConv(QConvAttrs { conv: attrs, to: DType::F32 }),
            &inputs,
            1,
        )?[0];
        absorb(g, q, Outlet::new(conv, 0))?;
        g.remove_node(conv);
        g.node_mut(q.node).name = name.clone();
        requantize_in_place(g, q)?;
        tracing::debug!(conv = %name, "Conv on dequantized int8 operands became QConv");
        Ok(true)
    }
}

/// Make the f32 QConv at `q` write u8 when every reader is the same `QuantizeLinear` to u8;
/// true when it did.
fn requantize_in_place(g: &mut Graph, q: Outlet) -> Result<bool, IrError> {
    let Some((s, z, readers)) = common_u8_quantize(g, q) else { return Ok(false) };
    g.set_input(q.node, 7, Some(s))?;
    g.set_input(q.node, 8, Some(z))?;
    if let Op::QConv(a) = &mut g.node_mut(q.node).op {
        a.to = DType::U8;
    }
    g.value_mut(q).ty.dtype = DType::U8;
    replace_readers(g, q, readers)?;
    integer_bias(g, q.node)?;
    Ok(true)
}

/// Give the u8 QConv `id` an int32 bias, `round_half_even(B[m] / (x_scale·w_scale[m]))` (zeros
/// without a bias): the bias quantization onnxruntime applies before its `QLinearConv`, so the
/// QConv requantizes with integer arithmetic as it does (see [`Op::QConv`]). Left as it is
/// with a residual, an activation other than Relu/Clip, parameters that are not constants, or
/// a quotient that is not finite or does not fit in i32.
fn integer_bias(g: &mut Graph, id: NodeId) -> Result<bool, IrError> {
    let Some(Op::QConv(a)) = g.get_node(id).map(|n| &n.op) else { return Ok(false) };
    let e = a.conv.epilogue;
    if a.to != DType::U8
        || e.residual
        || !matches!(e.activation, Activation::None | Activation::Relu | Activation::Clip { .. })
        || input_at(g, id, 6).is_some()
    {
        return Ok(false);
    }
    let scalar = |slot: usize| constant(g, input_at(g, id, slot)).filter(|t| is_single(t)).map(|t| t.to_f32_vec()[0]);
    let (Some(x_scale), Some(w), Some(w_scale)) =
        (scalar(1), constant(g, input_at(g, id, 3)), constant(g, input_at(g, id, 4)))
    else {
        return Ok(false);
    };
    let m = w.shape().first().copied().unwrap_or(0);
    if w_scale.dtype() != DType::F32 {
        return Ok(false);
    }
    let w_scale = w_scale.to_f32_vec();
    if w_scale.len() != 1 && w_scale.len() != m {
        return Ok(false);
    }
    let bias = match input_at(g, id, 5) {
        None => vec![0.0f32; m],
        Some(o) => match constant(g, Some(o)) {
            Some(t) if t.dtype() == DType::F32 && t.shape().iter().product::<usize>() == m => t.to_f32_vec(),
            _ => return Ok(false),
        },
    };
    let mut q = Vec::with_capacity(m);
    for (i, &b) in bias.iter().enumerate() {
        let scale = x_scale * w_scale[if w_scale.len() == 1 { 0 } else { i }];
        let v = (b / scale).round_ties_even();
        if !(scale > 0.0 && scale.is_finite() && v.is_finite() && (i32::MIN as f32..i32::MAX as f32).contains(&v)) {
            return Ok(false);
        }
        q.push(v as i32);
    }
    let name = g.node(id).name.clone();
    let b = g.add_const(format!("{name}.bias_i32"), Tensor::from_vec(&[m], q)?);
    g.set_input(id, 5, Some(b))?;
    Ok(true)
}

impl Pass for FuseQdqConv {
    fn name(&self) -> &'static str {
        "fuse_qdq_conv"
    }
    fn description(&self) -> &'static str {
        "turn Conv on DequantizeLinear of u8 activations and s8 weights into an int8 QConv (requantizing when only QuantizeLinear reads it)"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, FuseQdqConv::try_fuse)
    }
}
