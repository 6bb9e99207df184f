//! The AVX-512 VNNI + VBMI depthwise kernel: u8 activations convolved as bytes, four taps of a
//! kernel row per `vpdpbusd`.
//!
//! Each input plane is copied as it is (u8, no zero point subtracted) into padded scratch whose
//! padding holds the zero point, laid out so that the whole output plane is one flat range of
//! indices `f = oy * rs + ox` (the `ow..rs` columns of each row are computed and dropped), as in
//! the f32 phase-plane core: for stride 1 the padded plane has row stride `rs`; for stride 2
//! its even and odd rows form two planes of row stride `2 * rs`, so output `f` reads bytes from
//! `2 * f` on. A block of 16 outputs then needs, per kernel row and group of four taps, one
//! 64-byte load and one `vpermb` that gathers `[x[i], x[i+1], x[i+2], x[i+3]]` (stride 1) or
//! `[x[2i] .. x[2i+3]]` (stride 2) into 32-bit lane `i`, and one `vpdpbusd` with the four
//! weights (zero past the kernel's width). The sums are exact i32 sums of `x·w`; the zero point
//! (which the padding also holds) is removed by starting every sum at
//! `bias_i32 - x_zp·Σw`, in wrapping i32 as the reference's accumulator. Blocks go by four:
//! quantized outputs leave as one register of 64 bytes (saturating packs), from which
//! `vpcompressb` drops the `ow..rs` columns before one store straight into the output; f32 and
//! i32 outputs go through a flat buffer copied out row by row.
//!
//! The epilogue reproduces the scalar one bit for bit: `acc as f32 · scale + bias` (multiply then
//! add), the activation clamp, and for quantized outputs `· (1 / y_scale)`, the output range
//! clamp, round half to even and the zero point. For quantized outputs the two clamps are one:
//! multiplying by a positive `1 / y_scale` is monotonic after rounding, so clamping before it to
//! `[lo, hi]` equals clamping after it to `[lo · inv, hi · inv]`, and two clamps to intersecting
//! intervals are one clamp to their intersection ([`Finish::new`] checks both conditions; the
//! caller uses another kernel when they fail).

use super::{Job, OutElem, OutTag};
use std::arch::x86_64::*;

/// Whether the running CPU has what this kernel needs (AVX-512F/BW, VBMI, VBMI2 and VNNI),
/// detected once.
pub(super) fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vbmi")
            && is_x86_feature_detected!("avx512vbmi2")
            && is_x86_feature_detected!("avx512vnni")
    })
}

/// Outputs per block (one register of i32 lanes).
const L: usize = 16;
/// Blocks computed together (their quantized bytes fill one register).
const NB: usize = 4;

/// The output conversion of every block, resolved once per call.
#[derive(Clone, Copy, Debug)]
pub(super) struct Finish {
    /// The activation bounds (f32 output).
    clamp: Option<(f32, f32)>,
    /// For quantized outputs: `1 / y_scale`, the merged clamp bounds of the scaled value and
    /// the zero point.
    q: Option<(f32, f32, f32, i32)>,
}

impl Finish {
    /// The conversion of `job`'s outputs, or `None` when this kernel cannot reproduce it
    /// exactly (NaN or reversed activation bounds, a negative output scale, or activation and
    /// output ranges that do not intersect).
    pub(super) fn new(job: &Job<'_>) -> Option<Finish> {
        if let Some((lo, hi)) = job.clamp
            && lo.partial_cmp(&hi).is_none_or(|o| o.is_gt())
        {
            return None;
        }
        let q = match job.rq {
            None => None,
            Some(rq) => {
                let inv = rq.inv_scale;
                if !(inv > 0.0 && inv.is_finite()) {
                    return None;
                }
                let (lo, hi) = match job.clamp {
                    Some((a, b)) => ((a * inv).max(rq.lo), (b * inv).min(rq.hi)),
                    None => (rq.lo, rq.hi),
                };
                if lo.partial_cmp(&hi).is_none_or(|o| o.is_gt()) {
                    return None;
                }
                Some((inv, lo, hi, rq.zp))
            }
        };
        Some(Finish { clamp: job.clamp, q })
    }
}

