//! Typed operator attributes and the spatial arithmetic shared by shape rules and kernels.

use crate::IrError;

/// How ONNX `auto_pad` chooses padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AutoPad {
    /// Use the explicit `pads`.
    #[default]
    NotSet,
    /// No padding.
    Valid,
    /// Output size `ceil(in / stride)`; extra padding goes at the end.
    SameUpper,
    /// Output size `ceil(in / stride)`; extra padding goes at the beginning.
    SameLower,
}

/// Attributes of [`Op::Conv`](super::Op::Conv).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAttrs {
    /// Kernel size per spatial axis; `None` takes it from the weight.
    pub kernel_shape: Option<Vec<usize>>,
    /// Strides per spatial axis (empty means all 1).
    pub strides: Vec<usize>,
    /// Dilations per spatial axis (empty means all 1).
    pub dilations: Vec<usize>,
    /// Explicit pads: begins then ends (empty means all 0). Ignored unless `auto_pad` is `NotSet`.
    pub pads: Vec<usize>,
    /// Automatic padding.
    pub auto_pad: AutoPad,
    /// Number of groups (`C_in` for depthwise).
    pub group: usize,
    /// Work fused after the accumulation (set by `lithe-passes`; ONNX imports leave it empty).
    /// Always empty for ConvTranspose.
    pub epilogue: Epilogue,
}

impl Default for ConvAttrs {
    fn default() -> Self {
        ConvAttrs {
            kernel_shape: None,
            strides: Vec::new(),
            dilations: Vec::new(),
            pads: Vec::new(),
            auto_pad: AutoPad::NotSet,
            group: 1,
            epilogue: Epilogue::default(),
        }
    }
}

/// An activation applied to each output element of a conv or fully connected op, while the
/// value is still in registers.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Activation {
    /// No activation.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, min), max)` (ReLU6 is `Clip { min: 0, max: 6 }`).
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `x` if `x >= 0` else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `x` if `x >= 0` else `slope * x`, the slope tensor being an extra input of the op.
    PRelu,
    /// `x * max(0, min(1, x / 6 + 1 / 2))`.
    HardSwish,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
}

impl Activation {
    /// The name of the activation's own op (`Relu`, `Clip`, ...), or `None`.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::None => "None",
            Activation::Relu => "Relu",
            Activation::Clip { .. } => "Clip",
            Activation::LeakyRelu { .. } => "LeakyRelu",
            Activation::PRelu => "PRelu",
            Activation::HardSwish => "HardSwish",
            Activation::HardSigmoid { .. } => "HardSigmoid",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
        }
    }

    /// True for [`Activation::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Activation::None)
    }

    /// FLOPs per element, as the standalone op counts them (see [`flops`](super::flops)).
    pub fn flops_per_element(&self) -> u64 {
        match self {
            Activation::None => 0,
            Activation::Relu | Activation::Clip { .. } | Activation::LeakyRelu { .. } | Activation::PRelu => 1,
            Activation::Tanh => 1,
            Activation::HardSigmoid { .. } => 3,
            Activation::HardSwish | Activation::Sigmoid => 4,
        }
    }
}

/// What a conv does after accumulating: `y = activation(conv(x) + bias + residual)`.
///
/// Input slots of a [`Op::Conv`](super::Op::Conv): 0 `X`, 1 `W`, 2 `B?`, 3 the residual
/// (present exactly when `residual`, same shape as the output), 4 the PReLU slope (present
/// exactly when the activation is [`Activation::PRelu`], broadcast to the output).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Epilogue {
    /// Add the tensor at input slot 3 (same shape as the output) before the activation.
    pub residual: bool,
    /// The activation applied last.
    pub activation: Activation,
}

impl Epilogue {
    /// True when nothing is fused.
    pub fn is_empty(&self) -> bool {
        !self.residual && self.activation.is_none()
    }
}

/// Attributes of [`Op::QConv`](super::Op::QConv).
#[derive(Clone, Debug, PartialEq)]
pub struct QConvAttrs {
    /// The convolution and its fused epilogue (a PRelu activation is not allowed).
    pub conv: ConvAttrs,
    /// Output dtype: `U8` (requantized with the `y_scale` and `y_zero_point` inputs) or `F32`.
    pub to: crate::DType,
}

/// Attributes of [`Op::FullyConnected`](super::Op::FullyConnected).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct FcAttrs {
    /// The activation applied after the bias.
    pub activation: Activation,
}

