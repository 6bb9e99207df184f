//! Activation scale strategies of quantization-aware training: what threshold (the real value
//! mapped to the largest level) each batch is fake-quantized with.

use crate::QuantError;
use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

/// How an activation's quantization threshold follows the batches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActStrategy {
    /// Dynamic: each batch is quantized with its own `max|x|`.
    AbsMax,
    /// Static: a bias-corrected moving average of the batch maxima, `state = r·state + 1`,
    /// `accum = r·accum + max|x|`, threshold `accum / state` (`r` the moving rate).
    MovingAverageAbsMax {
        /// The weight of the past, `r` (0.9 by default).
        moving_rate: f32,
    },
    /// Static: the largest batch maximum over the last `window_size` training batches.
    RangeAbsMax {
        /// How many batch maxima are kept (10000 by default).
        window_size: usize,
    },
}

/// The default moving rate of [`ActStrategy::MovingAverageAbsMax`].
pub const DEFAULT_MOVING_RATE: f32 = 0.9;
/// The default window of [`ActStrategy::RangeAbsMax`].
pub const DEFAULT_WINDOW_SIZE: usize = 10_000;

impl ActStrategy {
    /// The strategy's setting, checked: a moving rate in `[0, 1)`, a window of at least 1.
    pub fn validate(&self) -> Result<(), QuantError> {
        match *self {
            ActStrategy::MovingAverageAbsMax { moving_rate } if !(0.0..1.0).contains(&moving_rate) => {
                Err(QuantError::Setting { field: "moving_rate", reason: format!("{moving_rate} is not in [0, 1)") })
            }
            ActStrategy::RangeAbsMax { window_size: 0 } => {
                Err(QuantError::Setting { field: "window_size", reason: "must be at least 1".into() })
            }
            _ => Ok(()),
        }
    }

    /// True for the strategies whose eval-mode threshold is stored (not taken from the batch).
    pub fn is_static(&self) -> bool {
        !matches!(self, ActStrategy::AbsMax)
    }
}

impl fmt::Display for ActStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActStrategy::AbsMax => "abs_max",
            ActStrategy::MovingAverageAbsMax { .. } => "moving_average_abs_max",
            ActStrategy::RangeAbsMax { .. } => "range_abs_max",
        })
    }
}

impl FromStr for ActStrategy {
    type Err = QuantError;

    /// `abs_max`, `moving_average_abs_max` or `range_abs_max`, with the default settings.
    fn from_str(s: &str) -> Result<Self, QuantError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "abs_max" => Ok(ActStrategy::AbsMax),
            "moving_average_abs_max" => Ok(ActStrategy::MovingAverageAbsMax { moving_rate: DEFAULT_MOVING_RATE }),
            "range_abs_max" => Ok(ActStrategy::RangeAbsMax { window_size: DEFAULT_WINDOW_SIZE }),
            other => Err(QuantError::Setting {
                field: "act_strategy",
                reason: format!("'{other}' (expected abs_max, moving_average_abs_max or range_abs_max)"),
            }),
        }
    }
}

/// The state of one activation's strategy.
#[derive(Clone, Debug)]
pub struct ActObserver {
    strategy: ActStrategy,
    /// Moving average: `Σ r^k` and `Σ r^k·max_k`.
    state: f64,
    accum: f64,
    /// Range: the last batch maxima.
    window: VecDeque<f32>,
    /// The largest batch maximum seen in training (the static threshold of `abs_max`).
    max_seen: f32,
    batches: usize,
}

impl ActObserver {
    /// A fresh observer (no batch seen).
    pub fn new(strategy: ActStrategy) -> Self {
        ActObserver { strategy, state: 0.0, accum: 0.0, window: VecDeque::new(), max_seen: 0.0, batches: 0 }
    }

    /// The strategy.
    pub fn strategy(&self) -> ActStrategy {
        self.strategy
    }

