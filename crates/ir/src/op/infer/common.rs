//! Helpers shared by the shape rules: input access, dtype checks, dims, broadcasting and
//! reading constant parameter inputs.

use super::InferInput;
use crate::{DType, Dim, IrError, Shape, TypeInfo};

/// Largest size accepted in window arithmetic (kernel, stride, dilation, pads, spatial sizes),
/// so that every intermediate product fits in 64 bits.
pub(super) const MAX_WINDOW_VALUE: usize = i32::MAX as usize;

/// The inputs of one node, with the operator name for messages.
pub(super) struct Args<'s, 'a> {
    /// Operator name.
    pub op: &'static str,
    /// Inputs by slot.
    pub inputs: &'s [Option<InferInput<'a>>],
}

impl<'a> Args<'_, 'a> {
    /// A required input, or a [`IrError::MissingInput`] naming it.
    pub fn req(&self, slot: usize, what: &'static str) -> Result<InferInput<'a>, IrError> {
        self.inputs.get(slot).copied().flatten().ok_or(IrError::MissingInput { slot, what })
    }

    /// An optional input.
    pub fn opt(&self, slot: usize) -> Option<InferInput<'a>> {
        self.inputs.get(slot).copied().flatten()
    }

    /// An optional input that is treated as absent when it is a constant with no elements
    /// (ONNX models use empty tensors for "not given").
    pub fn opt_nonempty(&self, slot: usize) -> Option<InferInput<'a>> {
        self.opt(slot).filter(|i| !is_empty_input(i))
    }
}

/// True when the input is known to hold no elements.
pub(super) fn is_empty_input(i: &InferInput<'_>) -> bool {
    match i.value {
        Some(v) => v.is_empty(),
        None => i.info.shape.as_ref().is_some_and(|s| s.0.contains(&Dim::Known(0))),
    }
}

/// True when a shape certainly does not hold exactly one element (some fixed dim is not 1).
pub(super) fn not_single(s: &Shape) -> bool {
    s.0.iter().any(|d| matches!(d, Dim::Known(n) if *n != 1))
}

/// Check that `b` has the same dtype as `a` (ONNX type constraints that tie inputs together).
pub(super) fn same_dtype(
    op: &str,
    what_a: &str,
    a: &InferInput<'_>,
    what_b: &str,
    b: &InferInput<'_>,
) -> Result<(), IrError> {
    if a.info.dtype != b.info.dtype {
        return Err(IrError::DType {
            what: format!("{op} input {what_b} (must match {what_a})"),
            expected: a.info.dtype,
            found: b.info.dtype,
        });
    }
    Ok(())
}

/// Check that an input has exactly the dtype `expected`.
pub(super) fn want_dtype(op: &str, what: &str, i: &InferInput<'_>, expected: DType) -> Result<(), IrError> {
    if i.info.dtype != expected {
        return Err(IrError::DType { what: format!("{op} input {what}"), expected, found: i.info.dtype });
    }
    Ok(())
}

/// Format an optional shape for messages.
pub(super) fn show(s: Option<&Shape>) -> String {
    s.map_or_else(|| "[*]".to_string(), Shape::to_string)
}

/// Append context to a shape or attribute error message.
pub(super) fn context(e: IrError, ctx: &str) -> IrError {
    match e {
        IrError::Shape(m) => IrError::Shape(format!("{m} ({ctx})")),
        IrError::Attribute(m) => IrError::Attribute(format!("{m} ({ctx})")),
        e => e,
    }
}

/// The dim at `i` of an optional shape, `Unknown` when the shape is unknown or too short.
pub(super) fn dim_at(s: Option<&Shape>, i: usize) -> Dim {
    s.and_then(|s| s.0.get(i)).cloned().unwrap_or(Dim::Unknown)
}

/// Broadcast two dims (numpy rules). `Err` carries nothing; the caller names the shapes.
pub(super) fn broadcast_dim(a: &Dim, b: &Dim) -> Result<Dim, ()> {
    use Dim::*;
    Ok(match (a, b) {
        (Known(x), Known(y)) => {
            if x == y || *y == 1 {
                Known(*x)
            } else if *x == 1 {
                Known(*y)
            } else {
                return Err(());
            }
        }
        (Known(1), d) | (d, Known(1)) => d.clone(),
        (Known(n), _) | (_, Known(n)) => Known(*n),
        (Sym(x), Sym(y)) if x == y => Sym(x.clone()),
        _ => Unknown,
    })
}

/// Broadcast any number of shapes (numpy rules); `None` when one rank is unknown.
pub(super) fn broadcast_shapes(op: &str, shapes: &[Option<&Shape>]) -> Result<Option<Shape>, IrError> {
    let mut known = Vec::with_capacity(shapes.len());
    for s in shapes {
        match s {
            Some(s) => known.push(*s),
            None => return Ok(None),
        }
    }
    let rank = known.iter().map(|s| s.rank()).max().unwrap_or(0);
    let mut out = vec![Dim::Known(1); rank];
    for s in &known {
        let off = rank - s.rank();
        for (i, d) in s.0.iter().enumerate() {
            let slot = &mut out[off + i];
            *slot = broadcast_dim(slot, d).map_err(|()| {
                let list: Vec<String> = known.iter().map(|s| s.to_string()).collect();
                IrError::Shape(format!(
                    "{op}: shapes {} cannot be broadcast together (axis {}: {} vs {})",
                    list.join(", "),
                    off + i,
                    slot,
                    d
                ))
            })?;
        }
    }
    Ok(Some(Shape(out)))
}

