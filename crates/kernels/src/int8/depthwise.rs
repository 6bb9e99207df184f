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
use rayon::prelude::*;

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
    if threads <= 1 || planes < 2 {
        run_planes(isa, job, 0, out, &mut Scratch::default());
        return;
    }
    let per = planes.div_ceil(threads.min(planes));
    out.par_chunks_mut(per * ohw)
        .enumerate()
        .for_each(|(i, o)| run_planes(isa, job, i * per, o, &mut Scratch::default()));
}

fn run_planes<T: OutElem>(isa: Isa, job: &Job<'_>, first: usize, out: &mut [T], s: &mut Scratch) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `Isa::Avx512` is only produced by `Isa::detect` after
            // `is_x86_feature_detected!` confirmed avx512f, avx2 and fma; the body is safe code,
            // so enabling AVX2 is the only obligation.
            unsafe { planes_avx2(job, first, out, s) }
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

/// Planes `first ..` into `out` (a whole number of output planes).
#[inline(always)]
fn planes<T: OutElem>(job: &Job<'_>, first: usize, out: &mut [T], s: &mut Scratch) {
    let (k, st, oh, ow) = (job.k, job.s, job.oh, job.ow);
    let (hp, wp) = ((oh - 1) * st + k, (ow - 1) * st + k);
    let (we, wo) = (wp.div_ceil(2), wp / 2);
    s.padded.resize(hp * wp, 0);
    s.acc.resize(oh * ow, 0);
    if st == 2 {
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
        if st == 2 {
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
        let wts = &job.wts[ch * k * k..][..k * k];
        let init = job.bias_i32[ch];
        for oy in 0..oh {
            let acc = &mut s.acc[oy * ow..][..ow];
            acc.fill(init);
            for ky in 0..k {
                let r = oy * st + ky;
                for kx in 0..k {
                    let wv = wts[ky * k + kx] as i32;
                    let src = if st == 1 {
                        &s.padded[r * wp + kx..][..ow]
                    } else if kx % 2 == 0 {
                        &s.phases[r * we + kx / 2..][..ow]
                    } else {
                        &s.phases[hp * we + r * wo + kx / 2..][..ow]
                    };
                    for (a, &p) in acc.iter_mut().zip(src) {
                        *a = a.wrapping_add(wv * p as i32);
                    }
                }
            }
        }
        let (scale, bias) = (job.scale[ch], job.bias[ch]);
        match (job.clamp, job.rq) {
            (None, None) => finish_plane(&s.acc, o, |a| T::finish(a, scale, bias, None, None)),
            (clamp, rq) => finish_plane(&s.acc, o, |a| T::finish(a, scale, bias, clamp, rq)),
        }
    }
}

#[inline(always)]
fn finish_plane<T>(acc: &[i32], out: &mut [T], f: impl Fn(i32) -> T) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = f(a);
    }
}
