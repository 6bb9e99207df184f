//! The flat (phase-plane) layout that turns a padded, strided, dilated convolution into a GEMM
//! whose `B` rows are contiguous slices of one buffer.
//!
//! The zero-padded input plane of each channel is split into `SH x SW` phase planes (phase
//! `(a, b)` holds padded pixel `(SH r + a, SW c + b)`; one phase for stride 1), all with row
//! stride `rs = OW + (KW - 1) DW / SW`. Output `(oy, ox)` is flat column `f = oy * rs + ox`, and
//! tap `(ky, kx)` of channel `c` reads its phase plane at `f + (ky DH / SH) * rs + kx DW / SW`:
//! row `(c, ky, kx)` of the unfolded matrix is one contiguous slice at a fixed offset, so
//! packing `B` is plain copying (no per-element index arithmetic, no padding tests). The price
//! is `rs - OW` junk columns per output row, computed and then dropped when the result is
//! compacted into `OH x OW` ([`compact`]), which is also where residual and activation apply.

use super::Conv2dShape;
use crate::fast::FastActivation;
use crate::fast::activation::{ActVisitor, BlockAct, visit_act};
use crate::gemm::{PanelSource, copy_short};
use rayon::prelude::*;

/// Where each phase plane and tap lives in the flat buffer of one group's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlatLayout {
    stride: [usize; 2],
    dilation: [usize; 2],
    pads: [usize; 2],
    input_hw: [usize; 2],
    kernel_hw: [usize; 2],
    /// Row stride of every phase plane (also the flat output row stride).
    pub rs: usize,
    /// Rows of each phase plane that some output reads.
    rows: usize,
    /// Values per phase plane (rows plus the slack the last taps read past them).
    plane: usize,
    /// Flat output columns: `OH * rs`.
    pub cols: usize,
}

impl FlatLayout {
    /// The layout for `shape` and a `kernel_hw` window.
    pub fn new(shape: &Conv2dShape, kernel_hw: [usize; 2]) -> Self {
        let [wh, ww] = shape.windows;
        let reach = |k: usize, d: usize, s: usize| (k - 1) * d / s;
        let (reach_y, reach_x) =
            (reach(kernel_hw[0], wh.dilation, wh.stride), reach(kernel_hw[1], ww.dilation, ww.stride));
        let rs = shape.output_hw[1] + reach_x;
        let rows = shape.output_hw[0] + reach_y;
        FlatLayout {
            stride: [wh.stride, ww.stride],
            dilation: [wh.dilation, ww.dilation],
            pads: [wh.pad_begin, ww.pad_begin],
            input_hw: shape.input_hw,
            kernel_hw,
            rs,
            rows,
            plane: rows * rs + reach_x,
            cols: shape.output_hw[0] * rs,
        }
    }

    /// Values of one channel's phase planes.
    fn channel_len(&self) -> usize {
        self.stride[0] * self.stride[1] * self.plane
    }

    /// Values of the whole flat buffer for `channels` channels.
    pub fn len(&self, channels: usize) -> usize {
        channels * self.channel_len()
    }

    /// Offset of row `(c, ky, kx)` of the unfolded matrix in the flat buffer.
    fn tap_offset(&self, c: usize, ky: usize, kx: usize) -> usize {
        let (dy, dx) = (ky * self.dilation[0], kx * self.dilation[1]);
        let phase = (dy % self.stride[0]) * self.stride[1] + dx % self.stride[1];
        c * self.channel_len() + phase * self.plane + (dy / self.stride[0]) * self.rs + dx / self.stride[1]
    }

    /// Lay out `x` (`channels x H x W`) into `buf` (`self.len(channels)` values): zeros
    /// everywhere, then every input pixel some output reads at its phase-plane position.
    /// `threads > 1` splits the channels over the rayon pool.
    pub fn fill(&self, x: &[f32], channels: usize, buf: &mut [f32], threads: usize) {
        let [h, w] = self.input_hw;
        let plane = h * w;
        if threads > 1 && channels > 1 {
            let per = channels.div_ceil(threads);
            buf.par_chunks_mut(per * self.channel_len()).zip(x.par_chunks(per * plane.max(1))).for_each(|(b, xc)| {
                for (chan, x_c) in b.chunks_exact_mut(self.channel_len()).zip(xc.chunks_exact(plane.max(1))) {
                    self.fill_channel(x_c, chan);
                }
            });
        } else {
            for (chan, x_c) in buf.chunks_exact_mut(self.channel_len()).zip(x.chunks_exact(plane.max(1))).take(channels)
            {
                self.fill_channel(x_c, chan);
            }
        }
    }

