//! Learning-rate schedules with optional linear warm-up.

/// The shape of the learning rate after warm-up, as a function of the step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decay {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Steps between drops.
        every: usize,
        /// Factor per drop.
        gamma: f32,
    },
    /// Cosine from the base rate to `min_lr` over `total` steps (warm-up included), `min_lr` after.
    Cosine {
        /// Total number of steps.
        total: usize,
        /// Final rate.
        min_lr: f32,
    },
}

/// A learning-rate schedule: `warmup` steps rising linearly from `base_lr / warmup` to
/// `base_lr`, then `decay` (counted from step 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Peak learning rate.
    pub base_lr: f32,
    /// Warm-up steps (0 for none).
    pub warmup: usize,
    /// The decay after warm-up.
    pub decay: Decay,
}

impl Schedule {
    /// A constant rate.
    pub fn constant(lr: f32) -> Self {
        Schedule { base_lr: lr, warmup: 0, decay: Decay::Constant }
    }

    /// Cosine decay to 0 over `total` steps.
    pub fn cosine(lr: f32, total: usize) -> Self {
        Schedule { base_lr: lr, warmup: 0, decay: Decay::Cosine { total, min_lr: 0.0 } }
    }

    /// With `steps` of linear warm-up.
    pub fn with_warmup(mut self, steps: usize) -> Self {
        self.warmup = steps;
        self
    }

    /// The learning rate of step `step` (0-based).
    pub fn lr(&self, step: usize) -> f32 {
        if step < self.warmup {
            return self.base_lr * (step + 1) as f32 / self.warmup as f32;
        }
        match self.decay {
            Decay::Constant => self.base_lr,
            Decay::Step { every, gamma } => self.base_lr * gamma.powi((step / every.max(1)) as i32),
            Decay::Cosine { total, min_lr } => {
                // Cosine over the steps after warm-up.
                let span = total.saturating_sub(self.warmup).max(1);
                let t = ((step - self.warmup) as f64 / span as f64).min(1.0);
                let c = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                (min_lr as f64 + (self.base_lr - min_lr) as f64 * c) as f32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let s = Schedule::cosine(1.0, 100).with_warmup(10);
        assert_eq!(s.lr(0), 0.1);
        assert_eq!(s.lr(9), 1.0);
        assert_eq!(s.lr(10), 1.0);
        assert!((s.lr(55) - 0.5).abs() < 1e-6);
        assert!(s.lr(100).abs() < 1e-7 && s.lr(1000).abs() < 1e-7);
        let st = Schedule { base_lr: 1.0, warmup: 0, decay: Decay::Step { every: 10, gamma: 0.5 } };
        assert_eq!((st.lr(9), st.lr(10), st.lr(25)), (1.0, 0.5, 0.25));
        assert_eq!(Schedule::constant(0.3).lr(1_000_000), 0.3);
    }
}
