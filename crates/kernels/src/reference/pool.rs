//! Pooling: `MaxPool`, `AveragePool`, `GlobalAveragePool`, `GlobalMaxPool` over N-D inputs
//! (`N x C x D1 x ... x Dn`), with strides, dilations, pads, `auto_pad` and `ceil_mode`.
//!
//! A window is the cartesian product, over spatial axes, of the input indices its taps read;
//! taps in the padding (explicit or past the end in ceil mode) are skipped. Sums are taken in f64.

use super::conv::{contiguous, row_major_strides};
use crate::KernelError;
use lithe_ir::op::{AvgPoolAttrs, AxisWindow, PoolAttrs};
use lithe_ir::{DType, Tensor};
use ndarray::{ArrayViewD, Dimension, IxDyn};

/// Max over each window; NaN propagates. A window with no tap inside the input gives -inf.
/// 8-bit integer inputs (quantized activations) are pooled exactly through f32, a window with
/// no tap giving the type's minimum.
pub fn max_pool(a: &PoolAttrs, x: &Tensor) -> Result<Tensor, KernelError> {
    const OP: &str = "MaxPool";
    if let dtype @ (DType::U8 | DType::I8) = x.dtype() {
        return Ok(max_pool(a, &x.cast(DType::F32))?.cast(dtype));
    }
    let xa = f32_arg(OP, x)?;
    let windows = resolve(OP, a, xa.shape())?;
    pool(&xa, &windows, |src, sel, _| {
        let mut m = f32::NEG_INFINITY;
        fold_window(src, 0, sel, &mut |v| m = nan_max(m, v));
        m
    })
}

/// Mean over each window. The divisor counts taps inside the input, plus, with
/// `count_include_pad`, taps in the pads (explicit or from `auto_pad`; never the positions past
/// the end pad that ceil mode adds).
/// A window with a zero divisor gives NaN.
pub fn average_pool(a: &AvgPoolAttrs, x: &Tensor) -> Result<Tensor, KernelError> {
    const OP: &str = "AveragePool";
    let xa = f32_arg(OP, x)?;
    let windows = resolve(OP, &a.pool, xa.shape())?;
    // Per axis and output position: how many taps lie inside the input plus its pads.
    let padded_counts: Vec<Vec<usize>> = windows
        .iter()
        .map(|w| {
            let limit = w.pad_begin + w.input + w.pad_end;
            (0..w.output).map(|o| (0..w.kernel).filter(|k| o * w.stride + k * w.dilation < limit).count()).collect()
        })
        .collect();
    pool(&xa, &windows, |src, sel, out_index| {
        let mut sum = 0f64;
        fold_window(src, 0, sel, &mut |v| sum += f64::from(v));
        let divisor: usize = if a.count_include_pad {
            out_index.iter().zip(&padded_counts).map(|(&o, c)| c[o]).product()
        } else {
            sel.iter().map(|s| s.len()).product()
        };
        (sum / divisor as f64) as f32
    })
}

/// Mean over all spatial axes, which are kept with size 1 (`N x C x 1 x ... x 1`).
pub fn global_average_pool(x: &Tensor) -> Result<Tensor, KernelError> {
    const OP: &str = "GlobalAveragePool";
    let xa = f32_arg(OP, x)?;
    global(OP, &xa, |plane| (plane.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.len() as f64) as f32)
}

/// Max over all spatial axes, which are kept with size 1 (`N x C x 1 x ... x 1`). NaN propagates.
pub fn global_max_pool(x: &Tensor) -> Result<Tensor, KernelError> {
    const OP: &str = "GlobalMaxPool";
    let xa = f32_arg(OP, x)?;
    global(OP, &xa, |plane| plane.iter().fold(f32::NEG_INFINITY, |m, &v| nan_max(m, v)))
}

/// Validate the input rank, resolve the windows and check the output size.
fn resolve(op: &'static str, a: &PoolAttrs, shape: &[usize]) -> Result<Vec<AxisWindow>, KernelError> {
    if shape.len() < 3 {
        return Err(KernelError::Invalid {
            op,
            detail: format!("input must have rank >= 3 (N x C x spatial...), got shape {shape:?}"),
        });
    }
    let windows = a.windows(&shape[2..]).map_err(|e| KernelError::Invalid { op, detail: e.to_string() })?;
    let mut out_shape = vec![shape[0], shape[1]];
    out_shape.extend(windows.iter().map(|w| w.output));
    super::checked_num_elements(op, &out_shape)?;
    Ok(windows)
}

