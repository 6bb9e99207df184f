//! Lithe AArch64 NEON kernels, plugged into the kernel families of `lithe-kernels` at run time.
//!
//! NEON (Advanced SIMD) is mandatory on AArch64, so every kernel here is available on every
//! AArch64 CPU. On other architectures the crate is empty: [`available_f32_gemm`] is empty and
//! [`detect_f32_gemm`] returns `None`.
//!
//! `LITHE_KERNELS=generic` ([`lithe_kernels::force_generic`]) makes [`detect_f32_gemm`] return
//! `None`, so callers fall back to the portable kernels of `lithe-kernels`.
#![warn(missing_docs)]

use lithe_kernels::gemm::F32GemmMicrokernel;

#[cfg(target_arch = "aarch64")]
mod f32_gemm_neon;

#[cfg(target_arch = "aarch64")]
pub use f32_gemm_neon::F32Gemm8x12Neon;

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
