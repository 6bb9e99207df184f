//! Errors of the predictor.

use lithe_ir::{DType, IrError, TypeInfo};
use lithe_kernels::KernelError;
use lithe_nbformat::NbError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Errors raised while building or running a [`Predictor`](crate::Predictor).
#[derive(Debug, Error, Clone)]
pub enum RuntimeError {
    /// A `.nb` model could not be read.
    #[error("cannot load the model {}: {source}", origin(.path.as_deref()))]
    Load {
        /// The file, or `None` when loading from bytes.
        path: Option<PathBuf>,
        /// What the `.nb` reader reported.
        #[source]
        source: Arc<NbError>,
    },
    /// The options name a target that does not exist.
    #[error(transparent)]
    UnknownTarget(Arc<crate::UnknownTarget>),
    /// The model uses operators the requested target has no kernel for.
    #[error("target {target} has no kernel for {ops} used by the model")]
    UnsupportedOps {
        /// The target.
        target: crate::Target,
        /// The operators, comma-separated.
        ops: String,
    },
    /// The predictor's thread pool could not be created.
    #[error("cannot create a thread pool of {threads} threads: {message}")]
    ThreadPool {
        /// The requested number of threads.
        threads: usize,
        /// Why it failed.
        message: String,
    },
    /// A graph input has symbolic or unknown dims where concrete shapes are needed (planning
    /// memory without running).
    #[error("input '{name}' has type {ty}: memory can only be planned for known input shapes")]
    UnknownInputShape {
        /// The input's name.
        name: String,
        /// Its declared type.
        ty: TypeInfo,
    },
    /// The graph failed validation when the predictor was built.
    #[error("invalid graph: {0}")]
    Graph(#[source] IrError),
    /// A graph input was not set before running.
    #[error("input '{name}' was not set")]
    MissingInput {
        /// The input's name.
        name: String,
    },
    /// No graph input has this name.
    #[error("the model has no input named '{name}' (inputs: {known})")]
    UnknownInput {
        /// The requested name.
        name: String,
        /// The model's input names, comma-separated.
        known: String,
    },
    /// An input index is out of range.
    #[error("input index {index} is out of range: the model has {count} inputs")]
    InputIndex {
        /// The requested index.
        index: usize,
        /// Number of graph inputs.
        count: usize,
    },
    /// `run_with` was given the wrong number of inputs.
    #[error("the model has {expected} inputs, {got} were given")]
    InputCount {
        /// Number of graph inputs.
        expected: usize,
        /// Number of tensors given.
        got: usize,
    },
    /// A tensor given for an input does not match the input's declared type.
    #[error("input '{name}' expects {expected}, got {got}: {detail}")]
    InputType {
        /// The input's name.
        name: String,
        /// The declared type, e.g. `f32[batch,3,224,224]`.
        expected: TypeInfo,
        /// The given tensor's dtype and shape, e.g. `f32[1,3,224]`.
        got: String,
        /// What differs.
        detail: String,
    },
    /// One symbolic dimension was given two different sizes by two inputs.
    #[error(
        "symbolic dimension '{symbol}' is {first_size} in input '{first_input}' but {second_size} in input '{second_input}'"
    )]
    SymbolConflict {
        /// The symbol.
        symbol: String,
        /// The input that bound it first.
        first_input: String,
        /// Its size there.
        first_size: usize,
        /// The input that disagrees.
        second_input: String,
        /// Its size there.
        second_size: usize,
    },
    /// Shape inference rejected the graph for the given input shapes.
    #[error("the graph does not accept inputs of shapes {shapes}: {source}")]
    Resolve {
        /// The input shapes, e.g. `x: [1,3,224,224]`.
        shapes: String,
        /// What shape inference reported.
        #[source]
        source: IrError,
    },
    /// A kernel failed.
    #[error("node '{node}' ({op}): {source}")]
    Node {
        /// The node's name.
        node: String,
        /// The operator.
        op: &'static str,
        /// The kernel's error.
        #[source]
        source: KernelError,
    },
    /// A kernel returned outputs that disagree with the node's declared or inferred types.
    #[error("node '{node}' ({op}): kernel output {detail}")]
    KernelOutput {
        /// The node's name.
        node: String,
        /// The operator.
        op: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A broken invariant of the predictor itself (a bug, not a problem with the model).
    #[error("internal error: {0}")]
    Internal(String),
}

/// `'path'` or `from memory`, for messages.
fn origin(path: Option<&Path>) -> String {
    path.map_or_else(|| "from memory".to_string(), |p| format!("'{}'", p.display()))
}

impl RuntimeError {
    /// An [`RuntimeError::InputType`] for a tensor of `dtype` and `shape`.
    pub(crate) fn input_type(name: &str, expected: &TypeInfo, dtype: DType, shape: &[usize], detail: String) -> Self {
        RuntimeError::InputType {
            name: name.to_string(),
            expected: expected.clone(),
            got: format!("{dtype}{}", lithe_ir::Shape::known(shape)),
            detail,
        }
    }
}
