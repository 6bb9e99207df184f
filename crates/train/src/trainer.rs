//! The training loop's step: forward in training mode, loss, backward, clipping, optimizer,
//! batch-norm running statistics; evaluation in eval mode.

use crate::data::Dataset;
use crate::error::invalid;
use crate::loss::{accuracy, softmax_cross_entropy};
use crate::optim::{Optimizer, OptimizerKind, clip_grad_norm};
use crate::schedule::Schedule;
use crate::{ForwardHook, Mode, NoHook, Params, Tape, TrainError};
use lithe_ir::{Graph, NodeId, Op, Tensor, TensorData};
use ndarray::{ArrayD, Axis, IxDyn};

/// How a [`Trainer`] trains.
#[derive(Clone, Debug)]
pub struct TrainerConfig {
    /// Name globs of constants never trained.
    pub freeze: Vec<String>,
    /// The update rule.
    pub optimizer: OptimizerKind,
    /// Learning rate per step.
    pub schedule: Schedule,
    /// Clip the global gradient norm to this value.
    pub clip_norm: Option<f32>,
    /// Label smoothing of the cross-entropy loss.
    pub label_smoothing: f32,
    /// Weight of the batch statistics in the running statistics update
    /// (`r = (1 - m)·r + m·batch`, torch's `momentum`, 0.1 by default).
    pub bn_momentum: f32,
    /// Seed of the random masks of train-mode dropout: step `s` runs its tape with a seed
    /// derived from this one and `s`, so a run repeats for a seed.
    pub seed: u64,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            freeze: Vec::new(),
            optimizer: OptimizerKind::adam(0.0),
            schedule: Schedule::constant(1e-3),
            clip_norm: None,
            label_smoothing: 0.0,
            bn_momentum: 0.1,
            seed: 0,
        }
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Mean loss of the batch (before the update).
    pub loss: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Samples of the batch whose train-mode logits put the label first.
    pub correct: usize,
}

/// Trains a classifier graph (one input, first output the `N x classes` logits) with
/// softmax cross-entropy. The graph's constants are the weights: every step writes them back,
/// so [`Trainer::graph`] is always the current model.
#[derive(Debug)]
pub struct Trainer {
    graph: Graph,
    order: Vec<NodeId>,
    params: Params,
    optimizer: Optimizer,
    config: TrainerConfig,
    steps: usize,
}

impl Trainer {
    /// A trainer for `graph`.
    pub fn new(graph: Graph, config: TrainerConfig) -> Result<Self, TrainError> {
        graph.validate()?;
        if graph.inputs().len() != 1 || graph.outputs().is_empty() {
            return Err(invalid(
                format!("graph {}", graph.name),
                format!(
                    "{} inputs and {} outputs (one input and the logits first expected)",
                    graph.inputs().len(),
                    graph.outputs().len()
                ),
            ));
        }
        let freeze: Vec<&str> = config.freeze.iter().map(String::as_str).collect();
        let params = Params::select(&graph, &freeze);
        let order = graph.topo_order()?;
        Ok(Trainer { graph, order, params, optimizer: Optimizer::new(config.optimizer), config, steps: 0 })
    }

    /// The current model.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The model, trained.
    pub fn into_graph(self) -> Graph {
        self.graph
    }

    /// The trainable constants.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The optimizer and its state.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// The optimizer, to restore its state from a checkpoint.
    pub fn optimizer_mut(&mut self) -> &mut Optimizer {
        &mut self.optimizer
    }

    /// Continue counting steps from `steps` (resuming from a checkpoint: the schedule picks up
    /// where it left off; the optimizer's moments are restored separately, or start afresh).
    pub fn resume_at(&mut self, steps: usize) {
        self.steps = steps;
    }

    /// One optimizer step on a batch.
    pub fn step(&mut self, x: Tensor, labels: &[usize]) -> Result<StepStats, TrainError> {
        self.step_with(x, labels, &mut NoHook)
    }

    /// [`Trainer::step`] with `hook` seeing every node of the forward pass (fake quantization).
    pub fn step_with(
        &mut self,
        x: Tensor,
        labels: &[usize],
        hook: &mut dyn ForwardHook,
    ) -> Result<StepStats, TrainError> {
        let out = self.graph.outputs()[0];
        let targets = self.params.outlets();
        let (loss, mut grads, stats, correct) = {
            let tape =
                Tape::with_order(&self.graph, self.order.clone()).with_seed(step_seed(self.config.seed, self.steps));
            let fwd = tape.forward_with(vec![x], Mode::Train, hook)?;
            let logits = fwd.f32(out)?.view();
            let loss = softmax_cross_entropy(&logits, labels, self.config.label_smoothing)?;
            let correct = (accuracy(&logits, labels)? * labels.len() as f64).round() as usize;
            let mut g = tape.backward(&fwd, vec![(out, loss.grad)], &targets)?;
            let grads: Vec<ArrayD<f32>> = targets
                .iter()
                .map(|&o| {
                    g.take(o).unwrap_or_else(|| {
                        ArrayD::zeros(IxDyn(self.graph.const_value(o).map(|t| t.shape()).unwrap_or(&[])))
                    })
                })
                .collect();
            (loss.loss, grads, fwd.bn_stats, correct)
        };
        let mut gslices: Vec<&mut [f32]> =
            grads.iter_mut().map(|g| g.as_slice_mut().expect("gradients are standard layout")).collect();
        let grad_norm = match self.config.clip_norm {
            Some(max) => clip_grad_norm(&mut gslices, max),
            None => clip_grad_norm(&mut gslices, f32::INFINITY),
        };
        let lr = self.config.schedule.lr(self.steps);
        let mut weights: Vec<ArrayD<f32>> =
            self.params.nodes().iter().map(|&id| take_f32(&mut self.graph, id)).collect::<Result<_, _>>()?;
        let result = {
            let mut ws: Vec<&mut [f32]> =
                weights.iter_mut().map(|w| w.as_slice_mut().expect("standard layout")).collect();
            let gs: Vec<&[f32]> = grads.iter().map(|g| g.as_slice().expect("standard layout")).collect();
            self.optimizer.step(&mut ws, &gs, lr)
        };
        for (&id, w) in self.params.nodes().iter().zip(weights) {
            self.graph.node_mut(id).op = Op::Const(Tensor::from(w));
        }
        result?;
        for (node, s) in stats {
            self.update_running_stats(node, &s.mean, &s.var)?;
        }
        self.steps += 1;
        tracing::debug!(step = self.steps, loss, lr, grad_norm, "train step");
        Ok(StepStats { loss, lr, grad_norm, correct })
    }

