//! `abs_max`: the largest |x| seen; per-channel abs-max of weights.

use super::{Observer, QuantSpec, batch_abs_max};
use crate::QuantError;
use ndarray::{ArrayViewD, Axis};

/// Max |x| over all batches (`abs_max`). Independent of batching and order.
#[derive(Debug, Clone, Default)]
pub struct AbsMaxObserver {
    max: Option<f32>,
}

impl AbsMaxObserver {
    /// An observer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Observer for AbsMaxObserver {
    fn observe(&mut self, batch: &[f32]) {
        if let Some(m) = batch_abs_max(batch) {
            self.max = Some(self.max.map_or(m, |old| old.max(m)));
        }
    }

    fn threshold(&self, _spec: QuantSpec) -> Option<f32> {
        self.max
    }

    fn name(&self) -> &'static str {
        "abs_max"
    }
}

/// Max |w| of each slice of `w` along `axis` (one value per channel; non-finite values are
/// ignored, a channel with none gives 0). Weight channels are axis 0 for conv and depthwise
/// conv, axis 1 for conv-transpose and matmul/fc weights.
pub fn channel_abs_max(w: ArrayViewD<'_, f32>, axis: usize) -> Result<Vec<f32>, QuantError> {
    if axis >= w.ndim() {
        return Err(QuantError::Setting {
            field: "channel axis",
            reason: format!("axis {axis} is out of range for a weight of shape {:?}", w.shape()),
        });
    }
    Ok(w.axis_iter(Axis(axis))
        .map(|ch| ch.iter().fold(0.0f32, |m, &x| if x.abs().is_finite() { m.max(x.abs()) } else { m }))
        .collect())
}
