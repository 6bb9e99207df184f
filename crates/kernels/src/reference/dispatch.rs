//! Dtype dispatch macros: run a generic body on the array inside one or two tensors.
//!
//! Each macro binds a typed zero-copy `&ArrayViewD<T>` (the tensor's elements are never copied,
//! also when they are read in place from a memory-mapped model) and evaluates the body (a
//! `Result<Tensor, KernelError>`) for the dtypes it accepts, and returns an error naming the
//! operator and the dtype(s) otherwise.

/// Run `$body` with `$a` bound to the array of a numeric (non-bool) tensor.
macro_rules! numeric {
    ($t:expr, $op:expr, $a:ident => $body:expr) => {{
        let t: &lithe_ir::Tensor = $t;
        match &t.data_view() {
            lithe_ir::TensorView::F32($a) => $body,
            lithe_ir::TensorView::F16($a) => $body,
            lithe_ir::TensorView::I8($a) => $body,
            lithe_ir::TensorView::U8($a) => $body,
            lithe_ir::TensorView::I16($a) => $body,
            lithe_ir::TensorView::I32($a) => $body,
            lithe_ir::TensorView::I64($a) => $body,
            lithe_ir::TensorView::Bool(_) => Err($crate::reference::util::unsupported($op, "bool input")),
        }
    }};
}

/// Run `$body` with `$a` bound to the array of a floating-point tensor.
macro_rules! float {
    ($t:expr, $op:expr, $a:ident => $body:expr) => {{
        let t: &lithe_ir::Tensor = $t;
        match &t.data_view() {
            lithe_ir::TensorView::F32($a) => $body,
            lithe_ir::TensorView::F16($a) => $body,
            _ => Err($crate::reference::util::unsupported($op, format!("{} input (only f32 and f16)", t.dtype()))),
        }
    }};
}

/// Run `$body` with `$a`, `$b` bound to the arrays of two numeric tensors of one dtype.
macro_rules! numeric_pair {
    ($x:expr, $y:expr, $op:expr, ($a:ident, $b:ident) => $body:expr) => {{
        let (x, y): (&lithe_ir::Tensor, &lithe_ir::Tensor) = ($x, $y);
        match (&x.data_view(), &y.data_view()) {
            (lithe_ir::TensorView::F32($a), lithe_ir::TensorView::F32($b)) => $body,
            (lithe_ir::TensorView::F16($a), lithe_ir::TensorView::F16($b)) => $body,
            (lithe_ir::TensorView::I8($a), lithe_ir::TensorView::I8($b)) => $body,
            (lithe_ir::TensorView::U8($a), lithe_ir::TensorView::U8($b)) => $body,
            (lithe_ir::TensorView::I16($a), lithe_ir::TensorView::I16($b)) => $body,
            (lithe_ir::TensorView::I32($a), lithe_ir::TensorView::I32($b)) => $body,
            (lithe_ir::TensorView::I64($a), lithe_ir::TensorView::I64($b)) => $body,
            (lithe_ir::TensorView::Bool(_), lithe_ir::TensorView::Bool(_)) => {
                Err($crate::reference::util::unsupported($op, "bool inputs"))
            }
            _ => Err($crate::reference::util::invalid(
                $op,
                format!("inputs must share a dtype, found {} and {}", x.dtype(), y.dtype()),
            )),
        }
    }};
}

/// Run `$body` with `$a`, `$b` bound to the arrays of two tensors of one dtype (bool included).
macro_rules! any_pair {
    ($x:expr, $y:expr, $op:expr, ($a:ident, $b:ident) => $body:expr) => {{
        let (x, y): (&lithe_ir::Tensor, &lithe_ir::Tensor) = ($x, $y);
        match (&x.data_view(), &y.data_view()) {
            (lithe_ir::TensorView::F32($a), lithe_ir::TensorView::F32($b)) => $body,
            (lithe_ir::TensorView::F16($a), lithe_ir::TensorView::F16($b)) => $body,
            (lithe_ir::TensorView::I8($a), lithe_ir::TensorView::I8($b)) => $body,
            (lithe_ir::TensorView::U8($a), lithe_ir::TensorView::U8($b)) => $body,
            (lithe_ir::TensorView::I16($a), lithe_ir::TensorView::I16($b)) => $body,
            (lithe_ir::TensorView::I32($a), lithe_ir::TensorView::I32($b)) => $body,
            (lithe_ir::TensorView::I64($a), lithe_ir::TensorView::I64($b)) => $body,
            (lithe_ir::TensorView::Bool($a), lithe_ir::TensorView::Bool($b)) => $body,
            _ => Err($crate::reference::util::invalid(
                $op,
                format!("inputs must share a dtype, found {} and {}", x.dtype(), y.dtype()),
            )),
        }
    }};
}

pub(crate) use {any_pair, float, numeric, numeric_pair};