/// Per-worker scratch: two sets of padded input planes (one is filled while the other is
/// convolved), the flat result, and the geometry and zero point the padding was laid out for.
#[derive(Default)]
pub(super) struct Scratch {
    bufs: [Vec<u8>; 2],
    flat: Vec<u8>,
    /// Per group of `NB · L` flat outputs: which are outputs (`ox < ow`, `oy < oh`), and the
    /// output index of the first of them.
    groups: Vec<(u64, usize)>,
    key: [usize; 9],
}

/// Planes `first ..` of `job` into `out` (whole output planes), with the weights `wq` (per
/// channel, `K` rows of `(K + 3) / 4` dwords of four s8 taps) and per-channel weight sums.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW, AVX-512VBMI, AVX-512VBMI2 and AVX-512VNNI
/// ([`available`]).
pub(super) unsafe fn run<T: OutElem>(
    job: &Job<'_>,
    fin: &Finish,
    wq: &[i32],
    wsum: &[i32],
    first: usize,
    out: &mut [T],
    s: &mut Scratch,
) {
    // SAFETY: the caller guarantees the target features.
    unsafe {
        match (job.k, job.s) {
            (3, 1) => planes::<T, 3, 1, 1>(job, fin, wq, wsum, first, out, s),
            (3, _) => planes::<T, 3, 2, 1>(job, fin, wq, wsum, first, out, s),
            (_, 1) => planes::<T, 5, 1, 2>(job, fin, wq, wsum, first, out, s),
            _ => planes::<T, 5, 2, 2>(job, fin, wq, wsum, first, out, s),
        }
    }
}

/// Where one geometry puts things: output row stride `rs`, padded input row stride `wp`, rows
/// of padded input per plane, length of one input plane (the stride-2 case has two), and of
/// the flat result (a multiple of [`NB`]` · `[`L`]).
struct Layout {
    rs: usize,
    wp: usize,
    rows: usize,
    plane_len: usize,
    flat_len: usize,
}

impl Layout {
    fn new<const K: usize, const S: usize, const G: usize>(oh: usize, ow: usize) -> Layout {
        let reach = (K - 1) / S;
        let rs = ow + reach;
        let wp = S * rs;
        let rows = oh + reach;
        let flat_len = (oh * rs).div_ceil(NB * L) * NB * L;
        // The last block's loads: `S * f` for `f < flat_len`, plus the farthest tap row of its
        // plane, plus the farthest group, plus one register.
        let plane_len = S * flat_len + reach * wp + 4 * (G - 1) + 64;
        Layout { rs, wp, rows, plane_len, flat_len }
    }
}

