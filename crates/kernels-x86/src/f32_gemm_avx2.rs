//! `f32_gemm_6x16__avx2_fma`: 6 rows of `A` broadcast against two 8-lane vectors of `B` per
//! K step (12 ymm accumulators). Full tiles finish in registers; edge tiles spill the
//! accumulators and finish through the scalar epilogue.

use lithe_kernels::gemm::{
    F32GemmMicrokernel, FusedActivation, TileBias, TileEpilogue, TileOut, check_microkernel_args,
};
use std::arch::x86_64::*;

const MR: usize = 6;
const NR: usize = 16;

/// `f32_gemm_6x16__avx2_fma`: a 6x16 AVX2+FMA register tile.
#[derive(Debug)]
pub struct F32Gemm6x16Avx2Fma {
    _detected: (),
}

impl F32Gemm6x16Avx2Fma {
    /// The kernel, when the CPU supports AVX2 and FMA.
    pub fn get() -> Option<&'static Self> {
        static K: F32Gemm6x16Avx2Fma = F32Gemm6x16Avx2Fma { _detected: () };
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(&K)
    }
}

impl F32GemmMicrokernel for F32Gemm6x16Avx2Fma {
    fn name(&self) -> &'static str {
        "f32_gemm_6x16__avx2_fma"
    }

    fn mr(&self) -> usize {
        MR
    }

    fn nr(&self) -> usize {
        NR
    }

    fn run(&self, k: usize, a_panel: &[f32], b_panel: &[f32], c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
        check_microkernel_args(MR, NR, k, a_panel, b_panel, c, ep);
        // SAFETY: a value of this type exists only when AVX2 and FMA were detected; the panels
        // hold `k * MR` and `k * NR` values, the tile fits MR x NR and `ep` fits the tile (checked).
        unsafe { kernel(k, a_panel.as_ptr(), b_panel.as_ptr(), c, ep) }
    }
}

/// # Safety
/// AVX2 and FMA must be available; `a` must hold `k * MR` values and `b` `k * NR`; `c` must
/// be at most `MR x NR`.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel(k: usize, a: *const f32, b: *const f32, c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        // SAFETY: each of the `k` steps reads `MR` values of `a` and `NR` of `b`, inside the
        // panels; the prefetch is a hint and never faults.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(a.wrapping_add(8 * MR) as *const i8);
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_broadcast_ss(&*a.add(i));
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
    }
    let (rows, cols, ldc) = (c.rows(), c.cols(), c.ldc());
    if rows < MR || cols < NR {
        let mut spill = [[0f32; NR]; MR];
        for (dst, row) in spill.iter_mut().zip(&acc) {
            // SAFETY: `dst` holds 16 values, two 8-lane vectors.
            unsafe {
                _mm256_storeu_ps(dst.as_mut_ptr(), row[0]);
                _mm256_storeu_ps(dst.as_mut_ptr().add(8), row[1]);
            }
        }
        for (i, row) in spill.iter().enumerate().take(rows) {
            for (j, &v) in row.iter().enumerate().take(cols) {
                ep.store(c, i, j, v);
            }
        }
        return;
    }
    let cp = c.as_mut_ptr();
    let bias = ep.bias();
    let residual = ep.residual().map(<[f32]>::as_ptr);
    let act = ep.activation();
    let zero = _mm256_setzero_ps();
    for (i, row) in acc.iter().enumerate() {
        let row_bias = match bias {
            // SAFETY: a row bias holds at least `rows` values (TileEpilogue invariant).
            TileBias::Row(v) => Some(_mm256_set1_ps(unsafe { *v.as_ptr().add(i) })),
            _ => None,
        };
        for (v, &x0) in row.iter().enumerate() {
            let mut x = x0;
            let off = i * ldc + 8 * v;
            // SAFETY: the tile is full (MR x NR), so the 8 columns `8 v ..` of row `i` are
            // valid for `C`, the residual and a column bias (TileOut / TileEpilogue invariants).
            unsafe {
                if ep.accumulate() {
                    x = _mm256_add_ps(x, _mm256_loadu_ps(cp.add(off)));
                }
                if let Some(rb) = row_bias {
                    x = _mm256_add_ps(x, rb);
                }
                if let TileBias::Col(bv) = bias {
                    x = _mm256_add_ps(x, _mm256_loadu_ps(bv.as_ptr().add(8 * v)));
                }
                if let Some(r) = residual {
                    x = _mm256_add_ps(x, _mm256_loadu_ps(r.add(off)));
                }
            }
            x = match act {
                FusedActivation::None => x,
                FusedActivation::Clamp { min, max } => {
                    _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(min)), _mm256_set1_ps(max))
                }
                FusedActivation::LeakyRelu { alpha } => {
                    let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(x, zero);
                    _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(alpha)), neg)
                }
                FusedActivation::HardSwish => {
                    let t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.0 / 6.0), _mm256_set1_ps(0.5));
                    let t = _mm256_min_ps(_mm256_max_ps(t, zero), _mm256_set1_ps(1.0));
                    _mm256_mul_ps(x, t)
                }
            };
            // SAFETY: as above, the 8 columns `8 v ..` of row `i` are in the tile.
            unsafe { _mm256_storeu_ps(cp.add(off), x) };
        }
    }
}
