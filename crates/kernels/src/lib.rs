//! Lithe kernels. This crate holds the reference kernels: plain, obviously correct
//! implementations of every operator that faster kernels are tested against, and [`fast`]
//! kernels for the hot operators.
#![warn(missing_docs)]

mod error;
pub mod fast;
pub mod reference;

pub use error::KernelError;
