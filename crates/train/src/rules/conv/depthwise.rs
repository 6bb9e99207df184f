//! Depthwise convs (one input channel per group, `mg` output channels each) as direct loops:
//! im2col + GEMM would multiply a one-row weight matrix per group, wasting most of every
//! register tile.
//!
//! Every tap `(ki, kj)` of the window is one shifted, strided multiply-add between an input
//! row and an output row: for each axis the outputs whose input lies inside the plane form one
//! contiguous range ([`span`]), so the loops have no per-element bounds checks on padding.
//! - forward: `y[m] = b[m] + Σ_taps w[m, tap] · shift_tap(x[c])` (the kernels crate's
//!   direct 3x3/5x5 kernel when it covers the geometry and the multiplier is 1),
//! - `dx[c] = Σ_{m of c} Σ_taps w[m, tap] · shift_tapᵀ(dy[m])`, batch items in parallel,
//! - `dW[m, tap] = Σ_n ⟨dy[n, m], shift_tap(x[n, c])⟩`, output channels in parallel.

use super::Geom;
use lithe_kernels::KernelError;
use lithe_kernels::fast::FastActivation;
use lithe_kernels::fast::depthwise::{DwParams, depthwise_conv2d_nchw};
use rayon::prelude::*;

/// One axis of one tap: outputs `lo..hi` read inputs `start + (o - lo)·stride`, all inside
/// `0..len`; `offset` is the tap's `k·dilation − pad_begin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    lo: usize,
    hi: usize,
    start: usize,
}

/// The outputs `o < out` whose input `o·stride + offset` lies in `0..len` (a contiguous range).
fn span(out: usize, len: usize, stride: usize, offset: isize) -> Span {
    let (s, len_i) = (stride.max(1) as isize, len as isize);
    let lo = if offset >= 0 { 0 } else { (-offset + s - 1) / s };
    let hi = if len_i - offset <= 0 { 0 } else { ((len_i - offset + s - 1) / s).min(out as isize) };
    if lo >= hi {
        return Span { lo: 0, hi: 0, start: 0 };
    }
    Span { lo: lo as usize, hi: hi as usize, start: (lo * s + offset) as usize }
}

impl Geom {
    /// The spans of tap `(ki, kj)`: rows, then columns.
    fn tap(&self, ki: usize, kj: usize) -> (Span, Span) {
        let off = |ax: usize, k: usize| (k * self.dilation[ax]) as isize - self.pad[ax] as isize;
        (span(self.oh, self.h, self.stride[0], off(0, ki)), span(self.ow, self.w, self.stride[1], off(1, kj)))
    }

    /// Visit every tap's rows inside the input: `f(tap index, column span, output row, input row)`.
    #[inline]
    fn for_each_tap_row(&self, mut f: impl FnMut(usize, Span, usize, usize)) {
        for ki in 0..self.kh {
            for kj in 0..self.kw {
                let (r, c) = self.tap(ki, kj);
                for (t, oy) in (r.lo..r.hi).enumerate() {
                    f(ki * self.kw + kj, c, oy, r.start + t * self.stride[0]);
                }
            }
        }
    }
}

/// `dst[i] += a · src[i·stride]`.
#[inline]
fn gather_axpy(dst: &mut [f32], src: &[f32], stride: usize, a: f32) {
    if stride == 1 {
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d += a * s);
    } else {
        dst.iter_mut().zip(src.iter().step_by(stride)).for_each(|(d, &s)| *d += a * s);
    }
}

/// `dst[i·stride] += a · src[i]`.
#[inline]
fn scatter_axpy(dst: &mut [f32], src: &[f32], stride: usize, a: f32) {
    if stride == 1 {
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d += a * s);
    } else {
        dst.iter_mut().step_by(stride).zip(src).for_each(|(d, &s)| *d += a * s);
    }
}

/// `Σ a[i] · b[i·stride]`.
#[inline]
fn strided_dot(a: &[f32], b: &[f32], stride: usize) -> f32 {
    if stride == 1 {
        a.iter().zip(b).map(|(&x, &y)| x * y).sum()
    } else {
        a.iter().zip(b.iter().step_by(stride)).map(|(&x, &y)| x * y).sum()
    }
}

