//! 2-D transposed convolution (groups and depthwise included; strides, pads, dilations,
//! `output_padding`, `output_shape`) forward and backward on the packed GEMM frame.
//!
//! `W` is `C_in x C_out/group x KH x KW`. Per batch item and group `g` (`cg` input channels,
//! `mg` output channels), with `cols` a `mg·KH·KW x H·W` matrix over the input positions:
//! - forward `cols = W_gᵀ · x_g`, then each entry is added at output position
//!   `i·stride + k·dilation − pad_begin` (when inside the output), plus the bias;
//! - `cols = gather(dy)` (the same positions read back, once per item and group for both
//!   products), `dx_g = W_g · cols`, `dW_g += x_g · colsᵀ` (summed over the batch),
//!   `db = Σ dy`.
//!
//! The backward pass is thus an ordinary convolution of `dy` with `W`. Batch items run in
//! parallel on rayon; each GEMM runs on one thread.

use super::conv::{ConvGrads, add_partial, bias_values, contiguous, inputs, kerr, shaped};
use super::{BackwardArgs, ForwardArgs, InputGrads};
use crate::TrainError;
use crate::error::invalid;
use crate::gemm::kernel_for_rows;
use lithe_ir::Tensor;
use lithe_ir::op::ConvTransposeAttrs;
use lithe_kernels::KernelError;
use lithe_kernels::gemm::{GemmEpilogue, GemmInput, MatRef, Residual, sgemm};
use ndarray::{ArrayD, ArrayViewD, Axis};
use rayon::prelude::*;

/// The geometry of one 2-D transposed conv.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c_in: usize,
    h: usize,
    w: usize,
    group: usize,
    cg: usize,
    mg: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
}

impl Geom {
    fn new(node: &str, attrs: &ConvTransposeAttrs, x: &[usize], w: &[usize]) -> Result<Geom, TrainError> {
        if x.len() != 4 || w.len() != 4 {
            return Err(invalid(node, format!("only 2-D transposed convs run here: x {x:?}, w {w:?}")));
        }
        if !attrs.conv.epilogue.is_empty() {
            return Err(invalid(node, "a transposed conv with a fused epilogue"));
        }
        let group = attrs.conv.group;
        let (n, c_in, h, wd) = (x[0], x[1], x[2], x[3]);
        if group == 0 || c_in % group != 0 || w[0] != c_in {
            return Err(invalid(node, format!("x {x:?} and w {w:?} do not match group {group}")));
        }
        let axes = attrs.axes(&[h, wd], &w[2..]).map_err(|e| invalid(node, e.to_string()))?;
        if axes[0].kernel != w[2] || axes[1].kernel != w[3] {
            return Err(invalid(node, format!("kernel_shape {:?} does not match w {w:?}", attrs.conv.kernel_shape)));
        }
        Ok(Geom {
            n,
            c_in,
            h,
            w: wd,
            group,
            cg: c_in / group,
            mg: w[1],
            kh: w[2],
            kw: w[3],
            oh: axes[0].output,
            ow: axes[1].output,
            stride: [axes[0].stride, axes[1].stride],
            dilation: [axes[0].dilation, axes[1].dilation],
            pad: [axes[0].pad_begin, axes[1].pad_begin],
        })
    }

    fn m(&self) -> usize {
        self.mg * self.group
    }

    /// Rows of `cols`: output channels of a group times kernel taps.
    fn rows(&self) -> usize {
        self.mg * self.kh * self.kw
    }

    /// Input positions: the columns of `cols`.
    fn p(&self) -> usize {
        self.h * self.w
    }

    fn out_shape(&self) -> [usize; 4] {
        [self.n, self.m(), self.oh, self.ow]
    }

    /// Output index on axis `ax` that input index `i` reaches through tap `k`, if inside.
    #[inline]
    fn dst(&self, ax: usize, i: usize, k: usize) -> Option<usize> {
        let limit = if ax == 0 { self.oh } else { self.ow };
        (i * self.stride[ax] + k * self.dilation[ax]).checked_sub(self.pad[ax]).filter(|&o| o < limit)
    }

