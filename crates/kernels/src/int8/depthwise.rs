//! Direct int8 depthwise conv, 3x3 and 5x5, stride 1 and 2 (`qu8s8_dwconv_{3x3,5x5}s{1,2}`).
//!
//! Each plane is copied once as `x - x_zp` (i16) into a zero-padded plane (the padding then
//! contributes exactly nothing, as padding with the zero point does), split into even/odd
//! column phases for stride 2, so every tap is a contiguous multiply-add of one padded row
//! into an i32 row of accumulators. The fused epilogue finishes each plane. The same code is
//! also compiled with AVX2 and chosen at run time (`LITHE_KERNELS=generic` forces the portable
//! build).

use super::conv::QConvGeometry;
use super::epilogue::{QuantEpilogue, QuantOut, Requant, check_scale, dequant, invalid};
use crate::KernelError;
use crate::fast::Isa;

/// Depthwise weights widened to i16, with per-channel scales.
#[derive(Clone, Debug)]
pub(crate) struct DwWeights {
    w: Vec<i16>,
    w_scale: Vec<f32>,
    k: usize,
}

impl DwWeights {
    pub(crate) fn new(w: &[i8], w_shape: [usize; 4], w_scale: &[f32]) -> Result<Self, KernelError> {
        let c = w_shape[0];
        let w_scale = if w_scale.len() == 1 { vec![w_scale[0]; c] } else { w_scale.to_vec() };
        if let Some(s) = w_scale.iter().find(|s| !s.is_finite()) {
            return Err(invalid(format!("weight scale {s} is not finite")));
        }
        Ok(DwWeights { w: w.iter().map(|&v| v as i16).collect(), w_scale, k: w_shape[2] })
    }
}

/// Whether the direct kernel handles weights `w_shape` with `geom` (groups = channels, 3x3 or
/// 5x5, strides 1 or 2 equal on both axes, no dilation, pads below the window).
pub(crate) fn depthwise_supported(w_shape: [usize; 4], geom: &QConvGeometry) -> bool {
    let [co, cig, kh, kw] = w_shape;
    co == geom.groups
        && cig == 1
        && kh == kw
        && (kh == 3 || kh == 5)
        && geom.strides[0] == geom.strides[1]
        && (geom.strides[0] == 1 || geom.strides[0] == 2)
        && geom.dilations == [1, 1]
        && geom.pads.iter().all(|&p| p < kh)
}

/// An output element type of the epilogue.
trait OutElem: Copy + Send + Sync {
    fn finish(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self;

    /// [`finish`](Self::finish) over a row, with the options resolved outside the loop so it
    /// vectorizes.
    #[inline(always)]
    fn finish_row(
        acc: &[i32],
        scale: f32,
        bias: f32,
        clamp: Option<(f32, f32)>,
        rq: Option<Requant>,
        out: &mut [Self],
    ) {
        match (clamp, rq) {
            (None, None) => row(acc, out, |a| Self::finish(a, scale, bias, None, None)),
            (Some(c), None) => row(acc, out, |a| Self::finish(a, scale, bias, Some(c), None)),
            (None, Some(r)) => row(acc, out, |a| Self::finish(a, scale, bias, None, Some(r))),
            (Some(c), Some(r)) => row(acc, out, |a| Self::finish(a, scale, bias, Some(c), Some(r))),
        }
    }
}

#[inline(always)]
fn row<T>(acc: &[i32], out: &mut [T], f: impl Fn(i32) -> T) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = f(a);
    }
}

impl OutElem for i32 {
    #[inline(always)]
    fn finish(acc: i32, _: f32, _: f32, _: Option<(f32, f32)>, _: Option<Requant>) -> Self {
        acc
    }
}

impl OutElem for f32 {
    #[inline(always)]
    fn finish(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, _: Option<Requant>) -> Self {
        dequant(acc, scale, bias, clamp)
    }
}

