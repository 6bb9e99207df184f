//! One IR node to ONNX nodes: the one-to-one operators with their attributes, and the few
//! whose IR form differs from the exported opset's (Softmax `coerce_2d`, QuantizeLinear
//! without a zero point, Split without sizes). Fused forms are in [`super::fused`].

use super::attrs::{self, push_usizes};
use super::{NodeCx, Writer, fused, qconv};
use crate::OnnxError;
use crate::proto::AttributeProto;
use lithe_ir::op::{ConvAttrs, PoolAttrs, ReduceAttrs, SoftmaxAttrs};
use lithe_ir::{DType, NodeId, Op, Tensor};

/// Export the (non-Input, non-Const) node `id`.
pub(super) fn export_node(w: &mut Writer<'_>, id: NodeId) -> Result<(), OnnxError> {
    let mut cx = NodeCx::new(w, id);
    let node = cx.node;
    if node.outputs.is_empty() {
        return Err(cx.err("has no outputs"));
    }
    match &node.op {
        Op::Conv(a) if !a.epilogue.is_empty() => fused::conv(&mut cx, a),
        Op::FullyConnected(a) => fused::fully_connected(&mut cx, a),
        Op::QConv(a) => qconv::qconv(&mut cx, a),
        Op::QAdd => qconv::qadd(&mut cx),
        Op::QGlobalAveragePool => qconv::qglobal_average_pool(&mut cx),
        Op::Softmax(a) => softmax(&mut cx, a),
        Op::QuantizeLinear { axis, to } => quantize_linear(&mut cx, *axis, *to),
        Op::Split { axis, num_outputs } => split(&mut cx, *axis, *num_outputs),
        op => match standard(op) {
            Some(Standard { max_inputs, attrs }) => {
                cx.at_most(max_inputs)?;
                let inputs = cx.inputs().to_vec();
                let outputs = cx.outputs.clone();
                cx.push("", op.name(), &inputs, outputs, attrs);
                Ok(())
            }
            None => Err(OnnxError::UnsupportedExport { node: node.name.clone(), op: op.name().to_string() }),
        },
    }
}

/// An op exported as the ONNX operator of the same name, inputs and outputs unchanged.
struct Standard {
    /// Input slots ONNX defines for it.
    max_inputs: usize,
    /// Its attributes.
    attrs: Vec<AttributeProto>,
}

fn std_op(max_inputs: usize, attrs: Vec<AttributeProto>) -> Option<Standard> {
    Some(Standard { max_inputs, attrs })
}

