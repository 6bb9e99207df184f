//! Operators: one enum variant per operator, with typed attributes.
//!
//! Conventions shared by every consumer of the IR (importers, shape rules, kernels):
//! - Inputs follow the newest ONNX form of each operator. Parameters that newer opsets take
//!   as inputs (Clip min/max, Slice starts/ends/axes/steps, Pad pads, Reshape shape,
//!   Squeeze/Unsqueeze/Reduce axes, Split sizes, Resize roi/scales/sizes) are inputs here;
//!   importers turn older attribute forms into constant inputs.
//! - Optional inputs that are absent have no edge at their slot.
//! - Layouts are NCHW (activations) and OIHW (conv weights, `O = C_out`, `I = C_in / group`).
//! - Spatial attribute vectors (`kernel_shape`, `strides`, `dilations`) have one entry per
//!   spatial axis; `pads` has `2 * spatial` entries: all begins, then all ends.

mod attrs;
mod cost;
mod infer;

pub use attrs::*;
pub use cost::flops;
pub use infer::{InferInput, infer};

use crate::Tensor;

/// An operator with its attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A graph input; no inputs, one output.
    Input,
    /// A constant (initializer); no inputs, one output.
    Const(Tensor),
    /// Convolution. Inputs: X, W, B?, then the fused residual and PReLU slope slots of
    /// [`Epilogue`] when the epilogue uses them.
    Conv(ConvAttrs),
    /// Transposed convolution. Inputs: X, W (layout `C_in x C_out/group x k...`), B?.
    ConvTranspose(ConvTransposeAttrs),
    /// Batch normalization in inference mode. Inputs: X, scale, bias, mean, var.
    BatchNormalization {
        /// Added to the variance.
        epsilon: f32,
    },
    /// max(x, 0).
    Relu,
    /// Clamp. Inputs: X, min?, max? (scalars).
    Clip,
    /// x if x >= 0 else alpha * x.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// x if x >= 0 else slope * x. Inputs: X, slope (broadcast to X).
    PRelu,
    /// 1 / (1 + exp(-x)).
    Sigmoid,
    /// max(0, min(1, alpha * x + beta)).
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// x * max(0, min(1, x / 6 + 1 / 2)).
    HardSwish,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax along `axis`.
    Softmax(SoftmaxAttrs),
    /// General matrix multiply: alpha * A' * B' + beta * C. Inputs: A, B, C?.
    Gemm(GemmAttrs),
    /// Numpy-style matrix product with batch broadcasting. Inputs: A, B.
    MatMul,
    /// Fully connected layer `activation(X · W + B)` made by `lithe-passes` from MatMul/Gemm
    /// with a constant weight. Inputs: X (`... x K`), W (`K x N`), B? (`N`), then the PReLU
    /// slope (slot 3) when the activation is [`Activation::PRelu`]. Output `... x N`.
    FullyConnected(FcAttrs),
    /// Elementwise a + b with numpy broadcasting.
    Add,
    /// Elementwise a - b with numpy broadcasting.
    Sub,
    /// Elementwise a * b with numpy broadcasting.
    Mul,
    /// Elementwise a / b with numpy broadcasting (integer division truncates).
    Div,
    /// Elementwise a ^ b with numpy broadcasting.
    Pow,
    /// Elementwise square root.
    Sqrt,
    /// Max pooling. Input: X.
    MaxPool(PoolAttrs),
    /// Average pooling. Input: X.
    AveragePool(AvgPoolAttrs),
    /// Mean over all spatial axes, kept as size 1.
    GlobalAveragePool,
    /// Max over all spatial axes, kept as size 1.
    GlobalMaxPool,
    /// Concatenate inputs along `axis` (negative counts from the end).
    Concat {
        /// The axis.
        axis: i64,
    },
    /// Reshape. Inputs: data, shape (i64; 0 copies the input dim unless `allowzero`, -1 infers).
    Reshape {
        /// When true, 0 in the shape means an empty dimension.
        allowzero: bool,
    },
    /// Flatten to 2-D: dims before `axis` form rows, the rest columns.
    Flatten {
        /// The split axis (negative counts from the end).
        axis: i64,
    },
    /// Permute axes; `perm` None reverses them.
    Transpose {
        /// The permutation.
        perm: Option<Vec<usize>>,
    },
    /// Remove size-1 axes. Inputs: data, axes? (i64; absent removes every size-1 axis).
    Squeeze,
    /// Insert size-1 axes. Inputs: data, axes (i64, positions in the output).
    Unsqueeze,
    /// Pad. Inputs: data, pads (i64, begins then ends), constant_value?, axes?.
    Pad {
        /// Padding mode.
        mode: PadMode,
    },
    /// Resize (and Upsample). Inputs: X, roi?, scales?, sizes?.
    Resize(ResizeAttrs),
    /// Slice. Inputs: data, starts, ends, axes?, steps? (all i64 or i32).
    Slice,
    /// Split into `num_outputs` pieces along `axis`. Inputs: data, split? (i64 sizes).
    Split {
        /// The axis (negative counts from the end).
        axis: i64,
        /// Number of outputs.
        num_outputs: usize,
    },
    /// Gather along `axis`. Inputs: data, indices (i32 or i64; negative counts from the end).
    Gather {
        /// The axis (negative counts from the end).
        axis: i64,
    },
    /// The shape of the input as i64, sliced to `start..end` (ONNX clamping rules).
    Shape {
        /// First axis (negative counts from the end).
        start: i64,
        /// One past the last axis, `None` for the rank.
        end: Option<i64>,
    },
    /// Copy of the input.
    Identity,
    /// Dropout in inference mode: the input unchanged (a second output, the mask, is all true).
    Dropout,
    /// Mean over axes. Inputs: data, axes?.
    ReduceMean(ReduceAttrs),
    /// Sum over axes. Inputs: data, axes?.
    ReduceSum(ReduceAttrs),
    /// Max over axes. Inputs: data, axes?.
    ReduceMax(ReduceAttrs),
    /// Index of the maximum along `axis`, as i64.
    ArgMax(ArgAttrs),
    /// Convert to `to`.
    Cast {
        /// Target dtype.
        to: crate::DType,
    },
    /// Layer normalization over axes `axis..rank`. Inputs: X, scale, bias?.
    LayerNormalization {
        /// First normalized axis (negative counts from the end).
        axis: i64,
        /// Added to the variance.
        epsilon: f32,
    },
    /// A tensor of the shape given by the input (i64) filled with `value` (a 1-element tensor).
    ConstantOfShape {
        /// The fill value and dtype.
        value: Tensor,
    },
    /// Broadcast the input to a shape. Inputs: data, shape (i64).
    Expand,
    /// 1-D sequence. Inputs: start, limit, delta (scalars of one dtype).
    Range,
    /// cond ? x : y with broadcasting. Inputs: cond (bool), x, y.
    Where,
    /// a == b with broadcasting, bool output.
    Equal,
    /// Gauss error function.
    Erf,
    /// Natural exponential.
    Exp,
    /// Natural logarithm.
    Log,
    /// Negation.
    Neg,
    /// Absolute value.
    Abs,
    /// Elementwise minimum of all inputs, broadcast.
    Min,
    /// Elementwise maximum of all inputs, broadcast.
    Max,
    /// Linear quantization `q = saturate(round_half_even(x / scale) + zero_point)`.
    /// Inputs: x (f32), scale (f32, a scalar or one per slice along `axis`), zero_point?
    /// (of dtype `to`, same length as scale; absent means 0).
    QuantizeLinear {
        /// The channel axis of per-axis scales (negative counts from the end).
        axis: i64,
        /// Output dtype: u8, i8 or i16.
        to: crate::DType,
    },
    /// ONNX DynamicQuantizeLinear: u8 quantization of f32 `x` with its own range. Outputs
    /// `y` (u8, x's shape), `y_scale` (f32 scalar) and `y_zero_point` (u8 scalar): the range
    /// `[min(0, min x), max(0, max x)]`, `scale = (max - min) / 255` (1 when the range is
    /// empty, as onnxruntime), `zero_point = round_half_even(clamp(-min / scale, 0, 255))`,
    /// `y = saturate(round_half_even(x / scale) + zero_point)`.
    DynamicQuantizeLinear,
    /// Linear dequantization `x = (q - zero_point) * scale`, f32 output.
    /// Inputs: q (u8, i8, i16 or i32), scale (f32, a scalar or one per slice along `axis`),
    /// zero_point? (q's dtype, same length as scale; absent means 0).
    DequantizeLinear {
        /// The channel axis of per-axis scales (negative counts from the end).
        axis: i64,
    },
    /// Int8 2-D convolution, made by `lithe-passes` from `DequantizeLinear(u8 X) ->
    /// Conv(DequantizeLinear(s8 W)) [-> QuantizeLinear]`: `acc = Σ (x - x_zero_point)·w` exact
    /// in i32, `y = acc·(x_scale·w_scale[m]) + B[m]`, plus the residual, then the activation;
    /// the output is `y` (f32) or `saturate(round_half_even(y / y_scale) + y_zero_point)` (u8).
    /// Inputs: 0 X (u8 NCHW), 1 x_scale (f32 scalar), 2 x_zero_point (u8 scalar), 3 W (i8
    /// `[M, C/group, kH, kW]`), 4 w_scale (f32, one or one per output channel; zero point 0),
    /// 5 B? (f32 `[M]`), 6 residual? (f32, the output shape; when the epilogue fuses one),
    /// 7 y_scale and 8 y_zero_point (f32 and u8 scalars; exactly when the output is u8).
    ///
    /// An int32 B (ONNX `QLinearConv`'s bias, at scale `x_scale·w_scale[m]`) is added to `acc`
    /// instead, and allows no residual and only a Relu or Clip activation. A u8 output is then
    /// requantized as onnxruntime does: `saturate(round_half_even(clamp(f32(acc + B[m]) · mult[m]))
    /// + y_zero_point)` with `mult[m] = (x_scale·w_scale[m]) / y_scale` and the clamp's bounds
    /// divided by `y_scale`; an f32 output is `f32(acc + B[m])·(x_scale·w_scale[m])`, activated.
    QConv(QConvAttrs),
    /// Int8 elementwise add of two u8 tensors of one shape, made by `lithe-passes` from
    /// `QuantizeLinear(DequantizeLinear(A) + DequantizeLinear(B))` with the arithmetic of
    /// onnxruntime's `QLinearAdd` on x86: `ra = a_scale / c_scale`, `rb = b_scale / c_scale`,
    /// `k = c_zp - (ra·a_zp + rb·b_zp)`, `c = saturate(round_half_even((k + a·ra) + b·rb))`,
    /// every step one f32 operation in that order (NaN saturates to 0). It differs from the
    /// float graph only where a value sits on a rounding boundary.
    /// Inputs: 0 A (u8), 1 a_scale, 2 a_zero_point, 3 B (u8, A's shape), 4 b_scale,
    /// 5 b_zero_point, 6 c_scale, 7 c_zero_point (scales f32 and zero points u8, all scalars).
    QAdd,
    /// Int8 global average pool of a u8 NCHW tensor, made by `lithe-passes` from
    /// `QuantizeLinear(GlobalAveragePool(DequantizeLinear(X)))` with the arithmetic of
    /// onnxruntime's `QLinearGlobalAveragePool` on x86: per plane of `n = H·W` values,
    /// `y = saturate(round_half_even(f32(Σx - x_zp·n) · (x_scale / (y_scale · n))) + y_zp)`
    /// (integer sum, then one f32 multiply; NaN saturates to 0). Output `[N, C, 1, 1]` u8.
    /// Inputs: 0 X (u8), 1 x_scale, 2 x_zero_point, 3 y_scale, 4 y_zero_point (scales f32 and
    /// zero points u8, all scalars).
    QGlobalAveragePool,
}

