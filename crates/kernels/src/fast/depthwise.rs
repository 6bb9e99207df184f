//! Direct depthwise convolution, NCHW f32, channel multiplier 1 (`group == C_in == C_out`),
//! square 3x3 and 5x5 kernels, stride 1 or 2, dilation 1, per-side padding up to `kernel - 1`,
//! with bias, residual add and activation fused into the pass that writes each output row.
//!
//! Each plane is first copied into zero-padded scratch "phase planes" (stride 2 splits the
//! padded plane into its four even/odd row/column phases), laid out so that every output is one
//! flat index and every tap one constant offset: the whole plane is then a one-dimensional
//! convolution computed in blocks of 16 outputs, `K x K` vector FMAs per block, with no border
//! cases and few wasted lanes even on 7x7 planes (see [`plane`]). Bias, residual and activation
//! are applied while the flat result is copied out, row by row, still in L1.
//!
//! On x86-64 with AVX-512F (and FMA) the same code is compiled a second time with those features
//! enabled and chosen at run time; the portable build is always present and is used elsewhere,
//! or when `LITHE_KERNELS=generic` is set ([`crate::force_generic`]).

use super::activation::{ActVisitor, BlockAct, FastActivation, visit_act};
use super::{Isa, NATIVE_FMA, madd};
use crate::KernelError;
use crate::short_rows::{deinterleave_short, map_short, zip_map_short};
use lithe_ir::op::AxisWindow;

const OP: &str = "DepthwiseConv";

/// Padding of one plane, in input pixels on each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DwPads {
    /// Rows of zeros above.
    pub top: usize,
    /// Columns of zeros on the left.
    pub left: usize,
    /// Rows of zeros below.
    pub bottom: usize,
    /// Columns of zeros on the right.
    pub right: usize,
}

/// Geometry of a depthwise convolution: a `kernel x kernel` window moving by `stride` in both
/// axes, dilation 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DwParams {
    /// Kernel height and width (3 or 5).
    pub kernel: usize,
    /// Stride in both axes (1 or 2).
    pub stride: usize,
    /// Explicit padding.
    pub pads: DwPads,
}

impl DwParams {
    /// The parameters for two resolved spatial windows (height, width) when a kernel of this
    /// module applies to them (see [`supports`]), else `None`.
    pub fn from_windows(windows: &[AxisWindow]) -> Option<DwParams> {
        let [hw, ww] = windows else { return None };
        let p = DwParams {
            kernel: hw.kernel,
            stride: hw.stride,
            pads: DwPads { top: hw.pad_begin, left: ww.pad_begin, bottom: hw.pad_end, right: ww.pad_end },
        };
        let ok = supports(
            [hw.kernel, ww.kernel],
            [hw.stride, ww.stride],
            [hw.dilation, ww.dilation],
            [hw.pad_begin, ww.pad_begin, hw.pad_end, ww.pad_end],
        );
        ok.then_some(p)
    }

    /// Output height and width for an `h x w` input, or an error when the padded input is
    /// smaller than the kernel.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize), KernelError> {
        let p = &self.pads;
        let padded = |len: usize, a: usize, b: usize| len.checked_add(a).and_then(|v| v.checked_add(b));
        let (Some(ph), Some(pw)) = (padded(h, p.top, p.bottom), padded(w, p.left, p.right)) else {
            return Err(invalid(format!("padded size of the {h}x{w} input overflows")));
        };
        if self.stride == 0 || ph < self.kernel || pw < self.kernel {
            return Err(invalid(format!(
                "a {k}x{k} window does not fit the {h}x{w} input with pads {p:?} (stride {s})",
                k = self.kernel,
                s = self.stride
            )));
        }
        Ok(((ph - self.kernel) / self.stride + 1, (pw - self.kernel) / self.stride + 1))
    }
}

/// True when this module has a kernel for the geometry: `kernel` `[kh, kw]` both 3 or both 5,
/// `stride` `[sh, sw]` both 1 or both 2, `dilation` `[1, 1]`, and each of `pads` (ONNX order:
/// top, left, bottom, right) at most `kernel - 1`.
pub fn supports(kernel: [usize; 2], stride: [usize; 2], dilation: [usize; 2], pads: [usize; 4]) -> bool {
    let k = kernel[0];
    kernel[1] == k
        && (k == 3 || k == 5)
        && stride[1] == stride[0]
        && (stride[0] == 1 || stride[0] == 2)
        && dilation == [1, 1]
        && pads.iter().all(|&p| p < k)
}