/// The planes for a `K x K` window at stride `S`, `G` groups of four taps per kernel row.
///
/// # Safety
/// As [`run`].
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vbmi2,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn planes<T: OutElem, const K: usize, const S: usize, const G: usize>(
    job: &Job<'_>,
    fin: &Finish,
    wq: &[i32],
    wsum: &[i32],
    first: usize,
    out: &mut [T],
    s: &mut Scratch,
) {
    let (h, w, oh, ow) = (job.h, job.w, job.oh, job.ow);
    let lay = Layout::new::<K, S, G>(oh, ow);
    let zp = job.zp as u8;
    let key = [K, S, h, w, job.pads[0], job.pads[1], oh, ow, zp as usize];
    let elem = size_of::<T>();
    if s.key != key {
        // The padding holds the zero point at the same places for every plane of one geometry:
        // fill only when it changes; each plane then overwrites the pixels.
        s.key = key;
        for b in &mut s.bufs {
            b.clear();
            b.resize(S * lay.plane_len, zp);
        }
        s.flat.clear();
        s.flat.resize(lay.flat_len * elem, 0);
        s.groups.clear();
        let mut pos = 0;
        for g in 0..lay.flat_len / (NB * L) {
            let mut mask = 0u64;
            for l in 0..NB * L {
                let f = g * NB * L + l;
                if f < oh * lay.rs && f % lay.rs < ow {
                    mask |= 1 << l;
                }
            }
            s.groups.push((mask, pos));
            pos += mask.count_ones() as usize;
        }
    }
    // Byte offset of each (kernel row, group) from block `f`'s base `S * f`.
    let offsets: [[usize; G]; K] =
        std::array::from_fn(|ky| std::array::from_fn(|g| (ky % S) * lay.plane_len + (ky / S) * lay.wp + 4 * g));
    // Lane i gathers bytes S·i .. S·i + 3 of the register loaded at its block's base.
    let idx = _mm512_set_epi8(
        idx_byte::<S>(63),
        idx_byte::<S>(62),
        idx_byte::<S>(61),
        idx_byte::<S>(60),
        idx_byte::<S>(59),
        idx_byte::<S>(58),
        idx_byte::<S>(57),
        idx_byte::<S>(56),
        idx_byte::<S>(55),
        idx_byte::<S>(54),
        idx_byte::<S>(53),
        idx_byte::<S>(52),
        idx_byte::<S>(51),
        idx_byte::<S>(50),
        idx_byte::<S>(49),
        idx_byte::<S>(48),
        idx_byte::<S>(47),
        idx_byte::<S>(46),
        idx_byte::<S>(45),
        idx_byte::<S>(44),
        idx_byte::<S>(43),
        idx_byte::<S>(42),
        idx_byte::<S>(41),
        idx_byte::<S>(40),
        idx_byte::<S>(39),
        idx_byte::<S>(38),
        idx_byte::<S>(37),
        idx_byte::<S>(36),
        idx_byte::<S>(35),
        idx_byte::<S>(34),
        idx_byte::<S>(33),
        idx_byte::<S>(32),
        idx_byte::<S>(31),
        idx_byte::<S>(30),
        idx_byte::<S>(29),
        idx_byte::<S>(28),
        idx_byte::<S>(27),
        idx_byte::<S>(26),
        idx_byte::<S>(25),
        idx_byte::<S>(24),
        idx_byte::<S>(23),
        idx_byte::<S>(22),
        idx_byte::<S>(21),
        idx_byte::<S>(20),
        idx_byte::<S>(19),
        idx_byte::<S>(18),
        idx_byte::<S>(17),
        idx_byte::<S>(16),
        idx_byte::<S>(15),
        idx_byte::<S>(14),
        idx_byte::<S>(13),
        idx_byte::<S>(12),
        idx_byte::<S>(11),
        idx_byte::<S>(10),
        idx_byte::<S>(9),
        idx_byte::<S>(8),
        idx_byte::<S>(7),
        idx_byte::<S>(6),
        idx_byte::<S>(5),
        idx_byte::<S>(4),
        idx_byte::<S>(3),
        idx_byte::<S>(2),
        idx_byte::<S>(1),
        idx_byte::<S>(0),
    );
    let out_plane = oh * ow;
    let in_plane = h * w;
    let [b0, b1] = &mut s.bufs;
    let (mut cur, mut next) = (b0.as_mut_slice(), b1.as_mut_slice());
    let x = &job.x[first * in_plane..];
    let planes = out.len() / out_plane.max(1);
    if planes > 0 {
        fill::<S>(&x[..in_plane], job, &lay, cur);
    }
    let flat = s.flat.as_mut_ptr();
    let groups = &s.groups[..];
    let quantized = matches!(T::TAG, OutTag::U8 | OutTag::I8);
    // Dword `4j + k` of the packed bytes holds block `k`'s quad `j`: back to block order.
    let unpack = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    let out_len = out.len();
    let out_ptr = out.as_mut_ptr();
    let mut ch = first % job.c;
    for i in 0..planes {
        if i + 1 < planes {
            // The next plane goes in before this one is convolved, so the convolution's wide
            // loads never wait on the copy's masked stores (store forwarding fails on them).
            fill::<S>(&x[(i + 1) * in_plane..][..in_plane], job, &lay, next);
        }
        let wts: [[__m512i; G]; K] =
            std::array::from_fn(|ky| std::array::from_fn(|g| _mm512_set1_epi32(wq[(ch * K + ky) * G + g])));
        let init = _mm512_set1_epi32(job.bias_i32[ch].wrapping_sub((job.zp as i32).wrapping_mul(wsum[ch])));
        let ep = BlockFin::new(fin, job.scale[ch], job.bias[ch]);
        let base = cur.as_ptr();
        let plane_out = i * out_plane;
        for (gi, &(mask, pos)) in groups.iter().enumerate() {
            let f = gi * NB * L;
            let mut acc = [init; NB];
            for ky in 0..K {
                for g in 0..G {
                    for (b, a) in acc.iter_mut().enumerate() {
                        // SAFETY: `S * f' + offsets[ky][g] + 64 <= S * plane_len` for every
                        // block `f' < flat_len` (see `Layout::new`), the length of `cur`.
                        let v = unsafe { _mm512_loadu_si512(base.add(S * (f + b * L) + offsets[ky][g]).cast()) };
                        *a = _mm512_dpbusd_epi32(*a, _mm512_permutexvar_epi8(idx, v), wts[ky][g]);
                    }
                }
            }
            if quantized {
                // Four blocks of rounded values (in i16 range), saturating packs (exact: every
                // value plus the zero point is in the output range), the flat order restored,
                // the dropped columns squeezed out, and one store at the group's first output.
                let [a0, a1, a2, a3] = acc.map(|a| ep.rounded(a));
                let p01 = _mm512_add_epi16(_mm512_packs_epi32(a0, a1), ep.zp16);
                let p23 = _mm512_add_epi16(_mm512_packs_epi32(a2, a3), ep.zp16);
                let bytes =
                    if T::TAG == OutTag::U8 { _mm512_packus_epi16(p01, p23) } else { _mm512_packs_epi16(p01, p23) };
                let v = _mm512_maskz_compress_epi8(mask, _mm512_permutexvar_epi32(unpack, bytes));
                let at = plane_out + pos;
                // SAFETY: `at + count_ones(mask) <= out_len` (the group's outputs are in this
                // plane); the full store is used only when all 64 bytes are inside `out`, its
                // bytes past this group's are overwritten by the next groups and planes, which
                // are written later.
                unsafe {
                    let dst = out_ptr.add(at).cast::<u8>();
                    if at + NB * L <= out_len {
                        _mm512_storeu_si512(dst.cast(), v);
                    } else {
                        let m = (1u64 << mask.count_ones()) - 1;
                        _mm512_mask_storeu_epi8(dst.cast(), m, v);
                    }
                }
            } else {
                for (b, a) in acc.into_iter().enumerate() {
                    // SAFETY: `flat` holds `flat_len` elements of `T` and `f + NB · L <= flat_len`.
                    unsafe { ep.store::<T>(a, flat.add((f + b * L) * elem).cast()) };
                }
            }
        }
        if !quantized {
            for oy in 0..oh {
                // SAFETY: row `oy` of the flat result is `flat[oy * rs..][..ow]`, inside its
                // `flat_len >= oh * rs` elements; output row `oy` of plane `i` is inside `out`;
                // the buffers are distinct.
                unsafe {
                    let dst = out_ptr.add(plane_out + oy * ow).cast::<u8>();
                    copy_bytes(dst, flat.add(oy * lay.rs * elem), ow * elem)
                };
            }
        }
        std::mem::swap(&mut cur, &mut next);
        ch += 1;
        if ch == job.c {
            ch = 0;
        }
    }
}

