//! Protobuf operator messages back to [`lithe_ir::Op`], rejecting unknown enum values.

use crate::pb::op::Kind;
use crate::tensor_map::{WeightsView, dtype_from_pb, tensor_from_pb, to_usize, to_usizes};
use crate::{NbError, pb};
use lithe_ir::Op;
use lithe_ir::op::{
    Activation, ArgAttrs, AutoPad, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, CoordTransform, Epilogue, FcAttrs,
    GemmAttrs, NearestMode, PadMode, PoolAttrs, QConvAttrs, ReduceAttrs, ResizeAttrs, ResizeMode, SoftmaxAttrs,
};

/// Where an op is, for error messages.
type Ctx<'c> = &'c dyn Fn() -> String;

fn unknown_enum(ctx: Ctx, field: &'static str, value: i32) -> NbError {
    NbError::InvalidField {
        context: ctx(),
        field,
        detail: format!("unknown value {value} (written by a newer lithe?)"),
    }
}

fn missing(ctx: Ctx, field: &'static str) -> NbError {
    NbError::MissingField { context: ctx(), field }
}

fn auto_pad(v: i32, ctx: Ctx) -> Result<AutoPad, NbError> {
    Ok(match pb::AutoPad::try_from(v).map_err(|_| unknown_enum(ctx, "auto_pad", v))? {
        pb::AutoPad::NotSet => AutoPad::NotSet,
        pb::AutoPad::Valid => AutoPad::Valid,
        pb::AutoPad::SameUpper => AutoPad::SameUpper,
        pb::AutoPad::SameLower => AutoPad::SameLower,
    })
}

/// The activation of a protobuf activation; an absent message is no activation.
fn activation(a: Option<&pb::Activation>, ctx: Ctx) -> Result<Activation, NbError> {
    use pb::activation::Kind as A;
    let Some(a) = a else { return Ok(Activation::None) };
    Ok(match &a.kind {
        None => {
            return Err(NbError::InvalidField {
                context: ctx(),
                field: "activation",
                detail: "unknown activation (written by a newer lithe?)".into(),
            });
        }
        Some(A::None(_)) => Activation::None,
        Some(A::Relu(_)) => Activation::Relu,
        Some(A::Clip(c)) => Activation::Clip { min: c.min, max: c.max },
        Some(A::LeakyRelu(l)) => Activation::LeakyRelu { alpha: l.alpha },
        Some(A::Prelu(_)) => Activation::PRelu,
        Some(A::HardSwish(_)) => Activation::HardSwish,
        Some(A::HardSigmoid(h)) => Activation::HardSigmoid { alpha: h.alpha, beta: h.beta },
        Some(A::Sigmoid(_)) => Activation::Sigmoid,
        Some(A::Tanh(_)) => Activation::Tanh,
    })
}

fn conv(c: &pb::ConvAttrs, ctx: Ctx) -> Result<ConvAttrs, NbError> {
    let epilogue = match &c.epilogue {
        None => Epilogue::default(),
        Some(e) => Epilogue { residual: e.residual, activation: activation(e.activation.as_ref(), ctx)? },
    };
    Ok(ConvAttrs {
        kernel_shape: c.kernel_shape.as_ref().map(|k| to_usizes(&k.values, ctx, "kernel_shape")).transpose()?,
        strides: to_usizes(&c.strides, ctx, "strides")?,
        dilations: to_usizes(&c.dilations, ctx, "dilations")?,
        pads: to_usizes(&c.pads, ctx, "pads")?,
        auto_pad: auto_pad(c.auto_pad, ctx)?,
        group: to_usize(c.group, ctx, "group")?,
        epilogue,
    })
}

fn pool(p: &pb::PoolAttrs, ctx: Ctx) -> Result<PoolAttrs, NbError> {
    Ok(PoolAttrs {
        kernel_shape: to_usizes(&p.kernel_shape, ctx, "kernel_shape")?,
        strides: to_usizes(&p.strides, ctx, "strides")?,
        dilations: to_usizes(&p.dilations, ctx, "dilations")?,
        pads: to_usizes(&p.pads, ctx, "pads")?,
        auto_pad: auto_pad(p.auto_pad, ctx)?,
        ceil_mode: p.ceil_mode,
    })
}

fn reduce(r: &pb::ReduceAttrs) -> ReduceAttrs {
    ReduceAttrs { keepdims: r.keepdims, noop_with_empty_axes: r.noop_with_empty_axes }
}

