//! Shape and dtype rules, one per operator, following ONNX semantics.
//!
//! Every rule takes what is known of the inputs (types and, for constants, values) and
//! returns the output types, or an error naming the shapes involved. Rules never panic.
//!
//! Conventions:
//! - Broadcasting follows numpy: `Sym` vs `Known(1)` gives the symbol, equal symbols stay,
//!   `Sym`/`Unknown` vs `Known(n != 1)` gives `Known(n)`, anything else is `Unknown`.
//! - Value-dependent ops (Reshape, Slice, Pad, Resize, ...) read constant parameter inputs;
//!   when a parameter is not constant they give the best partial answer: a known rank with
//!   `Unknown` dims, or an unknown rank.
//! - Sliding-window ops give `Unknown` for symbolic spatial sizes, except where the output
//!   size provably equals the input size (stride 1 with `SAME` padding or pads that exactly
//!   cover the window), where the input dim is kept.

mod common;
mod conv;
mod elementwise;
mod layout;
mod linalg;
mod quant;
mod reduce;
mod slicing;

use super::Op;
use crate::{IrError, Tensor, TypeInfo};
use common::Args;

/// Largest number of outputs a node may declare.
const MAX_OUTPUTS: usize = 1 << 16;

/// What the shape rule knows of one input: its type and, when constant, its value.
#[derive(Clone, Copy, Debug)]
pub struct InferInput<'a> {
    /// The input's type.
    pub info: &'a TypeInfo,
    /// The input's value, when it is a constant.
    pub value: Option<&'a Tensor>,
}

