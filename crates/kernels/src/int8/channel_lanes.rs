//! The int8 GEMM with output channels along the vector lanes, for convs with few output
//! positions (ResNet50 layer4 and MobileNet's 7x7 layers: 49 positions fill only 49 of 64 lanes
//! in the position-lane GEMM, which also re-packs and re-reads its activation panels per weight
//! panel).
//!
//! The transposed orientation of [`i8_gemm`](super::i8_gemm): the s8 weights are the vector
//! operand (panels of [`NC`] = 32 output channels x depth groups of 4, packed once), the u8
//! activations the broadcast operand (the `k x n` matrix packed per call into the same 32x4 c4
//! column panels the position-lane GEMM uses, so a position's four depth values are one dword).
//! A register tile of up to [`MR_MAX`] positions x 32 channels accumulates the whole depth with
//! `vpdpbusd`; the raw sums of a channel panel go to a small scratch (positions x channels),
//! which is transposed in registers 16x16 at a time so that the epilogue runs per output channel
//! on 16 contiguous positions: the same operations in the same order as the position-lane
//! kernel (compensation `x_zp·Σw - bias_i32`, `acc·scale + bias`, the residual, the clamp, the
//! requantization), so the results are bit-identical to [`i8_gemm`](super::i8_gemm) for every
//! output kind, and the NCHW output and residual rows are read and written contiguously.
//! Threads split the channel panels; every output is computed the same way for any thread
//! count.
//!
//! Only an AVX-512 VNNI kernel exists ([`vnni`]); [`available`] says whether this CPU runs it,
//! and callers use the position-lane GEMM elsewhere.

use crate::KernelError;
use crate::int8::driver::{RowParams, check_gemm_io};
use crate::int8::epilogue::{OutputKind, QuantEpilogue, QuantOut, invalid};
use crate::int8::pack::{I8Input, PackScratch, pack_b_block, pack_s8_rows};

#[cfg(target_arch = "x86_64")]
#[path = "channel_lanes/vnni.rs"]
mod vnni;

/// Output channels per weight panel (two 16-lane vectors).
pub(crate) const NC: usize = 32;
/// Depth values per group (one dword per position).
const KR: usize = 4;
/// Positions per column panel of the packed activations.
const NP: usize = 32;
/// The most positions in one register tile (`2 · MR_MAX` accumulators of 32).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 kernels only
pub(crate) const MR_MAX: usize = 11;

/// The environment variable forcing the choice: `0` never uses the channel-lane path, `1`
/// uses it for every conv it supports (ungrouped, not depthwise, on a VNNI CPU).
pub(crate) const SMALL_N_ENV: &str = "LITHE_INT8_SMALLN";

std::thread_local! {
    /// Each thread's activation packing scratch, kept between calls.
    static SCRATCH: std::cell::RefCell<PackScratch> = std::cell::RefCell::default();
}

/// Whether this CPU runs the channel-lane kernel (AVX-512F and AVX-512 VNNI), detected once.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        vnni::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The forced choice of [`SMALL_N_ENV`], read once: `Some(false)` for `0`, `Some(true)` for
/// `1`, `None` otherwise.
pub(crate) fn forced() -> Option<bool> {
    static FORCED: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| match std::env::var(SMALL_N_ENV).as_deref() {
        Ok("0") => Some(false),
        Ok("1") => Some(true),
        _ => None,
    })
}

/// The selection rule: whether a conv with `channels` output channels, depth `depth` and
/// `positions` output positions per image is faster with channels along the lanes. Measured on
/// Zen 4 (`cargo bench -p lithe-kernels-x86 --bench qconv_small_n`, see `docs/kernels.md`): it
/// gains where the position-lane GEMM leaves lanes idle (49 positions fill 49 of 64: 1.15-1.29x
/// at depths >= 320, 1.06x at 160; 81: 1.09x; 100: 1.03x) and loses where those lanes are
/// nearly full (64 positions: 0.95x; 196: 0.71-1.04x) or the depth is shallow (32-64: 0.78-0.88x,
/// the per-panel transpose and epilogue are not amortized).
pub(crate) fn preferred(channels: usize, depth: usize, positions: usize) -> bool {
    let lanes = positions.next_multiple_of(16);
    channels >= 64 && depth >= 128 && positions <= 128 && positions * 10 < lanes * 9
}

