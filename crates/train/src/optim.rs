//! Optimizers (torch's update rules) and gradient clipping.

use crate::TrainError;
use crate::error::invalid;

/// The update rule and its hyper-parameters (the learning rate comes from the schedule).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    /// SGD: `g += wd·p`; with momentum `b = μ·b + g` (`b = g` on the first step) and
    /// `g = b`, or `g += μ·b` with Nesterov; `p -= lr·g`.
    Sgd {
        /// Momentum μ (0 for none).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 weight decay added to the gradient.
        weight_decay: f32,
    },
    /// Adam (`decoupled: false`, weight decay added to the gradient) or AdamW (`decoupled:
    /// true`, `p -= lr·wd·p` before the Adam step).
    Adam {
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Added to the root of the second moment.
        eps: f32,
        /// Weight decay.
        weight_decay: f32,
        /// AdamW's decoupled weight decay.
        decoupled: bool,
    },
}

impl OptimizerKind {
    /// SGD with momentum (no Nesterov).
    pub fn sgd(momentum: f32, weight_decay: f32) -> Self {
        OptimizerKind::Sgd { momentum, nesterov: false, weight_decay }
    }

    /// Adam with torch's defaults (0.9, 0.999, 1e-8) and L2 weight decay.
    pub fn adam(weight_decay: f32) -> Self {
        OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled: false }
    }

    /// AdamW with torch's defaults and decoupled weight decay.
    pub fn adamw(weight_decay: f32) -> Self {
        OptimizerKind::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled: true }
    }
}

/// An optimizer's per-parameter state, as checkpoints save it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    /// Steps taken (Adam's bias correction counts on from here).
    pub steps: u64,
    /// Momentum buffers (SGD) or first moments (Adam), one per parameter; empty before the
    /// first step.
    pub m: Vec<Vec<f32>>,
    /// Second moments (Adam), one per parameter; empty for SGD.
    pub v: Vec<Vec<f32>>,
}

/// An optimizer with its per-parameter state.
#[derive(Clone, Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    /// Momentum buffers (SGD) or first moments (Adam), one per parameter.
    m: Vec<Vec<f32>>,
    /// Second moments (Adam).
    v: Vec<Vec<f32>>,
    steps: u64,
}

impl Optimizer {
    /// A fresh optimizer.
    pub fn new(kind: OptimizerKind) -> Self {
        Optimizer { kind, m: Vec::new(), v: Vec::new(), steps: 0 }
    }

