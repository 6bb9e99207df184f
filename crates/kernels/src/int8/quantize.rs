//! Fast ONNX `QuantizeLinear` (f32 → u8/s8) and `DequantizeLinear` (u8/s8 → f32) over
//! contiguous slices, per tensor or per channel, bit for bit equal to
//! [`reference::quantize`](crate::reference::quantize).
//!
//! Quantize: `q = saturate(round_half_even(x / scale) + zero_point)`, a true f32 division as
//! ONNX and the reference specify; a NaN quotient gives the zero point, ±inf saturates. The
//! fast loop multiplies by `1 / scale` and redoes by division any block of 16 where that could
//! round differently (a quotient near a half-integer, NaN, or an abnormal scale), so the
//! results stay the division's bit for bit. Dequantize: `x = (q - zero_point) as f32 *
//! scale` (the difference is exact, one rounding). No scale is rejected: zero, negative,
//! infinite or NaN scales give what the reference gives.
//!
//! The loops are plain element-wise code that vectorizes; on x86-64 with AVX-512F the same code
//! is also compiled with it and chosen at run time (`LITHE_KERNELS=generic` forces the portable
//! build). `threads > 1` splits slices of at least [`PAR_MIN`] elements per thread over the
//! rayon pool; results do not depend on the split.

use super::epilogue::invalid;
use crate::KernelError;
use crate::fast::Isa;

/// Elements per thread below which a call stays on one thread.
pub const PAR_MIN: usize = 1 << 16;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for i8 {}
}

/// A quantized element type: u8 or i8.
pub trait QuantElem: Copy + Send + Sync + sealed::Sealed {
    /// Smallest value.
    const MIN: i32;
    /// Largest value.
    const MAX: i32;
    /// The value as i32.
    fn to_i32(self) -> i32;
    /// The low byte of `v` (callers pass values in range).
    fn from_i32(v: i32) -> Self;
}

impl QuantElem for u8 {
    const MIN: i32 = 0;
    const MAX: i32 = 255;
    #[inline(always)]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as u8
    }
}

impl QuantElem for i8 {
    const MIN: i32 = -128;
    const MAX: i32 = 127;
    #[inline(always)]
    fn to_i32(self) -> i32 {
        self as i32
    }
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as i8
    }
}

/// `y[i] = saturate(round_half_even(x[i] / scale) + zero_point)` (ONNX `QuantizeLinear`, one
/// scale and zero point). Fails when the lengths differ.
pub fn quantize_linear<Q: QuantElem>(
    x: &[f32],
    scale: f32,
    zero_point: Q,
    y: &mut [Q],
    threads: usize,
) -> Result<(), KernelError> {
    if x.len() != y.len() {
        return Err(invalid(format!("QuantizeLinear: {} values into {}", x.len(), y.len())));
    }
    let isa = Isa::detect();
    crate::parallel::for_unit_runs(y, x.len(), 1, PAR_MIN, threads, |first, part| {
        quantize_run(isa, &x[first..first + part.len()], scale, zero_point, part)
    });
    Ok(())
}

/// [`quantize_linear`] with a scale and zero point per channel: `x` is `[outer, channels,
/// inner]` row-major (NCHW with `inner = h·w` for axis 1), element `i` uses channel
/// `(i / inner) % channels` where `channels = scales.len()`. Fails on inconsistent lengths.
pub fn quantize_linear_per_channel<Q: QuantElem>(
    x: &[f32],
    scales: &[f32],
    zero_points: &[Q],
    inner: usize,
    y: &mut [Q],
    threads: usize,
) -> Result<(), KernelError> {
    if x.len() != y.len() {
        return Err(invalid(format!("QuantizeLinear: {} values into {}", x.len(), y.len())));
    }
    check_channels("QuantizeLinear", x.len(), scales.len(), zero_points.len(), inner)?;
    let isa = Isa::detect();
    crate::parallel::for_unit_runs(y, x.len(), 1, PAR_MIN, threads, |first, part| {
        for_channel_runs(first, part.len(), inner, scales.len(), |ch, a, b| {
            quantize_run(isa, &x[a..b], scales[ch], zero_points[ch], &mut part[a - first..b - first])
        })
    });
    Ok(())
}