    fn update_running_stats(&mut self, bn: NodeId, mean: &[f32], var: &[f32]) -> Result<(), TrainError> {
        let m = self.config.bn_momentum;
        let ins = self.graph.node_inputs(bn);
        for (slot, batch) in [(3, mean), (4, var)] {
            let Some(Some(o)) = ins.get(slot).copied() else {
                return Err(invalid(&self.graph.node(bn).name, format!("no running statistics at input {slot}")));
            };
            let name = self.graph.node(bn).name.clone();
            let mut r = take_f32(&mut self.graph, o.node)
                .map_err(|_| invalid(&name, format!("running statistics at input {slot} are not an f32 constant")))?;
            if r.len() != batch.len() {
                let have = r.len();
                self.graph.node_mut(o.node).op = Op::Const(Tensor::from(r));
                return Err(invalid(&name, format!("{have} running values for {} channels", batch.len())));
            }
            r.iter_mut().zip(batch).for_each(|(r, &b)| *r = (1.0 - m) * *r + m * b);
            self.graph.node_mut(o.node).op = Op::Const(Tensor::from(r));
        }
        Ok(())
    }

    /// The logits of `x` in eval mode.
    pub fn predict(&self, x: Tensor) -> Result<ArrayD<f32>, TrainError> {
        self.predict_with(x, &mut NoHook)
    }

    /// [`Trainer::predict`] with `hook` seeing every node of the forward pass.
    pub fn predict_with(&self, x: Tensor, hook: &mut dyn ForwardHook) -> Result<ArrayD<f32>, TrainError> {
        let tape = Tape::with_order(&self.graph, self.order.clone());
        let fwd = tape.forward_with(vec![x], Mode::Eval, hook)?;
        Ok(fwd.f32(self.graph.outputs()[0])?.clone())
    }

    /// Top-1 accuracy over `data` in eval mode, `batch` samples at a time.
    pub fn evaluate(&self, data: &Dataset, batch: usize) -> Result<f64, TrainError> {
        let mut correct = 0.0;
        for (x, labels) in crate::data::Batches::new(data, batch, None, crate::data::Augment::None) {
            let logits = self.predict(x)?;
            correct += accuracy(&logits.view(), &labels)? * labels.len() as f64;
        }
        Ok(correct / data.len().max(1) as f64)
    }

    /// Top-1 and top-5 accuracy and mean cross-entropy over `data` in eval mode, `batch`
    /// samples at a time (see [`crate::data::eval`] for ties).
    pub fn evaluate_metrics(&self, data: &Dataset, batch: usize) -> Result<crate::data::Metrics, TrainError> {
        let mut sum = crate::data::MetricsSum::default();
        for (x, labels) in crate::data::Batches::new(data, batch, None, crate::data::Augment::None) {
            sum.add(&self.predict(x)?.view(), &labels)?;
        }
        Ok(sum.metrics())
    }

    /// Mean cross-entropy over `data` in eval mode.
    pub fn eval_loss(&self, data: &Dataset, batch: usize) -> Result<f32, TrainError> {
        let mut total = 0f64;
        for (x, labels) in crate::data::Batches::new(data, batch, None, crate::data::Augment::None) {
            let logits = self.predict(x)?;
            let rows = logits.len_of(Axis(0));
            total += softmax_cross_entropy(&logits.view(), &labels, 0.0)?.loss as f64 * rows as f64;
        }
        Ok((total / data.len().max(1) as f64) as f32)
    }
}

/// Move the f32 array out of a constant node (an empty placeholder is left until it is put back).
fn take_f32(graph: &mut Graph, id: NodeId) -> Result<ArrayD<f32>, TrainError> {
    let name = graph.node(id).name.clone();
    match &mut graph.node_mut(id).op {
        Op::Const(t) => match t.data_mut() {
            TensorData::F32(a) => {
                let a = std::mem::replace(a, ArrayD::zeros(IxDyn(&[0])));
                Ok(a.as_standard_layout().into_owned())
            }
            _ => Err(invalid(name, "not an f32 constant")),
        },
        _ => Err(invalid(name, "not a constant")),
    }
}

/// The tape seed of step `step` of a run seeded with `seed` (a different stream every step).
pub(crate) fn step_seed(seed: u64, step: usize) -> u64 {
    crate::rng::Rng::new(seed ^ (step as u64).wrapping_mul(0xA076_1D64_78BD_642F)).next_u64()
}
