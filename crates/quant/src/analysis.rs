//! Per-layer error between two models with the same value names (fp32 and its quantized form,
//! or any two versions of a model): for each compared value, the cosine similarity and the
//! signal-to-noise ratio of model B's value against model A's over a data set, worst first.
//! Errors are cumulative: a value's error includes everything upstream of it.

use crate::QuantError;
use crate::data::CalibSource;
use crate::ptq::ValueRunner;
use lithe_ir::{Graph, Op, Outlet};

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
}

/// The outputs of B's quantized compute nodes (Conv, FullyConnected, Gemm, MatMul reading a
/// `DequantizeLinear`) that A also has, by name.
pub fn quantized_values(a: &Graph, b: &Graph) -> Vec<(Outlet, Outlet, &'static str)> {
    let mut out = Vec::new();
    for id in b.node_ids() {
        let node = b.node(id);
        if !matches!(node.op, Op::Conv(_) | Op::FullyConnected(_) | Op::Gemm(_) | Op::MatMul) {
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
    let collect = |g: &Graph, outs: &[Outlet]| -> Result<Vec<Vec<Vec<f32>>>, QuantError> {
        let mut runner = ValueRunner::new(g, outs, threads)?;
        let mut per_batch = Vec::new();
        runner.run_source(
            source,
            batch_size.max(1),
            max_samples,
            &mut |t| per_batch.push(t.iter().map(|x| x.to_f32_vec()).collect()),
            &mut |_| {},
        )?;
        Ok(per_batch)
    };
    let ra = collect(a, &oa)?;
    let rb = collect(b, &ob)?;
    let mut sums = vec![(0.0f64, 0.0f64, 0.0f64, 0.0f64); values.len()];
    for (ba, bb) in ra.iter().zip(&rb) {
        for (i, (va, vb)) in ba.iter().zip(bb).enumerate() {
            let s = &mut sums[i];
            for (&x, &y) in va.iter().zip(vb) {
                let (x, y) = (f64::from(x), f64::from(y));
                s.0 += x * y;
                s.1 += x * x;
                s.2 += y * y;
                s.3 += (x - y) * (x - y);
            }
        }
    }
    let mut out: Vec<LayerError> = values
        .iter()
        .zip(&sums)
        .map(|(&(_, ob, op), &(dot, na, nb, err))| LayerError {
            value: b.value(ob).name.clone(),
            op,
            cosine: if na > 0.0 && nb > 0.0 { dot / (na.sqrt() * nb.sqrt()) } else { 1.0 },
            snr_db: if err > 0.0 { 10.0 * (na / err).log10() } else { f64::INFINITY },
        })
        .collect();
    out.sort_by(|x, y| x.snr_db.total_cmp(&y.snr_db));
    Ok(out)
}
