//! `qu8s8_gemm_{8,12}x32c4__avx512vnni`: per group of 4 depth values, two 64-byte vectors of
//! packed activations (16 columns x 4 u8 each) are multiplied by each row's 4 weights
//! broadcast as one dword with `vpdpbusd` (u8 x s8, four products summed into each i32 lane,
//! no saturation), `2 * MR` zmm accumulators. The accumulators start at `-comp` (wrapping, so
//! the compensation costs nothing per output); the epilogue (scale, bias, clamp, requantize
//! with round-half-even) runs in registers. For u8/s8 outputs without a residual the
//! activation clamp is merged into the requantize clamp when that is exact
//! ([`Requant::merged_bounds`]), and two rows of 32 results are narrowed with
//! `vpackssdw`/`vpackuswb` and one `vpermd` into two 32-byte stores. One call
//! ([`I8GemmMicrokernel::run_panels`]) runs a row panel across a whole block of column panels,
//! so the epilogue is set up once; edge tiles use masked loads and stores.

use lithe_kernels::int8::{I8GemmMicrokernel, I8TileEpilogue, I8TileOut, OutputKind, Requant, check_i8_panels_args};
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
            /// The kernel, when the CPU supports AVX-512F/BW/VL and AVX-512 VNNI.
            pub fn get() -> Option<&'static Self> {
                static K: $ty = $ty { _detected: () };
                (is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni"))
                .then_some(&K)
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
                assert!(c.cols() <= NR, "tile {} x {} exceeds {} x {NR}", c.rows(), c.cols(), $mr);
                self.run_panels(kg, a, b, c, ep)
            }

            fn run_panels(&self, kg: usize, a: &[i8], b: &[u8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
                check_i8_panels_args($mr, NR, KR, kg, a, b, c, ep);
                // SAFETY: a value of this type exists only when AVX-512F/BW/VL and VNNI were
                // detected; the A panel holds `kg * MR * 4` bytes, `b` holds `ceil(cols / NR)`
                // panels of `kg * NR * 4`, the tile has at most MR rows and `ep` fits it (checked).
                unsafe { run_block::<$mr>(kg, a.as_ptr(), b.as_ptr(), c, ep) }
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

/// Output element kinds, as the `OUT` parameter of [`block`].
const O_I32: u8 = 0;
const O_F32: u8 = 1;
const O_U8: u8 = 2;
const O_S8: u8 = 3;

/// The epilogue constants of one call, set up once per row panel.
struct Setup<const MR: usize> {
    /// `-comp[i]` (wrapping), the accumulators' starting value; 0 past the tile's rows.
    neg_comp: [i32; MR],
    /// Per-row scale and bias (0 past the tile's rows).
    scale: [f32; MR],
    bias: [f32; MR],
    /// The activation clamp applied in f32 (`-inf..inf` when merged or absent; the `CLAMP`
    /// parameter says whether it runs at all).
    act: (f32, f32),
    /// Requantize: `1 / y_scale`, clamp bounds of the scaled value (merged with the
    /// activation when that is exact), zero point.
    rq: (f32, f32, f32, i32),
    /// The residual's base pointer and row stride (elements), when there is one.
    residual: Option<(*const f32, usize)>,
}

/// Dispatch one row panel to the [`block`] instance for its output kind, clamp and residual.
///
/// # Safety
/// As [`block`], with the panel and tile checks of [`check_i8_panels_args`] passed.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn run_block<const MR: usize>(
    kg: usize,
    a: *const i8,
    b: *const u8,
    c: &mut I8TileOut<'_>,
    ep: &I8TileEpilogue<'_>,
) {
    let rows = c.rows();
    let (comp, scale, bias) = (ep.comp(), ep.scale(), ep.bias());
    let row = |i: usize, v: &[f32]| if i < rows { v[i] } else { 0.0 };
    let kind = ep.kind();
    let residual = ep.residual().map(|(r, ld)| (r.as_ptr(), ld));
    let rq = kind.requant().unwrap_or(Requant { scale: 1.0, inv_scale: 1.0, lo: 0.0, hi: 0.0, zp: 0 });
    // u8/s8 without a residual: merge the activation into the requantize clamp when exact.
    let merged = match (kind.requant(), residual) {
        (Some(rq), None) => rq.merged_bounds(ep.clamp()),
        _ => None,
    };
    let (lo, hi) = merged.unwrap_or((rq.lo, rq.hi));
    let clamp = if merged.is_some() { None } else { ep.clamp() };
    let st = Setup::<MR> {
        neg_comp: std::array::from_fn(|i| if i < rows { comp[i].wrapping_neg() } else { 0 }),
        scale: std::array::from_fn(|i| row(i, scale)),
        bias: std::array::from_fn(|i| row(i, bias)),
        act: clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY)),
        rq: (rq.inv_scale, lo, hi, rq.zp),
        residual,
    };
    // SAFETY: forwarded from the caller; `st` describes `ep` for this tile.
    unsafe {
        match (kind, clamp.is_some(), residual.is_some()) {
            (OutputKind::I32, _, _) => block::<MR, O_I32, false, false>(kg, a, b, c, &st),
            (OutputKind::F32, false, false) => block::<MR, O_F32, false, false>(kg, a, b, c, &st),
            (OutputKind::F32, true, false) => block::<MR, O_F32, true, false>(kg, a, b, c, &st),
            (OutputKind::F32, false, true) => block::<MR, O_F32, false, true>(kg, a, b, c, &st),
            (OutputKind::F32, true, true) => block::<MR, O_F32, true, true>(kg, a, b, c, &st),
            (OutputKind::U8 { .. }, false, false) => block::<MR, O_U8, false, false>(kg, a, b, c, &st),
            (OutputKind::U8 { .. }, true, false) => block::<MR, O_U8, true, false>(kg, a, b, c, &st),
            (OutputKind::U8 { .. }, false, true) => block::<MR, O_U8, false, true>(kg, a, b, c, &st),
            (OutputKind::U8 { .. }, true, true) => block::<MR, O_U8, true, true>(kg, a, b, c, &st),
            (OutputKind::S8 { .. }, false, false) => block::<MR, O_S8, false, false>(kg, a, b, c, &st),
            (OutputKind::S8 { .. }, true, false) => block::<MR, O_S8, true, false>(kg, a, b, c, &st),
            (OutputKind::S8 { .. }, false, true) => block::<MR, O_S8, false, true>(kg, a, b, c, &st),
            (OutputKind::S8 { .. }, true, true) => block::<MR, O_S8, true, true>(kg, a, b, c, &st),
        }
    }
}

