//! Per-layer error between two models with the same value names (fp32 and its quantized form,
//! or any two versions of a model): for each compared value, the cosine similarity, the
//! signal-to-noise ratio and the largest absolute difference of model B's value against model
//! A's over a data set, worst first. Errors are cumulative: a value's error includes
//! everything upstream of it.
//!
//! - [`quantized_values`] + [`compare_values`]: the outputs of the quantized nodes
//!   (`lite-cli quant --analyze`).
//! - [`match_values`] + [`diff_models`]: every f32 value the two models share by name, and their
//!   graph outputs (`lite-cli diff`).
//! - [`suggest_skips`]: which quantized nodes to leave in fp32 so that the quantized model's
//!   top-1 agreement with fp32 reaches a target (`lite-cli quant --target-agreement`).

use crate::QuantError;
use crate::data::{Batch, CalibSource, InputSpec, batches};
use crate::eval::{self, Agreement};
use crate::ptq::{Calibration, ValueRunner};
use lithe_ir::{DType, Dim, Graph, NodeId, Op, Outlet};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

/// The error of one value.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerError {
    /// The value's name (the producing node's output).
    pub value: String,
    /// The producing node's operator in model B.
    pub op: &'static str,
    /// Cosine similarity of B's value to A's over every element seen (1 = same direction).
    pub cosine: f64,
    /// `10 log10(Σ a² / Σ (a - b)²)` in dB (infinite when equal).
    pub snr_db: f64,
    /// The largest `|a - b|` over every element seen.
    pub max_abs_error: f64,
}

/// Running sums of one compared value.
#[derive(Clone, Copy, Debug, Default)]
struct ErrorSums {
    dot: f64,
    na: f64,
    nb: f64,
    err: f64,
    max_abs: f64,
    sum_abs: f64,
    n: u64,
}

impl ErrorSums {
    fn add(&mut self, a: &[f32], b: &[f32]) {
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (f64::from(x), f64::from(y));
            let d = x - y;
            self.dot += x * y;
            self.na += x * x;
            self.nb += y * y;
            self.err += d * d;
            // NaN differences count as infinitely large.
            self.max_abs = if d.is_nan() { f64::INFINITY } else { self.max_abs.max(d.abs()) };
            self.sum_abs += d.abs();
            self.n += 1;
        }
    }

    fn cosine(&self) -> f64 {
        match (self.na > 0.0, self.nb > 0.0) {
            // Equal values: exactly 1, not 1 within rounding.
            (true, true) if self.err == 0.0 => 1.0,
            (true, true) => (self.dot / (self.na.sqrt() * self.nb.sqrt())).clamp(-1.0, 1.0),
            (false, false) => 1.0,
            _ => 0.0,
        }
    }

    fn snr_db(&self) -> f64 {
        if self.err > 0.0 { 10.0 * (self.na / self.err).log10() } else { f64::INFINITY }
    }

    fn mean_abs(&self) -> f64 {
        self.sum_abs / self.n.max(1) as f64
    }

    fn layer(&self, value: String, op: &'static str) -> LayerError {
        LayerError { value, op, cosine: self.cosine(), snr_db: self.snr_db(), max_abs_error: self.max_abs }
    }
}

/// The outputs of B's quantized compute nodes (Conv, FullyConnected, Gemm, MatMul reading a
/// `DequantizeLinear`) that A also has, by name.
pub fn quantized_values(a: &Graph, b: &Graph) -> Vec<(Outlet, Outlet, &'static str)> {
    let mut out = Vec::new();
    for id in b.node_ids() {
        let node = b.node(id);
        let quantizable = matches!(
            node.op,
            Op::Conv(_) | Op::FullyConnected(_) | Op::Gemm(_) | Op::MatMul | Op::Add | Op::GlobalAveragePool
        );
        if !quantizable {
            continue;
        }
        let reads_dq = b
            .node_inputs(id)
            .iter()
            .take(2)
            .flatten()
            .any(|o| matches!(b.node(o.node).op, Op::DequantizeLinear { .. }));
        let ob = Outlet::new(id, 0);
        if let (true, Some(oa)) = (reads_dq, a.find_value(&b.value(ob).name)) {
            out.push((oa, ob, node.op.name()));
        }
    }
    out
}

/// The first `len` samples of a source.
#[derive(Debug)]
struct Limited<'a> {
    source: &'a dyn CalibSource,
    len: usize,
}