/// Weights `w[m][k]` packed as the vector operand: `ceil(m / NC)` panels of `kg · NC · KR`
/// bytes, panel `p` holding `w[p·NC + c][g·KR + r]` at `g·NC·KR + c·KR + r` (zero past the
/// matrix), with the row sums and per-row scales.
#[derive(Clone, Debug)]
pub(crate) struct ChannelLanesWeights {
    data: Vec<i8>,
    row_sums: Vec<i32>,
    w_scale: Vec<f32>,
    m: usize,
    k: usize,
}

/// Output base pointer shared by the workers of one call.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 kernels only
struct OutPtr(*mut u8);
// SAFETY: workers write disjoint channel (row) ranges of the output, which `run` borrows
// exclusively for the duration of the parallel section.
unsafe impl Send for OutPtr {}
// SAFETY: as above; the pointer is only copied.
unsafe impl Sync for OutPtr {}

impl ChannelLanesWeights {
    /// Pack row-major `m x k` weights with `w_scale` (one per row, or one). Fails on length
    /// mismatches, `k >` [`MAX_DEPTH`](crate::int8::pack::MAX_DEPTH), non-finite scales or sizes that overflow.
    pub(crate) fn pack(m: usize, k: usize, w: &[i8], w_scale: &[f32]) -> Result<Self, KernelError> {
        let (data, row_sums, w_scale) = pack_s8_rows(m, k, w, w_scale, NC, KR)?;
        Ok(ChannelLanesWeights { data, row_sums, w_scale, m, k })
    }

    /// Rows (output channels).
    pub(crate) fn rows(&self) -> usize {
        self.m
    }

    /// `out = epilogue(W · (X - x_zp))` with an optional f32 `residual` laid out as the output
    /// (`m x n` at row stride `ldc`): the contract of
    /// [`i8_gemm_with_residual`](super::i8_gemm_with_residual), with the same checks and bit
    /// for bit the same results. Fails when [`available`] is false.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &self,
        x: I8Input<'_>,
        x_zero_point: u8,
        ep: &QuantEpilogue<'_>,
        residual: Option<&[f32]>,
        mut out: QuantOut<'_>,
        ldc: usize,
        threads: usize,
    ) -> Result<(), KernelError> {
        let (m, k) = (self.m, self.k);
        let (n, kind) = check_gemm_io(m, k, &x, &out, ldc, residual)?;
        // The per-channel epilogue vectors, as the position-lane driver computes them.
        let rows = RowParams::from_parts(&self.row_sums, &self.w_scale, x_zero_point, 0, ep)?;
        if !available() {
            return Err(invalid("the channel-lane int8 kernel needs AVX-512 VNNI".into()));
        }
        if m == 0 || n == 0 {
            return Ok(());
        }
        let out_ptr = OutPtr(out.as_mut_ptr());
        let run = |s: &mut PackScratch| {
            self.run_packed(x, s, &rows.comp, &rows.scale, &rows.bias, ep, residual, kind, out_ptr, ldc, threads)
        };
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => run(&mut s),
            Err(_) => run(&mut PackScratch::default()),
        })
    }

    /// Pack the activations into `s`, then run the channel panels (split over `threads`).
    #[allow(clippy::too_many_arguments)]
    fn run_packed(
        &self,
        x: I8Input<'_>,
        s: &mut PackScratch,
        comp: &[i32],
        scale: &[f32],
        bias: &[f32],
        ep: &QuantEpilogue<'_>,
        residual: Option<&[f32]>,
        kind: OutputKind,
        out: OutPtr,
        ldc: usize,
        threads: usize,
    ) -> Result<(), KernelError> {
        let (m, k) = (self.m, self.k);
        let n = x.shape().1;
        pack_b_block(x, k, 0, n, NP, KR, 0, s)?;
        let kg = k.div_ceil(KR);
        let a = &s.block[..n.div_ceil(NP) * kg * NP * KR];
        let panels = m.div_ceil(NC);
        let job = PanelJob { kg, n, a, comp, scale, bias, clamp: ep.activation.bounds(), kind, residual, out, ldc };
        let work = (m as f64) * (n as f64) * (k.max(1) as f64);
        let tasks = if work < 65536.0 { 1 } else { threads.clamp(1, panels) };
        if tasks <= 1 {
            return self.run_panels(&job, 0..panels);
        }
        let per = panels.div_ceil(tasks);
        use rayon::prelude::*;
        (0..panels)
            .step_by(per)
            .collect::<Vec<_>>()
            .into_par_iter()
            .try_for_each(|p0| self.run_panels(&job, p0..(p0 + per).min(panels)))
    }

    /// Channel panels `panels` of `job`.
    fn run_panels(&self, job: &PanelJob<'_>, panels: std::ops::Range<usize>) -> Result<(), KernelError> {
        let panel_len = job.kg * NC * KR;
        let mut acc = Vec::new();
        acc.try_reserve_exact(job.n.next_multiple_of(16) * NC)
            .map_err(|e| invalid(format!("cannot allocate the accumulator scratch: {e}")))?;
        acc.resize(job.n.next_multiple_of(16) * NC, 0i32);
        for p in panels {
            let c0 = p * NC;
            let w = &self.data[p * panel_len..][..panel_len];
            let channels = NC.min(self.m - c0);
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `run` checked `available()` (AVX-512F and VNNI), the output and residual
            // spans and the epilogue lengths; `w` is one packed panel of `kg` groups, `job.a`
            // holds `ceil(n / NP)` activation panels of `kg` groups and `acc` has room for
            // `n` rounded up to 16 rows of `NC` sums; this worker owns channels `c0 ..
            // c0 + channels` of the output.
            unsafe {
                vnni::panel(job, w, c0, channels, &mut acc)
            };
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (w, channels, &mut acc);
                return Err(invalid("the channel-lane int8 kernel needs AVX-512 VNNI".into()));
            }
        }
        Ok(())
    }
}

