//! Arithmetic over every numeric element type, with the exact ONNX semantics.
//!
//! Integers wrap on overflow (like onnxruntime's C++ arithmetic) and divide truncating toward
//! zero; f16 computes in f32 and rounds once (f32 has more than twice f16's precision, so
//! `+ - * /` are still correctly rounded).

use half::f16;
use lithe_ir::Element;

/// A numeric element type (every IR dtype except bool).
pub(crate) trait Num: Element + PartialOrd {
    /// True for f32/f16.
    const IS_FLOAT: bool;
    /// True for signed types (floats included).
    const SIGNED: bool;
    /// The value zero.
    fn zero() -> Self {
        Self::default()
    }
    /// a + b.
    fn add(self, o: Self) -> Self;
    /// a - b.
    fn sub(self, o: Self) -> Self;
    /// a * b.
    fn mul(self, o: Self) -> Self;
    /// a / b; `None` for an integer division by zero.
    fn div(self, o: Self) -> Option<Self>;
    /// The value as i64 (integers exactly; floats truncate toward zero and saturate).
    fn to_i64(self) -> i64;
    /// NaN test (false for integers).
    fn is_nan(self) -> bool;
    /// -a (wrapping for integers).
    fn neg(self) -> Self;
    /// |a| (wrapping for integers: |MIN| = MIN).
    fn abs(self) -> Self;
    /// The smallest value: -inf for floats, MIN for integers.
    fn lowest() -> Self;
    /// a ^ e for a float exponent (integers: computed in f64 and truncated).
    fn pow_float(self, e: f64) -> Self;
    /// a ^ e for an integer exponent; `None` for an integer 0 raised to a negative power.
    fn pow_int(self, e: i64) -> Option<Self>;
    /// The sum of `vals` (floats accumulate in f64, integers wrap in their own width).
    fn sum(vals: &[Self]) -> Self;
    /// The mean of `vals` (integers truncate); `None` for integers when `vals` is empty.
    fn mean(vals: &[Self]) -> Option<Self>;
}

macro_rules! impl_float {
    ($t:ty, $to:expr, $from:expr, $neg_inf:expr) => {
        impl Num for $t {
            const IS_FLOAT: bool = true;
            const SIGNED: bool = true;
            fn add(self, o: Self) -> Self {
                let (to, from): (fn($t) -> f32, fn(f32) -> $t) = ($to, $from);
                from(to(self) + to(o))
            }
            fn sub(self, o: Self) -> Self {
                let (to, from): (fn($t) -> f32, fn(f32) -> $t) = ($to, $from);
                from(to(self) - to(o))
            }
            fn mul(self, o: Self) -> Self {
                let (to, from): (fn($t) -> f32, fn(f32) -> $t) = ($to, $from);
                from(to(self) * to(o))
            }
            fn div(self, o: Self) -> Option<Self> {
                let (to, from): (fn($t) -> f32, fn(f32) -> $t) = ($to, $from);
                Some(from(to(self) / to(o)))
            }
            fn to_i64(self) -> i64 {
                self.to_f64() as i64
            }
            fn is_nan(self) -> bool {
                let to: fn($t) -> f32 = $to;
                to(self).is_nan()
            }
            fn neg(self) -> Self {
                -self
            }
            fn abs(self) -> Self {
                let (to, from): (fn($t) -> f32, fn(f32) -> $t) = ($to, $from);
                from(to(self).abs())
            }
            fn lowest() -> Self {
                $neg_inf
            }
            fn pow_float(self, e: f64) -> Self {
                Self::from_f64(self.to_f64().powf(e))
            }
            fn pow_int(self, e: i64) -> Option<Self> {
                Some(Self::from_f64(self.to_f64().powf(e as f64)))
            }
            fn sum(vals: &[Self]) -> Self {
                Self::from_f64(vals.iter().map(|v| v.to_f64()).sum::<f64>())
            }
            fn mean(vals: &[Self]) -> Option<Self> {
                let s: f64 = vals.iter().map(|v| v.to_f64()).sum();
                Some(Self::from_f64(s / vals.len() as f64))
            }
        }
    };
}

impl_float!(f32, |x| x, |x| x, f32::NEG_INFINITY);
impl_float!(f16, f16::to_f32, f16::from_f32, f16::NEG_INFINITY);

macro_rules! impl_int {
    ($t:ty, $signed:expr) => {
        impl Num for $t {
            const IS_FLOAT: bool = false;
            const SIGNED: bool = $signed;
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn div(self, o: Self) -> Option<Self> {
                if o == 0 { None } else { Some(self.wrapping_div(o)) }
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn is_nan(self) -> bool {
                false
            }
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            fn abs(self) -> Self {
                if self.to_f64() < 0.0 { self.wrapping_neg() } else { self }
            }
            fn lowest() -> Self {
                <$t>::MIN
            }
            fn pow_float(self, e: f64) -> Self {
                Self::from_f64(self.to_f64().powf(e))
            }
            fn pow_int(self, e: i64) -> Option<Self> {
                if e < 0 {
                    // |base| > 1 gives a fraction that truncates to 0.
                    return match self as i64 {
                        0 => None,
                        1 => Some(1 as $t),
                        -1 => Some(if e % 2 == 0 { 1 as $t } else { self }),
                        _ => Some(0 as $t),
                    };
                }
                // Square-and-multiply, wrapping like repeated multiplication.
                let (mut base, mut e, mut acc) = (self, e as u64, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                Some(acc)
            }
            fn sum(vals: &[Self]) -> Self {
                vals.iter().fold(0 as $t, |s, &v| s.wrapping_add(v))
            }
            fn mean(vals: &[Self]) -> Option<Self> {
                let s: i128 = vals.iter().map(|&v| v as i128).sum();
                let n = i128::try_from(vals.len()).ok().filter(|&n| n > 0)?;
                Some((s / n) as $t)
            }
        }
    };
}

impl_int!(i8, true);
impl_int!(u8, false);
impl_int!(i16, true);
impl_int!(i32, true);
impl_int!(i64, true);

/// A floating-point element type (f32, f16) for the transcendental kernels.
pub(crate) trait Float: Num {
    /// Widen to f32 (exact).
    fn to_f32(self) -> f32;
    /// Round from f32.
    fn from_f32(v: f32) -> Self;
}

impl Float for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Float for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}
