//! Lithe quantization: weight-only int8/int16 weights, activation calibration for
//! post-training int8, and the int8 graph that the int8 kernels run.
#![warn(missing_docs)]

pub mod analysis;
pub mod calib;
pub mod data;
mod error;
pub mod eval;
pub mod ptq;
pub mod qat;
pub mod weight_only;

pub use error::QuantError;