/// Check that `from` broadcasts to `to` without changing it (ONNX unidirectional broadcasting).
pub(super) fn check_unidirectional(op: &str, what: &str, from: &Shape, to: &Shape) -> Result<(), IrError> {
    let err = || IrError::Shape(format!("{op}: {what} {from} does not broadcast to {to}"));
    if from.rank() > to.rank() {
        return Err(err());
    }
    let off = to.rank() - from.rank();
    for (i, d) in from.0.iter().enumerate() {
        if let (Dim::Known(f), Dim::Known(t)) = (d, &to.0[off + i])
            && f != t
            && *f != 1
        {
            return Err(err());
        }
    }
    Ok(())
}

/// Merge two dims that must be equal: known beats symbolic beats unknown; two different
/// known sizes are an error (`Err(())`, the caller names the shapes).
pub(super) fn merge_dim(a: &Dim, b: &Dim) -> Result<Dim, ()> {
    use Dim::*;
    Ok(match (a, b) {
        (Known(x), Known(y)) => {
            if x != y {
                return Err(());
            }
            Known(*x)
        }
        (Known(x), _) | (_, Known(x)) => Known(*x),
        (Sym(s), _) | (_, Sym(s)) => Sym(s.clone()),
        _ => Unknown,
    })
}

/// The product of dims: known when all are known, the symbol when it is the only
/// non-known factor among ones, zero when any factor is zero, otherwise unknown.
pub(super) fn dim_product(dims: &[Dim]) -> Result<Dim, IrError> {
    let mut p: usize = 1;
    let mut others = Vec::new();
    for d in dims {
        match d {
            Dim::Known(n) => {
                p = p
                    .checked_mul(*n)
                    .ok_or_else(|| IrError::Shape(format!("element count of {} overflows", Shape(dims.to_vec()))))?;
            }
            d => others.push(d),
        }
    }
    if p == 0 {
        return Ok(Dim::Known(0));
    }
    Ok(match others.as_slice() {
        [] => Dim::Known(p),
        [d] if p == 1 => (*d).clone(),
        _ => Dim::Unknown,
    })
}

/// Number of elements of a fully known shape, with overflow reported as an error.
pub(super) fn checked_count(s: &Shape) -> Result<Option<usize>, IrError> {
    match dim_product(&s.0)? {
        Dim::Known(n) if s.as_known().is_some() => Ok(Some(n)),
        _ => Ok(None),
    }
}

/// Resolve a possibly negative axis against a rank, naming the operator on error.
pub(super) fn axis(op: &str, axis: i64, rank: usize) -> Result<usize, IrError> {
    crate::op::normalize_axis(axis, rank).map_err(|e| context(e, op))
}

/// The elements of a constant integer input (any integer dtype), or `None` when the input is
/// not a constant. Errors when the dtype is not an integer type or the tensor is not 0-D/1-D.
pub(super) fn int_values(op: &str, what: &str, i: &InferInput<'_>) -> Result<Option<Vec<i64>>, IrError> {
    if !i.info.dtype.is_integer() {
        return Err(IrError::DType {
            what: format!("{op} input {what} (an integer tensor)"),
            expected: DType::I64,
            found: i.info.dtype,
        });
    }
    let Some(v) = i.value else { return Ok(None) };
    if v.shape().len() > 1 {
        return Err(IrError::Shape(format!("{op}: {what} must be a 1-D tensor, got shape {}", v.ir_shape())));
    }
    Ok(Some(v.to_i64_vec()))
}

/// The number of elements of a 0-D/1-D parameter input, when known from its type.
pub(super) fn vector_len(i: &InferInput<'_>) -> Option<usize> {
    if let Some(v) = i.value {
        return Some(v.len());
    }
    let s = i.info.shape.as_ref()?;
    match s.0.as_slice() {
        [] => Some(1),
        [Dim::Known(n)] => Some(*n),
        _ => None,
    }
}

/// Convert a non-negative i64 to a size, naming what it is on error.
pub(super) fn to_size(op: &str, what: &str, v: i64) -> Result<usize, IrError> {
    usize::try_from(v).map_err(|_| IrError::Shape(format!("{op}: {what} must be non-negative, got {v}")))
}

/// Convert a size to i64 for index arithmetic.
pub(super) fn to_i64(op: &str, n: usize) -> Result<i64, IrError> {
    i64::try_from(n).map_err(|_| IrError::Shape(format!("{op}: dimension {n} is too large")))
}

/// Resolve a list of possibly negative axes against a rank; duplicates are an error.
pub(super) fn axes_list(op: &str, axes: &[i64], rank: usize) -> Result<Vec<usize>, IrError> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let n = axis(op, a, rank)?;
        if out.contains(&n) {
            return Err(IrError::Attribute(format!("{op}: axis {a} appears twice in axes {axes:?}")));
        }
        out.push(n);
    }
    Ok(out)
}

/// A vector of `n` unknown dims.
pub(super) fn unknown_dims(n: usize) -> Shape {
    Shape(vec![Dim::Unknown; n])
}

/// A single output of the given dtype and shape.
pub(super) fn one(dtype: DType, shape: Option<Shape>) -> Vec<TypeInfo> {
    vec![TypeInfo { dtype, shape }]
}
