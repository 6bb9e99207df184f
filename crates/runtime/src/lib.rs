//! lithe-runtime
