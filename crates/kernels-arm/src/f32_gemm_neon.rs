//! `f32_gemm_8x12__neon`: per K step, two 4-lane vectors of `A` (8 rows) and three of `B`
//! (12 columns); each accumulator takes `B` times one lane of `A` (`vfmaq_laneq_f32`), 24 q
//! register accumulators in all. Full tiles finish in registers; edge tiles spill the
//! accumulators to a stack tile and finish through the scalar epilogue.

use lithe_kernels::gemm::{
    F32GemmMicrokernel, FusedActivation, TileBias, TileEpilogue, TileOut, check_microkernel_args,
};
use std::arch::aarch64::*;

const MR: usize = 8;
const NR: usize = 12;

/// `f32_gemm_8x12__neon`: an 8x12 NEON register tile (NEON is mandatory on AArch64).
#[derive(Debug)]
pub struct F32Gemm8x12Neon {
    _private: (),
}

impl F32Gemm8x12Neon {
    /// The kernel (always available on AArch64).
    pub fn get() -> &'static Self {
        static K: F32Gemm8x12Neon = F32Gemm8x12Neon { _private: () };
        &K
    }
}

impl F32GemmMicrokernel for F32Gemm8x12Neon {
    fn name(&self) -> &'static str {
        "f32_gemm_8x12__neon"
    }

    fn mr(&self) -> usize {
        MR
    }

    fn nr(&self) -> usize {
        NR
    }

    fn run(&self, k: usize, a_panel: &[f32], b_panel: &[f32], c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
        check_microkernel_args(MR, NR, k, a_panel, b_panel, c, ep);
        // SAFETY: NEON is part of the aarch64 baseline; the panels hold `k * MR` and `k * NR`
        // values, the tile fits MR x NR and `ep` fits the tile (checked above).
        unsafe { kernel(k, a_panel.as_ptr(), b_panel.as_ptr(), c, ep) }
    }
}

/// `acc[i][v] += b[v] * a[i]` for the 4 rows held in the lanes of `$a` starting at row `$r`.
macro_rules! fma_rows {
    ($acc:ident, $b:ident, $a:ident, $r:expr) => {
        fma_rows!(@lane $acc, $b, $a, $r, 0);
        fma_rows!(@lane $acc, $b, $a, $r + 1, 1);
        fma_rows!(@lane $acc, $b, $a, $r + 2, 2);
        fma_rows!(@lane $acc, $b, $a, $r + 3, 3);
    };
    (@lane $acc:ident, $b:ident, $a:ident, $i:expr, $l:literal) => {
        $acc[$i][0] = vfmaq_laneq_f32::<$l>($acc[$i][0], $b[0], $a);
        $acc[$i][1] = vfmaq_laneq_f32::<$l>($acc[$i][1], $b[1], $a);
        $acc[$i][2] = vfmaq_laneq_f32::<$l>($acc[$i][2], $b[2], $a);
    };
}

/// # Safety
/// NEON must be available; `a` must hold `k * MR` values and `b` `k * NR`; `c` must be at most
/// `MR x NR` and `ep` must fit it.
#[target_feature(enable = "neon")]
unsafe fn kernel(k: usize, a: *const f32, b: *const f32, c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
    let mut acc = [[vdupq_n_f32(0.0); 3]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..k {
        // SAFETY: each of the `k` steps reads `MR` values of `a` and `NR` of `b`, inside the
        // panels.
        let (a0, a1, bv) = unsafe {
            let r = (vld1q_f32(a), vld1q_f32(a.add(4)), [vld1q_f32(b), vld1q_f32(b.add(4)), vld1q_f32(b.add(8))]);
            a = a.add(MR);
            b = b.add(NR);
            r
        };
        fma_rows!(acc, bv, a0, 0);
        fma_rows!(acc, bv, a1, 4);
    }
    let (rows, cols, ldc) = (c.rows(), c.cols(), c.ldc());
    if rows < MR || cols < NR {
        let mut spill = [[0f32; NR]; MR];
        for (dst, row) in spill.iter_mut().zip(&acc) {
            // SAFETY: `dst` holds 12 values, three 4-lane vectors.
            unsafe {
                vst1q_f32(dst.as_mut_ptr(), row[0]);
                vst1q_f32(dst.as_mut_ptr().add(4), row[1]);
                vst1q_f32(dst.as_mut_ptr().add(8), row[2]);
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
    let zero = vdupq_n_f32(0.0);
    for (i, row) in acc.iter().enumerate() {
        let row_bias = match bias {
            // SAFETY: a row bias holds at least `rows` values (TileEpilogue invariant).
            TileBias::Row(v) => Some(vdupq_n_f32(unsafe { *v.as_ptr().add(i) })),
            _ => None,
        };
        for (v, &x0) in row.iter().enumerate() {
            let mut x = x0;
            let off = i * ldc + 4 * v;
            // SAFETY: the tile is full (MR x NR), so the 4 columns `4 v ..` of row `i` are
            // valid for `C`, the residual and a column bias (TileOut / TileEpilogue invariants).
            unsafe {
                if ep.accumulate() {
                    x = vaddq_f32(x, vld1q_f32(cp.add(off)));
                }
                if let Some(rb) = row_bias {
                    x = vaddq_f32(x, rb);
                }
                if let TileBias::Col(bv) = bias {
                    x = vaddq_f32(x, vld1q_f32(bv.as_ptr().add(4 * v)));
                }
                if let Some(r) = residual {
                    x = vaddq_f32(x, vld1q_f32(r.add(off)));
                }
            }
            x = match act {
                FusedActivation::None => x,
                // `maxnm`/`minnm` ignore a NaN bound like `f32::max`/`f32::min` do.
                FusedActivation::Clamp { min, max } => vminnmq_f32(vmaxnmq_f32(x, vdupq_n_f32(min)), vdupq_n_f32(max)),
                FusedActivation::LeakyRelu { alpha } => {
                    vbslq_f32(vcltq_f32(x, zero), vmulq_f32(x, vdupq_n_f32(alpha)), x)
                }
                FusedActivation::HardSwish => {
                    let t = vfmaq_f32(vdupq_n_f32(0.5), x, vdupq_n_f32(1.0 / 6.0));
                    vmulq_f32(x, vminq_f32(vmaxq_f32(t, zero), vdupq_n_f32(1.0)))
                }
            };
            // SAFETY: as above, the 4 columns `4 v ..` of row `i` are in the tile.
            unsafe { vst1q_f32(cp.add(off), x) };
        }
    }
}