    /// [`fill`](Self::fill) for one channel: `x` is its `H x W` plane, `chan` its phase planes.
    fn fill_channel(&self, x: &[f32], chan: &mut [f32]) {
        let w = self.input_hw[1];
        let [sh, sw] = self.stride;
        let [pt, pl] = self.pads;
        chan.fill(0.0);
        for (iy, src) in x.chunks_exact(w).enumerate() {
            let py = iy + pt;
            let r = py / sh;
            if r >= self.rows {
                continue;
            }
            for b in 0..sw {
                // Inputs `ix` with `(ix + pl) % sw == b` fill consecutive columns from `c0`.
                let ix0 = (b + sw - pl % sw) % sw;
                if ix0 >= w {
                    continue;
                }
                let c0 = (ix0 + pl) / sw;
                let n = (w - ix0).div_ceil(sw).min(self.rs.saturating_sub(c0));
                let start = ((py % sh) * sw + b) * self.plane + r * self.rs + c0;
                let dst = &mut chan[start..start + n];
                if sw == 1 {
                    dst.copy_from_slice(&src[ix0..ix0 + n]);
                } else {
                    for (d, v) in dst.iter_mut().zip(src[ix0..].iter().step_by(sw)) {
                        *d = *v;
                    }
                }
            }
        }
    }
}

/// The unfolded matrix (`C*KH*KW x OH*rs`) over a filled flat buffer, as a GEMM `B` source.
pub(crate) struct FlatPanels<'a> {
    buf: &'a [f32],
    layout: FlatLayout,
    /// Buffer offset of each unfolded row.
    offsets: Vec<usize>,
}

impl<'a> FlatPanels<'a> {
    /// The unfolded view of `buf`, filled by [`FlatLayout::fill`] for `channels` channels.
    pub fn new(buf: &'a [f32], layout: FlatLayout, channels: usize) -> Self {
        let [kh, kw] = layout.kernel_hw;
        let mut offsets = Vec::with_capacity(channels * kh * kw);
        for c in 0..channels {
            for ky in 0..kh {
                for kx in 0..kw {
                    offsets.push(layout.tap_offset(c, ky, kx));
                }
            }
        }
        FlatPanels { buf, layout, offsets }
    }
}

impl PanelSource for FlatPanels<'_> {
    fn depth(&self) -> usize {
        self.offsets.len()
    }

    fn cols(&self) -> usize {
        self.layout.cols
    }

    fn pack(&self, d0: usize, depth: usize, c0: usize, cols: usize, nr: usize, dst: &mut [f32]) {
        for (q, panel) in dst.chunks_exact_mut(nr * depth.max(1)).take(cols.div_ceil(nr)).enumerate() {
            let j0 = c0 + q * nr;
            let live = nr.min(c0 + cols - j0);
            for (out, &off) in panel.chunks_exact_mut(nr).zip(&self.offsets[d0..d0 + depth]) {
                copy_short(&mut out[..live], &self.buf[off + j0..off + j0 + live]);
                out[live..].fill(0.0);
            }
        }
    }
}

/// Write channel `m`'s `OH x OW` outputs from its flat row `flat` (`OH * rs` values, bias
/// included): `y = act(flat + residual)`, `residual` laid out like `y` (or `y` itself on entry
/// when `residual_in_y`).
pub(crate) fn compact(
    flat: &[f32],
    rs: usize,
    ow: usize,
    residual: Option<&[f32]>,
    residual_in_y: bool,
    act: &FastActivation<'_>,
    y: &mut [f32],
) {
    visit_act(act, Compact { flat, rs, ow, residual, residual_in_y, y });
}

struct Compact<'a> {
    flat: &'a [f32],
    rs: usize,
    ow: usize,
    residual: Option<&'a [f32]>,
    residual_in_y: bool,
    y: &'a mut [f32],
}

impl ActVisitor for Compact<'_> {
    type Out = ();

    #[inline(always)]
    fn visit<A: BlockAct>(self, act: A) {
        let Compact { flat, rs, ow, residual, residual_in_y, y } = self;
        for (oy, row) in y.chunks_exact_mut(ow).enumerate() {
            let src = &flat[oy * rs..oy * rs + ow];
            match residual {
                Some(r) => {
                    for ((o, &v), &r) in row.iter_mut().zip(src).zip(&r[oy * ow..(oy + 1) * ow]) {
                        *o = act.f(v + r);
                    }
                }
                None if residual_in_y => row.iter_mut().zip(src).for_each(|(o, &v)| *o = act.f(v + *o)),
                None => row.iter_mut().zip(src).for_each(|(o, &v)| *o = act.f(v)),
            }
        }
    }
}