/// Apply `reduce` to every window of every `N x C` plane. `reduce` gets the plane, per
/// spatial axis the element offsets (input index times stride) the window covers, and the
/// output position.
fn pool(
    xa: &ArrayViewD<'_, f32>,
    windows: &[AxisWindow],
    reduce: impl Fn(&[f32], &[&[usize]], &[usize]) -> f32,
) -> Result<Tensor, KernelError> {
    let shape = xa.shape();
    let in_spatial = &shape[2..];
    let in_strides = row_major_strides(in_spatial);
    let in_size: usize = in_spatial.iter().product();
    let out_spatial: Vec<usize> = windows.iter().map(|w| w.output).collect();
    let mut out_shape = vec![shape[0], shape[1]];
    out_shape.extend_from_slice(&out_spatial);
    let out_size: usize = out_spatial.iter().product();
    // Per axis, per output position: offsets of the taps that fall inside the input.
    let offsets: Vec<Vec<Vec<usize>>> = windows
        .iter()
        .zip(&in_strides)
        .map(|(w, &stride)| {
            (0..w.output)
                .map(|o| {
                    (0..w.kernel)
                        .filter_map(|k| (o * w.stride + k * w.dilation).checked_sub(w.pad_begin))
                        .filter(|&i| i < w.input)
                        .map(|i| i * stride)
                        .collect()
                })
                .collect()
        })
        .collect();
    let data = contiguous(xa);
    let planes = shape[0] * shape[1];
    let mut y = Vec::with_capacity(planes * out_size);
    let mut sel: Vec<&[usize]> = Vec::with_capacity(windows.len());
    for p in 0..planes {
        let src = &data[p * in_size..(p + 1) * in_size];
        for idx in ndarray::indices(IxDyn(&out_spatial)) {
            sel.clear();
            sel.extend(offsets.iter().enumerate().map(|(ax, o)| o[idx[ax]].as_slice()));
            y.push(reduce(src, &sel, idx.slice()));
        }
    }
    Ok(Tensor::from_vec(&out_shape, y)?)
}

/// Call `f` on `src[base + o0 + o1 + ...]` for every combination of one offset per axis.
fn fold_window(src: &[f32], base: usize, sel: &[&[usize]], f: &mut impl FnMut(f32)) {
    match sel.split_first() {
        None => f(src[base]),
        Some((first, rest)) => {
            for &off in *first {
                fold_window(src, base + off, rest, f);
            }
        }
    }
}

/// The larger of `m` and `v`, NaN if either is NaN.
fn nan_max(m: f32, v: f32) -> f32 {
    if m.is_nan() || v <= m { m } else { v }
}

/// Reduce each `N x C` plane over all spatial axes.
fn global(op: &'static str, xa: &ArrayViewD<'_, f32>, reduce: impl Fn(&[f32]) -> f32) -> Result<Tensor, KernelError> {
    let shape = xa.shape();
    if shape.len() < 2 {
        return Err(KernelError::Invalid {
            op,
            detail: format!("input must have rank >= 2 (N x C x spatial...), got shape {shape:?}"),
        });
    }
    let in_size: usize = shape[2..].iter().product();
    let planes = shape[0] * shape[1];
    let data = contiguous(xa);
    let y: Vec<f32> = (0..planes).map(|p| reduce(&data[p * in_size..(p + 1) * in_size])).collect();
    let mut out_shape = vec![shape[0], shape[1]];
    out_shape.resize(shape.len(), 1);
    Ok(Tensor::from_vec(&out_shape, y)?)
}

fn f32_arg<'a>(op: &'static str, t: &'a Tensor) -> Result<ArrayViewD<'a, f32>, KernelError> {
    t.view_in_place::<f32>().ok_or_else(|| KernelError::Unsupported {
        op,
        detail: format!("input X has dtype {}, only f32 is supported", t.dtype()),
    })
}