/// Depthwise convolution of `x` (`n x c x h x w`) with `weights` (`c x kernel x kernel`), then
/// `out = activation(conv + bias + residual)`, written to `out` (`n x c x oh x ow`).
///
/// `bias` has `c` values; `residual` has the output's length; a `PRelu` slope has 1 or `c`
/// values. `threads > 1` splits the `n x c` planes over at most that many rayon tasks of the
/// global pool; `threads <= 1` runs on the calling thread. Wrong lengths or an unsupported
/// geometry are errors, checked before anything is written.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_nchw(
    x: &[f32],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    weights: &[f32],
    bias: Option<&[f32]>,
    params: &DwParams,
    residual: Option<&[f32]>,
    activation: &FastActivation<'_>,
    out: &mut [f32],
    threads: usize,
) -> Result<(), KernelError> {
    let kind = Kind::of(params)?;
    let k = params.kernel;
    let (oh, ow) = params.output_size(h, w)?;
    let planes = checked(&[n, c], "n x c")?;
    let in_plane = checked(&[h, w], "h x w")?;
    let out_plane = checked(&[oh, ow], "oh x ow")?;
    check_len("input x", x.len(), checked(&[planes, in_plane], "input")?)?;
    check_len("weights", weights.len(), checked(&[c, k, k], "weights")?)?;
    let out_len = checked(&[planes, out_plane], "output")?;
    check_len("output", out.len(), out_len)?;
    if let Some(b) = bias {
        check_len("bias", b.len(), c)?;
    }
    if let Some(r) = residual {
        check_len("residual", r.len(), out_len)?;
    }
    if let FastActivation::PRelu { slope } = activation
        && slope.len() != 1
        && slope.len() != c
    {
        return Err(invalid(format!("PRelu slope has {} values, expected 1 or {c}", slope.len())));
    }
    if planes == 0 || out_plane == 0 {
        return Ok(());
    }
    let geom = Geom { h, w, oh, ow, pads: params.pads };
    let isa = Isa::detect();
    // Run planes `first..` into `out_chunk` (whole output planes).
    let run = |first: usize, out_chunk: &mut [f32]| {
        let planes = out_chunk.len() / out_plane;
        let job = Job {
            x: &x[first * in_plane..(first + planes) * in_plane],
            first,
            c,
            weights,
            bias,
            residual,
            act: activation,
        };
        run_planes(isa, kind, &job, &geom, out_chunk, &mut Scratch::default());
    };
    crate::parallel::for_unit_runs(out, planes, out_plane, 1, threads, run);
    Ok(())
}

macro_rules! plane_kernel {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $k:literal) => {
        $(#[$doc])*
        ///
        /// One channel plane: `x` is `h x w`, `out` is `oh x ow` (see [`DwParams::output_size`]),
        /// `residual` has `out`'s length, `activation` is this channel's (a `PRelu` slope must
        /// have one value). Wrong lengths are errors.
        #[allow(clippy::too_many_arguments)]
        pub fn $name(
            x: &[f32],
            h: usize,
            w: usize,
            weights: &[f32; $k * $k],
            bias: f32,
            pads: DwPads,
            residual: Option<&[f32]>,
            activation: &FastActivation<'_>,
            out: &mut [f32],
        ) -> Result<(), KernelError> {
            let kind: Kind = $kind;
            plane_entry(kind, x, h, w, weights, bias, pads, residual, activation, out)
        }
    };
}

plane_kernel!(
    /// 3x3 depthwise convolution, stride 1, with fused bias, residual and activation.
    f32_dwconv_3x3s1, Kind::K3S1, 3
);
plane_kernel!(
    /// 3x3 depthwise convolution, stride 2, with fused bias, residual and activation.
    f32_dwconv_3x3s2, Kind::K3S2, 3
);
plane_kernel!(
    /// 5x5 depthwise convolution, stride 1, with fused bias, residual and activation.
    f32_dwconv_5x5s1, Kind::K5S1, 5
);
plane_kernel!(
    /// 5x5 depthwise convolution, stride 2, with fused bias, residual and activation.
    f32_dwconv_5x5s2, Kind::K5S2, 5
);

