//! Building the fake-quantized training graph.

use super::equalize::equalize_depthwise_inputs;
use super::fake_quant::{ActQuant, FakeQuant, Pact, WeightQuant};
use super::{ActObserver, QatConfig, QatModel, QuantOpType};
use crate::QuantError;
use crate::calib::CalibAlgo;
use crate::data::CalibSource;
use crate::ptq::{PtqConfig, activation_values, calibrate, insert_qdq, quantizable_nodes};
use crate::weight_only::{Storage, storage_of};
use lithe_ir::{DType, Graph, NodeId, Op, Outlet, Tensor};
use lithe_passes::PassManager;
use std::collections::BTreeMap;

/// The optimizer passes that would fuse activations or build int8 nodes: left out before
/// training (the training rules run unfused ops), run by [`QatModel::convert_int8`].
const FUSING_PASSES: [&str; 3] = ["fuse_conv_residual", "fuse_activation", "fuse_qdq_conv"];

/// The op family of a quantizable node.
fn op_type(graph: &Graph, id: NodeId) -> QuantOpType {
    match &graph.node(id).op {
        Op::Conv(attrs) => {
            let one_channel_per_group = graph.node_inputs(id)[1]
                .and_then(|w| graph.const_value(w))
                .is_some_and(|w| w.shape().get(1) == Some(&1));
            if attrs.group > 1 && one_channel_per_group { QuantOpType::DepthwiseConv } else { QuantOpType::Conv }
        }
        _ => QuantOpType::Linear,
    }
}

/// A value name not used in `graph` yet: `base`, else `base.1`, `base.2`, ...
fn free_name(graph: &Graph, base: &str) -> String {
    if graph.find_value(base).is_none() {
        return base.to_string();
    }
    (1..).map(|i| format!("{base}.{i}")).find(|n| graph.find_value(n).is_none()).unwrap_or_default()
}

fn node_of(graph: &Graph, value: &str) -> Result<NodeId, QuantError> {
    graph
        .find_value(value)
        .map(|o| o.node)
        .ok_or_else(|| QuantError::Run(format!("the QDQ graph has no value '{value}'")))
}

fn input(graph: &Graph, id: NodeId, slot: usize) -> Result<Outlet, QuantError> {
    graph
        .node_inputs(id)
        .get(slot)
        .copied()
        .flatten()
        .ok_or_else(|| QuantError::Run(format!("node '{}' has no input {slot}", graph.node(id).name)))
}

/// Insert PACT before the fake quantizer `q` of activation `name`:
/// `y = x - relu(x - a) + relu(-a - x)` with a trainable scalar `a` (initialized to `alpha`),
/// i.e. `x` clipped to `[-a, a]` with a gradient for `a`. Built as the equal
/// `relu(x + a) - relu(x - a) - a` (`relu(-z) = relu(z) - z`), which needs no other constant.
fn insert_pact(g: &mut Graph, q: NodeId, name: &str, alpha: f32) -> Result<Pact, QuantError> {
    let x = input(g, q, 0)?;
    let a = g.add_const(free_name(g, &format!("{name}.pact_alpha")), Tensor::scalar(alpha));
    let node = |g: &mut Graph, suffix: &str, op: Op, ins: &[Option<Outlet>]| -> Result<Outlet, QuantError> {
        Ok(g.add_node_inferred(free_name(g, &format!("{name}.pact_{suffix}")), op, ins, 1)?[0])
    };
    let low = node(g, "low", Op::Add, &[Some(x), Some(a)])?;
    let low = node(g, "low_relu", Op::Relu, &[Some(low)])?;
    let high = node(g, "high", Op::Sub, &[Some(x), Some(a)])?;
    let high = node(g, "high_relu", Op::Relu, &[Some(high)])?;
    let y = node(g, "band", Op::Sub, &[Some(low), Some(high)])?;
    let y = node(g, "clipped", Op::Sub, &[Some(y), Some(a)])?;
    g.set_input(q, 0, Some(y))?;
    Ok(Pact { alpha: a, x, output: y })
}

