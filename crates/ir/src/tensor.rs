//! Tensors: ndarray-backed values of any supported dtype.

use crate::{DType, IrError, Shape};
use half::f16;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// Immutable bytes that tensors can read their elements from in place: a memory-mapped
/// model file, or a buffer the caller handed over. Must not change while any tensor holds it.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A copy of `bytes` as [`SharedBytes`] starting at a 64-byte aligned address, so that data
/// aligned within `bytes` is aligned in memory too (for [`Tensor::in_place`]).
pub fn shared_aligned_copy(bytes: &[u8]) -> SharedBytes {
    const ALIGN: usize = 64;
    let mut buf = vec![0u8; bytes.len() + ALIGN];
    let start = (ALIGN - buf.as_ptr() as usize % ALIGN) % ALIGN;
    buf[start..start + bytes.len()].copy_from_slice(bytes);
    Arc::new(AlignedBytes { buf, start, len: bytes.len() })
}

/// A window of a `Vec` that starts at an aligned address.
struct AlignedBytes {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for AlignedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

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

/// A borrowed, zero-copy view of a tensor's elements, one variant per dtype
/// (see [`Tensor::data_view`]).
#[derive(Clone, Debug, PartialEq)]
pub enum TensorView<'a> {
    /// f32 elements.
    F32(ArrayViewD<'a, f32>),
    /// f16 elements.
    F16(ArrayViewD<'a, f16>),
    /// i8 elements.
    I8(ArrayViewD<'a, i8>),
    /// u8 elements.
    U8(ArrayViewD<'a, u8>),
    /// i16 elements.
    I16(ArrayViewD<'a, i16>),
    /// i32 elements.
    I32(ArrayViewD<'a, i32>),
    /// i64 elements.
    I64(ArrayViewD<'a, i64>),
    /// bool elements.
    Bool(ArrayViewD<'a, bool>),
}

impl TensorData {
    /// A view of the elements (no copy).
    pub fn view(&self) -> TensorView<'_> {
        match self {
            TensorData::F32(a) => TensorView::F32(a.view()),
            TensorData::F16(a) => TensorView::F16(a.view()),
            TensorData::I8(a) => TensorView::I8(a.view()),
            TensorData::U8(a) => TensorView::U8(a.view()),
            TensorData::I16(a) => TensorView::I16(a.view()),
            TensorData::I32(a) => TensorView::I32(a.view()),
            TensorData::I64(a) => TensorView::I64(a.view()),
            TensorData::Bool(a) => TensorView::Bool(a.view()),
        }
    }
}

/// Apply an expression to the array view inside a [`TensorView`], whatever its dtype.
#[macro_export]
macro_rules! dispatch_view {
    ($view:expr, $a:ident => $body:expr) => {
        match $view {
            $crate::TensorView::F32($a) => $body,
            $crate::TensorView::F16($a) => $body,
            $crate::TensorView::I8($a) => $body,
            $crate::TensorView::U8($a) => $body,
            $crate::TensorView::I16($a) => $body,
            $crate::TensorView::I32($a) => $body,
            $crate::TensorView::I64($a) => $body,
            $crate::TensorView::Bool($a) => $body,
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
///
/// The elements are either owned ([`TensorData`]) or read in place from [`SharedBytes`]
/// (weights of a memory-mapped `.nb`; see [`Tensor::in_place`]). An in-place tensor answers
/// [`Tensor::view_in_place`], [`Tensor::expect_view`] and [`Tensor::data_view`] without
/// copying; [`Tensor::data`] and the views built on it copy its elements once, on first use,
/// and keep the copy.
#[derive(Clone)]
pub struct Tensor {
    store: Store,
    /// Quantization parameters, when the tensor holds quantized values.
    pub quant: Option<QuantParams>,
}

#[derive(Clone)]
enum Store {
    Owned(TensorData),
    /// Boxed: keeps `Tensor` (and so every `Op`) as small as an owned tensor.
    InPlace(Box<InPlace>),
}

/// Elements of `dtype` and `shape` at `bytes[offset..]`, native byte order, row-major.
struct InPlace {
    dtype: DType,
    shape: Vec<usize>,
    len: usize,
    bytes: SharedBytes,
    offset: usize,
    /// The owned copy made on the first call to [`Tensor::data`].
    copy: OnceLock<TensorData>,
}

impl Clone for InPlace {
    /// Shares the bytes; the copy (if any) is not duplicated.
    fn clone(&self) -> Self {
        InPlace {
            dtype: self.dtype,
            shape: self.shape.clone(),
            len: self.len,
            bytes: Arc::clone(&self.bytes),
            offset: self.offset,
            copy: OnceLock::new(),
        }
    }
}

impl InPlace {
    /// The element bytes (bounds checked by [`Tensor::in_place`]).
    fn slice(&self) -> &[u8] {
        let all: &[u8] = (*self.bytes).as_ref();
        &all[self.offset..self.offset + self.len * self.dtype.size_bytes()]
    }

    /// The elements as a view of type `T` (the caller checked `T::DTYPE == self.dtype`).
    fn view<T: Element>(&self) -> ArrayViewD<'_, T> {
        let bytes = self.slice();
        debug_assert_eq!(T::DTYPE, self.dtype);
        debug_assert_eq!(bytes.as_ptr() as usize % std::mem::align_of::<T>(), 0);
        // SAFETY: `Tensor::in_place` checked that `bytes` holds exactly `len` elements of
        // `T` (dtype and length), that the start is aligned for `T`, that the host is little
        // endian like the stored bytes, and that `T` is not bool: every bit pattern is a valid
        // f32, f16, or integer. `SharedBytes` is immutable and kept alive by `self`, which the
        // view borrows, so the memory stays valid and unchanged for the view's lifetime.
        unsafe { ArrayViewD::from_shape_ptr(IxDyn(&self.shape), bytes.as_ptr().cast::<T>()) }
    }

    /// An owned copy of the elements.
    fn to_owned_data(&self) -> TensorData {
        fn own<T: Element>(p: &InPlace) -> TensorData {
            T::wrap(p.view::<T>().to_owned())
        }
        match self.dtype {
            DType::F32 => own::<f32>(self),
            DType::F16 => own::<f16>(self),
            DType::I8 => own::<i8>(self),
            DType::U8 => own::<u8>(self),
            DType::I16 => own::<i16>(self),
            DType::I32 => own::<i32>(self),
            DType::I64 => own::<i64>(self),
            // `Tensor::in_place` refuses bool.
            DType::Bool => TensorData::Bool(ArrayD::from_elem(IxDyn(&self.shape), false)),
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.store {
            Store::Owned(d) => f.debug_struct("Tensor").field("data", d).field("quant", &self.quant).finish(),
            Store::InPlace(p) => f
                .debug_struct("Tensor")
                .field("dtype", &p.dtype)
                .field("shape", &p.shape)
                .field("in_place_at", &p.offset)
                .field("quant", &self.quant)
                .finish(),
        }
    }
}

impl PartialEq for Tensor {
    /// Same dtype, shape, elements and quantization, however the elements are stored.
    fn eq(&self, other: &Tensor) -> bool {
        self.quant == other.quant && self.dtype() == other.dtype() && self.data() == other.data()
    }
}

impl<T: Element> From<ArrayD<T>> for Tensor {
    fn from(a: ArrayD<T>) -> Self {
        Tensor { store: Store::Owned(T::wrap(a)), quant: None }
    }
}

impl From<TensorData> for Tensor {
    fn from(data: TensorData) -> Self {
        Tensor { store: Store::Owned(data), quant: None }
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
        Tensor::from(data)
    }

    /// A tensor reading `shape` elements of `dtype` in place from `bytes[offset..]`
    /// (little-endian, row-major), without copying them.
    ///
    /// Errors when the elements do not fit in `bytes`, when their start is not aligned for
    /// the element type, for bool (whose bytes would need checking), or on a big-endian host;
    /// the caller can then copy the elements instead.
    pub fn in_place(dtype: DType, shape: &[usize], bytes: SharedBytes, offset: usize) -> Result<Tensor, IrError> {
        let err = |m: String| IrError::InvalidTensor(format!("{dtype} tensor {shape:?} at byte {offset}: {m}"));
        if cfg!(target_endian = "big") {
            return Err(err("in-place tensors need a little-endian host".into()));
        }
        if dtype == DType::Bool {
            return Err(err("bool tensors are not read in place".into()));
        }
        let len =
            shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| err("too many elements".into()))?;
        let size = len.checked_mul(dtype.size_bytes()).ok_or_else(|| err("too many bytes".into()))?;
        let all: &[u8] = (*bytes).as_ref();
        let end = offset.checked_add(size).filter(|&e| e <= all.len());
        if end.is_none() {
            return Err(err(format!("needs {size} bytes, the buffer has {}", all.len())));
        }
        let addr = all.as_ptr() as usize + offset;
        if !addr.is_multiple_of(dtype.size_bytes()) {
            return Err(err(format!("address {addr:#x} is not aligned to {} bytes", dtype.size_bytes())));
        }
        let store = Store::InPlace(Box::new(InPlace {
            dtype,
            shape: shape.to_vec(),
            len,
            bytes,
            offset,
            copy: OnceLock::new(),
        }));
        Ok(Tensor { store, quant: None })
    }

    /// True when the elements are read in place from shared bytes (not yet copied).
    pub fn is_in_place(&self) -> bool {
        matches!(&self.store, Store::InPlace(p) if p.copy.get().is_none())
    }

    /// The elements as `T` without copying, wherever they are stored; `None` for another dtype.
    pub fn view_in_place<T: Element>(&self) -> Option<ArrayViewD<'_, T>> {
        match &self.store {
            Store::Owned(d) => T::view(d).map(|a| a.view()),
            Store::InPlace(p) if p.dtype == T::DTYPE => Some(p.view::<T>()),
            Store::InPlace(_) => None,
        }
    }

    /// A view of the elements, whatever their dtype, without copying them however they are
    /// stored (unlike [`Tensor::data`], an in-place tensor stays in place).
    pub fn data_view(&self) -> TensorView<'_> {
        let p = match &self.store {
            Store::Owned(d) => return d.view(),
            Store::InPlace(p) => p,
        };
        match p.dtype {
            DType::F32 => TensorView::F32(p.view()),
            DType::F16 => TensorView::F16(p.view()),
            DType::I8 => TensorView::I8(p.view()),
            DType::U8 => TensorView::U8(p.view()),
            DType::I16 => TensorView::I16(p.view()),
            DType::I32 => TensorView::I32(p.view()),
            DType::I64 => TensorView::I64(p.view()),
            // `Tensor::in_place` refuses bool, so this is never reached; fall back to the copy.
            DType::Bool => self.data().view(),
        }
    }

    /// The elements as `T` without copying (see [`Tensor::view_in_place`]), or a dtype error
    /// naming `what`.
    pub fn expect_view<T: Element>(&self, what: &str) -> Result<ArrayViewD<'_, T>, IrError> {
        self.view_in_place::<T>().ok_or_else(|| IrError::DType {
            what: what.to_string(),
            expected: T::DTYPE,
            found: self.dtype(),
        })
    }

    /// The storage. An in-place tensor copies its elements on the first call.
    pub fn data(&self) -> &TensorData {
        match &self.store {
            Store::Owned(d) => d,
            Store::InPlace(p) => p.copy.get_or_init(|| p.to_owned_data()),
        }
    }

    /// The storage, mutably (an in-place tensor becomes owned).
    pub fn data_mut(&mut self) -> &mut TensorData {
        if let Store::InPlace(p) = &mut self.store {
            let d = p.copy.take().unwrap_or_else(|| p.to_owned_data());
            self.store = Store::Owned(d);
        }
        match &mut self.store {
            Store::Owned(d) => d,
            Store::InPlace(_) => unreachable!("made owned above"),
        }
    }

    /// Consume into the storage.
    pub fn into_data(self) -> TensorData {
        match self.store {
            Store::Owned(d) => d,
            Store::InPlace(mut p) => p.copy.take().unwrap_or_else(|| p.to_owned_data()),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        let data = match &self.store {
            Store::Owned(d) => d,
            Store::InPlace(p) => return p.dtype,
        };
        match data {
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
        match &self.store {
            Store::Owned(d) => dispatch_tensor!(d, a => a.shape()),
            Store::InPlace(p) => &p.shape,
        }
    }

    /// The shape as an IR [`Shape`].
    pub fn ir_shape(&self) -> Shape {
        Shape::known(self.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Owned(d) => dispatch_tensor!(d, a => a.len()),
            Store::InPlace(p) => p.len,
        }
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
        T::view(self.data())
    }

    /// Borrow the array as `T`, or a dtype error naming `what`.
    pub fn expect<T: Element>(&self, what: &str) -> Result<&ArrayD<T>, IrError> {
        T::view(self.data()).ok_or_else(|| IrError::DType {
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
        if let Some(a) = self.view_in_place::<T>() {
            return a.to_owned();
        }
        dispatch_view!(self.data_view(), a => a.mapv(|x| T::from_f64(x.to_f64())))
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
        Tensor::from(data)
    }

    /// The elements as i64 in row-major order (integers and bools; floats truncate).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match self.data_view() {
            TensorView::I64(a) => a.iter().copied().collect(),
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
        let data = dispatch_view!(self.data_view(), a => {
            let v: Vec<_> = a.iter().copied().collect();
            Element::wrap(ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| IrError::InvalidTensor(e.to_string()))?)
        });
        Ok(Tensor { store: Store::Owned(data), quant: self.quant.clone() })
    }
}
