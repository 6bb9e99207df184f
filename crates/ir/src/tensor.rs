//! Tensors: ndarray-backed values of any supported dtype.

use crate::{DType, IrError, Shape};
use half::f16;
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

/// Quantization parameters of a tensor: `real = scale * (q - zero_point)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// One scale per tensor, or one per slice along `axis`.
    pub scale: Vec<f32>,
    /// Zero points, same length as `scale`.
    pub zero_point: Vec<i32>,
    /// The channel axis for per-axis parameters, `None` for per-tensor.
    pub axis: Option<usize>,
}

/// The storage of a tensor, one variant per dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    /// f32 elements.
    F32(ArrayD<f32>),
    /// f16 elements.
    F16(ArrayD<f16>),
    /// i8 elements.
    I8(ArrayD<i8>),
    /// u8 elements.
    U8(ArrayD<u8>),
    /// i16 elements.
    I16(ArrayD<i16>),
    /// i32 elements.
    I32(ArrayD<i32>),
    /// i64 elements.
    I64(ArrayD<i64>),
    /// bool elements.
    Bool(ArrayD<bool>),
}

/// Apply an expression to the array inside a [`TensorData`], whatever its dtype.
#[macro_export]
macro_rules! dispatch_tensor {
    ($data:expr, $a:ident => $body:expr) => {
        match $data {
            $crate::TensorData::F32($a) => $body,
            $crate::TensorData::F16($a) => $body,
            $crate::TensorData::I8($a) => $body,
            $crate::TensorData::U8($a) => $body,
            $crate::TensorData::I16($a) => $body,
            $crate::TensorData::I32($a) => $body,
            $crate::TensorData::I64($a) => $body,
            $crate::TensorData::Bool($a) => $body,
        }
    };
}

/// Rust element types that map to a [`DType`].
pub trait Element: Clone + Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The dtype of this element type.
    const DTYPE: DType;
    /// Wrap an array in tensor storage.
    fn wrap(a: ArrayD<Self>) -> TensorData;
    /// Borrow the array if the storage has this element type.
    fn view(d: &TensorData) -> Option<&ArrayD<Self>>;
    /// Convert to f64 (bool: 0 or 1).
    fn to_f64(self) -> f64;
    /// Convert from f64 with the usual `as` semantics (saturating, truncating toward zero).
    fn from_f64(v: f64) -> Self;
}

macro_rules! impl_element {
    ($t:ty, $v:ident, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$v;
            fn wrap(a: ArrayD<Self>) -> TensorData {
                TensorData::$v(a)
            }
            fn view(d: &TensorData) -> Option<&ArrayD<Self>> {
                match d {
                    TensorData::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                let f: fn($t) -> f64 = $to;
                f(self)
            }
            fn from_f64(v: f64) -> Self {
                let f: fn(f64) -> $t = $from;
                f(v)
            }
        }
    };
}

impl_element!(f32, F32, |x| x as f64, |v| v as f32);
impl_element!(f16, F16, |x| x.to_f64(), f16::from_f64);
impl_element!(i8, I8, |x| x as f64, |v| v as i8);
impl_element!(u8, U8, |x| x as f64, |v| v as u8);
impl_element!(i16, I16, |x| x as f64, |v| v as i16);
impl_element!(i32, I32, |x| x as f64, |v| v as i32);
impl_element!(i64, I64, |x| x as f64, |v| v as i64);
impl_element!(bool, Bool, |x| if x { 1.0 } else { 0.0 }, |v| v != 0.0);

/// A tensor value: data plus optional quantization parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    data: TensorData,
    /// Quantization parameters, when the tensor holds quantized values.
    pub quant: Option<QuantParams>,
}

impl<T: Element> From<ArrayD<T>> for Tensor {
    fn from(a: ArrayD<T>) -> Self {
        Tensor { data: T::wrap(a), quant: None }
    }
}

impl From<TensorData> for Tensor {
    fn from(data: TensorData) -> Self {
        Tensor { data, quant: None }
    }
}

impl Tensor {
    /// A tensor from a shape and row-major elements.
    pub fn from_vec<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor, IrError> {
        let n = data.len();
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(Tensor::from)
            .map_err(|_| IrError::InvalidTensor(format!("{n} elements do not fill shape {shape:?}")))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Tensor::from(ArrayD::from_elem(IxDyn(&[]), v))
    }

