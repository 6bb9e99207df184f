//! Lithe kernels. This crate holds the reference kernels (plain, obviously correct
//! implementations of every operator that faster kernels are tested against), the portable
//! kernel frames such as the packed f32 [`gemm`], the GEMM-based conv and fully connected
//! paths, the [`int8`] execution kernels (int8 GEMM, conv and depthwise with a fused
//! requantize epilogue), and [`fast`] direct kernels for the hot memory-bound operators.
#![warn(missing_docs)]

pub mod conv2d_gemm;
pub mod conv2d_winograd;
mod error;
pub mod fast;
pub mod fully_connected_gemm;
pub mod gemm;
pub mod int8;
mod knobs;
mod parallel;
pub mod reference;
mod short_rows;

pub use error::KernelError;
pub use knobs::force_generic;