impl CalibSource for Limited<'_> {
    fn inputs(&self) -> &[InputSpec] {
        self.source.inputs()
    }
    fn len(&self) -> usize {
        self.len
    }
    fn load(&self, start: usize, count: usize) -> Result<Batch, QuantError> {
        self.source.load(start, count.min(self.len.saturating_sub(start)))
    }
}

/// What [`run_pair`] calls per batch: the sample count, A's values, B's values.
type PairFn<'a> = dyn FnMut(usize, &[Vec<f32>], &[Vec<f32>]) -> Result<(), QuantError> + 'a;

/// Run two runners on the same batches of `source` (its first `max_samples` samples), calling
/// `each` with each batch's sample count and both runners' values (in request order, the
/// chunks of fixed-batch models concatenated). Only one batch is held at a time.
fn run_pair(
    ra: &mut ValueRunner,
    rb: &mut ValueRunner,
    source: &dyn CalibSource,
    batch_size: usize,
    max_samples: Option<usize>,
    each: &mut PairFn<'_>,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, QuantError> {
    let limited = Limited { source, len: max_samples.unwrap_or(usize::MAX).min(source.len()) };
    let mut done = 0;
    for batch in batches(&limited, batch_size.max(1))? {
        let batch = batch?;
        let collect = |r: &mut ValueRunner| -> Result<Vec<Vec<f32>>, QuantError> {
            let mut values: Vec<Vec<f32>> = Vec::new();
            r.run(&batch, &mut |ts| {
                values.resize_with(ts.len(), Vec::new);
                for (v, t) in values.iter_mut().zip(ts) {
                    v.extend(t.to_f32_vec());
                }
            })?;
            Ok(values)
        };
        let va = collect(ra)?;
        let vb = collect(rb)?;
        each(batch.samples(), &va, &vb)?;
        done += batch.samples();
        progress(done);
    }
    Ok(done)
}

/// Compare `values` (pairs of A's and B's outlets) over `source`, worst SNR first.
pub fn compare_values(
    a: &Graph,
    b: &Graph,
    values: &[(Outlet, Outlet, &'static str)],
    source: &dyn CalibSource,
    batch_size: usize,
    max_samples: Option<usize>,
    threads: usize,
) -> Result<Vec<LayerError>, QuantError> {
    let oa: Vec<Outlet> = values.iter().map(|v| v.0).collect();
    let ob: Vec<Outlet> = values.iter().map(|v| v.1).collect();
    let mut ra = ValueRunner::new(a, &oa, threads)?;
    let mut rb = ValueRunner::new(b, &ob, threads)?;
    let mut sums = vec![ErrorSums::default(); values.len()];
    run_pair(
        &mut ra,
        &mut rb,
        source,
        batch_size,
        max_samples,
        &mut |_, va, vb| {
            for ((s, x), y) in sums.iter_mut().zip(va).zip(vb) {
                s.add(x, y);
            }
            Ok(())
        },
        &mut |_| {},
    )?;
    let mut out: Vec<LayerError> =
        values.iter().zip(&sums).map(|(&(_, ob, op), s)| s.layer(b.value(ob).name.clone(), op)).collect();
    out.sort_by(|x, y| x.snr_db.total_cmp(&y.snr_db));
    Ok(out)
}

/// How the values of two models pair up by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueMatch {
    /// `(A's outlet, B's outlet, B's operator)` of each value computed in both, in B's
    /// topological order: same dtype, or an f32 value of A and a quantized one of B.
    pub pairs: Vec<(Outlet, Outlet, &'static str)>,
    /// Computed f32 values only A has.
    pub only_a: Vec<String>,
    /// Computed values only B has (such as quantization's u8 `.quantize` values and the
    /// `.dq` of its int8 weights).
    pub only_b: Vec<String>,
    /// Names in both whose types differ (dtype, fixed shape, or not computed in A).
    pub mismatched: Vec<String>,
    /// B's integer values among `pairs` (u8/i8 outputs of `QuantizeLinear` or of fused
    /// integer ops), with the per-tensor `(scale, zero point)` that maps them back to real
    /// values: they are compared as `(q - zero_point) * scale`.
    pub dequantized: BTreeMap<Outlet, (f32, f32)>,
}

/// The one value of a scalar constant input of `node`.
fn const_scalar(g: &Graph, node: NodeId, slot: usize) -> Option<f32> {
    let t = g.const_value(g.node_inputs(node).get(slot).copied().flatten()?)?;
    let v = t.to_f32_vec();
    (v.len() == 1).then(|| v[0])
}

/// The per-tensor scale and zero point of an integer value of `g`: from the `QuantizeLinear`
/// or u8 `QConv` producing it, or a `DequantizeLinear` reading it.
fn quant_params(g: &Graph, o: Outlet) -> Option<(f32, f32)> {
    let from = |node: NodeId, scale: usize| Some((const_scalar(g, node, scale)?, const_scalar(g, node, scale + 1)?));
    let producer = match g.node(o.node).op {
        Op::QuantizeLinear { .. } => from(o.node, 1),
        Op::QConv(_) => from(o.node, 7),
        _ => None,
    };
    producer.or_else(|| {
        g.consumers(o)
            .into_iter()
            .filter(|&(n, slot)| slot == 0 && matches!(g.node(n).op, Op::DequantizeLinear { .. }))
            .find_map(|(n, _)| from(n, 1))
    })
}

/// The values a node computes (not graph inputs, not constants), in topological order.
fn computed_values(g: &Graph) -> Vec<Outlet> {
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids());
    let mut out = Vec::new();
    for id in order {
        let node = g.node(id);
        if matches!(node.op, Op::Input | Op::Const(_)) {
            continue;
        }
        out.extend((0..node.outputs.len()).map(|s| Outlet::new(id, s)));
    }
    out
}

fn known_dims(g: &Graph, o: Outlet) -> Option<Vec<usize>> {
    g.value(o)
        .ty
        .shape
        .as_ref()?
        .0
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Some(*n),
            _ => None,
        })
        .collect()
}

