//! Cast between every pair of IR dtypes, exactly.
//!
//! Each element goes through a lossless intermediate (f64 for floats, i64 for integers, bool)
//! and is converted once:
//! - float -> integer truncates toward zero (onnxruntime's `static_cast`); out-of-range values
//!   saturate and NaN becomes 0 (C++ leaves these undefined);
//! - integer -> integer wraps (two's complement, like `static_cast`);
//! - integer/float -> float rounds to nearest even (f16 saturates to infinity);
//! - anything -> bool is `x != 0` (NaN is true); bool -> anything is 0 or 1.

use half::f16;
use lithe_ir::{DType, Element, Tensor, dispatch_view};

/// An element value in a lossless intermediate form.
#[derive(Clone, Copy, Debug)]
enum Scalar {
    Float(f64),
    Int(i64),
    Bool(bool),
}

/// Element types that convert to a [`Scalar`] losslessly.
trait ToScalar: Element {
    fn scalar(self) -> Scalar;
}

/// Element types built from a [`Scalar`] with one conversion.
trait FromScalar: Element {
    fn from_scalar(s: Scalar) -> Self;
}

impl ToScalar for f32 {
    fn scalar(self) -> Scalar {
        Scalar::Float(f64::from(self))
    }
}

impl ToScalar for f16 {
    fn scalar(self) -> Scalar {
        Scalar::Float(self.to_f64())
    }
}

impl ToScalar for bool {
    fn scalar(self) -> Scalar {
        Scalar::Bool(self)
    }
}

macro_rules! int_scalar {
    ($($t:ty),*) => {$(
        impl ToScalar for $t {
            fn scalar(self) -> Scalar {
                Scalar::Int(i64::from(self))
            }
        }
        impl FromScalar for $t {
            fn from_scalar(s: Scalar) -> Self {
                match s {
                    Scalar::Float(v) => v as $t,
                    Scalar::Int(i) => i as $t,
                    Scalar::Bool(b) => <$t>::from(b),
                }
            }
        }
    )*};
}

int_scalar!(i8, u8, i16, i32, i64);

impl FromScalar for f32 {
    fn from_scalar(s: Scalar) -> Self {
        match s {
            Scalar::Float(v) => v as f32,
            Scalar::Int(i) => i as f32,
            Scalar::Bool(b) => f32::from(u8::from(b)),
        }
    }
}

impl FromScalar for f16 {
    fn from_scalar(s: Scalar) -> Self {
        match s {
            Scalar::Float(v) => f16::from_f64(v),
            // |i| > 2^53 rounds in f64 first, but everything past 65520 is infinity in f16.
            Scalar::Int(i) => f16::from_f64(i as f64),
            Scalar::Bool(b) => f16::from_f32(f32::from(u8::from(b))),
        }
    }
}

impl FromScalar for bool {
    fn from_scalar(s: Scalar) -> Self {
        match s {
            Scalar::Float(v) => v != 0.0,
            Scalar::Int(i) => i != 0,
            Scalar::Bool(b) => b,
        }
    }
}

fn convert<U: FromScalar>(t: &Tensor) -> Tensor {
    dispatch_view!(&t.data_view(), a => Tensor::from(a.mapv(|v| U::from_scalar(v.scalar()))))
}

/// `t` converted to `to` (a copy when the dtype already matches).
pub fn cast(t: &Tensor, to: DType) -> Tensor {
    if t.dtype() == to {
        return t.clone();
    }
    match to {
        DType::F32 => convert::<f32>(t),
        DType::F16 => convert::<f16>(t),
        DType::I8 => convert::<i8>(t),
        DType::U8 => convert::<u8>(t),
        DType::I16 => convert::<i16>(t),
        DType::I32 => convert::<i32>(t),
        DType::I64 => convert::<i64>(t),
        DType::Bool => convert::<bool>(t),
    }
}
