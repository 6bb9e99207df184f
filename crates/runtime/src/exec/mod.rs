//! Fast kernels: chosen once per process from the CPU's features, prepared once per predictor
//! (weights packed at load), run in place on the arena. Nodes without a prepared kernel run
//! with the reference kernels.

mod int8;
mod kernels;
mod prepared;

pub(crate) use int8::{Elems, ElemsMut, PerTensorQuant, QConvKernel, qadd_params, qgap_params};
pub use kernels::{KernelSet, kernel_set};
pub(crate) use prepared::{Input, Prepared, pool_params, prepare_steps};
