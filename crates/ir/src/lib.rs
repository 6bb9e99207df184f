//! Lithe's graph IR: the data every other Lithe crate shares.
//!
//! - [`Tensor`]: ndarray-backed values in any [`DType`], with optional quantization parameters.
//! - [`Shape`]/[`Dim`]: shapes with fixed, symbolic and unknown dimensions.
//! - [`Op`]: one variant per operator, typed attributes, a shape rule ([`op::infer`]) and a
//!   FLOPs count ([`op::flops`]).
//! - [`Graph`]: nodes on petgraph with ordered input slots, explicit inputs, outputs and
//!   constants, stable topological order, validation and shape inference.
#![warn(missing_docs)]

pub mod builder;
mod dtype;
mod error;
pub mod graph;
pub mod npy;
pub mod op;
mod shape;
mod tensor;

pub use dtype::DType;
pub use error::IrError;
pub use graph::{Graph, Node, NodeId, Outlet, ValueInfo};
pub use op::Op;
pub use shape::{Dim, Shape, TypeInfo};
pub use tensor::{Element, QuantParams, SharedBytes, Tensor, TensorData, TensorView, shared_aligned_copy};