/// `y[i] = (q[i] - zero_point) as f32 * scale` (ONNX `DequantizeLinear`, one scale and zero
/// point). Fails when the lengths differ.
pub fn dequantize_linear<Q: QuantElem>(
    q: &[Q],
    scale: f32,
    zero_point: Q,
    y: &mut [f32],
    threads: usize,
) -> Result<(), KernelError> {
    if q.len() != y.len() {
        return Err(invalid(format!("DequantizeLinear: {} values into {}", q.len(), y.len())));
    }
    let isa = Isa::detect();
    crate::parallel::for_unit_runs(y, q.len(), 1, PAR_MIN, threads, |first, part| {
        dequantize_run(isa, &q[first..first + part.len()], scale, zero_point, part)
    });
    Ok(())
}

/// [`dequantize_linear`] with a scale and zero point per channel, laid out as in
/// [`quantize_linear_per_channel`]. Fails on inconsistent lengths.
pub fn dequantize_linear_per_channel<Q: QuantElem>(
    q: &[Q],
    scales: &[f32],
    zero_points: &[Q],
    inner: usize,
    y: &mut [f32],
    threads: usize,
) -> Result<(), KernelError> {
    if q.len() != y.len() {
        return Err(invalid(format!("DequantizeLinear: {} values into {}", q.len(), y.len())));
    }
    check_channels("DequantizeLinear", q.len(), scales.len(), zero_points.len(), inner)?;
    let isa = Isa::detect();
    crate::parallel::for_unit_runs(y, q.len(), 1, PAR_MIN, threads, |first, part| {
        for_channel_runs(first, part.len(), inner, scales.len(), |ch, a, b| {
            dequantize_run(isa, &q[a..b], scales[ch], zero_points[ch], &mut part[a - first..b - first])
        })
    });
    Ok(())
}

fn check_channels(op: &str, len: usize, scales: usize, zps: usize, inner: usize) -> Result<(), KernelError> {
    let block = scales.checked_mul(inner).unwrap_or(0);
    if scales != zps || block == 0 || !len.is_multiple_of(block) {
        return Err(invalid(format!("{op}: {scales} scales, {zps} zero points, inner size {inner} for {len} values")));
    }
    Ok(())
}

/// Call `f(channel, start, end)` for the runs of equal channel covering `first..first + len`.
#[inline]
fn for_channel_runs(first: usize, len: usize, inner: usize, channels: usize, mut f: impl FnMut(usize, usize, usize)) {
    let (mut a, end) = (first, first + len);
    while a < end {
        let row = a / inner;
        let b = ((row + 1) * inner).min(end);
        f(row % channels, a, b);
        a = b;
    }
}

fn quantize_run<Q: QuantElem>(isa: Isa, x: &[f32], scale: f32, zp: Q, y: &mut [Q]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only produced by `Isa::detect` after `is_x86_feature_detected!`
        // confirmed avx512f, avx2 and fma; the function body is safe code.
        Isa::Avx512 => unsafe { quantize_avx512(x, scale, zp, y) },
        Isa::Generic => quantize_slice_mul(x, scale, zp, y),
    }
}

fn dequantize_run<Q: QuantElem>(isa: Isa, q: &[Q], scale: f32, zp: Q, y: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `quantize_run`.
        Isa::Avx512 => unsafe { dequantize_avx512(q, scale, zp, y) },
        Isa::Generic => dequantize_slice(q, scale, zp, y),
    }
}

/// [`quantize_slice_mul`] compiled with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn quantize_avx512<Q: QuantElem>(x: &[f32], scale: f32, zp: Q, y: &mut [Q]) {
    quantize_slice_mul(x, scale, zp, y)
}

/// [`dequantize_slice`] compiled with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dequantize_avx512<Q: QuantElem>(q: &[Q], scale: f32, zp: Q, y: &mut [f32]) {
    dequantize_slice(q, scale, zp, y)
}

