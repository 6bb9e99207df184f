//! Options for building a [`Predictor`](crate::Predictor).

/// How a predictor runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PredictorOptions {
    /// Worker threads of the predictor's own thread pool, inside which every
    /// [`run`](crate::Predictor::run) executes; 0 means one per CPU core. The reference
    /// kernels are single-threaded, so today this only bounds the threads a run may use; the
    /// fast kernels split their work across the pool.
    pub threads: usize,
    /// The target to run for (`arm`, `x86`; see [`Target`](crate::Target)). When set, the
    /// predictor refuses a model using an operator that target has no kernel for, and warns
    /// when a `.nb` model was not checked for it. `None` accepts every model.
    pub target: Option<String>,
}

impl Default for PredictorOptions {
    fn default() -> Self {
        PredictorOptions { threads: 1, target: None }
    }
}

impl PredictorOptions {
    /// These options with `threads` worker threads.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// These options for `target`.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}
