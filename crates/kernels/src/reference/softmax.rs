//! `Softmax`: `exp(x - max) / sum(exp(x - max))` along one axis (opset >= 13), or over all
//! trailing axes from `axis` on (`coerce_2d`, opset < 13). Computed in f64.

use super::conv::contiguous;
use crate::KernelError;
use lithe_ir::Tensor;
use lithe_ir::op::{SoftmaxAttrs, normalize_axis};

const OP: &str = "Softmax";

/// Softmax of `x` along `a.axis` (or over `x.shape[axis..]` with `coerce_2d`). f32 only.
pub fn softmax(a: &SoftmaxAttrs, x: &Tensor) -> Result<Tensor, KernelError> {
    let xa = x.view_in_place::<f32>().ok_or_else(|| KernelError::Unsupported {
        op: OP,
        detail: format!("input has dtype {}, only f32 is supported", x.dtype()),
    })?;
    let shape = xa.shape();
    let axis =
        normalize_axis(a.axis, shape.len()).map_err(|e| KernelError::Invalid { op: OP, detail: e.to_string() })?;
    // Each softmax group is `len` elements `stride` apart; groups start in blocks of `len * stride`.
    let (len, stride): (usize, usize) = if a.coerce_2d {
        (shape[axis..].iter().product(), 1)
    } else {
        (shape[axis], shape[axis + 1..].iter().product())
    };
    let data = contiguous(&xa);
    let mut y = vec![0f32; data.len()];
    let block = len * stride;
    if block > 0 {
        for (src, dst) in data.chunks(block).zip(y.chunks_mut(block)) {
            for j in 0..stride {
                let max = (0..len).map(|i| src[i * stride + j]).fold(f32::NEG_INFINITY, f32::max);
                let max = f64::from(max);
                let sum: f64 = (0..len).map(|i| (f64::from(src[i * stride + j]) - max).exp()).sum();
                for i in 0..len {
                    dst[i * stride + j] = ((f64::from(src[i * stride + j]) - max).exp() / sum) as f32;
                }
            }
        }
    }
    Ok(Tensor::from_vec(shape, y)?)
}
