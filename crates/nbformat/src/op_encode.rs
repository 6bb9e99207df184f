//! Operators to their protobuf messages (one explicit message per attribute struct).

use crate::pb;
use crate::pb::op::Kind;
use crate::tensor_map::{MAX_INLINE_BYTES, WeightsWriter, dtype_to_pb, tensor_to_pb, to_u64s};
use lithe_ir::Op;
use lithe_ir::op::{
    Activation, ArgAttrs, AutoPad, AvgPoolAttrs, ConvAttrs, CoordTransform, NearestMode, PadMode, PoolAttrs,
    ReduceAttrs, ResizeAttrs, ResizeMode,
};

const E: pb::Empty = pb::Empty {};

fn auto_pad(a: AutoPad) -> i32 {
    (match a {
        AutoPad::NotSet => pb::AutoPad::NotSet,
        AutoPad::Valid => pb::AutoPad::Valid,
        AutoPad::SameUpper => pb::AutoPad::SameUpper,
        AutoPad::SameLower => pb::AutoPad::SameLower,
    }) as i32
}

/// The protobuf form of an activation.
pub fn activation(a: Activation) -> pb::Activation {
    use pb::activation::Kind as A;
    let kind = match a {
        Activation::None => A::None(E),
        Activation::Relu => A::Relu(E),
        Activation::Clip { min, max } => A::Clip(pb::ClipActivation { min, max }),
        Activation::LeakyRelu { alpha } => A::LeakyRelu(pb::LeakyReluAttrs { alpha }),
        Activation::PRelu => A::Prelu(E),
        Activation::HardSwish => A::HardSwish(E),
        Activation::HardSigmoid { alpha, beta } => A::HardSigmoid(pb::HardSigmoidAttrs { alpha, beta }),
        Activation::Sigmoid => A::Sigmoid(E),
        Activation::Tanh => A::Tanh(E),
    };
    pb::Activation { kind: Some(kind) }
}

fn conv(c: &ConvAttrs) -> pb::ConvAttrs {
    pb::ConvAttrs {
        kernel_shape: c.kernel_shape.as_ref().map(|k| pb::UintList { values: to_u64s(k) }),
        strides: to_u64s(&c.strides),
        dilations: to_u64s(&c.dilations),
        pads: to_u64s(&c.pads),
        auto_pad: auto_pad(c.auto_pad),
        group: c.group as u64,
        epilogue: Some(pb::Epilogue {
            residual: c.epilogue.residual,
            activation: Some(activation(c.epilogue.activation)),
        }),
    }
}

fn pool(p: &PoolAttrs) -> pb::PoolAttrs {
    pb::PoolAttrs {
        kernel_shape: to_u64s(&p.kernel_shape),
        strides: to_u64s(&p.strides),
        dilations: to_u64s(&p.dilations),
        pads: to_u64s(&p.pads),
        auto_pad: auto_pad(p.auto_pad),
        ceil_mode: p.ceil_mode,
    }
}

fn avg_pool(p: &AvgPoolAttrs) -> pb::AvgPoolAttrs {
    pb::AvgPoolAttrs { pool: Some(pool(&p.pool)), count_include_pad: p.count_include_pad }
}

fn reduce(r: &ReduceAttrs) -> pb::ReduceAttrs {
    pb::ReduceAttrs { keepdims: r.keepdims, noop_with_empty_axes: r.noop_with_empty_axes }
}

fn arg(a: &ArgAttrs) -> pb::ArgMaxAttrs {
    pb::ArgMaxAttrs { axis: a.axis, keepdims: a.keepdims, select_last_index: a.select_last_index }
}

fn pad_mode(m: PadMode) -> i32 {
    (match m {
        PadMode::Constant => pb::PadMode::Constant,
        PadMode::Reflect => pb::PadMode::Reflect,
        PadMode::Edge => pb::PadMode::Edge,
        PadMode::Wrap => pb::PadMode::Wrap,
    }) as i32
}

