//! Summary statistics of output tensors.

use lithe_ir::{DType, Element, Tensor, dispatch_tensor};

/// Min, max and mean of a tensor's elements (NaNs counted apart).
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Smallest non-NaN element.
    pub min: f64,
    /// Largest non-NaN element.
    pub max: f64,
    /// Mean of the non-NaN elements.
    pub mean: f64,
    /// Number of NaN elements.
    pub nans: usize,
}

/// Statistics of `t`, `None` when it has no non-NaN element.
pub fn stats(t: &Tensor) -> Option<Stats> {
    dispatch_tensor!(t.data(), a => of_values(a.iter().map(|x| x.to_f64())))
}

fn of_values(values: impl Iterator<Item = f64>) -> Option<Stats> {
    let (mut min, mut max, mut sum, mut n, mut nans) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize, 0usize);
    for v in values {
        if v.is_nan() {
            nans += 1;
            continue;
        }
        min = min.min(v);
        max = max.max(v);
        sum += v;
        n += 1;
    }
    (n > 0).then(|| Stats { min, max, mean: sum / n as f64, nans })
}

/// For a float tensor of shape `[1, N]`: the `k` largest elements as `(index, value)`,
/// largest first (ties: lower index first).
pub fn top_k(t: &Tensor, k: usize) -> Option<Vec<(usize, f32)>> {
    if !matches!(t.dtype(), DType::F32 | DType::F16) || t.shape().len() != 2 || t.shape().first() != Some(&1) {
        return None;
    }
    let mut v: Vec<(usize, f32)> = t.to_f32_vec().into_iter().enumerate().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(k);
    Some(v)
}

/// A number for display: integers without decimals, others with 6 significant digits.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v != 0.0 && (v.abs() < 1e-4 || v.abs() >= 1e6) {
        format!("{v:.5e}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_skip_nans() {
        let t = Tensor::from_vec(&[4], vec![1.0f32, f32::NAN, -3.0, 5.0]).unwrap();
        assert_eq!(stats(&t), Some(Stats { min: -3.0, max: 5.0, mean: 1.0, nans: 1 }));
        let t = Tensor::from_vec(&[3], vec![true, false, true]).unwrap();
        let s = stats(&t).unwrap();
        assert_eq!((s.min, s.max), (0.0, 1.0));
        assert!((s.mean - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(stats(&Tensor::zeros(DType::F32, &[0])), None);
    }

    #[test]
    fn top_k_of_row() {
        let t = Tensor::from_vec(&[1, 6], vec![0.1f32, 0.9, 0.3, 0.9, -1.0, 0.5]).unwrap();
        assert_eq!(top_k(&t, 3).unwrap(), vec![(1, 0.9), (3, 0.9), (5, 0.5)]);
        assert_eq!(top_k(&t, 10).unwrap().len(), 6);
        assert!(top_k(&Tensor::zeros(DType::F32, &[2, 3]), 5).is_none());
        assert!(top_k(&Tensor::zeros(DType::I64, &[1, 3]), 5).is_none());
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(-0.25), "-0.25");
        assert_eq!(fmt_num(1.0 / 3.0), "0.333333");
        assert_eq!(fmt_num(1.5e-7), "1.50000e-7");
    }
}
