//! Static post-training quantization with calibration data.
//!
//! 1. [`quantizable_nodes`]: Conv (grouped and depthwise included), FullyConnected, Gemm and
//!    MatMul whose weight is a constant; with [`PtqConfig::quantize_adds`] also residual adds
//!    ([`quantizable_add`]) and global average pools ([`quantizable_global_pool`]) whose result
//!    feeds those nodes; minus the nodes whose name matches a `--skip` pattern.
//! 2. [`calibrate`]: the fp32 model runs over the calibration batches; an [`Observer`] per
//!    activation (the data input of each quantizable node, both inputs of an add) proposes its
//!    threshold.
//! 3. [`insert_qdq`]: each such activation gets `QuantizeLinear -> DequantizeLinear` (u8; zero
//!    point 0 and `scale = T/255` when calibration never saw a negative value, else zero point
//!    128 and `scale = T/127`), read by the quantized nodes only; weights become int8 constants
//!    behind a `DequantizeLinear`, symmetric, per output channel (default) or per layer.
//!    Biases stay f32 here (the optimizer turns those of requantizing convs into int32).
//!
//! With adds and pools quantized, a MobileNet or ResNet is integer from the first conv to the
//! classifier, as onnxruntime's `quantize_static` quantizes it: the optimizer fuses each conv
//! with its output quantization, each add into a `QAdd` (a Relu after it disappears into the
//! output's saturation) and the pool into a `QGlobalAveragePool`, and onnxruntime running the
//! exported model computes the same bytes.
//!
//! [`quantize_static`] does both; [`calibrate_graph`] and [`Calibration::apply`] separate them,
//! so that a search over which nodes to leave in fp32 ([`crate::analysis::suggest_skips`])
//! re-quantizes without calibrating again.
//!
//! The result is a QDQ graph with ONNX semantics: the predictor runs it as is (quantization
//! simulated exactly), it exports to ONNX for onnxruntime, and the int8 kernels run the
//! quantized nodes.

mod bias_correction;
mod runner;

pub use runner::ValueRunner;

use crate::QuantError;
use crate::calib::{CalibAlgo, CalibOptions, Observer, QuantSpec};
use crate::data::CalibSource;
use crate::weight_only::{
    Rounding, Storage, WeightBits, dequantize_node, quantize_per_channel, remove_if_unread, storage_of,
};
pub use bias_correction::TapMeans;
use lithe_ir::{DType, Graph, NodeId, Op, Outlet, Tensor};
use std::collections::{BTreeMap, BTreeSet};

/// Settings of a static post-training quantization run.
#[derive(Clone, Debug)]
pub struct PtqConfig {
    /// The activation calibration algorithm (default `hist` at the 99.99th percentile: the
    /// most accurate here, see docs/quantization.md).
    pub algo: CalibAlgo,
    /// Histogram settings of the histogram-based algorithms.
    pub calib: CalibOptions,
    /// Weights per output channel (true, the default) or one scale per layer.
    pub per_channel: bool,
    /// Node-name patterns (`*` matches any run of characters) of nodes left in fp32.
    pub skip: Vec<String>,
    /// Samples per predictor run.
    pub batch_size: usize,
    /// Use at most this many calibration samples (all when `None`).
    pub max_samples: Option<usize>,
    /// Threads of the calibration predictor.
    pub threads: usize,
    /// Shift each quantized node's bias by the mean output error its int8 weights cause on
    /// the calibration data.
    pub bias_correction: bool,
    /// Quantize residual adds too ([`quantizable_add`]): their inputs and result become u8 and
    /// they run as `QAdd`, as onnxruntime quantizes them. Needs a graph whose adds are not fused
    /// into the convs before them (optimize without `fuse_conv_residual`).
    pub quantize_adds: bool,
}

impl Default for PtqConfig {
    fn default() -> Self {
        PtqConfig {
            algo: CalibAlgo::Hist { percent: crate::calib::DEFAULT_HIST_PERCENT },
            calib: CalibOptions::default(),
            per_channel: true,
            skip: Vec::new(),
            batch_size: 16,
            max_samples: None,
            threads: 1,
            bias_correction: false,
            quantize_adds: true,
        }
    }
}

/// The calibrated range of one activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivationRange {
    /// The real value mapped to the largest level.
    pub threshold: f32,
    /// True when calibration never saw a negative value (u8 with zero point 0).
    pub non_negative: bool,
    /// The largest |x| seen.
    pub abs_max: f32,
}