/// Validate and run one plane for the public per-plane kernels.
#[allow(clippy::too_many_arguments)]
fn plane_entry(
    kind: Kind,
    x: &[f32],
    h: usize,
    w: usize,
    weights: &[f32],
    bias: f32,
    pads: DwPads,
    residual: Option<&[f32]>,
    activation: &FastActivation<'_>,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let params = DwParams { kernel: kind.kernel(), stride: kind.stride(), pads };
    Kind::of(&params)?;
    let (oh, ow) = params.output_size(h, w)?;
    check_len("input x", x.len(), checked(&[h, w], "h x w")?)?;
    let out_plane = checked(&[oh, ow], "oh x ow")?;
    check_len("output", out.len(), out_plane)?;
    if let Some(r) = residual {
        check_len("residual", r.len(), out_plane)?;
    }
    if let FastActivation::PRelu { slope } = activation
        && slope.len() != 1
    {
        return Err(invalid(format!("a plane's PRelu slope must have 1 value, found {}", slope.len())));
    }
    let geom = Geom { h, w, oh, ow, pads };
    let bias = [bias];
    let job = Job { x, first: 0, c: 1, weights, bias: Some(&bias), residual, act: activation };
    run_planes(Isa::detect(), kind, &job, &geom, out, &mut Scratch::default());
    Ok(())
}

/// The supported kernel/stride pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    K3S1,
    K3S2,
    K5S1,
    K5S2,
}

impl Kind {
    pub(crate) fn of(p: &DwParams) -> Result<Kind, KernelError> {
        let d = &p.pads;
        if !supports([p.kernel; 2], [p.stride; 2], [1, 1], [d.top, d.left, d.bottom, d.right]) {
            return Err(KernelError::Unsupported {
                op: OP,
                detail: format!(
                    "kernel {k}x{k} stride {s} pads {d:?}: only 3x3/5x5, stride 1/2, pads < kernel",
                    k = p.kernel,
                    s = p.stride
                ),
            });
        }
        Ok(match (p.kernel, p.stride) {
            (3, 1) => Kind::K3S1,
            (3, _) => Kind::K3S2,
            (_, 1) => Kind::K5S1,
            _ => Kind::K5S2,
        })
    }

    pub(crate) fn kernel(self) -> usize {
        match self {
            Kind::K3S1 | Kind::K3S2 => 3,
            Kind::K5S1 | Kind::K5S2 => 5,
        }
    }

    pub(crate) fn stride(self) -> usize {
        match self {
            Kind::K3S1 | Kind::K5S1 => 1,
            Kind::K3S2 | Kind::K5S2 => 2,
        }
    }
}

/// Plane geometry (validated: `oh`, `ow` are the output size for `h`, `w` and `pads`).
pub(crate) struct Geom {
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
    pub(crate) pads: DwPads,
}

/// One run of consecutive planes as the shared phase-plane core ([`run_planes`]) sees it: what
/// the planes are made of, each plane's weights, and how a finished block and a finished plane
/// are written. The f32 kernel here is one ([`Job`]); the int8 kernel (`int8::depthwise`) is
/// another, convolving `x - x_zp` with integer-valued weights (exact in f32) and requantizing
/// each block as it leaves the registers.
pub(crate) trait DwJob: Sync {
    /// Input element.
    type In: Copy;
    /// Element of the flat result of a plane (what [`block`](Self::block) makes of the sums).
    type Flat: Copy + Default;
    /// Output element.
    type Out;
    /// Per-plane constants of [`block`](Self::block) and [`rows`](Self::rows).
    type Fin: Copy;