    /// The update rule.
    pub fn kind(&self) -> OptimizerKind {
        self.kind
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// A copy of the per-parameter state.
    pub fn state(&self) -> OptimizerState {
        OptimizerState { steps: self.steps, m: self.m.clone(), v: self.v.clone() }
    }

    /// Continue from a saved state: its second moments must be present exactly for Adam, and
    /// one buffer per parameter is checked at the next step.
    pub fn set_state(&mut self, state: OptimizerState) -> Result<(), TrainError> {
        let adam = matches!(self.kind, OptimizerKind::Adam { .. });
        let v_ok =
            if adam && !state.m.is_empty() { state.v.len() == state.m.len() } else { adam || state.v.is_empty() };
        let sizes_ok = state.m.iter().zip(&state.v).all(|(m, v)| m.len() == v.len());
        if !v_ok || !sizes_ok {
            return Err(invalid(
                "optimizer state",
                format!(
                    "{} first and {} second moments for {}",
                    state.m.len(),
                    state.v.len(),
                    if adam { "adam" } else { "sgd" }
                ),
            ));
        }
        self.steps = state.steps;
        self.m = state.m;
        self.v = state.v;
        Ok(())
    }

    /// One step over every parameter: `params[i]` is updated from `grads[i]` (same lengths, the
    /// same parameter at the same index on every call).
    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]], lr: f32) -> Result<(), TrainError> {
        if params.len() != grads.len() {
            return Err(invalid("optimizer", format!("{} parameters, {} gradients", params.len(), grads.len())));
        }
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            if matches!(self.kind, OptimizerKind::Adam { .. }) {
                self.v = params.iter().map(|p| vec![0.0; p.len()]).collect();
            }
        }
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            if p.len() != g.len() || self.m.get(i).is_none_or(|m| m.len() != p.len()) {
                return Err(invalid(
                    "optimizer",
                    format!(
                        "parameter {i}: {} values, gradient {}, state {:?}",
                        p.len(),
                        g.len(),
                        self.m.get(i).map(Vec::len)
                    ),
                ));
            }
        }
        self.steps += 1;
        let t = self.steps;
        match self.kind {
            OptimizerKind::Sgd { momentum, nesterov, weight_decay } => {
                for ((p, g), buf) in params.iter_mut().zip(grads).zip(&mut self.m) {
                    for ((p, &g), b) in p.iter_mut().zip(g.iter()).zip(buf.iter_mut()) {
                        let mut d = g + weight_decay * *p;
                        if momentum != 0.0 {
                            *b = if t == 1 { d } else { momentum * *b + d };
                            d = if nesterov { d + momentum * *b } else { *b };
                        }
                        *p -= lr * d;
                    }
                }
            }
            OptimizerKind::Adam { beta1, beta2, eps, weight_decay, decoupled } => {
                let bc1 = 1.0 - (beta1 as f64).powi(t as i32);
                let bc2 = 1.0 - (beta2 as f64).powi(t as i32);
                let step = (lr as f64 / bc1) as f32;
                let bc2_sqrt = bc2.sqrt() as f32;
                for (((p, g), m), v) in params.iter_mut().zip(grads).zip(&mut self.m).zip(&mut self.v) {
                    for (((p, &g), m), v) in p.iter_mut().zip(g.iter()).zip(m.iter_mut()).zip(v.iter_mut()) {
                        let g = if decoupled {
                            *p -= lr * weight_decay * *p;
                            g
                        } else {
                            g + weight_decay * *p
                        };
                        *m = beta1 * *m + (1.0 - beta1) * g;
                        *v = beta2 * *v + (1.0 - beta2) * g * g;
                        *p -= step * *m / (v.sqrt() / bc2_sqrt + eps);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Scale `grads` so their global L2 norm is at most `max_norm`; returns the norm before.
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f32) -> f32 {
    let norm = grads.iter().flat_map(|g| g.iter()).map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt() as f32;
    if norm > max_norm && norm > 0.0 {
        let s = max_norm / (norm + 1e-6);
        grads.iter_mut().for_each(|g| g.iter_mut().for_each(|v| *v *= s));
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimize `(p - 3)²` from 0.
    fn run(kind: OptimizerKind, lr: f32, steps: usize) -> f32 {
        let mut opt = Optimizer::new(kind);
        let mut p = [0f32];
        for _ in 0..steps {
            let g = [2.0 * (p[0] - 3.0)];
            opt.step(&mut [&mut p[..]], &[&g[..]], lr).unwrap();
        }
        p[0]
    }

    #[test]
    fn every_rule_converges_on_a_quadratic() {
        for kind in [
            OptimizerKind::sgd(0.0, 0.0),
            OptimizerKind::sgd(0.9, 0.0),
            OptimizerKind::Sgd { momentum: 0.9, nesterov: true, weight_decay: 0.0 },
            OptimizerKind::adam(0.0),
            OptimizerKind::adamw(0.0),
        ] {
            let p = run(kind, 0.05, 500);
            assert!((p - 3.0).abs() < 1e-2, "{kind:?}: {p}");
        }
        // Weight decay pulls the optimum towards 0: (p-3)² + wd/2·p² has its minimum at 3/(1+wd/2).
        let p = run(OptimizerKind::sgd(0.0, 1.0), 0.05, 2000);
        assert!((p - 2.0).abs() < 1e-3, "{p}");
    }

    #[test]
    fn first_steps_match_hand_computation() {
        // SGD momentum 0.9, nesterov: b1 = g, p1 = -lr (g + 0.9 g).
        let mut opt = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9, nesterov: true, weight_decay: 0.0 });
        let mut p = [0f32];
        opt.step(&mut [&mut p[..]], &[&[1.0][..]], 0.1).unwrap();
        assert!((p[0] + 0.19).abs() < 1e-7);
        // Adam's first step moves by lr·sign(g) (bias-corrected).
        let mut opt = Optimizer::new(OptimizerKind::adam(0.0));
        let mut p = [1f32];
        opt.step(&mut [&mut p[..]], &[&[-4.0][..]], 0.01).unwrap();
        assert!((p[0] - 1.01).abs() < 1e-6, "{}", p[0]);
        // AdamW decays first: p = 1 - lr·wd·1, then the Adam step.
        let mut opt = Optimizer::new(OptimizerKind::adamw(0.5));
        let mut p = [1f32];
        opt.step(&mut [&mut p[..]], &[&[1.0][..]], 0.1).unwrap();
        assert!((p[0] - (1.0 - 0.05 - 0.1)).abs() < 1e-6, "{}", p[0]);
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let (mut a, mut b) = (vec![3.0f32], vec![4.0f32]);
        let n = clip_grad_norm(&mut [&mut a[..], &mut b[..]], 1.0);
        assert_eq!(n, 5.0);
        assert!((a[0] - 0.6).abs() < 1e-5 && (b[0] - 0.8).abs() < 1e-5);
        let n = clip_grad_norm(&mut [&mut a[..]], 10.0);
        assert!((n - 0.6).abs() < 1e-5 && (a[0] - 0.6).abs() < 1e-5);
    }
}