/// Pair the computed f32 values of `a` and `b` by name. Graph inputs are left out (both
/// models read the same data). A value `X.dequantize` of B (an activation after quantization's
/// `QuantizeLinear -> DequantizeLinear`) pairs with A's `X` when A has no value of that name,
/// so the table shows each activation's own rounding and clipping error too.
pub fn match_values(a: &Graph, b: &Graph) -> ValueMatch {
    let in_a: HashMap<&str, Outlet> = a
        .node_ids()
        .into_iter()
        .flat_map(|id| (0..a.node(id).outputs.len()).map(move |s| Outlet::new(id, s)))
        .map(|o| (a.value(o).name.as_str(), o))
        .collect();
    let is_f32 = |g: &Graph, o: Outlet| g.value(o).ty.dtype == DType::F32;
    let same_shape = |oa: Outlet, ob: Outlet| match (known_dims(a, oa), known_dims(b, ob)) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    let mut m = ValueMatch::default();
    let mut seen_a: BTreeSet<Outlet> = BTreeSet::new();
    for ob in computed_values(b) {
        let name = &b.value(ob).name;
        let op = b.node(ob.node).op.name();
        if let Some(&oa) = in_a.get(name.as_str()) {
            seen_a.insert(oa);
            let computed = !matches!(a.node(oa.node).op, Op::Input | Op::Const(_));
            // Same dtype: compared as they are (integers as their levels); an integer B value
            // against an f32 A value: dequantized.
            let same_dtype = a.value(oa).ty.dtype == b.value(ob).ty.dtype;
            let params = if same_dtype || !is_f32(a, oa) { None } else { quant_params(b, ob) };
            if computed && same_shape(oa, ob) && (same_dtype || params.is_some()) {
                m.pairs.push((oa, ob, op));
                if let Some(p) = params {
                    m.dequantized.insert(ob, p);
                }
            } else {
                m.mismatched.push(name.clone());
            }
            continue;
        }
        // An activation after its Q/DQ pair, or quantized (u8 `X.quantize`, kept by fused ops).
        let base = name.strip_suffix(".dequantize").or_else(|| name.strip_suffix(".quantize"));
        let counterpart = base
            .and_then(|x| in_a.get(x).copied())
            .filter(|&oa| !matches!(a.node(oa.node).op, Op::Const(_)))
            .filter(|&oa| is_f32(a, oa) && same_shape(oa, ob));
        let params = if is_f32(b, ob) { None } else { quant_params(b, ob) };
        match counterpart {
            Some(oa) if is_f32(b, ob) => m.pairs.push((oa, ob, op)),
            Some(oa) if params.is_some() => {
                m.pairs.push((oa, ob, op));
                m.dequantized.insert(ob, params.unwrap_or((1.0, 0.0)));
            }
            _ => m.only_b.push(name.clone()),
        }
    }
    for oa in computed_values(a) {
        if is_f32(a, oa) && !seen_a.contains(&oa) {
            m.only_a.push(a.value(oa).name.clone());
        }
    }
    m
}

