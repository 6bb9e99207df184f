//! Spatial-major pointwise convolution, for convs with few output positions.
//!
//! The channel-major GEMM `Y [M x N] = W [M x K] · X [K x N]` puts the output positions
//! (`N = OH*OW`) on the microkernel's `NR`-wide side, so a 7x7 map (`N = 49`) is padded to 64
//! columns and a 14x14 map (196) to 224 with `NR = 32`: 31% and 14% of the multiply-adds are
//! wasted. Spatial-major computes the transpose `Yᵀ [N x M] = Xᵀ [N x K] · Wᵀ [K x M]`
//! instead: the positions go on the `MR` side, where a 14-row tile covers 196 and 49 with at
//! most 7 rows of padding, and the output channels (usually a multiple of 32) on the `NR` side.
//! `Xᵀ` needs no copy (the GEMM packs it from `X`'s columns), `Wᵀ` is packed once at load, and
//! the result is written back channel-major by [`scatter`], which also adds a residual and
//! applies the activation when the GEMM epilogue could not (the residual is laid out
//! channel-major).

use crate::fast::activation::{ActVisitor, BlockAct, visit_act};
use crate::fast::{FastActivation, Isa};

/// What [`scatter`] costs per output value, in GEMM multiply-adds. Fitted to per-node
/// timings of both forms (`lite-cli bench --profile`, `LITHE_SPATIAL_MAJOR=0/1`): MobileNetV1's
/// 7x7 1024->1024 and 14x14 512->512 convs (9% and 3% faster spatial-major) and ShuffleNetV2's
/// 14x14 116->116 convs (35% slower: with a shallow `K` the transpose costs as much as the
/// product).
const SCATTER_MACS_PER_VALUE: usize = 57;

/// Whether the spatial-major form of a pointwise conv with `positions` output positions,
/// `channels` output channels and `depth` input channels (per group) is cheaper than the
/// channel-major form by at least 3%, counting the padded multiply-adds of each form (with the
/// row tiles `channel_major_mr` and `spatial_major_mr`, both `nr` wide) and the transpose
/// back to channel-major ([`SCATTER_MACS_PER_VALUE`] per output value).
pub fn spatial_major_pays(
    positions: usize,
    channels: usize,
    depth: usize,
    channel_major_mr: usize,
    spatial_major_mr: usize,
    nr: usize,
) -> bool {
    let up = |v: usize, to: usize| v.div_ceil(to.max(1)) * to.max(1);
    let channel_major = (up(channels, channel_major_mr) * up(positions, nr)) as f64 * depth as f64;
    let spatial_major = (up(positions, spatial_major_mr) * up(channels, nr)) as f64 * depth as f64
        + (SCATTER_MACS_PER_VALUE * positions * channels) as f64;
    spatial_major * 1.03 < channel_major
}

/// What [`scatter`] does besides transposing: add the residual (a separate channel-major
/// tensor, or `y`'s own contents) and apply the activation, channel `c` of `y` taking
/// `act.channel(first_channel + c)`.
pub(crate) struct Finish<'a> {
    /// A separate residual laid out like `y`.
    pub residual: Option<&'a [f32]>,
    /// `y` holds the residual on entry.
    pub residual_in_y: bool,
    /// The activation.
    pub act: &'a FastActivation<'a>,
    /// Channel index of `y`'s first channel in the whole conv (for per-channel PReLU slopes).
    pub first_channel: usize,
}

/// Tile edge of the blocked transpose.
const B: usize = 16;

/// Write `ct` (`n x m`: row `i` holds position `i` of every channel) into `y` (`m x n`), with
/// `finish` applied when given. `threads > 1` splits the channels.
pub(crate) fn scatter(ct: &[f32], n: usize, m: usize, finish: Option<&Finish<'_>>, y: &mut [f32], threads: usize) {
    let isa = Isa::detect();
    let run = |c0: usize, y_part: &mut [f32]| {
        let part_finish = finish.map(|f| Finish {
            residual: f.residual.map(|r| &r[c0 * n..c0 * n + y_part.len()]),
            residual_in_y: f.residual_in_y,
            act: f.act,
            first_channel: f.first_channel + c0,
        });
        scatter_channels(isa, ct, n, m, c0, part_finish.as_ref(), y_part);
    };
    crate::parallel::for_unit_runs(y, m, n, B, threads, run);
}

/// [`scatter`] for channels `c0..c0 + y.len() / n`, with the chosen instruction set.
fn scatter_channels(isa: Isa, ct: &[f32], n: usize, m: usize, c0: usize, finish: Option<&Finish<'_>>, y: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `Isa::Avx512` is only produced by `Isa::detect` after
            // `is_x86_feature_detected!` confirmed avx512f, avx2 and fma on this CPU; the function
            // body is safe code, so enabling the features is the only obligation.
            unsafe { scatter_avx512(ct, n, m, c0, finish, y) }
        }
        Isa::Generic => scatter_portable(ct, n, m, c0, finish, y),
    }
}

