//! Nodes prepared for a fast kernel when the predictor is built.

use super::KernelSet;
use crate::plan::{Plan, Source, Step};
use lithe_ir::op::{Activation, AvgPoolAttrs, ConvAttrs, PoolAttrs};
use lithe_ir::{Graph, Op, Outlet, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::conv2d_gemm::{self, Conv2dGemm, per_channel_slope};
use lithe_kernels::conv2d_winograd::{self, Conv2dWinograd};
use lithe_kernels::fast;
use lithe_kernels::fully_connected_gemm::FullyConnectedGemm;
use lithe_kernels::gemm::Residual;

/// A node prepared for a fast kernel (constant operands packed or copied out once).
#[derive(Debug)]
pub(crate) enum Prepared {
    /// 2-D Conv as packed GEMM (im2col or pointwise).
    Conv(Conv2dGemm),
    /// 3x3 stride-1 Conv by Winograd, when its output size makes that faster.
    Winograd(Box<Conv2dWinograd>),
    /// Depthwise 2-D Conv: the direct kernels when the window geometry suits them, else
    /// `fallback`.
    Depthwise(Box<Depthwise>),
    /// FullyConnected as packed GEMM.
    FullyConnected(FullyConnectedGemm),
    /// 2-D MaxPool (direct kernel when the geometry suits it, else the reference).
    MaxPool(PoolAttrs),
    /// 2-D AveragePool (direct kernel when the geometry suits it, else the reference).
    AveragePool(AvgPoolAttrs),
    /// GlobalAveragePool over NCHW.
    GlobalAveragePool,
    /// Reshape, Flatten, Squeeze, Unsqueeze, Identity: the data unchanged (nothing to do when
    /// planned in place, else one copy).
    View,
    /// Concat.
    Concat,
    /// Transpose by this permutation (`None` reverses the axes).
    Transpose(Option<Vec<usize>>),
    /// Elementwise Add or Mul (same shapes, or per-channel broadcast).
    Binary(fast::BinaryOp),
    /// Slice with constant starts, ends, axes and all steps 1.
    Slice(SliceBounds),
    /// ReduceMean over constant axes (a fast path when they are the trailing axes).
    ReduceMean(Vec<i64>),
    /// Int8 conv (QConv) on the int8 kernels.
    QConv(Box<super::QConvKernel>),
    /// Per-tensor QuantizeLinear f32 -> u8.
    Quantize(super::PerTensorQuant),
    /// Per-tensor DequantizeLinear u8 -> f32.
    Dequantize(super::PerTensorQuant),
    /// 2-D MaxPool of u8 values (quantized activations), direct kernel only.
    MaxPoolU8(PoolAttrs),
    /// Int8 add (QAdd) with constant scalar parameters.
    QAdd(lithe_kernels::int8::QAddParams),
    /// Int8 global average pool (QGlobalAveragePool) with constant scalar parameters.
    QGlobalAveragePool(lithe_kernels::int8::QGapParams),
}

/// The constant parameters of a Slice.
#[derive(Debug)]
pub(crate) struct SliceBounds {
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// Axes (negative counts from the end); `0..starts.len()` when absent.
    axes: Option<Vec<i64>>,
}

impl SliceBounds {
    /// Begin and size of the box for an input of `shape`, when every axis is sliced once.
    fn resolve(&self, shape: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
        let rank = shape.len() as i64;
        let mut begin = vec![0usize; shape.len()];
        let mut size = shape.to_vec();
        let mut seen = vec![false; shape.len()];
        for (i, (&s, &e)) in self.starts.iter().zip(&self.ends).enumerate() {
            let ax = self.axes.as_ref().map_or(i as i64, |a| a.get(i).copied().unwrap_or(-1 - rank));
            let ax = if ax < 0 { ax + rank } else { ax };
            let ax = usize::try_from(ax).ok().filter(|&a| a < shape.len())?;
            if std::mem::replace(&mut seen[ax], true) {
                return None;
            }
            let (first, count) = lithe_kernels::reference::slice::axis_range(shape[ax], s, e, 1).ok()?;
            begin[ax] = first;
            size[ax] = count;
        }
        Some((begin, size))
    }
}

/// A depthwise conv (group = input channels = output channels).
#[derive(Debug)]
pub(crate) struct Depthwise {
    /// The attributes (windows resolve per input size).
    pub attrs: ConvAttrs,
    /// Channels.
    pub channels: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// `C x K x K` weights.
    pub weights: Vec<f32>,
    /// Bias per channel.
    pub bias: Option<Vec<f32>>,
    /// PReLU slope per channel (or one value).
    pub slope: Option<Vec<f32>>,
    /// The GEMM path for geometries the direct kernels don't cover.
    pub fallback: Conv2dGemm,
}

impl Prepared {
    /// Name of the kernel the node runs with (for profiles and logs).
    pub fn kernel_name(&self) -> String {
        match self {
            Prepared::Conv(c) if c.is_spatial_major() => format!("conv2d_gemm_spatial/{}", c.microkernel().name()),
            Prepared::Conv(c) => format!("conv2d_gemm/{}", c.microkernel().name()),
            Prepared::Winograd(c) => format!("winograd_{:?}/{}", c.tile(), c.microkernel().name()),
            Prepared::Depthwise(d) => format!("f32_dwconv_{0}x{0}/direct", d.kernel),
            Prepared::FullyConnected(f) => format!("fc_gemm/{}", f.microkernel().name()),
            Prepared::MaxPool(_) => "f32_maxpool2d/direct".to_string(),
            Prepared::AveragePool(_) => "f32_avgpool2d/direct".to_string(),
            Prepared::GlobalAveragePool => "f32_global_avgpool/direct".to_string(),
            Prepared::View => "view".to_string(),
            Prepared::Concat => "f32_concat/direct".to_string(),
            Prepared::Transpose(_) => "f32_transpose/direct".to_string(),
            Prepared::Binary(op) => format!("f32_{op:?}/direct").to_lowercase(),
            Prepared::Slice(_) => "f32_slice_box/direct".to_string(),
            Prepared::ReduceMean(_) => "f32_global_avgpool/direct".to_string(),
            Prepared::QConv(q) => q.kernel_name(),
            Prepared::Quantize(_) => "quantize_u8/direct".to_string(),
            Prepared::Dequantize(_) => "dequantize_u8/direct".to_string(),
            Prepared::MaxPoolU8(_) => "u8_maxpool2d/direct".to_string(),
            Prepared::QAdd(_) => "qadd_u8/direct".to_string(),
            Prepared::QGlobalAveragePool(_) => "u8_global_avgpool/direct".to_string(),
        }
    }

    /// True for the kernels over u8 values ([`Prepared::run`] does not run them).
    pub fn is_int8(&self) -> bool {
        matches!(
            self,
            Prepared::QConv(_)
                | Prepared::Quantize(_)
                | Prepared::Dequantize(_)
                | Prepared::MaxPoolU8(_)
                | Prepared::QAdd(_)
                | Prepared::QGlobalAveragePool(_)
        )
    }
}

/// One operand of a prepared kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Input<'a> {
    /// Its values and shape.
    Slice(&'a [f32], &'a [usize]),
    /// Planned in place of the output: its values are in the output buffer on entry.
    InOutput(&'a [usize]),
}

impl Input<'_> {
    fn shape(&self) -> &[usize] {
        match self {
            Input::Slice(_, s) | Input::InOutput(s) => s,
        }
    }

    fn slice(&self) -> Option<&[f32]> {
        match self {
            Input::Slice(d, _) => Some(d),
            Input::InOutput(_) => None,
        }
    }
}

