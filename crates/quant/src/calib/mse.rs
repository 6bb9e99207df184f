//! `mse`: the clip with the least quantize-dequantize mean squared error.

use super::histogram::AbsHistogram;
use super::{CalibOptions, Observer, QuantSpec};
use crate::QuantError;

/// Number of clips tried: 0.30, 0.32, .., 1.00 of max |x|.
const GRID: usize = 36;

/// The clip `r * max |x|`, `r` in 0.30, 0.32, .., 1.00, with the least mean squared error
/// between x and its quantize-dequantize value (`mse`). Ties go to the smallest clip.
///
/// Batches arrive one at a time, so the error is evaluated on the |x| histogram rather than on
/// the raw values: each bin keeps its count, Σ|x| and Σx², and all values of a bin are taken to
/// land on the level of the bin's mean, which makes the squared error of the bin exactly
/// `Σx² - 2cΣ|x| + count·c²` for that level value `c`. This is exact for every bin that lies
/// inside one quantization cell or entirely above the clip; only bins straddling a rounding
/// boundary are approximate, and their error there is at most `2·step·bin_width` per value
/// (with 2048 bins and 8 bits, a bin is at most a quarter of a step). Signed quantization is
/// symmetric, so the error of x equals that of |x|; unsigned assumes x ≥ 0.
///
/// PaddleSlim evaluates each batch on its own and keeps the best clip over all batches; we
/// minimize over the whole calibration set, which in two passes (the default) is independent
/// of the batching.
#[derive(Debug, Clone)]
pub struct MseObserver {
    hist: AbsHistogram,
}

impl MseObserver {
    /// An observer with `options`' bins and passes.
    pub fn new(options: &CalibOptions) -> Result<Self, QuantError> {
        options.check()?;
        Ok(MseObserver { hist: AbsHistogram::new(options, true) })
    }

    /// The mean squared error (over all observed values) that clipping at `threshold` gives,
    /// as estimated from the histogram; `None` before the histogram is ready.
    pub fn estimated_mse(&self, threshold: f32, spec: QuantSpec) -> Option<f64> {
        if !self.hist.ready() {
            return None;
        }
        let (sums, squares) = self.hist.moments()?;
        let counts = self.hist.counts();
        let total: u64 = counts.iter().sum();
        Some(histogram_sse(counts, sums, squares, threshold, spec) / total.max(1) as f64)
    }
}

/// The clip ratio of grid point `k`: (30 + 2k) / 100.
fn ratio(k: usize) -> f64 {
    (30 + 2 * k) as f64 / 100.0
}

/// Σ over bins of the squared quantize-dequantize error at `threshold`.
fn histogram_sse(counts: &[u64], sums: &[f64], squares: &[f64], threshold: f32, spec: QuantSpec) -> f64 {
    let n = f64::from(spec.max_level());
    let t = f64::from(threshold);
    if t <= 0.0 {
        return squares.iter().sum();
    }
    let step = t / n;
    let mut sse = 0.0;
    for ((&c, &s), &q) in counts.iter().zip(sums).zip(squares) {
        if c == 0 {
            continue;
        }
        let c = c as f64;
        let mean = s / c;
        let level = (mean / step).round_ties_even().min(n);
        let v = level * step;
        sse += (q - 2.0 * v * s + c * v * v).max(0.0);
    }
    sse
}

impl Observer for MseObserver {
    fn observe(&mut self, batch: &[f32]) {
        self.hist.observe(batch);
    }

    fn needs_second_pass(&self) -> bool {
        self.hist.needs_second_pass()
    }

    fn begin_second_pass(&mut self) {
        self.hist.begin_second_pass();
    }

    fn threshold(&self, spec: QuantSpec) -> Option<f32> {
        if !self.hist.ready() {
            return None;
        }
        let max = self.hist.max()?;
        if max == 0.0 {
            return Some(0.0);
        }
        let (sums, squares) = self.hist.moments()?;
        let counts = self.hist.counts();
        let mut best = (f64::INFINITY, max);
        for k in 0..GRID {
            let t = ((ratio(k) * f64::from(max)) as f32).min(max);
            let sse = histogram_sse(counts, sums, squares, t, spec);
            if sse < best.0 {
                best = (sse, t);
            }
        }
        Some(best.1)
    }

    fn name(&self) -> &'static str {
        "mse"
    }
}