impl OutElem for u8 {
    #[inline(always)]
    fn finish(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self {
        rq.map_or(0, |rq| rq.apply(dequant(acc, scale, bias, clamp)) as u8)
    }
}

impl OutElem for i8 {
    #[inline(always)]
    fn finish(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self {
        rq.map_or(0, |rq| rq.apply(dequant(acc, scale, bias, clamp)) as i8)
    }
}

/// Everything the planes need, validated.
struct Job<'a> {
    x: &'a [u8],
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    k: usize,
    s: usize,
    pads: [usize; 2],
    zp: i16,
    wts: &'a [i16],
    scale: Vec<f32>,
    bias: Vec<f32>,
    bias_i32: Vec<i32>,
    clamp: Option<(f32, f32)>,
    rq: Option<Requant>,
}

/// Per-worker scratch.
#[derive(Default)]
struct Scratch {
    padded: Vec<i16>,
    phases: Vec<i16>,
    acc: Vec<i32>,
}

/// Run the depthwise conv (shapes checked by the caller: `x` is `[n, c, h, w]`, `out`
/// `[n, c, oh, ow]`, bias lengths `c`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_depthwise(
    dw: &DwWeights,
    geom: &QConvGeometry,
    x: &[u8],
    x_shape: [usize; 4],
    x_zero_point: u8,
    ep: &QuantEpilogue<'_>,
    out: QuantOut<'_>,
    [oh, ow]: [usize; 2],
    threads: usize,
) -> Result<(), KernelError> {
    check_scale("x_scale", ep.x_scale, false)?;
    let rq = out.kind().requant();
    if let Some(rq) = rq {
        check_scale("y_scale", rq.scale, true)?;
    }
    let [_, c, h, w] = x_shape;
    let job = Job {
        x,
        c,
        h,
        w,
        oh,
        ow,
        k: dw.k,
        s: geom.strides[0],
        pads: [geom.pads[0], geom.pads[1]],
        zp: x_zero_point as i16,
        wts: &dw.w,
        scale: dw.w_scale.iter().map(|&s| ep.x_scale * s).collect(),
        bias: ep.bias.map_or_else(|| vec![0.0; c], <[f32]>::to_vec),
        bias_i32: ep.bias_i32.map_or_else(|| vec![0; c], <[i32]>::to_vec),
        clamp: ep.activation.bounds(),
        rq,
    };
    match out {
        QuantOut::I32(d) => split(&job, d, threads),
        QuantOut::F32(d) => split(&job, d, threads),
        QuantOut::U8 { data, .. } => split(&job, data, threads),
        QuantOut::S8 { data, .. } => split(&job, data, threads),
    }
    Ok(())
}

/// Split the planes over `threads` workers (contiguous runs of planes).
fn split<T: OutElem>(job: &Job<'_>, out: &mut [T], threads: usize) {
    let ohw = job.oh * job.ow;
    let planes = out.len() / ohw.max(1);
    let isa = Isa::detect();
    crate::parallel::for_unit_runs(out, planes, ohw, 1, threads, |first, o| {
        run_planes(isa, job, first, o, &mut Scratch::default())
    });
}

fn run_planes<T: OutElem>(isa: Isa, job: &Job<'_>, first: usize, out: &mut [T], s: &mut Scratch) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            if avx512bw() {
                // SAFETY: `Isa::Avx512` is only produced by `Isa::detect` after
                // `is_x86_feature_detected!` confirmed avx512f, avx2 and fma, and `avx512bw()`
                // detected AVX-512BW; the body is safe code.
                unsafe { planes_avx512bw(job, first, out, s) }
            } else {
                // SAFETY: as above for avx2 and fma; the body is safe code.
                unsafe { planes_avx2(job, first, out, s) }
            }
        }
        Isa::Generic => planes(job, first, out, s),
    }
}

/// [`planes`] compiled with AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn planes_avx2<T: OutElem>(job: &Job<'_>, first: usize, out: &mut [T], s: &mut Scratch) {
    planes(job, first, out, s)
}

/// AVX-512BW (512-bit i16 arithmetic) on this CPU, detected once.
#[cfg(target_arch = "x86_64")]
fn avx512bw() -> bool {
    static BW: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BW.get_or_init(|| is_x86_feature_detected!("avx512bw"))
}

/// [`planes`] compiled with AVX-512F/BW.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
unsafe fn planes_avx512bw<T: OutElem>(job: &Job<'_>, first: usize, out: &mut [T], s: &mut Scratch) {
    planes(job, first, out, s)
}

