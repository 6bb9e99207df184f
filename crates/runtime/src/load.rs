//! Building a predictor from a `.nb` model: from a file (memory-mapped, weights used in
//! place), from shared bytes (in place), or from a byte slice (copied once).

use crate::{Predictor, PredictorOptions, RuntimeError};
use lithe_ir::SharedBytes;
use lithe_nbformat::ReadOptions;
use std::path::Path;
use std::sync::Arc;

// `lithe_nbformat` validates the graph it rebuilds, so it is not validated again.
impl Predictor {
    /// Load the `.nb` model at `path` and build its predictor with `options`. The file is
    /// memory-mapped and the weights are read in place from the mapping, which the predictor
    /// keeps; the file must not be modified while the predictor lives.
    pub fn from_file(path: &Path, options: PredictorOptions) -> Result<Predictor, RuntimeError> {
        let span = tracing::debug_span!("load", path = %path.display());
        let _enter = span.enter();
        let (graph, meta) = lithe_nbformat::read_file_with(path, &read_options(&options))
            .map_err(|e| RuntimeError::Load { path: Some(path.to_path_buf()), source: Arc::new(e) })?;
        Predictor::with_meta(graph, meta, options)
    }

    /// Load a `.nb` model held in `bytes` (which must not change while the predictor lives),
    /// reading the weights in place where they are aligned in memory.
    pub fn from_shared(bytes: SharedBytes, options: PredictorOptions) -> Result<Predictor, RuntimeError> {
        let (graph, meta) = lithe_nbformat::read_shared(bytes, &read_options(&options))
            .map_err(|e| RuntimeError::Load { path: None, source: Arc::new(e) })?;
        Predictor::with_meta(graph, meta, options)
    }

    /// Load a `.nb` model from `bytes`: copied once into an aligned buffer the predictor
    /// keeps, whose weights are then read in place.
    pub fn from_bytes(bytes: &[u8], options: PredictorOptions) -> Result<Predictor, RuntimeError> {
        Predictor::from_shared(lithe_nbformat::shared_copy(bytes), options)
    }
}

fn read_options(options: &PredictorOptions) -> ReadOptions {
    ReadOptions { verify_weights: options.verify_weights }
}
