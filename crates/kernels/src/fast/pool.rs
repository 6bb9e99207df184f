//! NCHW f32 pooling: max and average over 2x2 and 3x3 windows with stride 2 (floor output size,
//! dilation 1, per-side padding below the window size), and global average pooling; max pooling
//! of u8 values (quantized activations: max commutes with a monotonic quantization) too.
//!
//! Like the depthwise kernels, each plane is copied into a padded scratch plane (padding is
//! -inf for max, 0 for average) so every window is read without bounds checks; average
//! divisors come from per-row and per-column counts of taps inside the input (or the full
//! window with `count_include_pad`, since floor mode never reaches past the end padding).
//! Max follows the reference: NaN propagates.

use super::Isa;
use super::depthwise::DwPads;
use crate::KernelError;

const OP: &str = "Pool";

/// Geometry of a 2-D pool: `kernel x kernel` window (2 or 3), stride 2, explicit padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Window size (2 or 3).
    pub kernel: usize,
    /// Stride (2).
    pub stride: usize,
    /// Explicit padding (each side below `kernel`).
    pub pads: DwPads,
}

impl PoolParams {
    /// True when [`f32_maxpool2d`] and [`f32_avgpool2d`] handle this geometry (with floor
    /// output size, no ceil mode, dilation 1).
    pub fn supported(&self) -> bool {
        let p = &self.pads;
        (self.kernel == 2 || self.kernel == 3)
            && self.stride == 2
            && [p.top, p.left, p.bottom, p.right].iter().all(|&v| v < self.kernel)
    }

    /// Output height and width for an `h x w` input, or an error when the window does not fit.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize), KernelError> {
        let p = &self.pads;
        let padded = |len: usize, a: usize, b: usize| len.checked_add(a).and_then(|v| v.checked_add(b));
        let (Some(ph), Some(pw)) = (padded(h, p.top, p.bottom), padded(w, p.left, p.right)) else {
            return Err(invalid(format!("padded size of the {h}x{w} input overflows")));
        };
        if self.stride == 0 || ph < self.kernel || pw < self.kernel {
            return Err(invalid(format!(
                "a {0}x{0} window does not fit the {h}x{w} input with pads {p:?}",
                self.kernel
            )));
        }
        Ok(((ph - self.kernel) / self.stride + 1, (pw - self.kernel) / self.stride + 1))
    }
}

/// Max pooling of `x` (`n x c x h x w`) into `out` (`n x c x oh x ow`). A window entirely in
/// the padding gives -inf (as the reference).
pub fn f32_maxpool2d(
    x: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: &PoolParams,
    out: &mut [f32],
) -> Result<(), KernelError> {
    pool2d(x, n, c, h, w, params, out, Mode::Max)
}

/// Max pooling of u8 values (quantized activations) `x` (`n x c x h x w`) into `out`
/// (`n x c x oh x ow`), with the geometries of [`f32_maxpool2d`]. A window entirely in the
/// padding gives 0 (what quantizing the f32 kernel's -inf gives).
pub fn u8_maxpool2d(
    x: &[u8],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: &PoolParams,
    out: &mut [u8],
) -> Result<(), KernelError> {
    pool2d(x, n, c, h, w, params, out, Mode::Max)
}

/// An element max pooling runs on: its padding value and its two-operand maximum.
trait PoolElem: Copy + Default {
    /// The value of padded taps for max pooling (never larger than a real value).
    const MAX_PAD: Self;
    /// The larger of `a` and `b` (for f32, NaN propagates as in the reference).
    fn max2(a: Self, b: Self) -> Self;
    /// Max pool one padded plane (as [`max_plane`]) with a SIMD kernel for this element type
    /// when the CPU has one; false (nothing written) otherwise.
    fn max_plane_simd(_padded: &[Self], _rs: usize, _k: usize, _ow: usize, _out: &mut [Self]) -> bool {
        false
    }
}

impl PoolElem for f32 {
    const MAX_PAD: f32 = f32::NEG_INFINITY;
    #[inline(always)]
    fn max2(a: f32, b: f32) -> f32 {
        nan_max(a, b)
    }
}

