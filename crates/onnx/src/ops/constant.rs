//! Constants and generated tensors: Constant, ConstantOfShape, Range.

use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::{Op, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("Constant", constant);
    r.add("ConstantOfShape", constant_of_shape);
    r.add("Range", range);
}

super::direct!(range, Op::Range);

/// Constant: exactly one of `value`, `value_float(s)`, `value_int(s)` becomes a Const node.
fn constant(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let names: Vec<&str> = ctx.node.attribute.iter().map(|a| a.name.as_str()).collect();
    let [name] = names.as_slice() else {
        return Err(ctx.err(format!("needs exactly one value attribute, found {names:?}")));
    };
    let t = match *name {
        "value" => ctx.tensor_value("value")?.ok_or_else(|| ctx.err("attribute 'value' has no tensor"))?,
        "value_float" => Tensor::scalar(ctx.float("value_float")?.unwrap_or_default()),
        "value_int" => Tensor::scalar(ctx.int("value_int")?.unwrap_or_default()),
        "value_floats" => {
            let v = ctx.floats("value_floats")?.unwrap_or_default();
            Tensor::from_vec(&[v.len()], v)?
        }
        "value_ints" => {
            let v = ctx.ints("value_ints")?.unwrap_or_default();
            Tensor::from_vec(&[v.len()], v)?
        }
        "sparse_value" => return Err(ctx.err("sparse constants are not supported")),
        "value_string" | "value_strings" => return Err(ctx.err("string constants are not supported")),
        other => return Err(ctx.err(format!("unknown attribute '{other}'"))),
    };
    ctx.emit_const(t)
}

fn constant_of_shape(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    let value = match ctx.tensor_value("value")? {
        Some(t) if t.len() == 1 => t,
        Some(t) => return Err(ctx.err(format!("attribute 'value' must hold one element, found {}", t.len()))),
        None => Tensor::from_vec(&[1], vec![0.0f32])?,
    };
    let shape = ctx.input(0)?;
    ctx.emit(Op::ConstantOfShape { value }, &[Some(shape)])
}
