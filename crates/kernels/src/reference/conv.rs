//! Convolution (ONNX `Conv`): N-D, grouped (incl. depthwise), strided, dilated and padded.
//!
//! The input of each group is unfolded into a column matrix (im2col: one row per input channel
//! and kernel offset, one column per output position, zeros where a tap falls in the padding)
//! and multiplied by that group's weight matrix.

use crate::KernelError;
use lithe_ir::Tensor;
use lithe_ir::op::{AxisWindow, ConvAttrs};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewD, ArrayViewMut2, IxDyn};
use std::borrow::Cow;

const OP: &str = "Conv";

/// Convolve `x` (`N x C_in x D1 x ... x Dn`) with `w` (`C_out x C_in/group x k1 x ... x kn`),
/// adding the optional bias `b` (`C_out`). f32 only.
pub fn conv(a: &ConvAttrs, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor, KernelError> {
    let xa = f32_arg(x, "input X")?;
    let wa = f32_arg(w, "weight W")?;
    let (xs, ws) = (xa.shape(), wa.shape());
    if xs.len() < 3 {
        return invalid(format!("input must have rank >= 3 (N x C x spatial...), got shape {xs:?}"));
    }
    if ws.len() != xs.len() {
        return invalid(format!("weight shape {ws:?} has rank {}, input shape {xs:?} has rank {}", ws.len(), xs.len()));
    }
    let group = a.group;
    if group == 0 {
        return invalid("group must be at least 1".to_string());
    }
    let (batch, c_in, c_out, cg) = (xs[0], xs[1], ws[0], ws[1]);
    if cg.checked_mul(group) != Some(c_in) {
        return invalid(format!("input has {c_in} channels but weight expects {cg} x group {group}"));
    }
    if c_out % group != 0 {
        return invalid(format!("weight has {c_out} output channels, not divisible by group {group}"));
    }
    if let Some(k) = &a.kernel_shape
        && k.as_slice() != &ws[2..]
    {
        return invalid(format!("kernel_shape {k:?} does not match weight spatial shape {:?}", &ws[2..]));
    }
    let windows = a.windows(&xs[2..], &ws[2..]).map_err(|e| KernelError::Invalid { op: OP, detail: e.to_string() })?;
    let bias = bias_values(OP, b, c_out)?;

    let mg = c_out / group;
    let in_spatial: Vec<usize> = xs[2..].to_vec();
    let out_spatial: Vec<usize> = windows.iter().map(|w| w.output).collect();
    let in_size: usize = in_spatial.iter().product();
    let mut shape = vec![batch, c_out];
    shape.extend_from_slice(&out_spatial);
    super::checked_num_elements(OP, &shape)?;
    let out_size: usize = out_spatial.iter().product();
    let kernel_size: usize = ws[2..].iter().product();
    let rows = cg * kernel_size;
    super::checked_num_elements(OP, &[rows, out_size])?;

    let x_data = contiguous(&xa);
    let w_data = contiguous(&wa);
    // Per spatial axis, per kernel offset: the input index read by each output position.
    let taps: Vec<Vec<Vec<Option<usize>>>> = windows.iter().map(conv_taps).collect();
    let in_strides = row_major_strides(&in_spatial);

    let mut y = output_with_bias(batch * c_out, out_size, bias.as_deref());
    let mut cols = vec![0f32; rows * out_size];
    for n in 0..batch {
        for g in 0..group {
            cols.fill(0.0);
            for c in 0..cg {
                let ch = n * c_in + g * cg + c;
                let src = &x_data[ch * in_size..(ch + 1) * in_size];
                for (kf, kidx) in ndarray::indices(IxDyn(&ws[2..])).into_iter().enumerate() {
                    let row_taps: Vec<&[Option<usize>]> =
                        taps.iter().enumerate().map(|(ax, t)| t[kidx[ax]].as_slice()).collect();
                    let row = c * kernel_size + kf;
                    gather_row(&mut cols[row * out_size..(row + 1) * out_size], src, 0, &row_taps, &in_strides);
                }
            }
            let wg = &w_data[g * mg * rows..(g + 1) * mg * rows];
            let wg = ArrayView2::from_shape((mg, rows), wg).map_err(shape_bug)?;
            let cv = ArrayView2::from_shape((rows, out_size), &cols[..]).map_err(shape_bug)?;
            let first = (n * c_out + g * mg) * out_size;
            let yg = &mut y[first..first + mg * out_size];
            let mut yv = ArrayViewMut2::from_shape((mg, out_size), yg).map_err(shape_bug)?;
            general_mat_mul(1.0, &wg, &cv, 1.0, &mut yv);
        }
    }
    Ok(Tensor::from_vec(&shape, y)?)
}

/// For one spatial axis: `taps[k][o]` is the input index that kernel offset `k` reads for
/// output position `o`, or `None` when it falls in the padding.
fn conv_taps(w: &AxisWindow) -> Vec<Vec<Option<usize>>> {
    (0..w.kernel)
        .map(|k| {
            (0..w.output)
                .map(|o| (o * w.stride + k * w.dilation).checked_sub(w.pad_begin).filter(|&i| i < w.input))
                .collect()
        })
        .collect()
}

/// Row-major strides of a shape.
/// The bias of a conv-like op as a vector of `c_out` values, or an error naming `op`.
pub(crate) fn bias_values(op: &'static str, b: Option<&Tensor>, c_out: usize) -> Result<Option<Vec<f32>>, KernelError> {
    let Some(t) = b else { return Ok(None) };
    let ba = t.view_in_place::<f32>().ok_or_else(|| KernelError::Unsupported {
        op,
        detail: format!("bias B has dtype {}, only f32 is supported", t.dtype()),
    })?;
    if ba.shape() != [c_out] {
        return Err(KernelError::Invalid { op, detail: format!("bias shape {:?} must be [{c_out}]", ba.shape()) });
    }
    Ok(Some(ba.iter().copied().collect()))
}

/// An NC... output buffer of `planes` planes of `plane_size` elements, each plane filled with its
/// channel's bias (`bias` cycles over the planes of each batch item), or zeros.
pub(crate) fn output_with_bias(planes: usize, plane_size: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let mut y = vec![0f32; planes * plane_size];
    if let Some(bias) = bias {
        for (plane, &bv) in y.chunks_mut(plane_size.max(1)).zip(bias.iter().cycle()) {
            plane.fill(bv);
        }
    }
    y
}

/// Row-major strides of a shape.
pub(crate) fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Fill `dst`, laid out row-major over the output positions of the axes in `taps`, with
/// `src[base + sum(taps[ax][o_ax] * strides[ax])]`, leaving the zeros where a tap is `None`.
fn gather_row(dst: &mut [f32], src: &[f32], base: usize, taps: &[&[Option<usize>]], strides: &[usize]) {
    let Some((first, rest)) = taps.split_first() else {
        if let Some(d) = dst.first_mut() {
            *d = src[base];
        }
        return;
    };
    if rest.is_empty() {
        // Innermost axis: one element per output position.
        for (d, tap) in dst.iter_mut().zip(first.iter()) {
            if let Some(i) = tap {
                *d = src[base + i * strides[0]];
            }
        }
        return;
    }
    let inner = dst.len() / first.len().max(1);
    for (chunk, tap) in dst.chunks_mut(inner.max(1)).zip(first.iter()) {
        if let Some(i) = tap {
            gather_row(chunk, src, base + i * strides[0], rest, &strides[1..]);
        }
    }
}

/// The elements of `a` in row-major order, borrowed when already contiguous.
pub(crate) fn contiguous<'a, T: Clone>(a: &'a ArrayViewD<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

fn f32_arg<'a>(t: &'a Tensor, what: &str) -> Result<ArrayViewD<'a, f32>, KernelError> {
    t.view_in_place::<f32>().ok_or_else(|| KernelError::Unsupported {
        op: OP,
        detail: format!("{what} has dtype {}, only f32 is supported", t.dtype()),
    })
}

fn invalid<T>(detail: String) -> Result<T, KernelError> {
    Err(KernelError::Invalid { op: OP, detail })
}

fn shape_bug(e: ndarray::ShapeError) -> KernelError {
    KernelError::Invalid { op: OP, detail: format!("internal shape error: {e}") }
}