    /// A tensor of zeros (false for bool).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        fn z<T: Element>(s: &[usize]) -> TensorData {
            T::wrap(ArrayD::from_elem(IxDyn(s), T::default()))
        }
        let data = match dtype {
            DType::F32 => z::<f32>(shape),
            DType::F16 => z::<f16>(shape),
            DType::I8 => z::<i8>(shape),
            DType::U8 => z::<u8>(shape),
            DType::I16 => z::<i16>(shape),
            DType::I32 => z::<i32>(shape),
            DType::I64 => z::<i64>(shape),
            DType::Bool => z::<bool>(shape),
        };
        Tensor { data, quant: None }
    }

    /// The storage.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The storage, mutably.
    pub fn data_mut(&mut self) -> &mut TensorData {
        &mut self.data
    }

    /// Consume into the storage.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match &self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::F16(_) => DType::F16,
            TensorData::I8(_) => DType::I8,
            TensorData::U8(_) => DType::U8,
            TensorData::I16(_) => DType::I16,
            TensorData::I32(_) => DType::I32,
            TensorData::I64(_) => DType::I64,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        dispatch_tensor!(&self.data, a => a.shape())
    }

    /// The shape as an IR [`Shape`].
    pub fn ir_shape(&self) -> Shape {
        Shape::known(self.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        dispatch_tensor!(&self.data, a => a.len())
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the elements in bytes.
    pub fn size_bytes(&self) -> usize {
        self.len() * self.dtype().size_bytes()
    }

    /// Borrow the array if the element type is `T`.
    pub fn view<T: Element>(&self) -> Option<&ArrayD<T>> {
        T::view(&self.data)
    }

    /// Borrow the array as `T`, or a dtype error naming `what`.
    pub fn expect<T: Element>(&self, what: &str) -> Result<&ArrayD<T>, IrError> {
        T::view(&self.data).ok_or_else(|| IrError::DType {
            what: what.to_string(),
            expected: T::DTYPE,
            found: self.dtype(),
        })
    }

    /// Borrow as f32 if that is the dtype.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        self.view::<f32>()
    }

    /// Convert every element to `T` (floats to ints truncate toward zero, like ONNX Cast).
    pub fn to_array<T: Element>(&self) -> ArrayD<T> {
        if let Some(a) = T::view(&self.data) {
            return a.clone();
        }
        dispatch_tensor!(&self.data, a => a.mapv(|x| T::from_f64(x.to_f64())))
    }

    /// A copy converted to `dtype`.
    pub fn cast(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let data = match dtype {
            DType::F32 => TensorData::F32(self.to_array()),
            DType::F16 => TensorData::F16(self.to_array()),
            DType::I8 => TensorData::I8(self.to_array()),
            DType::U8 => TensorData::U8(self.to_array()),
            DType::I16 => TensorData::I16(self.to_array()),
            DType::I32 => TensorData::I32(self.to_array()),
            DType::I64 => TensorData::I64(self.to_array()),
            DType::Bool => TensorData::Bool(self.to_array()),
        };
        Tensor { data, quant: None }
    }

    /// The elements as i64 in row-major order (integers and bools; floats truncate).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            TensorData::I64(a) => a.iter().copied().collect(),
            _ => self.to_array::<i64>().iter().copied().collect(),
        }
    }

    /// The elements as f32 in row-major order.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.to_array::<f32>().iter().copied().collect()
    }

    /// A copy with a new shape holding the same elements in row-major order.
    pub fn reshaped(&self, shape: &[usize]) -> Result<Tensor, IrError> {
        let n: usize = shape.iter().product();
        if n != self.len() {
            return Err(IrError::InvalidTensor(format!(
                "cannot reshape {:?} ({} elements) to {:?}",
                self.shape(),
                self.len(),
                shape
            )));
        }
        let data = dispatch_tensor!(&self.data, a => {
            let v: Vec<_> = a.iter().copied().collect();
            Element::wrap(ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| IrError::InvalidTensor(e.to_string()))?)
        });
        Ok(Tensor { data, quant: self.quant.clone() })
    }
}
