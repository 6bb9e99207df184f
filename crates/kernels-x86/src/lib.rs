//! Lithe x86-64 SIMD kernels, plugged into the kernel families of `lithe-kernels` at run time.
//!
//! Kernels are `#[target_feature]` functions chosen after `is_x86_feature_detected!`; a kernel
//! value can only be obtained on a CPU that supports it. On other architectures the crate is
//! empty and [`detect_f32_gemm`] / [`detect_i8_gemm`] return `None`.
//!
//! The environment variable `LITHE_KERNELS` forces a path for debugging: `generic` disables
//! every kernel here (callers fall back to the portable kernels of `lithe-kernels`), `avx2`
//! caps the choice at AVX2+FMA (for int8: the AVX2 kernel, no VNNI).
#![warn(missing_docs)]

use lithe_kernels::gemm::F32GemmMicrokernel;
use lithe_kernels::int8::{I8Gemm4x8c4Generic, I8GemmMicrokernel};

#[cfg(target_arch = "x86_64")]
mod f32_gemm_avx2;
#[cfg(target_arch = "x86_64")]
mod f32_gemm_avx512;
#[cfg(target_arch = "x86_64")]
mod i8_gemm_avx2;
#[cfg(target_arch = "x86_64")]
mod i8_gemm_avx512vnni;

#[cfg(target_arch = "x86_64")]
pub use f32_gemm_avx2::F32Gemm6x16Avx2Fma;
#[cfg(target_arch = "x86_64")]
pub use f32_gemm_avx512::{F32Gemm8x32Avx512f, F32Gemm12x32Avx512f, F32Gemm14x32Avx512f};
#[cfg(target_arch = "x86_64")]
pub use i8_gemm_avx2::I8Gemm4x16c2Avx2;
#[cfg(target_arch = "x86_64")]
pub use i8_gemm_avx512vnni::{I8Gemm8x32c4Avx512Vnni, I8Gemm12x32c4Avx512Vnni};

/// The environment variable that forces a kernel path (`generic` or `avx2`).
pub const KERNELS_ENV: &str = "LITHE_KERNELS";

/// The cap `LITHE_KERNELS` puts on the instruction sets used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cap {
    Generic,
    Avx2,
    Any,
}

fn env_cap() -> Cap {
    match std::env::var(KERNELS_ENV).as_deref() {
        Ok("generic") => Cap::Generic,
        Ok("avx2") => Cap::Avx2,
        _ => Cap::Any,
    }
}

/// Every f32 GEMM microkernel of this crate the running CPU supports, best first (ignores
/// `LITHE_KERNELS`; for tests and benchmarks).
pub fn available_f32_gemm() -> Vec<&'static dyn F32GemmMicrokernel> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static dyn F32GemmMicrokernel> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(k) = F32Gemm8x32Avx512f::get() {
            v.push(k);
        }
        if let Some(k) = F32Gemm12x32Avx512f::get() {
            v.push(k);
        }
        if let Some(k) = F32Gemm14x32Avx512f::get() {
            v.push(k);
        }
        if let Some(k) = F32Gemm6x16Avx2Fma::get() {
            v.push(k);
        }
    }
    v
}

/// The best f32 GEMM microkernel for this CPU, or `None` when only the generic kernel of
/// `lithe-kernels` applies (no AVX2+FMA, not x86-64, or `LITHE_KERNELS=generic`).
pub fn detect_f32_gemm() -> Option<&'static dyn F32GemmMicrokernel> {
    let cap = env_cap();
    if cap == Cap::Generic {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if cap == Cap::Any
            && let Some(k) = F32Gemm8x32Avx512f::get()
        {
            return Some(k);
        }
        if let Some(k) = F32Gemm6x16Avx2Fma::get() {
            return Some(k);
        }
    }
    None
}

/// Every int8 GEMM microkernel of this crate the running CPU supports, best first (ignores
/// `LITHE_KERNELS`; for tests and benchmarks).
pub fn available_i8_gemm() -> Vec<&'static dyn I8GemmMicrokernel> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static dyn I8GemmMicrokernel> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(k) = I8Gemm8x32c4Avx512Vnni::get() {
            v.push(k);
        }
        if let Some(k) = I8Gemm12x32c4Avx512Vnni::get() {
            v.push(k);
        }
        if let Some(k) = I8Gemm4x16c2Avx2::get() {
            v.push(k);
        }
    }
    v
}

/// The best int8 GEMM microkernel for this CPU (AVX-512 VNNI, else AVX2), or `None` when only
/// the generic kernel of `lithe-kernels` applies (no AVX2, not x86-64, or
/// `LITHE_KERNELS=generic`; `LITHE_KERNELS=avx2` caps at the AVX2 kernel).
pub fn detect_i8_gemm() -> Option<&'static dyn I8GemmMicrokernel> {
    let cap = env_cap();
    if cap == Cap::Generic {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if cap == Cap::Any
            && let Some(k) = I8Gemm8x32c4Avx512Vnni::get()
        {
            return Some(k);
        }
        if let Some(k) = I8Gemm4x16c2Avx2::get() {
            return Some(k);
        }
    }
    None
}

/// [`detect_i8_gemm`], falling back to the portable `qu8s8_gemm_4x8c4__generic`: the kernel to
/// prepare [`lithe_kernels::int8::QLinearConv2d`] and [`lithe_kernels::int8::PackedI8Weights`] with.
pub fn best_i8_gemm() -> &'static dyn I8GemmMicrokernel {
    static GENERIC: I8Gemm4x8c4Generic = I8Gemm4x8c4Generic;
    detect_i8_gemm().unwrap_or(&GENERIC)
}
