//! Lithe AArch64 NEON kernels, plugged into the kernel families of `lithe-kernels` at run time.
//!
//! NEON (Advanced SIMD) is mandatory on AArch64, so every kernel here is available on every
//! AArch64 CPU, except the int8 `sdot` kernel, which needs the dotprod extension
//! (`is_aarch64_feature_detected!("dotprod")`). On other architectures the crate is empty:
//! [`available_f32_gemm`] / [`available_i8_gemm`] are empty and the `detect_*` functions return
//! `None`.
//!
//! `LITHE_KERNELS=generic` ([`lithe_kernels::force_generic`]) makes [`detect_f32_gemm`] return
//! `None`, so callers fall back to the portable kernels of `lithe-kernels`.
#![warn(missing_docs)]

use lithe_kernels::gemm::F32GemmMicrokernel;
use lithe_kernels::int8::{I8Gemm4x8c4Generic, I8GemmMicrokernel};

#[cfg(target_arch = "aarch64")]
mod f32_gemm_neon;
#[cfg(target_arch = "aarch64")]
mod i8_gemm_neon;

#[cfg(target_arch = "aarch64")]
pub use f32_gemm_neon::F32Gemm8x12Neon;
#[cfg(target_arch = "aarch64")]
pub use i8_gemm_neon::{I8Gemm8x8c1Neon, I8Gemm8x12c4NeonDot};

/// Every f32 GEMM microkernel of this crate the running CPU supports, best first (ignores
/// `LITHE_KERNELS`; for tests and benchmarks). Empty off AArch64.
pub fn available_f32_gemm() -> Vec<&'static dyn F32GemmMicrokernel> {
    #[cfg(target_arch = "aarch64")]
    {
        vec![F32Gemm8x12Neon::get() as &'static dyn F32GemmMicrokernel]
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        Vec::new()
    }
}

/// The best f32 GEMM microkernel for this CPU, or `None` when only the generic kernel of
/// `lithe-kernels` applies (not AArch64, or `LITHE_KERNELS=generic`).
pub fn detect_f32_gemm() -> Option<&'static dyn F32GemmMicrokernel> {
    if lithe_kernels::force_generic() {
        return None;
    }
    available_f32_gemm().into_iter().next()
}

/// Every int8 GEMM microkernel of this crate the running CPU supports, best first: the
/// `sdot` kernel when the dotprod extension is detected, then the `smlal` kernel (ignores
/// `LITHE_KERNELS`; for tests and benchmarks). Empty off AArch64.
pub fn available_i8_gemm() -> Vec<&'static dyn I8GemmMicrokernel> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static dyn I8GemmMicrokernel> = Vec::new();
    #[cfg(target_arch = "aarch64")]
    {
        if let Some(k) = I8Gemm8x12c4NeonDot::get() {
            v.push(k);
        }
        v.push(I8Gemm8x8c1Neon::get());
    }
    v
}

/// The best int8 GEMM microkernel for this CPU (`sdot` with dotprod, else `smlal`), or `None`
/// when only the generic kernel of `lithe-kernels` applies (not AArch64, or
/// `LITHE_KERNELS=generic`).
pub fn detect_i8_gemm() -> Option<&'static dyn I8GemmMicrokernel> {
    if lithe_kernels::force_generic() {
        return None;
    }
    available_i8_gemm().into_iter().next()
}

/// [`detect_i8_gemm`], falling back to the portable `qu8s8_gemm_4x8c4__generic`.
pub fn best_i8_gemm() -> &'static dyn I8GemmMicrokernel {
    static GENERIC: I8Gemm4x8c4Generic = I8Gemm4x8c4Generic;
    detect_i8_gemm().unwrap_or(&GENERIC)
}
