//! Pooling over NCHW inputs: MaxPool (the gradient goes to the first maximum of each window,
//! recomputed from the input), AveragePool (spread over the taps inside the input, with the
//! reference kernel's divisor), GlobalAveragePool and GlobalMaxPool.

use super::{BackwardArgs, ForwardArgs, InputGrads};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::Tensor;
use lithe_ir::op::{AvgPoolAttrs, AxisWindow, PoolAttrs};
use lithe_kernels::fast::depthwise::DwPads;
use lithe_kernels::fast::{PoolParams, f32_maxpool2d};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;
use std::borrow::Cow;

/// Per output position on one axis: the input indices of its taps inside the input.
fn taps(w: &AxisWindow) -> Vec<Vec<usize>> {
    (0..w.output)
        .map(|o| {
            (0..w.kernel)
                .filter_map(|k| (o * w.stride + k * w.dilation).checked_sub(w.pad_begin))
                .filter(|&i| i < w.input)
                .collect()
        })
        .collect()
}

fn windows2d(a: &BackwardArgs<'_>, attrs: &PoolAttrs) -> Result<(Vec<usize>, [AxisWindow; 2]), TrainError> {
    let shape = a.x(0)?.shape().to_vec();
    if shape.len() != 4 {
        return Err(a.no_rule(format!("{}-D pooling (only 2-D)", shape.len().saturating_sub(2))));
    }
    let w = attrs.windows(&shape[2..]).map_err(|e| invalid(a.node, e.to_string()))?;
    Ok((shape, [w[0], w[1]]))
}

