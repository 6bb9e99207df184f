//! Packed f32 GEMM in the BLIS style: `C = epilogue(A · B)` with `A` `m x k`, `B` `k x n` and
//! `C` `m x n` (row stride `ldc`).
//!
//! The pieces:
//! - [`F32GemmMicrokernel`]: one trait for the family. A microkernel multiplies an `MR x kc`
//!   packed panel of `A` by a `kc x NR` packed panel of `B` and writes (or accumulates into) one
//!   tile of `C`, applying the fused [`TileEpilogue`] while the tile is still in registers.
//!   [`F32Gemm4x8Generic`] (`f32_gemm_4x8__generic`) is the portable kernel that is always
//!   present; SIMD kernels live in `lithe-kernels-x86`.
//! - Packing ([`PackedA`], [`PackedB`]): operands rearranged into zero-padded, 64-byte aligned
//!   micro-panels. Constant operands (conv weights as `A`, FullyConnected weights as `B`) can be
//!   packed once at load time and passed as [`GemmInput::Packed`].
//! - [`sgemm`]: the driver (cache blocking, packing, edge tiles, epilogue, threads).

pub mod conformance;
mod driver;
mod epilogue;
mod microkernel;
mod pack;

pub(crate) use crate::short_rows::copy_short;
pub use driver::{Blocking, GemmInput, sgemm};
pub use epilogue::{FusedActivation, GemmEpilogue, PerAxis, Residual, TileBias, TileEpilogue, TileOut};
pub use microkernel::{F32Gemm4x8Generic, F32GemmMicrokernel, check_microkernel_args};
pub use pack::{MatRef, PackedA, PackedB, PanelSource};