/// The one-to-one ops; `None` for an op the exporter does not know.
fn standard(op: &Op) -> Option<Standard> {
    match op {
        Op::Conv(a) => std_op(3, conv_attrs(a)),
        Op::ConvTranspose(a) if a.conv.epilogue.is_empty() => {
            let mut v = conv_attrs(&a.conv);
            push_usizes(&mut v, "output_padding", &a.output_padding);
            if let Some(s) = &a.output_shape {
                v.push(attrs::usizes("output_shape", s));
            }
            std_op(3, v)
        }
        Op::BatchNormalization { epsilon } => std_op(5, vec![attrs::float("epsilon", *epsilon)]),
        Op::Relu | Op::Sigmoid | Op::HardSwish | Op::Tanh => std_op(1, vec![]),
        Op::Clip => std_op(3, vec![]),
        Op::LeakyRelu { alpha } => std_op(1, vec![attrs::float("alpha", *alpha)]),
        Op::PRelu => std_op(2, vec![]),
        Op::HardSigmoid { alpha, beta } => std_op(1, vec![attrs::float("alpha", *alpha), attrs::float("beta", *beta)]),
        Op::Gemm(g) => std_op(
            3,
            vec![
                attrs::float("alpha", g.alpha),
                attrs::float("beta", g.beta),
                attrs::flag("transA", g.trans_a),
                attrs::flag("transB", g.trans_b),
            ],
        ),
        Op::MatMul | Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Equal => std_op(2, vec![]),
        Op::Sqrt | Op::Erf | Op::Exp | Op::Log | Op::Neg | Op::Abs | Op::Identity => std_op(1, vec![]),
        Op::GlobalAveragePool | Op::GlobalMaxPool => std_op(1, vec![]),
        Op::MaxPool(p) => std_op(1, pool_attrs(p)),
        Op::AveragePool(a) => {
            let mut v = pool_attrs(&a.pool);
            v.push(attrs::flag("count_include_pad", a.count_include_pad));
            std_op(1, v)
        }
        Op::Concat { axis } => std_op(usize::MAX, vec![attrs::int("axis", *axis)]),
        Op::Min | Op::Max => std_op(usize::MAX, vec![]),
        Op::Reshape { allowzero } => std_op(2, if *allowzero { vec![attrs::flag("allowzero", true)] } else { vec![] }),
        Op::Flatten { axis } => std_op(1, vec![attrs::int("axis", *axis)]),
        Op::Transpose { perm } => {
            std_op(1, perm.as_deref().map(|p| vec![attrs::usizes("perm", p)]).unwrap_or_default())
        }
        Op::Squeeze | Op::Unsqueeze | Op::Expand => std_op(2, vec![]),
        Op::Pad { mode } => std_op(4, vec![attrs::string("mode", attrs::pad_mode(*mode))]),
        Op::Resize(r) => std_op(
            4,
            vec![
                attrs::string("mode", attrs::resize_mode(r.mode)),
                attrs::string("coordinate_transformation_mode", attrs::coord_transform(r.coord)),
                attrs::string("nearest_mode", attrs::nearest_mode(r.nearest)),
                attrs::float("cubic_coeff_a", r.cubic_coeff_a),
                attrs::float("extrapolation_value", r.extrapolation_value),
                attrs::flag("exclude_outside", r.exclude_outside),
            ],
        ),
        Op::Slice => std_op(5, vec![]),
        Op::Gather { axis } => std_op(2, vec![attrs::int("axis", *axis)]),
        Op::Shape { start, end } => {
            let mut v = Vec::new();
            if *start != 0 {
                v.push(attrs::int("start", *start));
            }
            if let Some(e) = end {
                v.push(attrs::int("end", *e));
            }
            std_op(1, v)
        }
        Op::Dropout => std_op(3, vec![]),
        Op::ReduceMean(r) | Op::ReduceSum(r) | Op::ReduceMax(r) => std_op(2, reduce_attrs(r)),
        Op::ArgMax(a) => std_op(
            1,
            vec![
                attrs::int("axis", a.axis),
                attrs::flag("keepdims", a.keepdims),
                attrs::flag("select_last_index", a.select_last_index),
            ],
        ),
        Op::Cast { to } => std_op(1, vec![attrs::int("to", i64::from(super::tensor::dtype_code(*to)))]),
        Op::LayerNormalization { axis, epsilon } => {
            std_op(3, vec![attrs::int("axis", *axis), attrs::float("epsilon", *epsilon)])
        }
        Op::ConstantOfShape { value } => {
            // ONNX wants a one-element 1-D tensor.
            let v = value.reshaped(&[value.len()]).unwrap_or_else(|_| value.clone());
            std_op(1, vec![attrs::tensor("value", super::tensor::tensor_proto("value", &v))])
        }
        Op::Range | Op::Where => std_op(3, vec![]),
        Op::DequantizeLinear { axis } => std_op(3, vec![attrs::int("axis", *axis)]),
        Op::DynamicQuantizeLinear => std_op(1, vec![]),
        // Input and Const are written by the caller; ops added to the IR after this exporter
        // land here and are reported as unsupported until they get an export rule.
        _ => None,
    }
}

pub(super) fn conv_attrs(a: &ConvAttrs) -> Vec<AttributeProto> {
    let mut v = Vec::new();
    if let Some(k) = &a.kernel_shape {
        v.push(attrs::usizes("kernel_shape", k));
    }
    push_usizes(&mut v, "strides", &a.strides);
    push_usizes(&mut v, "dilations", &a.dilations);
    push_usizes(&mut v, "pads", &a.pads);
    if let Some(p) = attrs::auto_pad(a.auto_pad) {
        v.push(attrs::string("auto_pad", p));
    }
    v.push(attrs::int("group", a.group as i64));
    v
}

fn pool_attrs(p: &PoolAttrs) -> Vec<AttributeProto> {
    let mut v = vec![attrs::usizes("kernel_shape", &p.kernel_shape)];
    push_usizes(&mut v, "strides", &p.strides);
    push_usizes(&mut v, "dilations", &p.dilations);
    push_usizes(&mut v, "pads", &p.pads);
    if let Some(a) = attrs::auto_pad(p.auto_pad) {
        v.push(attrs::string("auto_pad", a));
    }
    if p.ceil_mode {
        v.push(attrs::flag("ceil_mode", true));
    }
    v
}

