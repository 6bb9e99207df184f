//! Int8 nodes prepared for the int8 kernels: QConv (weights packed once), and per-tensor
//! QuantizeLinear / DequantizeLinear between u8 and f32 values.

use super::KernelSet;
use crate::plan::{Source, Step};
use lithe_ir::op::{Activation, Epilogue, QConvAttrs};
use lithe_ir::{DType, Graph, Outlet, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::fast::FastActivation;
use lithe_kernels::int8::{
    QActivation, QConvGeometry, QGemv, QGemvOut, QLinearConv2d, QuantEpilogue, QuantOut, Requant,
    integer_requant_multipliers,
};

/// An int8 kernel's operand or output: u8 or f32 elements.
#[derive(Debug)]
pub(crate) enum Elems<'a> {
    /// u8 elements.
    U8(&'a [u8]),
    /// f32 elements.
    F32(&'a [f32]),
}

/// An int8 kernel's output buffer.
#[derive(Debug)]
pub(crate) enum ElemsMut<'a> {
    /// u8 elements.
    U8(&'a mut [u8]),
    /// f32 elements.
    F32(&'a mut [f32]),
}

/// The requantization of a u8 output with scale `scale` and zero point `zero_point`: the
/// int8 kernels' [`Requant`] (`saturate(round_half_even(y / scale) + zero_point)`).
pub(crate) fn u8_requant(scale: f32, zero_point: u8) -> Requant {
    let zp = i32::from(zero_point);
    Requant::new(scale, -(zp as f32), (255 - zp) as f32, zp)
}

/// A QConv with its weights packed.
#[derive(Debug)]
pub(crate) struct QConvKernel {
    conv: QLinearConv2d,
    x_scale: f32,
    x_zero_point: u8,
    bias: Option<Vec<f32>>,
    /// An int32 bias added to the accumulators ([`lithe_ir::Op::QConv`]'s integer form).
    bias_i32: Option<Vec<i32>>,
    epilogue: Epilogue,
    /// `Some((y_scale, y_zero_point))` for a u8 output; with an int32 bias the kernel's
    /// multipliers already divide by `y_scale`, so this holds scale 1.
    requant: Option<(f32, u8)>,
    /// What the activation's clamp bounds are divided by: `y_scale` with integer
    /// requantization (the kernel's values are then in output steps), else 1.
    act_steps: f32,
    /// Row-major weights for a 1x1 conv on 1x1 maps (a fully connected layer), run as
    /// matrix-vector products instead of a one-column GEMM.
    gemv: Option<Gemv>,
}

/// A 1x1 conv on 1x1 maps (a fully connected layer), run by the int8 matrix-vector kernel.
#[derive(Debug)]
struct Gemv(QGemv);

impl Gemv {
    fn new(w: &[i8], w_shape: [usize; 4], w_scale: &[f32], x_scale: f32) -> Option<Gemv> {
        let [m, k, 1, 1] = w_shape else { return None };
        QGemv::prepare(w, m, k, w_scale, x_scale).ok().map(Gemv)
    }
}

/// The one value of a one-element constant.
fn single<T: lithe_ir::Element + Copy>(t: &Tensor) -> Option<T> {
    let v = t.view_in_place::<T>()?;
    if v.len() == 1 { v.iter().next().copied() } else { None }
}

impl QConvKernel {
    /// Prepare the QConv of `step` when its parameters are constants and its geometry is
    /// known without the input size (no automatic padding) or from the graph's static shape.
    pub fn prepare(
        graph: &Graph,
        step: &Step,
        attrs: &QConvAttrs,
        kernels: KernelSet,
    ) -> Result<Option<QConvKernel>, KernelError> {
        let constant = |slot: usize| constant_input(graph, step, slot);
        let present = |slot: usize| step.inputs.get(slot).copied().flatten().is_some();
        let (Some(w), Some(w_scale), Some(x_scale), Some(x_zp)) = (constant(3), constant(4), constant(1), constant(2))
        else {
            return Ok(None);
        };
        let (Ok(w_shape), Some(w_values), Some(w_scale), Some(x_scale), Some(x_zero_point)) = (
            <[usize; 4]>::try_from(w.shape()),
            w.view_in_place::<i8>(),
            w_scale.view_in_place::<f32>(),
            single::<f32>(x_scale),
            single::<u8>(x_zp),
        ) else {
            return Ok(None);
        };
        let (bias, bias_i32) = match (present(5), constant(5)) {
            (false, _) => (None, None),
            (true, Some(b)) => match (b.view_in_place::<f32>(), b.view_in_place::<i32>()) {
                (Some(v), _) => (Some(v.iter().copied().collect::<Vec<f32>>()), None),
                (None, Some(v)) => (None, Some(v.iter().copied().collect::<Vec<i32>>())),
                _ => return Ok(None),
            },
            (true, None) => return Ok(None),
        };
        // A bias of another length is left to the reference kernel, which reports it.
        let bias_len = bias.as_ref().map(Vec::len).or(bias_i32.as_ref().map(Vec::len));
        if bias_len.is_some_and(|n| n != w_shape[0]) {
            return Ok(None);
        }
        let requant = match attrs.to {
            DType::F32 => None,
            DType::U8 => match (constant(7).and_then(single::<f32>), constant(8).and_then(single::<u8>)) {
                (Some(s), Some(z)) => Some((s, z)),
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let x_hw = match static_input_hw(graph, step) {
            Some(hw) => hw,
            None if attrs.conv.auto_pad == lithe_ir::op::AutoPad::NotSet => [1 << 16; 2],
            None => return Ok(None),
        };
        let geom = QConvGeometry::resolve(&attrs.conv, x_hw, [w_shape[2], w_shape[3]])?;
        let w_values: Vec<i8> = w_values.iter().copied().collect();
        let mut w_scale: Vec<f32> = w_scale.iter().copied().collect();
        let (mut x_scale, mut requant, mut act_steps) = (x_scale, requant, 1.0f32);
        if bias_i32.is_some() {
            // Integer requantization: clamp-like activations only, no residual (the IR's rule);
            // anything else is left to the reference kernel, which reports it.
            let clamp_like =
                matches!(attrs.conv.epilogue.activation, Activation::None | Activation::Relu | Activation::Clip { .. });
            if attrs.conv.epilogue.residual || !clamp_like {
                return Ok(None);
            }
            if let Some((y_scale, zero_point)) = requant {
                if !(y_scale > 0.0 && y_scale.is_finite()) {
                    return Ok(None);
                }
                if w_scale.len() == 1 {
                    w_scale = vec![w_scale[0]; w_shape[0]];
                }
                w_scale = integer_requant_multipliers(x_scale, &w_scale, y_scale);
                (x_scale, requant, act_steps) = (1.0, Some((1.0, zero_point)), y_scale);
            }
        }
        // With the output size known at load time, convs with few positions may take the GEMM
        // with output channels along the vector lanes.
        let out_hw =
            static_input_hw(graph, step).and_then(|[h, w]| geom.output_hw([1, 1, h, w], [w_shape[2], w_shape[3]]).ok());
        let conv = match out_hw {
            Some((oh, ow)) => {
                QLinearConv2d::prepare_for_output(kernels.i8_gemm, &w_values, w_shape, &w_scale, geom, [oh, ow])?
            }
            None => QLinearConv2d::prepare(kernels.i8_gemm, &w_values, w_shape, &w_scale, geom)?,
        };
        let pointwise = geom == QConvGeometry { groups: 1, ..QConvGeometry::default() };
        let gemv = (pointwise && x_hw == [1, 1] && bias_i32.is_none())
            .then(|| Gemv::new(&w_values, w_shape, &w_scale, x_scale))
            .flatten();
        Ok(Some(QConvKernel {
            conv,
            x_scale,
            x_zero_point,
            bias,
            bias_i32,
            epilogue: attrs.conv.epilogue,
            requant,
            act_steps,
            gemv,
        }))
    }

    /// Name of the kernel (for profiles).
    pub fn kernel_name(&self) -> String {
        if let Some(g) = &self.gemv {
            format!("qconv_gemv/{}", g.0.name())
        } else if self.conv.is_depthwise() {
            "qconv_dw/direct".to_string()
        } else if self.conv.uses_channel_lanes() {
            "qconv_chlanes/qu8s8_conv_11x32c4_chlanes__avx512vnni".to_string()
        } else {
            format!("qconv_gemm/{}", self.conv.microkernel().name())
        }
    }

    /// The activation the kernel epilogue applies itself, when it can: a clamp-like one, and
    /// a residual (added first) only on the GEMM path.
    fn fused_activation(&self) -> Option<QActivation> {
        if self.epilogue.residual && self.conv.is_depthwise() {
            return None;
        }
        match self.epilogue.activation {
            Activation::None => Some(QActivation::None),
            Activation::Relu => Some(QActivation::Relu),
            Activation::Clip { min, max } => Some(QActivation::Clamp { min, max }.in_steps_of(self.act_steps)),
            _ => None,
        }
    }

    /// Run on `x` (`x_shape` NCHW u8) with the residual (when fused) into `y`; `scratch`
    /// holds the f32 result when the epilogue cannot be fused into the kernel.
    pub fn run(
        &self,
        x: &[u8],
        x_shape: &[usize],
        residual: Option<&[f32]>,
        y: ElemsMut<'_>,
        scratch: &mut Vec<f32>,
        threads: usize,
    ) -> Result<bool, KernelError> {
        let Ok(x_shape) = <[usize; 4]>::try_from(x_shape) else { return Ok(false) };
        let mut ep = QuantEpilogue {
            x_scale: self.x_scale,
            bias: self.bias.as_deref(),
            bias_i32: self.bias_i32.as_deref(),
            activation: QActivation::None,
        };
        if let (Some(g), [n, k, 1, 1], Some(act), false) =
            (&self.gemv, x_shape, self.fused_activation(), self.epilogue.residual)
            && k == g.0.k()
            && x.len() == n * k
        {
            return self.run_gemv(g, x, n, act, y, threads);
        }
        if let Some(act) = self.fused_activation() {
            ep.activation = act;
            // The residual joins the kernel epilogue: `(acc·scale + bias) + r`, then the clamp
            // with the separate pass's comparisons, then the requantization.
            let residual = match (self.epilogue.residual, residual) {
                (true, Some(r)) => Some(r),
                (false, None) => None,
                _ => return Ok(false),
            };
            let out = match (y, self.requant) {
                (ElemsMut::F32(y), None) => QuantOut::F32(y),
                (ElemsMut::U8(y), Some((scale, zero_point))) => QuantOut::U8 { data: y, scale, zero_point },
                _ => return Ok(false),
            };
            if residual.is_some_and(|r| r.len() != out.len()) {
                return Ok(false);
            }
            self.conv.run_with_residual(x, x_shape, self.x_zero_point, &ep, residual, out, threads)?;
            return Ok(true);
        }
        // The f32 result, then the residual and activation, then the requantization.
        let (buf, y_u8): (&mut [f32], Option<&mut [u8]>) = match (y, self.requant) {
            (ElemsMut::F32(y), None) => (y, None),
            (ElemsMut::U8(y), Some(_)) => {
                scratch.clear();
                scratch.resize(y.len(), 0.0);
                (scratch.as_mut_slice(), Some(y))
            }
            _ => return Ok(false),
        };
        self.conv.run(x, x_shape, self.x_zero_point, &ep, QuantOut::F32(buf), threads)?;
        let residual = match (self.epilogue.residual, residual) {
            (true, Some(r)) if r.len() == buf.len() => Some(r),
            (false, None) => None,
            _ => return Ok(false),
        };
        // One pass over cache-sized chunks: residual, activation, requantization.
        let act = FastActivation::from_ir(&self.epilogue.activation, None)?;
        let rq = self.requant.map(|(scale, zp)| u8_requant(scale, zp));
        const CHUNK: usize = 2048;
        let mut y_u8 = y_u8.map(|y| y.chunks_mut(CHUNK));
        for (i, chunk) in buf.chunks_mut(CHUNK).enumerate() {
            if let Some(r) = residual {
                chunk.iter_mut().zip(&r[i * CHUNK..]).for_each(|(v, r)| *v += r);
            }
            act.apply_row(chunk);
            if let (Some(rq), Some(q)) = (rq, y_u8.as_mut().and_then(Iterator::next)) {
                q.iter_mut().zip(chunk.iter()).for_each(|(q, &v)| *q = rq.apply(v) as u8);
            }
        }
        Ok(true)
    }
}

impl QConvKernel {
    /// The fully connected form: one matrix-vector product per image, rows split over
    /// `threads`.
    fn run_gemv(
        &self,
        g: &Gemv,
        x: &[u8],
        n: usize,
        act: QActivation,
        y: ElemsMut<'_>,
        threads: usize,
    ) -> Result<bool, KernelError> {
        let out = match (y, self.requant) {
            (ElemsMut::F32(y), None) => QGemvOut::F32(y),
            (ElemsMut::U8(data), Some((scale, zp))) => QGemvOut::U8 { data, requant: u8_requant(scale, zp) },
            _ => return Ok(false),
        };
        let len = match &out {
            QGemvOut::F32(y) => y.len(),
            QGemvOut::U8 { data, .. } => data.len(),
        };
        if len != n * g.0.m() {
            return Ok(false);
        }
        g.0.run(x, n, self.x_zero_point, self.bias.as_deref(), act.bounds(), out, threads)?;
        Ok(true)
    }
}

/// The static spatial size of the QConv's input, when the graph knows it (other dims may be
/// symbolic).
fn static_input_hw(graph: &Graph, step: &Step) -> Option<[usize; 2]> {
    let x = graph.node_inputs(step.node).first().copied().flatten()?;
    let shape = graph.value(x).ty.shape.as_ref()?;
    match shape.dims() {
        [_, _, h, w] => Some([h.known()?, w.known()?]),
        _ => None,
    }
}

/// Per-tensor QuantizeLinear (f32 -> u8) or DequantizeLinear (u8 -> f32) with constant
/// parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PerTensorQuant {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: u8,
}

impl PerTensorQuant {
    /// The constant scalar parameters at slots 1 and 2 of `step` (zero point absent means 0;
    /// it must be u8).
    pub fn prepare(graph: &Graph, step: &Step) -> Option<PerTensorQuant> {
        let constant = |slot: usize| -> Option<Option<&Tensor>> {
            match step.inputs.get(slot).copied().flatten() {
                None => Some(None),
                Some(Source::Const(id)) => graph.const_value(Outlet::new(id, 0)).map(Some),
                Some(_) => None,
            }
        };
        let scale = single::<f32>(constant(1)??)?;
        let zero_point = match constant(2)? {
            None => 0,
            Some(z) => single::<u8>(z)?,
        };
        Some(PerTensorQuant { scale, zero_point })
    }

    /// `y = saturate(round_half_even(x / scale) + zero_point)`.
    pub fn quantize(&self, x: &[f32], y: &mut [u8], threads: usize) -> Result<(), KernelError> {
        lithe_kernels::int8::quantize::quantize_linear(x, self.scale, self.zero_point, y, threads)
    }

    /// `y = (x - zero_point) * scale`.
    pub fn dequantize(&self, x: &[u8], y: &mut [f32], threads: usize) -> Result<(), KernelError> {
        lithe_kernels::int8::quantize::dequantize_linear(x, self.scale, self.zero_point, y, threads)
    }
}

/// The constant at input `slot` of `step`, if that input is a constant.
fn constant_input<'g>(graph: &'g Graph, step: &Step, slot: usize) -> Option<&'g Tensor> {
    match step.inputs.get(slot).copied().flatten()? {
        Source::Const(id) => graph.const_value(Outlet::new(id, 0)),
        _ => None,
    }
}

/// The one value of the constant at input `slot` of `step`, if it is a one-value constant of
/// element type `T`.
fn constant_scalar<T: lithe_ir::Element + Copy>(graph: &Graph, step: &Step, slot: usize) -> Option<T> {
    single::<T>(constant_input(graph, step, slot)?)
}

/// The constant scalar parameters of the QAdd of `step` (slots 1, 2, 4, 5, 6, 7).
pub(crate) fn qadd_params(graph: &Graph, step: &Step) -> Option<lithe_kernels::int8::QAddParams> {
    Some(lithe_kernels::int8::QAddParams {
        a_scale: constant_scalar(graph, step, 1)?,
        a_zero_point: constant_scalar(graph, step, 2)?,
        b_scale: constant_scalar(graph, step, 4)?,
        b_zero_point: constant_scalar(graph, step, 5)?,
        c_scale: constant_scalar(graph, step, 6)?,
        c_zero_point: constant_scalar(graph, step, 7)?,
    })
}

/// The constant scalar parameters of the QGlobalAveragePool of `step` (slots 1 to 4).
pub(crate) fn qgap_params(graph: &Graph, step: &Step) -> Option<lithe_kernels::int8::QGapParams> {
    Some(lithe_kernels::int8::QGapParams {
        x_scale: constant_scalar(graph, step, 1)?,
        x_zero_point: constant_scalar(graph, step, 2)?,
        y_scale: constant_scalar(graph, step, 3)?,
        y_zero_point: constant_scalar(graph, step, 4)?,
    })
}
