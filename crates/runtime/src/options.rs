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
    /// Verify the weights checksum of a `.nb` when loading it. Off by default: it reads every
    /// weight byte, which a memory-mapped load otherwise leaves to the first run; the header,
    /// section table and program section are always verified and every tensor is
    /// bounds-checked, so unverified weights can only be wrong numbers, never memory errors.
    pub verify_weights: bool,
}

impl Default for PredictorOptions {
    fn default() -> Self {
        PredictorOptions { threads: 1, target: None, verify_weights: false }
    }
}

impl PredictorOptions {
    /// These options with `threads` worker threads.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// These options with the weights checksum verified (or not) at load.
    pub fn with_verify_weights(mut self, verify: bool) -> Self {
        self.verify_weights = verify;
        self
    }

    /// These options for `target`.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}