fn reduce_attrs(r: &ReduceAttrs) -> Vec<AttributeProto> {
    vec![attrs::flag("keepdims", r.keepdims), attrs::flag("noop_with_empty_axes", r.noop_with_empty_axes)]
}

/// Softmax; the opset<13 form (`coerce_2d`: normalize over every axis from `axis` on) becomes
/// `Flatten(axis) -> Softmax(axis=1) -> Reshape(Shape(x))` unless `axis` is the last axis.
fn softmax(cx: &mut NodeCx<'_, '_>, a: &SoftmaxAttrs) -> Result<(), OnnxError> {
    cx.at_most(1)?;
    let x = cx.req(0, "input")?;
    let y = cx.single_output()?;
    let rank = cx.input_type(0).and_then(|t| t.shape.as_ref()).map(|s| s.rank());
    let last = rank.is_some_and(|r| r > 0 && (a.axis == -1 || a.axis == r as i64 - 1));
    if !a.coerce_2d || last {
        let axis = if a.coerce_2d { -1 } else { a.axis };
        cx.push("", "Softmax", &[Some(x)], vec![y], vec![attrs::int("axis", axis)]);
        return Ok(());
    }
    let shape = cx.fresh_value(&y, "shape");
    let flat = cx.fresh_value(&y, "flat");
    let soft = cx.fresh_value(&y, "softmax2d");
    cx.push("shape", "Shape", &[Some(x.clone())], vec![shape.clone()], vec![]);
    cx.push("flatten", "Flatten", &[Some(x)], vec![flat.clone()], vec![attrs::int("axis", a.axis)]);
    cx.push("softmax", "Softmax", &[Some(flat)], vec![soft.clone()], vec![attrs::int("axis", 1)]);
    cx.push("", "Reshape", &[Some(soft), Some(shape)], vec![y], vec![]);
    Ok(())
}

/// QuantizeLinear. Without a zero point ONNX quantizes to u8, so a zero point of the target
/// dtype is added for i8 and i16 (or, when the scale's shape is unknown, `output_dtype`).
fn quantize_linear(cx: &mut NodeCx<'_, '_>, axis: i64, to: DType) -> Result<(), OnnxError> {
    if !matches!(to, DType::U8 | DType::I8 | DType::I16) {
        return Err(cx.err(format!("quantizing to {to} has no ONNX form (u8, i8 and i16 do)")));
    }
    cx.at_most(3)?;
    let (x, scale) = (cx.req(0, "x")?, cx.req(1, "y_scale")?);
    let y = cx.single_output()?;
    let mut a = vec![attrs::int("axis", axis)];
    let zero_point = match cx.opt(2) {
        Some(z) => Some(z),
        None if to == DType::U8 => None,
        None => {
            let dims = cx
                .const_input(1)
                .map(|s| s.shape().to_vec())
                .or_else(|| cx.input_type(1).and_then(|t| t.shape.as_ref()).and_then(|s| s.as_known()));
            match dims {
                Some(d) => Some(cx.initializer("zero_point", &Tensor::zeros(to, &d))),
                None => {
                    a.push(attrs::int("output_dtype", i64::from(super::tensor::dtype_code(to))));
                    None
                }
            }
        }
    };
    cx.push("", "QuantizeLinear", &[Some(x), Some(scale), zero_point], vec![y], a);
    Ok(())
}

/// Split: with a sizes input as is, without one with `num_outputs` (opset 18).
fn split(cx: &mut NodeCx<'_, '_>, axis: i64, num_outputs: usize) -> Result<(), OnnxError> {
    cx.at_most(2)?;
    if cx.outputs.len() != num_outputs {
        return Err(cx.err(format!("has {} outputs but num_outputs is {num_outputs}", cx.outputs.len())));
    }
    let mut a = vec![attrs::int("axis", axis)];
    if cx.opt(1).is_none() {
        a.push(attrs::int("num_outputs", num_outputs as i64));
    }
    let inputs = cx.inputs().to_vec();
    let outputs = cx.outputs.clone();
    cx.push("", "Split", &inputs, outputs, a);
    Ok(())
}
