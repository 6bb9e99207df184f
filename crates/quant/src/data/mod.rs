//! Calibration data: sources of batches of named f32 input tensors.
//!
//! A [`CalibSource`] holds `len()` samples for every model input and loads any run of them
//! stacked on the first axis, so a calibration driver can go over the set twice (see
//! [`crate::calib`]'s two passes) with [`batches`]:
//! - [`ArraySource::from_npy`]: one `.npy` file per model input, samples stacked on axis 0;
//! - [`ArraySource::from_npz`]: one `.npz` archive (numpy's `savez`), one member per input,
//!   named after it (`NAME.npy`);
//! - [`ImageFolderSource`]: the `.jpg`/`.jpeg`/`.png` images under a folder (recursively,
//!   sorted by path), preprocessed by a [`Preprocess`] spec into the one image input;
//! - [`open_source`] picks one of these from a path.
//!
//! Anything malformed (unreadable, truncated, a non-float dtype, a shape that does not fit the
//! input, inputs with different sample counts, an undecodable image) is a
//! [`QuantError::CalibData`] naming the file and, where there is one, the input or member.
//!
//! The file formats (`.npy`, `.npz`, image decoding and the [`Preprocess`] spec) are read by
//! [`lithe_train::data`], which loads the same files as labelled training data; its errors
//! become [`QuantError::CalibData`] (or [`QuantError::Setting`] for a bad spec) here.

mod arrays;
mod images;

pub use arrays::ArraySource;
pub use images::ImageFolderSource;
/// The image preprocessing spec and its parts (from [`lithe_train::data`]).
pub use lithe_train::data::{ChannelOrder, Layout, Preprocess, Resize};

use crate::QuantError;
use lithe_ir::Tensor;
use lithe_train::TrainError;
use std::fmt;
use std::path::Path;

/// A model input as calibration data must fill it: its name and shape. The first axis is the
/// batch: its size is ignored (batches have as many samples as asked). `None` is a dimension
/// of any size (symbolic in the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// The input's name in the graph.
    pub name: String,
    /// The input's shape, batch first.
    pub shape: Vec<Option<usize>>,
}

impl InputSpec {
    /// An input with dimensions that may be unknown (`None`).
    pub fn new(name: impl Into<String>, shape: &[Option<usize>]) -> Self {
        InputSpec { name: name.into(), shape: shape.to_vec() }
    }

    /// An input with fixed dimensions (the first, the batch, is ignored all the same).
    pub fn fixed(name: impl Into<String>, shape: &[usize]) -> Self {
        InputSpec { name: name.into(), shape: shape.iter().map(|&d| Some(d)).collect() }
    }
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.map_or("?".to_string(), |d| d.to_string())).collect();
        write!(f, "'{}' [{}]", self.name, dims.join(", "))
    }
}

/// One batch: a tensor per model input, each with the same number of samples on axis 0.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `(input name, f32 tensor)` in the order of the source's inputs.
    pub inputs: Vec<(String, Tensor)>,
}

impl Batch {
    /// The tensor of input `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.inputs.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The number of samples (the size of axis 0; 0 for a batch without inputs).
    pub fn samples(&self) -> usize {
        self.inputs.first().and_then(|(_, t)| t.shape().first().copied()).unwrap_or(0)
    }
}

/// A calibration data set: `len()` samples of every input, loadable in any run.
pub trait CalibSource: Send + Sync + fmt::Debug {
    /// The inputs each batch fills, in order.
    fn inputs(&self) -> &[InputSpec];

    /// The number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples (sources refuse to open empty, so normally false).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples `start .. start + count` (clipped to `len()`) stacked on axis 0, one f32 tensor per
    /// input, shaped like the input with the batch axis set to the number of samples.
    fn load(&self, start: usize, count: usize) -> Result<Batch, QuantError>;
}

/// The batches of `batch_size` samples of `source`, in order (the last may be smaller).
pub fn batches(source: &dyn CalibSource, batch_size: usize) -> Result<Batches<'_>, QuantError> {
    if batch_size == 0 {
        return Err(QuantError::Setting { field: "batch size", reason: "0 (must be at least 1)".into() });
    }
    Ok(Batches { source, batch_size, next: 0 })
}

/// Iterator over the batches of a [`CalibSource`] (see [`batches`]).
pub struct Batches<'a> {
    source: &'a dyn CalibSource,
    batch_size: usize,
    next: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<Batch, QuantError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.source.len() {
            return None;
        }
        let start = self.next;
        self.next = start.saturating_add(self.batch_size);
        let batch = self.source.load(start, self.batch_size);
        if batch.is_err() {
            // Stop after the first error.
            self.next = self.source.len();
        }
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.source.len().saturating_sub(self.next).div_ceil(self.batch_size);
        (n, Some(n))
    }
}

/// Open calibration data at `path` for `inputs`: a folder of images (one input, preprocessed
/// by `preprocess`, default [`Preprocess::default`]), a `.npz` archive, or a `.npy` file (one
/// input). Several `.npy` files for several inputs go through [`ArraySource::from_npy`].
pub fn open_source(
    path: &Path,
    inputs: &[InputSpec],
    preprocess: Option<&Preprocess>,
) -> Result<Box<dyn CalibSource>, QuantError> {
    let one_input = || -> Result<InputSpec, QuantError> {
        match inputs {
            [one] => Ok(one.clone()),
            _ => Err(calib_error(path, format!("holds data for one input, but the model has {} inputs", inputs.len()))),
        }
    };
    if path.is_dir() {
        let pre = preprocess.cloned().unwrap_or_default();
        return Ok(Box::new(ImageFolderSource::open(path, one_input()?, pre)?));
    }
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("npz") => Ok(Box::new(ArraySource::from_npz(path, inputs)?)),
        Some("npy") => Ok(Box::new(ArraySource::from_npy(&[(one_input()?, path.to_path_buf())])?)),
        _ => Err(calib_error(path, "expected a folder of images, a .npz or a .npy file".into())),
    }
}

/// A `lithe-train` data error as a calibration data error: file errors become
/// [`QuantError::CalibData`] naming the file, spec errors [`QuantError::Setting`] (the readers
/// raise no other kind; any other stays [`QuantError::Train`]).
pub(crate) fn from_train(e: TrainError) -> QuantError {
    match e {
        TrainError::Data { path, reason } => QuantError::CalibData { path, reason },
        TrainError::Io { path, source } => QuantError::CalibData { path, reason: format!("cannot read: {source}") },
        TrainError::Setting { field, reason } => QuantError::Setting { field, reason },
        other => QuantError::Train(other),
    }
}

/// A [`QuantError::CalibData`] naming `path`.
pub(crate) fn calib_error(path: &Path, reason: String) -> QuantError {
    QuantError::CalibData { path: path.display().to_string(), reason }
}

#[cfg(test)]
mod tests;