/// A model's inputs as data must fill them (batch axis free).
pub fn input_specs(g: &Graph) -> Vec<InputSpec> {
    g.inputs()
        .iter()
        .map(|&id| {
            let o = Outlet::new(id, 0);
            let dims: Vec<Option<usize>> = g
                .value(o)
                .ty
                .shape
                .as_ref()
                .map(|s| {
                    s.0.iter()
                        .enumerate()
                        .map(|(i, d)| match d {
                            Dim::Known(n) if i > 0 => Some(*n),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            InputSpec::new(g.value(o).name.clone(), &dims)
        })
        .collect()
}

/// An error unless `a` and `b` have the same inputs: the same names and dtypes, and the same
/// sizes wherever both fix one (the batch axis aside).
pub fn check_same_inputs(a: &Graph, b: &Graph) -> Result<(), QuantError> {
    let describe = |g: &Graph| -> String {
        let specs = input_specs(g);
        specs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    };
    let (sa, sb) = (input_specs(a), input_specs(b));
    let differ = || QuantError::Models(format!("different inputs: A has {}, B has {}", describe(a), describe(b)));
    if sa.len() != sb.len() {
        return Err(differ());
    }
    for (x, &ida) in sa.iter().zip(a.inputs()) {
        let Some(pos) = sb.iter().position(|y| y.name == x.name) else { return Err(differ()) };
        let y = &sb[pos];
        let ta = a.value(Outlet::new(ida, 0)).ty.dtype;
        let tb = b.value(Outlet::new(b.inputs()[pos], 0)).ty.dtype;
        let fits = ta == tb
            && (x.shape.is_empty()
                || y.shape.is_empty()
                || (x.shape.len() == y.shape.len()
                    && x.shape.iter().zip(&y.shape).all(|(p, q)| p.is_none() || q.is_none() || p == q)));
        if !fits {
            return Err(differ());
        }
    }
    Ok(())
}

/// How one graph output of B differs from A's.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputError {
    /// The output's name (A's).
    pub name: String,
    /// Samples compared.
    pub samples: usize,
    /// Share of samples with the same arg-max, when the output looks like class scores (one
    /// row of at least two scores per sample: `[N, C]`, `[N, C, 1, 1]`, ...).
    pub top1_agreement: Option<f64>,
    /// Largest absolute difference.
    pub max_abs_error: f64,
    /// Mean absolute difference.
    pub mean_abs_error: f64,
    /// Cosine similarity over the whole set.
    pub cosine: f64,
    /// SNR of B's output against A's, in dB.
    pub snr_db: f64,
}

/// What [`diff_models`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelDiff {
    /// Samples run.
    pub samples: usize,
    /// How the values paired up.
    pub matching: ValueMatch,
    /// Each paired value's error, worst SNR first (ties in B's topological order).
    pub values: Vec<LayerError>,
    /// Each graph output's error (outputs paired by name, or by position when the names
    /// differ and both models have as many outputs).
    pub outputs: Vec<OutputError>,
}

/// The number of classes when values shaped like `o` are one row of scores per sample.
fn class_count(g: &Graph, o: Outlet) -> Option<usize> {
    let dims = g.value(o).ty.shape.as_ref()?;
    let rest: Vec<Option<usize>> = dims
        .0
        .iter()
        .skip(1)
        .map(|d| match d {
            Dim::Known(n) => Some(*n),
            _ => None,
        })
        .collect();
    let rest: Option<Vec<usize>> = rest.into_iter().collect();
    let rest = rest?;
    let big: Vec<usize> = rest.iter().copied().filter(|&n| n != 1).collect();
    match big[..] {
        [c] if c >= 2 => Some(c),
        _ => None,
    }
}

/// Run `a` and `b` on `source` (its first `max_samples` samples) and compare every value they
/// share by name ([`match_values`]) and their graph outputs. `progress` gets the samples done.
pub fn diff_models(
    a: &Graph,
    b: &Graph,
    source: &dyn CalibSource,
    batch_size: usize,
    max_samples: Option<usize>,
    threads: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<ModelDiff, QuantError> {
    check_same_inputs(a, b)?;
    let matching = match_values(a, b);
    // Graph outputs: by name, else by position.
    let by_name: Vec<Option<Outlet>> = a
        .outputs()
        .iter()
        .map(|&oa| b.outputs().iter().copied().find(|&ob| b.value(ob).name == a.value(oa).name))
        .collect();
    let out_pairs: Vec<(Outlet, Outlet)> = if by_name.iter().all(Option::is_some) {
        a.outputs().iter().copied().zip(by_name.into_iter().flatten()).collect()
    } else if a.outputs().len() == b.outputs().len() {
        a.outputs().iter().copied().zip(b.outputs().iter().copied()).collect()
    } else {
        a.outputs().iter().copied().zip(by_name).filter_map(|(oa, ob)| Some((oa, ob?))).collect()
    };
    if out_pairs.is_empty() {
        return Err(QuantError::Models("no graph output of A has a counterpart in B".into()));
    }
    // One request list per model: the paired values, then the outputs (no repeats).
    let mut req_a: Vec<Outlet> = Vec::new();
    let mut req_b: Vec<Outlet> = Vec::new();
    fn index(req: &mut Vec<Outlet>, o: Outlet) -> usize {
        match req.iter().position(|&r| r == o) {
            Some(i) => i,
            None => {
                req.push(o);
                req.len() - 1
            }
        }
    }
    let dequantized: Vec<Option<&(f32, f32)>> =
        matching.pairs.iter().map(|(_, ob, _)| matching.dequantized.get(ob)).collect();
    let value_idx: Vec<(usize, usize)> =
        matching.pairs.iter().map(|&(oa, ob, _)| (index(&mut req_a, oa), index(&mut req_b, ob))).collect();
    let out_idx: Vec<(usize, usize)> =
        out_pairs.iter().map(|&(oa, ob)| (index(&mut req_a, oa), index(&mut req_b, ob))).collect();
    let mut ra = ValueRunner::new(a, &req_a, threads)?;
    let mut rb = ValueRunner::new(b, &req_b, threads)?;
    let mut value_sums = vec![ErrorSums::default(); value_idx.len()];
    let mut size_differs = vec![false; value_idx.len()];
    let mut out_sums = vec![ErrorSums::default(); out_idx.len()];
    let classes: Vec<Option<usize>> = out_pairs.iter().map(|&(oa, _)| class_count(a, oa)).collect();
    let mut same_class = vec![0usize; out_idx.len()];
    let samples = run_pair(
        &mut ra,
        &mut rb,
        source,
        batch_size,
        max_samples,
        &mut |n, va, vb| {
            for (k, &(i, j)) in value_idx.iter().enumerate() {
                if va[i].len() != vb[j].len() {
                    size_differs[k] = true;
                } else if let Some(&(scale, zp)) = dequantized[k] {
                    let real: Vec<f32> = vb[j].iter().map(|&q| (q - zp) * scale).collect();
                    value_sums[k].add(&va[i], &real);
                } else {
                    value_sums[k].add(&va[i], &vb[j]);
                }
            }
            for (k, &(i, j)) in out_idx.iter().enumerate() {
                let (x, y) = (&va[i], &vb[j]);
                if x.len() != y.len() {
                    return Err(QuantError::Models(format!(
                        "output '{}' has {} elements per batch in A, {} in B",
                        a.value(out_pairs[k].0).name,
                        x.len(),
                        y.len()
                    )));
                }
                out_sums[k].add(x, y);
                if let Some(c) = classes[k].filter(|&c| x.len() == c * n) {
                    let argmax = |r: &[f32]| r.iter().enumerate().max_by(|p, q| p.1.total_cmp(q.1)).map(|(i, _)| i);
                    same_class[k] += x.chunks(c).zip(y.chunks(c)).filter(|(p, q)| argmax(p) == argmax(q)).count();
                }
            }
            Ok(())
        },
        progress,
    )?;
    let mut matching = matching;
    let mut values = Vec::new();
    let mut pairs = Vec::new();
    for (k, &(oa, ob, op)) in matching.pairs.iter().enumerate() {
        if size_differs[k] {
            matching.mismatched.push(b.value(ob).name.clone());
        } else {
            values.push(value_sums[k].layer(b.value(ob).name.clone(), op));
            pairs.push((oa, ob, op));
        }
    }
    matching.pairs = pairs;
    values.sort_by(|x, y| x.snr_db.total_cmp(&y.snr_db));
    let outputs = out_pairs
        .iter()
        .enumerate()
        .map(|(k, &(oa, _))| {
            let s = &out_sums[k];
            OutputError {
                name: a.value(oa).name.clone(),
                samples,
                top1_agreement: classes[k].map(|_| same_class[k] as f64 / samples.max(1) as f64),
                max_abs_error: s.max_abs,
                mean_abs_error: s.mean_abs(),
                cosine: s.cosine(),
                snr_db: s.snr_db(),
            }
        })
        .collect();
    Ok(ModelDiff { samples, matching, values, outputs })
}

/// How [`suggest_skips`] orders the candidate nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SkipRanking {
    /// Measured: the output cosine with fp32 (then the top-1 agreement) of the model with only
    /// that node left in fp32, best first. One evaluation per quantized node. The cosine is
    /// continuous; one node's effect on the agreement is often a few samples, within noise.
    #[default]
    Cosine,
    /// Measured like [`SkipRanking::Cosine`], ordered by the agreement first, then the cosine.
    Agreement,
    /// The per-layer analysis order: the node's output SNR in the fully quantized model,
    /// worst first. One evaluation; cumulative errors favour deep nodes.
    Analysis,
}

impl FromStr for SkipRanking {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cosine" => Ok(SkipRanking::Cosine),
            "agreement" => Ok(SkipRanking::Agreement),
            "analysis" => Ok(SkipRanking::Analysis),
            other => Err(format!("unknown ranking '{other}' (cosine, agreement, analysis)")),
        }
    }
}