/// Byte `j` of the `vpermb` index: lane `j / 4` reads byte `S · (j / 4) + j % 4`.
const fn idx_byte<const S: usize>(j: usize) -> i8 {
    (S * (j / 4) + j % 4) as i8
}

/// Copy one input plane into its padded layout (the padding already holds the zero point):
/// padded row `py = iy + top` goes to row `py` (stride 1) or to row `py / 2` of plane `py % 2`
/// (stride 2), from column `left` on.
#[inline(always)]
fn fill<const S: usize>(x: &[u8], job: &Job<'_>, lay: &Layout, buf: &mut [u8]) {
    let (pt, pl) = (job.pads[0], job.pads[1]);
    let n = job.w.min(lay.wp - pl);
    for (iy, src) in x.chunks_exact(job.w).enumerate() {
        let py = iy + pt;
        let r = py / S;
        if r >= lay.rows {
            break;
        }
        let dst = &mut buf[(py % S) * lay.plane_len + r * lay.wp + pl..][..n];
        // SAFETY: `dst` and `src` hold at least `n` bytes and do not overlap; the target
        // features are enabled in every caller (`planes` is the only one and inlines this).
        unsafe { copy_bytes(dst.as_mut_ptr(), src.as_ptr(), n) };
    }
}

/// Copy `n` bytes with 64-byte (masked at the tail) loads and stores.
///
/// # Safety
/// `src` must be valid for reads and `dst` for writes of `n` bytes; AVX-512BW must be enabled.
#[inline(always)]
unsafe fn copy_bytes(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    // SAFETY: every access is inside the first `n` bytes (the tail's are masked).
    unsafe {
        while i + 64 <= n {
            _mm512_storeu_si512(dst.add(i).cast(), _mm512_loadu_si512(src.add(i).cast()));
            i += 64;
        }
        if i < n {
            let m: __mmask64 = (1u64 << (n - i)) - 1;
            _mm512_mask_storeu_epi8(dst.add(i).cast(), m, _mm512_maskz_loadu_epi8(m, src.add(i).cast()));
        }
    }
}

