//! `QAdd`: the int8 elementwise add of two u8 tensors with onnxruntime's x86 `QLinearAdd`
//! arithmetic (see [`lithe_ir::Op::QAdd`]), so a QDQ model's residual adds give the bytes
//! onnxruntime gives.
//!
//! `c = saturate(round_half_even(fma(b, rb, fma(a, ra, k))))` with `ra = a_scale / c_scale`,
//! `rb = b_scale / c_scale` and `k = c_zp - (ra·a_zp + rb·b_zp)` (plain f32 operations in that
//! order); `fma(x, y, z)` is `x·y + z` rounded once, as onnxruntime's AVX2 kernel computes it.
//! Separate multiply and add roundings differ from it in about one byte in 10⁶ (measured on a
//! MobileNetV2's residual adds). Saturation follows `cvtps2dq` then saturating packs: a value
//! whose magnitude is 2³¹ or more, or NaN, becomes 0. The loop is plain element-wise code that
//! vectorizes, built with FMA on x86-64 CPUs that have it (without it each `mul_add` is a
//! library call: right, slower); threads split the elements.

use super::epilogue::invalid;
use crate::KernelError;

/// Elements per thread below which a call stays on one thread.
const PAR_MIN: usize = 1 << 15;

/// The scales and zero points of a [`qadd_u8`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QAddParams {
    /// A's scale.
    pub a_scale: f32,
    /// A's zero point.
    pub a_zero_point: u8,
    /// B's scale.
    pub b_scale: f32,
    /// B's zero point.
    pub b_zero_point: u8,
    /// The output's scale.
    pub c_scale: f32,
    /// The output's zero point.
    pub c_zero_point: u8,
}

impl QAddParams {
    /// `(ra, rb, k)` of the formula.
    fn factors(&self) -> (f32, f32, f32) {
        let ra = self.a_scale / self.c_scale;
        let rb = self.b_scale / self.c_scale;
        let k = f32::from(self.c_zero_point) - (ra * f32::from(self.a_zero_point) + rb * f32::from(self.b_zero_point));
        (ra, rb, k)
    }
}

/// One output element (the definition every path reproduces).
#[inline(always)]
fn qadd_value(a: u8, b: u8, (ra, rb, k): (f32, f32, f32)) -> u8 {
    // Round half to even by 1.5·2²³ (exact for the clamped value); clamping to the integer
    // bounds first equals saturating after rounding.
    const MAGIC: f32 = 12_582_912.0;
    let v = f32::from(b).mul_add(rb, f32::from(a).mul_add(ra, k));
    // `v` is not NaN inside the branch, so `clamp` is safe.
    let t = if v.abs() < 2_147_483_648.0 { v.clamp(0.0, 255.0) } else { 0.0 };
    ((t + MAGIC).to_bits() - MAGIC.to_bits()) as u8
}

/// `c[i] = QAdd(a[i], b[i])` over slices of one length, on up to `threads` threads.
pub fn qadd_u8(a: &[u8], b: &[u8], p: &QAddParams, c: &mut [u8], threads: usize) -> Result<(), KernelError> {
    if a.len() != b.len() || a.len() != c.len() {
        return Err(invalid(format!("QAdd: A has {}, B {} and C {} elements", a.len(), b.len(), c.len())));
    }
    let f = p.factors();
    crate::parallel::for_unit_runs(c, a.len(), 1, PAR_MIN, threads, |first, part| {
        let n = part.len();
        qadd_run(&a[first..first + n], &b[first..first + n], f, part);
    });
    Ok(())
}

/// One run of elements (equal lengths), with AVX-512 or FMA instructions where the CPU has
/// them.
fn qadd_run(a: &[u8], b: &[u8], f: (f32, f32, f32), c: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX-512F and FMA, which `qadd_run_avx512` requires.
        unsafe { qadd_run_avx512(a, b, f, c) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has FMA and AVX2, the only requirement of `qadd_run_fma`; it does
        // nothing unsafe itself (safe slice code compiled with those features).
        unsafe { qadd_run_fma(a, b, f, c) };
        return;
    }
    qadd_run_portable(a, b, f, c);
}

fn qadd_run_portable(a: &[u8], b: &[u8], f: (f32, f32, f32), c: &mut [u8]) {
    for ((c, &a), &b) in c.iter_mut().zip(a).zip(b) {
        *c = qadd_value(a, b, f);
    }
}

/// 16 elements per step: bytes widened to f32, two fused multiply-adds, `vcvtps2dq` (round half
/// to even; NaN and magnitudes of 2³¹ or more give `i32::MIN`), clamped to `[0, 255]` as
/// integers (so `i32::MIN` gives 0, as onnxruntime's saturating packs do) and narrowed. The
/// tail takes [`qadd_value`], which computes the same.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn qadd_run_avx512(a: &[u8], b: &[u8], f: (f32, f32, f32), c: &mut [u8]) {
    use std::arch::x86_64::*;
    let n = c.len().min(a.len()).min(b.len());
    let (ra, rb, k) = (_mm512_set1_ps(f.0), _mm512_set1_ps(f.1), _mm512_set1_ps(f.2));
    let (zero, top) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: `i + 16 <= n` and every slice has at least `n` elements, so the 16-byte
        // unaligned loads and the store stay inside `a`, `b` and `c`.
        unsafe {
            let va = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(a.as_ptr().add(i).cast())));
            let vb = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(b.as_ptr().add(i).cast())));
            let v = _mm512_fmadd_ps(vb, rb, _mm512_fmadd_ps(va, ra, k));
            let q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(v), zero), top);
            _mm_storeu_si128(c.as_mut_ptr().add(i).cast(), _mm512_cvtepi32_epi8(q));
        }
        i += 16;
    }
    for j in i..n {
        c[j] = qadd_value(a[j], b[j], f);
    }
}