    /// Training batches observed.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// A training batch with maximum `batch_max = max|x|`: update the state and return the
    /// threshold this batch is quantized with (the updated one, for the static strategies).
    pub fn train(&mut self, batch_max: f32) -> f32 {
        let m = if batch_max.is_finite() { batch_max.abs() } else { 0.0 };
        self.batches += 1;
        self.max_seen = self.max_seen.max(m);
        match self.strategy {
            ActStrategy::AbsMax => m,
            ActStrategy::MovingAverageAbsMax { moving_rate } => {
                let r = f64::from(moving_rate);
                self.state = r * self.state + 1.0;
                self.accum = r * self.accum + f64::from(m);
                (self.accum / self.state) as f32
            }
            ActStrategy::RangeAbsMax { window_size } => {
                if self.window.len() == window_size {
                    self.window.pop_front();
                }
                self.window.push_back(m);
                self.window.iter().fold(0.0f32, |a, &b| a.max(b))
            }
        }
    }

    /// The threshold of an eval-mode batch with maximum `batch_max`: the stored one for the
    /// static strategies (the batch's own maximum before any training batch), the batch's
    /// for `abs_max`.
    pub fn eval(&self, batch_max: f32) -> f32 {
        match self.strategy {
            ActStrategy::AbsMax => batch_max.abs(),
            _ => self.stored().unwrap_or(batch_max.abs()),
        }
    }

    /// The static threshold a converted model uses: the strategy's state, or for `abs_max`
    /// the largest batch maximum seen in training; `None` before any training batch.
    pub fn stored(&self) -> Option<f32> {
        if self.batches == 0 {
            return None;
        }
        Some(match self.strategy {
            ActStrategy::AbsMax => self.max_seen,
            ActStrategy::MovingAverageAbsMax { .. } => (self.accum / self.state) as f32,
            ActStrategy::RangeAbsMax { .. } => self.window.iter().fold(0.0f32, |a, &b| a.max(b)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn abs_max_is_each_batch_and_stores_the_largest() {
        let mut o = ActObserver::new(ActStrategy::AbsMax);
        assert_eq!(o.stored(), None);
        assert_eq!(o.train(2.0), 2.0);
        assert_eq!(o.train(-5.0), 5.0);
        assert_eq!(o.train(1.0), 1.0);
        assert_eq!(o.eval(3.0), 3.0);
        assert_eq!(o.stored(), Some(5.0));
    }

    #[test]
    fn moving_average_is_bias_corrected() {
        // r = 0.9, maxima 2, 4, 1:
        // state 1, 1.9, 2.71; accum 2, 5.8, 6.22; thresholds 2, 5.8/1.9, 6.22/2.71.
        let mut o = ActObserver::new(ActStrategy::MovingAverageAbsMax { moving_rate: 0.9 });
        assert!(close(o.train(2.0), 2.0));
        assert!(close(o.train(4.0), 5.8 / 1.9));
        assert!(close(o.train(1.0), 6.22 / 2.71));
        assert!(close(o.eval(100.0), 6.22 / 2.71), "eval uses the stored threshold");
        assert!(close(o.stored().unwrap(), 2.295_203));
    }

    #[test]
    fn range_abs_max_keeps_the_last_window() {
        let mut o = ActObserver::new(ActStrategy::RangeAbsMax { window_size: 2 });
        assert_eq!(o.eval(7.0), 7.0, "before training: the batch");
        assert_eq!(o.train(3.0), 3.0);
        assert_eq!(o.train(1.0), 3.0);
        assert_eq!(o.train(2.0), 2.0, "3 left the window");
        assert_eq!(o.train(0.5), 2.0);
        assert_eq!(o.eval(9.0), 2.0);
    }

    #[test]
    fn strategies_parse_and_validate() {
        assert_eq!("abs_max".parse::<ActStrategy>().unwrap(), ActStrategy::AbsMax);
        assert_eq!(
            "moving_average_abs_max".parse::<ActStrategy>().unwrap(),
            ActStrategy::MovingAverageAbsMax { moving_rate: 0.9 }
        );
        assert!("minmax".parse::<ActStrategy>().is_err());
        assert!(ActStrategy::MovingAverageAbsMax { moving_rate: 1.0 }.validate().is_err());
        assert!(ActStrategy::RangeAbsMax { window_size: 0 }.validate().is_err());
        assert!(ActStrategy::RangeAbsMax { window_size: 1 }.validate().is_ok());
    }
}
