//! Activation calibration for post-training quantization.
//!
//! An [`Observer`] is fed the values of one tensor batch by batch ([`Observer::observe`]) and
//! then answers a *threshold*: the real value mapped to the largest quantized level. With
//! [`QuantSpec`] `b` bits the levels are symmetric signed `-n..=n`, `n = 2^(b-1) - 1` (127 for
//! 8 bits), or, when the caller knows the tensor is non-negative (after a ReLU), unsigned
//! `0..=n`, `n = 2^b - 1` (255). The scale is `threshold / n` ([`scale_from_threshold`]).
//!
//! The algorithms ([`CalibAlgo`], the names the CLI accepts in parentheses):
//! - [`AbsMaxObserver`] (`abs_max`): max |x| over all batches.
//! - [`AvgObserver`] (`avg`): the mean of the per-batch max |x|.
//! - [`HistObserver`] (`hist`): a percentile (0.9999 by default) of the |x| histogram.
//! - [`KlObserver`] (`kl`): the histogram clip that minimizes KL(P||Q) (TensorRT's entropy
//!   calibration).
//! - [`MseObserver`] (`mse`): the clip among 0.30, 0.32, .., 1.00 of max |x| with the least
//!   quantize-dequantize mean squared error.
//!
//! # Two passes
//!
//! The histogram observers (`hist`, `kl`, `mse`) default to two passes over the calibration
//! set, like PaddleSlim: pass 1 only records max |x|, pass 2 fills a histogram whose range is
//! exactly `[0, max |x|]`. A driver therefore loops:
//!
//! ```
//! use lithe_quant::calib::{CalibAlgo, CalibOptions, QuantSpec};
//! let data: Vec<Vec<f32>> = vec![vec![0.5, -1.0, 2.0], vec![-3.0, 0.25]];
//! let mut obs = CalibAlgo::Kl.observer(&CalibOptions::default()).unwrap();
//! loop {
//!     for batch in &data {
//!         obs.observe(batch);
//!     }
//!     if !obs.needs_second_pass() {
//!         break;
//!     }
//!     obs.begin_second_pass();
//! }
//! let threshold = obs.threshold(QuantSpec::INT8).unwrap();
//! assert!(threshold > 0.0 && threshold <= 3.0);
//! ```
//!
//! Pass 2 must see the same values as pass 1 (values above the pass-1 maximum are counted in
//! the last bin). Two-pass results do not depend on how the data is split into batches or on
//! the batch order. With [`CalibOptions::two_pass`] off the histogram is filled in one pass: its
//! range starts at the first batch's max |x| and doubles (merging bins pairwise, which loses no
//! count) whenever a later batch goes beyond it; the result then depends on the batching, within
//! the coarser bins.
//!
//! Non-finite values (NaN, ±inf) are ignored by every observer.

mod abs_max;
mod avg;
mod hist;
mod histogram;
mod kl;
mod mse;
mod quantize;

pub use abs_max::{AbsMaxObserver, channel_abs_max};
pub use avg::AvgObserver;
pub use hist::HistObserver;
pub use kl::{KL_SMOOTHING, KlObserver, kl_best_bins};
pub use mse::MseObserver;
pub use quantize::{QuantSpec, dequantize, fake_quant, quantize, scale_from_threshold};

use crate::QuantError;
use std::fmt;
use std::str::FromStr;

/// Something that watches one tensor's values during calibration and proposes its threshold.
pub trait Observer: Send {
    /// Feed one batch of the tensor's values (any length, including zero).
    fn observe(&mut self, batch: &[f32]);

    /// Whether the driver must run the calibration set through [`Observer::observe`] once more
    /// after calling [`Observer::begin_second_pass`]. False once the second pass has begun, and
    /// always false for one-pass observers.
    fn needs_second_pass(&self) -> bool {
        false
    }

    /// Start the second pass (see the [module docs](self)). A no-op for one-pass observers.
    fn begin_second_pass(&mut self) {}

    /// The threshold for `spec`: a finite value `>= 0` and at most the largest |x| observed.
    /// `None` when no finite value has been observed, or while a two-pass observer is still in
    /// its first pass.
    fn threshold(&self, spec: QuantSpec) -> Option<f32>;

    /// The algorithm's CLI name.
    fn name(&self) -> &'static str;
}

/// Settings shared by the histogram observers.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibOptions {
    /// Histogram bins over `[0, max |x|]` (2048 by default, as in PaddleSlim and TensorRT).
    pub bins: usize,
    /// Two passes (exact range, batching-independent; the default) or one pass with re-binning.
    pub two_pass: bool,
    /// First KL candidate: the number of histogram bins kept (128 by default, as in TensorRT's
    /// description; PaddleSlim starts at 1023). Raised to the number of quantized levels if lower.
    pub kl_start_bin: usize,
}

