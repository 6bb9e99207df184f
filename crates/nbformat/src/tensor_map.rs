//! Dtypes, shapes, value types and tensors: IR to protobuf and back, with the weights section.

use crate::header::{ALIGN, align_up};
use crate::{NbError, pb};
use half::f16;
use lithe_ir::{DType, Dim, Element, QuantParams, Shape, SharedBytes, Tensor, TensorData, TypeInfo};
use ndarray::{ArrayD, IxDyn};

/// The protobuf code of a dtype.
pub fn dtype_to_pb(d: DType) -> pb::DataType {
    match d {
        DType::F32 => pb::DataType::F32,
        DType::F16 => pb::DataType::F16,
        DType::I8 => pb::DataType::I8,
        DType::U8 => pb::DataType::U8,
        DType::I16 => pb::DataType::I16,
        DType::I32 => pb::DataType::I32,
        DType::I64 => pb::DataType::I64,
        DType::Bool => pb::DataType::Bool,
    }
}

/// The dtype of a protobuf code; `context` and `field` name it in the error.
pub fn dtype_from_pb(code: i32, context: &dyn Fn() -> String, field: &'static str) -> Result<DType, NbError> {
    Ok(match pb::DataType::try_from(code) {
        Ok(pb::DataType::F32) => DType::F32,
        Ok(pb::DataType::F16) => DType::F16,
        Ok(pb::DataType::I8) => DType::I8,
        Ok(pb::DataType::U8) => DType::U8,
        Ok(pb::DataType::I16) => DType::I16,
        Ok(pb::DataType::I32) => DType::I32,
        Ok(pb::DataType::I64) => DType::I64,
        Ok(pb::DataType::Bool) => DType::Bool,
        Ok(pb::DataType::Unspecified) | Err(_) => {
            return Err(NbError::InvalidField {
                context: context(),
                field,
                detail: format!("unknown dtype code {code}"),
            });
        }
    })
}

/// A `u64` from the file as `usize`.
pub fn to_usize(v: u64, context: &dyn Fn() -> String, field: &'static str) -> Result<usize, NbError> {
    usize::try_from(v).map_err(|_| NbError::InvalidField {
        context: context(),
        field,
        detail: format!("{v} does not fit this platform's usize"),
    })
}

/// A list of `u64` from the file as `usize`s.
pub fn to_usizes(v: &[u64], context: &dyn Fn() -> String, field: &'static str) -> Result<Vec<usize>, NbError> {
    v.iter().map(|&x| to_usize(x, context, field)).collect()
}

