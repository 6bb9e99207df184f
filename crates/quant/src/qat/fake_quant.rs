//! The forward hook of quantization-aware training: before each fake-quantize node runs, its
//! scale (and, below 8 bits, its clipping bounds) is computed from the batch and the
//! strategy's state, and written over the scale constants for that pass.

use super::observer::ActObserver;
use crate::QuantError;
use lithe_ir::{Graph, NodeId, Op, Outlet, Tensor};
use lithe_train::{ForwardHook, Mode, TrainError};
use ndarray::{ArrayViewD, Axis};
use std::collections::HashMap;

/// One fake-quantized activation.
#[derive(Clone, Debug)]
pub(crate) struct ActQuant {
    /// The activation's value name (before quantization).
    pub value: String,
    /// The node whose input 0 is the activation: the Clip (below 8 bits) or the QuantizeLinear.
    pub hook_node: NodeId,
    /// The scale constant shared by the QuantizeLinear and DequantizeLinear.
    pub scale: Outlet,
    /// The Clip bounds (below 8 bits: the u8 range holds more levels than the bits).
    pub clip: Option<(Outlet, Outlet)>,
    /// The PACT clip before the fake quantizer, when enabled.
    pub pact: Option<Pact>,
    /// Zero point 0 (true) or 128.
    pub non_negative: bool,
    /// The strategy's state.
    pub observer: ActObserver,
    /// max|x| of the calibration pass, the threshold before any training batch.
    pub initial: f32,
}

/// A PACT clip `y = x - relu(x - a) + relu(-a - x)` in front of an activation's quantizer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pact {
    /// The trainable clip `a` (a scalar f32 constant).
    pub alpha: Outlet,
    /// The activation clipped.
    pub x: Outlet,
    /// The clipped value (what the fake quantizer reads).
    pub output: Outlet,
}

/// One fake-quantized weight.
#[derive(Clone, Debug)]
pub(crate) struct WeightQuant {
    /// The weight's value name in the fp32 model.
    pub name: String,
    /// `QuantizeLinear(W, scale)`; input 0 is the trainable f32 weight.
    pub q_node: NodeId,
    /// The `DequantizeLinear` read by the quantized node.
    pub dq_node: NodeId,
    /// The scale constant.
    pub scale: Outlet,
    /// The channel axis (per channel), or per layer.
    pub axis: Option<usize>,
}

/// Every fake quantizer of a QAT graph; the [`ForwardHook`] that sets their scales.
#[derive(Clone, Debug)]
pub(crate) struct FakeQuant {
    pub acts: Vec<ActQuant>,
    pub weights: Vec<WeightQuant>,
    pub bits: u32,
    by_node: HashMap<NodeId, Target>,
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Act(usize),
    Weight(usize),
}

impl FakeQuant {
    pub fn new(acts: Vec<ActQuant>, weights: Vec<WeightQuant>, bits: u32) -> Self {
        let mut by_node = HashMap::new();
        for (i, a) in acts.iter().enumerate() {
            by_node.insert(a.hook_node, Target::Act(i));
        }
        for (i, w) in weights.iter().enumerate() {
            by_node.insert(w.q_node, Target::Weight(i));
        }
        FakeQuant { acts, weights, bits, by_node }
    }

    /// The threshold an eval-mode batch of `acts[i]` (or the converted model) uses, given the
    /// batch maximum (ignored by the static strategies once trained).
    pub fn eval_threshold(&self, i: usize, batch_max: Option<f32>) -> f32 {
        let a = &self.acts[i];
        match (a.observer.strategy().is_static(), a.observer.stored(), batch_max) {
            (true, Some(t), _) => t,
            (false, _, Some(m)) => m,
            (false, Some(t), None) => t,
            _ => a.initial,
        }
    }

    /// Write the eval-mode scales into `graph`'s constants: each activation's stored
    /// threshold (the calibration one before training), each weight's scale from its current
    /// values. This is the state a converted model keeps.
    pub fn write_eval_scales(&self, graph: &mut Graph) -> Result<(), QuantError> {
        for i in 0..self.acts.len() {
            let t = self.eval_threshold(i, None);
            for (o, v) in self.act_overrides(i, t) {
                set_const(graph, o, v);
            }
        }
        for w in &self.weights {
            let x = graph
                .node_inputs(w.q_node)
                .first()
                .copied()
                .flatten()
                .and_then(|o| graph.const_value(o))
                .and_then(|t| t.view::<f32>())
                .ok_or_else(|| QuantError::Run(format!("weight '{}' is not an f32 constant", w.name)))?;
            let scales = weight_scales(&x.view(), w.axis, weight_max_level(self.bits));
            let t = scale_tensor(scales, w.axis.is_some())?;
            set_const(graph, w.scale, t);
        }
        Ok(())
    }