    /// The input planes of the run, `h x w` each.
    fn input(&self) -> &[Self::In];
    /// An input value as the convolution reads it.
    fn load(&self, v: Self::In) -> f32;
    /// One input plane as the f32 values the convolution reads ([`load`](Self::load) of each):
    /// `x` itself, or converted into `buf`.
    fn stage<'s>(&self, x: &'s [Self::In], buf: &'s mut Vec<f32>) -> &'s [f32];
    /// Plane `i` of the run: writes its `K x K` weights to `w`, returns the value every sum
    /// starts from and the plane's finishing constants.
    fn plane(&self, i: usize, w: &mut [f32]) -> (f32, Self::Fin);
    /// One block of [`L`] finished sums into `out` (`L` flat result values).
    fn block(&self, fin: &Self::Fin, acc: [f32; L], out: &mut [Self::Flat]);
    /// Write plane `i`'s output `out` (`oh` rows of `ow`) from its flat result (row `oy` is
    /// `flat[oy * rs..][..ow]`).
    fn rows(&self, i: usize, fin: &Self::Fin, flat: &[Self::Flat], rs: usize, ow: usize, out: &mut [Self::Out]);
}

/// A run of consecutive f32 planes: the input planes, the index (`n * c + channel`) of the
/// first, and the per-channel operands of the whole tensor.
struct Job<'a> {
    /// The input planes of this run, `h x w` each.
    x: &'a [f32],
    /// Index of the first plane in the whole `n x c` tensor.
    first: usize,
    /// Channels of the whole tensor.
    c: usize,
    /// `c x kernel x kernel` weights.
    weights: &'a [f32],
    /// `c` biases.
    bias: Option<&'a [f32]>,
    /// The residual of the whole output.
    residual: Option<&'a [f32]>,
    /// The activation, per-channel `PRelu` slopes resolved per plane.
    act: &'a FastActivation<'a>,
}

impl DwJob for Job<'_> {
    type In = f32;
    type Flat = f32;
    type Out = f32;
    /// The plane's index in the whole tensor, and its channel.
    type Fin = (usize, usize);

    #[inline(always)]
    fn input(&self) -> &[f32] {
        self.x
    }

    #[inline(always)]
    fn load(&self, v: f32) -> f32 {
        v
    }

    #[inline(always)]
    fn stage<'s>(&self, x: &'s [f32], _: &'s mut Vec<f32>) -> &'s [f32] {
        x
    }

    #[inline(always)]
    fn plane(&self, i: usize, w: &mut [f32]) -> (f32, (usize, usize)) {
        let p = self.first + i;
        let ch = p % self.c;
        let t = w.len();
        w.copy_from_slice(&self.weights[ch * t..(ch + 1) * t]);
        (self.bias.map_or(0.0, |b| b[ch]), (p, ch))
    }

    #[inline(always)]
    fn block(&self, _: &(usize, usize), acc: [f32; L], out: &mut [f32]) {
        out.copy_from_slice(&acc);
    }

    #[inline(always)]
    fn rows(&self, _: usize, &(p, ch): &(usize, usize), flat: &[f32], rs: usize, ow: usize, out: &mut [f32]) {
        let n = out.len();
        let residual = self.residual.map(|r| &r[p * n..(p + 1) * n]);
        visit_act(&self.act.channel(ch), Rows { flat, rs, out, ow, residual });
    }
}

/// Per-thread buffers: the phase planes of one input plane (see [`planes`]), the flat result,
/// and the geometry they were laid out for.
pub(crate) struct Scratch<F> {
    phases: Vec<f32>,
    flat_out: Vec<F>,
    /// An input plane converted to f32 ([`DwJob::stage`]).
    staged: Vec<f32>,
    key: [usize; 8],
}

impl<F> Default for Scratch<F> {
    fn default() -> Self {
        Scratch { phases: Vec::new(), flat_out: Vec::new(), staged: Vec::new(), key: [0; 8] }
    }
}

/// Run the planes of `job` with the chosen instruction set into `out` (whole output planes):
/// the instruction set and the kernel are dispatched once per run, not per plane. `job`'s
/// input, `out` and the operands have the lengths `g` implies (checked by the callers).
pub(crate) fn run_planes<J: DwJob>(
    isa: Isa,
    kind: Kind,
    job: &J,
    g: &Geom,
    out: &mut [J::Out],
    s: &mut Scratch<J::Flat>,
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `Isa::Avx512` is only produced by `Isa::detect` after
            // `is_x86_feature_detected!` confirmed avx512f, avx2 and fma on this CPU; the function
            // body is safe code, so enabling the features is the only obligation.
            unsafe { planes_avx512(kind, job, g, out, s) }
        }
        Isa::Generic => match kind {
            Kind::K3S1 => planes::<J, 3, 1, 9, NATIVE_FMA>(job, g, out, s),
            Kind::K3S2 => planes::<J, 3, 2, 9, NATIVE_FMA>(job, g, out, s),
            Kind::K5S1 => planes::<J, 5, 1, 25, NATIVE_FMA>(job, g, out, s),
            Kind::K5S2 => planes::<J, 5, 2, 25, NATIVE_FMA>(job, g, out, s),
        },
    }
}