/// Attributes of [`Op::ConvTranspose`](super::Op::ConvTranspose).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ConvTransposeAttrs {
    /// The shared convolution attributes.
    pub conv: ConvAttrs,
    /// Extra size added at the end of each spatial output axis.
    pub output_padding: Vec<usize>,
    /// Requested spatial output size; when set, pads are computed from it.
    pub output_shape: Option<Vec<usize>>,
}

/// Attributes shared by the pooling ops.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PoolAttrs {
    /// Window size per spatial axis.
    pub kernel_shape: Vec<usize>,
    /// Strides per spatial axis (empty means all 1).
    pub strides: Vec<usize>,
    /// Dilations per spatial axis (empty means all 1).
    pub dilations: Vec<usize>,
    /// Explicit pads: begins then ends (empty means all 0).
    pub pads: Vec<usize>,
    /// Automatic padding.
    pub auto_pad: AutoPad,
    /// Use ceil instead of floor for the output size (a window must start inside the input or its begin padding).
    pub ceil_mode: bool,
}

/// Attributes of [`Op::AveragePool`](super::Op::AveragePool).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AvgPoolAttrs {
    /// Window, strides, pads.
    pub pool: PoolAttrs,
    /// Count padded positions in the divisor (padding added by `ceil_mode` is never counted).
    pub count_include_pad: bool,
}

/// Attributes of [`Op::Softmax`](super::Op::Softmax).
#[derive(Clone, Debug, PartialEq)]
pub struct SoftmaxAttrs {
    /// The axis (negative counts from the end).
    pub axis: i64,
    /// Opset < 13 semantics: flatten to 2-D at `axis` and normalize each row over all trailing axes.
    pub coerce_2d: bool,
}

/// Attributes of [`Op::Gemm`](super::Op::Gemm).
#[derive(Clone, Debug, PartialEq)]
pub struct GemmAttrs {
    /// Multiplier of A*B.
    pub alpha: f32,
    /// Multiplier of C.
    pub beta: f32,
    /// Transpose A first.
    pub trans_a: bool,
    /// Transpose B first.
    pub trans_b: bool,
}

impl Default for GemmAttrs {
    fn default() -> Self {
        GemmAttrs { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false }
    }
}

/// Padding modes of [`Op::Pad`](super::Op::Pad).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PadMode {
    /// Fill with the constant value.
    #[default]
    Constant,
    /// Mirror without repeating the edge.
    Reflect,
    /// Repeat the edge value.
    Edge,
    /// Wrap around.
    Wrap,
}

/// Interpolation modes of [`Op::Resize`](super::Op::Resize).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResizeMode {
    /// Nearest neighbour.
    #[default]
    Nearest,
    /// (Multi-)linear.
    Linear,
    /// Cubic.
    Cubic,
}

/// How an output coordinate maps back to an input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CoordTransform {
    /// `(x + 0.5) / scale - 0.5`.
    #[default]
    HalfPixel,
    /// Like half_pixel, but 0 when the output size is 1.
    PytorchHalfPixel,
    /// `x * (in - 1) / (out - 1)`.
    AlignCorners,
    /// `x / scale`.
    Asymmetric,
    /// Uses the roi input.
    TfCropAndResize,
    /// `(x + 0.5) / scale - 0.5` with the scale from the integer sizes.
    HalfPixelSymmetric,
}

/// How nearest mode rounds a fractional input coordinate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NearestMode {
    /// Round half down.
    #[default]
    RoundPreferFloor,
    /// Round half up.
    RoundPreferCeil,
    /// Floor.
    Floor,
    /// Ceil.
    Ceil,
}

/// Attributes of [`Op::Resize`](super::Op::Resize). The default is ONNX's.
#[derive(Clone, Debug, PartialEq)]
pub struct ResizeAttrs {
    /// Interpolation mode.
    pub mode: ResizeMode,
    /// Coordinate transformation.
    pub coord: CoordTransform,
    /// Rounding in nearest mode.
    pub nearest: NearestMode,
    /// Cubic coefficient (default -0.75).
    pub cubic_coeff_a: f32,
    /// Value outside the roi for tf_crop_and_resize.
    pub extrapolation_value: f32,
    /// Zero the weights of samples outside the input (cubic).
    pub exclude_outside: bool,
}

impl Default for ResizeAttrs {
    fn default() -> Self {
        ResizeAttrs {
            mode: ResizeMode::Nearest,
            coord: CoordTransform::HalfPixel,
            nearest: NearestMode::RoundPreferFloor,
            cubic_coeff_a: -0.75,
            extrapolation_value: 0.0,
            exclude_outside: false,
        }
    }
}

/// Attributes of the reduce ops.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceAttrs {
    /// Keep reduced axes with size 1.
    pub keepdims: bool,
    /// With no axes: true means identity, false means reduce all axes.
    pub noop_with_empty_axes: bool,
}