impl Prepared {
    /// The input slots [`run`](Self::run) reads, in order.
    pub fn operand_slots(&self, op: &Op, num_inputs: usize) -> Vec<usize> {
        match (self, op) {
            (Prepared::Conv(_) | Prepared::Winograd(_) | Prepared::Depthwise(_), Op::Conv(a))
                if a.epilogue.residual =>
            {
                vec![0, 3]
            }
            (Prepared::Concat, _) => (0..num_inputs).collect(),
            (Prepared::QConv(_), Op::QConv(a)) if a.conv.epilogue.residual => vec![0, 6],
            (Prepared::Binary(_), _) => vec![0, 1],
            (Prepared::QAdd(_), _) => vec![0, 3],
            _ => vec![0],
        }
    }

    /// Run `op` on `inputs` (as [`operand_slots`](Self::operand_slots) lists them) into `y`
    /// of shape `y_shape`. `Ok(false)` when these shapes have no fast path (nothing was
    /// written; the reference kernel runs the node).
    pub fn run(
        &self,
        op: &Op,
        inputs: &[Input<'_>],
        y: &mut [f32],
        y_shape: &[usize],
        scratch: &mut Vec<f32>,
        threads: usize,
    ) -> Result<bool, KernelError> {
        let Some((first, rest)) = inputs.split_first() else { return Ok(false) };
        let x_shape = first.shape();
        // Every kernel but the view copy, the binary ops and the residual reads its first
        // operand from a separate buffer.
        let x = first.slice();
        let residual = match rest.first() {
            Some(Input::Slice(r, _)) if !matches!(self, Prepared::Binary(_)) => Residual::Separate(r),
            Some(Input::InOutput(_)) if !matches!(self, Prepared::Binary(_)) => Residual::InOutput,
            _ => Residual::None,
        };
        let done = match (self, x) {
            (Prepared::View, None) => true,
            (Prepared::View, Some(x)) if x.len() == y.len() => {
                y.copy_from_slice(x);
                true
            }
            (Prepared::Binary(bop), _) => {
                let [a, b] = inputs else { return Ok(false) };
                let Some(layout) = fast::binary_layout(a.shape(), b.shape(), y_shape) else { return Ok(false) };
                fast::f32_binary(*bop, layout, a.slice(), b.slice(), y)?;
                true
            }
            (_, None) => false,
            (
                Prepared::View
                | Prepared::QConv(_)
                | Prepared::Quantize(_)
                | Prepared::Dequantize(_)
                | Prepared::MaxPoolU8(_)
                | Prepared::QAdd(_)
                | Prepared::QGlobalAveragePool(_),
                Some(_),
            ) => false,
            (Prepared::Conv(c), Some(x)) => c.run(x, x_shape, residual, y, scratch, threads).map(|()| true)?,
            (Prepared::Winograd(c), Some(x)) => c.run(x, x_shape, residual, y, scratch, threads).map(|()| true)?,
            (Prepared::FullyConnected(f), Some(x)) => f.run(x, x_shape, y, threads).map(|()| true)?,
            (Prepared::Depthwise(d), Some(x)) => d.run(x, x_shape, residual, y, scratch, threads).map(|()| true)?,
            (Prepared::MaxPool(a), Some(x)) => match pool_params(a, x_shape, true) {
                Some(([n, c, h, w], params)) => fast::f32_maxpool2d(x, n, c, h, w, &params, y).map(|()| true)?,
                None => false,
            },
            (Prepared::AveragePool(a), Some(x)) => match pool_params(&a.pool, x_shape, false) {
                Some(([n, c, h, w], params)) => {
                    fast::f32_avgpool2d(x, n, c, h, w, &params, a.count_include_pad, y).map(|()| true)?
                }
                None => false,
            },
            (Prepared::GlobalAveragePool, Some(x)) => match x_shape {
                &[n, c, ref spatial @ ..] => {
                    fast::f32_global_avgpool(x, n * c, spatial.iter().product(), y).map(|()| true)?
                }
                _ => false,
            },
            (Prepared::Concat, _) => {
                let Op::Concat { axis } = op else { return Ok(false) };
                let rank = y_shape.len() as i64;
                let Some(axis) = Some(if *axis < 0 { axis + rank } else { *axis }).filter(|a| (0..rank).contains(a))
                else {
                    return Ok(false);
                };
                let mut parts = Vec::with_capacity(inputs.len());
                for i in inputs {
                    let Input::Slice(d, s) = i else { return Ok(false) };
                    parts.push((*d, *s));
                }
                fast::f32_concat(&parts, axis as usize, y).map(|()| true)?
            }
            (Prepared::Slice(bounds), Some(x)) => match bounds.resolve(x_shape) {
                Some((begin, size)) if size == y_shape => {
                    fast::f32_slice_box(x, x_shape, &begin, &size, y).map(|()| true)?
                }
                _ => false,
            },
            (Prepared::ReduceMean(axes), Some(x)) => {
                let rank = x_shape.len() as i64;
                let mut axes: Vec<i64> = axes.iter().map(|&a| if a < 0 { a + rank } else { a }).collect();
                axes.sort_unstable();
                let k = axes.len();
                let trailing =
                    k <= x_shape.len() && axes.iter().enumerate().all(|(i, &a)| a == rank - k as i64 + i as i64);
                if !trailing {
                    return Ok(false);
                }
                let split = x_shape.len() - k;
                let planes: usize = x_shape[..split].iter().product();
                fast::f32_global_avgpool(x, planes, x_shape[split..].iter().product(), y).map(|()| true)?
            }
            (Prepared::Transpose(perm), Some(x)) => {
                let perm: Vec<usize> = match perm {
                    Some(p) => p.clone(),
                    None => (0..x_shape.len()).rev().collect(),
                };
                fast::f32_transpose(x, x_shape, &perm, y).map(|()| true)?
            }
        };
        Ok(done)
    }
}

impl Depthwise {
    fn run(
        &self,
        x: &[f32],
        x_shape: &[usize],
        residual: Residual<'_>,
        y: &mut [f32],
        scratch: &mut Vec<f32>,
        threads: usize,
    ) -> Result<(), KernelError> {
        let shape = self.fallback.shape_for(x_shape)?;
        let Some(params) = fast::DwParams::from_windows(&shape.windows) else {
            return self.fallback.run(x, x_shape, residual, y, scratch, threads);
        };
        let activation = fast::FastActivation::from_ir(&self.attrs.epilogue.activation, self.slope.as_deref())?;
        let residual = match residual {
            Residual::None => None,
            Residual::Separate(r) => Some(r),
            Residual::InOutput => {
                scratch.clear();
                scratch.extend_from_slice(y);
                Some(&scratch[..])
            }
        };
        let [h, w] = shape.input_hw;
        fast::depthwise_conv2d_nchw(
            x,
            shape.batch,
            self.channels,
            h,
            w,
            &self.weights,
            self.bias.as_deref(),
            &params,
            residual,
            &activation,
            y,
            threads,
        )
    }
}

/// The direct pool kernel's geometry for an NCHW input, when it covers these attributes
/// (2-D, square 2x2 or 3x3 window, stride 2, dilation 1, and an output the floor rule gives).
/// For max pooling (`extend_end`), the extra windows of `ceil_mode` become end padding,
/// which max pooling ignores.
pub(crate) fn pool_params(
    a: &PoolAttrs,
    x_shape: &[usize],
    extend_end: bool,
) -> Option<([usize; 4], fast::PoolParams)> {
    let &[n, c, h, w] = x_shape else { return None };
    let wins = a.windows(&[h, w]).ok()?;
    let [wh, ww] = wins.as_slice() else { return None };
    if wh.kernel != ww.kernel || wh.stride != ww.stride || wh.dilation != 1 || ww.dilation != 1 {
        return None;
    }
    let params = fast::PoolParams {
        kernel: wh.kernel,
        stride: wh.stride,
        pads: fast::DwPads { top: wh.pad_begin, left: ww.pad_begin, bottom: wh.pad_end, right: ww.pad_end },
    };
    let mut params = params;
    if extend_end {
        // Grow the end padding until the floor rule gives the windows' output count.
        let need = |out: usize, input: usize, begin: usize| {
            ((out.checked_sub(1)? * wh.stride + wh.kernel).checked_sub(input + begin)).or(Some(0))
        };
        params.pads.bottom = params.pads.bottom.max(need(wh.output, h, wh.pad_begin)?);
        params.pads.right = params.pads.right.max(need(ww.output, w, ww.pad_begin)?);
    }
    let floor_output = params.output_size(h, w).ok()?;
    (params.supported() && floor_output == (wh.output, ww.output)).then_some(([n, c, h, w], params))
}

/// Prepare every step of `plan` that a fast kernel can run; `None` for the others.
pub(crate) fn prepare_steps(graph: &Graph, plan: &Plan, kernels: KernelSet) -> Vec<Option<Prepared>> {
    plan.steps.iter().map(|step| prepare_step(graph, step, kernels)).collect()
}

fn prepare_step(graph: &Graph, step: &Step, kernels: KernelSet) -> Option<Prepared> {
    let node = graph.node(step.node);
    let constant = |slot: usize| -> Option<Option<&Tensor>> {
        match step.inputs.get(slot).copied().flatten() {
            None => Some(None),
            Some(Source::Const(id)) => graph.const_value(Outlet::new(id, 0)).map(Some),
            Some(_) => None,
        }
    };
    let result = match &node.op {
        Op::Conv(attrs) => {
            let w = constant(1)??;
            if w.shape().len() != 4 {
                return None;
            }
            let (b, slope) = (constant(2)?, constant(4)?);
            if let Some(wino) = winograd(graph, step, attrs, w, b, slope, kernels) {
                return Some(Prepared::Winograd(Box::new(wino)));
            }
            if let Some(sm) = spatial_major(graph, step, attrs, w, b, slope, kernels) {
                return Some(Prepared::Conv(sm));
            }
            let rows_per_group = w.shape()[0] / attrs.group.max(1);
            let gemm = Conv2dGemm::prepare(kernels.f32_gemm_for_rows(rows_per_group), attrs, w, b, slope);
            match gemm {
                Ok(g) => Ok(depthwise(attrs, w, b, slope, g)),
                Err(e) => Err(e),
            }
        }
        Op::MaxPool(a) if a.kernel_shape.len() == 2 && input_dtype(graph, step) == Some(lithe_ir::DType::U8) => {
            Ok(Prepared::MaxPoolU8(a.clone()))
        }
        Op::MaxPool(a) if a.kernel_shape.len() == 2 => Ok(Prepared::MaxPool(a.clone())),
        Op::AveragePool(a) if a.pool.kernel_shape.len() == 2 => Ok(Prepared::AveragePool(a.clone())),
        Op::GlobalAveragePool => Ok(Prepared::GlobalAveragePool),
        Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze | Op::Identity => Ok(Prepared::View),
        Op::Concat { .. } => Ok(Prepared::Concat),
        Op::Transpose { perm } => Ok(Prepared::Transpose(perm.clone())),
        Op::Add => Ok(Prepared::Binary(fast::BinaryOp::Add)),
        Op::Mul => Ok(Prepared::Binary(fast::BinaryOp::Mul)),
        Op::ReduceMean(_) => match constant(1)? {
            Some(axes) if !axes.is_empty() => Ok(Prepared::ReduceMean(axes.to_i64_vec())),
            _ => return None,
        },
        Op::Slice => {
            let list = |slot: usize| -> Option<Option<Vec<i64>>> { Some(constant(slot)?.map(Tensor::to_i64_vec)) };
            let (starts, ends, axes, steps) = (list(1)??, list(2)??, list(3)?, list(4)?);
            if steps.is_some_and(|s| s.iter().any(|&v| v != 1)) || starts.len() != ends.len() {
                return None;
            }
            Ok(Prepared::Slice(SliceBounds { starts, ends, axes }))
        }
        Op::QConv(attrs) => match super::QConvKernel::prepare(graph, step, attrs, kernels) {
            Ok(Some(q)) => Ok(Prepared::QConv(Box::new(q))),
            Ok(None) => return None,
            Err(e) => Err(e),
        },
        Op::QAdd => Ok(Prepared::QAdd(super::qadd_params(graph, step)?)),
        Op::QGlobalAveragePool => Ok(Prepared::QGlobalAveragePool(super::qgap_params(graph, step)?)),
        Op::QuantizeLinear { to: lithe_ir::DType::U8, .. } => {
            Ok(Prepared::Quantize(super::PerTensorQuant::prepare(graph, step)?))
        }
        Op::DequantizeLinear { .. } if input_dtype(graph, step) == Some(lithe_ir::DType::U8) => {
            Ok(Prepared::Dequantize(super::PerTensorQuant::prepare(graph, step)?))
        }
        Op::FullyConnected(attrs) => {
            let w = constant(1)??;
            FullyConnectedGemm::prepare(kernels.f32_gemm, attrs, w, constant(2)?, constant(3)?)
                .map(Prepared::FullyConnected)
        }
        _ => return None,
    };
    match result {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::debug!(node = %node.name, error = %e, "no fast kernel; the reference kernel runs this node");
            None
        }
    }
}