/// [`planes`] compiled with AVX-512F and FMA.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn planes_avx512<J: DwJob>(kind: Kind, job: &J, g: &Geom, out: &mut [J::Out], s: &mut Scratch<J::Flat>) {
    match kind {
        Kind::K3S1 => planes::<J, 3, 1, 9, true>(job, g, out, s),
        Kind::K3S2 => planes::<J, 3, 2, 9, true>(job, g, out, s),
        Kind::K5S1 => planes::<J, 5, 1, 25, true>(job, g, out, s),
        Kind::K5S2 => planes::<J, 5, 2, 25, true>(job, g, out, s),
    }
}

/// Lanes per block of outputs: one AVX-512 register of f32.
pub(crate) const L: usize = 16;
/// Blocks computed together, so each tap's weight is loaded once per `NB` blocks and `NB`
/// accumulator chains overlap in the FMA pipeline.
const NB: usize = 4;

/// The planes of `job`, `K x K` stride `S` (`T == K * K`), each as a one-dimensional convolution.
///
/// The zero-padded plane is split into `S * S` phase planes (`phase (a, b)` holds padded pixels
/// `(S r + a, S c + b)`; for stride 1 the one phase is the padded plane itself), each with the
/// same row stride `rs = ow + (K - 1) / S`. Output `(oy, ox)` then sits at flat index
/// `f = oy * rs + ox`, and tap `(ky, kx)` reads its phase plane at `f + (ky / S) * rs + kx / S`:
/// every tap is one constant offset into one buffer, so the whole plane (not each row) is
/// computed in blocks of [`L`] flat outputs, with no borders and short planes (7x7) wasting few
/// lanes. Each finished block goes through [`DwJob::block`] into the flat result; the flat
/// outputs with `ox >= ow` are discarded when [`DwJob::rows`] writes `out` row by row. The
/// layout, the tap offsets and the zeroed scratch are set up once for all planes of the run.
#[inline(always)]
fn planes<J: DwJob, const K: usize, const S: usize, const T: usize, const FMA: bool>(
    job: &J,
    g: &Geom,
    out: &mut [J::Out],
    s: &mut Scratch<J::Flat>,
) {
    let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow);
    let reach = (K - 1) / S;
    let rs = ow + reach;
    let flat_len = (oh * rs).div_ceil(L) * L;
    // Every tap of every computed flat output stays inside its phase plane.
    let phase_len = flat_len + reach * rs + reach;
    let key = [S, K, h, w, g.pads.top, g.pads.left, oh, ow];
    if s.key != key {
        // The zeros (padding, tails) sit at the same places for every plane of one geometry:
        // clear only when the geometry changes, then overwrite the pixels.
        s.key = key;
        s.phases.clear();
        s.phases.resize(2 * S * S * phase_len, 0.0);
        s.flat_out.clear();
        s.flat_out.resize(flat_len, J::Flat::default());
    }
    let offsets: [usize; T] = std::array::from_fn(|t| {
        let (ky, kx) = (t / K, t % K);
        (S * (ky % S) + kx % S) * phase_len + (ky / S) * rs + kx / S
    });
    let lay = PhaseLayout { rs, rows: oh + reach, phase_len };
    let out_plane = oh * ow;
    // Two sets of phase planes: plane `i + 1` is copied in before plane `i` is convolved, so the
    // convolution's wide loads never wait on the copy's narrower stores (a store-forwarding
    // stall that otherwise dominates small planes).
    let (mut cur, mut next) = s.phases.split_at_mut(S * S * phase_len);
    let mut inputs = job.input().chunks_exact(h * w);
    if let Some(xs) = inputs.next() {
        fill_phases::<J, S>(job, xs, &mut s.staged, g, &lay, cur);
    }
    for (i, o) in out.chunks_exact_mut(out_plane).enumerate() {
        if let Some(xs) = inputs.next() {
            fill_phases::<J, S>(job, xs, &mut s.staged, g, &lay, next);
        }
        let mut wk = [0f32; T];
        let (init, fin) = job.plane(i, &mut wk);
        flat_conv::<J, T, FMA>(job, &fin, cur, &offsets, &wk, init, &mut s.flat_out);
        std::mem::swap(&mut cur, &mut next);
        job.rows(i, &fin, &s.flat_out, rs, ow, o);
    }
}