impl PoolElem for u8 {
    const MAX_PAD: u8 = 0;
    #[inline(always)]
    fn max2(a: u8, b: u8) -> u8 {
        a.max(b)
    }
    fn max_plane_simd(padded: &[u8], rs: usize, k: usize, ow: usize, out: &mut [u8]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if u8_avx512bw() {
            // SAFETY: `u8_avx512bw` confirmed AVX-512F/BW/VL; the plane sizes are the ones
            // `pool2d` checked (`padded` holds `2·oh + k - 1` rows of `rs >= 2·ow + k - 1`).
            unsafe { u8_max_plane_avx512bw(padded, rs, k, ow, out) };
            return true;
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (padded, rs, k, ow, out); // no SIMD plane kernel on this architecture
        false
    }
}

/// Whether the u8 max pool runs its AVX-512BW kernel (detected once; not with
/// `LITHE_KERNELS=generic`).
#[cfg(target_arch = "x86_64")]
fn u8_avx512bw() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        !crate::force_generic()
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
    })
}

/// [`max_plane`] for u8 on AVX-512BW, 32 outputs at a time: the vertical maximum of the `k`
/// rows over the 64 input bytes of the 32 windows, read as 16-bit words (even column in the
/// low byte, odd in the high byte), the two halves' maximum, for 3x3 the next even column
/// (the same at a 2-byte offset), narrowed back to bytes. Edges use masked loads and stores.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and AVX-512VL; `padded` holds at least
/// `2·oh + k - 1` rows of `rs >= 2·ow + k - 1` bytes for the `oh = out.len() / ow` output rows;
/// `k` is 2 or 3.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn u8_max_plane_avx512bw(padded: &[u8], rs: usize, k: usize, ow: usize, out: &mut [u8]) {
    use std::arch::x86_64::*;
    let low = _mm512_set1_epi16(0x00ff);
    let bytes = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    for (oy, orow) in out.chunks_exact_mut(ow).enumerate() {
        let rows = &padded[2 * oy * rs..(2 * oy + k) * rs];
        // The vertical maximum of the `k` rows over bytes `at..at + n` (`at + n <= rs`).
        let vmax = |at: usize, n: usize| {
            let m = bytes(n);
            // SAFETY: row `ky < k` of `rows` spans `ky·rs..(ky + 1)·rs` and `at + n <= rs`;
            // masked-off bytes are not read.
            unsafe {
                let mut v = _mm512_maskz_loadu_epi8(m, rows.as_ptr().add(at).cast());
                for ky in 1..k {
                    v = _mm512_max_epu8(v, _mm512_maskz_loadu_epi8(m, rows.as_ptr().add(ky * rs + at).cast()));
                }
                v
            }
        };
        let mut ox = 0;
        while ox < ow {
            let cnt = (ow - ox).min(32);
            let v = vmax(2 * ox, 2 * cnt);
            let mut r = _mm512_max_epu16(_mm512_and_si512(v, low), _mm512_srli_epi16::<8>(v));
            if k == 3 {
                // Even columns 2·ox + 2.. (bytes up to 2·ow + 2 <= rs).
                r = _mm512_max_epu16(r, _mm512_and_si512(vmax(2 * ox + 2, 2 * cnt), low));
            }
            // SAFETY: `ox + cnt <= ow = orow.len()`; masked-off bytes are not written.
            unsafe {
                _mm256_mask_storeu_epi8(orow.as_mut_ptr().add(ox).cast(), bytes(cnt) as u32, _mm512_cvtepi16_epi8(r))
            };
            ox += cnt;
        }
    }
}

/// The window sum of average pooling (only f32 averages).
trait PoolAvg: PoolElem {
    /// Average of a `k x k` window, `None` when the element type has no average pooling.
    fn avg(rows: &[&[Self]], ox: usize, k: usize, div: usize) -> Option<Self>;
}

impl PoolAvg for f32 {
    #[inline(always)]
    fn avg(rows: &[&[f32]], ox: usize, k: usize, div: usize) -> Option<f32> {
        let sum: f32 = rows.iter().map(|r| r[ox * 2..ox * 2 + k].iter().sum::<f32>()).sum();
        Some(if div == 0 { f32::NAN } else { sum / div as f32 })
    }
}

impl PoolAvg for u8 {
    fn avg(_: &[&[u8]], _: usize, _: usize, _: usize) -> Option<u8> {
        None
    }
}