/// The Winograd form of a 3x3 stride-1 group-1 Conv when its statically known output size
/// makes a Winograd tile faster ([`conv2d_winograd::choose_tile`]).
fn winograd(
    graph: &Graph,
    step: &Step,
    attrs: &ConvAttrs,
    w: &Tensor,
    b: Option<&Tensor>,
    slope: Option<&Tensor>,
    kernels: KernelSet,
) -> Option<Conv2dWinograd> {
    let ws = w.shape();
    if ws.len() != 4 || ws[2..] != [3, 3] || attrs.group != 1 {
        return None;
    }
    let [_, c_out, oh, ow] = static_output_nchw(graph, step)?;
    let tile = conv2d_winograd::choose_tile(oh, ow, ws[1], c_out)?;
    Conv2dWinograd::prepare(kernels.f32_gemm_for_rows(c_out), attrs, w, b, slope, tile).ok()
}

/// The spatial-major form of a pointwise Conv whose statically known output map is small
/// enough that putting its positions on the GEMM's row side pads less
/// ([`conv2d_gemm::spatial_major_pays`]). `LITHE_SPATIAL_MAJOR=0` turns it off.
fn spatial_major(
    graph: &Graph,
    step: &Step,
    attrs: &ConvAttrs,
    w: &Tensor,
    b: Option<&Tensor>,
    slope: Option<&Tensor>,
    kernels: KernelSet,
) -> Option<Conv2dGemm> {
    if std::env::var("LITHE_SPATIAL_MAJOR").as_deref() == Ok("0") {
        return None;
    }
    let ws = w.shape();
    if ws.len() != 4 || ws[2..] != [1, 1] {
        return None;
    }
    let [_, c_out, oh, ow] = static_output_nchw(graph, step)?;
    let (positions, channels, depth) = (oh * ow, c_out / attrs.group.max(1), ws[1]);
    let (channel_major, spatial) = (kernels.f32_gemm_for_rows(channels), kernels.f32_gemm_for_rows(positions));
    let pays =
        conv2d_gemm::spatial_major_pays(positions, channels, depth, channel_major.mr(), spatial.mr(), spatial.nr());
    if spatial.nr() != channel_major.nr() || !pays {
        return None;
    }
    // Refused (an error) unless the conv is 1x1, stride 1, unpadded.
    Conv2dGemm::prepare_spatial_major(spatial, attrs, w, b, slope).ok()
}