impl Default for CalibOptions {
    fn default() -> Self {
        CalibOptions { bins: 2048, two_pass: true, kl_start_bin: 128 }
    }
}

impl CalibOptions {
    fn check(&self) -> Result<(), QuantError> {
        if !(2..=1 << 20).contains(&self.bins) {
            return Err(QuantError::Setting {
                field: "bins",
                reason: format!("{} histogram bins (expected 2 to {})", self.bins, 1 << 20),
            });
        }
        if self.kl_start_bin == 0 || self.kl_start_bin > self.bins {
            return Err(QuantError::Setting {
                field: "kl_start_bin",
                reason: format!("{} is not in 1..={} (the histogram bins)", self.kl_start_bin, self.bins),
            });
        }
        Ok(())
    }
}

/// The default percentile of the `hist` algorithm (PaddleSlim's).
pub const DEFAULT_HIST_PERCENT: f32 = 0.9999;

/// An activation calibration algorithm.
///
/// Parses from and prints as the CLI names `abs_max`, `avg`, `kl`, `mse`, `hist` (percentile
/// [`DEFAULT_HIST_PERCENT`]) and `hist:P` (percentile `P` in `(0, 1]`, e.g. `hist:0.999`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CalibAlgo {
    /// Max |x| over all batches.
    AbsMax,
    /// Mean of the per-batch max |x|.
    Avg,
    /// Minimum KL divergence between the clipped and the quantized histogram.
    Kl,
    /// A percentile of the |x| histogram.
    Hist {
        /// The fraction of values below the threshold, in `(0, 1]`.
        percent: f32,
    },
    /// Least quantize-dequantize mean squared error over a grid of clips.
    Mse,
}

impl CalibAlgo {
    /// A fresh observer running this algorithm. Fails on out-of-range options or percentile.
    pub fn observer(&self, options: &CalibOptions) -> Result<Box<dyn Observer>, QuantError> {
        Ok(match *self {
            CalibAlgo::AbsMax => Box::new(AbsMaxObserver::new()),
            CalibAlgo::Avg => Box::new(AvgObserver::new()),
            CalibAlgo::Kl => Box::new(KlObserver::new(options)?),
            CalibAlgo::Hist { percent } => Box::new(HistObserver::new(percent, options)?),
            CalibAlgo::Mse => Box::new(MseObserver::new(options)?),
        })
    }

    /// The CLI name, without the percentile.
    pub fn name(&self) -> &'static str {
        match self {
            CalibAlgo::AbsMax => "abs_max",
            CalibAlgo::Avg => "avg",
            CalibAlgo::Kl => "kl",
            CalibAlgo::Hist { .. } => "hist",
            CalibAlgo::Mse => "mse",
        }
    }
}

impl fmt::Display for CalibAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CalibAlgo::Hist { percent } if *percent != DEFAULT_HIST_PERCENT => write!(f, "hist:{percent}"),
            a => f.write_str(a.name()),
        }
    }
}

impl FromStr for CalibAlgo {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Self, QuantError> {
        let bad = |reason: String| QuantError::Setting { field: "calibration algorithm", reason };
        Ok(match s {
            "abs_max" => CalibAlgo::AbsMax,
            "avg" => CalibAlgo::Avg,
            "kl" => CalibAlgo::Kl,
            "mse" => CalibAlgo::Mse,
            "hist" => CalibAlgo::Hist { percent: DEFAULT_HIST_PERCENT },
            _ => match s.strip_prefix("hist:") {
                Some(p) => {
                    let percent: f32 = p.parse().map_err(|_| bad(format!("'{p}' in '{s}' is not a number")))?;
                    check_percent(percent)?;
                    CalibAlgo::Hist { percent }
                }
                None => return Err(bad(format!("unknown '{s}' (expected abs_max, avg, kl, hist, hist:P or mse)"))),
            },
        })
    }
}

fn check_percent(percent: f32) -> Result<(), QuantError> {
    if percent > 0.0 && percent <= 1.0 {
        Ok(())
    } else {
        Err(QuantError::Setting { field: "hist percent", reason: format!("{percent} is not in (0, 1]") })
    }
}

/// Max |x| over the finite values of `batch`, `None` when it has none.
fn batch_abs_max(batch: &[f32]) -> Option<f32> {
    let mut m = f32::NEG_INFINITY;
    for &x in batch {
        let a = x.abs();
        if a.is_finite() && a > m {
            m = a;
        }
    }
    (m >= 0.0).then_some(m)
}

#[cfg(test)]
mod tests;
