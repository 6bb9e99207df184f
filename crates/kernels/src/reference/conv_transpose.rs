//! Transposed convolution (ONNX `ConvTranspose`): N-D, grouped, strided, dilated, padded,
//! with `output_padding` and `output_shape`.
//!
//! For each group the weight matrix (transposed) multiplies the input, giving one row per output
//! channel and kernel offset and one column per input position (col2im form); each entry is then
//! added at output position `input * stride + offset * dilation - pad_begin` when that lies
//! inside the output.

use super::conv::{bias_values, contiguous, output_with_bias, row_major_strides};
use crate::KernelError;
use lithe_ir::Tensor;
use lithe_ir::op::{ConvTransposeAttrs, TransposeAxis};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewD, ArrayViewMut2, IxDyn};

const OP: &str = "ConvTranspose";

/// Transposed convolution of `x` (`N x C_in x D1 x ... x Dn`) with `w`
/// (`C_in x C_out/group x k1 x ... x kn`), adding the optional bias `b` (`C_out`). f32 only.
pub fn conv_transpose(
    a: &ConvTransposeAttrs,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor, KernelError> {
    if !a.conv.epilogue.is_empty() {
        return invalid("fused epilogues are not supported".to_string());
    }
    let xa = f32_arg(x, "input X")?;
    let wa = f32_arg(w, "weight W")?;
    let (xs, ws) = (xa.shape(), wa.shape());
    if xs.len() < 3 {
        return invalid(format!("input must have rank >= 3 (N x C x spatial...), got shape {xs:?}"));
    }
    if ws.len() != xs.len() {
        return invalid(format!("weight shape {ws:?} has rank {}, input shape {xs:?} has rank {}", ws.len(), xs.len()));
    }
    let group = a.conv.group;
    if group == 0 {
        return invalid("group must be at least 1".to_string());
    }
    let (batch, c_in, mg) = (xs[0], xs[1], ws[1]);
    if ws[0] != c_in {
        return invalid(format!("input has {c_in} channels but weight shape {ws:?} expects {}", ws[0]));
    }
    if c_in % group != 0 {
        return invalid(format!("input channels {c_in} are not divisible by group {group}"));
    }
    if let Some(k) = &a.conv.kernel_shape
        && k.as_slice() != &ws[2..]
    {
        return invalid(format!("kernel_shape {k:?} does not match weight spatial shape {:?}", &ws[2..]));
    }
    let axes = a.axes(&xs[2..], &ws[2..]).map_err(|e| KernelError::Invalid { op: OP, detail: e.to_string() })?;
    let c_out = mg.checked_mul(group).ok_or_else(|| KernelError::Invalid {
        op: OP,
        detail: format!("{mg} x group {group} output channels overflow"),
    })?;
    let bias = bias_values(OP, b, c_out)?;

    let cg = c_in / group;
    let in_size: usize = xs[2..].iter().product();
    let out_spatial: Vec<usize> = axes.iter().map(|t| t.output).collect();
    let mut shape = vec![batch, c_out];
    shape.extend_from_slice(&out_spatial);
    super::checked_num_elements(OP, &shape)?;
    let out_size: usize = out_spatial.iter().product();
    let kernel_size: usize = ws[2..].iter().product();
    let rows = mg * kernel_size;
    super::checked_num_elements(OP, &[rows, in_size])?;

    let x_data = contiguous(&xa);
    let w_data = contiguous(&wa);
    // Per spatial axis, per kernel offset: the output index each input position adds into.
    let taps: Vec<Vec<Vec<Option<usize>>>> = axes.iter().map(transpose_taps).collect();
    let out_strides = row_major_strides(&out_spatial);

    let mut y = output_with_bias(batch * c_out, out_size, bias.as_deref());
    let mut cols = vec![0f32; rows * in_size];
    for n in 0..batch {
        for g in 0..group {
            let first_in = (n * c_in + g * cg) * in_size;
            let xg =
                ArrayView2::from_shape((cg, in_size), &x_data[first_in..first_in + cg * in_size]).map_err(shape_bug)?;
            let wg =
                ArrayView2::from_shape((cg, rows), &w_data[g * cg * rows..(g + 1) * cg * rows]).map_err(shape_bug)?;
            let mut cv = ArrayViewMut2::from_shape((rows, in_size), &mut cols[..]).map_err(shape_bug)?;
            general_mat_mul(1.0, &wg.t(), &xg, 0.0, &mut cv);
            for m in 0..mg {
                let first_out = (n * c_out + g * mg + m) * out_size;
                let plane = &mut y[first_out..first_out + out_size];
                for (kf, kidx) in ndarray::indices(IxDyn(&ws[2..])).into_iter().enumerate() {
                    let row_taps: Vec<&[Option<usize>]> =
                        taps.iter().enumerate().map(|(ax, t)| t[kidx[ax]].as_slice()).collect();
                    let row = m * kernel_size + kf;
                    scatter_row(&cols[row * in_size..(row + 1) * in_size], plane, 0, &row_taps, &out_strides);
                }
            }
        }
    }
    Ok(Tensor::from_vec(&shape, y)?)
}

/// For one spatial axis: `taps[k][i]` is the output index that input position `i` reaches
/// through kernel offset `k`, or `None` when it falls outside the (cropped) output.
fn transpose_taps(t: &TransposeAxis) -> Vec<Vec<Option<usize>>> {
    (0..t.kernel)
        .map(|k| {
            (0..t.input)
                .map(|i| (i * t.stride + k * t.dilation).checked_sub(t.pad_begin).filter(|&o| o < t.output))
                .collect()
        })
        .collect()
}

/// Add `src`, laid out row-major over the input positions of the axes in `taps`, into
/// `dst[base + sum(taps[ax][i_ax] * strides[ax])]`, skipping entries whose tap is `None`.
fn scatter_row(src: &[f32], dst: &mut [f32], base: usize, taps: &[&[Option<usize>]], strides: &[usize]) {
    let Some((first, rest)) = taps.split_first() else {
        if let Some(v) = src.first() {
            dst[base] += v;
        }
        return;
    };
    if rest.is_empty() {
        // Innermost axis: one element per input position.
        for (v, tap) in src.iter().zip(first.iter()) {
            if let Some(o) = tap {
                dst[base + o * strides[0]] += v;
            }
        }
        return;
    }
    let inner = src.len() / first.len().max(1);
    for (chunk, tap) in src.chunks(inner.max(1)).zip(first.iter()) {
        if let Some(o) = tap {
            scatter_row(chunk, dst, base + o * strides[0], rest, &strides[1..]);
        }
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