/// [`qadd_run_portable`] compiled with FMA and AVX2, so `mul_add` is one vector instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
fn qadd_run_fma(a: &[u8], b: &[u8], f: (f32, f32, f32), c: &mut [u8]) {
    for ((c, &a), &b) in c.iter_mut().zip(a).zip(b) {
        *c = qadd_value(a, b, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The formula in scalar steps, written out separately from the kernel.
    fn spelled_out(a: u8, b: u8, p: &QAddParams) -> u8 {
        let ra = p.a_scale / p.c_scale;
        let rb = p.b_scale / p.c_scale;
        let za = ra * p.a_zero_point as f32;
        let zb = rb * p.b_zero_point as f32;
        let k = p.c_zero_point as f32 - (za + zb);
        // `mul_add` here is std's correctly rounded fused multiply-add (the C library's `fmaf`
        // in this test build), not the vector instruction the kernel runs.
        let s = (a as f32).mul_add(ra, k);
        let v = (b as f32).mul_add(rb, s);
        if v.is_nan() || v.abs() >= 2_147_483_648.0 {
            return 0;
        }
        v.round_ties_even().clamp(0.0, 255.0) as u8
    }

    fn params() -> impl Strategy<Value = QAddParams> {
        (1e-4f32..1.0, any::<u8>(), 1e-4f32..1.0, any::<u8>(), 1e-4f32..1.0, any::<u8>()).prop_map(
            |(a_scale, a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point)| QAddParams {
                a_scale,
                a_zero_point,
                b_scale,
                b_zero_point,
                c_scale,
                c_zero_point,
            },
        )
    }

    proptest! {
        #[test]
        fn kernel_matches_the_formula(p in params(), len in 0usize..300, seed in any::<u64>(), threads in 1usize..4) {
            let mut s = seed | 1;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1); (s >> 56) as u8 };
            let a: Vec<u8> = (0..len).map(|_| next()).collect();
            let b: Vec<u8> = (0..len).map(|_| next()).collect();
            let mut c = vec![0u8; len];
            qadd_u8(&a, &b, &p, &mut c, threads).unwrap();
            for i in 0..len {
                prop_assert_eq!(c[i], spelled_out(a[i], b[i], &p), "element {}", i);
            }
        }
    }

    #[test]
    fn every_byte_pair_matches_and_edges_saturate() {
        // An onnxruntime-measured case: a = 78, b = 147 lands exactly on 98.5 and rounds to even.
        let p = QAddParams {
            a_scale: 0.025960246,
            a_zero_point: 121,
            b_scale: 0.018235594,
            b_zero_point: 128,
            c_scale: 0.02799325,
            c_zero_point: 126,
        };
        let mut c = [0u8];
        qadd_u8(&[78], &[147], &p, &mut c, 1).unwrap();
        assert_eq!(c[0], 98);
        // Another (a MobileNetV2 residual add): 105 and 178 give 130.5 with separate roundings
        // (even: 130) but just above it with fused multiply-adds; onnxruntime writes 131.
        let fused = QAddParams {
            a_scale: 0.0213467,
            a_zero_point: 128,
            b_scale: 0.010932302,
            b_zero_point: 128,
            c_scale: 0.022256268,
            c_zero_point: 128,
        };
        for threads in [1, 2] {
            let mut c = vec![0u8; 40];
            qadd_u8(&[105; 40], &[178; 40], &fused, &mut c, threads).unwrap();
            assert!(c.iter().all(|&v| v == 131), "{c:?}");
        }
        let a: Vec<u8> = (0..=255u8).flat_map(|x| std::iter::repeat_n(x, 256)).collect();
        let b: Vec<u8> = (0..256 * 256).map(|i| i as u8).collect();
        let mut c = vec![0u8; a.len()];
        qadd_u8(&a, &b, &p, &mut c, 2).unwrap();
        for i in 0..a.len() {
            assert_eq!(c[i], spelled_out(a[i], b[i], &p));
        }
        // NaN and overflowing values become 0, as cvtps2dq's integer indefinite does.
        // 17 elements: 16 through the vector path, one through the scalar tail.
        let nan = QAddParams { c_scale: f32::NAN, ..p };
        qadd_u8(&[1; 17], &[1; 17], &nan, &mut c[..17], 1).unwrap();
        assert!(c[..17].iter().all(|&v| v == 0), "{:?}", &c[..17]);
        let huge = QAddParams { c_scale: 1e-12, ..p };
        qadd_u8(&[255; 17], &[255; 17], &huge, &mut c[..17], 1).unwrap();
        assert!(c[..17].iter().all(|&v| v == 0), "{:?}", &c[..17]);
        // Just below 2³¹ saturates to 255; a large negative value to 0.
        let big = QAddParams { c_scale: 1.0, a_scale: 8.0e6, b_scale: 0.0, a_zero_point: 0, c_zero_point: 0, ..p };
        qadd_u8(&[255; 17], &[0; 17], &big, &mut c[..17], 1).unwrap();
        assert!(c[..17].iter().all(|&v| v == 255), "{:?}", &c[..17]);
        qadd_u8(&[0; 17], &[0; 17], &QAddParams { a_zero_point: 255, ..big }, &mut c[..17], 1).unwrap();
        assert!(c[..17].iter().all(|&v| v == 0), "{:?}", &c[..17]);
        assert!(qadd_u8(&[1, 2], &[1], &p, &mut c[..2], 1).is_err());
    }
}