/// [`scatter_portable`] compiled with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn scatter_avx512(ct: &[f32], n: usize, m: usize, c0: usize, finish: Option<&Finish<'_>>, y: &mut [f32]) {
    scatter_portable(ct, n, m, c0, finish, y);
}

/// Transpose in `B x B` tiles: `B` rows of `ct` (each `B` channels wide) are loaded, then each
/// channel's `B` positions are written as one contiguous run of `y`, finished on the way.
#[inline(always)]
fn scatter_portable(ct: &[f32], n: usize, m: usize, c0: usize, finish: Option<&Finish<'_>>, y: &mut [f32]) {
    let channels = y.len() / n.max(1);
    let mut col = [0f32; B];
    for cb in (0..channels).step_by(B) {
        let cw = B.min(channels - cb);
        for i0 in (0..n).step_by(B) {
            let rows = B.min(n - i0);
            let mut tile = [[0f32; B]; B];
            for (r, t) in tile.iter_mut().enumerate().take(rows) {
                let src = &ct[(i0 + r) * m + c0 + cb..][..cw];
                t[..cw].copy_from_slice(src);
            }
            for c in 0..cw {
                for (v, t) in col.iter_mut().zip(&tile) {
                    *v = t[c];
                }
                let ch = cb + c;
                let dst = &mut y[ch * n + i0..][..rows];
                match finish {
                    None => dst.copy_from_slice(&col[..rows]),
                    Some(f) => {
                        let residual = f.residual.map(|r| &r[ch * n + i0..][..rows]);
                        let run = FinishRun { src: &col[..rows], residual, in_y: f.residual_in_y, dst };
                        visit_act(&f.act.channel(f.first_channel + ch), run);
                    }
                }
            }
        }
    }
}

/// One run of positions of one channel: `dst = act(src + residual)`.
struct FinishRun<'a> {
    src: &'a [f32],
    residual: Option<&'a [f32]>,
    in_y: bool,
    dst: &'a mut [f32],
}

impl ActVisitor for FinishRun<'_> {
    type Out = ();

    #[inline(always)]
    fn visit<A: BlockAct>(self, act: A) {
        let FinishRun { src, residual, in_y, dst } = self;
        match residual {
            Some(r) => dst.iter_mut().zip(src).zip(r).for_each(|((o, &v), &r)| *o = act.f(v + r)),
            None if in_y => dst.iter_mut().zip(src).for_each(|(o, &v)| *o = act.f(v + *o)),
            None => dst.iter_mut().zip(src).for_each(|(o, &v)| *o = act.f(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_transposes_and_finishes() {
        for (n, m) in [(1, 1), (49, 40), (17, 33), (196, 16), (3, 70)] {
            let ct: Vec<f32> = (0..n * m).map(|v| v as f32 * 0.5 - 7.0).collect();
            let res: Vec<f32> = (0..n * m).map(|v| (v % 5) as f32 - 2.0).collect();
            for threads in [1, 3] {
                let mut y = vec![f32::NAN; n * m];
                scatter(&ct, n, m, None, &mut y, threads);
                for c in 0..m {
                    for i in 0..n {
                        assert_eq!(y[c * n + i], ct[i * m + c], "{n}x{m} plain at ({c}, {i})");
                    }
                }
                let act = FastActivation::Relu;
                let f = Finish { residual: Some(&res), residual_in_y: false, act: &act, first_channel: 0 };
                scatter(&ct, n, m, Some(&f), &mut y, threads);
                let mut z = res.clone();
                let f_in_y = Finish { residual: None, residual_in_y: true, act: &act, first_channel: 0 };
                scatter(&ct, n, m, Some(&f_in_y), &mut z, threads);
                for c in 0..m {
                    for i in 0..n {
                        let want = (ct[i * m + c] + res[c * n + i]).max(0.0);
                        assert_eq!(y[c * n + i], want, "{n}x{m} residual at ({c}, {i})");
                        assert_eq!(z[c * n + i], want, "{n}x{m} residual in y at ({c}, {i})");
                    }
                }
            }
        }
    }

    #[test]
    fn pays_where_positions_pad_badly_and_the_product_is_deep() {
        // 7x7 and deep 14x14 maps with 32-wide panels: spatial-major wins.
        assert!(spatial_major_pays(49, 1024, 1024, 8, 14, 32));
        assert!(spatial_major_pays(196, 256, 1024, 8, 14, 32));
        // 196 x 512 <- 512 saves 12% of the padded product, about what the transpose costs.
        assert!(!spatial_major_pays(196, 512, 512, 8, 14, 32));
        // A shallow product: the transpose costs more than the padding saves.
        assert!(!spatial_major_pays(196, 116, 116, 8, 14, 32));
        // 28x28 pads by 2%: not worth the transpose.
        assert!(!spatial_major_pays(784, 128, 512, 8, 8, 32));
        // Few channels pad the spatial-major panels instead.
        assert!(!spatial_major_pays(196, 24, 512, 12, 14, 32));
    }
}