/// The dtype of the step's first input.
fn input_dtype(graph: &Graph, step: &Step) -> Option<lithe_ir::DType> {
    let x = graph.node_inputs(step.node).first().copied().flatten()?;
    Some(graph.value(x).ty.dtype)
}

/// The output shape of a conv step when the graph knows all four dims.
fn static_output_nchw(graph: &Graph, step: &Step) -> Option<[usize; 4]> {
    let out = &graph.value(Outlet::new(step.node, 0)).ty;
    let dims: Vec<usize> = out.shape.as_ref()?.dims().iter().map(|d| d.known()).collect::<Option<_>>()?;
    dims.try_into().ok()
}

/// A depthwise conv with square 3x3 or 5x5 kernels prepared for the direct kernels (keeping
/// `gemm` as the fallback), or the GEMM path for every other conv.
fn depthwise(attrs: &ConvAttrs, w: &Tensor, b: Option<&Tensor>, slope: Option<&Tensor>, gemm: Conv2dGemm) -> Prepared {
    let ws = w.shape();
    let channels = ws[0];
    let square = ws.len() == 4 && ws[1] == 1 && ws[2] == ws[3] && matches!(ws[2], 3 | 5);
    if attrs.group != channels || channels == 0 || !square {
        return Prepared::Conv(gemm);
    }
    let values = |t: &Tensor| -> Option<Vec<f32>> { Some(t.view_in_place::<f32>()?.iter().copied().collect()) };
    let slope = match (&attrs.epilogue.activation, slope) {
        (Activation::PRelu, Some(s)) => match per_channel_slope(s, channels) {
            Ok(v) => Some(v),
            Err(_) => return Prepared::Conv(gemm),
        },
        _ => None,
    };
    let Some(weights) = values(w) else { return Prepared::Conv(gemm) };
    let bias = match b.map(values) {
        None => None,
        Some(Some(v)) if v.len() == channels => Some(v),
        Some(_) => return Prepared::Conv(gemm),
    };
    Prepared::Depthwise(Box::new(Depthwise {
        attrs: attrs.clone(),
        channels,
        kernel: ws[2],
        weights,
        bias,
        slope,
        fallback: gemm,
    }))
}