fn pad_mode(v: i32, ctx: Ctx) -> Result<PadMode, NbError> {
    Ok(match pb::PadMode::try_from(v).map_err(|_| unknown_enum(ctx, "mode", v))? {
        pb::PadMode::Constant => PadMode::Constant,
        pb::PadMode::Reflect => PadMode::Reflect,
        pb::PadMode::Edge => PadMode::Edge,
        pb::PadMode::Wrap => PadMode::Wrap,
    })
}

fn resize(r: &pb::ResizeAttrs, ctx: Ctx) -> Result<ResizeAttrs, NbError> {
    let mode = match pb::ResizeMode::try_from(r.mode).map_err(|_| unknown_enum(ctx, "mode", r.mode))? {
        pb::ResizeMode::Nearest => ResizeMode::Nearest,
        pb::ResizeMode::Linear => ResizeMode::Linear,
        pb::ResizeMode::Cubic => ResizeMode::Cubic,
    };
    let coord = match pb::CoordTransform::try_from(r.coord).map_err(|_| unknown_enum(ctx, "coord", r.coord))? {
        pb::CoordTransform::HalfPixel => CoordTransform::HalfPixel,
        pb::CoordTransform::PytorchHalfPixel => CoordTransform::PytorchHalfPixel,
        pb::CoordTransform::AlignCorners => CoordTransform::AlignCorners,
        pb::CoordTransform::Asymmetric => CoordTransform::Asymmetric,
        pb::CoordTransform::TfCropAndResize => CoordTransform::TfCropAndResize,
        pb::CoordTransform::HalfPixelSymmetric => CoordTransform::HalfPixelSymmetric,
    };
    let nearest = match pb::NearestMode::try_from(r.nearest).map_err(|_| unknown_enum(ctx, "nearest", r.nearest))? {
        pb::NearestMode::RoundPreferFloor => NearestMode::RoundPreferFloor,
        pb::NearestMode::RoundPreferCeil => NearestMode::RoundPreferCeil,
        pb::NearestMode::Floor => NearestMode::Floor,
        pb::NearestMode::Ceil => NearestMode::Ceil,
    };
    Ok(ResizeAttrs {
        mode,
        coord,
        nearest,
        cubic_coeff_a: r.cubic_coeff_a,
        extrapolation_value: r.extrapolation_value,
        exclude_outside: r.exclude_outside,
    })
}

