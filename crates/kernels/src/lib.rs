//! Lithe kernels. This crate holds the reference kernels: plain, obviously correct
//! implementations of every operator that faster kernels are tested against.
#![warn(missing_docs)]

mod error;
pub mod reference;

pub use error::KernelError;