/// Where the phase planes of one geometry put the pixels: row stride, rows and length of each
/// phase plane (see [`planes`]).
struct PhaseLayout {
    rs: usize,
    rows: usize,
    phase_len: usize,
}

/// Copy one `h x w` input plane into its stride-`S` phase planes (the zeros around the pixels
/// are already in place), as [`DwJob::load`] reads its values: converted while copying for
/// stride 1, staged whole ([`DwJob::stage`], into `staged`) before the phase split for stride 2.
#[inline(always)]
fn fill_phases<J: DwJob, const S: usize>(
    job: &J,
    x: &[J::In],
    staged: &mut Vec<f32>,
    g: &Geom,
    lay: &PhaseLayout,
    phases: &mut [f32],
) {
    let (pt, pl) = (g.pads.top, g.pads.left);
    let PhaseLayout { rs, rows, phase_len } = *lay;
    if S == 1 {
        for (iy, src) in x.chunks_exact(g.w).enumerate() {
            let r = iy + pt;
            if r >= rows {
                break;
            }
            let n = g.w.min(rs - pl);
            map_short(&mut phases[r * rs + pl..][..n], &src[..n], |v| job.load(v));
        }
        return;
    }
    let x = job.stage(x, staged);
    for (iy, src) in x.chunks_exact(g.w).enumerate() {
        let py = iy + pt;
        let r = py / S;
        if r >= rows {
            break;
        }
        // Padded column `px = ix + pl` goes to phase column `px % 2`, index `px / 2`: a leading
        // odd pixel, then pairs (even, odd) that fill both phase rows at once.
        let row = r * rs;
        let base = 2 * (py % 2) * phase_len;
        let (even, odd) = phases[base..base + 2 * phase_len].split_at_mut(phase_len);
        let mut src = src;
        let mut c = pl / 2;
        if pl % 2 == 1 {
            if c < rs {
                odd[row + c] = src[0];
            }
            src = &src[1..];
            c += 1;
        }
        let pairs = (src.len() / 2).min(rs.saturating_sub(c));
        deinterleave_short(&mut even[row + c..][..pairs], &mut odd[row + c..][..pairs], src);
        if src.len() % 2 == 1 && c + pairs < rs && pairs == src.len() / 2 {
            even[row + c + pairs] = src[src.len() - 1];
        }
    }
}

/// `y[f] = block(init + sum_t w[t] * q[f + offsets[t]])` for every `f < y.len()` (a multiple of
/// [`L`]); every `offsets[t] + y.len()` is at most `q.len()`.
#[inline(always)]
fn flat_conv<J: DwJob, const T: usize, const FMA: bool>(
    job: &J,
    fin: &J::Fin,
    q: &[f32],
    offsets: &[usize; T],
    w: &[f32; T],
    init: f32,
    y: &mut [J::Flat],
) {
    let mut f = 0;
    let mut groups = y.chunks_exact_mut(NB * L);
    for yg in &mut groups {
        let mut acc = [[init; L]; NB];
        for t in 0..T {
            let src = &q[offsets[t] + f..][..NB * L];
            let wt = w[t];
            for (a, sb) in acc.iter_mut().zip(src.chunks_exact(L)) {
                for l in 0..L {
                    a[l] = madd::<FMA>(a[l], wt, sb[l]);
                }
            }
        }
        // Each block by name, not by a loop over `acc`: a loop the unroller keeps (a large
        // `block`) would address `acc` through a pointer and push the accumulators to memory.
        let [a0, a1, a2, a3] = acc;
        let (d01, d23) = yg.split_at_mut(2 * L);
        let ((d0, d1), (d2, d3)) = (d01.split_at_mut(L), d23.split_at_mut(L));
        job.block(fin, a0, d0);
        job.block(fin, a1, d1);
        job.block(fin, a2, d2);
        job.block(fin, a3, d3);
        f += NB * L;
    }
    for yb in groups.into_remainder().chunks_exact_mut(L) {
        let mut acc = [init; L];
        for t in 0..T {
            let src = &q[offsets[t] + f..][..L];
            for l in 0..L {
                acc[l] = madd::<FMA>(acc[l], w[t], src[l]);
            }
        }
        job.block(fin, acc, yb);
        f += L;
    }
}