/// The operator of a protobuf op; tensors are read through `weights`.
pub fn op_from_pb(op: Option<&pb::Op>, weights: &WeightsView<'_>, ctx: Ctx) -> Result<Op, NbError> {
    let op = op.ok_or_else(|| missing(ctx, "op"))?;
    let kind = op.kind.as_ref().ok_or_else(|| NbError::UnknownOp { context: ctx() })?;
    Ok(match kind {
        Kind::Input(_) => Op::Input,
        Kind::Const(t) => Op::Const(tensor_from_pb(t, weights, ctx)?),
        Kind::Conv(c) => Op::Conv(conv(c, ctx)?),
        Kind::ConvTranspose(c) => Op::ConvTranspose(ConvTransposeAttrs {
            conv: conv(c.conv.as_ref().ok_or_else(|| missing(ctx, "conv"))?, ctx)?,
            output_padding: to_usizes(&c.output_padding, ctx, "output_padding")?,
            output_shape: c.output_shape.as_ref().map(|s| to_usizes(&s.values, ctx, "output_shape")).transpose()?,
        }),
        Kind::BatchNormalization(b) => Op::BatchNormalization { epsilon: b.epsilon },
        Kind::Relu(_) => Op::Relu,
        Kind::Clip(_) => Op::Clip,
        Kind::LeakyRelu(l) => Op::LeakyRelu { alpha: l.alpha },
        Kind::Prelu(_) => Op::PRelu,
        Kind::Sigmoid(_) => Op::Sigmoid,
        Kind::HardSigmoid(h) => Op::HardSigmoid { alpha: h.alpha, beta: h.beta },
        Kind::HardSwish(_) => Op::HardSwish,
        Kind::Tanh(_) => Op::Tanh,
        Kind::Softmax(s) => Op::Softmax(SoftmaxAttrs { axis: s.axis, coerce_2d: s.coerce_2d }),
        Kind::Gemm(g) => Op::Gemm(GemmAttrs { alpha: g.alpha, beta: g.beta, trans_a: g.trans_a, trans_b: g.trans_b }),
        Kind::MatMul(_) => Op::MatMul,
        Kind::FullyConnected(f) => Op::FullyConnected(FcAttrs { activation: activation(f.activation.as_ref(), ctx)? }),
        Kind::Add(_) => Op::Add,
        Kind::Sub(_) => Op::Sub,
        Kind::Mul(_) => Op::Mul,
        Kind::Div(_) => Op::Div,
        Kind::Pow(_) => Op::Pow,
        Kind::Sqrt(_) => Op::Sqrt,
        Kind::MaxPool(p) => Op::MaxPool(pool(p, ctx)?),
        Kind::AveragePool(a) => Op::AveragePool(AvgPoolAttrs {
            pool: pool(a.pool.as_ref().ok_or_else(|| missing(ctx, "pool"))?, ctx)?,
            count_include_pad: a.count_include_pad,
        }),
        Kind::GlobalAveragePool(_) => Op::GlobalAveragePool,
        Kind::GlobalMaxPool(_) => Op::GlobalMaxPool,
        Kind::Concat(a) => Op::Concat { axis: a.axis },
        Kind::Reshape(r) => Op::Reshape { allowzero: r.allowzero },
        Kind::Flatten(a) => Op::Flatten { axis: a.axis },
        Kind::Transpose(t) => {
            Op::Transpose { perm: t.perm.as_ref().map(|p| to_usizes(&p.values, ctx, "perm")).transpose()? }
        }
        Kind::Squeeze(_) => Op::Squeeze,
        Kind::Unsqueeze(_) => Op::Unsqueeze,
        Kind::Pad(p) => Op::Pad { mode: pad_mode(p.mode, ctx)? },
        Kind::Resize(r) => Op::Resize(resize(r, ctx)?),
        Kind::Slice(_) => Op::Slice,
        Kind::Split(s) => Op::Split { axis: s.axis, num_outputs: to_usize(s.num_outputs, ctx, "num_outputs")? },
        Kind::Gather(a) => Op::Gather { axis: a.axis },
        Kind::Shape(s) => Op::Shape { start: s.start, end: s.end },
        Kind::Identity(_) => Op::Identity,
        Kind::Dropout(_) => Op::Dropout,
        Kind::ReduceMean(r) => Op::ReduceMean(reduce(r)),
        Kind::ReduceSum(r) => Op::ReduceSum(reduce(r)),
        Kind::ReduceMax(r) => Op::ReduceMax(reduce(r)),
        Kind::ArgMax(a) => {
            Op::ArgMax(ArgAttrs { axis: a.axis, keepdims: a.keepdims, select_last_index: a.select_last_index })
        }
        Kind::Cast(c) => Op::Cast { to: dtype_from_pb(c.to, ctx, "to")? },
        Kind::QuantizeLinear(q) => Op::QuantizeLinear { axis: q.axis, to: dtype_from_pb(q.to, ctx, "to")? },
        Kind::DequantizeLinear(a) => Op::DequantizeLinear { axis: a.axis },
        Kind::DynamicQuantizeLinear(_) => Op::DynamicQuantizeLinear,
        Kind::QAdd(_) => Op::QAdd,
        Kind::QGlobalAveragePool(_) => Op::QGlobalAveragePool,
        Kind::QConv(q) => Op::QConv(QConvAttrs {
            conv: conv(q.conv.as_ref().ok_or_else(|| missing(ctx, "conv"))?, ctx)?,
            to: dtype_from_pb(q.to, ctx, "to")?,
        }),
        Kind::LayerNormalization(l) => Op::LayerNormalization { axis: l.axis, epsilon: l.epsilon },
        Kind::ConstantOfShape(c) => Op::ConstantOfShape {
            value: tensor_from_pb(c.value.as_ref().ok_or_else(|| missing(ctx, "value"))?, weights, ctx)?,
        },
        Kind::Expand(_) => Op::Expand,
        Kind::Range(_) => Op::Range,
        Kind::Where(_) => Op::Where,
        Kind::Equal(_) => Op::Equal,
        Kind::Erf(_) => Op::Erf,
        Kind::Exp(_) => Op::Exp,
        Kind::Log(_) => Op::Log,
        Kind::Neg(_) => Op::Neg,
        Kind::Abs(_) => Op::Abs,
        Kind::Min(_) => Op::Min,
        Kind::Max(_) => Op::Max,
    })
}

/// The weight reference of an op (before any tensor is materialized), for the overlap check.
pub fn weight_ref(op: Option<&pb::Op>) -> Option<&pb::WeightRef> {
    let t = match op?.kind.as_ref()? {
        Kind::Const(t) => t,
        Kind::ConstantOfShape(c) => c.value.as_ref()?,
        _ => return None,
    };
    match t.data.as_ref()? {
        pb::tensor::Data::Weights(w) => Some(w),
        pb::tensor::Data::Inline(_) => None,
    }
}
