//! Equal, Where, Min and Max with numpy broadcasting.

use super::broadcast::{zip2, zip3};
use super::dispatch::{any_pair, numeric};
use super::num::Num;
use super::util::invalid;
use crate::KernelError;
use lithe_ir::{Tensor, TensorView};
use ndarray::ArrayViewD;

/// Elementwise `a == b` for two tensors of one dtype (bool included), as bool.
/// Floats compare by IEEE rules (NaN is unequal to everything, `-0 == 0`).
pub fn equal(a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    any_pair!(a, b, "Equal", (x, y) => zip2("Equal", x, y, |p, q| Ok(p == q)).map(Tensor::from))
}

/// `condition ? x : y` elementwise, broadcasting all three; `condition` is bool and `x`, `y`
/// share a dtype.
pub fn where_(condition: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor, KernelError> {
    let TensorView::Bool(c) = &condition.data_view() else {
        return Err(invalid("Where", format!("condition must be bool, found {}", condition.dtype())));
    };
    any_pair!(x, y, "Where", (a, b) => {
        zip3("Where", c, a, b, |k, p, q| if k { p } else { q }).map(Tensor::from)
    })
}

/// Elementwise minimum of all inputs (one numeric dtype), broadcast together. NaN propagates.
pub fn min(inputs: &[&Tensor]) -> Result<Tensor, KernelError> {
    extreme("Min", inputs, false)
}

/// Elementwise maximum of all inputs (one numeric dtype), broadcast together. NaN propagates.
pub fn max(inputs: &[&Tensor]) -> Result<Tensor, KernelError> {
    extreme("Max", inputs, true)
}

fn extreme(op: &'static str, inputs: &[&Tensor], take_max: bool) -> Result<Tensor, KernelError> {
    let (first, rest) = inputs.split_first().ok_or_else(|| invalid(op, "needs at least one input"))?;
    numeric!(first, op, a => fold_extreme(op, a, rest, take_max))
}

fn fold_extreme<T: Num>(
    op: &'static str,
    first: &ArrayViewD<'_, T>,
    rest: &[&Tensor],
    take_max: bool,
) -> Result<Tensor, KernelError> {
    let mut acc = first.to_owned();
    for t in rest {
        let b = t
            .view_in_place::<T>()
            .ok_or_else(|| invalid(op, format!("inputs must share a dtype, found {} and {}", T::DTYPE, t.dtype())))?;
        acc = zip2(op, &acc.view(), &b, |x, y| Ok(pick(x, y, take_max)))?;
    }
    Ok(Tensor::from(acc))
}

/// The larger (or smaller) of `x` and `y`; NaN if either is NaN.
fn pick<T: Num>(x: T, y: T, take_max: bool) -> T {
    if x.is_nan() {
        x
    } else if y.is_nan() || (take_max && y > x) || (!take_max && y < x) {
        y
    } else {
        x
    }
}
