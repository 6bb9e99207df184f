//! Ops that create tensors from scalars: ConstantOfShape and Range.

use super::checked_num_elements;
use super::util::{array, index_list, invalid, unsupported};
use crate::KernelError;
use lithe_ir::{Element, Tensor, TensorView, dispatch_view};
use ndarray::{ArrayD, IxDyn};

/// A tensor of the shape given by the 1-D i64 `shape` input (empty: a scalar) filled with the
/// single element of `value` (whose dtype the output takes).
pub fn constant_of_shape(shape: &Tensor, value: &Tensor) -> Result<Tensor, KernelError> {
    const OP: &str = "ConstantOfShape";
    let dims = index_list(OP, "shape", shape)?
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| invalid(OP, format!("shape value {d} is negative"))))
        .collect::<Result<Vec<usize>, _>>()?;
    checked_num_elements(OP, &dims)?;
    if value.len() != 1 {
        return Err(invalid(OP, format!("value must have one element, found shape {:?}", value.shape())));
    }
    dispatch_view!(&value.data_view(), a => {
        let v = a.iter().next().copied().ok_or_else(|| invalid(OP, "value is empty"))?;
        Ok(Tensor::from(ArrayD::from_elem(IxDyn(&dims), v)))
    })
}

/// The 1-D sequence `start, start + delta, ...` up to (excluding) `limit`: its length is
/// `max(ceil((limit - start) / delta), 0)` and element `i` is `start + i * delta` (floats
/// compute it in f64 and round once). Inputs are one-element tensors of one dtype: f32, i16,
/// i32 or i64. `delta` 0, non-finite bounds and lengths above
/// [`MAX_ELEMENTS`](super::MAX_ELEMENTS) are errors.
pub fn range(start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<Tensor, KernelError> {
    const OP: &str = "Range";
    for (t, what) in [(start, "start"), (limit, "limit"), (delta, "delta")] {
        if t.len() != 1 {
            return Err(invalid(OP, format!("{what} must be a scalar, found shape {:?}", t.shape())));
        }
        if t.dtype() != start.dtype() {
            return Err(invalid(OP, format!("{what} has dtype {}, start has {}", t.dtype(), start.dtype())));
        }
    }
    match start.data_view() {
        TensorView::F32(_) => float_range(start, limit, delta),
        TensorView::I16(_) => int_range::<i16>(start, limit, delta),
        TensorView::I32(_) => int_range::<i32>(start, limit, delta),
        TensorView::I64(_) => int_range::<i64>(start, limit, delta),
        _ => Err(unsupported(OP, format!("{} inputs (only f32, i16, i32, i64)", start.dtype()))),
    }
}

fn scalar<T: Element>(t: &Tensor) -> Result<T, KernelError> {
    t.view_in_place::<T>()
        .and_then(|a| a.iter().next().copied())
        .ok_or_else(|| invalid("Range", format!("expected a {} scalar", T::DTYPE)))
}

fn length(count: f64) -> Result<usize, KernelError> {
    if !count.is_finite() {
        return Err(invalid("Range", "length is not finite"));
    }
    let n = count.max(0.0);
    if n > super::MAX_ELEMENTS as f64 {
        return Err(invalid("Range", format!("{n} elements exceed the limit of {}", super::MAX_ELEMENTS)));
    }
    Ok(n as usize)
}

fn float_range(start: &Tensor, limit: &Tensor, delta: &Tensor) -> Result<Tensor, KernelError> {
    let (s, l, d) = (scalar::<f32>(start)?, scalar::<f32>(limit)?, scalar::<f32>(delta)?);
    if d == 0.0 {
        return Err(invalid("Range", "delta must not be 0"));
    }
    // The difference in f32, then the division in f64, as onnxruntime computes the length.
    let n = length((f64::from(l - s) / f64::from(d)).ceil())?;
    let v: Vec<f32> = (0..n).map(|i| (f64::from(s) + i as f64 * f64::from(d)) as f32).collect();
    Ok(Tensor::from(array("Range", &[n], v)?))
}

fn int_range<T: Element + Into<i64> + TryFrom<i64>>(
    start: &Tensor,
    limit: &Tensor,
    delta: &Tensor,
) -> Result<Tensor, KernelError> {
    let (s, l, d): (i64, i64, i64) =
        (scalar::<T>(start)?.into(), scalar::<T>(limit)?.into(), scalar::<T>(delta)?.into());
    if d == 0 {
        return Err(invalid("Range", "delta must not be 0"));
    }
    let (diff, d128) = (i128::from(l) - i128::from(s), i128::from(d));
    let (q, r) = (diff / d128, diff % d128);
    let count = if r != 0 && ((r > 0) == (d128 > 0)) { q + 1 } else { q };
    let n = length(count as f64)?;
    let v = (0..n)
        .map(|i| {
            let x = i128::from(s) + i as i128 * d128;
            i64::try_from(x)
                .ok()
                .and_then(|x| T::try_from(x).ok())
                .ok_or_else(|| invalid("Range", "value out of range"))
        })
        .collect::<Result<Vec<T>, _>>()?;
    Ok(Tensor::from(array("Range", &[n], v)?))
}
