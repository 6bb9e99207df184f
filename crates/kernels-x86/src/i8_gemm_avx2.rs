//! `qu8s8_gemm_4x16c2__avx2`: exact int8 GEMM without VNNI. Per pair of depth values the
//! packed activations (16 columns x 2 u8) are zero-extended to i16 and multiplied by each
//! row's two weights (sign-extended, broadcast as one dword) with `vpmaddwd`, which sums the
//! two products into i32 exactly (|255·128·2| < 2¹⁵·2¹⁵), then added with `vpaddd`. This avoids
//! `vpmaddubsw`, whose i16 sums saturate, so every s8 weight (-128 included) is exact.

use lithe_kernels::int8::{I8GemmMicrokernel, I8TileEpilogue, I8TileOut, OutputKind, check_i8_microkernel_args};
use std::arch::x86_64::*;

const MR: usize = 4;
const NR: usize = 16;
const KR: usize = 2;

/// `qu8s8_gemm_4x16c2__avx2`: a 4x16 AVX2 register tile (i16 widening + `vpmaddwd`).
#[derive(Debug)]
pub struct I8Gemm4x16c2Avx2 {
    _detected: (),
}

impl I8Gemm4x16c2Avx2 {
    /// The kernel, when the CPU supports AVX2.
    pub fn get() -> Option<&'static Self> {
        static K: I8Gemm4x16c2Avx2 = I8Gemm4x16c2Avx2 { _detected: () };
        is_x86_feature_detected!("avx2").then_some(&K)
    }
}

impl I8GemmMicrokernel for I8Gemm4x16c2Avx2 {
    fn name(&self) -> &'static str {
        "qu8s8_gemm_4x16c2__avx2"
    }

    fn mr(&self) -> usize {
        MR
    }

    fn nr(&self) -> usize {
        NR
    }

    fn kr(&self) -> usize {
        KR
    }

    fn run(&self, kg: usize, a: &[i8], b: &[u8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
        check_i8_microkernel_args(MR, NR, KR, kg, a, b, c, ep);
        // SAFETY: a value of this type exists only when AVX2 was detected; the panels hold
        // `kg * MR * 2` and `kg * NR * 2` bytes, the tile fits MR x NR and `ep` fits it (checked).
        unsafe { kernel(kg, a.as_ptr(), b.as_ptr(), c, ep) }
    }
}

/// # Safety
/// AVX2 must be available; `a` must hold `kg * MR * 2` bytes and `b` `kg * NR * 2`; `c` must be
/// at most `MR x NR` and `ep` must fit it.
#[target_feature(enable = "avx2")]
unsafe fn kernel(kg: usize, a: *const i8, b: *const u8, c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let (mut a, mut b) = (a, b);
    for _ in 0..kg {
        // SAFETY: each of the `kg` steps reads `MR * 2 = 8` bytes of `a` and `NR * 2 = 32` of
        // `b`, inside the panels.
        unsafe {
            let b0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(b as *const __m128i));
            let b1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(b.add(16) as *const __m128i));
            let aw = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64(a as *const __m128i)));
            macro_rules! row {
                ($i:literal, $imm:literal) => {
                    let ai = _mm256_shuffle_epi32::<$imm>(aw);
                    acc[$i][0] = _mm256_add_epi32(acc[$i][0], _mm256_madd_epi16(b0, ai));
                    acc[$i][1] = _mm256_add_epi32(acc[$i][1], _mm256_madd_epi16(b1, ai));
                };
            }
            row!(0, 0x00);
            row!(1, 0x55);
            row!(2, 0xAA);
            row!(3, 0xFF);
            a = a.add(KR * MR);
            b = b.add(KR * NR);
        }
    }
    let (rows, cols, ldc) = (c.rows(), c.cols(), c.ldc());
    let cp = c.as_mut_ptr();
    let (comp, scale, bias) = (ep.comp(), ep.scale(), ep.bias());
    let kind = ep.kind();
    let clamp = ep.clamp().map(|(lo, hi)| (_mm256_set1_ps(lo), _mm256_set1_ps(hi)));
    let rq = kind
        .requant()
        .map(|r| (_mm256_set1_ps(r.inv_scale), _mm256_set1_ps(r.lo), _mm256_set1_ps(r.hi), _mm256_set1_epi32(r.zp)));
    let residual = ep.residual();
    for (i, row) in acc.iter().enumerate().take(rows) {
        let (ci, si, bi) = (_mm256_set1_epi32(comp[i]), _mm256_set1_ps(scale[i]), _mm256_set1_ps(bias[i]));
        let accv = [_mm256_sub_epi32(row[0], ci), _mm256_sub_epi32(row[1], ci)];
        // The row's residual (zeros past `cols`): `ep.fits(c)` guarantees `cols` values at `i * ld`.
        let mut res = [0f32; NR];
        if let Some((r, ld)) = residual {
            res[..cols].copy_from_slice(&r[i * ld..][..cols]);
        }
        // With a residual: `(acc·scale + bias) + r`, clamped with the bound as `maxps`/`minps`'s
        // first operand (`lo > y ? lo : y`: NaN and -0.0 kept, as `dequant_residual`).
        let y = |v: __m256i, half: usize| {
            let y = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v), si), bi);
            if residual.is_some() {
                // SAFETY: `res` holds 16 values, `half` is 0 or 1.
                let y = _mm256_add_ps(y, unsafe { _mm256_loadu_ps(res.as_ptr().add(8 * half)) });
                return match clamp {
                    Some((lo, hi)) => _mm256_min_ps(hi, _mm256_max_ps(lo, y)),
                    None => y,
                };
            }
            match clamp {
                Some((lo, hi)) => _mm256_min_ps(_mm256_max_ps(y, lo), hi),
                None => y,
            }
        };
        // The row's 16 results as 64 bytes, stored whole for a full row, else copied.
        let mut tmp = [0u8; 64];
        let tp = tmp.as_mut_ptr();
        // SAFETY: `tmp` holds 64 bytes, enough for 16 values of 4 bytes; the copy below writes
        // `cols` elements of the kind's size to row `i` of the tile, valid by the I8TileOut
        // invariant and `ep.fits`.
        unsafe {
            let bytes = match kind {
                OutputKind::I32 => {
                    _mm256_storeu_si256(tp as *mut __m256i, accv[0]);
                    _mm256_storeu_si256(tp.add(32) as *mut __m256i, accv[1]);
                    4
                }
                OutputKind::F32 => {
                    _mm256_storeu_ps(tp as *mut f32, y(accv[0], 0));
                    _mm256_storeu_ps(tp.add(32) as *mut f32, y(accv[1], 1));
                    4
                }
                OutputKind::U8 { .. } | OutputKind::S8 { .. } => {
                    let (ys, lo, hi, zp) = rq.expect("quantized kind");
                    let q = |v, half| {
                        let t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(y(v, half), ys), lo), hi);
                        _mm256_add_epi32(_mm256_cvtps_epi32(t), zp)
                    };
                    // Values are in the output range, so the saturating packs are exact.
                    let w = _mm256_permute4x64_epi64::<0xD8>(_mm256_packs_epi32(q(accv[0], 0), q(accv[1], 1)));
                    let (lo16, hi16) = (_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
                    let p = if matches!(kind, OutputKind::U8 { .. }) {
                        _mm_packus_epi16(lo16, hi16)
                    } else {
                        _mm_packs_epi16(lo16, hi16)
                    };
                    _mm_storeu_si128(tp as *mut __m128i, p);
                    1
                }
            };
            std::ptr::copy_nonoverlapping(tp, cp.add(i * ldc * bytes), cols * bytes);
        }
    }
}
