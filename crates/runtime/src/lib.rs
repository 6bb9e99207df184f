//! Lithe runtime: the [`Predictor`] runs a [`lithe_ir::Graph`] on input tensors.
//!
//! ```no_run
//! # fn demo(graph: lithe_ir::Graph, x: lithe_ir::Tensor) -> Result<(), lithe_runtime::RuntimeError> {
//! let mut p = lithe_runtime::Predictor::new(graph)?;
//! p.set_input(0, x)?;
//! p.run()?;
//! let y = p.output(0);
//! # let _ = y; Ok(()) }
//! ```
#![warn(missing_docs)]

mod bind;
mod error;
mod plan;
mod predictor;
mod resolve;

pub use error::RuntimeError;
pub use predictor::Predictor;