impl ActivationRange {
    /// Scale and zero point of the u8 encoding.
    pub fn scale_zero_point(&self) -> (f32, u8) {
        let t = if self.threshold > 0.0 && self.threshold.is_finite() { self.threshold } else { 1.0 };
        if self.non_negative { (t / 255.0, 0) } else { (t / 127.0, 128) }
    }
}

/// What [`quantize_static`] did.
#[derive(Clone, Debug, Default)]
pub struct PtqReport {
    /// Names of the nodes quantized.
    pub quantized: Vec<String>,
    /// Names of the nodes skipped by a pattern.
    pub skipped: Vec<String>,
    /// Each quantized activation by value name, with its range.
    pub ranges: Vec<(String, ActivationRange)>,
    /// Calibration samples used.
    pub samples: usize,
}

/// True when `name` matches `pattern`, where `*` matches any run of characters.
pub fn matches_pattern(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The nodes that static quantization covers, and the nodes a `skip` pattern removed: convs,
/// dense layers and matmuls with a constant weight and, when `adds` is set, the residual adds
/// and global average pools that feed them (see [`quantizable_add`] and
/// [`quantizable_global_pool`]).
pub fn quantizable_nodes(graph: &Graph, skip: &[String], adds: bool) -> (Vec<NodeId>, Vec<NodeId>) {
    let mut take = Vec::new();
    let mut skipped = Vec::new();
    let skip_or_take = |id: NodeId, take: &mut Vec<NodeId>, skipped: &mut Vec<NodeId>| {
        if skip.iter().any(|p| matches_pattern(p, &graph.node(id).name)) {
            skipped.push(id);
        } else {
            take.push(id);
        }
    };
    for id in graph.node_ids() {
        let node = graph.node(id);
        let inputs = graph.node_inputs(id);
        let weight = inputs.get(1).copied().flatten().and_then(|o| graph.const_value(o));
        let data_is_f32 = inputs.first().copied().flatten().is_some_and(|o| graph.value(o).ty.dtype == DType::F32);
        let eligible = matches!(node.op, Op::Conv(_) | Op::FullyConnected(_) | Op::Gemm(_) | Op::MatMul)
            && data_is_f32
            && weight.is_some_and(|w| {
                w.dtype() == DType::F32
                    && matches!(storage_of(&node.op, 1, w.shape().len()), Some(Storage::Weight { .. }))
            });
        if eligible {
            skip_or_take(id, &mut take, &mut skipped);
        }
    }
    if adds {
        let weighted: BTreeSet<NodeId> = take.iter().copied().collect();
        let candidates: Vec<NodeId> = graph
            .node_ids()
            .into_iter()
            .filter(|&id| quantizable_add(graph, id) || quantizable_global_pool(graph, id))
            .collect();
        let add_set: BTreeSet<NodeId> = candidates.iter().copied().collect();
        for id in candidates {
            let out = handed_on_value(graph, id);
            let feeds_int8 = graph
                .consumers(out)
                .iter()
                .any(|&(n, slot)| (slot == 0 && weighted.contains(&n)) || add_set.contains(&n));
            if feeds_int8 {
                skip_or_take(id, &mut take, &mut skipped);
            }
        }
        take.sort();
        skipped.sort();
    }
    (take, skipped)
}

/// True for an `Add` of two computed (not constant) f32 values that provably have one shape:
/// a residual connection, which static quantization runs as an int8 `QAdd` when its result
/// feeds quantized nodes.
pub fn quantizable_add(graph: &Graph, id: NodeId) -> bool {
    if !matches!(graph.node(id).op, Op::Add) {
        return false;
    }
    let inputs = graph.node_inputs(id);
    let [Some(a), Some(b)] = inputs[..] else { return false };
    let computed_f32 = |o: Outlet| graph.const_value(o).is_none() && graph.value(o).ty.dtype == DType::F32;
    let (sa, sb) = (&graph.value(a).ty.shape, &graph.value(b).ty.shape);
    let same_shape = sa.as_ref().zip(sb.as_ref()).is_some_and(|(sa, sb)| sa.provably_equal(sb));
    computed_f32(a) && computed_f32(b) && same_shape
}

/// True for a `GlobalAveragePool` of a computed 4-D f32 value: a classifier's pooling, which
/// static quantization runs as an int8 `QGlobalAveragePool` when its result feeds quantized
/// nodes.
pub fn quantizable_global_pool(graph: &Graph, id: NodeId) -> bool {
    if !matches!(graph.node(id).op, Op::GlobalAveragePool) {
        return false;
    }
    let Some(x) = graph.node_inputs(id).first().copied().flatten() else { return false };
    let ty = &graph.value(x).ty;
    graph.const_value(x).is_none() && ty.dtype == DType::F32 && ty.shape.as_ref().is_some_and(|s| s.rank() == 4)
}

/// The value an `Add` or a pooling hands on: its output, or the output of the op that alone
/// reads it when that op is a Relu/Clip (quantizing the value saturates like the activation,
/// see the `quantize_through_clamp` pass) or a reshape (quantization moves in front of it,
/// `quantize_before_reshape`), repeatedly.
fn handed_on_value(graph: &Graph, node: NodeId) -> Outlet {
    let mut out = Outlet::new(node, 0);
    loop {
        match graph.consumers(out)[..] {
            [(n, 0)]
                if matches!(
                    graph.node(n).op,
                    Op::Relu | Op::Clip | Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze
                ) && !graph.outputs().contains(&out) =>
            {
                out = Outlet::new(n, 0)
            }
            _ => return out,
        }
    }
}

/// The activations to calibrate: the data input (slot 0) of each node and both inputs of the
/// adds, without repeats.
pub fn activation_values(graph: &Graph, nodes: &[NodeId]) -> Vec<Outlet> {
    let set: BTreeSet<Outlet> = nodes
        .iter()
        .flat_map(|&id| {
            let inputs = graph.node_inputs(id);
            let n = if matches!(graph.node(id).op, Op::Add) { 2 } else { 1 };
            inputs.into_iter().take(n).flatten()
        })
        .collect();
    set.into_iter().collect()
}

/// Run `graph` over `source` and calibrate each of `values` with `config.algo` (two passes
/// over the data when the algorithm asks for it). `progress` gets (pass, samples done);
/// `first_pass` sees the values of every batch of the first pass.
pub fn calibrate(
    graph: &Graph,
    values: &[Outlet],
    source: &dyn CalibSource,
    config: &PtqConfig,
    progress: &mut dyn FnMut(usize, usize),
    first_pass: &mut dyn FnMut(&[&Tensor]),
) -> Result<(Vec<ActivationRange>, usize), QuantError> {
    if config.batch_size == 0 {
        return Err(QuantError::Setting { field: "batch_size", reason: "must be at least 1".into() });
    }
    let mut observers: Vec<Box<dyn Observer>> =
        values.iter().map(|_| config.algo.observer(&config.calib)).collect::<Result<_, _>>()?;
    let mut mins = vec![f32::INFINITY; values.len()];
    let mut maxs = vec![0.0f32; values.len()];
    let mut runner = ValueRunner::new(graph, values, config.threads)?;
    let mut pass = 1;
    let mut samples;
    loop {
        let first = pass == 1;
        samples = runner.run_source(
            source,
            config.batch_size,
            config.max_samples,
            &mut |tensors| {
                if first {
                    first_pass(tensors);
                }
                for (i, t) in tensors.iter().enumerate() {
                    let v = t.to_f32_vec();
                    if first {
                        for &x in &v {
                            if x.is_finite() {
                                mins[i] = mins[i].min(x);
                                maxs[i] = maxs[i].max(x.abs());
                            }
                        }
                    }
                    observers[i].observe(&v);
                }
            },
            &mut |done| progress(pass, done),
        )?;
        if samples == 0 {
            return Err(QuantError::CalibData { path: "calibration data".into(), reason: "no samples".into() });
        }
        if pass == 1 && observers.iter().any(|o| o.needs_second_pass()) {
            observers.iter_mut().for_each(|o| o.begin_second_pass());
            pass = 2;
            continue;
        }
        break;
    }
    let ranges = observers
        .iter()
        .zip(mins.iter().zip(&maxs))
        .map(|(o, (&min, &abs_max))| {
            let non_negative = min >= 0.0;
            let spec = if non_negative { QuantSpec::UINT8 } else { QuantSpec::INT8 };
            let threshold = o.threshold(spec).filter(|t| *t > 0.0 && t.is_finite()).unwrap_or(abs_max.max(1e-8));
            ActivationRange { threshold, non_negative, abs_max }
        })
        .collect();
    Ok((ranges, samples))
}

/// Insert the QDQ pairs of `nodes` (activations with `ranges`, in [`activation_values`]
/// order) and quantize their weights to int8.
pub fn insert_qdq(
    graph: &mut Graph,
    nodes: &[NodeId],
    values: &[Outlet],
    ranges: &[ActivationRange],
    per_channel: bool,
    corrections: &BTreeMap<NodeId, TapMeans>,
) -> Result<(), QuantError> {
    let node_set: BTreeSet<NodeId> = nodes.iter().copied().collect();
    for (&value, range) in values.iter().zip(ranges) {
        let name = graph.value(value).name.clone();
        let (scale, zero_point) = range.scale_zero_point();
        let s = graph.add_const(format!("{name}.act_scale"), Tensor::scalar(scale));
        let z = graph.add_const(format!("{name}.act_zero_point"), Tensor::scalar(zero_point));
        let q = graph.add_node_inferred(
            format!("{name}.quantize"),
            Op::QuantizeLinear { axis: 1, to: DType::U8 },
            &[Some(value), Some(s), Some(z)],
            1,
        )?[0];
        let dq = graph.add_node_inferred(
            format!("{name}.dequantize"),
            Op::DequantizeLinear { axis: 1 },
            &[Some(q), Some(s), Some(z)],
            1,
        )?[0];
        for (consumer, slot) in graph.consumers(value) {
            let data_slot = slot == 0 || (slot == 1 && matches!(graph.node(consumer).op, Op::Add));
            if data_slot && node_set.contains(&consumer) {
                graph.set_input(consumer, slot, Some(dq))?;
            }
        }
    }
    // Weights, each once (a weight shared by several quantized nodes is quantized once).
    let mut weights: BTreeMap<Outlet, usize> = BTreeMap::new();
    for &id in nodes {
        let Some(w) = graph.node_inputs(id).get(1).copied().flatten() else { continue };
        let Some(t) = graph.const_value(w) else { continue };
        if let Some(Storage::Weight { axis }) = storage_of(&graph.node(id).op, 1, t.shape().len()) {
            weights.insert(w, axis);
        }
    }
    for (w, axis) in weights {
        let Some(t) = graph.const_value(w) else { continue };
        let t = t.expect_view::<f32>("weight")?.to_owned();
        let name = graph.value(w).name.clone();
        let axis = per_channel.then_some(axis);
        let q = quantize_per_channel(&t, axis, WeightBits::Int8, Rounding::Nearest);
        let readers: Vec<NodeId> = graph
            .consumers(w)
            .into_iter()
            .filter(|(n, slot)| *slot == 1 && node_set.contains(n))
            .map(|(n, _)| n)
            .collect();
        if readers.iter().any(|n| corrections.contains_key(n)) {
            let scale = q.scale_tensor(axis.is_some())?;
            let rounded = lithe_kernels::reference::quantize::dequantize_linear(
                &q.values,
                &scale,
                None,
                axis.unwrap_or(0) as i64,
            )
            .map_err(|e| QuantError::Run(e.to_string()))?;
            let rounded = rounded.expect_view::<f32>("weight")?.to_owned();
            for n in &readers {
                if let Some(c) = corrections.get(n) {
                    c.correct(graph, *n, &t, &rounded)?;
                }
            }
        }
        replace_weight(graph, w, &name, q, axis, &node_set)?;
    }
    graph.remove_unused();
    graph.infer_shapes()?;
    Ok(())
}

/// Give the quantized readers of weight `w` a `DequantizeLinear` of its int8 form; other
/// readers keep the f32 constant.
fn replace_weight(
    graph: &mut Graph,
    w: Outlet,
    name: &str,
    q: crate::weight_only::Quantized,
    axis: Option<usize>,
    quantized: &BTreeSet<NodeId>,
) -> Result<(), QuantError> {
    let dq = dequantize_node(graph, name, q, axis)?;
    for (consumer, slot) in graph.consumers(w) {
        if slot == 1 && quantized.contains(&consumer) {
            graph.set_input(consumer, 1, Some(dq))?;
        }
    }
    remove_if_unread(graph, w);
    Ok(())
}

/// A calibrated model: the quantizable nodes, their activations' ranges and the bias
/// corrections, from which [`Calibration::apply`] builds the QDQ graph with any subset of the
/// nodes left in fp32, without running the calibration data again.
pub struct Calibration {
    /// The quantizable nodes (`config.skip` applied), in id order.
    pub nodes: Vec<NodeId>,
    /// The nodes a `config.skip` pattern removed.
    pub skipped: Vec<NodeId>,
    /// The activations calibrated ([`activation_values`] of `nodes`).
    pub values: Vec<Outlet>,
    /// Their ranges, in `values` order.
    pub ranges: Vec<ActivationRange>,
    /// Bias corrections per node (empty without `config.bias_correction`).
    pub corrections: BTreeMap<NodeId, TapMeans>,
    /// Calibration samples used.
    pub samples: usize,
    /// Weights per output channel.
    pub per_channel: bool,
}

/// Calibrate the quantizable nodes of `graph` on `source` (the first half of
/// [`quantize_static`]); `graph` is not changed.
pub fn calibrate_graph(
    graph: &Graph,
    source: &dyn CalibSource,
    config: &PtqConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Calibration, QuantError> {
    let (nodes, skipped) = quantizable_nodes(graph, &config.skip, config.quantize_adds);
    let values = activation_values(graph, &nodes);
    let mut corrections: BTreeMap<NodeId, TapMeans> = BTreeMap::new();
    if config.bias_correction {
        for &id in &nodes {
            if let Some(t) = TapMeans::for_node(graph, id) {
                corrections.insert(id, t);
            }
        }
    }
    // Which requested value each corrected node reads.
    let reads: Vec<(NodeId, usize)> = corrections
        .keys()
        .filter_map(|&id| {
            let x = graph.node_inputs(id)[0]?;
            values.iter().position(|&v| v == x).map(|i| (id, i))
        })
        .collect();
    let (ranges, samples) = calibrate(graph, &values, source, config, progress, &mut |tensors| {
        for &(id, i) in &reads {
            if let (Some(c), Some(t)) = (corrections.get_mut(&id), tensors.get(i)) {
                c.observe(t);
            }
        }
    })?;
    Ok(Calibration { nodes, skipped, values, ranges, corrections, samples, per_channel: config.per_channel })
}

impl Calibration {
    /// Turn `graph` (the graph that was calibrated, or a clone of it: node ids must be the
    /// same) into its QDQ form, leaving the calibrated nodes in `fp32` unquantized as well.
    /// Activations read only by nodes left in fp32 get no QDQ pair.
    pub fn apply(&self, graph: &mut Graph, fp32: &BTreeSet<NodeId>) -> Result<PtqReport, QuantError> {
        let nodes: Vec<NodeId> = self.nodes.iter().copied().filter(|id| !fp32.contains(id)).collect();
        let values = activation_values(graph, &nodes);
        let ranges: Vec<ActivationRange> = values
            .iter()
            .map(|v| {
                let i = self.values.iter().position(|c| c == v).ok_or_else(|| {
                    QuantError::Run(format!("activation '{}' was not calibrated", graph.value(*v).name))
                })?;
                Ok(self.ranges[i])
            })
            .collect::<Result<_, QuantError>>()?;
        let skipped = self.skipped.iter().chain(self.nodes.iter().filter(|id| fp32.contains(id)));
        let report = PtqReport {
            quantized: nodes.iter().map(|&id| graph.node(id).name.clone()).collect(),
            skipped: skipped.map(|&id| graph.node(id).name.clone()).collect(),
            ranges: values.iter().map(|&v| graph.value(v).name.clone()).zip(ranges.iter().copied()).collect(),
            samples: self.samples,
        };
        insert_qdq(graph, &nodes, &values, &ranges, self.per_channel, &self.corrections)?;
        Ok(report)
    }
}

/// Calibrate on `source` and turn `graph` into its int8 QDQ form (see the module docs).
pub fn quantize_static(
    graph: &mut Graph,
    source: &dyn CalibSource,
    config: &PtqConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PtqReport, QuantError> {
    let calibration = calibrate_graph(graph, source, config, progress)?;
    calibration.apply(graph, &BTreeSet::new())
}

#[cfg(test)]
mod tests {
    use super::matches_pattern;

    #[test]
    fn patterns_match_like_a_shell_glob_without_classes() {
        assert!(matches_pattern("conv1", "conv1"));
        assert!(!matches_pattern("conv1", "conv12"));
        assert!(matches_pattern("conv*", "conv12"));
        assert!(matches_pattern("*fc", "head.fc"));
        assert!(matches_pattern("*features.1*Conv", "/features.15/conv/Conv"));
        assert!(!matches_pattern("*features.1*Conv", "/features.2/conv/Relu"));
        assert!(matches_pattern("*", ""));
        assert!(!matches_pattern("a*a", "a"));
    }
}
