//! `avg`: the mean of the per-batch max |x|.

use super::{Observer, QuantSpec, batch_abs_max};

/// The mean over batches of each batch's max |x| (`avg`). Batches without a finite value are
/// not counted. Depends on the batching by definition; independent of the batch order up to
/// rounding.
#[derive(Debug, Clone, Default)]
pub struct AvgObserver {
    sum: f64,
    batches: u64,
    max: f32,
}

impl AvgObserver {
    /// An observer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Observer for AvgObserver {
    fn observe(&mut self, batch: &[f32]) {
        if let Some(m) = batch_abs_max(batch) {
            self.sum += f64::from(m);
            self.batches += 1;
            self.max = self.max.max(m);
        }
    }

    fn threshold(&self, _spec: QuantSpec) -> Option<f32> {
        // The mean of values <= max is <= max; `min` guards the last bit of rounding.
        (self.batches > 0).then(|| ((self.sum / self.batches as f64) as f32).min(self.max))
    }

    fn name(&self) -> &'static str {
        "avg"
    }
}