/// A list of `usize` for the file.
pub fn to_u64s(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

/// The protobuf form of a value type.
pub fn value_to_pb(name: &str, ty: &TypeInfo) -> pb::Value {
    pb::Value {
        name: name.to_string(),
        dtype: dtype_to_pb(ty.dtype) as i32,
        shape: ty.shape.as_ref().map(|s| pb::Shape {
            dims: s
                .dims()
                .iter()
                .map(|d| pb::Dim {
                    kind: Some(match d {
                        Dim::Known(n) => pb::dim::Kind::Known(*n as u64),
                        Dim::Sym(s) => pb::dim::Kind::Symbol(s.clone()),
                        Dim::Unknown => pb::dim::Kind::Unknown(pb::Empty {}),
                    }),
                })
                .collect(),
        }),
    }
}

/// The value type of a protobuf value.
pub fn type_from_pb(v: &pb::Value, context: &dyn Fn() -> String) -> Result<TypeInfo, NbError> {
    let dtype = dtype_from_pb(v.dtype, context, "dtype")?;
    let shape = match &v.shape {
        None => None,
        Some(s) => {
            let mut dims = Vec::with_capacity(s.dims.len());
            for d in &s.dims {
                dims.push(match &d.kind {
                    Some(pb::dim::Kind::Known(n)) => Dim::Known(to_usize(*n, context, "shape")?),
                    Some(pb::dim::Kind::Symbol(s)) => Dim::Sym(s.clone()),
                    Some(pb::dim::Kind::Unknown(_)) => Dim::Unknown,
                    None => {
                        return Err(NbError::InvalidField {
                            context: context(),
                            field: "shape",
                            detail: "a dimension has no kind (written by a newer lithe?)".into(),
                        });
                    }
                });
            }
            Some(Shape(dims))
        }
    };
    Ok(TypeInfo { dtype, shape })
}

/// Collects tensor data for the weights section, each tensor at a 64-byte aligned file offset.
#[derive(Debug)]
pub struct WeightsWriter {
    base: u64,
    data: Vec<u8>,
}

impl WeightsWriter {
    /// A writer for a weights section starting at file offset `base` (a multiple of 64).
    pub fn new(base: u64) -> Self {
        debug_assert_eq!(base % ALIGN, 0);
        WeightsWriter { base, data: Vec::new() }
    }

    /// Append a tensor's elements (row-major, little-endian) and return where they are.
    pub fn push(&mut self, t: &TensorData) -> pb::WeightRef {
        let start = (self.data.len() as u64).div_ceil(ALIGN) * ALIGN;
        self.data.resize(start as usize, 0);
        append_le(&mut self.data, t);
        pb::WeightRef { offset: self.base + start, length: self.data.len() as u64 - start }
    }

    /// The section bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }
}

/// Append the elements of `t` in row-major order, little-endian (bool as one byte 0 or 1).
pub fn append_le(out: &mut Vec<u8>, t: &TensorData) {
    match t {
        TensorData::F32(a) => a.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::F16(a) => a.iter().for_each(|x| out.extend_from_slice(&x.to_bits().to_le_bytes())),
        TensorData::I8(a) => a.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::U8(a) => out.extend(a.iter().copied()),
        TensorData::I16(a) => a.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::I32(a) => a.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::I64(a) => a.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::Bool(a) => out.extend(a.iter().map(|&b| u8::from(b))),
    }
}

/// Largest tensor the writer stores inline in the program section (ConstantOfShape values).
pub const MAX_INLINE_BYTES: usize = 256;

/// The protobuf form of a tensor: data in the weights section, or inline when `inline` is set.
pub fn tensor_to_pb(t: &Tensor, weights: &mut WeightsWriter, inline: bool) -> pb::Tensor {
    let data = if inline {
        let mut b = Vec::with_capacity(t.size_bytes());
        append_le(&mut b, t.data());
        pb::tensor::Data::Inline(b)
    } else {
        pb::tensor::Data::Weights(weights.push(t.data()))
    };
    pb::Tensor {
        dtype: dtype_to_pb(t.dtype()) as i32,
        shape: to_u64s(t.shape()),
        data: Some(data),
        quant: t.quant.as_ref().map(|q| pb::QuantParams {
            scale: q.scale.clone(),
            zero_point: q.zero_point.clone(),
            axis: q.axis.map(|a| a as u64),
        }),
    }
}

/// The weights section of a file being read.
#[derive(Clone, Copy)]
pub struct WeightsView<'a> {
    /// The whole file.
    pub file: &'a [u8],
    /// The section's byte range in the file, if the file has one.
    pub range: Option<(u64, u64)>,
    /// The same bytes as `file`, shared: tensors then read their elements in place.
    pub shared: Option<&'a SharedBytes>,
}

impl<'a> WeightsView<'a> {
    /// Check a weight reference: aligned, inside the weights section. Returns its byte range.
    pub fn check(&self, w: &pb::WeightRef, context: &dyn Fn() -> String) -> Result<(u64, u64), NbError> {
        let (start, end) = self.range.ok_or(NbError::MissingSection("weights"))?;
        let bad = |detail: String| NbError::BadReference { context: context(), field: "weights", detail };
        let stop = w
            .offset
            .checked_add(w.length)
            .ok_or_else(|| bad(format!("offset {} + length {} overflows", w.offset, w.length)))?;
        if !w.offset.is_multiple_of(ALIGN) {
            return Err(bad(format!("offset {} is not a multiple of {ALIGN}", w.offset)));
        }
        if w.offset < start || stop > end {
            return Err(bad(format!("bytes {}..{stop} are outside the weights section {start}..{end}", w.offset)));
        }
        Ok((w.offset, stop))
    }