/// The epilogue of one plane, run by [`visit_act`] with its activation as a type: row `oy` of
/// `out` (`ow` values) is `act(flat[oy * rs..][..ow] + residual)`.
struct Rows<'a> {
    flat: &'a [f32],
    rs: usize,
    out: &'a mut [f32],
    ow: usize,
    residual: Option<&'a [f32]>,
}

impl ActVisitor for Rows<'_> {
    type Out = ();

    #[inline(always)]
    fn visit<A: BlockAct>(self, act: A) {
        let Rows { flat, rs, out, ow, residual } = self;
        for (oy, orow) in out.chunks_exact_mut(ow).enumerate() {
            let src = &flat[oy * rs..][..ow];
            match residual {
                Some(r) => zip_map_short(orow, src, &r[oy * ow..][..ow], |v, r| act.f(v + r)),
                None => map_short(orow, src, |v| act.f(v)),
            }
        }
    }
}

/// The product of `dims`, or an error naming `what` on overflow.
fn checked(dims: &[usize], what: &str) -> Result<usize, KernelError> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| invalid(format!("{what} size {dims:?} overflows")))
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

    /// The portable build agrees with the one chosen at run time (which the integration tests
    /// compare with the reference), whatever `LITHE_KERNELS` says.
    #[test]
    fn generic_matches_detected() {
        let acts = [
            FastActivation::None,
            FastActivation::Relu,
            FastActivation::Clip { min: -0.2, max: 0.3 },
            FastActivation::LeakyRelu { alpha: 0.2 },
            FastActivation::PRelu { slope: &[0.7] },
            FastActivation::HardSwish,
            FastActivation::HardSigmoid { alpha: 0.2, beta: 0.5 },
            FastActivation::Sigmoid,
            FastActivation::Tanh,
        ];
        let mut seed = 1u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for kind in [Kind::K3S1, Kind::K3S2, Kind::K5S1, Kind::K5S2] {
            let k = kind.kernel();
            for (i, (h, w)) in [(1, 1), (2, 3), (7, 7), (9, 40)].into_iter().enumerate() {
                let p = i % k;
                let pads = DwPads { top: p, left: k - 1 - p, bottom: k - 1, right: p };
                let params = DwParams { kernel: k, stride: kind.stride(), pads };
                let Ok((oh, ow)) = params.output_size(h, w) else { continue };
                let x: Vec<f32> = (0..h * w).map(|_| next()).collect();
                let wt: Vec<f32> = (0..k * k).map(|_| next()).collect();
                let res: Vec<f32> = (0..oh * ow).map(|_| next()).collect();
                let g = Geom { h, w, oh, ow, pads };
                for act in acts {
                    let job = Job {
                        x: &x,
                        first: 0,
                        c: 1,
                        weights: &wt,
                        bias: Some(&[0.25]),
                        residual: Some(&res),
                        act: &act,
                    };
                    let mut a = vec![0.0; oh * ow];
                    let mut b = vec![0.0; oh * ow];
                    run_planes(Isa::Generic, kind, &job, &g, &mut a, &mut Scratch::default());
                    run_planes(Isa::detect(), kind, &job, &g, &mut b, &mut Scratch::default());
                    for (u, v) in a.iter().zip(&b) {
                        assert!((u - v).abs() <= 1e-5 * (1.0 + u.abs()), "{kind:?} {h}x{w} {act:?}: {u} vs {v}");
                    }
                }
            }
        }
    }
}