/// Dispatch on the window and stride once per run of planes.
#[inline(always)]
fn planes<T: OutElem>(job: &Job<'_>, first: usize, out: &mut [T], s: &mut Scratch) {
    // Blocks of 32 outputs (two AVX-512 vectors of i32) on wide rows, 8 on narrow ones (7x7 and
    // 14x14 maps would waste most of a 32-wide block).
    match (job.k, job.s, job.ow >= 24) {
        (3, 1, true) => planes_k::<T, 3, 1, 32>(job, first, out, s),
        (3, 1, false) => planes_k::<T, 3, 1, 8>(job, first, out, s),
        (3, _, true) => planes_k::<T, 3, 2, 32>(job, first, out, s),
        (3, _, false) => planes_k::<T, 3, 2, 8>(job, first, out, s),
        (5, 1, true) => planes_k::<T, 5, 1, 32>(job, first, out, s),
        (5, 1, false) => planes_k::<T, 5, 1, 8>(job, first, out, s),
        (_, _, true) => planes_k::<T, 5, 2, 32>(job, first, out, s),
        (_, _, false) => planes_k::<T, 5, 2, 8>(job, first, out, s),
    }
}

/// Planes `first ..` into `out` (a whole number of output planes) for a `K x K` window at
/// stride `S`, `L` outputs per register block.
#[inline(always)]
fn planes_k<T: OutElem, const K: usize, const S: usize, const L: usize>(
    job: &Job<'_>,
    first: usize,
    out: &mut [T],
    s: &mut Scratch,
) {
    let (oh, ow) = (job.oh, job.ow);
    // Rows padded to whole blocks of L outputs (the extra outputs read zeros and are dropped).
    let owp = ow.div_ceil(L) * L;
    let (hp, wp) = ((oh - 1) * S + K, (owp - 1) * S + K);
    let (we, wo) = (wp.div_ceil(2), wp / 2);
    s.padded.resize(hp * wp, 0);
    s.acc.resize(oh * owp, 0);
    if S == 2 {
        s.phases.resize(hp * (we + wo), 0);
    }
    for (pi, o) in out.chunks_exact_mut(oh * ow).enumerate() {
        let plane = first + pi;
        let ch = plane % job.c;
        let x = &job.x[plane * job.h * job.w..][..job.h * job.w];
        // Zero-padded plane of x - zp.
        s.padded.fill(0);
        let (pt, pl) = (job.pads[0], job.pads[1]);
        for iy in 0..job.h.min(hp.saturating_sub(pt)) {
            let dst = &mut s.padded[(iy + pt) * wp + pl..(iy + pt + 1) * wp];
            let n = dst.len().min(job.w);
            for (d, &v) in dst[..n].iter_mut().zip(&x[iy * job.w..][..n]) {
                *d = v as i16 - job.zp;
            }
        }
        if S == 2 {
            let (ev, od) = s.phases.split_at_mut(hp * we);
            for r in 0..hp {
                let src = &s.padded[r * wp..][..wp];
                for (t, d) in ev[r * we..][..we].iter_mut().enumerate() {
                    *d = src[2 * t];
                }
                for (t, d) in od[r * wo..][..wo].iter_mut().enumerate() {
                    *d = src[2 * t + 1];
                }
            }
        }
        let wts: [i16; 25] = std::array::from_fn(|i| if i < K * K { job.wts[ch * K * K + i] } else { 0 });
        let init = job.bias_i32[ch];
        for oy in 0..oh {
            let acc_row = &mut s.acc[oy * owp..][..owp];
            for (blk, acc_out) in acc_row.chunks_exact_mut(L).enumerate() {
                let x0 = blk * L;
                let mut a = [init; L];
                for ky in 0..K {
                    let r = oy * S + ky;
                    for kx in 0..K {
                        let wv = wts[ky * K + kx];
                        let src: &[i16] = if S == 1 {
                            &s.padded[r * wp + kx + x0..][..L]
                        } else if kx % 2 == 0 {
                            &s.phases[r * we + kx / 2 + x0..][..L]
                        } else {
                            &s.phases[hp * we + r * wo + kx / 2 + x0..][..L]
                        };
                        // |(x - zp)·w| <= 255·128 fits i16, so the i16 product is exact.
                        for (al, &p) in a.iter_mut().zip(src) {
                            *al = al.wrapping_add(wv.wrapping_mul(p) as i32);
                        }
                    }
                }
                acc_out.copy_from_slice(&a);
            }
        }
        let (scale, bias) = (job.scale[ch], job.bias[ch]);
        for (orow, arow) in o.chunks_exact_mut(ow).zip(s.acc.chunks_exact(owp)) {
            T::finish_row(&arow[..ow], scale, bias, job.clamp, job.rq, orow);
        }
    }
}
