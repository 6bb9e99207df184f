//! The fine-tuning loop through fake quantization.

use super::QatModel;
use crate::QuantError;
use lithe_train::data::{Augment, Batches, Dataset};
use lithe_train::optim::OptimizerKind;
use lithe_train::schedule::Schedule;
use lithe_train::{Trainer, TrainerConfig};

/// How [`QatModel::train`] fine-tunes.
#[derive(Clone, Debug)]
pub struct QatTrainOptions {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Peak learning rate of Adam, decayed to 0 by a cosine schedule over all steps (3e-5
    /// by default, chosen on a validation split of the MNIST training digits).
    pub lr: f32,
    /// Seed of the shuffling (and of the augmentation).
    pub seed: u64,
    /// Augmentation of the training batches.
    pub augment: Augment,
    /// Stop after this many steps (all epochs when `None`).
    pub max_steps: Option<usize>,
}

impl Default for QatTrainOptions {
    fn default() -> Self {
        QatTrainOptions { epochs: 2, batch_size: 64, lr: 3e-5, seed: 1, augment: Augment::None, max_steps: None }
    }
}

/// What one epoch of [`QatModel::train`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QatEpoch {
    /// The epoch, from 1.
    pub epoch: usize,
    /// Steps taken in it.
    pub steps: usize,
    /// Mean training loss (fake-quantized, train mode).
    pub loss: f32,
}

impl QatModel {
    /// Fine-tune the fake-quantized graph on `data` (softmax cross-entropy on the first
    /// output): every step updates the activation strategies' state and the weights.
    /// `progress` gets (epoch, step within the epoch, steps per epoch, loss) after each step.
    pub fn train(
        &mut self,
        data: &Dataset,
        options: &QatTrainOptions,
        progress: &mut dyn FnMut(usize, usize, usize, f32),
    ) -> Result<Vec<QatEpoch>, QuantError> {
        if options.batch_size == 0 {
            return Err(QuantError::Setting { field: "batch_size", reason: "must be at least 1".into() });
        }
        if data.is_empty() {
            return Err(QuantError::Setting { field: "train_data", reason: "no samples".into() });
        }
        let per_epoch = data.len().div_ceil(options.batch_size);
        let total = (per_epoch * options.epochs).min(options.max_steps.unwrap_or(usize::MAX)).max(1);
        let config = TrainerConfig {
            optimizer: OptimizerKind::adam(0.0),
            schedule: Schedule::cosine(options.lr, total),
            ..TrainerConfig::default()
        };
        let mut trainer = Trainer::new(self.graph.clone(), config)?;
        let mut epochs = Vec::new();
        let mut steps = 0;
        'epochs: for epoch in 1..=options.epochs {
            let mut sum = 0f64;
            let mut n = 0;
            let seed = options.seed.wrapping_add(epoch as u64);
            for (x, labels) in Batches::new(data, options.batch_size, Some(seed), options.augment) {
                if steps >= total {
                    break;
                }
                let s = trainer.step_with(x, &labels, &mut self.fake)?;
                steps += 1;
                n += 1;
                sum += f64::from(s.loss);
                progress(epoch, n, per_epoch, s.loss);
            }
            epochs.push(QatEpoch { epoch, steps: n, loss: (sum / n.max(1) as f64) as f32 });
            tracing::info!(epoch, steps = n, loss = sum / n.max(1) as f64, "quantization-aware training epoch");
            if steps >= total {
                break 'epochs;
            }
        }
        self.graph = trainer.into_graph();
        // The graph's scale constants hold the eval-mode state, so that it runs as trained
        // outside the tape too (the predictor, ONNX export).
        self.fake.write_eval_scales(&mut self.graph)?;
        Ok(epochs)
    }
}
