//! The crate's error type.

use lithe_ir::IrError;
use lithe_kernels::KernelError;
use thiserror::Error;

/// Errors raised while building a tape, differentiating, optimizing or loading data.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The op has no backward rule (or none for this form of it).
    #[error("no backward rule for op {op} at node {node}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    NoBackwardRule {
        /// Operator name.
        op: &'static str,
        /// Node name.
        node: String,
        /// Which form is missing, when the op has rules for other forms.
        detail: String,
    },
    /// A value has the wrong dtype or shape for the rule or loss reading it.
    #[error("{what}: {detail}")]
    Invalid {
        /// The node, loss or loader at fault.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A kernel failed in the forward or backward pass.
    #[error("node {node}: {source}")]
    Kernel {
        /// Node name.
        node: String,
        /// The kernel's error.
        source: KernelError,
    },
    /// A graph-level error.
    #[error(transparent)]
    Ir(#[from] IrError),
    /// A data file (or a member or image in it) is malformed or does not fit (the file is named).
    #[error("{path}: {reason}")]
    Data {
        /// The file or folder (with the member, where there is one).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A data or training setting is malformed or out of range (the setting is named).
    #[error("invalid setting '{field}': {reason}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// Reading a data file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Shorthand for [`TrainError::Invalid`].
pub(crate) fn invalid(what: impl Into<String>, detail: impl Into<String>) -> TrainError {
    TrainError::Invalid { what: what.into(), detail: detail.into() }
}
