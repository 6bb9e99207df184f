//! QuantizeLinear and DequantizeLinear: the shape of the input, the dtype of the other side,
//! scales and zero points either scalars (per tensor) or one per slice along `axis`;
//! DynamicQuantizeLinear: u8 data of the input's shape with scalar scale and zero point.

use super::InferInput;
use super::common::{Args, axis, one, same_dtype, show, vector_len, want_dtype};
use crate::{DType, Dim, IrError, Shape, TypeInfo};

/// The dtypes QuantizeLinear produces.
const QUANTIZED: [DType; 3] = [DType::U8, DType::I8, DType::I16];

/// QuantizeLinear: f32 in, `to` out; a zero point, when given, has dtype `to`.
pub(super) fn quantize_linear(a: &Args, axis_attr: i64, to: DType) -> Result<Vec<TypeInfo>, IrError> {
    if !QUANTIZED.contains(&to) {
        return Err(IrError::Attribute(format!("{}: output dtype must be u8, i8 or i16, got {to}", a.op)));
    }
    let x = a.req(0, "x")?;
    want_dtype(a.op, "x", &x, DType::F32)?;
    check_params(a, &x, axis_attr)?;
    if let Some(zp) = a.opt(2) {
        want_dtype(a.op, "y_zero_point", &zp, to)?;
    }
    Ok(one(to, x.info.shape.clone()))
}

/// DequantizeLinear: u8/i8/i16/i32 in, f32 out; a zero point, when given, has q's dtype.
pub(super) fn dequantize_linear(a: &Args, axis_attr: i64) -> Result<Vec<TypeInfo>, IrError> {
    let q = a.req(0, "x")?;
    if !matches!(q.info.dtype, DType::U8 | DType::I8 | DType::I16 | DType::I32) {
        return Err(IrError::DType {
            what: format!("{} input x (u8, i8, i16 or i32)", a.op),
            expected: DType::I8,
            found: q.info.dtype,
        });
    }
    check_params(a, &q, axis_attr)?;
    if let Some(zp) = a.opt(2) {
        same_dtype(a.op, "x", &q, "x_zero_point", &zp)?;
    }
    Ok(one(DType::F32, q.info.shape.clone()))
}

/// QAdd: u8 A and B of one shape (unknown dims must agree where both are known), scalar f32
/// scales and u8 zero points; u8 out of A's shape.
pub(super) fn qadd(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "A")?;
    let y = a.req(3, "B")?;
    want_dtype(a.op, "A", &x, DType::U8)?;
    want_dtype(a.op, "B", &y, DType::U8)?;
    if let (Some(sa), Some(sb)) = (x.info.shape.as_ref(), y.info.shape.as_ref())
        && (sa.rank() != sb.rank()
            || sa.0.iter().zip(&sb.0).any(|(p, q)| matches!((p, q), (Dim::Known(p), Dim::Known(q)) if p != q)))
    {
        return Err(IrError::Shape(format!(
            "{}: A {} and B {} must have one shape",
            a.op,
            show(Some(sa)),
            show(Some(sb))
        )));
    }
    scalar_params(
        a,
        &[
            (1, "a_scale", DType::F32),
            (2, "a_zero_point", DType::U8),
            (4, "b_scale", DType::F32),
            (5, "b_zero_point", DType::U8),
            (6, "c_scale", DType::F32),
            (7, "c_zero_point", DType::U8),
        ],
    )?;
    Ok(one(DType::U8, x.info.shape.clone()))
}

/// Each `(slot, name, dtype)` input is present, of `dtype`, and holds one value (when its
/// shape is known).
fn scalar_params(a: &Args, params: &[(usize, &'static str, DType)]) -> Result<(), IrError> {
    for &(slot, what, dtype) in params {
        let i = a.req(slot, what)?;
        want_dtype(a.op, what, &i, dtype)?;
        if i.info.shape.as_ref().and_then(|s| s.num_elements()).is_some_and(|n| n != 1) {
            return Err(IrError::Shape(format!("{}: {what} must hold one value", a.op)));
        }
    }
    Ok(())
}

/// QGlobalAveragePool: u8 X of rank 4 (NCHW), scalar f32 scales and u8 zero points; u8
/// `[N, C, 1, 1]` out.
pub(super) fn qglobal_average_pool(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    want_dtype(a.op, "X", &x, DType::U8)?;
    scalar_params(
        a,
        &[
            (1, "x_scale", DType::F32),
            (2, "x_zero_point", DType::U8),
            (3, "y_scale", DType::F32),
            (4, "y_zero_point", DType::U8),
        ],
    )?;
    let shape = match x.info.shape.as_ref() {
        None => None,
        Some(s) if s.rank() == 4 => Some(Shape(vec![s.0[0].clone(), s.0[1].clone(), Dim::Known(1), Dim::Known(1)])),
        Some(s) => return Err(IrError::Shape(format!("{}: X must be NCHW (rank 4), got {}", a.op, show(Some(s))))),
    };
    Ok(one(DType::U8, shape))
}

/// DynamicQuantizeLinear: f32 in; `y` u8 of x's shape, `y_scale` f32 and `y_zero_point` u8
/// scalars.
pub(super) fn dynamic_quantize_linear(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "x")?;
    want_dtype(a.op, "x", &x, DType::F32)?;
    Ok(vec![
        TypeInfo { dtype: DType::U8, shape: x.info.shape.clone() },
        TypeInfo::new(DType::F32, Shape(Vec::new())),
        TypeInfo::new(DType::U8, Shape(Vec::new())),
    ])
}

/// Scale (slot 1, f32) and zero point (slot 2): both 0-D/1-D of one length, which is 1 or the
/// size of `axis` of the data.
fn check_params(a: &Args, data: &InferInput<'_>, axis_attr: i64) -> Result<(), IrError> {
    let scale = a.req(1, "scale")?;
    want_dtype(a.op, "scale", &scale, DType::F32)?;
    let rank_ok = |i: &InferInput<'_>| i.info.shape.as_ref().is_none_or(|s| s.rank() <= 1);
    for (slot, what) in [(1, "scale"), (2, "zero_point")] {
        if let Some(i) = a.opt(slot)
            && !rank_ok(&i)
        {
            return Err(IrError::Shape(format!(
                "{}: {what} must be a scalar or a 1-D tensor, got shape {}",
                a.op,
                show(i.info.shape.as_ref())
            )));
        }
    }
    let n_scale = vector_len(&scale);
    if let (Some(zp), Some(ns)) = (a.opt(2), n_scale)
        && let Some(nz) = vector_len(&zp)
        && nz != ns
    {
        return Err(IrError::Shape(format!("{}: zero_point has {nz} elements, scale has {ns}", a.op)));
    }
    // A one-element scale is per tensor whatever its rank (onnxruntime's reading); the axis
    // only matters for longer ones.
    let per_axis = scale.info.shape.as_ref().is_some_and(|s| s.rank() == 1) && n_scale != Some(1);
    if let (true, Some(shape)) = (per_axis, data.info.shape.as_ref()) {
        let ax = axis(a.op, axis_attr, shape.rank())?;
        if let (Some(ns), Dim::Known(d)) = (n_scale, &shape.0[ax])
            && ns != *d
            && ns != 1
        {
            return Err(IrError::Shape(format!(
                "{}: scale has {ns} elements but axis {ax} of the data has size {d} (shape {shape})",
                a.op
            )));
        }
    }
    Ok(())
}
