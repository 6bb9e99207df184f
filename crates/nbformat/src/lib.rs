//! The `.nb` file: one optimized model (structure and weights) in one file.
//!
//! Layout and compatibility rules: `docs/nb-format.md`.
#![warn(missing_docs)]

use lithe_ir::Graph;
use std::path::Path;

/// What a `.nb` file says about how it was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelMeta {
    /// The producing tool and version (`lithe 0.1.0`).
    pub producer: String,
    /// The file the model was converted from (file name only).
    pub source: String,
    /// Names of the passes that changed the graph, in pipeline order.
    pub passes: Vec<String>,
    /// Targets the model was checked against (`arm`, `x86`).
    pub valid_targets: Vec<String>,
}

/// Errors reading or writing a `.nb` file.
#[derive(Debug, thiserror::Error)]
pub enum NbError {
    /// Placeholder until the reader lands.
    #[error("not implemented")]
    Todo,
}

/// Encode a graph and its metadata as `.nb` bytes.
pub fn write(_graph: &Graph, _meta: &ModelMeta) -> Result<Vec<u8>, NbError> {
    Err(NbError::Todo)
}

/// Decode `.nb` bytes.
pub fn read(_bytes: &[u8]) -> Result<(Graph, ModelMeta), NbError> {
    Err(NbError::Todo)
}

/// Read a `.nb` file (memory-mapped).
pub fn read_file(_path: &Path) -> Result<(Graph, ModelMeta), NbError> {
    Err(NbError::Todo)
}

/// Write a `.nb` file.
pub fn write_file(_path: &Path, _graph: &Graph, _meta: &ModelMeta) -> Result<(), NbError> {
    Err(NbError::Todo)
}

/// True when `bytes` start with the `.nb` magic (a cheap check to tell `.nb` from ONNX).
pub fn has_magic(_bytes: &[u8]) -> bool {
    false
}