/// The constants of one plane's epilogue, in registers.
struct BlockFin {
    scale: __m512,
    bias: __m512,
    clamp: Option<(__m512, __m512)>,
    /// `1 / y_scale`, merged bounds, zero point.
    q: (__m512, __m512, __m512, __m512i),
    /// The zero point as i16 lanes.
    zp16: __m512i,
}

impl BlockFin {
    #[inline(always)]
    fn new(fin: &Finish, scale: f32, bias: f32) -> BlockFin {
        // SAFETY: only called from `planes`, which enables AVX-512F.
        unsafe {
            let (inv, lo, hi, zp) = fin.q.unwrap_or((1.0, 0.0, 0.0, 0));
            BlockFin {
                scale: _mm512_set1_ps(scale),
                bias: _mm512_set1_ps(bias),
                clamp: fin.clamp.map(|(a, b)| (_mm512_set1_ps(a), _mm512_set1_ps(b))),
                q: (_mm512_set1_ps(inv), _mm512_set1_ps(lo), _mm512_set1_ps(hi), _mm512_set1_epi32(zp)),
                zp16: _mm512_set1_epi16(zp as i16),
            }
        }
    }

    /// The quantized values of the 16 accumulators `acc` before the zero point is added:
    /// `round_half_even(clamp(y · inv))`, within ±255.
    #[inline(always)]
    fn rounded(&self, acc: __m512i) -> __m512i {
        // SAFETY: only called from `planes`, which enables AVX-512F.
        unsafe {
            let y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), self.scale), self.bias);
            let (inv, lo, hi, _) = self.q;
            let t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y, inv), lo), hi);
            _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t)
        }
    }

    /// Finish the 16 accumulators `acc` into `dst` as `T` ([`OutElem::finish`] of each).
    ///
    /// # Safety
    /// `dst` must be valid for writes of 16 `T`; AVX-512F/BW must be enabled.
    #[inline(always)]
    unsafe fn store<T: OutElem>(&self, acc: __m512i, dst: *mut T) {
        // SAFETY: the caller guarantees `dst` and the features.
        unsafe {
            if T::TAG == OutTag::I32 {
                _mm512_storeu_si512(dst.cast(), acc);
                return;
            }
            // `acc as f32 · scale + bias`: multiply then add, never fused.
            let y = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), self.scale), self.bias);
            if T::TAG == OutTag::F32 {
                // `maxps(y, lo)` is `lo` for a NaN `y`, as `f32::max`.
                let y = match self.clamp {
                    Some((lo, hi)) => _mm512_min_ps(_mm512_max_ps(y, lo), hi),
                    None => y,
                };
                _mm512_storeu_ps(dst.cast(), y);
                return;
            }
            let (inv, lo, hi, zp) = self.q;
            let t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(y, inv), lo), hi);
            // Round half to even (the default rounding mode) of a value within ±255.
            let q =
                _mm512_add_epi32(_mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t), zp);
            _mm_storeu_si128(dst.cast(), _mm512_cvtepi32_epi8(q));
        }
    }
}