/// The quantization of each `x` into `y` (equal lengths).
///
/// Equal to `reference::quantize::quantize_value`: the quotient `t = x / scale`; NaN becomes
/// 0 (the reference's `NaN as i64`); `t` is clamped to `[MIN - zp, MAX - zp]` (integers, so
/// clamping before rounding equals saturating after, and ±inf land on the bounds); then it is
/// rounded half to even by adding 1.5·2²³ (exact for `|t| < 2²²`: the sum has ulp 1) and the
/// zero point is added in i32.
#[inline(always)]
fn quantize_slice<Q: QuantElem>(x: &[f32], scale: f32, zp: Q, y: &mut [Q]) {
    const MAGIC: f32 = 12_582_912.0;
    let zp = zp.to_i32();
    let (lo, hi) = ((Q::MIN - zp) as f32, (Q::MAX - zp) as f32);
    // Rounded integer plus the zero point, read from the bits of `t + MAGIC`.
    let offset = (MAGIC.to_bits() as i32).wrapping_sub(zp);
    for (o, &v) in y.iter_mut().zip(x) {
        let t = v / scale;
        let t = if t.is_nan() { 0.0 } else { t };
        let t = if t > lo { t } else { lo };
        let t = if t < hi { t } else { hi };
        *o = Q::from_i32((t + MAGIC).to_bits() as i32 - offset);
    }
}

/// [`quantize_slice`]'s results without its division per element: 16 values at a time are
/// quantized from `t' = x · (1 / scale)`, and the block is redone by [`quantize_slice`] when
/// any clamped `t'` is NaN or within `2.5·2⁻¹²` of a half-integer.
///
/// Why that is exact: for a normal `scale` whose reciprocal is normal, `t'` and the division's
/// `t = x / scale` (each rounded once, `1 / scale` once more) are within `3·2⁻²⁴·|x / scale|`
/// of each other, under `2⁻¹⁴` while `|t'| <= 256` (the clamp range; larger values saturate
/// alike). When no half-integer lies within `1.5·2⁻¹²` of `t'`, none lies between `t'` and
/// `t`, so both round (half to even, monotone) to the same integer, and clamping to integer
/// bounds commutes with rounding. `t' + 3072` (`1.5·2¹¹`, whose binade has ulp `2⁻¹²` for
/// `|t'| <= 1024`) puts `i = round(t'·2¹²)` in its low bits: the fraction is `i mod 2¹²` (near
/// a half-integer: 2047..=2050) and the rounded value `(i + 2¹¹) >> 12`. Other scales take the
/// division throughout. About one block in 64 is redone (4·2⁻¹² per value).
#[inline(always)]
fn quantize_slice_mul<Q: QuantElem>(x: &[f32], scale: f32, zp: Q, y: &mut [Q]) {
    const FRAC: f32 = 3072.0;
    const L: usize = 16;
    let inv = 1.0 / scale;
    if !(scale.is_normal() && inv.is_normal()) {
        return quantize_slice(x, scale, zp, y);
    }
    let zpi = zp.to_i32();
    let (lo, hi) = ((Q::MIN - zpi) as f32, (Q::MAX - zpi) as f32);
    let base = FRAC.to_bits() as i32;
    // `((i + 2¹¹) >> 12) + zp` as one shift (`zp·2¹²` is a multiple of the divisor).
    let round = 2048 + zpi * 4096;
    let (mut xc, mut yc) = (x.chunks_exact(L), y.chunks_exact_mut(L));
    for (xs, ys) in (&mut xc).zip(&mut yc) {
        let mut q = [0i32; L];
        let mut near = false;
        for (q, &v) in q.iter_mut().zip(xs) {
            let t = v * inv;
            // Clamps that keep a NaN (it sends the block to the division).
            let t = if lo > t { lo } else { t };
            let t = if hi < t { hi } else { t };
            let i = (t + FRAC).to_bits() as i32 - base;
            near |= t.is_nan() | (i.wrapping_sub(2047) & 0xffc == 0);
            *q = (i + round) >> 12;
        }
        if near {
            quantize_slice(xs, scale, zp, ys);
        } else {
            for (o, &q) in ys.iter_mut().zip(&q) {
                *o = Q::from_i32(q);
            }
        }
    }
    quantize_slice(xc.remainder(), scale, zp, yc.into_remainder());
}

