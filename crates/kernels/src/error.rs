//! Kernel errors.

use lithe_ir::IrError;
use thiserror::Error;

/// Errors raised by kernels on inputs they cannot process.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum KernelError {
    /// The operator or dtype combination has no kernel.
    #[error("{op}: unsupported: {detail}")]
    Unsupported {
        /// Operator name.
        op: &'static str,
        /// What is unsupported.
        detail: String,
    },
    /// Inputs are invalid for the operator (shapes, dtypes, values).
    #[error("{op}: {detail}")]
    Invalid {
        /// Operator name.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// An IR-level error (attributes, shapes).
    #[error(transparent)]
    Ir(#[from] IrError),
}
