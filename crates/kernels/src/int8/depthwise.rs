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
use crate::fast::depthwise::{DwJob, DwPads, Geom, Kind, L, Scratch as PhaseScratch, run_planes as run_phase_planes};
use crate::short_rows::copy_short;
use std::marker::PhantomData;

#[cfg(target_arch = "x86_64")]
mod vnni;

/// Depthwise weights widened to i16, with per-channel scales.
#[derive(Clone, Debug)]
pub(crate) struct DwWeights {
    w: Vec<i16>,
    /// The same weights as f32 (integers, exact) for the phase-plane kernel.
    wf: Vec<f32>,
    /// Per channel, `k` rows of `(k + 3) / 4` dwords of four s8 taps (zero past the row's
    /// end), for the VNNI kernel.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 kernels only
    wq: Vec<i32>,
    /// Per channel, the sum of its weights.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 kernels only
    wsum: Vec<i32>,
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
        let k = w_shape[2];
        let groups = k.div_ceil(4);
        let mut wq = Vec::with_capacity(c * k * groups);
        for row in w.chunks_exact(k.max(1)) {
            for g in 0..groups {
                let b: [u8; 4] = std::array::from_fn(|t| row.get(4 * g + t).map_or(0, |&v| v as u8));
                wq.push(i32::from_le_bytes(b));
            }
        }
        let wsum = w.chunks_exact((k * k).max(1)).map(|ch| ch.iter().map(|&v| v as i32).sum()).collect();
        Ok(DwWeights {
            w: w.iter().map(|&v| v as i16).collect(),
            wf: w.iter().map(|&v| v as f32).collect(),
            wq,
            wsum,
            w_scale,
            k,
        })
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

/// The output element types, as a value the SIMD kernels can branch on at compile time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 kernels only
enum OutTag {
    I32,
    F32,
    U8,
    I8,
}

/// An output element type of the epilogue.
trait OutElem: Copy + Default + Send + Sync {
    /// Which type this is.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 kernels only
    const TAG: OutTag;

