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
//!
//! A `.nb` model (made by `lite-cli opt`) loads with [`Predictor::from_file`] or
//! [`Predictor::from_bytes`]; [`plan_memory`] reports the arena a graph with known input
//! shapes needs.
#![warn(missing_docs)]

mod bind;
mod dequantize;
mod error;
mod exec;
mod load;
mod memory;
mod options;
mod plan;
mod predictor;
mod resolve;

pub use error::RuntimeError;
pub use exec::{KernelSet, kernel_set};
pub use lithe_nbformat::ModelMeta;
pub use memory::{ARENA_ALIGN, MemoryReport, PlannedValue, Storage, plan_memory};
pub use options::PredictorOptions;
pub use predictor::{NodeProfile, Predictor};

mod target;
pub use target::{OpSupport, Target, UnknownTarget, supported_ops, supports};
