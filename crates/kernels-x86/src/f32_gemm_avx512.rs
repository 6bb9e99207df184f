//! `f32_gemm_{8,12,14}x32__avx512f`: `MR` rows of `A` broadcast against two 16-lane vectors of
//! `B` per K step (`2 * MR` zmm accumulators). Edge tiles use masked loads and stores, so the
//! whole epilogue runs in registers for every tile.

use lithe_kernels::gemm::{
    F32GemmMicrokernel, FusedActivation, TileBias, TileEpilogue, TileOut, check_microkernel_args,
};
use std::arch::x86_64::*;

const NR: usize = 32;

macro_rules! avx512_kernel {
    ($ty:ident, $mr:literal, $name:literal) => {
        #[doc = concat!("`", $name, "`: a ", stringify!($mr), "x32 AVX-512F register tile.")]
        #[derive(Debug)]
        pub struct $ty {
            _detected: (),
        }

        impl $ty {
            /// The kernel, when the CPU supports AVX-512F.
            pub fn get() -> Option<&'static Self> {
                static K: $ty = $ty { _detected: () };
                is_x86_feature_detected!("avx512f").then_some(&K)
            }
        }

        impl F32GemmMicrokernel for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn mr(&self) -> usize {
                $mr
            }

            fn nr(&self) -> usize {
                NR
            }

            fn run(&self, k: usize, a_panel: &[f32], b_panel: &[f32], c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
                check_microkernel_args($mr, NR, k, a_panel, b_panel, c, ep);
                // SAFETY: a value of this type exists only when AVX-512F was detected; the
                // panels hold `k * MR` and `k * NR` values, the tile fits MR x NR and `ep` fits the tile
                // (checked).
                unsafe { kernel::<$mr>(k, a_panel.as_ptr(), b_panel.as_ptr(), c, ep) }
            }
        }
    };
}

avx512_kernel!(F32Gemm8x32Avx512f, 8, "f32_gemm_8x32__avx512f");
avx512_kernel!(F32Gemm12x32Avx512f, 12, "f32_gemm_12x32__avx512f");
avx512_kernel!(F32Gemm14x32Avx512f, 14, "f32_gemm_14x32__avx512f");

/// Lane mask for `n` of 16 lanes (`n` clamped to 0..=16).
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { 0xFFFF } else { ((1u32 << n) - 1) as __mmask16 }
}

/// Depth steps ahead that the `B` panel is prefetched.
const PF: usize = 24;

/// # Safety
/// AVX-512F must be available; `a` must hold `k * MR` values and `b` `k * NR`; `c` must be at
/// most `MR x NR`.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const MR: usize>(k: usize, a: *const f32, b: *const f32, c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        // SAFETY: each of the `k` steps reads `MR` values of `a` and `NR` of `b`, inside the
        // panels; the prefetch is a hint and never faults.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(a.wrapping_add(8 * MR) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(PF * NR) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(PF * NR + 16) as *const i8);
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(i));
                row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    let (rows, cols, ldc) = (c.rows(), c.cols(), c.ldc());
    let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
    let cp = c.as_mut_ptr();
    let bias = ep.bias();
    let residual = ep.residual().map(<[f32]>::as_ptr);
    let act = ep.activation();
    let zero = _mm512_setzero_ps();
    for (i, row) in acc.iter().enumerate().take(rows) {
        let row_bias = match bias {
            // SAFETY: a row bias holds at least `rows` values (TileEpilogue invariant).
            TileBias::Row(v) => Some(_mm512_set1_ps(unsafe { *v.as_ptr().add(i) })),
            _ => None,
        };
        for (v, (&x0, &mask)) in row.iter().zip(&masks).enumerate() {
            if mask == 0 {
                continue;
            }
            let mut x = x0;
            let off = i * ldc + 16 * v;
            // SAFETY: masked lanes are the tile's columns `16 v .. cols` of row `i`, valid for
            // `C` and the residual (TileOut / TileEpilogue invariants) and for a column bias
            // (at least `cols` values); masked-off lanes are not accessed.
            unsafe {
                if ep.accumulate() {
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, cp.add(off)));
                }
                if let Some(rb) = row_bias {
                    x = _mm512_add_ps(x, rb);
                }
                if let TileBias::Col(bv) = bias {
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, bv.as_ptr().add(16 * v)));
                }
                if let Some(r) = residual {
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, r.add(off)));
                }
            }
            x = match act {
                FusedActivation::None => x,
                FusedActivation::Clamp { min, max } => {
                    _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(min)), _mm512_set1_ps(max))
                }
                FusedActivation::LeakyRelu { alpha } => {
                    let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, zero);
                    _mm512_mask_mul_ps(x, neg, x, _mm512_set1_ps(alpha))
                }
                FusedActivation::HardSwish => {
                    let t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.0 / 6.0), _mm512_set1_ps(0.5));
                    let t = _mm512_min_ps(_mm512_max_ps(t, zero), _mm512_set1_ps(1.0));
                    _mm512_mul_ps(x, t)
                }
            };
            // SAFETY: as above, only the tile's lanes of row `i` are written.
            unsafe { _mm512_mask_storeu_ps(cp.add(off), mask, x) };
        }
    }
}
