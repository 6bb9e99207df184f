//! Helpers shared by the IR integration tests.
#![allow(dead_code)]

use lithe_ir::op::{InferInput, infer};
use lithe_ir::{DType, Dim, IrError, Op, Shape, Tensor, TypeInfo};

/// Parse "1,N,?,4" into a shape: numbers are known, `?` unknown, anything else symbolic.
/// The empty string is a scalar.
pub fn sh(s: &str) -> Shape {
    if s.is_empty() {
        return Shape(vec![]);
    }
    Shape(
        s.split(',')
            .map(|d| match d.trim() {
                "?" => Dim::Unknown,
                d => d.parse::<usize>().map(Dim::Known).unwrap_or_else(|_| Dim::Sym(d.to_string())),
            })
            .collect(),
    )
}

/// One input of a shape-rule test.
pub enum Arg {
    /// A value known only by type.
    T(TypeInfo),
    /// A constant.
    C(Tensor),
    /// An absent optional input.
    None,
}

/// An f32 input of the given shape.
pub fn f32s(s: &str) -> Arg {
    Arg::T(TypeInfo { dtype: DType::F32, shape: Some(sh(s)) })
}

/// An input of the given dtype and shape.
pub fn typed(dtype: DType, s: &str) -> Arg {
    Arg::T(TypeInfo { dtype, shape: Some(sh(s)) })
}

/// An input of unknown rank.
pub fn unranked(dtype: DType) -> Arg {
    Arg::T(TypeInfo::unranked(dtype))
}

/// A constant 1-D i64 tensor.
pub fn i64c(v: &[i64]) -> Arg {
    Arg::C(Tensor::from_vec(&[v.len()], v.to_vec()).unwrap())
}

/// A constant 1-D f32 tensor.
pub fn f32c(v: &[f32]) -> Arg {
    Arg::C(Tensor::from_vec(&[v.len()], v.to_vec()).unwrap())
}

/// Run a shape rule with `n` outputs.
pub fn run_n(op: &Op, args: &[Arg], n: usize) -> Result<Vec<TypeInfo>, IrError> {
    let infos: Vec<Option<TypeInfo>> = args
        .iter()
        .map(|a| match a {
            Arg::T(t) => Some(t.clone()),
            Arg::C(t) => Some(TypeInfo::new(t.dtype(), t.ir_shape())),
            Arg::None => None,
        })
        .collect();
    let inputs: Vec<Option<InferInput<'_>>> = args
        .iter()
        .zip(&infos)
        .map(|(a, i)| i.as_ref().map(|info| InferInput { info, value: if let Arg::C(t) = a { Some(t) } else { None } }))
        .collect();
    infer(op, &inputs, n)
}

/// Run a one-output shape rule.
pub fn run(op: &Op, args: &[Arg]) -> Result<Vec<TypeInfo>, IrError> {
    run_n(op, args, 1)
}

/// The first output's type as text (`f32[1,3,?]`), panicking with the error if inference fails.
pub fn out(op: &Op, args: &[Arg]) -> String {
    match run(op, args) {
        Ok(v) => v[0].to_string(),
        Err(e) => panic!("{} failed: {e}", op.name()),
    }
}

/// The error message of a shape rule that must fail.
pub fn err(op: &Op, args: &[Arg]) -> String {
    match run(op, args) {
        Ok(v) => panic!("{} should fail, gave {:?}", op.name(), v.iter().map(|t| t.to_string()).collect::<Vec<_>>()),
        Err(e) => e.to_string(),
    }
}