impl Default for ReduceAttrs {
    fn default() -> Self {
        ReduceAttrs { keepdims: true, noop_with_empty_axes: false }
    }
}

/// Attributes of [`Op::ArgMax`](super::Op::ArgMax).
#[derive(Clone, Debug, PartialEq)]
pub struct ArgAttrs {
    /// The axis (negative counts from the end).
    pub axis: i64,
    /// Keep the axis with size 1.
    pub keepdims: bool,
    /// On ties, the last index instead of the first.
    pub select_last_index: bool,
}

/// Resolve a possibly negative axis against a rank.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize, IrError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(IrError::Attribute(format!("axis {axis} out of range for rank {rank}")));
    }
    Ok(a as usize)
}

/// The permutation a Transpose applies for a rank: `perm`, or the reversal when absent.
/// Errors unless it is a permutation of `0..rank`.
pub fn resolve_perm(perm: Option<&[usize]>, rank: usize) -> Result<Vec<usize>, IrError> {
    let perm: Vec<usize> = match perm {
        Some(p) => p.to_vec(),
        None => (0..rank).rev().collect(),
    };
    let mut seen = vec![false; rank];
    let valid = perm.len() == rank
        && perm.iter().all(|&p| match seen.get_mut(p) {
            Some(s) if !*s => {
                *s = true;
                true
            }
            _ => false,
        });
    if !valid {
        return Err(IrError::Attribute(format!("perm {perm:?} is not a permutation of the {rank} axes")));
    }
    Ok(perm)
}

/// Geometry of one spatial axis of a sliding-window op, resolved for a given input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisWindow {
    /// Input size.
    pub input: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding before.
    pub pad_begin: usize,
    /// Padding after (as declared; ceil mode may read past it).
    pub pad_end: usize,
    /// Output size.
    pub output: usize,
}

/// Resolve the windows of a conv or pool for the given spatial input sizes.
///
/// `pads`, `strides` and `dilations` may be empty (defaults). With `ceil_mode`, the output
/// size rounds up, but the last window must start within the input plus begin padding.
pub fn resolve_windows(
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    pads: &[usize],
    auto_pad: AutoPad,
    ceil_mode: bool,
) -> Result<Vec<AxisWindow>, IrError> {
    let n = input.len();
    if kernel.len() != n {
        return Err(IrError::Attribute(format!(
            "kernel_shape {kernel:?} has {} axes, input has {n} spatial axes",
            kernel.len()
        )));
    }
    let get = |v: &[usize], i: usize, name: &str| -> Result<usize, IrError> {
        if v.is_empty() {
            Ok(1)
        } else if v.len() == n {
            Ok(v[i])
        } else {
            Err(IrError::Attribute(format!("{name} {v:?} must have {n} entries")))
        }
    };
    if !pads.is_empty() && pads.len() != 2 * n {
        return Err(IrError::Attribute(format!("pads {pads:?} must have {} entries", 2 * n)));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let stride = get(strides, i, "strides")?;
        let dilation = get(dilations, i, "dilations")?;
        if stride == 0 || dilation == 0 || kernel[i] == 0 {
            return Err(IrError::Attribute("kernel, strides and dilations must be positive".into()));
        }
        let overflow = || IrError::Attribute("window geometry overflows".into());
        let eff = (kernel[i] - 1).checked_mul(dilation).and_then(|v| v.checked_add(1)).ok_or_else(overflow)?;
        let (pb, pe) = match auto_pad {
            AutoPad::NotSet => {
                if pads.is_empty() {
                    (0, 0)
                } else {
                    (pads[i], pads[i + n])
                }
            }
            AutoPad::Valid => (0, 0),
            AutoPad::SameUpper | AutoPad::SameLower => {
                let o = input[i].div_ceil(stride);
                let total = o
                    .saturating_sub(1)
                    .checked_mul(stride)
                    .and_then(|v| v.checked_add(eff))
                    .ok_or_else(overflow)?
                    .saturating_sub(input[i]);
                let small = total / 2;
                let big = total - small;
                if auto_pad == AutoPad::SameUpper { (small, big) } else { (big, small) }
            }
        };
        let padded = input[i].checked_add(pb).and_then(|v| v.checked_add(pe)).ok_or_else(overflow)?;
        if padded < eff {
            return Err(IrError::Shape(format!(
                "window of size {eff} does not fit spatial input {} with pads ({pb},{pe})",
                input[i]
            )));
        }
        let span = padded - eff;
        let mut o = if ceil_mode { span.div_ceil(stride) + 1 } else { span / stride + 1 };
        if ceil_mode && (o - 1) * stride >= input[i] + pb {
            o -= 1;
        }
        out.push(AxisWindow {
            input: input[i],
            kernel: kernel[i],
            stride,
            dilation,
            pad_begin: pb,
            pad_end: pe,
            output: o,
        });
    }
    Ok(out)
}