impl fmt::Display for SkipRanking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipRanking::Cosine => "cosine",
            SkipRanking::Agreement => "agreement",
            SkipRanking::Analysis => "analysis",
        })
    }
}

/// Settings of [`suggest_skips`].
#[derive(Clone, Debug)]
pub struct SkipSearch {
    /// The top-1 agreement with fp32 to reach, in `[0, 1]`.
    pub target: f64,
    /// At most this many nodes are added to the skip list.
    pub max_steps: usize,
    /// The order candidates are tried in.
    pub ranking: SkipRanking,
    /// Samples per predictor run.
    pub batch_size: usize,
    /// Evaluate on at most this many samples (all when `None`).
    pub max_samples: Option<usize>,
    /// Predictor threads.
    pub threads: usize,
}

impl Default for SkipSearch {
    fn default() -> Self {
        SkipSearch {
            target: 0.99,
            max_steps: 20,
            ranking: SkipRanking::Cosine,
            batch_size: 16,
            max_samples: None,
            threads: 1,
        }
    }
}

/// How sensitive the model is to one quantized node.
#[derive(Clone, Debug, PartialEq)]
pub struct Sensitivity {
    /// The node's name.
    pub node: String,
    /// Its operator.
    pub op: &'static str,
    /// The value it computes (the name `--analyze` and `lite-cli diff` show).
    pub value: String,
    /// Measured rankings: top-1 agreement with fp32 when only this node stays fp32.
    pub agreement: Option<f64>,
    /// Measured rankings: output cosine with fp32 when only this node stays fp32.
    pub cosine: Option<f64>,
    /// [`SkipRanking::Analysis`]: the node's output SNR (dB) in the fully quantized model.
    pub snr_db: Option<f64>,
}

