//! Errors of the IR crate.

use crate::DType;
use thiserror::Error;

/// Errors raised while building, validating or inferring a graph.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IrError {
    /// An attribute value is invalid.
    #[error("invalid attribute: {0}")]
    Attribute(String),
    /// Input shapes are incompatible with the operator.
    #[error("shape error: {0}")]
    Shape(String),
    /// A tensor does not have the expected dtype.
    #[error("{what}: expected dtype {expected}, found {found}")]
    DType {
        /// What was being checked.
        what: String,
        /// Expected dtype.
        expected: DType,
        /// Found dtype.
        found: DType,
    },
    /// A tensor's data is malformed.
    #[error("invalid tensor: {0}")]
    InvalidTensor(String),
    /// A required input is missing.
    #[error("missing input {slot} ({what})")]
    MissingInput {
        /// The input slot.
        slot: usize,
        /// What the input is.
        what: &'static str,
    },
    /// An error inside a named node.
    #[error("node '{node}' ({op}): {source}")]
    Node {
        /// Node name.
        node: String,
        /// Operator name.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: Box<IrError>,
    },
    /// The graph has a cycle through the named node.
    #[error("graph has a cycle through node '{0}'")]
    Cycle(String),
    /// A reference to a node or value that does not exist.
    #[error("dangling reference: {0}")]
    Dangling(String),
    /// A name was not found.
    #[error("no value named '{0}'")]
    UnknownName(String),
    /// Several problems found by validation.
    #[error("{} problems: {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<IrError>),
}

impl IrError {
    /// Wrap an error with the node it happened in.
    pub fn in_node(self, node: &str, op: &'static str) -> IrError {
        match self {
            e @ IrError::Node { .. } => e,
            e => IrError::Node { node: node.to_string(), op, source: Box::new(e) },
        }
    }
}
