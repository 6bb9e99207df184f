//! Errors of the ONNX importer and exporter.

use lithe_ir::IrError;
use std::fmt;
use std::path::PathBuf;
use thiserror::Error;

/// One operator type the importer cannot convert, with where it occurs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedOp {
    /// The ONNX operator type (`If`, `NonMaxSuppression`, ...).
    pub op_type: String,
    /// The operator's domain (`ai.onnx` for the default domain).
    pub domain: String,
    /// The opset version the model imports for that domain, if it imports one.
    pub opset: Option<i64>,
    /// How many nodes of the model use this operator.
    pub count: usize,
    /// Name of the first such node.
    pub first_node: String,
}

impl fmt::Display for UnsupportedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.op_type, self.domain)?;
        match self.opset {
            Some(v) => write!(f, " opset {v}")?,
            None => f.write_str(", domain not imported")?,
        }
        let plural = if self.count == 1 { "" } else { "s" };
        write!(f, "; {} node{plural}, first '{}')", self.count, self.first_node)
    }
}

fn list_unsupported(ops: &[UnsupportedOp]) -> String {
    let items: Vec<String> = ops.iter().map(ToString::to_string).collect();
    let plural = if ops.len() == 1 { "" } else { "s" };
    format!("the model uses {} unsupported operator type{plural}: {}", ops.len(), items.join(", "))
}

/// Errors raised while importing an ONNX model or tensor, or exporting a graph.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// A file could not be read.
    #[error("cannot read '{}': {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid protobuf message of the expected type.
    #[error("'{}' is not a valid ONNX protobuf file: {source}", path.display())]
    Decode {
        /// The file (`<memory>` for in-memory bytes).
        path: PathBuf,
        /// The protobuf decoding error.
        #[source]
        source: prost::DecodeError,
    },
    /// The model uses operators the importer does not support (all of them listed).
    #[error("{}", list_unsupported(.0))]
    UnsupportedOps(Vec<UnsupportedOp>),
    /// A node cannot be converted.
    #[error("node '{node}' ({op_type}): {message}")]
    Node {
        /// Node name.
        node: String,
        /// ONNX operator type.
        op_type: String,
        /// What is wrong.
        message: String,
    },
    /// A tensor (initializer, constant or tensor file) is malformed or unsupported.
    #[error("tensor '{name}': {message}")]
    Tensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A graph input has an unsupported or inconsistent type.
    #[error("graph input '{name}': {message}")]
    Input {
        /// Input name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The model's structure is invalid (missing graph, duplicate or dangling value names, cycles).
    #[error("invalid model: {0}")]
    Model(String),
    /// The imported graph failed IR shape inference or validation.
    #[error("{0}")]
    Ir(#[from] IrError),
    /// Export: the node's operator has no ONNX form the exporter knows.
    #[error("cannot export node '{node}': operator {op} has no ONNX export")]
    UnsupportedExport {
        /// Node name.
        node: String,
        /// The IR operator's name.
        op: String,
    },
    /// Export: the node cannot be written as standard ONNX (missing input, unsupported
    /// attribute value, ...).
    #[error("cannot export node '{node}' ({op}): {message}")]
    Export {
        /// Node name.
        node: String,
        /// The IR operator's name.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// An error inside a model file, with the file's path.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The model file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Box<OnnxError>,
    },
}

impl OnnxError {
    /// Attach a model file's path to the error (I/O and decode errors already carry one).
    pub(crate) fn in_file(self, path: &std::path::Path) -> OnnxError {
        match self {
            OnnxError::Decode { source, .. } => OnnxError::Decode { path: path.to_path_buf(), source },
            e @ (OnnxError::Io { .. } | OnnxError::InFile { .. }) => e,
            e => OnnxError::InFile { path: path.to_path_buf(), source: Box::new(e) },
        }
    }

    /// A tensor error.
    pub(crate) fn tensor(name: &str, message: impl Into<String>) -> OnnxError {
        OnnxError::Tensor { name: name.to_string(), message: message.into() }
    }

    /// An input error.
    pub(crate) fn input(name: &str, message: impl Into<String>) -> OnnxError {
        OnnxError::Input { name: name.to_string(), message: message.into() }
    }
}