fn resize(r: &ResizeAttrs) -> pb::ResizeAttrs {
    let mode = match r.mode {
        ResizeMode::Nearest => pb::ResizeMode::Nearest,
        ResizeMode::Linear => pb::ResizeMode::Linear,
        ResizeMode::Cubic => pb::ResizeMode::Cubic,
    };
    let coord = match r.coord {
        CoordTransform::HalfPixel => pb::CoordTransform::HalfPixel,
        CoordTransform::PytorchHalfPixel => pb::CoordTransform::PytorchHalfPixel,
        CoordTransform::AlignCorners => pb::CoordTransform::AlignCorners,
        CoordTransform::Asymmetric => pb::CoordTransform::Asymmetric,
        CoordTransform::TfCropAndResize => pb::CoordTransform::TfCropAndResize,
        CoordTransform::HalfPixelSymmetric => pb::CoordTransform::HalfPixelSymmetric,
    };
    let nearest = match r.nearest {
        NearestMode::RoundPreferFloor => pb::NearestMode::RoundPreferFloor,
        NearestMode::RoundPreferCeil => pb::NearestMode::RoundPreferCeil,
        NearestMode::Floor => pb::NearestMode::Floor,
        NearestMode::Ceil => pb::NearestMode::Ceil,
    };
    pb::ResizeAttrs {
        mode: mode as i32,
        coord: coord as i32,
        nearest: nearest as i32,
        cubic_coeff_a: r.cubic_coeff_a,
        extrapolation_value: r.extrapolation_value,
        exclude_outside: r.exclude_outside,
    }
}

