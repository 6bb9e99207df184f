//! 2-D convolution (groups and depthwise included) forward and backward.
//!
//! Depthwise convs (one input channel per group) run as direct loops ([`depthwise`]); every
//! other conv runs on the packed GEMM frame with the CPU's microkernel ([`crate::gemm`]).
//! Per batch item and group, with `cols = im2col(x)` (`Cg·KH·KW x OH·OW`; the input itself for
//! a 1x1 stride-1 unpadded conv):
//! - forward `y_g = W_g · cols + b`,
//! - `dW_g += dy_g · colsᵀ` (summed over the batch, one partial sum per rayon task),
//! - `dx = col2im(W_gᵀ · dy_g)`, `db = Σ dy`.
//!
//! Batch items run in parallel on rayon; each GEMM runs on one thread.

mod depthwise;

use super::{BackwardArgs, ForwardArgs, InputGrads, f32_input};
use crate::TrainError;
use crate::error::invalid;
use crate::gemm::kernel_for_rows;
use lithe_ir::Tensor;
use lithe_ir::op::{AxisWindow, ConvAttrs};
use lithe_kernels::KernelError;
use lithe_kernels::gemm::{GemmEpilogue, GemmInput, MatRef, PerAxis, Residual, sgemm};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;

/// The geometry of one 2-D conv.
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    m: usize,
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
    /// The resolved windows (height, width).
    win: [AxisWindow; 2],
}

impl Geom {
    fn new(node: &str, attrs: &ConvAttrs, x: &[usize], w: &[usize]) -> Result<Geom, TrainError> {
        if x.len() != 4 || w.len() != 4 {
            return Err(invalid(node, format!("only 2-D convs are differentiable: x {x:?}, w {w:?}")));
        }
        let group = attrs.group.max(1);
        let (n, c, h, wd) = (x[0], x[1], x[2], x[3]);
        let (m, cg, kh, kw) = (w[0], w[1], w[2], w[3]);
        if cg * group != c || m % group != 0 {
            return Err(invalid(node, format!("x {x:?} and w {w:?} do not match group {group}")));
        }
        let win = attrs.windows(&[h, wd], &[kh, kw]).map_err(|e| invalid(node, e.to_string()))?;
        if win.len() != 2 {
            return Err(invalid(node, format!("{} spatial windows for a 2-D conv", win.len())));
        }
        Ok(Geom {
            n,
            c,
            h,
            w: wd,
            m,
            group,
            cg,
            mg: m / group,
            kh: win[0].kernel,
            kw: win[1].kernel,
            oh: win[0].output,
            ow: win[1].output,
            stride: [win[0].stride, win[1].stride],
            dilation: [win[0].dilation, win[1].dilation],
            pad: [win[0].pad_begin, win[1].pad_begin],
            win: [win[0], win[1]],
        })
    }

    fn k(&self) -> usize {
        self.cg * self.kh * self.kw
    }

    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// One input channel per group (depthwise, any channel multiplier): run as direct loops.
    fn depthwise(&self) -> bool {
        self.cg == 1 && self.group > 1
    }

    /// The input is its own `cols` matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }

    /// Input row of output row `o` and kernel tap `k` on axis `ax`, if inside the input.
    #[inline]
    fn src(&self, ax: usize, o: usize, k: usize) -> Option<usize> {
        let limit = if ax == 0 { self.h } else { self.w };
        (o * self.stride[ax] + k * self.dilation[ax]).checked_sub(self.pad[ax]).filter(|&i| i < limit)
    }

