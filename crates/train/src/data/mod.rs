//! Training data, read into memory as a [`Dataset`] of f32 samples with class labels:
//! - IDX files (MNIST) with [`Dataset::from_idx`] ([`idx`]);
//! - `.npy` pairs and labelled `.npz` archives with [`Dataset::from_npy`] and
//!   [`Dataset::from_npz`] ([`arrays`], which also serves calibration data in `lithe-quant`);
//! - image folders, one sub-folder per class, decoded in parallel and preprocessed by a
//!   [`Preprocess`] spec, with [`Dataset::from_image_folder`] ([`ImageFolder`], [`ImageDecoder`]).
//!
//! [`Batches`] goes over a dataset for one epoch: seeded shuffling, batching and [`Augment`]
//! (random shifts, crops with zero padding, horizontal flips). [`eval`] has top-k accuracy and
//! the mean cross-entropy of logits.
//!
//! Malformed files are [`TrainError::Data`] errors naming the file (and the member or image),
//! unreadable ones [`TrainError::Io`], bad preprocessing specs [`TrainError::Setting`].

pub mod arrays;
mod augment;
mod batches;
mod dataset;
pub mod eval;
mod folder;
pub mod idx;
mod images;
mod preprocess;

pub use augment::{Augment, AugmentSteps, crop_sample, flip_sample, shift_sample};
pub use batches::Batches;
pub use dataset::Dataset;
pub use eval::{Metrics, MetricsSum, in_top_k, top_k_accuracy};
pub use folder::ImageFolder;
pub use idx::{Idx, parse_idx, read_idx};
pub use images::{IMAGE_EXTENSIONS, ImageDecoder, list_images};
pub use preprocess::{ChannelOrder, Layout, Preprocess, Resize};

use crate::TrainError;
use std::path::Path;

/// A [`TrainError::Data`] naming `path`.
pub(crate) fn data_error(path: impl std::fmt::Display, reason: impl Into<String>) -> TrainError {
    TrainError::Data { path: path.to_string(), reason: reason.into() }
}

/// A [`TrainError::Io`] naming `path`.
pub(crate) fn io_error(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Io { path: path.display().to_string(), source }
}
