//! ONNX element types and value types mapped to the IR's [`DType`] and [`TypeInfo`].

use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::dimension::Value as DimValue;
use crate::proto::type_proto::Value as TypeValue;
use crate::proto::{TensorShapeProto, ValueInfoProto};
use lithe_ir::{DType, Dim, Shape, TypeInfo};

/// The largest size accepted for one dimension of an input or tensor.
pub(crate) const MAX_DIM: u64 = 1 << 32;
/// The largest element count accepted for one tensor or one fully known input shape.
pub(crate) const MAX_ELEMENTS: u64 = 1 << 40;

/// The ONNX name of a `TensorProto.DataType` code (`FLOAT`, `DOUBLE`, ...).
pub(crate) fn onnx_type_name(code: i32) -> String {
    match DataType::try_from(code) {
        Ok(t) => t.as_str_name().to_string(),
        Err(_) => format!("unknown data type {code}"),
    }
}

/// The IR dtype of an ONNX data type code, or a message naming the unsupported type.
pub(crate) fn dtype_from_onnx(code: i32) -> Result<DType, String> {
    let dt = match DataType::try_from(code) {
        Ok(DataType::Float) => DType::F32,
        Ok(DataType::Float16) => DType::F16,
        Ok(DataType::Int8) => DType::I8,
        Ok(DataType::Uint8) => DType::U8,
        Ok(DataType::Int16) => DType::I16,
        Ok(DataType::Int32) => DType::I32,
        Ok(DataType::Int64) => DType::I64,
        Ok(DataType::Bool) => DType::Bool,
        _ => {
            return Err(format!(
                "element type {} is not supported (supported: FLOAT, FLOAT16, INT8, UINT8, INT16, INT32, INT64, BOOL)",
                onnx_type_name(code)
            ));
        }
    };
    Ok(dt)
}

/// Check a dimension read from a model and convert it.
pub(crate) fn checked_dim(d: i64) -> Result<usize, String> {
    if d < 0 {
        return Err(format!("negative dimension {d}"));
    }
    if d as u64 > MAX_DIM {
        return Err(format!("dimension {d} is larger than the supported maximum {MAX_DIM}"));
    }
    usize::try_from(d).map_err(|_| format!("dimension {d} does not fit this platform"))
}

/// Element count of fixed dims, checked against overflow and [`MAX_ELEMENTS`]. The product of
/// the non-zero dims is checked too, so that no later product of a subset of them overflows.
pub(crate) fn checked_count(dims: &[usize]) -> Result<usize, String> {
    let mut nonzero: u64 = 1;
    for &d in dims.iter().filter(|&&d| d != 0) {
        nonzero = nonzero
            .checked_mul(d as u64)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| format!("shape {dims:?} has more than {MAX_ELEMENTS} elements"))?;
    }
    let n = if dims.contains(&0) { 0 } else { nonzero };
    usize::try_from(n).map_err(|_| format!("shape {dims:?} is too large for this platform"))
}

fn shape_from_proto(s: &TensorShapeProto) -> Result<Shape, String> {
    let mut dims = Vec::with_capacity(s.dim.len());
    for d in &s.dim {
        dims.push(match &d.value {
            // Exporters such as Paddle2ONNX write -1 for a dynamic size: unknown, as onnxruntime reads it.
            Some(DimValue::DimValue(v)) if *v < 0 => Dim::Unknown,
            Some(DimValue::DimValue(v)) => Dim::Known(checked_dim(*v)?),
            // "?" marks an anonymous dynamic size: each one is independent, not a shared symbol.
            Some(DimValue::DimParam(p)) if !p.is_empty() && p != "?" => Dim::Sym(p.clone()),
            _ => Dim::Unknown,
        });
    }
    let known: Vec<usize> = dims.iter().filter_map(Dim::known).collect();
    checked_count(&known)?;
    Ok(Shape(dims))
}

/// The IR type of a graph input or output, or a message saying why it has none.
pub(crate) fn type_info(vi: &ValueInfoProto) -> Result<TypeInfo, String> {
    let ty = vi.r#type.as_ref().ok_or("has no type")?;
    let TypeValue::TensorType(t) =
        ty.value.as_ref().ok_or("is not a tensor (sequence, map and optional types are not supported)")?;
    let dtype = dtype_from_onnx(t.elem_type)?;
    let shape = t.shape.as_ref().map(shape_from_proto).transpose()?;
    Ok(TypeInfo { dtype, shape })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_codes() {
        assert_eq!(dtype_from_onnx(1), Ok(DType::F32));
        assert_eq!(dtype_from_onnx(7), Ok(DType::I64));
        assert_eq!(dtype_from_onnx(10), Ok(DType::F16));
        let e = dtype_from_onnx(11).unwrap_err();
        assert!(e.contains("DOUBLE"), "{e}");
        assert!(dtype_from_onnx(99).unwrap_err().contains("unknown data type 99"));
    }

    #[test]
    fn dims_checked() {
        assert_eq!(checked_dim(3), Ok(3));
        assert!(checked_dim(-1).is_err());
        assert!(checked_dim(i64::MAX).is_err());
        assert_eq!(checked_count(&[2, 3, 4]), Ok(24));
        assert!(checked_count(&[1 << 30, 1 << 30, 1 << 30]).is_err());
        assert!(checked_count(&[0, 1 << 30, 1 << 30]).is_err());
        assert_eq!(checked_count(&[0, 5]), Ok(0));
    }
}