/// The protobuf form of an operator. Const data goes to `weights`; a ConstantOfShape value
/// goes inline when it is small.
pub fn op_to_pb(op: &Op, weights: &mut WeightsWriter) -> pb::Op {
    let kind = match op {
        Op::Input => Kind::Input(E),
        Op::Const(t) => Kind::Const(tensor_to_pb(t, weights, false)),
        Op::Conv(c) => Kind::Conv(conv(c)),
        Op::ConvTranspose(c) => Kind::ConvTranspose(pb::ConvTransposeAttrs {
            conv: Some(conv(&c.conv)),
            output_padding: to_u64s(&c.output_padding),
            output_shape: c.output_shape.as_ref().map(|s| pb::UintList { values: to_u64s(s) }),
        }),
        Op::BatchNormalization { epsilon } => {
            Kind::BatchNormalization(pb::BatchNormalizationAttrs { epsilon: *epsilon })
        }
        Op::Relu => Kind::Relu(E),
        Op::Clip => Kind::Clip(E),
        Op::LeakyRelu { alpha } => Kind::LeakyRelu(pb::LeakyReluAttrs { alpha: *alpha }),
        Op::PRelu => Kind::Prelu(E),
        Op::Sigmoid => Kind::Sigmoid(E),
        Op::HardSigmoid { alpha, beta } => Kind::HardSigmoid(pb::HardSigmoidAttrs { alpha: *alpha, beta: *beta }),
        Op::HardSwish => Kind::HardSwish(E),
        Op::Tanh => Kind::Tanh(E),
        Op::Softmax(s) => Kind::Softmax(pb::SoftmaxAttrs { axis: s.axis, coerce_2d: s.coerce_2d }),
        Op::Gemm(g) => {
            Kind::Gemm(pb::GemmAttrs { alpha: g.alpha, beta: g.beta, trans_a: g.trans_a, trans_b: g.trans_b })
        }
        Op::MatMul => Kind::MatMul(E),
        Op::FullyConnected(f) => {
            Kind::FullyConnected(pb::FullyConnectedAttrs { activation: Some(activation(f.activation)) })
        }
        Op::Add => Kind::Add(E),
        Op::Sub => Kind::Sub(E),
        Op::Mul => Kind::Mul(E),
        Op::Div => Kind::Div(E),
        Op::Pow => Kind::Pow(E),
        Op::Sqrt => Kind::Sqrt(E),
        Op::MaxPool(p) => Kind::MaxPool(pool(p)),
        Op::AveragePool(p) => Kind::AveragePool(avg_pool(p)),
        Op::GlobalAveragePool => Kind::GlobalAveragePool(E),
        Op::GlobalMaxPool => Kind::GlobalMaxPool(E),
        Op::Concat { axis } => Kind::Concat(pb::AxisAttrs { axis: *axis }),
        Op::Reshape { allowzero } => Kind::Reshape(pb::ReshapeAttrs { allowzero: *allowzero }),
        Op::Flatten { axis } => Kind::Flatten(pb::AxisAttrs { axis: *axis }),
        Op::Transpose { perm } => {
            Kind::Transpose(pb::TransposeAttrs { perm: perm.as_ref().map(|p| pb::UintList { values: to_u64s(p) }) })
        }
        Op::Squeeze => Kind::Squeeze(E),
        Op::Unsqueeze => Kind::Unsqueeze(E),
        Op::Pad { mode } => Kind::Pad(pb::PadAttrs { mode: pad_mode(*mode) }),
        Op::Resize(r) => Kind::Resize(resize(r)),
        Op::Slice => Kind::Slice(E),
        Op::Split { axis, num_outputs } => {
            Kind::Split(pb::SplitAttrs { axis: *axis, num_outputs: *num_outputs as u64 })
        }
        Op::Gather { axis } => Kind::Gather(pb::AxisAttrs { axis: *axis }),
        Op::Shape { start, end } => Kind::Shape(pb::ShapeAttrs { start: *start, end: *end }),
        Op::Identity => Kind::Identity(E),
        Op::Dropout => Kind::Dropout(E),
        Op::ReduceMean(r) => Kind::ReduceMean(reduce(r)),
        Op::ReduceSum(r) => Kind::ReduceSum(reduce(r)),
        Op::ReduceMax(r) => Kind::ReduceMax(reduce(r)),
        Op::ArgMax(a) => Kind::ArgMax(arg(a)),
        Op::Cast { to } => Kind::Cast(pb::CastAttrs { to: dtype_to_pb(*to) as i32 }),
        Op::LayerNormalization { axis, epsilon } => {
            Kind::LayerNormalization(pb::LayerNormalizationAttrs { axis: *axis, epsilon: *epsilon })
        }
        Op::ConstantOfShape { value } => Kind::ConstantOfShape(pb::ConstantOfShapeAttrs {
            value: Some(tensor_to_pb(value, weights, value.size_bytes() <= MAX_INLINE_BYTES)),
        }),
        Op::Expand => Kind::Expand(E),
        Op::Range => Kind::Range(E),
        Op::Where => Kind::Where(E),
        Op::Equal => Kind::Equal(E),
        Op::Erf => Kind::Erf(E),
        Op::Exp => Kind::Exp(E),
        Op::Log => Kind::Log(E),
        Op::Neg => Kind::Neg(E),
        Op::Abs => Kind::Abs(E),
        Op::Min => Kind::Min(E),
        Op::Max => Kind::Max(E),
        Op::QuantizeLinear { axis, to } => {
            Kind::QuantizeLinear(pb::QuantizeLinearAttrs { axis: *axis, to: dtype_to_pb(*to) as i32 })
        }
        Op::DequantizeLinear { axis } => Kind::DequantizeLinear(pb::AxisAttrs { axis: *axis }),
        Op::DynamicQuantizeLinear => Kind::DynamicQuantizeLinear(E),
        Op::QAdd => Kind::QAdd(E),
        Op::QGlobalAveragePool => Kind::QGlobalAveragePool(E),
        Op::QConv(q) => Kind::QConv(pb::QConvAttrs { conv: Some(conv(&q.conv)), to: dtype_to_pb(q.to) as i32 }),
    };
    pb::Op { kind: Some(kind) }
}