/// One accepted change of the skip list.
#[derive(Clone, Debug, PartialEq)]
pub struct SkipStep {
    /// True when `node` was added to the skip list, false when the pruning pass found it
    /// unnecessary and quantized it again.
    pub added: bool,
    /// The node.
    pub node: String,
    /// The value it computes.
    pub value: String,
    /// The skip list's length after the change.
    pub skips: usize,
    /// Top-1 agreement with fp32 after the change.
    pub agreement: f64,
    /// Output cosine with fp32 after the change.
    pub cosine: f64,
}

/// What [`suggest_skips`] reports while it works.
#[derive(Clone, Debug)]
pub enum SkipEvent<'a> {
    /// The fully quantized model's agreement and output cosine.
    Baseline {
        /// Top-1 agreement with fp32.
        agreement: f64,
        /// Output cosine with fp32.
        cosine: f64,
    },
    /// `done` of `total` nodes ranked.
    Ranking {
        /// Nodes measured.
        done: usize,
        /// Nodes to measure.
        total: usize,
    },
    /// The ranking, best candidate first.
    Ranked(&'a [Sensitivity]),
    /// A change was accepted.
    Step(&'a SkipStep),
}

/// The result of [`suggest_skips`].
#[derive(Clone, Debug, PartialEq)]
pub struct SkipSuggestion {
    /// Evaluation samples.
    pub samples: usize,
    /// Top-1 agreement of the fully quantized model.
    pub baseline_agreement: f64,
    /// Output cosine of the fully quantized model.
    pub baseline_cosine: f64,
    /// The candidates in the order tried.
    pub ranking: Vec<Sensitivity>,
    /// Every accepted change, in order.
    pub steps: Vec<SkipStep>,
    /// The suggested nodes to leave in fp32, in the order added. When the target is not
    /// reached: the shortest prefix of the nodes added with the best agreement seen.
    pub skips: Vec<String>,
    /// Top-1 agreement with the suggested skips.
    pub agreement: f64,
    /// Output cosine with the suggested skips.
    pub cosine: f64,
    /// Whether `agreement` reaches the target.
    pub reached: bool,
}

/// Search which of `calibration`'s nodes to leave in fp32 so that the quantized model's top-1
/// agreement with `fp32` (its first output's arg-max) on `source` reaches `search.target`,
/// re-quantizing with the calibrated ranges (no calibration run).
///
/// Greedy: candidates are ranked ([`SkipRanking`]), then added to the skip list one at a time
/// until the target is reached or `max_steps` were added; then each added node but the last
/// is tried quantized again and stays quantized if the target still holds. At most
/// `nodes + 2 * max_steps + 2` evaluations of the model on `source` (`max_steps + 3` with the
/// analysis ranking).
pub fn suggest_skips(
    fp32: &Graph,
    calibration: &Calibration,
    source: &dyn CalibSource,
    search: &SkipSearch,
    progress: &mut dyn FnMut(SkipEvent<'_>),
) -> Result<SkipSuggestion, QuantError> {
    suggest_skips_with(fp32, calibration, source, search, &|_| Ok(()), progress)
}

/// [`suggest_skips`] measuring each candidate after `lower` rewrote its QDQ graph (for example
/// the optimizer pass that fuses Q/DQ pairs into integer ops), so that the agreement measured
/// is the agreement of the model as it will be written.
pub fn suggest_skips_with(
    fp32: &Graph,
    calibration: &Calibration,
    source: &dyn CalibSource,
    search: &SkipSearch,
    lower: &dyn Fn(&mut Graph) -> Result<(), QuantError>,
    progress: &mut dyn FnMut(SkipEvent<'_>),
) -> Result<SkipSuggestion, QuantError> {
    if !(0.0..=1.0).contains(&search.target) {
        return Err(QuantError::Setting {
            field: "target agreement",
            reason: format!("{} is not in [0, 1]", search.target),
        });
    }
    let (bs, max, threads) = (search.batch_size.max(1), search.max_samples, search.threads);
    let want = eval::outputs(fp32, source, bs, max, threads)?;
    if want.is_empty() {
        return Err(QuantError::CalibData { path: "evaluation data".into(), reason: "no samples".into() });
    }
    let quantized = |fp32_nodes: &BTreeSet<NodeId>| -> Result<Graph, QuantError> {
        let mut g = fp32.clone();
        calibration.apply(&mut g, fp32_nodes)?;
        Ok(g)
    };
    let measure = |fp32_nodes: &BTreeSet<NodeId>| -> Result<Agreement, QuantError> {
        let mut g = quantized(fp32_nodes)?;
        lower(&mut g)?;
        let got = eval::outputs(&g, source, bs, max, threads)?;
        Ok(eval::agreement(&want, &got))
    };
    let reached = |a: f64| a + 1e-12 >= search.target;
    let base = measure(&BTreeSet::new())?;
    progress(SkipEvent::Baseline { agreement: base.top1_agreement, cosine: base.cosine });

    let name = |id: NodeId| fp32.node(id).name.clone();
    let op = |id: NodeId| fp32.node(id).op.name();
    let value = |id: NodeId| fp32.value(Outlet::new(id, 0)).name.clone();
    let mut ranked: Vec<(NodeId, Sensitivity)> = Vec::new();
    if !reached(base.top1_agreement) {
        match search.ranking {
            SkipRanking::Cosine | SkipRanking::Agreement => {
                let total = calibration.nodes.len();
                for (done, &id) in calibration.nodes.iter().enumerate() {
                    let a = measure(&BTreeSet::from([id]))?;
                    let s = Sensitivity {
                        node: name(id),
                        op: op(id),
                        value: value(id),
                        agreement: Some(a.top1_agreement),
                        cosine: Some(a.cosine),
                        snr_db: None,
                    };
                    ranked.push((id, s));
                    progress(SkipEvent::Ranking { done: done + 1, total });
                }
                // Best first; stable: ties keep graph order.
                let by_cosine = search.ranking == SkipRanking::Cosine;
                ranked.sort_by(|x, y| {
                    let key = |s: &Sensitivity| {
                        let (a, c) = (s.agreement.unwrap_or(0.0), s.cosine.unwrap_or(0.0));
                        if by_cosine { (c, a) } else { (a, c) }
                    };
                    let (kx, ky) = (key(&x.1), key(&y.1));
                    ky.0.total_cmp(&kx.0).then(ky.1.total_cmp(&kx.1))
                });
            }
            SkipRanking::Analysis => {
                let g = quantized(&BTreeSet::new())?;
                let values = quantized_values(fp32, &g);
                let rows = compare_values(fp32, &g, &values, source, bs, max, threads)?;
                for row in rows {
                    let Some(&(_, ob, _)) = values.iter().find(|v| g.value(v.1).name == row.value) else { continue };
                    // Quantization keeps the node ids of the fp32 graph.
                    let id = ob.node;
                    if calibration.nodes.contains(&id) && !ranked.iter().any(|r| r.0 == id) {
                        let s = Sensitivity {
                            node: name(id),
                            op: op(id),
                            value: value(id),
                            agreement: None,
                            cosine: None,
                            snr_db: Some(row.snr_db),
                        };
                        ranked.push((id, s));
                    }
                }
                for &id in &calibration.nodes {
                    if !ranked.iter().any(|r| r.0 == id) {
                        let s = Sensitivity {
                            node: name(id),
                            op: op(id),
                            value: value(id),
                            agreement: None,
                            cosine: None,
                            snr_db: None,
                        };
                        ranked.push((id, s));
                    }
                }
            }
        }
    }
    let ranking: Vec<Sensitivity> = ranked.iter().map(|r| r.1.clone()).collect();
    progress(SkipEvent::Ranked(&ranking));

    let mut skip: BTreeSet<NodeId> = BTreeSet::new();
    let mut order: Vec<NodeId> = Vec::new();
    let mut current = base.clone();
    let mut steps: Vec<SkipStep> = Vec::new();
    // The shortest prefix of `order` with the best agreement so far, and its measure.
    let mut best = (0usize, base.clone());
    for &(id, _) in &ranked {
        if reached(current.top1_agreement) || order.len() >= search.max_steps {
            break;
        }
        skip.insert(id);
        order.push(id);
        current = measure(&skip)?;
        let step = SkipStep {
            added: true,
            node: name(id),
            value: value(id),
            skips: skip.len(),
            agreement: current.top1_agreement,
            cosine: current.cosine,
        };
        progress(SkipEvent::Step(&step));
        steps.push(step);
        if current.top1_agreement > best.1.top1_agreement {
            best = (order.len(), current.clone());
        }
    }
    if !reached(current.top1_agreement) {
        // Not reached: suggest the shortest list with the best agreement seen.
        for id in order.drain(best.0..) {
            skip.remove(&id);
        }
        current = best.1;
    }
    // Pruning: a node added early may be unnecessary once later ones are skipped.
    if reached(current.top1_agreement) && order.len() > 1 {
        for &id in &order[..order.len() - 1] {
            skip.remove(&id);
            let a = measure(&skip)?;
            if reached(a.top1_agreement) {
                current = a;
                let step = SkipStep {
                    added: false,
                    node: name(id),
                    value: value(id),
                    skips: skip.len(),
                    agreement: current.top1_agreement,
                    cosine: current.cosine,
                };
                progress(SkipEvent::Step(&step));
                steps.push(step);
            } else {
                skip.insert(id);
            }
        }
    }
    let skips: Vec<String> = order.iter().filter(|id| skip.contains(id)).map(|&id| name(id)).collect();
    Ok(SkipSuggestion {
        samples: want.len(),
        baseline_agreement: base.top1_agreement,
        baseline_cosine: base.cosine,
        ranking,
        steps,
        skips,
        agreement: current.top1_agreement,
        cosine: current.cosine,
        reached: reached(current.top1_agreement),
    })
}