/// All column panels of one row panel: full 32-column tiles, then the remainder (at most 16
/// columns read only the first half of each 128-byte group of `b`).
///
/// # Safety
/// AVX-512F/BW/VL and VNNI must be available; `a` must hold `kg * MR * 4` bytes and `b`
/// `ceil(cols / 32)` panels of `kg * 128`; `c` must have at most `MR` rows and elements of the
/// `OUT` kind; with `RES`, `st.residual` must cover the tile at its stride.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn block<const MR: usize, const OUT: u8, const CLAMP: bool, const RES: bool>(
    kg: usize,
    a: *const i8,
    b: *const u8,
    c: &mut I8TileOut<'_>,
    st: &Setup<MR>,
) {
    let (rows, cols, ldc, elem) = (c.rows(), c.cols(), c.ldc(), c.elem_size());
    let cp = c.as_mut_ptr();
    let plen = kg * NR * KR;
    let mut j = 0;
    // SAFETY: tile `j / 32` reads panel `j / 32` of `b` and writes columns `j .. j + w` of
    // the tile (inside it), with the residual at the same columns.
    unsafe {
        while j + NR <= cols {
            tile::<MR, 2, OUT, CLAMP, RES>(kg, a, b.add(j / NR * plen), cp.add(j * elem), ldc, rows, NR, j, st);
            j += NR;
        }
        if j < cols {
            let (bp, w) = (b.add(j / NR * plen), cols - j);
            if w <= 16 {
                tile::<MR, 1, OUT, CLAMP, RES>(kg, a, bp, cp.add(j * elem), ldc, rows, w, j, st);
            } else {
                tile::<MR, 2, OUT, CLAMP, RES>(kg, a, bp, cp.add(j * elem), ldc, rows, w, j, st);
            }
        }
    }
}