impl QatModel {
    /// Prepare `graph` (an fp32 model as imported) for quantization-aware training; `source`
    /// feeds the first pass that decides each activation's zero point (and its threshold
    /// before training). `progress` gets the samples done.
    pub fn prepare(
        graph: &Graph,
        source: &dyn CalibSource,
        config: &QatConfig,
        progress: &mut dyn FnMut(usize),
    ) -> Result<QatModel, QuantError> {
        config.validate()?;
        let mut g = graph.clone();
        let mut passes = PassManager::default_pipeline();
        for p in FUSING_PASSES {
            passes.disable(p)?;
        }
        passes.run(&mut g)?;

        let (all, skipped) = quantizable_nodes(&g, &config.skip, false);
        let (nodes, other_types): (Vec<NodeId>, Vec<NodeId>) =
            all.iter().partition(|&&id| config.op_types.contains(&op_type(&g, id)));
        let skipped: Vec<NodeId> = skipped.into_iter().chain(other_types).collect();
        if nodes.is_empty() {
            return Err(QuantError::Setting {
                field: "op_types",
                reason: format!("no node of '{}' left to quantize", g.name),
            });
        }
        if config.equalize && config.per_channel {
            let depthwise: Vec<NodeId> =
                nodes.iter().copied().filter(|&id| op_type(&g, id) == QuantOpType::DepthwiseConv).collect();
            let n =
                equalize_depthwise_inputs(&mut g, &depthwise, source, config.calib_batch_size, config.calib_samples)?;
            tracing::info!(equalized = n, "depthwise input ranges equalized");
        }
        let values = activation_values(&g, &nodes);
        let ptq = PtqConfig {
            algo: CalibAlgo::AbsMax,
            batch_size: config.calib_batch_size,
            max_samples: config.calib_samples,
            ..PtqConfig::default()
        };
        let (ranges, _) = calibrate(&g, &values, source, &ptq, &mut |_, done| progress(done), &mut |_| {})?;
        let value_names: Vec<String> = values.iter().map(|&v| g.value(v).name.clone()).collect();

        // The f32 weights, before insert_qdq replaces them by int8 constants.
        let mut weights: BTreeMap<Outlet, (String, Tensor, Option<usize>)> = BTreeMap::new();
        for &id in &nodes {
            let w = input(&g, id, 1)?;
            let Some(t) = g.const_value(w) else { continue };
            if let Some(Storage::Weight { axis }) = storage_of(&g.node(id).op, 1, t.shape().len()) {
                weights.insert(w, (g.value(w).name.clone(), t.clone(), config.per_channel.then_some(axis)));
            }
        }
        insert_qdq(&mut g, &nodes, &values, &ranges, config.per_channel, &BTreeMap::new())?;

        // Each weight: Const(s8) -> DequantizeLinear becomes QuantizeLinear(Const(f32)) -> DequantizeLinear.
        let mut wq = Vec::new();
        for (name, t, axis) in weights.into_values() {
            let dq = node_of(&g, &format!("{name}.dq"))?;
            let scale = input(&g, dq, 1)?;
            let w = g.add_const(free_name(&g, &name), t);
            let q_name = free_name(&g, &format!("{name}.fake_quantize"));
            let axis_attr = axis.unwrap_or(0) as i64;
            let q = g.add_node_inferred(
                q_name,
                Op::QuantizeLinear { axis: axis_attr, to: DType::I8 },
                &[Some(w), Some(scale)],
                1,
            )?[0];
            g.set_input(dq, 0, Some(q))?;
            wq.push(WeightQuant { name, q_node: q.node, dq_node: dq, scale, axis });
        }

        // Each activation: its QuantizeLinear (behind a Clip below 8 bits) is where the hook acts.
        let mut acts = Vec::new();
        for (name, range) in value_names.into_iter().zip(&ranges) {
            let q = node_of(&g, &format!("{name}.quantize"))?;
            let scale = input(&g, q, 1)?;
            let mut hook_node = q;
            let mut clip = None;
            let pact = match config.pact {
                Some(alpha) => Some(insert_pact(&mut g, q, &name, alpha)?),
                None => None,
            };
            if config.bits < 8 {
                let x = input(&g, q, 0)?;
                let lo = g.add_const(free_name(&g, &format!("{name}.clip_min")), Tensor::scalar(0.0f32));
                let hi = g.add_const(free_name(&g, &format!("{name}.clip_max")), Tensor::scalar(range.abs_max));
                let c = g.add_node_inferred(
                    free_name(&g, &format!("{name}.clip")),
                    Op::Clip,
                    &[Some(x), Some(lo), Some(hi)],
                    1,
                )?[0];
                g.set_input(q, 0, Some(c))?;
                hook_node = c.node;
                clip = Some((lo, hi));
            }
            acts.push(ActQuant {
                value: name,
                hook_node,
                scale,
                clip,
                pact,
                non_negative: range.non_negative,
                observer: ActObserver::new(config.act_strategy),
                initial: range.abs_max,
            });
        }
        g.remove_unused();
        g.infer_shapes()?;
        g.validate()?;
        let fake = FakeQuant::new(acts, wq, config.bits);
        // The constants start at the calibration thresholds and the current weights' scales.
        fake.write_eval_scales(&mut g)?;
        tracing::info!(
            quantized = nodes.len(),
            activations = fake.acts.len(),
            weights = fake.weights.len(),
            "prepared for quantization-aware training"
        );
        Ok(QatModel {
            quantized: nodes.iter().map(|&id| g.node(id).name.clone()).collect(),
            skipped: skipped.iter().map(|&id| g.node(id).name.clone()).collect(),
            graph: g,
            fake,
            config: config.clone(),
        })
    }
}
