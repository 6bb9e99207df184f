//! Errors of the pass manager and the passes.

use lithe_ir::IrError;

/// What can go wrong while optimizing a graph.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The graph is invalid (before a pass, or a pass broke it: the pass is named).
    #[error("pass '{pass}': {source}")]
    Graph {
        /// The pass that was running (`input` for the graph as given).
        pass: String,
        /// What is wrong.
        #[source]
        source: IrError,
    },
    /// A pass name given by the user does not exist.
    #[error("unknown pass '{name}' (known passes: {known})")]
    UnknownPass {
        /// The name given.
        name: String,
        /// Every known pass name, comma-separated.
        known: String,
    },
    /// The passes kept changing the graph after the round limit.
    #[error("passes did not reach a fixed point after {rounds} rounds")]
    NoFixedPoint {
        /// Rounds run.
        rounds: usize,
    },
}

impl PassError {
    /// Attach the running pass name to a graph error.
    pub fn graph(pass: &str, source: IrError) -> PassError {
        PassError::Graph { pass: pass.to_string(), source }
    }
}
