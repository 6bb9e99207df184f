//! Reference kernels: one function per operator over [`Tensor`]s.
//!
//! These are the correctness oracle for every faster kernel: plain loops, exact semantics
//! (ONNX, matching onnxruntime where ONNX leaves a choice), every error reported, no panics.
//! [`eval`] dispatches an [`Op`] to its kernel.
//!
//! Sizes that come from tensor *values* (a shape input, a range, broadcasting two shapes) are
//! checked against [`MAX_ELEMENTS`] before anything is allocated.

pub mod activation;
pub mod arithmetic;
pub mod broadcast;
pub mod cast;
pub mod compare;
pub mod concat;
pub mod conv;
pub mod conv_transpose;
pub mod epilogue;
pub mod erf;
pub mod expand;
pub mod gather;
pub mod generate;
pub mod math;
pub mod matmul;
pub mod norm;
pub mod pad;
pub mod pool;
pub mod qconv;
pub mod quantize;
pub mod reduce;
pub mod reshape;
pub mod resize;
pub mod shape;
pub mod slice;
pub mod softmax;
pub mod split;
pub mod transpose;

mod dispatch;
mod num;
mod util;

use crate::KernelError;
use lithe_ir::{Op, Tensor};

/// The largest number of elements any reference kernel will allocate for one output (2^31).
///
/// Applies to every size derived from tensor values or broadcasting (ConstantOfShape, Expand,
/// Range, Resize, broadcasting elementwise ops, Gather, Reshape). A tensor that large (8 GiB of
/// f32) is never a legitimate reference computation; a request above it is a malformed model,
/// and refusing it turns a would-be out-of-memory abort into a [`KernelError::Invalid`].
pub const MAX_ELEMENTS: usize = 1 << 31;

/// Number of elements of `shape`, or an error naming `op` when the count exceeds
/// [`MAX_ELEMENTS`] (zero-sized axes do not hide the size of the others).
pub fn checked_num_elements(op: &'static str, shape: &[usize]) -> Result<usize, KernelError> {
    let mut nonzero: usize = 1;
    let mut any_zero = false;
    for &d in shape {
        if d == 0 {
            any_zero = true;
            continue;
        }
        nonzero = match nonzero.checked_mul(d) {
            Some(n) if n <= MAX_ELEMENTS => n,
            _ => {
                return Err(KernelError::Invalid {
                    op,
                    detail: format!("shape {shape:?} exceeds the limit of {MAX_ELEMENTS} elements"),
                });
            }
        };
    }
    Ok(if any_zero { 0 } else { nonzero })
}

/// The inputs of one evaluation, with the operator name for errors.
struct Args<'a, 'b> {
    op: &'static str,
    inputs: &'b [Option<&'a Tensor>],
}

impl<'a> Args<'a, '_> {
    /// Reject more than `n` inputs.
    fn at_most(&self, n: usize) -> Result<(), KernelError> {
        if self.inputs.len() > n {
            return Err(KernelError::Invalid {
                op: self.op,
                detail: format!("takes at most {n} inputs, got {}", self.inputs.len()),
            });
        }
        Ok(())
    }

    /// The required input at `slot`.
    fn req(&self, slot: usize, what: &str) -> Result<&'a Tensor, KernelError> {
        self.inputs.get(slot).copied().flatten().ok_or_else(|| KernelError::Invalid {
            op: self.op,
            detail: format!("missing required input {slot} ({what})"),
        })
    }

    /// The optional input at `slot`.
    fn opt(&self, slot: usize) -> Option<&'a Tensor> {
        self.inputs.get(slot).copied().flatten()
    }

    /// Every input, all required (variadic ops), at least `min` of them.
    fn all(&self, min: usize) -> Result<Vec<&'a Tensor>, KernelError> {
        if self.inputs.len() < min {
            return Err(KernelError::Invalid {
                op: self.op,
                detail: format!("needs at least {min} inputs, got {}", self.inputs.len()),
            });
        }
        (0..self.inputs.len()).map(|i| self.req(i, "variadic input")).collect()
    }
}