    /// The bytes of a checked weight reference.
    fn bytes(&self, w: &pb::WeightRef, context: &dyn Fn() -> String) -> Result<&'a [u8], NbError> {
        let (a, b) = self.check(w, context)?;
        // Both ends are inside the section, which is inside the file, so they fit usize.
        self.file.get(a as usize..b as usize).ok_or_else(|| NbError::BadReference {
            context: context(),
            field: "weights",
            detail: format!("bytes {a}..{b} are outside the file"),
        })
    }
}

fn decode_elems<T: Element, const N: usize>(
    bytes: &[u8],
    shape: &[usize],
    conv: fn([u8; N]) -> T,
) -> Result<TensorData, String> {
    let v: Vec<T> = bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            conv(a)
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).map(T::wrap).map_err(|e| e.to_string())
}

/// The tensor of a protobuf tensor, its data read from the weights section or inline.
/// Checks that element count times element size equals the stored byte length.
pub fn tensor_from_pb(
    t: &pb::Tensor,
    weights: &WeightsView<'_>,
    context: &dyn Fn() -> String,
) -> Result<Tensor, NbError> {
    let bad = |detail: String| NbError::BadTensor { context: context(), detail };
    let dtype = dtype_from_pb(t.dtype, context, "tensor dtype")?;
    let shape = to_usizes(&t.shape, context, "tensor shape")?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("shape {shape:?} has more elements than fit in memory")))?;
    let size = count
        .checked_mul(dtype.size_bytes())
        .ok_or_else(|| bad(format!("shape {shape:?} of {dtype} has more bytes than fit in memory")))?;
    let bytes: &[u8] = match &t.data {
        Some(pb::tensor::Data::Weights(w)) => {
            let bytes = weights.bytes(w, context)?;
            if let Some(shared) = weights.shared
                && bytes.len() == size
                && let Ok(mut t_in_place) = usize::try_from(w.offset)
                    .map_err(|e| e.to_string())
                    .and_then(|at| Tensor::in_place(dtype, &shape, shared.clone(), at).map_err(|e| e.to_string()))
            {
                t_in_place.quant = quant_from_pb(t, context)?;
                return Ok(t_in_place);
            }
            bytes
        }
        Some(pb::tensor::Data::Inline(b)) => b,
        None => return Err(NbError::MissingField { context: context(), field: "tensor data" }),
    };
    if bytes.len() != size {
        return Err(bad(format!("{dtype} shape {shape:?} needs {size} bytes, the file stores {} bytes", bytes.len())));
    }
    let data = match dtype {
        DType::F32 => decode_elems(bytes, &shape, f32::from_le_bytes),
        DType::F16 => decode_elems(bytes, &shape, |b| f16::from_bits(u16::from_le_bytes(b))),
        DType::I8 => decode_elems(bytes, &shape, i8::from_le_bytes),
        DType::U8 => decode_elems(bytes, &shape, u8::from_le_bytes),
        DType::I16 => decode_elems(bytes, &shape, i16::from_le_bytes),
        DType::I32 => decode_elems(bytes, &shape, i32::from_le_bytes),
        DType::I64 => decode_elems(bytes, &shape, i64::from_le_bytes),
        DType::Bool => {
            if let Some(b) = bytes.iter().find(|&&b| b > 1) {
                return Err(bad(format!("bool element byte {b} is neither 0 nor 1")));
            }
            decode_elems(bytes, &shape, |b: [u8; 1]| b[0] != 0)
        }
    }
    .map_err(|e| bad(format!("shape {shape:?}: {e}")))?;
    let mut out = Tensor::from(data);
    out.quant = quant_from_pb(t, context)?;
    Ok(out)
}

/// The quantization parameters of a protobuf tensor.
fn quant_from_pb(t: &pb::Tensor, context: &dyn Fn() -> String) -> Result<Option<QuantParams>, NbError> {
    Ok(match &t.quant {
        None => None,
        Some(q) => Some(QuantParams {
            scale: q.scale.clone(),
            zero_point: q.zero_point.clone(),
            axis: q.axis.map(|a| to_usize(a, context, "quant axis")).transpose()?,
        }),
    })
}

/// Where the weights section of a file with `table_end` header-and-table bytes starts.
pub fn weights_base(table_end: usize) -> u64 {
    align_up(table_end as u64).unwrap_or(ALIGN)
}