/// `y = (q - zp) as f32 * scale` for each `q` (equal lengths).
#[inline(always)]
fn dequantize_slice<Q: QuantElem>(q: &[Q], scale: f32, zp: Q, y: &mut [f32]) {
    let zp = zp.to_i32();
    for (o, &v) in y.iter_mut().zip(q) {
        *o = (v.to_i32() - zp) as f32 * scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::quantize::quantize_value;

    #[test]
    fn portable_and_detected_builds_match_the_reference_on_special_values() {
        let specials = [
            0.0f32,
            -0.0,
            0.5,
            1.5,
            2.5,
            -0.5,
            -2.5,
            126.5,
            127.5,
            -128.5,
            254.5,
            255.5,
            1e30,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            1e-40,
            f32::MAX,
        ];
        for scale in [1.0f32, 0.1, -0.37, 1e-30, 1e30, 0.0, -0.0, f32::INFINITY, f32::NAN, 3.0e-39] {
            for isa in [Isa::Generic, Isa::detect()] {
                for zp in [0u8, 1, 128, 255] {
                    let mut y = vec![0u8; specials.len()];
                    quantize_run(isa, &specials, scale, zp, &mut y);
                    for (&x, &q) in specials.iter().zip(&y) {
                        assert_eq!(q as i64, quantize_value(x, scale, zp as i64, 0, 255), "{x} / {scale} zp {zp}");
                    }
                }
                for zp in [-128i8, -1, 0, 5, 127] {
                    let mut y = vec![0i8; specials.len()];
                    quantize_run(isa, &specials, scale, zp, &mut y);
                    for (&x, &q) in specials.iter().zip(&y) {
                        assert_eq!(q as i64, quantize_value(x, scale, zp as i64, -128, 127), "{x} / {scale} zp {zp}");
                    }
                }
            }
        }
    }

    #[test]
    fn multiply_and_check_equals_the_division_near_half_integers() {
        // Values within a few ulps of every halfway point of the quotient, and a pseudo-random
        // sweep, for scales of many magnitudes (the reciprocal rounds in either direction).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut scales = vec![0.1f32, 0.037, 1.0 / 3.0, 3.0, 1e-3, 7e-6, 123.456, 1e30, 1e-37, -0.0173];
        scales.extend((0..20).map(|_| f32::from_bits(0x3a00_0000 + (rnd() as u32 % 0x0600_0000))));
        for &scale in &scales {
            let mut x = Vec::new();
            for k in -300..300 {
                let h = (k as f32 + 0.5) * scale;
                for d in -6i32..=6 {
                    x.push(f32::from_bits((h.to_bits() as i32 + d) as u32));
                }
            }
            x.extend((0..4000).map(|_| f32::from_bits(rnd() as u32)));
            x.extend((0..4000).map(|_| (rnd() % 600_000) as f32 * 1e-3 * scale - 300.0 * scale));
            for isa in [Isa::Generic, Isa::detect()] {
                for zp in [0u8, 3, 128, 255] {
                    let (mut want, mut got) = (vec![0u8; x.len()], vec![0u8; x.len()]);
                    quantize_slice(&x, scale, zp, &mut want);
                    quantize_run(isa, &x, scale, zp, &mut got);
                    assert_eq!(got, want, "scale {scale} zp {zp}");
                }
                for zp in [-128i8, 0, 17, 127] {
                    let (mut want, mut got) = (vec![0i8; x.len()], vec![0i8; x.len()]);
                    quantize_slice(&x, scale, zp, &mut want);
                    quantize_run(isa, &x, scale, zp, &mut got);
                    assert_eq!(got, want, "scale {scale} zp {zp}");
                }
            }
        }
    }

    #[test]
    fn channel_runs_cover_each_index_once() {
        for (first, len, inner, channels) in [(0, 10, 3, 2), (5, 17, 4, 3), (7, 1, 1, 5), (0, 0, 2, 2)] {
            let mut seen = Vec::new();
            for_channel_runs(first, len, inner, channels, |ch, a, b| {
                for i in a..b {
                    assert_eq!(ch, (i / inner) % channels);
                    seen.push(i);
                }
            });
            assert_eq!(seen, (first..first + len).collect::<Vec<_>>());
        }
    }
}
