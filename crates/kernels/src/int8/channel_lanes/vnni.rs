//! `qu8s8_conv_11x32c4_chlanes__avx512vnni`: a register tile of up to 11 positions x 32 output
//! channels; per depth group of 4, two 64-byte weight vectors (16 channels x 4 s8 each) and, per
//! position, its 4 u8 activations broadcast as one dword (`vpbroadcastd`) into `vpdpbusd` (u8
//! operand = activations, no saturation). The raw sums go to the panel's scratch, 16x16 blocks
//! of which are transposed in registers so that the epilogue (the position-lane kernel's
//! operations, in its order) runs per channel on 16 contiguous positions.

use super::{KR, MR_MAX, NC, NP, PanelJob, tile_sizes};
use crate::int8::epilogue::OutputKind;
use std::arch::x86_64::*;

/// Whether the running CPU has AVX-512F and AVX-512 VNNI, detected once.
pub(super) fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni"))
}

/// Lane mask for `n` of 16 lanes (`n` clamped to 0..=16).
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { 0xFFFF } else { ((1u32 << n) - 1) as __mmask16 }
}

/// One channel panel: channels `c0 .. c0 + channels` (at most [`NC`]) of `job`'s output from the
/// packed weight panel `w`, with `acc` as the `positions x NC` sum scratch.
///
/// # Safety
/// AVX-512F and VNNI must be available; `w` must hold `job.kg` groups of `NC · KR` bytes,
/// `job.a` `ceil(n / NP)` panels of `job.kg · NP · KR` bytes, `acc` at least `n` rounded up to
/// 16 rows of `NC` values; the output (and residual) must hold rows `c0 .. c0 + channels` of
/// `n` elements at stride `job.ldc` of `job.kind`'s element type, exclusively for this caller;
/// `job.comp`, `job.scale` and `job.bias` must have an entry per channel.
#[target_feature(enable = "avx512f,avx512vnni")]
pub(super) unsafe fn panel(job: &PanelJob<'_>, w: &[i8], c0: usize, channels: usize, acc: &mut [i32]) {
    let (kg, n) = (job.kg, job.n);
    let a_panel = kg * NP * KR;
    for q in 0..n.div_ceil(NP) {
        let cols = NP.min(n - q * NP);
        let mut j0 = 0;
        for mr in tile_sizes(cols) {
            // SAFETY: the tile reads positions `j0 .. j0 + mr` (inside the panel's `cols`) of
            // activation panel `q` for every group, and writes rows `q·NP + j0 ..` (below `n`)
            // of `acc`; see this function's contract.
            unsafe {
                let a = job.a.as_ptr().add(q * a_panel + j0 * KR);
                let s = acc.as_mut_ptr().add((q * NP + j0) * NC);
                tile_dispatch(mr, channels > 16, kg, a, w.as_ptr(), s);
            }
            j0 += mr;
        }
    }
    // SAFETY: forwarded contract.
    unsafe { epilogue(job, c0, channels, acc) };
}

/// Run the `mr x (16 · nv)` tile (`nv` = 2 when `wide`).
///
/// # Safety
/// As [`tile`].
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_dispatch(mr: usize, wide: bool, kg: usize, a: *const u8, w: *const i8, s: *mut i32) {
    macro_rules! by_mr {
        ($nv:literal) => {
            // SAFETY: forwarded contract.
            unsafe {
                match mr {
                    1 => tile::<1, $nv>(kg, a, w, s),
                    2 => tile::<2, $nv>(kg, a, w, s),
                    3 => tile::<3, $nv>(kg, a, w, s),
                    4 => tile::<4, $nv>(kg, a, w, s),
                    5 => tile::<5, $nv>(kg, a, w, s),
                    6 => tile::<6, $nv>(kg, a, w, s),
                    7 => tile::<7, $nv>(kg, a, w, s),
                    8 => tile::<8, $nv>(kg, a, w, s),
                    9 => tile::<9, $nv>(kg, a, w, s),
                    10 => tile::<10, $nv>(kg, a, w, s),
                    _ => tile::<MR_MAX, $nv>(kg, a, w, s),
                }
            }
        };
    }
    if wide { by_mr!(2) } else { by_mr!(1) }
}

/// `s[i][16v + c] = Σ_g Σ_r a[g][i][r] · w[g][16v + c][r]` for `i < MR`, `v < NV`.
///
/// # Safety
/// AVX-512F and VNNI must be available; `a` must be readable for `kg` groups at stride
/// `NP · KR` of `MR · KR` bytes, `w` for `kg` groups of `NC · KR` bytes, `s` writable for `MR`
/// rows of `NC` values.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile<const MR: usize, const NV: usize>(kg: usize, a: *const u8, w: *const i8, s: *mut i32) {
    let mut acc = [[_mm512_setzero_si512(); NV]; MR];
    let (mut a, mut w) = (a, w);
    for _ in 0..kg {
        // SAFETY: each of the `kg` steps reads `MR · 4` bytes of `a` and `NV · 64` of `w`, inside
        // their panels; the prefetch is a hint and never faults.
        unsafe {
            let mut wv = [_mm512_setzero_si512(); NV];
            for (v, wr) in wv.iter_mut().enumerate() {
                _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(8 * NC * KR + 64 * v));
                *wr = _mm512_loadu_si512(w.add(64 * v) as *const __m512i);
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let xi = _mm512_set1_epi32((a.add(KR * i) as *const i32).read_unaligned());
                for (x, &wr) in row.iter_mut().zip(&wv) {
                    *x = _mm512_dpbusd_epi32(*x, xi, wr);
                }
            }
            a = a.add(NP * KR);
            w = w.add(NC * KR);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            // SAFETY: row `i < MR` of `s`, lanes `16 v .. 16 v + 16 <= NC`.
            unsafe { _mm512_storeu_si512(s.add(i * NC + 16 * v) as *mut __m512i, x) };
        }
    }
}