impl ConvAttrs {
    /// The windows for spatial input sizes and a weight's spatial kernel sizes.
    pub fn windows(&self, input: &[usize], weight_kernel: &[usize]) -> Result<Vec<AxisWindow>, IrError> {
        let k = self.kernel_shape.as_deref().unwrap_or(weight_kernel);
        resolve_windows(input, k, &self.strides, &self.dilations, &self.pads, self.auto_pad, false)
    }
}

impl PoolAttrs {
    /// The windows for spatial input sizes.
    pub fn windows(&self, input: &[usize]) -> Result<Vec<AxisWindow>, IrError> {
        resolve_windows(
            input,
            &self.kernel_shape,
            &self.strides,
            &self.dilations,
            &self.pads,
            self.auto_pad,
            self.ceil_mode,
        )
    }
}

/// Geometry of one spatial axis of a transposed convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransposeAxis {
    /// Input size.
    pub input: usize,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding removed at the beginning of the full output.
    pub pad_begin: usize,
    /// Output size.
    pub output: usize,
}

impl ConvTransposeAttrs {
    /// Resolve each spatial axis for the given spatial input sizes and weight kernel sizes.
    ///
    /// Full size is `stride * (in - 1) + output_padding + (k - 1) * dilation + 1`; the output is
    /// that minus pads, or `output_shape` when given (then pads split the difference, the odd
    /// one at the end for `SameUpper` and at the beginning otherwise).
    pub fn axes(&self, input: &[usize], weight_kernel: &[usize]) -> Result<Vec<TransposeAxis>, IrError> {
        let c = &self.conv;
        let n = input.len();
        let k = c.kernel_shape.as_deref().unwrap_or(weight_kernel);
        if k.len() != n {
            return Err(IrError::Attribute(format!("kernel_shape {k:?} does not match {n} spatial axes")));
        }
        let pick = |v: &[usize], i: usize, d: usize| if v.len() == n { v[i] } else { d };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let stride = pick(&c.strides, i, 1);
            let dilation = pick(&c.dilations, i, 1);
            let opad = pick(&self.output_padding, i, 0);
            if stride == 0 || dilation == 0 || k[i] == 0 {
                return Err(IrError::Attribute("kernel, strides and dilations must be positive".into()));
            }
            let full = stride
                .checked_mul(input[i].max(1) - 1)
                .and_then(|v| v.checked_add(opad))
                .and_then(|v| (k[i] - 1).checked_mul(dilation).and_then(|e| v.checked_add(e)))
                .and_then(|v| v.checked_add(1))
                .ok_or_else(|| IrError::Attribute("transposed window geometry overflows".into()))?;
            let (pb, output) = if let Some(os) = &self.output_shape {
                let target = *os.get(i).ok_or_else(|| IrError::Attribute("output_shape too short".into()))?;
                // A target larger than the full output gets the extra positions at the end
                // (bias only), as onnxruntime does.
                let total = full.saturating_sub(target);
                // ONNX: the begin pad is total/2 only for SAME_UPPER; otherwise the odd one goes first.
                let pb = if c.auto_pad == AutoPad::SameUpper { total / 2 } else { total - total / 2 };
                (pb, target)
            } else {
                match c.auto_pad {
                    AutoPad::SameUpper | AutoPad::SameLower => {
                        // ONNX shape inference and onnxruntime never exceed the full size.
                        let target = input[i].saturating_mul(stride).min(full);
                        let total = full.saturating_sub(target);
                        let pb = if c.auto_pad == AutoPad::SameLower { total - total / 2 } else { total / 2 };
                        (pb, target)
                    }
                    AutoPad::Valid => (0, full),
                    AutoPad::NotSet => {
                        let pb = if c.pads.len() == 2 * n { c.pads[i] } else { 0 };
                        let pe = if c.pads.len() == 2 * n { c.pads[i + n] } else { 0 };
                        let o = full.checked_sub(pb + pe).ok_or_else(|| {
                            IrError::Shape(format!("pads ({pb},{pe}) exceed transposed output {full}"))
                        })?;
                        (pb, o)
                    }
                }
            };
            out.push(TransposeAxis { input: input[i], kernel: k[i], stride, dilation, pad_begin: pb, output });
        }
        Ok(out)
    }
}