/// Evaluate `op` on `inputs` (`None` for absent optional inputs), producing `num_outputs` tensors.
///
/// `Const` returns its tensor; `Input` has no kernel (its value comes from the caller) and is an
/// error. Missing required inputs, surplus inputs and a wrong `num_outputs` are
/// [`KernelError::Invalid`].
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], num_outputs: usize) -> Result<Vec<Tensor>, KernelError> {
    let name = op.name();
    let a = Args { op: name, inputs };
    let one = |t: Tensor| -> Result<Vec<Tensor>, KernelError> {
        if num_outputs != 1 {
            return Err(KernelError::Invalid {
                op: name,
                detail: format!("produces 1 output, {num_outputs} requested"),
            });
        }
        Ok(vec![t])
    };
    match op {
        Op::Input => Err(KernelError::Invalid {
            op: name,
            detail: "graph inputs have no kernel; the caller supplies their value".into(),
        }),
        Op::Const(t) => {
            a.at_most(0)?;
            one(t.clone())
        }
        Op::Conv(attrs) => {
            a.at_most(5)?;
            let y = conv::conv(attrs, a.req(0, "X")?, a.req(1, "W")?, a.opt(2))?;
            one(epilogue::apply_epilogue(&attrs.epilogue, y, a.opt(3), a.opt(4))?)
        }
        Op::FullyConnected(attrs) => {
            a.at_most(4)?;
            one(epilogue::fully_connected(attrs, a.req(0, "X")?, a.req(1, "W")?, a.opt(2), a.opt(3))?)
        }
        Op::ConvTranspose(attrs) => {
            a.at_most(3)?;
            one(conv_transpose::conv_transpose(attrs, a.req(0, "X")?, a.req(1, "W")?, a.opt(2))?)
        }
        Op::BatchNormalization { epsilon } => {
            a.at_most(5)?;
            one(norm::batch_norm(
                *epsilon,
                a.req(0, "X")?,
                a.req(1, "scale")?,
                a.req(2, "B")?,
                a.req(3, "input_mean")?,
                a.req(4, "input_var")?,
            )?)
        }
        Op::Relu => unary(&a, activation::relu).and_then(one),
        Op::Clip => {
            a.at_most(3)?;
            one(activation::clip(a.req(0, "input")?, a.opt(1), a.opt(2))?)
        }
        Op::LeakyRelu { alpha } => unary(&a, |x| activation::leaky_relu(x, *alpha)).and_then(one),
        Op::PRelu => {
            a.at_most(2)?;
            one(activation::prelu(a.req(0, "X")?, a.req(1, "slope")?)?)
        }
        Op::Sigmoid => unary(&a, activation::sigmoid).and_then(one),
        Op::HardSigmoid { alpha, beta } => unary(&a, |x| activation::hard_sigmoid(x, *alpha, *beta)).and_then(one),
        Op::HardSwish => unary(&a, activation::hard_swish).and_then(one),
        Op::Tanh => unary(&a, activation::tanh).and_then(one),
        Op::Softmax(attrs) => unary(&a, |x| softmax::softmax(attrs, x)).and_then(one),
        Op::Gemm(attrs) => {
            a.at_most(3)?;
            one(matmul::gemm(attrs, a.req(0, "A")?, a.req(1, "B")?, a.opt(2))?)
        }
        Op::MatMul => binary(&a, matmul::matmul).and_then(one),
        Op::Add => binary(&a, arithmetic::add).and_then(one),
        Op::Sub => binary(&a, arithmetic::sub).and_then(one),
        Op::Mul => binary(&a, arithmetic::mul).and_then(one),
        Op::Div => binary(&a, arithmetic::div).and_then(one),
        Op::Pow => binary(&a, arithmetic::pow).and_then(one),
        Op::Sqrt => unary(&a, math::sqrt).and_then(one),
        Op::MaxPool(attrs) => unary(&a, |x| pool::max_pool(attrs, x)).and_then(one),
        Op::AveragePool(attrs) => unary(&a, |x| pool::average_pool(attrs, x)).and_then(one),
        Op::GlobalAveragePool => unary(&a, pool::global_average_pool).and_then(one),
        Op::GlobalMaxPool => unary(&a, pool::global_max_pool).and_then(one),
        Op::Concat { axis } => one(concat::concat(&a.all(1)?, *axis)?),
        Op::Reshape { allowzero } => {
            a.at_most(2)?;
            one(reshape::reshape(a.req(0, "data")?, a.req(1, "shape")?, *allowzero)?)
        }
        Op::Flatten { axis } => unary(&a, |x| reshape::flatten(x, *axis)).and_then(one),
        Op::Transpose { perm } => unary(&a, |x| transpose::transpose(x, perm.as_deref())).and_then(one),
        Op::Squeeze => {
            a.at_most(2)?;
            one(reshape::squeeze(a.req(0, "data")?, a.opt(1))?)
        }
        Op::Unsqueeze => {
            a.at_most(2)?;
            one(reshape::unsqueeze(a.req(0, "data")?, a.req(1, "axes")?)?)
        }
        Op::Pad { mode } => {
            a.at_most(4)?;
            one(pad::pad(*mode, a.req(0, "data")?, a.req(1, "pads")?, a.opt(2), a.opt(3))?)
        }
        Op::Resize(attrs) => {
            a.at_most(4)?;
            one(resize::resize(attrs, a.req(0, "X")?, a.opt(1), a.opt(2), a.opt(3))?)
        }
        Op::Slice => {
            a.at_most(5)?;
            one(slice::slice(a.req(0, "data")?, a.req(1, "starts")?, a.req(2, "ends")?, a.opt(3), a.opt(4))?)
        }
        Op::Split { axis, num_outputs: n } => {
            a.at_most(2)?;
            if num_outputs != *n {
                return Err(KernelError::Invalid {
                    op: name,
                    detail: format!("node has num_outputs {n}, {num_outputs} outputs requested"),
                });
            }
            split::split(a.req(0, "input")?, a.opt(1), *axis, *n)
        }
        Op::Gather { axis } => {
            a.at_most(2)?;
            one(gather::gather(a.req(0, "data")?, a.req(1, "indices")?, *axis)?)
        }
        Op::Shape { start, end } => unary(&a, |x| Ok(shape::shape(x, *start, *end))).and_then(one),
        Op::Identity => unary(&a, |x| Ok(x.clone())).and_then(one),
        Op::Dropout => {
            // Inputs: data, ratio?, training_mode? (inference: both ignored).
            a.at_most(3)?;
            let x = a.req(0, "data")?;
            match num_outputs {
                1 => Ok(vec![x.clone()]),
                2 => Ok(vec![x.clone(), Tensor::from(ndarray::ArrayD::from_elem(x.shape(), true))]),
                n => Err(KernelError::Invalid { op: name, detail: format!("produces 1 or 2 outputs, {n} requested") }),
            }
        }
        Op::ReduceMean(attrs) => reduce_op(&a, reduce::Reduction::Mean, attrs).and_then(one),
        Op::ReduceSum(attrs) => reduce_op(&a, reduce::Reduction::Sum, attrs).and_then(one),
        Op::ReduceMax(attrs) => reduce_op(&a, reduce::Reduction::Max, attrs).and_then(one),
        Op::ArgMax(attrs) => unary(&a, |x| reduce::arg_max(x, attrs)).and_then(one),
        Op::Cast { to } => unary(&a, |x| Ok(cast::cast(x, *to))).and_then(one),
        Op::LayerNormalization { axis, epsilon } => {
            a.at_most(3)?;
            if !(1..=3).contains(&num_outputs) {
                return Err(KernelError::Invalid {
                    op: name,
                    detail: format!("produces 1 to 3 outputs, {num_outputs} requested"),
                });
            }
            let (y, mean, inv_std) =
                norm::layer_norm_with_stats(*axis, *epsilon, a.req(0, "X")?, a.req(1, "Scale")?, a.opt(2))?;
            let mut outs = vec![y, mean, inv_std];
            outs.truncate(num_outputs);
            Ok(outs)
        }
        Op::ConstantOfShape { value } => unary(&a, |x| generate::constant_of_shape(x, value)).and_then(one),
        Op::Expand => binary(&a, expand::expand).and_then(one),
        Op::Range => {
            a.at_most(3)?;
            one(generate::range(a.req(0, "start")?, a.req(1, "limit")?, a.req(2, "delta")?)?)
        }
        Op::Where => {
            a.at_most(3)?;
            one(compare::where_(a.req(0, "condition")?, a.req(1, "X")?, a.req(2, "Y")?)?)
        }
        Op::Equal => binary(&a, compare::equal).and_then(one),
        Op::Erf => unary(&a, math::erf).and_then(one),
        Op::Exp => unary(&a, math::exp).and_then(one),
        Op::Log => unary(&a, math::log).and_then(one),
        Op::Neg => unary(&a, math::neg).and_then(one),
        Op::Abs => unary(&a, math::abs).and_then(one),
        Op::Min => one(compare::min(&a.all(1)?)?),
        Op::Max => one(compare::max(&a.all(1)?)?),
        Op::QuantizeLinear { axis, to } => {
            a.at_most(3)?;
            one(quantize::quantize_linear(a.req(0, "x")?, a.req(1, "y_scale")?, a.opt(2), *axis, *to)?)
        }
        Op::DequantizeLinear { axis } => {
            a.at_most(3)?;
            one(quantize::dequantize_linear(a.req(0, "x")?, a.req(1, "x_scale")?, a.opt(2), *axis)?)
        }
        Op::DynamicQuantizeLinear => {
            a.at_most(1)?;
            if num_outputs != 3 {
                return Err(KernelError::Invalid {
                    op: name,
                    detail: format!("produces 3 outputs, {num_outputs} requested"),
                });
            }
            Ok(quantize::dynamic_quantize_linear(a.req(0, "x")?)?.into())
        }
        Op::QConv(attrs) => {
            a.at_most(9)?;
            let inputs = qconv::QConvInputs {
                x: a.req(0, "X")?,
                x_scale: a.req(1, "x_scale")?,
                x_zero_point: a.req(2, "x_zero_point")?,
                w: a.req(3, "W")?,
                w_scale: a.req(4, "w_scale")?,
                bias: a.opt(5),
                residual: a.opt(6),
                y_scale: a.opt(7),
                y_zero_point: a.opt(8),
            };
            one(qconv::qconv(attrs, inputs)?)
        }
        Op::QAdd => {
            a.at_most(8)?;
            let params = [
                a.req(1, "a_scale")?,
                a.req(2, "a_zero_point")?,
                a.req(4, "b_scale")?,
                a.req(5, "b_zero_point")?,
                a.req(6, "c_scale")?,
                a.req(7, "c_zero_point")?,
            ];
            one(quantize::qadd(a.req(0, "A")?, a.req(3, "B")?, params)?)
        }
        Op::QGlobalAveragePool => {
            a.at_most(5)?;
            let params =
                [a.req(1, "x_scale")?, a.req(2, "x_zero_point")?, a.req(3, "y_scale")?, a.req(4, "y_zero_point")?];
            one(quantize::qglobal_average_pool(a.req(0, "X")?, params)?)
        }
    }
}

/// Run a one-input kernel.
fn unary(a: &Args<'_, '_>, f: impl FnOnce(&Tensor) -> Result<Tensor, KernelError>) -> Result<Tensor, KernelError> {
    a.at_most(1)?;
    f(a.req(0, "X")?)
}

/// Run a two-input kernel.
fn binary(
    a: &Args<'_, '_>,
    f: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor, KernelError>,
) -> Result<Tensor, KernelError> {
    a.at_most(2)?;
    f(a.req(0, "A")?, a.req(1, "B")?)
}

/// Run a reduction with its optional axes input.
fn reduce_op(
    a: &Args<'_, '_>,
    kind: reduce::Reduction,
    attrs: &lithe_ir::op::ReduceAttrs,
) -> Result<Tensor, KernelError> {
    a.at_most(2)?;
    reduce::reduce(kind, attrs, a.req(0, "data")?, a.opt(1))
}
