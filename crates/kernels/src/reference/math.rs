//! Elementwise math: Sqrt, Erf, Exp, Log (float) and Neg, Abs (numeric).

use super::activation::map_f32;
use super::dispatch::{float, numeric};
use super::num::{Float, Num};
use super::util::unsupported;
use crate::KernelError;
use lithe_ir::Tensor;
use ndarray::ArrayViewD;

/// Square root (negative inputs give NaN).
pub fn sqrt(x: &Tensor) -> Result<Tensor, KernelError> {
    map_f32("Sqrt", x, f32::sqrt)
}

/// The Gauss error function, computed in f64 (see [`super::erf::erf`]) and rounded once.
pub fn erf(x: &Tensor) -> Result<Tensor, KernelError> {
    fn go<T: Float>(a: &ArrayViewD<'_, T>) -> Tensor {
        Tensor::from(a.mapv(|v| T::from_f64(super::erf::erf(v.to_f64()))))
    }
    float!(x, "Erf", a => Ok(go(a)))
}

/// Natural exponential.
pub fn exp(x: &Tensor) -> Result<Tensor, KernelError> {
    map_f32("Exp", x, f32::exp)
}

/// Natural logarithm (0 gives -inf, negative inputs NaN).
pub fn log(x: &Tensor) -> Result<Tensor, KernelError> {
    map_f32("Log", x, f32::ln)
}

/// Negation for floats and signed integers (integers wrap: `-MIN = MIN`); u8 is unsupported.
pub fn neg(x: &Tensor) -> Result<Tensor, KernelError> {
    fn go<T: Num>(a: &ArrayViewD<'_, T>) -> Result<Tensor, KernelError> {
        if !T::SIGNED {
            return Err(unsupported("Neg", format!("unsigned input {}", T::DTYPE)));
        }
        Ok(Tensor::from(a.mapv(Num::neg)))
    }
    numeric!(x, "Neg", a => go(a))
}

/// Absolute value for every numeric dtype (integers wrap: `|MIN| = MIN`).
pub fn abs(x: &Tensor) -> Result<Tensor, KernelError> {
    fn go<T: Num>(a: &ArrayViewD<'_, T>) -> Tensor {
        Tensor::from(a.mapv(Num::abs))
    }
    numeric!(x, "Abs", a => Ok(go(a)))
}