    /// `cols` of group `grp` of one batch item (`x_item` is `C x H x W`).
    fn im2col(&self, x_item: &[f32], grp: usize, cols: &mut [f32]) {
        let (hw, p) = (self.h * self.w, self.p());
        for c in 0..self.cg {
            let plane = &x_item[(grp * self.cg + c) * hw..][..hw];
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = &mut cols[((c * self.kh + ki) * self.kw + kj) * p..][..p];
                    for oy in 0..self.oh {
                        let dst = &mut row[oy * self.ow..][..self.ow];
                        match self.src(0, oy, ki) {
                            None => dst.fill(0.0),
                            Some(iy) => {
                                let src = &plane[iy * self.w..][..self.w];
                                for (ox, d) in dst.iter_mut().enumerate() {
                                    *d = self.src(1, ox, kj).map_or(0.0, |ix| src[ix]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Add `cols` of group `grp` back onto one batch item's input gradient.
    fn col2im(&self, cols: &[f32], grp: usize, dx_item: &mut [f32]) {
        let (hw, p) = (self.h * self.w, self.p());
        for c in 0..self.cg {
            let plane = &mut dx_item[(grp * self.cg + c) * hw..][..hw];
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = &cols[((c * self.kh + ki) * self.kw + kj) * p..][..p];
                    for oy in 0..self.oh {
                        let Some(iy) = self.src(0, oy, ki) else { continue };
                        let dst = &mut plane[iy * self.w..][..self.w];
                        for (ox, &v) in row[oy * self.ow..][..self.ow].iter().enumerate() {
                            if let Some(ix) = self.src(1, ox, kj) {
                                dst[ix] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn kerr(node: &str) -> impl Fn(KernelError) -> TrainError + '_ {
    move |e| TrainError::Kernel { node: node.to_string(), source: e }
}

pub(super) fn contiguous<'a>(a: &'a ArrayViewD<'a, f32>) -> std::borrow::Cow<'a, [f32]> {
    match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().copied().collect()),
    }
}

/// `data` as an array of `shape` (a mismatch is an invalid-node error).
pub(super) fn shaped(node: &str, shape: &[usize], data: Vec<f32>) -> Result<ArrayD<f32>, TrainError> {
    ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| invalid(node, e.to_string()))
}

/// Adds the partial sum `b` into `a` (the reduce step of a per-task accumulation).
pub(super) fn add_partial(mut a: Vec<f32>, b: Vec<f32>) -> Result<Vec<f32>, KernelError> {
    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
    Ok(a)
}

/// The bias values, checked to be one per output channel (`m`).
pub(super) fn bias_values(
    node: &str,
    b: Option<&ArrayViewD<'_, f32>>,
    m: usize,
) -> Result<Option<Vec<f32>>, TrainError> {
    let bias: Option<Vec<f32>> = b.map(|b| b.iter().copied().collect());
    if let Some(b) = &bias
        && b.len() != m
    {
        return Err(invalid(node, format!("bias has {} values for {m} output channels", b.len())));
    }
    Ok(bias)
}

/// A conv's `x`, `w` and optional bias inputs.
#[allow(clippy::type_complexity)]
pub(super) fn inputs<'a>(
    a: &ForwardArgs<'a>,
) -> Result<(ArrayViewD<'a, f32>, ArrayViewD<'a, f32>, Option<ArrayViewD<'a, f32>>), TrainError> {
    let x = f32_input(a.node, a.inputs, 0)?;
    let w = f32_input(a.node, a.inputs, 1)?;
    let b = match a.inputs.get(2).copied().flatten() {
        Some(_) => Some(f32_input(a.node, a.inputs, 2)?),
        None => None,
    };
    Ok((x, w, b))
}

pub(super) fn forward(a: &ForwardArgs<'_>, attrs: &ConvAttrs) -> Result<Tensor, TrainError> {
    let (x, w, b) = inputs(a)?;
    Ok(Tensor::from(conv2d_forward(a.node, &x, &w, b.as_ref(), attrs)?))
}

/// `y = conv(x, w) + b` for NCHW `x` and OIHW `w` (any group count, no epilogue).
pub fn conv2d_forward(
    node: &str,
    x: &ArrayViewD<'_, f32>,
    w: &ArrayViewD<'_, f32>,
    b: Option<&ArrayViewD<'_, f32>>,
    attrs: &ConvAttrs,
) -> Result<ArrayD<f32>, TrainError> {
    conv2d_forward_with(node, x, w, b, attrs, ConvPath::Auto)
}

/// How a conv runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPath {
    /// Direct loops for depthwise convs, im2col + GEMM for the others.
    Auto,
    /// im2col + GEMM for every conv (the general path; the reference the direct loops are
    /// tested against).
    Gemm,
}

/// [`conv2d_forward`] on the path `path` says.
pub fn conv2d_forward_with(
    node: &str,
    x: &ArrayViewD<'_, f32>,
    w: &ArrayViewD<'_, f32>,
    b: Option<&ArrayViewD<'_, f32>>,
    attrs: &ConvAttrs,
    path: ConvPath,
) -> Result<ArrayD<f32>, TrainError> {
    let g = Geom::new(node, attrs, x.shape(), w.shape())?;
    let xs = contiguous(x);
    let ws = contiguous(w);
    let bias = bias_values(node, b, g.m)?;
    let y = if path == ConvPath::Auto && g.depthwise() {
        depthwise::forward(&g, &xs, &ws, bias.as_deref()).map_err(kerr(node))?
    } else {
        gemm_forward(&g, &xs, &ws, bias.as_deref()).map_err(kerr(node))?
    };
    shaped(node, &[g.n, g.m, g.oh, g.ow], y)
}

/// `y = W · im2col(x) + b` per batch item and group.
fn gemm_forward(g: &Geom, xs: &[f32], ws: &[f32], bias: Option<&[f32]>) -> Result<Vec<f32>, KernelError> {
    let (k, p) = (g.k(), g.p());
    let kernel = kernel_for_rows(g.mg);
    let mut y = vec![0f32; g.n * g.m * p];
    if !y.is_empty() {
        y.par_chunks_mut(g.m * p).enumerate().try_for_each(|(n, yn)| -> Result<(), KernelError> {
            let x_item = &xs[n * g.c * g.h * g.w..][..g.c * g.h * g.w];
            let mut cols = if g.pointwise() { Vec::new() } else { vec![0f32; k * p] };
            for grp in 0..g.group {
                let src: &[f32] = if g.pointwise() {
                    &x_item[grp * g.cg * p..][..k * p]
                } else {
                    g.im2col(x_item, grp, &mut cols);
                    &cols
                };
                let epi = GemmEpilogue {
                    bias: bias.map(|b| PerAxis::Row(&b[grp * g.mg..][..g.mg])),
                    ..GemmEpilogue::default()
                };
                sgemm(
                    kernel,
                    g.mg,
                    p,
                    k,
                    GemmInput::Strided(MatRef::row_major(&ws[grp * g.mg * k..][..g.mg * k], g.mg, k)?),
                    GemmInput::Strided(MatRef::row_major(src, k, p)?),
                    &mut yn[grp * g.mg * p..][..g.mg * p],
                    p,
                    &epi,
                    1,
                )?;
            }
            Ok(())
        })?;
    }
    Ok(y)
}

/// The gradients of a conv (or transposed conv) with respect to `x`, `w` and the bias, each
/// `None` when it was not asked for.
pub type ConvGrads = (Option<ArrayD<f32>>, Option<ArrayD<f32>>, Option<ArrayD<f32>>);

/// Gradients of a conv with respect to `x`, `w` and the bias (each computed when asked for).
pub fn conv2d_backward(
    node: &str,
    x: &ArrayViewD<'_, f32>,
    w: &ArrayViewD<'_, f32>,
    gy: &ArrayViewD<'_, f32>,
    attrs: &ConvAttrs,
    need: [bool; 3],
) -> Result<ConvGrads, TrainError> {
    conv2d_backward_with(node, x, w, gy, attrs, need, ConvPath::Auto)
}

/// [`conv2d_backward`] on the path `path` says.
pub fn conv2d_backward_with(
    node: &str,
    x: &ArrayViewD<'_, f32>,
    w: &ArrayViewD<'_, f32>,
    gy: &ArrayViewD<'_, f32>,
    attrs: &ConvAttrs,
    need: [bool; 3],
    path: ConvPath,
) -> Result<ConvGrads, TrainError> {
    let g = Geom::new(node, attrs, x.shape(), w.shape())?;
    if gy.shape() != [g.n, g.m, g.oh, g.ow] {
        return Err(invalid(
            node,
            format!("output gradient {:?} for output [{}, {}, {}, {}]", gy.shape(), g.n, g.m, g.oh, g.ow),
        ));
    }
    let xs = contiguous(x);
    let ws = contiguous(w);
    let gys = contiguous(gy);
    let direct = path == ConvPath::Auto && g.depthwise();
    let dx = if need[0] {
        let dx = if direct { depthwise::backward_x(&g, &ws, &gys) } else { gemm_backward_x(&g, &ws, &gys) };
        Some(shaped(node, x.shape(), dx.map_err(kerr(node))?)?)
    } else {
        None
    };
    let dw = if need[1] {
        let dw = if direct { depthwise::backward_w(&g, &xs, &gys) } else { gemm_backward_w(&g, &xs, &gys) };
        Some(shaped(node, w.shape(), dw.map_err(kerr(node))?)?)
    } else {
        None
    };
    let db = if need[2] { Some(shaped(node, &[g.m], bias_grad(&g, &gys))?) } else { None };
    Ok((dx, dw, db))
}

/// `db[m] = Σ dy[n, m, ..]` (per-plane sums, then over the batch in order).
fn bias_grad(g: &Geom, gys: &[f32]) -> Vec<f32> {
    let p = g.p();
    let mut db = vec![0f32; g.m];
    if p == 0 {
        return db;
    }
    for item in gys.chunks_exact(g.m * p) {
        for (d, plane) in db.iter_mut().zip(item.chunks_exact(p)) {
            *d += plane.iter().sum::<f32>();
        }
    }
    db
}

/// `dx = col2im(W_gᵀ · dy_g)` per batch item and group.
fn gemm_backward_x(g: &Geom, ws: &[f32], gys: &[f32]) -> Result<Vec<f32>, KernelError> {
    let (k, p, chw) = (g.k(), g.p(), g.c * g.h * g.w);
    let kernel = kernel_for_rows(k);
    let mut dx = vec![0f32; g.n * chw];
    if dx.is_empty() {
        return Ok(dx);
    }
    dx.par_chunks_mut(chw).enumerate().try_for_each(|(n, dxn)| -> Result<(), KernelError> {
        let gyn = &gys[n * g.m * p..][..g.m * p];
        let mut dcols = if g.pointwise() { Vec::new() } else { vec![0f32; k * p] };
        for grp in 0..g.group {
            let wg = MatRef::row_major(&ws[grp * g.mg * k..][..g.mg * k], g.mg, k)?.t();
            let gyg = MatRef::row_major(&gyn[grp * g.mg * p..][..g.mg * p], g.mg, p)?;
            let dst: &mut [f32] = if g.pointwise() { &mut dxn[grp * g.cg * p..][..k * p] } else { &mut dcols };
            let epi = GemmEpilogue::default();
            sgemm(kernel, k, p, g.mg, GemmInput::Strided(wg), GemmInput::Strided(gyg), dst, p, &epi, 1)?;
            if !g.pointwise() {
                g.col2im(&dcols, grp, dxn);
            }
        }
        Ok(())
    })?;
    Ok(dx)
}

/// `dW_g = Σ_n dy_g · colsᵀ`, one partial sum per rayon task.
fn gemm_backward_w(g: &Geom, xs: &[f32], gys: &[f32]) -> Result<Vec<f32>, KernelError> {
    let (k, p, chw) = (g.k(), g.p(), g.c * g.h * g.w);
    let kernel = kernel_for_rows(g.mg);
    let wlen = g.m * k;
    (0..g.n)
        .into_par_iter()
        .try_fold(
            || (vec![0f32; wlen], Vec::new()),
            |(mut acc, mut cols): (Vec<f32>, Vec<f32>), n| -> Result<(Vec<f32>, Vec<f32>), KernelError> {
                let x_item = &xs[n * chw..][..chw];
                let gyn = &gys[n * g.m * p..][..g.m * p];
                if !g.pointwise() && cols.len() != k * p {
                    cols = vec![0f32; k * p];
                }
                for grp in 0..g.group {
                    let src: &[f32] = if g.pointwise() {
                        &x_item[grp * g.cg * p..][..k * p]
                    } else {
                        g.im2col(x_item, grp, &mut cols);
                        &cols
                    };
                    let epi = GemmEpilogue { residual: Residual::InOutput, ..GemmEpilogue::default() };
                    sgemm(
                        kernel,
                        g.mg,
                        k,
                        p,
                        GemmInput::Strided(MatRef::row_major(&gyn[grp * g.mg * p..][..g.mg * p], g.mg, p)?),
                        GemmInput::Strided(MatRef::row_major(src, k, p)?.t()),
                        &mut acc[grp * g.mg * k..][..g.mg * k],
                        k,
                        &epi,
                        1,
                    )?;
                }
                Ok((acc, cols))
            },
        )
        .map(|r| r.map(|(acc, _)| acc))
        .try_reduce(|| vec![0f32; wlen], add_partial)
}

pub(super) fn backward(a: &BackwardArgs<'_>, attrs: &ConvAttrs) -> Result<InputGrads, TrainError> {
    if !attrs.epilogue.is_empty() {
        return Err(a.no_rule("a conv with a fused epilogue (train the unfused graph)"));
    }
    let x = a.x(0)?;
    if x.ndim() != 4 {
        return Err(a.no_rule(format!("{}-D input (only 2-D convs)", x.ndim().saturating_sub(2))));
    }
    let w = a.x(1)?;
    let gy = a.gy(0)?;
    let (dx, dw, db) =
        conv2d_backward(a.node, &x, &w, &gy.view(), attrs, [a.need(0), a.need(1), a.need(2) && a.inputs.len() > 2])?;
    Ok(vec![dx, dw, db])
}
