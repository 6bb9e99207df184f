//! ONNX import into the Lithe IR, and export back to ONNX.
//!
//! [`load_model`] reads an ONNX model file (external tensor data relative to its directory) and
//! returns a validated [`Graph`]: initializers become constants, remaining graph inputs become
//! `Input` nodes, every supported operator is converted to its [`lithe_ir::Op`] (older attribute
//! forms become constant inputs), shapes are inferred, and with
//! [`ImportOptions::fold_constants`] constant subgraphs (including `Shape` of inputs whose shape
//! is fixed) are evaluated and replaced by constants.
//!
//! Models with operators the importer does not know fail with one
//! [`OnnxError::UnsupportedOps`] listing all of them. Hostile or truncated files give errors,
//! never panics.
//!
//! [`export_model`] and [`save_onnx`] write a graph (imported, optimized or built in Rust) as
//! a standard ONNX model (default domain, opset [`EXPORT_OPSET`]), expanding Lithe's fused ops.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod attrs;
mod context;
mod error;
mod export;
mod import;
mod ops;
mod registry;
mod tensor_data;
mod types;

/// The ONNX protobuf messages the importer reads (generated from `proto/onnx.proto`).
///
/// Public so that tools and tests can build models in Rust and encode them with
/// [`prost::Message::encode_to_vec`].
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

pub use error::{OnnxError, UnsupportedOp};
pub use export::{EXPORT_OPSET, ExportOptions, export_model, export_model_proto, save_onnx, save_onnx_with};

use lithe_ir::{Graph, Tensor};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Options of [`load_model`] and [`load_model_bytes`].
#[derive(Clone, Debug, PartialEq)]
pub struct ImportOptions {
    /// Fixed dims for named graph inputs; they override the model's symbolic or unknown dims
    /// (fixed dims in the model must agree). Symbols fixed this way are bound in other inputs too.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// Evaluate constant subgraphs at import time and replace them by constants.
    pub fold_constants: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { input_shapes: HashMap::new(), fold_constants: true }
    }
}

fn base_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, OnnxError> {
    std::fs::read(path).map_err(|source| OnnxError::Io { path: path.to_path_buf(), source })
}

/// Load an ONNX model file; external data paths are relative to the file's directory.
pub fn load_model(path: &Path, opts: &ImportOptions) -> Result<Graph, OnnxError> {
    let bytes = read_file(path)?;
    tracing::debug!(path = %path.display(), bytes = bytes.len(), "loading ONNX model");
    load_model_bytes(&bytes, Some(&base_dir_of(path)), opts).map_err(|e| e.in_file(path))
}

/// Load an ONNX model from bytes. `base_dir` is where external data files are looked up;
/// `None` rejects models with external data.
pub fn load_model_bytes(bytes: &[u8], base_dir: Option<&Path>, opts: &ImportOptions) -> Result<Graph, OnnxError> {
    import::import_model(bytes, base_dir, opts)
}

/// Decode a serialized `TensorProto` (as in the `*.pb` files of ONNX test data sets) into its
/// name and value. External data is rejected (use [`read_tensor_proto`]).
pub fn parse_tensor_proto(bytes: &[u8]) -> Result<(String, Tensor), OnnxError> {
    let t = proto::TensorProto::decode(bytes)
        .map_err(|source| OnnxError::Decode { path: PathBuf::from(import::MEMORY), source })?;
    let value = tensor_data::tensor_from_proto(&t, None)?;
    Ok((t.name, value))
}

/// Read a serialized `TensorProto` file into its name and value; external data is relative
/// to the file's directory.
pub fn read_tensor_proto(path: &Path) -> Result<(String, Tensor), OnnxError> {
    let bytes = read_file(path)?;
    let t = proto::TensorProto::decode(bytes.as_slice())
        .map_err(|source| OnnxError::Decode { path: path.to_path_buf(), source })?;
    let value = tensor_data::tensor_from_proto(&t, Some(&base_dir_of(path))).map_err(|e| e.in_file(path))?;
    Ok((t.name, value))
}

/// The ONNX operator types (default domain) the importer converts, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    registry::Registry::global().names()
}
