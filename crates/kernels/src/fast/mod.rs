//! Fast kernels: direct implementations of hot operators, checked against [`crate::reference`].
//!
//! Each kernel has a portable build that is always compiled, plus variants compiled for wider
//! instruction sets and chosen once at run time from CPU detection. Setting the environment
//! variable `LITHE_KERNELS=generic` (read once per process, [`crate::force_generic`]) forces the
//! portable build.

pub mod activation;
pub mod binary;
pub mod depthwise;
pub mod layout;
pub mod pool;

pub use activation::FastActivation;
pub use binary::{BinaryLayout, BinaryOp, binary_layout, f32_binary};
pub use depthwise::{
    DwPads, DwParams, depthwise_conv2d_nchw, f32_dwconv_3x3s1, f32_dwconv_3x3s2, f32_dwconv_5x5s1, f32_dwconv_5x5s2,
    supports,
};
pub use layout::{f32_concat, f32_slice_box, f32_transpose};
pub use pool::{PoolParams, f32_avgpool2d, f32_global_avgpool, f32_maxpool2d, u8_maxpool2d};

/// The instruction set chosen at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// The portable build.
    Generic,
    /// A build with AVX-512F, AVX2 and FMA enabled.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// Detected once per process; `LITHE_KERNELS=generic` forces [`Isa::Generic`].
    pub(crate) fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            if crate::force_generic() {
                return Isa::Generic;
            }
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            Isa::Generic
        })
    }
}

/// Whether the portable builds may use `f32::mul_add`: only where FMA is part of the base
/// instruction set (aarch64's NEON), so it never becomes a libm call.
pub(crate) const NATIVE_FMA: bool = cfg!(target_arch = "aarch64");

/// `acc + a * b`, fused when `FMA` (the caller is compiled with FMA, or [`NATIVE_FMA`]).
#[inline(always)]
pub(crate) fn madd<const FMA: bool>(acc: f32, a: f32, b: f32) -> f32 {
    if FMA { a.mul_add(b, acc) } else { acc + a * b }
}