/// Average pooling of `x` (`n x c x h x w`) into `out` (`n x c x oh x ow`). The divisor is the
/// window size with `count_include_pad`, else the number of taps inside the input.
#[allow(clippy::too_many_arguments)]
pub fn f32_avgpool2d(
    x: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: &PoolParams,
    count_include_pad: bool,
    out: &mut [f32],
) -> Result<(), KernelError> {
    pool2d(x, n, c, h, w, params, out, Mode::Avg { count_include_pad })
}

/// Mean of each of the `planes` planes of `plane_size` elements of `x` into `out` (`planes`
/// values). Sums in f32 with 16 independent partial sums.
pub fn f32_global_avgpool(x: &[f32], planes: usize, plane_size: usize, out: &mut [f32]) -> Result<(), KernelError> {
    let total = planes.checked_mul(plane_size).ok_or_else(|| invalid("planes x plane size overflows".into()))?;
    check_len("input x", x.len(), total)?;
    check_len("output", out.len(), planes)?;
    if plane_size == 0 {
        out.fill(f32::NAN);
        return Ok(());
    }
    for (o, plane) in out.iter_mut().zip(x.chunks_exact(plane_size)) {
        let mut acc = [0f32; 16];
        let mut chunks = plane.chunks_exact(16);
        for ch in &mut chunks {
            for l in 0..16 {
                acc[l] += ch[l];
            }
        }
        let rest: f32 = chunks.remainder().iter().sum();
        *o = (acc.iter().sum::<f32>() + rest) / plane_size as f32;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Mode {
    Max,
    Avg { count_include_pad: bool },
}

#[allow(clippy::too_many_arguments)]
fn pool2d<T: PoolAvg>(
    x: &[T],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: &PoolParams,
    out: &mut [T],
    mode: Mode,
) -> Result<(), KernelError> {
    if !params.supported() {
        return Err(KernelError::Unsupported {
            op: OP,
            detail: format!("{params:?}: only 2x2/3x3 windows, stride 2, pads < window"),
        });
    }
    let (oh, ow) = params.output_size(h, w)?;
    let overflow = || invalid("sizes overflow".into());
    let planes = n.checked_mul(c).ok_or_else(overflow)?;
    let in_plane = h.checked_mul(w).ok_or_else(overflow)?;
    let out_plane = oh * ow;
    check_len("input x", x.len(), planes.checked_mul(in_plane).ok_or_else(overflow)?)?;
    check_len("output", out.len(), planes.checked_mul(out_plane).ok_or_else(overflow)?)?;
    if planes == 0 {
        return Ok(());
    }
    let (k, p) = (params.kernel, params.pads);
    let (s, rs) = (2, (2 * ow + k - 1).max(p.left + w));
    let rows_total = (2 * oh + k - 1).max(p.top + h);
    let fill = if matches!(mode, Mode::Max) { T::MAX_PAD } else { T::default() };
    let mut padded = vec![fill; rows_total * rs];
    // Taps inside the input per output row / column (for the average without padding).
    let inside = |o: usize, pad: usize, len: usize| {
        (0..k).filter(|&t| (o * s + t).checked_sub(pad).is_some_and(|i| i < len)).count()
    };
    let row_in: Vec<usize> = (0..oh).map(|o| inside(o, p.top, h)).collect();
    let col_in: Vec<usize> = (0..ow).map(|o| inside(o, p.left, w)).collect();
    // Max pooling: the vertical maximum of one output row's padded rows, split into its even
    // and odd columns.
    let mut rowmax = vec![T::default(); rs];
    let mut halves = vec![T::default(); 2 * rs.div_ceil(2)];
    for (src, dst) in x.chunks_exact(in_plane).zip(out.chunks_exact_mut(out_plane)) {
        for (r, dr) in src.chunks_exact(w).zip(padded[p.top * rs..].chunks_exact_mut(rs)) {
            dr[p.left..p.left + w].copy_from_slice(r);
        }
        if let Mode::Max = mode {
            if T::max_plane_simd(&padded, rs, k, ow, dst) {
                continue;
            }
            match Isa::detect() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx512` is only returned after detecting AVX-512F, AVX2 and FMA;
                // the function body is safe code.
                Isa::Avx512 => unsafe { max_plane_avx512(&padded, rs, k, ow, &mut rowmax, &mut halves, dst) },
                Isa::Generic => max_plane(&padded, rs, k, ow, &mut rowmax, &mut halves, dst),
            }
            continue;
        }
        for (oy, orow) in dst.chunks_exact_mut(ow).enumerate() {
            let rows: Vec<&[T]> = (0..k).map(|ky| &padded[(oy * s + ky) * rs..(oy * s + ky + 1) * rs]).collect();
            if let Mode::Avg { count_include_pad } = mode {
                for (ox, o) in orow.iter_mut().enumerate() {
                    let div = if count_include_pad { k * k } else { row_in[oy] * col_in[ox] };
                    *o = T::avg(&rows, ox, k, div).ok_or_else(|| KernelError::Unsupported {
                        op: OP,
                        detail: "average pooling of integer values".into(),
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// `max(a, b)`, NaN when either is NaN (the reference's propagation), branch-free.
#[inline(always)]
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() { f32::NAN } else { a.max(b) }
}

/// One plane of a `k x k` (2 or 3) stride-2 max pool from its padded copy (`rs` columns per
/// row), separably: for each output row the maximum of its `k` padded rows (unit stride,
/// vectorized), split into even and odd columns so the horizontal window maximum of output
/// column `ox` is `max(even[ox], odd[ox][, even[ox + 1]])`, again unit stride.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn max_plane<T: PoolElem>(
    padded: &[T],
    rs: usize,
    k: usize,
    ow: usize,
    rowmax: &mut [T],
    halves: &mut [T],
    out: &mut [T],
) {
    let half = rs.div_ceil(2);
    let (even, odd) = halves.split_at_mut(half);
    let vmax = &mut rowmax[..rs];
    for (oy, orow) in out.chunks_exact_mut(ow).enumerate() {
        vmax.copy_from_slice(&padded[2 * oy * rs..(2 * oy + 1) * rs]);
        for ky in 1..k {
            let r = &padded[(2 * oy + ky) * rs..(2 * oy + ky + 1) * rs];
            for (m, &v) in vmax.iter_mut().zip(r) {
                *m = T::max2(*m, v);
            }
        }
        for ((pair, e), o) in vmax.chunks_exact(2).zip(even.iter_mut()).zip(odd.iter_mut()) {
            *e = pair[0];
            *o = pair[1];
        }
        if rs % 2 == 1 {
            even[half - 1] = vmax[rs - 1];
        }
        if k == 2 {
            for ((m, &e), &o) in orow.iter_mut().zip(&even[..ow]).zip(&odd[..ow]) {
                *m = T::max2(e, o);
            }
        } else {
            for (((m, &e), &o), &e1) in orow.iter_mut().zip(&even[..ow]).zip(&odd[..ow]).zip(&even[1..=ow]) {
                *m = T::max2(T::max2(e, o), e1);
            }
        }
    }
}

/// [`max_plane`] compiled with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn max_plane_avx512<T: PoolElem>(
    padded: &[T],
    rs: usize,
    k: usize,
    ow: usize,
    rowmax: &mut [T],
    halves: &mut [T],
    out: &mut [T],
) {
    max_plane(padded, rs, k, ow, rowmax, halves, out)
}

fn check_len(what: &str, got: usize, want: usize) -> Result<(), KernelError> {
    if got == want { Ok(()) } else { Err(invalid(format!("{what} has {got} elements, expected {want}"))) }
}

fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: OP, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_simd_plane_equals_the_portable_plane() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut byte = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for k in [2usize, 3] {
            for ow in [1usize, 2, 15, 31, 32, 33, 56, 64, 65, 100] {
                for extra in 0..2 {
                    let (oh, rs) = (3, 2 * ow + k - 1 + extra);
                    let padded: Vec<u8> = (0..(2 * oh + k - 1) * rs).map(|_| byte()).collect();
                    let mut want = vec![0u8; oh * ow];
                    let (mut rowmax, mut halves) = (vec![0u8; rs], vec![0u8; 2 * rs.div_ceil(2)]);
                    max_plane(&padded, rs, k, ow, &mut rowmax, &mut halves, &mut want);
                    let mut got = vec![0u8; oh * ow];
                    if u8::max_plane_simd(&padded, rs, k, ow, &mut got) {
                        assert_eq!(got, want, "k {k} ow {ow} rs {rs}");
                    }
                }
            }
        }
    }
}
