//! `hist`: a percentile of the |x| histogram.

use super::histogram::AbsHistogram;
use super::{CalibOptions, Observer, QuantSpec, check_percent};
use crate::QuantError;

/// The `percent` percentile of |x| (`hist`), read from the histogram: the upper edge of the first
/// bin at which the cumulative count reaches `percent` of all values, capped at max |x|. It lies
/// within one bin width above the exact percentile (the value of rank `ceil(percent * N)` among
/// the sorted |x|).
#[derive(Debug, Clone)]
pub struct HistObserver {
    hist: AbsHistogram,
    percent: f32,
}

impl HistObserver {
    /// `percent` in `(0, 1]`; PaddleSlim's default is [`super::DEFAULT_HIST_PERCENT`].
    pub fn new(percent: f32, options: &CalibOptions) -> Result<Self, QuantError> {
        check_percent(percent)?;
        options.check()?;
        Ok(HistObserver { hist: AbsHistogram::new(options, false), percent })
    }
}

impl Observer for HistObserver {
    fn observe(&mut self, batch: &[f32]) {
        self.hist.observe(batch);
    }

    fn needs_second_pass(&self) -> bool {
        self.hist.needs_second_pass()
    }

    fn begin_second_pass(&mut self) {
        self.hist.begin_second_pass();
    }

    fn threshold(&self, _spec: QuantSpec) -> Option<f32> {
        if !self.hist.ready() {
            return None;
        }
        let max = self.hist.max()?;
        let counts = self.hist.counts();
        let total: u64 = counts.iter().sum();
        let target = f64::from(self.percent) * total as f64;
        let mut cum = 0u64;
        let mut bin = counts.len() - 1;
        for (i, &c) in counts.iter().enumerate() {
            cum += c;
            if cum as f64 >= target {
                bin = i;
                break;
            }
        }
        Some((((bin + 1) as f64 * self.hist.bin_width()) as f32).min(max))
    }

    fn name(&self) -> &'static str {
        "hist"
    }
}