/// One call's operands, shared by the workers.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 kernels only
pub(crate) struct PanelJob<'a> {
    /// Depth groups.
    kg: usize,
    /// Positions (columns).
    n: usize,
    /// The packed activations: `ceil(n / NP)` panels of `kg · NP · KR` bytes.
    a: &'a [u8],
    /// Per-channel compensation `x_zp·Σw - bias_i32`.
    comp: &'a [i32],
    /// Per-channel `x_scale · w_scale`.
    scale: &'a [f32],
    /// Per-channel f32 bias.
    bias: &'a [f32],
    /// Activation bounds.
    clamp: Option<(f32, f32)>,
    /// Output kind.
    kind: OutputKind,
    /// The residual laid out as the output.
    residual: Option<&'a [f32]>,
    /// The output (`m x n` at `ldc`).
    out: OutPtr,
    /// Output and residual row stride.
    ldc: usize,
}

/// The sizes of the register tiles covering one activation panel of `cols` positions: as few
/// tiles as [`MR_MAX`] allows, of sizes differing by at most one.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 kernels only
pub(crate) fn tile_sizes(cols: usize) -> impl Iterator<Item = usize> {
    let tiles = cols.div_ceil(MR_MAX);
    (0..tiles).map(move |t| cols / tiles + usize::from(t < cols % tiles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_each_panel() {
        for cols in 1..=NP {
            let sizes: Vec<usize> = tile_sizes(cols).collect();
            assert_eq!(sizes.iter().sum::<usize>(), cols);
            assert!(sizes.iter().all(|&s| (1..=MR_MAX).contains(&s)), "{cols}: {sizes:?}");
        }
    }

    #[test]
    fn packing_places_each_weight() {
        let (m, k) = (37, 9);
        let w: Vec<i8> = (0..m * k).map(|i| (i % 251) as i8).collect();
        let p = ChannelLanesWeights::pack(m, k, &w, &[0.5]).expect("pack");
        let panel = k.div_ceil(KR) * NC * KR;
        for row in 0..m {
            for kk in 0..k {
                let at = (row / NC) * panel + (kk / KR) * NC * KR + (row % NC) * KR + kk % KR;
                assert_eq!(p.data[at], w[row * k + kk]);
            }
            assert_eq!(p.row_sums[row], w[row * k..][..k].iter().map(|&v| v as i32).sum::<i32>());
        }
    }
}
