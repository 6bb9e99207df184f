//! Building a predictor from a `.nb` model, from a file or from bytes in memory.

use crate::{Predictor, PredictorOptions, RuntimeError};
use std::path::Path;
use std::sync::Arc;

// `lithe_nbformat::read` validates the graph it rebuilds, so it is not validated again.
impl Predictor {
    /// Load the `.nb` model at `path` (memory-mapped while it is decoded) and build its
    /// predictor with `options`.
    pub fn from_file(path: &Path, options: PredictorOptions) -> Result<Predictor, RuntimeError> {
        let span = tracing::debug_span!("load", path = %path.display());
        let _enter = span.enter();
        let (graph, meta) = lithe_nbformat::read_file(path)
            .map_err(|e| RuntimeError::Load { path: Some(path.to_path_buf()), source: Arc::new(e) })?;
        Predictor::with_meta(graph, meta, options)
    }

    /// Load a `.nb` model from `bytes` and build its predictor with `options`.
    pub fn from_bytes(bytes: &[u8], options: PredictorOptions) -> Result<Predictor, RuntimeError> {
        let (graph, meta) =
            lithe_nbformat::read(bytes).map_err(|e| RuntimeError::Load { path: None, source: Arc::new(e) })?;
        Predictor::with_meta(graph, meta, options)
    }
}
