//! Nodes prepared for a fast kernel when the predictor is built.

use super::KernelSet;
use crate::plan::{Plan, Source, Step};
use lithe_ir::op::{Activation, AvgPoolAttrs, ConvAttrs, PoolAttrs};
use lithe_ir::{Graph, Op, Outlet, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::conv2d_gemm::Conv2dGemm;
use lithe_kernels::fast;
use lithe_kernels::fully_connected_gemm::FullyConnectedGemm;
use lithe_kernels::gemm::Residual;

/// A node prepared for a fast kernel (constant operands packed or copied out once).
#[derive(Debug)]
pub(crate) enum Prepared {
    /// 2-D Conv as packed GEMM (im2col or pointwise).
    Conv(Conv2dGemm),
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
            Prepared::Conv(c) => format!("conv2d_gemm/{}", c.microkernel().name()),
            Prepared::Depthwise(d) => format!("f32_dwconv_{0}x{0}/direct", d.kernel),
            Prepared::FullyConnected(f) => format!("fc_gemm/{}", f.microkernel().name()),
            Prepared::MaxPool(_) => "f32_maxpool2d/direct".to_string(),
            Prepared::AveragePool(_) => "f32_avgpool2d/direct".to_string(),
            Prepared::GlobalAveragePool => "f32_global_avgpool/direct".to_string(),
        }
    }
}

impl Prepared {
    /// Run on `x` (shape `x_shape`) into `y`, adding `residual` for a conv fusing one.
    /// `Ok(false)` when this input's geometry has no fast kernel (nothing was written; the
    /// reference kernel runs the node).
    pub fn run(
        &self,
        x: &[f32],
        x_shape: &[usize],
        residual: Residual<'_>,
        y: &mut [f32],
        scratch: &mut Vec<f32>,
        threads: usize,
    ) -> Result<bool, KernelError> {
        match self {
            Prepared::Conv(c) => c.run(x, x_shape, residual, y, scratch, threads).map(|()| true),
            Prepared::FullyConnected(f) => f.run(x, x_shape, y, threads).map(|()| true),
            Prepared::Depthwise(d) => d.run(x, x_shape, residual, y, scratch, threads).map(|()| true),
            Prepared::MaxPool(a) => {
                let Some((nchw, params)) = pool_params(a, x_shape) else { return Ok(false) };
                let [n, c, h, w] = nchw;
                fast::f32_maxpool2d(x, n, c, h, w, &params, y).map(|()| true)
            }
            Prepared::AveragePool(a) => {
                let Some((nchw, params)) = pool_params(&a.pool, x_shape) else { return Ok(false) };
                let [n, c, h, w] = nchw;
                fast::f32_avgpool2d(x, n, c, h, w, &params, a.count_include_pad, y).map(|()| true)
            }
            Prepared::GlobalAveragePool => {
                let &[n, c, ref spatial @ ..] = x_shape else { return Ok(false) };
                let plane: usize = spatial.iter().product();
                fast::f32_global_avgpool(x, n * c, plane, y).map(|()| true)
            }
        }
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
fn pool_params(a: &PoolAttrs, x_shape: &[usize]) -> Option<([usize; 4], fast::PoolParams)> {
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
            let gemm = Conv2dGemm::prepare(kernels.f32_gemm, attrs, w, b, slope);
            match gemm {
                Ok(g) => Ok(depthwise(attrs, w, b, slope, g)),
                Err(e) => Err(e),
            }
        }
        Op::MaxPool(a) if a.kernel_shape.len() == 2 => Ok(Prepared::MaxPool(a.clone())),
        Op::AveragePool(a) if a.pool.kernel_shape.len() == 2 => Ok(Prepared::AveragePool(a.clone())),
        Op::GlobalAveragePool => Ok(Prepared::GlobalAveragePool),
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
        (Activation::PRelu, Some(s)) => match values(s) {
            Some(v) if v.len() == 1 || (v.len() == channels && matches!(s.shape(), [_, 1, 1] | [1, _, 1, 1])) => {
                Some(v)
            }
            _ => return Prepared::Conv(gemm),
        },
        _ => None,
    };
    let (Some(weights), Some(bias)) = (values(w), b.map(values)) else {
        return Prepared::Conv(gemm);
    };
    let bias = match (b, bias) {
        (None, _) => None,
        (Some(_), Some(v)) if v.len() == channels => Some(v),
        _ => return Prepared::Conv(gemm),
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