/// One `rows x cols` tile (`cols <= 16 NV`) at `c`, whose columns start at column `j0` of the
/// block (for the residual).
///
/// # Safety
/// As [`block`], for the one panel at `b` and the tile at `c`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const MR: usize, const NV: usize, const OUT: u8, const CLAMP: bool, const RES: bool>(
    kg: usize,
    a: *const i8,
    b: *const u8,
    c: *mut u8,
    ldc: usize,
    rows: usize,
    cols: usize,
    j0: usize,
    st: &Setup<MR>,
) {
    let mut acc: [[__m512i; NV]; MR] = std::array::from_fn(|i| [_mm512_set1_epi32(st.neg_comp[i]); NV]);
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
    let full = cols == 16 * NV;
    let masks = [lanes(cols), lanes(cols.saturating_sub(16))];
    let (act_lo, act_hi) = (_mm512_set1_ps(st.act.0), _mm512_set1_ps(st.act.1));
    let (inv, lo, hi) = (_mm512_set1_ps(st.rq.0), _mm512_set1_ps(st.rq.1), _mm512_set1_ps(st.rq.2));
    // `y` of row `i`, half `v`: `(acc·scale + bias)`, with a residual `+ r` clamped with the
    // bound as `maxps`/`minps`'s first operand (`lo > y ? lo : y`: NaN and -0.0 kept, as
    // `dequant_residual`), without one clamped as `f32::max`/`min` (NaN becomes the bound, as
    // `dequant`).
    let y = |x: __m512i, i: usize, v: usize| {
        let y = _mm512_add_ps(
            _mm512_mul_ps(_mm512_cvtepi32_ps(x), _mm512_set1_ps(st.scale[i])),
            _mm512_set1_ps(st.bias[i]),
        );
        if RES {
            let (rp, ld) = st.residual.unwrap_or((std::ptr::null(), 0));
            // SAFETY: the residual covers row `i`'s `cols` values from column `j0` (caller);
            // masked-off lanes are not read.
            let r = unsafe { _mm512_maskz_loadu_ps(masks[v], rp.add(i * ld + j0 + 16 * v)) };
            let y = _mm512_add_ps(y, r);
            if CLAMP { _mm512_min_ps(act_hi, _mm512_max_ps(act_lo, y)) } else { y }
        } else if CLAMP {
            _mm512_min_ps(_mm512_max_ps(y, act_lo), act_hi)
        } else {
            y
        }
    };
    // The rounded quantized value without the zero point, in `lo..=hi`.
    let q = |x: __m512i, i: usize, v: usize| {
        let t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y(x, i, v), inv), lo), hi);
        _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t)
    };
    if (OUT == O_U8 || OUT == O_S8) && NV == 2 {
        // Two rows of 32 per step: `vpackssdw` (exact: |q| <= 383), the zero point added in
        // i16 (the sums are in the output range), `vpackuswb`/`vpacksswb` (exact), then one
        // `vpermd` puts row `i` in the low 32 bytes and row `i + 1` in the high ones.
        let zp16 = _mm512_set1_epi16(st.rq.3 as i16);
        let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        let m32 = if cols >= 32 { u32::MAX } else { (1u32 << cols) - 1 };
        for p in 0..MR.div_ceil(2) {
            let i = 2 * p;
            if i >= rows {
                break;
            }
            let two = i + 1 < rows;
            let (q0, q1) = (q(acc[i][0], i, 0), q(acc[i][NV - 1], i, 1));
            let (q2, q3) = if two && i + 1 < MR {
                (q(acc[i + 1][0], i + 1, 0), q(acc[i + 1][NV - 1], i + 1, 1))
            } else {
                (q0, q1)
            };
            let p0 = _mm512_add_epi16(_mm512_packs_epi32(q0, q1), zp16);
            let p1 = _mm512_add_epi16(_mm512_packs_epi32(q2, q3), zp16);
            let bytes = if OUT == O_U8 { _mm512_packus_epi16(p0, p1) } else { _mm512_packs_epi16(p0, p1) };
            let r = _mm512_permutexvar_epi32(idx, bytes);
            let (lo_half, hi_half) = (_mm512_castsi512_si256(r), _mm512_extracti64x4_epi64::<1>(r));
            // SAFETY: rows `i` (and `i + 1` when `two`) are in the tile; full tiles write 32
            // bytes per row, edge tiles only the `cols` masked bytes.
            unsafe {
                let (d0, d1) = (c.add(i * ldc) as *mut __m256i, c.add((i + 1) * ldc) as *mut __m256i);
                if full {
                    _mm256_storeu_si256(d0, lo_half);
                    if two {
                        _mm256_storeu_si256(d1, hi_half);
                    }
                } else {
                    _mm256_mask_storeu_epi8(d0 as *mut i8, m32, lo_half);
                    if two {
                        _mm256_mask_storeu_epi8(d1 as *mut i8, m32, hi_half);
                    }
                }
            }
        }
        return;
    }
    for (i, row) in acc.iter().enumerate().take(rows) {
        for (v, (&x, &mask)) in row.iter().zip(&masks).enumerate() {
            if mask == 0 {
                continue;
            }
            let off = i * ldc + 16 * v;
            // SAFETY: masked lanes are the tile's columns `16 v .. cols` of row `i`, valid for
            // writes of the kind's element type (I8TileOut invariant, `ep.fits`); masked-off
            // lanes are not accessed, and full tiles cover all 16.
            unsafe {
                match OUT {
                    O_I32 => {
                        let p = (c as *mut i32).add(off);
                        if full { _mm512_storeu_si512(p as *mut _, x) } else { _mm512_mask_storeu_epi32(p, mask, x) }
                    }
                    O_F32 => {
                        let p = (c as *mut f32).add(off);
                        if full { _mm512_storeu_ps(p, y(x, i, v)) } else { _mm512_mask_storeu_ps(p, mask, y(x, i, v)) }
                    }
                    _ => {
                        let qv = _mm512_add_epi32(q(x, i, v), _mm512_set1_epi32(st.rq.3));
                        _mm512_mask_cvtepi32_storeu_epi8(c.add(off) as *mut i8, mask, qv);
                    }
                }
            }
        }
    }
}
