//! IR tensors and types to ONNX: `TensorProto` (raw little-endian data), element type codes and
//! `ValueInfoProto` (symbolic dims as `dim_param`).

use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::{Dimension, dimension};
use crate::proto::{TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto};
use lithe_ir::{DType, Dim, Tensor, TensorView, TypeInfo};

/// The ONNX `TensorProto.DataType` code of an IR dtype.
pub(crate) fn dtype_code(d: DType) -> i32 {
    let t = match d {
        DType::F32 => DataType::Float,
        DType::F16 => DataType::Float16,
        DType::I8 => DataType::Int8,
        DType::U8 => DataType::Uint8,
        DType::I16 => DataType::Int16,
        DType::I32 => DataType::Int32,
        DType::I64 => DataType::Int64,
        DType::Bool => DataType::Bool,
    };
    t as i32
}

/// The elements of `t` as ONNX `raw_data`: little-endian, row-major, bools one byte each.
fn raw_bytes(t: &Tensor) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(it: impl Iterator<Item = T>, n: usize, f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * N);
        for x in it {
            out.extend_from_slice(&f(x));
        }
        out
    }
    let n = t.len();
    // `iter()` walks the logical (row-major) order whatever the memory layout.
    match t.data_view() {
        TensorView::F32(a) => le(a.iter().copied(), n, f32::to_le_bytes),
        TensorView::F16(a) => le(a.iter().copied(), n, |x| x.to_bits().to_le_bytes()),
        TensorView::I8(a) => a.iter().map(|&x| x as u8).collect(),
        TensorView::U8(a) => a.iter().copied().collect(),
        TensorView::I16(a) => le(a.iter().copied(), n, i16::to_le_bytes),
        TensorView::I32(a) => le(a.iter().copied(), n, i32::to_le_bytes),
        TensorView::I64(a) => le(a.iter().copied(), n, i64::to_le_bytes),
        TensorView::Bool(a) => a.iter().map(|&x| u8::from(x)).collect(),
    }
}

/// `t` as a named `TensorProto` with raw data. Quantization parameters attached to the tensor
/// are not written (ONNX keeps them in QuantizeLinear/DequantizeLinear inputs instead).
pub(crate) fn tensor_proto(name: &str, t: &Tensor) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        data_type: dtype_code(t.dtype()),
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        raw_data: raw_bytes(t),
        ..Default::default()
    }
}

/// A `ValueInfoProto` for a value: element type and, when the rank is known, the shape
/// (known sizes as `dim_value`, symbols as `dim_param`, unknown sizes empty).
pub(crate) fn value_info(name: &str, ty: &TypeInfo) -> ValueInfoProto {
    let shape = ty.shape.as_ref().map(|s| TensorShapeProto {
        dim: s
            .dims()
            .iter()
            .map(|d| Dimension {
                value: match d {
                    Dim::Known(n) => Some(dimension::Value::DimValue(*n as i64)),
                    Dim::Sym(p) => Some(dimension::Value::DimParam(p.clone())),
                    Dim::Unknown => None,
                },
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: dtype_code(ty.dtype), shape })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_data::tensor_from_proto;
    use half::f16;

    #[test]
    fn every_dtype_round_trips() {
        let cases = vec![
            Tensor::from_vec(&[2, 2], vec![1.5f32, -0.0, f32::INFINITY, 3.25]).unwrap(),
            Tensor::from_vec(&[3], vec![f16::from_f32(0.5), f16::from_f32(-2.0), f16::NAN]).unwrap(),
            Tensor::from_vec(&[3], vec![-128i8, 0, 127]).unwrap(),
            Tensor::from_vec(&[3], vec![0u8, 128, 255]).unwrap(),
            Tensor::from_vec(&[2], vec![i16::MIN, i16::MAX]).unwrap(),
            Tensor::from_vec(&[2], vec![i32::MIN, 7]).unwrap(),
            Tensor::from_vec(&[1, 2], vec![i64::MAX, -9]).unwrap(),
            Tensor::from_vec(&[3], vec![true, false, true]).unwrap(),
            Tensor::scalar(42i64),
            Tensor::zeros(DType::F32, &[0, 4]),
        ];
        for t in cases {
            let p = tensor_proto("t", &t);
            let back = tensor_from_proto(&p, None).unwrap();
            assert_eq!(back.dtype(), t.dtype());
            assert_eq!(back.shape(), t.shape());
            assert_eq!(raw_bytes(&back), raw_bytes(&t), "{t:?}");
        }
    }
}