    /// Visit every (row of `cols` of group `grp`, input position, output element) triple whose
    /// output position is inside the output of one batch item (`M x OH x OW`).
    fn for_each_tap(&self, grp: usize, mut f: impl FnMut(usize, usize)) {
        let (p, ohw) = (self.p(), self.oh * self.ow);
        for m in 0..self.mg {
            let plane = (grp * self.mg + m) * ohw;
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = ((m * self.kh + ki) * self.kw + kj) * p;
                    for iy in 0..self.h {
                        let Some(oy) = self.dst(0, iy, ki) else { continue };
                        for ix in 0..self.w {
                            if let Some(ox) = self.dst(1, ix, kj) {
                                f(row + iy * self.w + ix, plane + oy * self.ow + ox);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Add `cols` of group `grp` into one batch item's output.
    fn scatter(&self, cols: &[f32], grp: usize, y_item: &mut [f32]) {
        self.for_each_tap(grp, |c, o| y_item[o] += cols[c]);
    }

    /// Read group `grp`'s `cols` back from one batch item's output gradient (zeros where a
    /// tap falls outside the output).
    fn gather(&self, dy_item: &[f32], grp: usize, cols: &mut [f32]) {
        cols.fill(0.0);
        self.for_each_tap(grp, |c, o| cols[c] = dy_item[o]);
    }
}

/// True when the tape runs this ConvTranspose itself (2-D f32, no epilogue).
pub(super) fn handles(inputs: &[Option<&Tensor>], attrs: &ConvTransposeAttrs) -> bool {
    attrs.conv.epilogue.is_empty()
        && inputs.first().copied().flatten().is_some_and(|t| t.dtype() == lithe_ir::DType::F32 && t.shape().len() == 4)
}

pub(super) fn forward(a: &ForwardArgs<'_>, attrs: &ConvTransposeAttrs) -> Result<Tensor, TrainError> {
    let (x, w, b) = inputs(a)?;
    Ok(Tensor::from(conv_transpose2d_forward(a.node, &x, &w, b.as_ref(), attrs)?))
}

/// `y = conv_transpose(x, w) + b` for NCHW `x` and `C_in x C_out/group x KH x KW` `w`.
pub fn conv_transpose2d_forward(
    node: &str,
    x: &ArrayViewD<'_, f32>,
    w: &ArrayViewD<'_, f32>,
    b: Option<&ArrayViewD<'_, f32>>,
    attrs: &ConvTransposeAttrs,
) -> Result<ArrayD<f32>, TrainError> {
    let g = Geom::new(node, attrs, x.shape(), w.shape())?;
    let (rows, p, ohw) = (g.rows(), g.p(), g.oh * g.ow);
    let bias = bias_values(node, b, g.m())?;
    let xs = contiguous(x);
    let ws = contiguous(w);
    let mut y = vec![0f32; g.n * g.m() * ohw];
    if y.is_empty() {
        return shaped(node, &g.out_shape(), y);
    }
    y.par_chunks_mut(g.m() * ohw)
        .enumerate()
        .try_for_each(|(n, yn)| -> Result<(), KernelError> {
            if let Some(bias) = &bias {
                for (plane, &bv) in yn.chunks_mut(ohw.max(1)).zip(bias) {
                    plane.fill(bv);
                }
            }
            if p == 0 || g.cg == 0 {
                return Ok(());
            }
            let x_item = &xs[n * g.c_in * p..][..g.c_in * p];
            let mut cols = vec![0f32; rows * p];
            for grp in 0..g.group {
                let wg = MatRef::row_major(&ws[grp * g.cg * rows..][..g.cg * rows], g.cg, rows)?.t();
                let xg = MatRef::row_major(&x_item[grp * g.cg * p..][..g.cg * p], g.cg, p)?;
                let epi = GemmEpilogue::default();
                sgemm(
                    kernel_for_rows(rows),
                    rows,
                    p,
                    g.cg,
                    GemmInput::Strided(wg),
                    GemmInput::Strided(xg),
                    &mut cols,
                    p,
                    &epi,
                    1,
                )?;
                g.scatter(&cols, grp, yn);
            }
            Ok(())
        })
        .map_err(kerr(node))?;
    shaped(node, &g.out_shape(), y)
}

/// Gradients of a 2-D transposed conv with respect to `x`, `w` and the bias (each computed
/// when asked for).
pub fn conv_transpose2d_backward(
    node: &str,
    x: &ArrayViewD<'_, f32>,
    w: &ArrayViewD<'_, f32>,
    gy: &ArrayViewD<'_, f32>,
    attrs: &ConvTransposeAttrs,
    need: [bool; 3],
) -> Result<ConvGrads, TrainError> {
    let g = Geom::new(node, attrs, x.shape(), w.shape())?;
    if gy.shape() != g.out_shape() {
        return Err(invalid(node, format!("output gradient {:?} for output {:?}", gy.shape(), g.out_shape())));
    }
    let (rows, p, ohw) = (g.rows(), g.p(), g.oh * g.ow);
    let chw = g.c_in * p;
    let xs = contiguous(x);
    let ws = contiguous(w);
    let gys = contiguous(gy);
    let gy_item = |n: usize| &gys[n * g.m() * ohw..][..g.m() * ohw];
    let empty = p == 0 || rows == 0 || g.cg == 0;
    let wlen = g.c_in * rows;
    let mut dx = if need[0] { vec![0f32; g.n * chw] } else { Vec::new() };
    let mut dw = if need[1] { vec![0f32; wlen] } else { Vec::new() };
    if !empty && (need[0] || need[1]) {
        // One pass per batch item: `cols` is gathered once and used for both dx and dW.
        let items: Vec<(usize, Option<&mut [f32]>)> = if need[0] {
            dx.chunks_mut(chw).map(Some).enumerate().collect()
        } else {
            (0..g.n).map(|n| (n, None)).collect()
        };
        let acc_len = dw.len();
        dw = items
            .into_par_iter()
            .try_fold(
                || (vec![0f32; acc_len], vec![0f32; rows * p]),
                |(mut acc, mut cols), (n, mut dxn)| -> Result<(Vec<f32>, Vec<f32>), KernelError> {
                    for grp in 0..g.group {
                        g.gather(gy_item(n), grp, &mut cols);
                        if let Some(dxn) = dxn.as_deref_mut() {
                            let wg = MatRef::row_major(&ws[grp * g.cg * rows..][..g.cg * rows], g.cg, rows)?;
                            let cm = MatRef::row_major(&cols, rows, p)?;
                            let dst = &mut dxn[grp * g.cg * p..][..g.cg * p];
                            let epi = GemmEpilogue::default();
                            let (a, b) = (GemmInput::Strided(wg), GemmInput::Strided(cm));
                            sgemm(kernel_for_rows(g.cg), g.cg, p, rows, a, b, dst, p, &epi, 1)?;
                        }
                        if !acc.is_empty() {
                            let x_item = &xs[n * chw..][..chw];
                            let xg = MatRef::row_major(&x_item[grp * g.cg * p..][..g.cg * p], g.cg, p)?;
                            let ct = MatRef::row_major(&cols, rows, p)?.t();
                            let epi = GemmEpilogue { residual: Residual::InOutput, ..GemmEpilogue::default() };
                            let dst = &mut acc[grp * g.cg * rows..][..g.cg * rows];
                            let (a, b) = (GemmInput::Strided(xg), GemmInput::Strided(ct));
                            sgemm(kernel_for_rows(g.cg), g.cg, rows, p, a, b, dst, rows, &epi, 1)?;
                        }
                    }
                    Ok((acc, cols))
                },
            )
            .map(|r| r.map(|(acc, _)| acc))
            .try_reduce(|| vec![0f32; acc_len], add_partial)
            .map_err(kerr(node))?;
    }
    let dx = need[0].then(|| shaped(node, x.shape(), dx)).transpose()?;
    let dw = need[1].then(|| shaped(node, w.shape(), dw)).transpose()?;
    let db = need[2].then(|| gy.sum_axis(Axis(3)).sum_axis(Axis(2)).sum_axis(Axis(0)));
    Ok((dx, dw, db))
}

pub(super) fn backward(a: &BackwardArgs<'_>, attrs: &ConvTransposeAttrs) -> Result<InputGrads, TrainError> {
    if !attrs.conv.epilogue.is_empty() {
        return Err(a.no_rule("a transposed conv with a fused epilogue"));
    }
    let x = a.x(0)?;
    if x.ndim() != 4 {
        return Err(a.no_rule(format!("{}-D input (only 2-D transposed convs)", x.ndim().saturating_sub(2))));
    }
    let w = a.x(1)?;
    let gy = a.gy(0)?;
    let need = [a.need(0), a.need(1), a.need(2) && a.inputs.len() > 2];
    let (dx, dw, db) = conv_transpose2d_backward(a.node, &x, &w, &gy.view(), attrs, need)?;
    let mut out = vec![dx, dw, db];
    out.truncate(a.inputs.len());
    Ok(out)
}