    /// The overrides of activation `i` quantized with threshold `t`.
    fn act_overrides(&self, i: usize, t: f32) -> Vec<(Outlet, Tensor)> {
        let a = &self.acts[i];
        let (scale, zero_point) = act_scale(t, a.non_negative, self.bits);
        let mut out = vec![(a.scale, Tensor::scalar(scale))];
        if let Some((lo, hi)) = a.clip {
            let (qmin, qmax) = act_levels(a.non_negative, self.bits);
            out.push((lo, Tensor::scalar((qmin - zero_point) * scale)));
            out.push((hi, Tensor::scalar((qmax - zero_point) * scale)));
        }
        out
    }
}

/// Replace the value of the constant at `o`.
pub(crate) fn set_const(graph: &mut Graph, o: Outlet, t: Tensor) {
    graph.node_mut(o.node).op = Op::Const(t);
}

/// `(scale, zero point)` of a u8 activation with threshold `t`: zero point 0 and
/// `t / (2^b - 1)` when non-negative, else 128 and `t / (2^(b-1) - 1)` (at 8 bits exactly
/// [`crate::ptq::ActivationRange::scale_zero_point`]).
pub(crate) fn act_scale(t: f32, non_negative: bool, bits: u32) -> (f32, f32) {
    let t = if t > 0.0 && t.is_finite() { t } else { 1.0 };
    if non_negative { (t / ((1u32 << bits) - 1) as f32, 0.0) } else { (t / ((1u32 << (bits - 1)) - 1) as f32, 128.0) }
}

/// The u8 levels an activation of `bits` bits uses.
pub(crate) fn act_levels(non_negative: bool, bits: u32) -> (f32, f32) {
    if non_negative {
        (0.0, ((1u32 << bits) - 1) as f32)
    } else {
        let n = ((1u32 << (bits - 1)) - 1) as f32;
        (128.0 - n, 128.0 + n)
    }
}

/// The largest weight level `2^(b-1) - 1`.
pub(crate) fn weight_max_level(bits: u32) -> f32 {
    ((1u32 << (bits - 1)) - 1) as f32
}

/// Symmetric weight scales, `max|w_c| / n` per slice along `axis` (or one for the tensor);
/// an all-zero slice gets 1, as post-training quantization does.
pub(crate) fn weight_scales(w: &ArrayViewD<'_, f32>, axis: Option<usize>, n: f32) -> Vec<f32> {
    let scale = |lane: ArrayViewD<'_, f32>| {
        let max = lane.iter().fold(0.0f32, |m, &v| if v.is_finite() { m.max(v.abs()) } else { m });
        if max > 0.0 { max / n } else { 1.0 }
    };
    match axis {
        Some(ax) => w.axis_iter(Axis(ax)).map(scale).collect(),
        None => vec![scale(w.view())],
    }
}

/// The scales as a tensor: 1-D per channel, a scalar per layer.
pub(crate) fn scale_tensor(scales: Vec<f32>, per_channel: bool) -> Result<Tensor, lithe_ir::IrError> {
    if per_channel { Tensor::from_vec(&[scales.len()], scales) } else { Ok(Tensor::scalar(scales[0])) }
}

fn batch_max(node: NodeId, inputs: &[Option<&Tensor>]) -> Result<f32, TrainError> {
    let x = inputs.first().copied().flatten().and_then(|t| t.view::<f32>()).ok_or_else(|| TrainError::Invalid {
        what: format!("fake quantizer at node {}", node.index()),
        detail: "input 0 is missing or not f32".into(),
    })?;
    Ok(x.iter().fold(0.0f32, |m, &v| if v.is_finite() { m.max(v.abs()) } else { m }))
}

impl ForwardHook for FakeQuant {
    fn before_node(
        &mut self,
        node: NodeId,
        inputs: &[Option<&Tensor>],
        mode: Mode,
    ) -> Result<Vec<(Outlet, Tensor)>, TrainError> {
        match self.by_node.get(&node).copied() {
            None => Ok(Vec::new()),
            Some(Target::Act(i)) => {
                let m = batch_max(node, inputs)?;
                let t = match mode {
                    Mode::Train => self.acts[i].observer.train(m),
                    Mode::Eval => self.eval_threshold(i, Some(m)),
                };
                Ok(self.act_overrides(i, t))
            }
            Some(Target::Weight(i)) => {
                let w = &self.weights[i];
                let x = inputs.first().copied().flatten().and_then(|t| t.view::<f32>()).ok_or_else(|| {
                    TrainError::Invalid { what: w.name.clone(), detail: "the weight is not f32".into() }
                })?;
                let scales = weight_scales(&x.view(), w.axis, weight_max_level(self.bits));
                let t = scale_tensor(scales, w.axis.is_some())?;
                Ok(vec![(w.scale, t)])
            }
        }
    }
}
