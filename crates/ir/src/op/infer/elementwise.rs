//! Rules of the elementwise operators: unary maps, broadcasting binary and variadic ops,
//! Clip, PRelu, Where, Cast and Dropout.

use super::common::{Args, broadcast_shapes, check_unidirectional, not_single, one, same_dtype, show, want_dtype};
use crate::{DType, IrError, Shape, TypeInfo};

/// Output equal to input 0 (type and shape).
pub(super) fn unary(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    Ok(vec![x.info.clone()])
}

/// Clip: X, min?, max? (scalars of X's dtype).
pub(super) fn clip(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    for (slot, what) in [(1, "min"), (2, "max")] {
        if let Some(b) = a.opt(slot) {
            same_dtype(a.op, "X", &x, what, &b)?;
            if let Some(s) = &b.info.shape
                && (not_single(s) || s.rank() > 1)
            {
                return Err(IrError::Shape(format!("Clip: {what} must be a scalar, got shape {s}")));
            }
        }
    }
    Ok(vec![x.info.clone()])
}

/// PRelu: slope broadcasts to X (unidirectionally); output is X.
pub(super) fn prelu(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let slope = a.req(1, "slope")?;
    same_dtype(a.op, "X", &x, "slope", &slope)?;
    if let (Some(xs), Some(ss)) = (&x.info.shape, &slope.info.shape) {
        check_unidirectional(a.op, "slope", ss, xs)?;
    }
    Ok(vec![x.info.clone()])
}

/// Add/Sub/Mul/Div: two inputs of one dtype, broadcast.
pub(super) fn arithmetic(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "A")?;
    let y = a.req(1, "B")?;
    same_dtype(a.op, "A", &x, "B", &y)?;
    let s = broadcast_shapes(a.op, &[x.info.shape.as_ref(), y.info.shape.as_ref()])?;
    Ok(one(x.info.dtype, s))
}

/// Pow: base and exponent may have different dtypes; the output has the base's.
pub(super) fn pow(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let y = a.req(1, "Y")?;
    let s = broadcast_shapes(a.op, &[x.info.shape.as_ref(), y.info.shape.as_ref()])?;
    Ok(one(x.info.dtype, s))
}

/// Equal: two inputs of one dtype, broadcast, bool output.
pub(super) fn equal(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "A")?;
    let y = a.req(1, "B")?;
    same_dtype(a.op, "A", &x, "B", &y)?;
    let s = broadcast_shapes(a.op, &[x.info.shape.as_ref(), y.info.shape.as_ref()])?;
    Ok(one(DType::Bool, s))
}

/// Where: bool condition, X and Y of one dtype, all three broadcast.
pub(super) fn where_(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let c = a.req(0, "condition")?;
    let x = a.req(1, "X")?;
    let y = a.req(2, "Y")?;
    want_dtype(a.op, "condition", &c, DType::Bool)?;
    same_dtype(a.op, "X", &x, "Y", &y)?;
    let s = broadcast_shapes(a.op, &[c.info.shape.as_ref(), x.info.shape.as_ref(), y.info.shape.as_ref()])?;
    Ok(one(x.info.dtype, s))
}

/// Min/Max: one or more inputs of one dtype, all broadcast.
pub(super) fn variadic(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let first = a.req(0, "data_0")?;
    let mut shapes: Vec<Option<&Shape>> = Vec::with_capacity(a.inputs.len());
    for slot in 0..a.inputs.len() {
        let i = a.req(slot, "data_i")?;
        same_dtype(a.op, "data_0", &first, &format!("data_{slot}"), &i)?;
        shapes.push(i.info.shape.as_ref());
    }
    let s = broadcast_shapes(a.op, &shapes)?;
    Ok(one(first.info.dtype, s))
}

/// Cast: shape of the input, dtype `to`.
pub(super) fn cast(a: &Args, to: DType) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "input")?;
    Ok(one(to, x.info.shape.clone()))
}

/// Dropout (inference): output is the input; the optional mask is bool of the same shape.
/// Inputs ratio and training_mode, when present, must be scalars.
pub(super) fn dropout(a: &Args, num_outputs: usize) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    if let Some(t) = a.opt(2) {
        want_dtype(a.op, "training_mode", &t, DType::Bool)?;
    }
    for (slot, what) in [(1, "ratio"), (2, "training_mode")] {
        if let Some(i) = a.opt(slot)
            && i.info.shape.as_ref().is_some_and(not_single)
        {
            return Err(IrError::Shape(format!(
                "Dropout: {what} must be a scalar, got shape {}",
                show(i.info.shape.as_ref())
            )));
        }
    }
    let mut out = vec![x.info.clone()];
    if num_outputs == 2 {
        out.push(TypeInfo { dtype: DType::Bool, shape: x.info.shape.clone() });
    }
    Ok(out)
}
