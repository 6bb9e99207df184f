//! Comparing two models on the same data: top-1 agreement and output error (fp32 vs int8,
//! or any two models with the same inputs and outputs).

use crate::QuantError;
use crate::data::CalibSource;
use crate::ptq::ValueRunner;
use lithe_ir::Graph;

/// How two models' first outputs differ over a data set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agreement {
    /// Samples compared.
    pub samples: usize,
    /// Share of samples whose arg-max over the last axis is the same in both.
    pub top1_agreement: f64,
    /// Largest absolute output difference.
    pub max_abs_error: f32,
    /// Mean absolute output difference.
    pub mean_abs_error: f64,
    /// Cosine similarity of the two outputs over the whole set.
    pub cosine: f64,
    /// The arg-max classes of model `a` and model `b`, per sample.
    pub classes: (Vec<usize>, Vec<usize>),
}

impl Agreement {
    /// Accuracy of each model against `labels` (one per sample).
    pub fn accuracy(&self, labels: &[usize]) -> (f64, f64) {
        let acc = |c: &[usize]| {
            let n = c.len().min(labels.len()).max(1);
            c.iter().zip(labels).filter(|(a, b)| a == b).count() as f64 / n as f64
        };
        (acc(&self.classes.0), acc(&self.classes.1))
    }
}

/// The first output of `graph` on every sample of `source` (up to `max_samples`), as rows of
/// the output's last axis.
pub fn outputs(
    graph: &Graph,
    source: &dyn CalibSource,
    batch_size: usize,
    max_samples: Option<usize>,
    threads: usize,
) -> Result<Vec<Vec<f32>>, QuantError> {
    let out = *graph.outputs().first().ok_or_else(|| QuantError::Run("the model has no output".into()))?;
    let mut runner = ValueRunner::new(graph, &[out], threads)?;
    let mut rows = Vec::new();
    runner.run_source(
        source,
        batch_size.max(1),
        max_samples,
        &mut |t| {
            let v = t[0].to_f32_vec();
            let samples = t[0].shape().first().copied().unwrap_or(1).max(1);
            let width = v.len() / samples;
            rows.extend(v.chunks(width.max(1)).map(<[f32]>::to_vec));
        },
        &mut |_| {},
    )?;
    Ok(rows)
}

/// Compare the first outputs of `a` and `b` on `source`.
pub fn compare(
    a: &Graph,
    b: &Graph,
    source: &dyn CalibSource,
    batch_size: usize,
    max_samples: Option<usize>,
    threads: usize,
) -> Result<Agreement, QuantError> {
    let ra = outputs(a, source, batch_size, max_samples, threads)?;
    let rb = outputs(b, source, batch_size, max_samples, threads)?;
    Ok(agreement(&ra, &rb))
}

/// Agreement of two sets of output rows (same count and widths).
pub fn agreement(ra: &[Vec<f32>], rb: &[Vec<f32>]) -> Agreement {
    let argmax = |r: &[f32]| r.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map_or(0, |(i, _)| i);
    let (mut same, mut max_abs, mut sum_abs, mut n) = (0usize, 0.0f32, 0.0f64, 0usize);
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    let mut classes = (Vec::new(), Vec::new());
    for (x, y) in ra.iter().zip(rb) {
        let (ca, cb) = (argmax(x), argmax(y));
        same += usize::from(ca == cb);
        classes.0.push(ca);
        classes.1.push(cb);
        for (&p, &q) in x.iter().zip(y) {
            let d = (p - q).abs();
            max_abs = max_abs.max(d);
            sum_abs += f64::from(d);
            n += 1;
            dot += f64::from(p) * f64::from(q);
            na += f64::from(p) * f64::from(p);
            nb += f64::from(q) * f64::from(q);
        }
    }
    let samples = ra.len().min(rb.len());
    Agreement {
        samples,
        top1_agreement: same as f64 / samples.max(1) as f64,
        max_abs_error: max_abs,
        mean_abs_error: sum_abs / n.max(1) as f64,
        cosine: if na > 0.0 && nb > 0.0 { dot / (na.sqrt() * nb.sqrt()) } else { 1.0 },
        classes,
    }
}