/// Forward: `y` (`n x m x oh x ow`) of `xs` (`n x c x h x w`), weights `ws` (`m x 1 x kh x kw`).
pub(super) fn forward(g: &Geom, xs: &[f32], ws: &[f32], bias: Option<&[f32]>) -> Result<Vec<f32>, KernelError> {
    let mut y = vec![0f32; g.n * g.m * g.p()];
    if y.is_empty() {
        return Ok(y);
    }
    if g.mg == 1
        && let Some(params) = DwParams::from_windows(&g.win)
    {
        let threads = rayon::current_num_threads();
        depthwise_conv2d_nchw(xs, g.n, g.c, g.h, g.w, ws, bias, &params, None, &FastActivation::None, &mut y, threads)?;
        return Ok(y);
    }
    forward_loops(g, xs, ws, bias, &mut y);
    Ok(y)
}

/// The forward pass as direct loops (any window, stride, dilation, padding and multiplier).
pub(super) fn forward_loops(g: &Geom, xs: &[f32], ws: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (p, hw, taps) = (g.p(), g.h * g.w, g.kh * g.kw);
    y.par_chunks_mut(g.m * p).zip(xs.par_chunks(g.c * hw)).for_each(|(yn, xn)| {
        for (m, plane) in yn.chunks_exact_mut(p).enumerate() {
            plane.fill(bias.map_or(0.0, |b| b[m]));
            let x = &xn[(m / g.mg) * hw..][..hw];
            let wm = &ws[m * taps..][..taps];
            g.for_each_tap_row(|tap, c, oy, iy| {
                let dst = &mut plane[oy * g.ow..][c.lo..c.hi];
                gather_axpy(dst, &x[iy * g.w + c.start..(iy + 1) * g.w], g.stride[1], wm[tap]);
            });
        }
    });
}

/// Input gradient: `dx` (`n x c x h x w`) from `dy` (`n x m x oh x ow`).
pub(super) fn backward_x(g: &Geom, ws: &[f32], gys: &[f32]) -> Result<Vec<f32>, KernelError> {
    let (p, hw, taps) = (g.p(), g.h * g.w, g.kh * g.kw);
    let mut dx = vec![0f32; g.n * g.c * hw];
    if dx.is_empty() || p == 0 {
        return Ok(dx);
    }
    dx.par_chunks_mut(g.c * hw).zip(gys.par_chunks(g.m * p)).for_each(|(dxn, gyn)| {
        for (m, gy) in gyn.chunks_exact(p).enumerate() {
            let dxp = &mut dxn[(m / g.mg) * hw..][..hw];
            let wm = &ws[m * taps..][..taps];
            g.for_each_tap_row(|tap, c, oy, iy| {
                let dst = &mut dxp[iy * g.w + c.start..(iy + 1) * g.w];
                scatter_axpy(dst, &gy[oy * g.ow..][c.lo..c.hi], g.stride[1], wm[tap]);
            });
        }
    });
    Ok(dx)
}

/// Weight gradient: `dW` (`m x 1 x kh x kw`), summed over the batch.
pub(super) fn backward_w(g: &Geom, xs: &[f32], gys: &[f32]) -> Result<Vec<f32>, KernelError> {
    let (p, hw, taps) = (g.p(), g.h * g.w, g.kh * g.kw);
    let mut dw = vec![0f32; g.m * taps];
    if dw.is_empty() || p == 0 {
        return Ok(dw);
    }
    dw.par_chunks_mut(taps).enumerate().for_each(|(m, dwm)| {
        let c = m / g.mg;
        for n in 0..g.n {
            let x = &xs[(n * g.c + c) * hw..][..hw];
            let gy = &gys[(n * g.m + m) * p..][..p];
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let (r, cs) = g.tap(ki, kj);
                    let mut acc = 0f32;
                    for (t, oy) in (r.lo..r.hi).enumerate() {
                        let iy = r.start + t * g.stride[0];
                        acc += strided_dot(
                            &gy[oy * g.ow..][cs.lo..cs.hi],
                            &x[iy * g.w + cs.start..(iy + 1) * g.w],
                            g.stride[1],
                        );
                    }
                    dwm[ki * g.kw + kj] += acc;
                }
            }
        }
    });
    Ok(dw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every output in `lo..hi` reads an input inside the axis, and no other output does.
    #[test]
    fn span_is_exactly_the_outputs_inside_the_input() {
        for len in 1..9usize {
            for stride in 1..4usize {
                for offset in -4isize..5 {
                    for out in 0..9usize {
                        let s = span(out, len, stride, offset);
                        for o in 0..out {
                            let i = o as isize * stride as isize + offset;
                            let inside = (0..len as isize).contains(&i);
                            assert_eq!(
                                (s.lo..s.hi).contains(&o),
                                inside,
                                "len {len} stride {stride} off {offset} o {o}"
                            );
                            if (s.lo..s.hi).contains(&o) {
                                assert_eq!(s.start + (o - s.lo) * stride, i as usize);
                            }
                        }
                    }
                }
            }
        }
    }
}