/// Run `f(x_plane, gy_plane, gx_plane)` over every `N x C` plane in parallel (the input and
/// the output gradient are read in place when contiguous).
fn per_plane(
    a: &BackwardArgs<'_>,
    shape: &[usize],
    out_hw: usize,
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> Result<ArrayD<f32>, TrainError> {
    let x = a.x(0)?;
    let zeros;
    let g = match a.grads.first() {
        Some(Some(g)) => g.view(),
        _ => {
            zeros = a.gy(0)?;
            zeros.view()
        }
    };
    let (xs, gs) = (standard(&x), standard(&g));
    let hw: usize = shape[2..].iter().product();
    if gs.len() != shape[0] * shape[1] * out_hw {
        return Err(invalid(a.node, format!("output gradient {:?} does not match the pooled output", g.shape())));
    }
    let mut gx = vec![0f32; xs.len()];
    if hw > 0 && out_hw > 0 {
        gx.par_chunks_mut(hw)
            .zip(xs.par_chunks(hw))
            .zip(gs.par_chunks(out_hw))
            .for_each(|((gxp, xp), gp)| f(xp, gp, gxp));
    }
    ArrayD::from_shape_vec(IxDyn(shape), gx).map_err(|e| invalid(a.node, e.to_string()))
}

/// The elements of `a` in standard order, borrowed when already contiguous.
fn standard<'a>(a: &'a ArrayViewD<'a, f32>) -> Cow<'a, [f32]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

/// MaxPool forward: the kernels crate's direct kernel (batch items in parallel) when it covers
/// the geometry (2-D, 2x2 or 3x3 window, stride 2, floor mode, dilation 1, one output), the
/// reference kernel otherwise.
pub(super) fn max_pool_forward(a: &ForwardArgs<'_>, attrs: &PoolAttrs) -> Result<Vec<Tensor>, TrainError> {
    match max_pool_direct(a, attrs)? {
        Some(y) => Ok(vec![y]),
        None => lithe_kernels::reference::eval(a.op, a.inputs, a.num_outputs)
            .map_err(|e| TrainError::Kernel { node: a.node.to_string(), source: e }),
    }
}

/// [`max_pool_forward`] on the direct kernel, `None` when it does not cover the node.
fn max_pool_direct(a: &ForwardArgs<'_>, attrs: &PoolAttrs) -> Result<Option<Tensor>, TrainError> {
    let Some(x) = a.inputs.first().copied().flatten().and_then(|t| t.view::<f32>()) else { return Ok(None) };
    if a.num_outputs != 1 || x.ndim() != 4 || attrs.ceil_mode {
        return Ok(None);
    }
    let shape = x.shape().to_vec();
    let Ok(w) = attrs.windows(&shape[2..]) else { return Ok(None) };
    let [wh, ww] = [w[0], w[1]];
    let params = PoolParams {
        kernel: wh.kernel,
        stride: wh.stride,
        pads: DwPads { top: wh.pad_begin, left: ww.pad_begin, bottom: wh.pad_end, right: ww.pad_end },
    };
    let same = ww.kernel == wh.kernel && ww.stride == wh.stride && wh.dilation == 1 && ww.dilation == 1;
    if !same || !params.supported() {
        return Ok(None);
    }
    let (n, c, h, wd) = (shape[0], shape[1], shape[2], shape[3]);
    let (oh, ow) = (wh.output, ww.output);
    let xv = x.view();
    let xs = standard(&xv);
    let mut y = vec![0f32; n * c * oh * ow];
    if !y.is_empty() && h * wd > 0 {
        y.par_chunks_mut(c * oh * ow)
            .zip(xs.par_chunks(c * h * wd))
            .try_for_each(|(yi, xi)| f32_maxpool2d(xi, 1, c, h, wd, &params, yi))
            .map_err(|e| TrainError::Kernel { node: a.node.to_string(), source: e })?;
    }
    let y = ArrayD::from_shape_vec(IxDyn(&[n, c, oh, ow]), y).map_err(|e| invalid(a.node, e.to_string()))?;
    Ok(Some(Tensor::from(y)))
}

pub(super) fn max_pool_backward(a: &BackwardArgs<'_>, attrs: &PoolAttrs) -> Result<InputGrads, TrainError> {
    if a.outputs.len() > 1 {
        return Err(a.no_rule("MaxPool with an indices output"));
    }
    let (shape, [wh, ww]) = windows2d(a, attrs)?;
    let (th, tw) = (taps(&wh), taps(&ww));
    let width = shape[3];
    let gx = per_plane(a, &shape, wh.output * ww.output, |xp, gp, gxp| {
        for (oy, ty) in th.iter().enumerate() {
            for (ox, tx) in tw.iter().enumerate() {
                let mut best: Option<(usize, f32)> = None;
                for &iy in ty {
                    for &ix in tx {
                        let i = iy * width + ix;
                        if best.is_none_or(|(_, m)| xp[i] > m) {
                            best = Some((i, xp[i]));
                        }
                    }
                }
                if let Some((i, _)) = best {
                    gxp[i] += gp[oy * ww.output + ox];
                }
            }
        }
    })?;
    Ok(vec![Some(gx)])
}

pub(super) fn average_pool_backward(a: &BackwardArgs<'_>, attrs: &AvgPoolAttrs) -> Result<InputGrads, TrainError> {
    let (shape, [wh, ww]) = windows2d(a, &attrs.pool)?;
    let (th, tw) = (taps(&wh), taps(&ww));
    // With count_include_pad the divisor counts the taps inside the input and its declared pads.
    let padded = |w: &AxisWindow| -> Vec<usize> {
        let limit = w.pad_begin + w.input + w.pad_end;
        (0..w.output).map(|o| (0..w.kernel).filter(|k| o * w.stride + k * w.dilation < limit).count()).collect()
    };
    let (ph, pw) = (padded(&wh), padded(&ww));
    let width = shape[3];
    let gx = per_plane(a, &shape, wh.output * ww.output, |_, gp, gxp| {
        for (oy, ty) in th.iter().enumerate() {
            for (ox, tx) in tw.iter().enumerate() {
                let div = if attrs.count_include_pad { ph[oy] * pw[ox] } else { ty.len() * tx.len() };
                if div == 0 {
                    continue;
                }
                let v = gp[oy * ww.output + ox] / div as f32;
                for &iy in ty {
                    for &ix in tx {
                        gxp[iy * width + ix] += v;
                    }
                }
            }
        }
    })?;
    Ok(vec![Some(gx)])
}

fn global_shape(a: &BackwardArgs<'_>) -> Result<Vec<usize>, TrainError> {
    let shape = a.x(0)?.shape().to_vec();
    if shape.len() < 3 {
        return Err(invalid(a.node, format!("input must have rank >= 3, got {shape:?}")));
    }
    Ok(shape)
}

pub(super) fn global_average_pool_backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let shape = global_shape(a)?;
    let hw: usize = shape[2..].iter().product();
    let gx = per_plane(a, &shape, 1, |_, gp, gxp| gxp.fill(gp[0] / hw as f32))?;
    Ok(vec![Some(gx)])
}

pub(super) fn global_max_pool_backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let shape = global_shape(a)?;
    let gx = per_plane(a, &shape, 1, |xp, gp, gxp| {
        let mut best = 0;
        for (i, &v) in xp.iter().enumerate() {
            if v > xp[best] {
                best = i;
            }
        }
        gxp[best] += gp[0];
    })?;
    Ok(vec![Some(gx)])
}