/// Infer the output types of `op` from its inputs (`None` for absent optional inputs).
///
/// `num_outputs` is how many outputs the node has; it must be one the operator allows
/// (for example 1 or 2 for `Dropout` and `MaxPool`, exactly `num_outputs` for `Split`).
/// `Input` and `Const` have no rule (their types are declared) and return an error.
pub fn infer(op: &Op, inputs: &[Option<InferInput<'_>>], num_outputs: usize) -> Result<Vec<TypeInfo>, IrError> {
    let name = op.name();
    let (min_out, max_out) = output_range(op);
    if num_outputs < min_out || num_outputs > max_out {
        let allowed = if min_out == max_out { format!("{min_out}") } else { format!("{min_out} to {max_out}") };
        return Err(IrError::Attribute(format!("{name} has {allowed} outputs, the node declares {num_outputs}")));
    }
    if num_outputs > MAX_OUTPUTS {
        return Err(IrError::Attribute(format!("{name}: {num_outputs} outputs is more than {MAX_OUTPUTS}")));
    }
    let max_in = max_inputs(op);
    if inputs.len() > max_in {
        return Err(IrError::Attribute(format!("{name} takes at most {max_in} inputs, got {}", inputs.len())));
    }
    let a = Args { op: name, inputs };
    let out = rule(op, &a, num_outputs).map_err(|e| with_input_types(e, inputs))?;
    if out.len() != num_outputs {
        return Err(IrError::Attribute(format!(
            "{name}: the shape rule produced {} outputs for {num_outputs} declared",
            out.len()
        )));
    }
    Ok(out)
}

/// Add the input types to a shape or attribute error that does not mention any of them.
fn with_input_types(e: IrError, inputs: &[Option<InferInput<'_>>]) -> IrError {
    let shapes: Vec<String> =
        inputs.iter().map(|i| i.map_or_else(|| "-".to_string(), |i| i.info.to_string())).collect();
    let mentions =
        |m: &str| inputs.iter().flatten().filter_map(|i| i.info.shape.as_ref()).any(|s| m.contains(&s.to_string()));
    match e {
        IrError::Shape(m) if !mentions(&m) => IrError::Shape(format!("{m} (inputs: {})", shapes.join(", "))),
        IrError::Attribute(m) if !mentions(&m) => IrError::Attribute(format!("{m} (inputs: {})", shapes.join(", "))),
        e => e,
    }
}

/// Dispatch to the rule of each operator.
fn rule(op: &Op, a: &Args, num_outputs: usize) -> Result<Vec<TypeInfo>, IrError> {
    let name = op.name();
    Ok(match op {
        Op::Input | Op::Const(_) => {
            return Err(IrError::Attribute(format!("{name} has no shape rule: its type is declared, not inferred")));
        }
        Op::Conv(c) => conv::conv(a, c)?,
        Op::ConvTranspose(c) => conv::conv_transpose(a, c)?,
        Op::MaxPool(p) => conv::pool(a, p, num_outputs)?,
        Op::AveragePool(p) => conv::pool(a, &p.pool, 1)?,
        Op::GlobalAveragePool | Op::GlobalMaxPool => conv::global_pool(a)?,
        Op::BatchNormalization { .. } => linalg::batch_norm(a)?,
        Op::Gemm(g) => linalg::gemm(a, g)?,
        Op::MatMul => linalg::matmul(a)?,
        Op::FullyConnected(f) => linalg::fully_connected(a, f)?,
        Op::Relu
        | Op::LeakyRelu { .. }
        | Op::Sigmoid
        | Op::HardSigmoid { .. }
        | Op::HardSwish
        | Op::Tanh
        | Op::Sqrt
        | Op::Erf
        | Op::Exp
        | Op::Log
        | Op::Neg
        | Op::Abs
        | Op::Identity => elementwise::unary(a)?,
        Op::Clip => elementwise::clip(a)?,
        Op::PRelu => elementwise::prelu(a)?,
        Op::Add | Op::Sub | Op::Mul | Op::Div => elementwise::arithmetic(a)?,
        Op::Pow => elementwise::pow(a)?,
        Op::Equal => elementwise::equal(a)?,
        Op::Where => elementwise::where_(a)?,
        Op::Min | Op::Max => elementwise::variadic(a)?,
        Op::Cast { to } => elementwise::cast(a, *to)?,
        Op::Dropout => elementwise::dropout(a, num_outputs)?,
        Op::Softmax(s) => reduce::softmax(a, s.axis)?,
        Op::ReduceMean(r) | Op::ReduceSum(r) | Op::ReduceMax(r) => reduce::reduce(a, r)?,
        Op::ArgMax(r) => reduce::arg_max(a, r)?,
        Op::LayerNormalization { axis, .. } => reduce::layer_norm(a, *axis, num_outputs)?,
        Op::Concat { axis } => layout::concat(a, *axis)?,
        Op::Reshape { allowzero } => layout::reshape(a, *allowzero)?,
        Op::Flatten { axis } => layout::flatten(a, *axis)?,
        Op::Transpose { perm } => layout::transpose(a, perm.as_deref())?,
        Op::Squeeze => layout::squeeze(a)?,
        Op::Unsqueeze => layout::unsqueeze(a)?,
        Op::Split { axis, num_outputs: n } => layout::split(a, *axis, *n, num_outputs)?,
        Op::Gather { axis } => layout::gather(a, *axis)?,
        Op::Shape { start, end } => layout::shape(a, *start, *end)?,
        Op::Expand => layout::expand(a)?,
        Op::ConstantOfShape { value } => layout::constant_of_shape(a, value)?,
        Op::Range => layout::range(a)?,
        Op::Pad { .. } => slicing::pad(a)?,
        Op::Slice => slicing::slice(a)?,
        Op::Resize(r) => slicing::resize(a, r)?,
        Op::QuantizeLinear { axis, to } => quant::quantize_linear(a, *axis, *to)?,
        Op::DynamicQuantizeLinear => quant::dynamic_quantize_linear(a)?,
        Op::DequantizeLinear { axis } => quant::dequantize_linear(a, *axis)?,
        Op::QConv(q) => conv::qconv(a, q)?,
        Op::QAdd => quant::qadd(a)?,
        Op::QGlobalAveragePool => quant::qglobal_average_pool(a)?,
    })
}

/// The allowed number of node outputs of each operator.
fn output_range(op: &Op) -> (usize, usize) {
    match op {
        Op::Dropout | Op::MaxPool(_) => (1, 2),
        Op::LayerNormalization { .. } => (1, 3),
        Op::DynamicQuantizeLinear => (3, 3),
        Op::Split { num_outputs, .. } => (*num_outputs, *num_outputs),
        _ => (1, 1),
    }
}

/// The largest number of input slots of each operator (trailing optional inputs included).
fn max_inputs(op: &Op) -> usize {
    match op {
        Op::Input | Op::Const(_) => 0,
        Op::Concat { .. } | Op::Min | Op::Max => usize::MAX,
        Op::BatchNormalization { .. } | Op::Conv(_) => 5,
        Op::QConv(_) => 9,
        Op::QAdd => 8,
        Op::QGlobalAveragePool => 5,
        Op::FullyConnected(_) => 4,
        Op::Slice => 5,
        Op::Pad { .. } | Op::Resize(_) => 4,
        Op::ConvTranspose(_)
        | Op::Clip
        | Op::Gemm(_)
        | Op::Dropout
        | Op::LayerNormalization { .. }
        | Op::Range
        | Op::Where
        | Op::QuantizeLinear { .. }
        | Op::DequantizeLinear { .. } => 3,
        Op::PRelu
        | Op::MatMul
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Pow
        | Op::Equal
        | Op::Reshape { .. }
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Split { .. }
        | Op::Gather { .. }
        | Op::ReduceMean(_)
        | Op::ReduceSum(_)
        | Op::ReduceMax(_)
        | Op::Expand => 2,
        Op::Relu
        | Op::LeakyRelu { .. }
        | Op::Sigmoid
        | Op::HardSigmoid { .. }
        | Op::HardSwish
        | Op::Tanh
        | Op::Softmax(_)
        | Op::Sqrt
        | Op::MaxPool(_)
        | Op::AveragePool(_)
        | Op::GlobalAveragePool
        | Op::GlobalMaxPool
        | Op::Flatten { .. }
        | Op::Transpose { .. }
        | Op::Shape { .. }
        | Op::Identity
        | Op::ArgMax(_)
        | Op::Cast { .. }
        | Op::DynamicQuantizeLinear
        | Op::ConstantOfShape { .. }
        | Op::Erf
        | Op::Exp
        | Op::Log
        | Op::Neg
        | Op::Abs => 1,
    }
}
