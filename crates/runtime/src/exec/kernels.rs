//! The kernel table: one implementation per kernel family, picked once per process.

use lithe_kernels::gemm::{F32Gemm4x8Generic, F32GemmMicrokernel};
use std::sync::OnceLock;

/// The kernels this process runs with, one per family.
#[derive(Clone, Copy)]
pub struct KernelSet {
    /// The f32 GEMM microkernel (conv, fully connected).
    pub f32_gemm: &'static dyn F32GemmMicrokernel,
}

impl std::fmt::Debug for KernelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelSet").field("f32_gemm", &self.f32_gemm.name()).finish()
    }
}

static GENERIC_F32_GEMM: F32Gemm4x8Generic = F32Gemm4x8Generic;

/// The kernels chosen for this CPU, detected on first use. Setting the environment variable
/// `LITHE_KERNELS=generic` before the first use forces the portable kernels (for debugging
/// and for comparing paths).
pub fn kernel_set() -> KernelSet {
    static SET: OnceLock<KernelSet> = OnceLock::new();
    *SET.get_or_init(|| {
        let forced_generic = lithe_kernels::force_generic();
        let f32_gemm = if forced_generic { None } else { native_f32_gemm() }.unwrap_or(&GENERIC_F32_GEMM);
        let set = KernelSet { f32_gemm };
        tracing::debug!(?set, forced_generic, "kernels chosen");
        set
    })
}

/// The best SIMD GEMM microkernel for this CPU, if any: the x86 kernels on x86-64, the NEON
/// kernels on AArch64, `None` elsewhere.
fn native_f32_gemm() -> Option<&'static dyn F32GemmMicrokernel> {
    #[cfg(target_arch = "x86_64")]
    {
        lithe_kernels_x86::detect_f32_gemm()
    }
    #[cfg(target_arch = "aarch64")]
    {
        lithe_kernels_arm::detect_f32_gemm()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}
