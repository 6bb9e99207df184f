//! Add, Sub, Mul, Div and Pow with numpy broadcasting.
//!
//! Both operands of Add/Sub/Mul/Div share one numeric dtype. Integers wrap on overflow and
//! divide truncating toward zero; an integer division by zero is an error. f16 computes in f32.
//! Pow's exponent may have any numeric dtype; the output has the base's dtype.

use super::broadcast::zip2;
use super::dispatch::{numeric, numeric_pair};
use super::num::Num;
use super::util::invalid;
use crate::KernelError;
use lithe_ir::Tensor;
use ndarray::ArrayViewD;

/// Elementwise `a + b`.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    numeric_pair!(a, b, "Add", (x, y) => zip2("Add", x, y, |p, q| Ok(p.add(q))).map(Tensor::from))
}

/// Elementwise `a - b`.
pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    numeric_pair!(a, b, "Sub", (x, y) => zip2("Sub", x, y, |p, q| Ok(p.sub(q))).map(Tensor::from))
}

/// Elementwise `a * b`.
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    numeric_pair!(a, b, "Mul", (x, y) => zip2("Mul", x, y, |p, q| Ok(p.mul(q))).map(Tensor::from))
}

/// Elementwise `a / b` (integers truncate toward zero; integer division by zero is an error).
pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    numeric_pair!(a, b, "Div", (x, y) => zip2("Div", x, y, |p, q| {
        p.div(q).ok_or_else(|| invalid("Div", "integer division by zero"))
    })
    .map(Tensor::from))
}

/// Elementwise `base ^ exponent`; the exponent may have any numeric dtype, the output has the
/// base's. Floats compute in f64 and round once; integer bases with integer exponents are exact
/// (wrapping), with float exponents computed in f64 and truncated. An integer 0 raised to a
/// negative integer power is an error.
pub fn pow(base: &Tensor, exponent: &Tensor) -> Result<Tensor, KernelError> {
    numeric!(base, "Pow", b => pow_base(b, exponent))
}

fn pow_base<T: Num>(base: &ArrayViewD<'_, T>, exponent: &Tensor) -> Result<Tensor, KernelError> {
    numeric!(exponent, "Pow", e => pow_typed(base, e))
}

fn pow_typed<T: Num, E: Num>(base: &ArrayViewD<'_, T>, exponent: &ArrayViewD<'_, E>) -> Result<Tensor, KernelError> {
    zip2("Pow", base, exponent, |b, e| {
        if E::IS_FLOAT {
            Ok(b.pow_float(e.to_f64()))
        } else {
            b.pow_int(e.to_i64()).ok_or_else(|| invalid("Pow", "integer zero raised to a negative power"))
        }
    })
    .map(Tensor::from)
}
