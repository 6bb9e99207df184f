//! Losses: each returns the mean loss over the batch and its gradient with respect to the
//! prediction (the seed of the backward pass). Sums are taken in f64.

use crate::TrainError;
use crate::error::invalid;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Ix2};

/// A loss value and `d loss / d prediction`.
#[derive(Clone, Debug)]
pub struct LossOutput {
    /// Mean loss over the batch.
    pub loss: f32,
    /// Gradient with respect to the prediction (its shape).
    pub grad: ArrayD<f32>,
}

fn rows<'a>(what: &str, x: &'a ArrayViewD<'a, f32>) -> Result<ArrayView2<'a, f32>, TrainError> {
    x.view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| invalid(what, format!("expected N x C logits, got {:?}", x.shape())))
}

/// `log softmax` of one row, in f64.
fn log_softmax(row: impl Iterator<Item = f32> + Clone) -> Vec<f64> {
    let max = row.clone().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = row.clone().map(|v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    row.map(|v| v as f64 - lse).collect()
}

/// Softmax cross-entropy of `N x C` logits against class labels, with label smoothing `eps`
/// (the target is `(1 - eps)·onehot + eps / C`): `mean_n -Σ_c q_c log p_c`, gradient
/// `(p - q) / N`.
pub fn softmax_cross_entropy(
    logits: &ArrayViewD<'_, f32>,
    labels: &[usize],
    smoothing: f32,
) -> Result<LossOutput, TrainError> {
    const W: &str = "softmax_cross_entropy";
    let x = rows(W, logits)?;
    let (n, c) = x.dim();
    if labels.len() != n {
        return Err(invalid(W, format!("{} labels for {n} rows", labels.len())));
    }
    if let Some(&l) = labels.iter().find(|&&l| l >= c) {
        return Err(invalid(W, format!("label {l} out of range for {c} classes")));
    }
    if !(0.0..=1.0).contains(&smoothing) {
        return Err(invalid(W, format!("label smoothing {smoothing} outside [0, 1]")));
    }
    let (eps, nf) = (smoothing as f64, n.max(1) as f64);
    let mut grad = Array2::<f32>::zeros((n, c));
    let mut total = 0f64;
    for (i, &label) in labels.iter().enumerate() {
        let lp = log_softmax(x.row(i).iter().copied());
        for (j, &l) in lp.iter().enumerate() {
            let q = eps / c as f64 + if j == label { 1.0 - eps } else { 0.0 };
            total -= q * l;
            grad[[i, j]] = ((l.exp() - q) / nf) as f32;
        }
    }
    Ok(LossOutput { loss: (total / nf) as f32, grad: grad.into_dyn() })
}

/// Mean squared error `mean((y - t)²)` over every element; gradient `2 (y - t) / len`.
pub fn mse(pred: &ArrayViewD<'_, f32>, target: &ArrayViewD<'_, f32>) -> Result<LossOutput, TrainError> {
    if pred.shape() != target.shape() {
        return Err(invalid("mse", format!("prediction {:?} and target {:?} differ", pred.shape(), target.shape())));
    }
    let len = pred.len().max(1) as f64;
    let diff = pred - target;
    let loss = diff.iter().map(|&d| (d as f64).powi(2)).sum::<f64>() / len;
    Ok(LossOutput { loss: loss as f32, grad: diff.mapv(|d| (2.0 * d as f64 / len) as f32) })
}

/// Distillation loss: `T² · mean_n KL(softmax(t/T) ‖ softmax(s/T))` of student logits `s`
/// against teacher logits `t` (`N x C`); gradient with respect to `s` is `T·(p_s - p_t) / N`.
pub fn kl_divergence(
    student: &ArrayViewD<'_, f32>,
    teacher: &ArrayViewD<'_, f32>,
    temperature: f32,
) -> Result<LossOutput, TrainError> {
    const W: &str = "kl_divergence";
    let (s, t) = (rows(W, student)?, rows(W, teacher)?);
    if s.dim() != t.dim() {
        return Err(invalid(W, format!("student {:?} and teacher {:?} differ", s.dim(), t.dim())));
    }
    if temperature <= 0.0 {
        return Err(invalid(W, format!("temperature {temperature} must be positive")));
    }
    let (n, c) = s.dim();
    let (tt, nf) = (temperature as f64, n.max(1) as f64);
    let mut grad = Array2::<f32>::zeros((n, c));
    let mut total = 0f64;
    for i in 0..n {
        let ls = log_softmax(s.row(i).iter().map(|&v| (v as f64 / tt) as f32));
        let lt = log_softmax(t.row(i).iter().map(|&v| (v as f64 / tt) as f32));
        for j in 0..c {
            let pt = lt[j].exp();
            total += pt * (lt[j] - ls[j]);
            grad[[i, j]] = (tt * (ls[j].exp() - pt) / nf) as f32;
        }
    }
    Ok(LossOutput { loss: (tt * tt * total / nf) as f32, grad: grad.into_dyn() })
}

/// Top-1 accuracy of `N x C` logits.
pub fn accuracy(logits: &ArrayViewD<'_, f32>, labels: &[usize]) -> Result<f64, TrainError> {
    let x = rows("accuracy", logits)?;
    if labels.len() != x.nrows() {
        return Err(invalid("accuracy", format!("{} labels for {} rows", labels.len(), x.nrows())));
    }
    let correct = x
        .rows()
        .into_iter()
        .zip(labels)
        .filter(|(r, l)| {
            let best = r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (j, &v)| if v > b.1 { (j, v) } else { b });
            best.0 == **l
        })
        .count();
    Ok(correct as f64 / labels.len().max(1) as f64)
}
