//! The kernel table: one implementation per kernel family, picked once per process.

use lithe_kernels::gemm::{F32Gemm4x8Generic, F32GemmMicrokernel};
use lithe_kernels::int8::{I8Gemm4x8c4Generic, I8GemmMicrokernel};
use std::sync::OnceLock;

/// The kernels this process runs with, one per family.
#[derive(Clone, Copy)]
pub struct KernelSet {
    /// The f32 GEMM microkernel (conv, fully connected).
    pub f32_gemm: &'static dyn F32GemmMicrokernel,
    /// The same family's other register tiles (same instruction set, other `MR`), which
    /// [`KernelSet::f32_gemm_for_rows`] may pick for a GEMM with few rows.
    pub f32_gemm_tiles: &'static [&'static dyn F32GemmMicrokernel],
    /// The int8 (u8 x s8 -> i32) GEMM microkernel (QConv).
    pub i8_gemm: &'static dyn I8GemmMicrokernel,
}

impl KernelSet {
    /// The microkernel for a GEMM with `m` rows (conv output channels per group, packed as
    /// `A`): the tile that pads `m` to the fewest rows, the default kernel on ties.
    pub fn f32_gemm_for_rows(&self, m: usize) -> &'static dyn F32GemmMicrokernel {
        let padded = |k: &dyn F32GemmMicrokernel| m.div_ceil(k.mr().max(1)) * k.mr();
        let mut best = self.f32_gemm;
        for &k in self.f32_gemm_tiles {
            if k.nr() == best.nr() && padded(k) < padded(best) {
                best = k;
            }
        }
        best
    }
}

impl std::fmt::Debug for KernelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tiles: Vec<&str> = self.f32_gemm_tiles.iter().map(|k| k.name()).collect();
        f.debug_struct("KernelSet")
            .field("f32_gemm", &self.f32_gemm.name())
            .field("f32_gemm_tiles", &tiles)
            .field("i8_gemm", &self.i8_gemm.name())
            .finish()
    }
}

static GENERIC_F32_GEMM: F32Gemm4x8Generic = F32Gemm4x8Generic;
static GENERIC_I8_GEMM: I8Gemm4x8c4Generic = I8Gemm4x8c4Generic;

/// The kernels chosen for this CPU, detected on first use. Setting the environment variable
/// `LITHE_KERNELS=generic` before the first use forces the portable kernels (for debugging
/// and for comparing paths).
pub fn kernel_set() -> KernelSet {
    static SET: OnceLock<KernelSet> = OnceLock::new();
    *SET.get_or_init(|| {
        let forced_generic = lithe_kernels::force_generic();
        let f32_gemm = if forced_generic { None } else { native_f32_gemm() }.unwrap_or(&GENERIC_F32_GEMM);
        let f32_gemm_tiles: &'static [&'static dyn F32GemmMicrokernel] =
            if forced_generic { &[] } else { Vec::leak(native_f32_gemm_tiles(f32_gemm)) };
        let i8_gemm = if forced_generic { None } else { native_i8_gemm() }.unwrap_or(&GENERIC_I8_GEMM);
        let set = KernelSet { f32_gemm, f32_gemm_tiles, i8_gemm };
        tracing::debug!(?set, forced_generic, "kernels chosen");
        set
    })
}

/// The other register tiles of `chosen`'s instruction set: the x86 kernels whose name has the
/// same `__isa` suffix (leaked once per process by the caller).
fn native_f32_gemm_tiles(chosen: &'static dyn F32GemmMicrokernel) -> Vec<&'static dyn F32GemmMicrokernel> {
    let isa = |k: &dyn F32GemmMicrokernel| k.name().rsplit("__").next().unwrap_or("").to_string();
    #[cfg(target_arch = "x86_64")]
    let all = lithe_kernels_x86::available_f32_gemm();
    #[cfg(not(target_arch = "x86_64"))]
    let all: Vec<&'static dyn F32GemmMicrokernel> = Vec::new();
    all.into_iter().filter(|k| isa(*k) == isa(chosen) && k.name() != chosen.name()).collect()
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

/// The best SIMD int8 GEMM microkernel for this CPU, if any.
fn native_i8_gemm() -> Option<&'static dyn I8GemmMicrokernel> {
    #[cfg(target_arch = "x86_64")]
    {
        lithe_kernels_x86::detect_i8_gemm()
    }
    #[cfg(target_arch = "aarch64")]
    {
        lithe_kernels_arm::detect_i8_gemm()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}