/// Transpose the 16x16 i32 matrix whose rows are `r` in place.
#[target_feature(enable = "avx512f")]
fn transpose16(r: &mut [__m512i; 16]) {
    let mut t = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // Now r[4i + c], 128-bit lane L, holds rows 4i .. 4i + 4 of column 4L + c.
    for i in 0..4 {
        r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for c in 0..4 {
        let x0 = _mm512_shuffle_i32x4::<0x88>(r[c], r[4 + c]);
        let x1 = _mm512_shuffle_i32x4::<0xDD>(r[c], r[4 + c]);
        let y0 = _mm512_shuffle_i32x4::<0x88>(r[8 + c], r[12 + c]);
        let y1 = _mm512_shuffle_i32x4::<0xDD>(r[8 + c], r[12 + c]);
        t[c] = _mm512_shuffle_i32x4::<0x88>(x0, y0);
        t[8 + c] = _mm512_shuffle_i32x4::<0xDD>(x0, y0);
        t[4 + c] = _mm512_shuffle_i32x4::<0x88>(x1, y1);
        t[12 + c] = _mm512_shuffle_i32x4::<0xDD>(x1, y1);
    }
    *r = t;
}

/// The epilogue of one channel panel from its sums `acc` (`n` rows of `NC`): per block of 16
/// positions and 16 channels, a transpose, then per channel the position-lane kernel's
/// operations on 16 contiguous positions.
///
/// # Safety
/// As [`panel`].
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn epilogue(job: &PanelJob<'_>, c0: usize, channels: usize, acc: &[i32]) {
    let (n, ldc, kind) = (job.n, job.ldc, job.kind);
    let elem = kind.elem_size();
    let cp = job.out.0;
    let clamp = job.clamp.map(|(lo, hi)| (_mm512_set1_ps(lo), _mm512_set1_ps(hi)));
    let rq = kind
        .requant()
        .map(|r| (_mm512_set1_ps(r.inv_scale), _mm512_set1_ps(r.lo), _mm512_set1_ps(r.hi), _mm512_set1_epi32(r.zp)));
    // With a residual: `(acc·scale + bias) + r`, clamped with the bound as `maxps`/`minps`'s
    // first operand (`lo > y ? lo : y`: NaN and -0.0 kept, as `dequant_residual`).
    let residual = job.residual.map(|r| r.as_ptr());
    for pb in (0..n).step_by(16) {
        let mask = lanes(n - pb);
        for v in 0..channels.div_ceil(16) {
            let mut blk = [_mm512_setzero_si512(); 16];
            for (r, b) in blk.iter_mut().enumerate() {
                // SAFETY: rows `pb .. pb + 16` are inside `acc` (`n` rounded up to 16 rows),
                // lanes `16 v .. 16 v + 16 <= NC`.
                *b = unsafe { _mm512_loadu_si512(acc.as_ptr().add((pb + r) * NC + 16 * v) as *const __m512i) };
            }
            transpose16(&mut blk);
            for (c, &x) in blk.iter().enumerate().take(channels - 16 * v) {
                let ch = c0 + 16 * v + c;
                let accv = _mm512_sub_epi32(x, _mm512_set1_epi32(job.comp[ch]));
                let (si, bi) = (_mm512_set1_ps(job.scale[ch]), _mm512_set1_ps(job.bias[ch]));
                let off = ch * ldc + pb;
                let y = || {
                    let y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(accv), si), bi);
                    match (residual, clamp) {
                        (None, Some((lo, hi))) => _mm512_min_ps(_mm512_max_ps(y, lo), hi),
                        (None, None) => y,
                        (Some(rp), clamp) => {
                            // SAFETY: the residual holds row `ch`'s `n` values from `ch · ldc`
                            // (checked by `run`); masked-off lanes are not read.
                            let r = unsafe { _mm512_maskz_loadu_ps(mask, rp.add(off)) };
                            let y = _mm512_add_ps(y, r);
                            match clamp {
                                Some((lo, hi)) => _mm512_min_ps(hi, _mm512_max_ps(lo, y)),
                                None => y,
                            }
                        }
                    }
                };
                // SAFETY: masked lanes are positions `pb .. min(pb + 16, n)` of output row `ch`,
                // owned by this caller and of the kind's element type; masked-off lanes are not
                // accessed.
                unsafe {
                    let o = cp.add(off * elem);
                    match kind {
                        OutputKind::I32 => _mm512_mask_storeu_epi32(o as *mut i32, mask, accv),
                        OutputKind::F32 => _mm512_mask_storeu_ps(o as *mut f32, mask, y()),
                        OutputKind::U8 { .. } | OutputKind::S8 { .. } => {
                            let (ys, lo, hi, zp) = rq.expect("quantized kind");
                            let t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y(), ys), lo), hi);
                            let q = _mm512_add_epi32(
                                _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t),
                                zp,
                            );
                            _mm512_mask_cvtepi32_storeu_epi8(o as *mut i8, mask, q);
                        }
                    }
                }
            }
        }
    }
}