    fn finish(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self;

    /// [`finish`](Self::finish) of an accumulator held exactly as an f32 integer below 2²⁴ in
    /// magnitude (so `acc as i32 as f32 == acc` and the f32 arithmetic starts from the same value).
    fn finish_exact(acc: f32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self;

    /// A block of phase-plane sums (exact integers, see [`PhaseJob`]) finished with the plane's
    /// constants; the options are resolved outside the lane loop so it vectorizes.
    #[inline(always)]
    fn finish_block(acc: &[f32; L], q: &PlaneFin, out: &mut [Self]) {
        let (scale, bias) = (q.scale, q.bias);
        if q.slow {
            // A bias_i32 too large to start the f32 sums: add it in i32 (wrapping, as every
            // path); or NaN activation bounds: the scalar definition as it is.
            for (o, &a) in out.iter_mut().zip(acc) {
                *o = Self::finish((a as i32).wrapping_add(q.extra), scale, bias, q.clamp, q.rq);
            }
            return;
        }
        match (q.clamp, q.rq) {
            (None, None) => block(acc, out, |a| Self::finish_exact(a, scale, bias, None, None)),
            (Some(c), None) => block(acc, out, |a| Self::finish_exact(a, scale, bias, Some(c), None)),
            (None, Some(r)) => block(acc, out, |a| Self::finish_exact(a, scale, bias, None, Some(r))),
            (Some(c), Some(r)) => block(acc, out, |a| Self::finish_exact(a, scale, bias, Some(c), Some(r))),
        }
    }

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
fn block<T>(acc: &[f32; L], out: &mut [T], f: impl Fn(f32) -> T) {
    if let Some(o) = out.first_chunk_mut::<L>() {
        for l in 0..L {
            o[l] = f(acc[l]);
        }
    }
}

#[inline(always)]
fn row<T>(acc: &[i32], out: &mut [T], f: impl Fn(i32) -> T) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = f(a);
    }
}

/// [`dequant`] of an accumulator that is an exact f32 integer below 2²⁴ in magnitude (then
/// `acc as i32 as f32 == acc`, so this is the same multiply and add on the same values), for
/// clamp bounds that are not NaN: then `y.max(lo).min(hi)` is [`max_of`] and [`min_of`], one
/// instruction each where `f32::max` needs three to return the other operand of a NaN.
#[inline(always)]
fn dequant_exact(acc: f32, scale: f32, bias: f32, clamp: Option<(f32, f32)>) -> f32 {
    let y = acc * scale + bias;
    match clamp {
        Some((lo, hi)) => min_of(max_of(y, lo), hi),
        None => y,
    }
}

/// `v.max(b)` for a `b` that is not NaN (a NaN `v` gives `b`, as `f32::max`); `maxps`.
#[inline(always)]
fn max_of(v: f32, b: f32) -> f32 {
    if v > b { v } else { b }
}

/// `v.min(b)` for a `b` that is not NaN (a NaN `v` gives `b`, as `f32::min`); `minps`.
#[inline(always)]
fn min_of(v: f32, b: f32) -> f32 {
    if v < b { v } else { b }
}

/// [`Requant::apply`] with [`max_of`] and [`min_of`] (its bounds are finite integers).
#[inline(always)]
fn requant_exact(rq: Requant, y: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    let t = min_of(max_of(y * rq.inv_scale, rq.lo), rq.hi);
    ((t + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) + rq.zp
}

impl OutElem for i32 {
    const TAG: OutTag = OutTag::I32;

    #[inline(always)]
    fn finish(acc: i32, _: f32, _: f32, _: Option<(f32, f32)>, _: Option<Requant>) -> Self {
        acc
    }

    #[inline(always)]
    fn finish_exact(acc: f32, _: f32, _: f32, _: Option<(f32, f32)>, _: Option<Requant>) -> Self {
        acc as i32
    }
}

impl OutElem for f32 {
    const TAG: OutTag = OutTag::F32;

    #[inline(always)]
    fn finish(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, _: Option<Requant>) -> Self {
        dequant(acc, scale, bias, clamp)
    }

    #[inline(always)]
    fn finish_exact(acc: f32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, _: Option<Requant>) -> Self {
        dequant_exact(acc, scale, bias, clamp)
    }
}

impl OutElem for u8 {
    const TAG: OutTag = OutTag::U8;

    #[inline(always)]
    fn finish(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self {
        rq.map_or(0, |rq| rq.apply(dequant(acc, scale, bias, clamp)) as u8)
    }

    #[inline(always)]
    fn finish_exact(acc: f32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self {
        rq.map_or(0, |rq| requant_exact(rq, dequant_exact(acc, scale, bias, clamp)) as u8)
    }
}

impl OutElem for i8 {
    const TAG: OutTag = OutTag::I8;

    #[inline(always)]
    fn finish(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self {
        rq.map_or(0, |rq| rq.apply(dequant(acc, scale, bias, clamp)) as i8)
    }

    #[inline(always)]
    fn finish_exact(acc: f32, scale: f32, bias: f32, clamp: Option<(f32, f32)>, rq: Option<Requant>) -> Self {
        rq.map_or(0, |rq| requant_exact(rq, dequant_exact(acc, scale, bias, clamp)) as i8)
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
    let isa = Isa::detect();
    run_depthwise_with(isa, path_chosen(isa), dw, geom, x, x_shape, x_zero_point, ep, out, [oh, ow], threads)
}

/// The kernels of this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// The i16 row kernel (portable, also built for AVX2 and AVX-512BW).
    Rows,
    /// The f32 phase-plane core with exact integer sums (`fast::depthwise`).
    Phase,
    /// The AVX-512 VNNI + VBMI byte kernel ([`vnni`]); where it does not apply (another CPU, or
    /// an epilogue it cannot reproduce exactly) the phase-plane kernel with AVX-512, else the
    /// row kernel.
    Vnni,
}

/// [`run_depthwise`] on instruction set `isa` by kernel `path`.
#[allow(clippy::too_many_arguments)]
fn run_depthwise_with(
    isa: Isa,
    path: Path,
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
        QuantOut::I32(d) => split(isa, &job, dw, path, d, threads),
        QuantOut::F32(d) => split(isa, &job, dw, path, d, threads),
        QuantOut::U8 { data, .. } => split(isa, &job, dw, path, data, threads),
        QuantOut::S8 { data, .. } => split(isa, &job, dw, path, data, threads),
    }
    Ok(())
}

/// The kernel that runs on `isa` (read once): the VNNI byte kernel where the CPU has it, the f32
/// phase-plane kernel on other AVX-512 CPUs (it measured 1.3-2.6x faster than the row kernel
/// on every MobileNetV2 depthwise shape), the i16 row kernel elsewhere (it has an AVX2 build,
/// the phase-plane core only a portable one besides AVX-512). `LITHE_INT8_DW=i16` or `=f32`
/// forces the row or the phase-plane kernel.
fn path_chosen(isa: Isa) -> Path {
    static FORCED: std::sync::OnceLock<Option<Path>> = std::sync::OnceLock::new();
    let forced = *FORCED.get_or_init(|| match std::env::var("LITHE_INT8_DW") {
        Ok(v) if v.eq_ignore_ascii_case("i16") => Some(Path::Rows),
        Ok(v) if v.eq_ignore_ascii_case("f32") => Some(Path::Phase),
        _ => None,
    });
    if let Some(p) = forced {
        return p;
    }
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 {
        return if vnni::available() { Path::Vnni } else { Path::Phase };
    }
    let _ = isa;
    Path::Rows
}

/// Split the planes over `threads` workers (contiguous runs of planes), each run by the kernel
/// of `path`.
fn split<T: OutElem>(isa: Isa, job: &Job<'_>, dw: &DwWeights, path: Path, out: &mut [T], threads: usize) {
    let ohw = job.oh * job.ow;
    let planes = out.len() / ohw.max(1);
    let mut path = path;
    if path == Path::Vnni {
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512
            && vnni::available()
            && let Some(fin) = vnni::Finish::new(job)
        {
            crate::parallel::for_unit_runs(out, planes, ohw, 1, threads, |first, o| {
                // SAFETY: `vnni::available()` confirmed AVX-512F/BW/VBMI/VNNI on this CPU.
                unsafe { vnni::run(job, &fin, &dw.wq, &dw.wsum, first, o, &mut vnni::Scratch::default()) }
            });
            return;
        }
        path = if cfg!(target_arch = "x86_64") && isa != Isa::Generic { Path::Phase } else { Path::Rows };
    }
    if path == Path::Rows {
        crate::parallel::for_unit_runs(out, planes, ohw, 1, threads, |first, o| {
            run_planes(isa, job, first, o, &mut Scratch::default())
        });
        return;
    }
    let wf = &dw.wf;
    let kind = match (job.k, job.s) {
        (3, 1) => Kind::K3S1,
        (3, _) => Kind::K3S2,
        (_, 1) => Kind::K5S1,
        _ => Kind::K5S2,
    };
    let (h, w, oh, ow) = (job.h, job.w, job.oh, job.ow);
    // Only the top and left pads place pixels; `oh`, `ow` account for the others.
    let g = Geom { h, w, oh, ow, pads: DwPads { top: job.pads[0], left: job.pads[1], bottom: 0, right: 0 } };
    crate::parallel::for_unit_runs(out, planes, ohw, 1, threads, |first, o| {
        let n = o.len() / ohw;
        let pj = PhaseJob::<T> { job, x: &job.x[first * h * w..(first + n) * h * w], first, wf, _out: PhantomData };
        run_phase_planes(isa, kind, &pj, &g, o, &mut PhaseScratch::default());
    });
}

/// The finishing constants of one plane of the phase-plane kernel.
#[derive(Clone, Copy)]
struct PlaneFin {
    scale: f32,
    bias: f32,
    clamp: Option<(f32, f32)>,
    rq: Option<Requant>,
    /// The int32 bias when it did not start the f32 sums (too large to keep them exact), else 0.
    extra: i32,
    /// Finish through [`OutElem::finish`] (`extra` is nonzero or an activation bound is NaN)
    /// rather than [`OutElem::finish_exact`].
    slow: bool,
}

/// A run of planes for the shared f32 phase-plane core (`fast::depthwise`): the phase planes
/// hold `x - x_zp` (so the zero padding is the zero point's), the weights are the s8 values as
/// f32, and every sum is exact. Each product is an integer of magnitude at most 255·128, a
/// 5x5 window sums at most 25 of them (816,000 < 2²⁴) and the int32 bias starts the sum only
/// when its magnitude is at most 2²³ (otherwise it is added in i32 afterwards): every partial
/// sum is an integer below 2²⁴, which f32 holds exactly, whatever the order or fusing of the
/// multiply-adds. So the sum equals the i32 accumulator of the reference and each finished
/// block is requantized with the same scalar epilogue ([`OutElem::finish_exact`]).
struct PhaseJob<'a, T> {
    job: &'a Job<'a>,
    /// The input planes of this run.
    x: &'a [u8],
    /// Index of the first plane in the whole `n x c` tensor.
    first: usize,
    /// `c x k x k` weights as f32.
    wf: &'a [f32],
    _out: PhantomData<fn() -> T>,
}

/// Largest int32 bias magnitude that may start the f32 sums (see [`PhaseJob`]).
const EXACT_INIT: i32 = 1 << 23;

impl<T: OutElem> DwJob for PhaseJob<'_, T> {
    type In = u8;
    type Flat = T;
    type Out = T;
    type Fin = PlaneFin;

    #[inline(always)]
    fn input(&self) -> &[u8] {
        self.x
    }

    #[inline(always)]
    fn load(&self, v: u8) -> f32 {
        // Both exact in f32, so is the difference.
        v as f32 - self.job.zp as f32
    }

    #[inline(always)]
    fn stage<'s>(&self, x: &'s [u8], buf: &'s mut Vec<f32>) -> &'s [f32] {
        buf.resize(x.len(), 0.0);
        for (d, &v) in buf.iter_mut().zip(x) {
            *d = self.load(v);
        }
        buf
    }

    #[inline(always)]
    fn plane(&self, i: usize, w: &mut [f32]) -> (f32, PlaneFin) {
        let j = self.job;
        let ch = (self.first + i) % j.c;
        let t = w.len();
        w.copy_from_slice(&self.wf[ch * t..(ch + 1) * t]);
        let b = j.bias_i32[ch];
        let (init, extra) = if (-EXACT_INIT..=EXACT_INIT).contains(&b) { (b as f32, 0) } else { (0.0, b) };
        let slow = extra != 0 || j.clamp.is_some_and(|(lo, hi)| lo.is_nan() || hi.is_nan());
        (init, PlaneFin { scale: j.scale[ch], bias: j.bias[ch], clamp: j.clamp, rq: j.rq, extra, slow })
    }

    #[inline(always)]
    fn block(&self, fin: &PlaneFin, acc: [f32; L], out: &mut [T]) {
        T::finish_block(&acc, fin, out)
    }

    #[inline(always)]
    fn rows(&self, _: usize, _: &PlaneFin, flat: &[T], rs: usize, ow: usize, out: &mut [T]) {
        for (oy, orow) in out.chunks_exact_mut(ow).enumerate() {
            copy_short(orow, &flat[oy * rs..][..ow]);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::QActivation;
    use crate::int8::epilogue::OutputKind;
    use crate::int8::reference::{QuantValues, qlinear_conv2d_reference};

    /// Both kernels, portable and detected builds, every output kind, against the reference,
    /// exactly, on the edges of the exactness argument of [`PhaseJob`]: `|x - zp|` = 255 with
    /// weights -128 and 127 (every product at its largest), 5x5 windows (25 of them per sum),
    /// int32 biases at, just past and far past 2²³, and small and odd planes.
    #[test]
    fn phase_planes_and_rows_are_exact_at_the_edges() {
        let kinds = [
            OutputKind::I32,
            OutputKind::F32,
            OutputKind::U8 { scale: 0.37, zero_point: 3 },
            OutputKind::S8 { scale: 1e-3, zero_point: -7 },
        ];
        let acts = [QActivation::None, QActivation::Relu, QActivation::Clamp { min: -50.0, max: 60.0 }];
        let mut seed = 7u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            seed >> 8
        };
        let mut cases = 0;
        for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
            for (h, w) in [(1, 1), (5, 7), (7, 7), (14, 13), (17, 40)] {
                for (xzp, x_fill, w_fill) in
                    [(0u8, Some(255u8), -128i8), (255, Some(0), -128), (0, Some(255), 127), (128, None, 0)]
                {
                    let c = 3;
                    let pads = [k / 2, k - 1, (h + w) % k, k / 2];
                    let geom = QConvGeometry { strides: [s, s], pads, dilations: [1, 1], groups: c };
                    let Ok((oh, ow)) = geom.output_hw([1, c, h, w], [k, k]) else { continue };
                    let x: Vec<u8> = (0..c * h * w).map(|_| x_fill.unwrap_or_else(|| (next() % 256) as u8)).collect();
                    let wt: Vec<i8> = (0..c * k * k)
                        .map(|i| if w_fill != 0 && i % 5 != 4 { w_fill } else { (next() % 256) as u8 as i8 })
                        .collect();
                    let w_scale = [0.02f32, 0.5, 1.0];
                    let dw = DwWeights::new(&wt, [c, 1, k, k], &w_scale).unwrap();
                    let bias = [0.25f32, -1.5, 3.0];
                    let bias_i32 = [1 << 23, (1 << 24) - 5, -2_000_000_000];
                    for kind in kinds {
                        for act in acts {
                            let ep = QuantEpilogue {
                                x_scale: 0.05,
                                bias: Some(&bias),
                                bias_i32: Some(&bias_i32),
                                activation: act,
                            };
                            let (want, _) = qlinear_conv2d_reference(
                                &x,
                                [1, c, h, w],
                                xzp,
                                &wt,
                                [c, 1, k, k],
                                &w_scale,
                                &geom,
                                &ep,
                                kind,
                            )
                            .unwrap();
                            for isa in [Isa::Generic, Isa::detect()] {
                                for path in [Path::Rows, Path::Phase, Path::Vnni] {
                                    let mut got = QuantValues::zeros(kind, c * oh * ow);
                                    let out = got.as_out(kind);
                                    run_depthwise_with(
                                        isa,
                                        path,
                                        &dw,
                                        &geom,
                                        &x,
                                        [1, c, h, w],
                                        xzp,
                                        &ep,
                                        out,
                                        [oh, ow],
                                        1,
                                    )
                                    .unwrap();
                                    assert_eq!(
                                        got, want,
                                        "k{k} s{s} {h}x{w} zp {xzp} {kind:?} {act:?} {isa:?} {path:?}"
                                    );
                                    cases += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert!(cases > 1000, "{cases}");
    }

    /// One random depthwise case: every kernel on the detected and the portable builds against
    /// the reference, exactly.
    #[allow(clippy::too_many_arguments)]
    fn check_random(
        (n, c, h, w): (usize, usize, usize, usize),
        (k, s): (usize, usize),
        pads: [usize; 4],
        xzp: u8,
        (out_sel, act_sel): (usize, usize),
        (bias, bias_i32): (bool, bool),
        threads: usize,
        seed: u64,
    ) -> Result<(), String> {
        let geom = QConvGeometry { strides: [s, s], pads, dilations: [1, 1], groups: c };
        let Ok((oh, ow)) = geom.output_hw([n, c, h, w], [k, k]) else { return Ok(()) };
        let mut st = seed | 1;
        let mut next = move || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            st
        };
        let x: Vec<u8> = (0..n * c * h * w).map(|_| next() as u8).collect();
        let wt: Vec<i8> = (0..c * k * k).map(|_| next() as u8 as i8).collect();
        let w_scale: Vec<f32> = (0..c).map(|_| (next() % 1000 + 1) as f32 * 1e-4).collect();
        let bias_f: Vec<f32> = (0..c).map(|_| (next() % 2001) as f32 * 1e-3 - 1.0).collect();
        let bias_q: Vec<i32> = (0..c).map(|_| (next() % 200_001) as i32 - 100_000).collect();
        let kind = match out_sel {
            0 => OutputKind::I32,
            1 => OutputKind::F32,
            2 => OutputKind::U8 { scale: 0.01 + (seed % 97) as f32 * 1e-3, zero_point: (seed >> 8) as u8 },
            _ => OutputKind::S8 { scale: 0.02 + (seed % 89) as f32 * 1e-3, zero_point: (seed >> 16) as i8 },
        };
        let act = [
            QActivation::None,
            QActivation::Relu,
            QActivation::Clamp { min: 0.0, max: 6.0 },
            QActivation::Clamp { min: -0.7, max: 0.3 },
        ][act_sel];
        let ep = QuantEpilogue {
            x_scale: 0.03,
            bias: bias.then_some(&bias_f[..]),
            bias_i32: bias_i32.then_some(&bias_q[..]),
            activation: act,
        };
        let dw = DwWeights::new(&wt, [c, 1, k, k], &w_scale).map_err(|e| e.to_string())?;
        let (want, _) = qlinear_conv2d_reference(&x, [n, c, h, w], xzp, &wt, [c, 1, k, k], &w_scale, &geom, &ep, kind)
            .map_err(|e| e.to_string())?;
        for isa in [Isa::detect(), Isa::Generic] {
            for path in [Path::Vnni, Path::Phase, Path::Rows] {
                let mut got = QuantValues::zeros(kind, n * c * oh * ow);
                let out = got.as_out(kind);
                run_depthwise_with(isa, path, &dw, &geom, &x, [n, c, h, w], xzp, &ep, out, [oh, ow], threads)
                    .map_err(|e| e.to_string())?;
                if got != want {
                    let i = (0..want.len()).find(|&i| got.get(i) != want.get(i)).unwrap_or(0);
                    return Err(format!(
                        "{isa:?} {path:?} {kind:?}: element {i}: got {}, want {}",
                        got.get(i),
                        want.get(i)
                    ));
                }
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Random geometries (batches, channels, odd and tiny planes, every pad below the
        /// window, strides 1 and 2, 3x3 and 5x5), zero points, output kinds, clamps, biases and
        /// 1-3 threads.
        #[test]
        fn every_kernel_matches_the_reference(
            n in 1usize..3,
            c in 1usize..20,
            h in 1usize..40,
            w in 1usize..40,
            k in proptest::prop_oneof![proptest::strategy::Just(3usize), proptest::strategy::Just(5)],
            s in 1usize..3,
            pads in proptest::array::uniform4(0usize..5),
            xzp in proptest::prop_oneof![proptest::strategy::Just(0u8), proptest::strategy::Just(128), proptest::strategy::Just(255), proptest::num::u8::ANY],
            out_sel in 0usize..4,
            act_sel in 0usize..4,
            bias in proptest::bool::ANY,
            bias_i32 in proptest::bool::ANY,
            threads in 1usize..4,
            seed in proptest::num::u64::ANY,
        ) {
            let pads = pads.map(|p| p % k);
            let r = check_random((n, c, h, w), (k, s), pads, xzp, (out_sel, act_sel), (bias, bias_i32), threads, seed);
            proptest::prop_assert_eq!(r, Ok(()));
        }
    }

    /// The byte kernel runs where the CPU has it (so the tests above exercise it).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn vnni_kernel_is_chosen_when_available() {
        if Isa::detect() == Isa::Avx512 && vnni::available() && std::env::var_os("LITHE_INT8_DW").is_none() {
            assert_eq!(path_chosen(Isa::detect()), Path::Vnni);
        }
    }
}
