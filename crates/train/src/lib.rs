//! Lithe training: reverse-mode automatic differentiation over an [`lithe_ir::Graph`].
//!
//! - [`Tape`]: runs a graph forward in topological order in training or eval mode, keeping
//!   every value, then walks it backward accumulating one gradient per value (fan-out sums,
//!   broadcasting reduces). The backward rules live in [`rules`], one module per op family;
//!   an op without a rule is [`TrainError::NoBackwardRule`] naming the node.
//! - [`Params`]: which `Const` nodes are trainable (every f32 weight feeding a differentiable
//!   slot by default, frozen by name glob) and the batch-norm running statistics.
//! - [`loss`]: softmax cross-entropy with label smoothing, MSE, KL divergence with temperature.
//! - [`optim`]: SGD (momentum, Nesterov, weight decay), Adam and AdamW, gradient clipping by
//!   global norm; [`schedule`]: constant, step and cosine learning rates with linear warm-up.
//! - [`data`]: IDX (MNIST), `.npy`/`.npz` and image-folder loaders, seeded shuffling, batching,
//!   augmentation (shift, crop with padding, flip), top-k accuracy and loss metrics.
//! - [`Trainer`]: one optimizer step per batch, evaluation, weights written back into the graph.
//! - [`checkpoint`]: the training graph saved as `.nb` or ONNX, models loaded from either, the
//!   optimizer state and step counts that let a run resume.
//!
//! See `docs/training.md` for the design and measured figures.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod data;
mod error;
pub mod gemm;
pub mod init;
pub mod loss;
pub mod models;
pub mod optim;
mod params;
pub mod rng;
pub mod rules;
pub mod schedule;
mod tape;
mod trainer;

pub use error::TrainError;
pub use params::{Params, glob_match};
pub use tape::{Forward, ForwardHook, Gradients, Mode, NoHook, Tape};
pub use trainer::{StepStats, Trainer, TrainerConfig};