impl Op {
    /// The operator's name as in ONNX (`Conv`, `Relu`, ...), or `Input`/`Const`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "Input",
            Op::Const(_) => "Const",
            Op::Conv(_) => "Conv",
            Op::ConvTranspose(_) => "ConvTranspose",
            Op::BatchNormalization { .. } => "BatchNormalization",
            Op::Relu => "Relu",
            Op::Clip => "Clip",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::PRelu => "PRelu",
            Op::Sigmoid => "Sigmoid",
            Op::HardSigmoid { .. } => "HardSigmoid",
            Op::HardSwish => "HardSwish",
            Op::Tanh => "Tanh",
            Op::Softmax(_) => "Softmax",
            Op::Gemm(_) => "Gemm",
            Op::MatMul => "MatMul",
            Op::FullyConnected(_) => "FullyConnected",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Div => "Div",
            Op::Pow => "Pow",
            Op::Sqrt => "Sqrt",
            Op::MaxPool(_) => "MaxPool",
            Op::AveragePool(_) => "AveragePool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::GlobalMaxPool => "GlobalMaxPool",
            Op::Concat { .. } => "Concat",
            Op::Reshape { .. } => "Reshape",
            Op::Flatten { .. } => "Flatten",
            Op::Transpose { .. } => "Transpose",
            Op::Squeeze => "Squeeze",
            Op::Unsqueeze => "Unsqueeze",
            Op::Pad { .. } => "Pad",
            Op::Resize(_) => "Resize",
            Op::Slice => "Slice",
            Op::Split { .. } => "Split",
            Op::Gather { .. } => "Gather",
            Op::Shape { .. } => "Shape",
            Op::Identity => "Identity",
            Op::Dropout => "Dropout",
            Op::ReduceMean(_) => "ReduceMean",
            Op::ReduceSum(_) => "ReduceSum",
            Op::ReduceMax(_) => "ReduceMax",
            Op::ArgMax(_) => "ArgMax",
            Op::Cast { .. } => "Cast",
            Op::LayerNormalization { .. } => "LayerNormalization",
            Op::ConstantOfShape { .. } => "ConstantOfShape",
            Op::Expand => "Expand",
            Op::Range => "Range",
            Op::Where => "Where",
            Op::Equal => "Equal",
            Op::Erf => "Erf",
            Op::Exp => "Exp",
            Op::Log => "Log",
            Op::Neg => "Neg",
            Op::Abs => "Abs",
            Op::Min => "Min",
            Op::Max => "Max",
            Op::QuantizeLinear { .. } => "QuantizeLinear",
            Op::DynamicQuantizeLinear => "DynamicQuantizeLinear",
            Op::DequantizeLinear { .. } => "DequantizeLinear",
            Op::QConv(_) => "QConv",
            Op::QAdd => "QAdd",
            Op::QGlobalAveragePool => "QGlobalAveragePool",
        }
    }

    /// Names of every operator type the IR has (excluding `Input` and `Const`), sorted.
    pub fn all_names() -> Vec<&'static str> {
        let mut v = vec![
            "Conv",
            "ConvTranspose",
            "BatchNormalization",
            "Relu",
            "Clip",
            "LeakyRelu",
            "PRelu",
            "Sigmoid",
            "HardSigmoid",
            "HardSwish",
            "Tanh",
            "Softmax",
            "Gemm",
            "MatMul",
            "FullyConnected",
            "Add",
            "Sub",
            "Mul",
            "Div",
            "Pow",
            "Sqrt",
            "MaxPool",
            "AveragePool",
            "GlobalAveragePool",
            "GlobalMaxPool",
            "Concat",
            "Reshape",
            "Flatten",
            "Transpose",
            "Squeeze",
            "Unsqueeze",
            "Pad",
            "Resize",
            "Slice",
            "Split",
            "Gather",
            "Shape",
            "Identity",
            "Dropout",
            "ReduceMean",
            "ReduceSum",
            "ReduceMax",
            "ArgMax",
            "Cast",
            "LayerNormalization",
            "ConstantOfShape",
            "Expand",
            "Range",
            "Where",
            "Equal",
            "Erf",
            "Exp",
            "Log",
            "Neg",
            "Abs",
            "Min",
            "Max",
            "QuantizeLinear",
            "DynamicQuantizeLinear",
            "DequantizeLinear",
            "QConv",
            "QAdd",
            "QGlobalAveragePool",
        ];
        v.sort_unstable();
        v
    }

    /// Operator types that only graph passes produce (no ONNX operator imports to them).
    pub fn pass_only_names() -> &'static [&'static str] {
        &["FullyConnected", "QConv", "QAdd", "QGlobalAveragePool"]
    }

    /// True for ops whose only output equals a function of each input element alone.
    pub fn is_unary_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Relu
                | Op::LeakyRelu { .. }
                | Op::Sigmoid
                | Op::HardSigmoid { .. }
                | Op::HardSwish
                | Op::Tanh
                | Op::Sqrt
                | Op::Erf
                | Op::Exp
                | Op::Log
                | Op::Neg
                | Op::Abs
        )
    }
}
