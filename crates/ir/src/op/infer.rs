//! Shape and dtype rules, one per operator.

use super::Op;
use crate::{IrError, Tensor, TypeInfo};

/// What the shape rule knows of one input: its type and, when constant, its value.
#[derive(Clone, Copy, Debug)]
pub struct InferInput<'a> {
    /// The input's type.
    pub info: &'a TypeInfo,
    /// The input's value, when it is a constant.
    pub value: Option<&'a Tensor>,
}

/// Infer the output types of `op` from its inputs (`None` for absent optional inputs).
pub fn infer(op: &Op, inputs: &[Option<InferInput<'_>>], num_outputs: usize) -> Result<Vec<TypeInfo>, IrError> {
    let _ = (op, inputs, num_outputs);
    Err(IrError::Attribute("shape inference not written yet".into()))
}
