//! `qu8s8_gemm_{8,12}x32c4__avx512vnni`: per group of 4 depth values, two 64-byte vectors of
//! packed activations (16 columns x 4 u8 each) are multiplied by each row's 4 weights
//! broadcast as one dword with `vpdpbusd` (u8 x s8, four products summed into each i32 lane,
//! no saturation), `2 * MR` zmm accumulators. The epilogue (compensation, scale, bias, clamp,
//! requantize with round-half-even) runs in registers; edge tiles use masked stores.

use lithe_kernels::int8::{I8GemmMicrokernel, I8TileEpilogue, I8TileOut, OutputKind, check_i8_microkernel_args};
use std::arch::x86_64::*;

const NR: usize = 32;
const KR: usize = 4;

macro_rules! vnni_kernel {
    ($ty:ident, $mr:literal, $name:literal) => {
        #[doc = concat!("`", $name, "`: a ", stringify!($mr), "x32 AVX-512 VNNI register tile.")]
        #[derive(Debug)]
        pub struct $ty {
            _detected: (),
        }

        impl $ty {
            /// The kernel, when the CPU supports AVX-512F and AVX-512 VNNI.
            pub fn get() -> Option<&'static Self> {
                static K: $ty = $ty { _detected: () };
                (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni")).then_some(&K)
            }
        }

        impl I8GemmMicrokernel for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn mr(&self) -> usize {
                $mr
            }

            fn nr(&self) -> usize {
                NR
            }

            fn kr(&self) -> usize {
                KR
            }

            fn run(&self, kg: usize, a: &[i8], b: &[u8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
                check_i8_microkernel_args($mr, NR, KR, kg, a, b, c, ep);
                // SAFETY: a value of this type exists only when AVX-512F and VNNI were detected;
                // the panels hold `kg * MR * 4` and `kg * NR * 4` bytes, the tile fits MR x NR
                // and `ep` fits the tile (checked).
                unsafe {
                    if c.cols() <= 16 {
                        kernel::<$mr, 1>(kg, a.as_ptr(), b.as_ptr(), c, ep)
                    } else {
                        kernel::<$mr, 2>(kg, a.as_ptr(), b.as_ptr(), c, ep)
                    }
                }
            }
        }
    };
}

vnni_kernel!(I8Gemm8x32c4Avx512Vnni, 8, "qu8s8_gemm_8x32c4__avx512vnni");
vnni_kernel!(I8Gemm12x32c4Avx512Vnni, 12, "qu8s8_gemm_12x32c4__avx512vnni");

/// Lane mask for `n` of 16 lanes (`n` clamped to 0..=16).
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { 0xFFFF } else { ((1u32 << n) - 1) as __mmask16 }
}

/// The tile over `NV` of the panel's two 16-column halves: `NV = 1` serves tail tiles of at
/// most 16 columns, reading only the first half of each 128-byte group of `b`.
///
/// # Safety
/// AVX-512F and AVX-512 VNNI must be available; `a` must hold `kg * MR * 4` bytes and `b`
/// `kg * NR * 4`; `c` must be at most `MR x 16 NV` and `ep` must fit it.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn kernel<const MR: usize, const NV: usize>(
    kg: usize,
    a: *const i8,
    b: *const u8,
    c: &mut I8TileOut<'_>,
    ep: &I8TileEpilogue<'_>,
) {
    let mut acc = [[_mm512_setzero_si512(); NV]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..kg {
        // SAFETY: each of the `kg` steps reads `MR * 4` bytes of `a` and at most `NR * 4` of
        // `b`, inside the panels; the prefetch is a hint and never faults.
        unsafe {
            let mut bv = [_mm512_setzero_si512(); NV];
            for (h, bh) in bv.iter_mut().enumerate() {
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(8 * NR * KR + 64 * h) as *const i8);
                *bh = _mm512_loadu_si512(b.add(64 * h) as *const __m512i);
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_epi32((a.add(KR * i) as *const i32).read_unaligned());
                for (x, &bh) in row.iter_mut().zip(&bv) {
                    *x = _mm512_dpbusd_epi32(*x, bh, ai);
                }
            }
            a = a.add(KR * MR);
            b = b.add(KR * NR);
        }
    }
    let (rows, cols, ldc) = (c.rows(), c.cols(), c.ldc());
    let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
    let cp = c.as_mut_ptr();
    let (comp, scale, bias) = (ep.comp(), ep.scale(), ep.bias());
    let kind = ep.kind();
    let clamp = ep.clamp().map(|(lo, hi)| (_mm512_set1_ps(lo), _mm512_set1_ps(hi)));
    let rq = kind
        .requant()
        .map(|r| (_mm512_set1_ps(r.inv_scale), _mm512_set1_ps(r.lo), _mm512_set1_ps(r.hi), _mm512_set1_epi32(r.zp)));
    // With a residual: `(acc·scale + bias) + r`, clamped with the bound as `maxps`/`minps`'s
    // first operand (`lo > y ? lo : y`: NaN and -0.0 kept, as `dequant_residual`).
    let residual = ep.residual().map(|(r, ld)| (r.as_ptr(), ld));
    for (i, row) in acc.iter().enumerate().take(rows) {
        let (ci, si, bi) = (_mm512_set1_epi32(comp[i]), _mm512_set1_ps(scale[i]), _mm512_set1_ps(bias[i]));
        for (v, (&x, &mask)) in row.iter().zip(&masks).enumerate() {
            if mask == 0 {
                continue;
            }
            let accv = _mm512_sub_epi32(x, ci);
            let off = i * ldc + 16 * v;
            let y = || {
                let y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(accv), si), bi);
                match (residual, clamp) {
                    (None, Some((lo, hi))) => _mm512_min_ps(_mm512_max_ps(y, lo), hi),
                    (None, None) => y,
                    (Some((rp, ld)), clamp) => {
                        // SAFETY: `ep.fits(c)` guarantees the residual holds row `i`'s `cols`
                        // values from `i * ld`; masked-off lanes are not read.
                        let r = unsafe { _mm512_maskz_loadu_ps(mask, rp.add(i * ld + 16 * v)) };
                        let y = _mm512_add_ps(y, r);
                        match clamp {
                            Some((lo, hi)) => _mm512_min_ps(hi, _mm512_max_ps(lo, y)),
                            None => y,
                        }
                    }
                }
            };
            // SAFETY: masked lanes are the tile's columns `16 v .. cols` of row `i`, valid for
            // writes of the kind's element type (I8TileOut invariant, `ep.fits`); masked-off
            // lanes are not accessed.
            unsafe {
                match kind {
                    OutputKind::I32 => _mm512_mask_storeu_epi32((cp as *mut i32).add(off) as *mut _, mask, accv),
                    OutputKind::F32 => _mm512_mask_storeu_ps((cp as *mut f32).add(off) as *mut _, mask, y()),
                    OutputKind::U8 { .. } | OutputKind::S8 { .. } => {
                        let (ys, lo, hi, zp) = rq.expect("quantized kind");
                        let t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y(), ys), lo), hi);
                        let q = _mm512_add_epi32(
                            _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t),
                            zp,
                        );
                        _mm512_mask_cvtepi32_storeu_epi8(cp.add(off) as *mut i8, mask, q);
                    }
                }
            }
        }
    }
}
