//! Rules of the operators that work along axes: Reduce*, ArgMax, Softmax and
//! LayerNormalization.

use super::common::{Args, axis, check_unidirectional, int_values, is_empty_input, one, unknown_dims, vector_len};
use crate::op::{ArgAttrs, ReduceAttrs};
use crate::{DType, Dim, IrError, Shape, TypeInfo};

/// Softmax: output is the input; the axis must be valid.
pub(super) fn softmax(a: &Args, ax: i64) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "input")?;
    if let Some(s) = &x.info.shape {
        axis(a.op, ax, s.rank().max(1))?;
    }
    Ok(vec![x.info.clone()])
}

/// Reduce the given axes of `s` (keeping them as 1 or removing them).
fn reduce_axes(s: &Shape, axes: &[usize], keepdims: bool) -> Shape {
    let mut out = Vec::with_capacity(s.rank());
    for (i, d) in s.0.iter().enumerate() {
        if axes.contains(&i) {
            if keepdims {
                out.push(Dim::Known(1));
            }
        } else {
            out.push(d.clone());
        }
    }
    Shape(out)
}

/// ReduceMean/Sum/Max: data, axes? (i64).
pub(super) fn reduce(a: &Args, r: &ReduceAttrs) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let dtype = x.info.dtype;
    let axes_in = a.opt(1).filter(|i| !is_empty_input(i));
    let axes = match &axes_in {
        None => None,
        Some(i) => match int_values(a.op, "axes", i)? {
            Some(v) => Some(v),
            None => {
                // Axes not constant: rank is known only with keepdims (or a known axes count).
                let shape = match (&x.info.shape, r.keepdims, vector_len(i)) {
                    (Some(s), true, _) => Some(unknown_dims(s.rank())),
                    (Some(s), false, Some(k)) => Some(unknown_dims(
                        s.rank()
                            .checked_sub(k)
                            .ok_or_else(|| IrError::Shape(format!("{}: {k} axes for input {s}", a.op)))?,
                    )),
                    _ => None,
                };
                return Ok(one(dtype, shape));
            }
        },
    };
    let Some(s) = &x.info.shape else { return Ok(one(dtype, None)) };
    let axes: Vec<usize> = match axes {
        None if r.noop_with_empty_axes => return Ok(vec![x.info.clone()]),
        None => (0..s.rank()).collect(),
        Some(v) => {
            let mut out = Vec::with_capacity(v.len());
            for ax in v {
                let n = axis(a.op, ax, s.rank())?;
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            out
        }
    };
    Ok(one(dtype, Some(reduce_axes(s, &axes, r.keepdims))))
}

/// ArgMax: i64 indices along `axis`.
pub(super) fn arg_max(a: &Args, r: &ArgAttrs) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let shape = match &x.info.shape {
        None => None,
        Some(s) => {
            let ax = axis(a.op, r.axis, s.rank())?;
            Some(reduce_axes(s, &[ax], r.keepdims))
        }
    };
    Ok(one(DType::I64, shape))
}

/// LayerNormalization: X, scale, bias? -> Y (like X), Mean?, InvStdDev? (f32, X's shape
/// with the normalized axes set to 1).
pub(super) fn layer_norm(a: &Args, ax: i64, num_outputs: usize) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let scale = a.req(1, "Scale")?;
    let bias = a.opt(2);
    let mut stats = None;
    if let Some(s) = &x.info.shape {
        let first = axis(a.op, ax, s.rank())?;
        let normalized = Shape(s.0.get(first..).unwrap_or_default().to_vec());
        if let Some(ss) = &scale.info.shape {
            check_unidirectional(a.op, "Scale", ss, &normalized)?;
        }
        if let Some(bs) = bias.as_ref().and_then(|b| b.info.shape.as_ref()) {
            check_unidirectional(a.op, "B", bs, &normalized)?;
        }
        stats = Some(Shape(
            s.0.iter().enumerate().map(|(i, d)| if i >= first { Dim::Known(1) } else { d.clone() }).collect(),
        ));
    }
    let mut out = vec![x.info.clone()];
    for _ in 1..num_outputs {
        out.push(TypeInfo { dtype: DType::F32, shape: stats.clone() });
    }
    Ok(out)
}
