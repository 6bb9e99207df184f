//! The f32 GEMM microkernel the training GEMMs (conv forward and backward, Gemm, MatMul,
//! FullyConnected) run on.
//!
//! The choice is `lithe-runtime`'s [`kernel_set`](lithe_runtime::kernel_set), the one place
//! that decides which kernel a CPU gets: AVX-512 or AVX2+FMA tiles on x86-64, NEON on AArch64,
//! the portable `f32_gemm_4x8__generic` elsewhere or when `LITHE_KERNELS=generic` is set before
//! the first use. Among the tiles of the chosen instruction set, a GEMM takes the one that pads
//! its row count least, as the runtime's prepared convs do.

use lithe_kernels::gemm::F32GemmMicrokernel;

/// The microkernel for a GEMM whose left operand `A` has `m` rows.
pub fn kernel_for_rows(m: usize) -> &'static dyn F32GemmMicrokernel {
    lithe_runtime::kernel_set().f32_gemm_for_rows(m)
}

/// The name of the default microkernel (for logs and reports).
pub fn kernel_name() -> &'static str {
    lithe_runtime::kernel_set().f32_gemm.name()
}
