//! Evaluation helpers: top-k accuracy and mean softmax cross-entropy of `N x C` logits, and
//! [`MetricsSum`] to accumulate them batch by batch over a dataset.

use crate::TrainError;
use crate::error::invalid;
use ndarray::{ArrayView2, ArrayViewD, Ix2};

/// Whether `label` ranks among the `k` highest of `row`. The label's rank is the number of
/// classes scoring strictly higher plus the number scoring equal with a lower index, so ties
/// go to the lower class index (as an argmax taking the first maximum, and [`crate::loss::accuracy`],
/// do): with `k = 1` this is "the first maximum is the label". A NaN label score is never in the
/// top `k`; other NaN scores rank below every number. `k = 0` is never correct.
pub fn in_top_k(row: &[f32], label: usize, k: usize) -> bool {
    let Some(&v) = row.get(label) else { return false };
    if v.is_nan() {
        return false;
    }
    let rank = row.iter().enumerate().filter(|&(j, &u)| u > v || (u == v && j < label)).count();
    rank < k
}

fn rows<'a>(what: &str, logits: &'a ArrayViewD<'a, f32>, labels: &[usize]) -> Result<ArrayView2<'a, f32>, TrainError> {
    let x = logits
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| invalid(what, format!("expected N x C logits, got {:?}", logits.shape())))?;
    if labels.len() != x.nrows() {
        return Err(invalid(what, format!("{} labels for {} rows", labels.len(), x.nrows())));
    }
    if let Some(&l) = labels.iter().find(|&&l| l >= x.ncols()) {
        return Err(invalid(what, format!("label {l} out of range for {} classes", x.ncols())));
    }
    Ok(x)
}

/// Top-`k` accuracy of `N x C` logits (see [`in_top_k`] for ties; `k >= C` counts every row).
/// 0 for no rows.
pub fn top_k_accuracy(logits: &ArrayViewD<'_, f32>, labels: &[usize], k: usize) -> Result<f64, TrainError> {
    let x = rows("top_k_accuracy", logits, labels)?;
    let hits = x.rows().into_iter().zip(labels).filter(|(r, l)| in_top_k(&r.to_vec(), **l, k)).count();
    Ok(hits as f64 / labels.len().max(1) as f64)
}

/// Evaluation results over a dataset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Samples evaluated.
    pub samples: usize,
    /// Top-1 accuracy (ties to the lower class index).
    pub top1: f64,
    /// Top-5 accuracy (1 when there are at most 5 classes).
    pub top5: f64,
    /// Mean softmax cross-entropy (natural log, no label smoothing).
    pub loss: f64,
}

/// Running sums of [`Metrics`] over batches.
#[derive(Clone, Debug, Default)]
pub struct MetricsSum {
    samples: usize,
    top1: usize,
    top5: usize,
    loss: f64,
}

impl MetricsSum {
    /// Add a batch of `N x C` logits and their labels (each below `C`).
    pub fn add(&mut self, logits: &ArrayViewD<'_, f32>, labels: &[usize]) -> Result<(), TrainError> {
        let x = rows("metrics", logits, labels)?;
        for (row, &label) in x.rows().into_iter().zip(labels) {
            let row = row.to_vec();
            self.top1 += usize::from(in_top_k(&row, label, 1));
            self.top5 += usize::from(in_top_k(&row, label, 5));
            // -log softmax(row)[label], in f64.
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
            self.loss += lse - row[label] as f64;
        }
        self.samples += labels.len();
        Ok(())
    }

    /// The means so far (zeros before any sample).
    pub fn metrics(&self) -> Metrics {
        let n = self.samples.max(1) as f64;
        Metrics { samples: self.samples, top1: self.top1 as f64 / n, top5: self.top5 as f64 / n, loss: self.loss / n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ArrayD};

    fn logits(rows: &[&[f32]]) -> ArrayD<f32> {
        let c = rows[0].len();
        Array2::from_shape_vec((rows.len(), c), rows.concat()).unwrap().into_dyn()
    }

    #[test]
    fn top_k_ranks_with_ties_to_the_lower_index() {
        let row = [0.1, 0.9, 0.5, 0.9, 0.2, 0.3, 0.0];
        // Ranks: class 1 -> 0, 3 -> 1 (tied with 1, higher index), 2 -> 2, 5 -> 3, 4 -> 4, 0 -> 5, 6 -> 6.
        let rank = |l| (1..=7).find(|&k| in_top_k(&row, l, k)).unwrap() - 1;
        assert_eq!([0, 1, 2, 3, 4, 5, 6].map(rank), [5, 0, 2, 1, 4, 3, 6]);
        assert!(!in_top_k(&row, 3, 1) && in_top_k(&row, 3, 2));
        assert!(!in_top_k(&row, 0, 0));
        assert!(!in_top_k(&[f32::NAN, 1.0], 0, 2));
        assert!(in_top_k(&[f32::NAN, 1.0], 1, 1));
        assert!(!in_top_k(&row, 9, 5), "a label past the row");
    }

    #[test]
    fn accuracies_and_loss_over_hand_made_logits() {
        let x = logits(&[
            &[5.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], // label 0: top-1
            &[0.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], // label 5: rank 4 -> top-5 only
            &[0.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], // label 0: rank 6 -> neither
            &[2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0], // label 1: tied with class 0 -> rank 1
        ]);
        let labels = [0, 5, 0, 1];
        assert_eq!(top_k_accuracy(&x.view(), &labels, 1).unwrap(), 0.25);
        assert_eq!(top_k_accuracy(&x.view(), &labels, 2).unwrap(), 0.5);
        assert_eq!(top_k_accuracy(&x.view(), &labels, 5).unwrap(), 0.75);
        assert_eq!(top_k_accuracy(&x.view(), &labels, 7).unwrap(), 1.0);
        let mut sum = MetricsSum::default();
        sum.add(&x.slice(ndarray::s![..2, ..]).into_dyn(), &labels[..2]).unwrap();
        sum.add(&x.slice(ndarray::s![2.., ..]).into_dyn(), &labels[2..]).unwrap();
        let m = sum.metrics();
        assert_eq!((m.samples, m.top1, m.top5), (4, 0.25, 0.75));
        // Per-row -log softmax, from the closed forms.
        let lse = |r: &[f64]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
        let r0 = [5.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let r1 = [0.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0];
        let r3 = [2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let want = ((lse(&r0) - 5.0) + (lse(&r1) - 2.0) + lse(&r1) + (lse(&r3) - 2.0)) / 4.0;
        assert!((m.loss - want).abs() < 1e-9, "{} vs {want}", m.loss);
        // The loss matches the training loss function.
        let ce = crate::loss::softmax_cross_entropy(&x.view(), &labels, 0.0).unwrap().loss as f64;
        assert!((m.loss - ce).abs() < 1e-5, "{} vs {ce}", m.loss);
    }

    #[test]
    fn bad_shapes_and_labels_are_errors() {
        let x = logits(&[&[1.0, 2.0]]);
        assert!(top_k_accuracy(&x.view(), &[2], 1).is_err(), "label out of range");
        assert!(top_k_accuracy(&x.view(), &[0, 1], 1).is_err(), "label count");
        let flat = ArrayD::<f32>::zeros(ndarray::IxDyn(&[3]));
        assert!(MetricsSum::default().add(&flat.view(), &[0, 0, 0]).is_err(), "not N x C");
        assert_eq!(MetricsSum::default().metrics().top1, 0.0);
    }
}
