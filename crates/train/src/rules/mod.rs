//! Forward overrides and backward rules, one module per op family.
//!
//! [`forward`] runs an op: conv, gemm, matmul and fully connected on the packed GEMM frame,
//! batch normalization with batch statistics in [`Mode::Train`], every other op with
//! [`lithe_kernels::reference::eval`]. [`backward`] maps the gradients of an op's outputs to
//! those of its inputs; [`differentiable_slot`] says which input slots carry a gradient.

mod activation;
mod arith;
mod condition;
mod conv;
mod conv_transpose;
mod dropout;
mod index_map;
mod layer_norm;
mod linear;
mod matmul_nd;
mod minmax;
mod norm;
mod pool;
mod pow;
mod quant;
mod reduce;
mod shape;
mod unary;

pub use conv::{ConvGrads, ConvPath, conv2d_backward, conv2d_backward_with, conv2d_forward, conv2d_forward_with};
pub use conv_transpose::{conv_transpose2d_backward, conv_transpose2d_forward};
pub use dropout::{keep_mask, node_seed};
pub use norm::BnStats;

use crate::error::invalid;
use crate::{Mode, TrainError};
use lithe_ir::{Op, Tensor};
use ndarray::{ArrayD, ArrayViewD, Axis};

/// One node to run forward.
pub struct ForwardArgs<'a> {
    /// Node name (for errors).
    pub node: &'a str,
    /// The op.
    pub op: &'a Op,
    /// Input values per slot (`None` when absent).
    pub inputs: &'a [Option<&'a Tensor>],
    /// Number of outputs.
    pub num_outputs: usize,
    /// Train or eval.
    pub mode: Mode,
    /// Seed of the node's random draws (dropout masks): the tape's seed mixed with the node's
    /// id ([`node_seed`]).
    pub seed: u64,
}

/// What running one node produced.
#[derive(Debug)]
pub struct NodeForward {
    /// The outputs, one per output slot.
    pub outputs: Vec<Tensor>,
    /// Batch statistics of a train-mode batch normalization.
    pub bn_stats: Option<BnStats>,
    /// A value the backward rule reads besides inputs and outputs (the dropout keep mask).
    pub saved: Option<Tensor>,
}

impl NodeForward {
    fn outputs(outputs: Vec<Tensor>) -> Self {
        NodeForward { outputs, bn_stats: None, saved: None }
    }
}

/// One node to differentiate.
pub struct BackwardArgs<'a> {
    /// Node name (for errors).
    pub node: &'a str,
    /// The op.
    pub op: &'a Op,
    /// Input values per slot (`None` when absent).
    pub inputs: &'a [Option<&'a Tensor>],
    /// Output values.
    pub outputs: &'a [&'a Tensor],
    /// Gradient per output (`None` when no loss depends on it: zero).
    pub grads: &'a [Option<ArrayD<f32>>],
    /// Which inputs need a gradient.
    pub need: &'a [bool],
    /// The mode the forward pass ran in.
    pub mode: Mode,
    /// What the node's forward kept for this rule ([`NodeForward::saved`]).
    pub saved: Option<&'a Tensor>,
}

impl<'a> BackwardArgs<'a> {
    /// Input `slot` as f32.
    pub(crate) fn x(&self, slot: usize) -> Result<ArrayViewD<'a, f32>, TrainError> {
        f32_input(self.node, self.inputs, slot)
    }

    /// Output `slot` as f32.
    pub(crate) fn y(&self, slot: usize) -> Result<ArrayViewD<'a, f32>, TrainError> {
        self.outputs
            .get(slot)
            .and_then(|t| t.view::<f32>())
            .map(|a| a.view())
            .ok_or_else(|| invalid(self.node, format!("output {slot} is not an f32 value")))
    }

    /// The gradient of output `slot` (zeros when absent).
    pub(crate) fn gy(&self, slot: usize) -> Result<ArrayD<f32>, TrainError> {
        match self.grads.get(slot) {
            Some(Some(g)) => Ok(g.clone()),
            _ => Ok(ArrayD::zeros(self.y(slot)?.shape())),
        }
    }

    /// True when input `slot` needs a gradient.
    pub(crate) fn need(&self, slot: usize) -> bool {
        self.need.get(slot).copied().unwrap_or(false)
    }

    /// [`TrainError::NoBackwardRule`] for this node.
    pub(crate) fn no_rule(&self, detail: impl Into<String>) -> TrainError {
        TrainError::NoBackwardRule { op: self.op.name(), node: self.node.to_string(), detail: detail.into() }
    }
}

pub(crate) fn f32_input<'a>(
    node: &str,
    inputs: &[Option<&'a Tensor>],
    slot: usize,
) -> Result<ArrayViewD<'a, f32>, TrainError> {
    inputs
        .get(slot)
        .copied()
        .flatten()
        .and_then(|t| t.view::<f32>())
        .map(|a| a.view())
        .ok_or_else(|| invalid(node, format!("input {slot} is missing or not f32")))
}

/// The gradients of one node's inputs, one entry per input slot.
pub type InputGrads = Vec<Option<ArrayD<f32>>>;

/// True when input `slot` of `op` carries a gradient (a rule exists or would exist for it):
/// data and weights yes; shape tensors, Clip bounds, batch-norm running statistics no.
pub fn differentiable_slot(op: &Op, slot: usize) -> bool {
    match op {
        Op::Input | Op::Const(_) => false,
        Op::Conv(_) | Op::ConvTranspose(_) | Op::Gemm(_) | Op::FullyConnected(_) => slot <= 2,
        Op::BatchNormalization { .. } => slot <= 2,
        Op::LayerNormalization { .. } => slot <= 2,
        Op::Clip
        | Op::Reshape { .. }
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Slice
        | Op::Split { .. }
        | Op::Pad { .. }
        | Op::Expand
        | Op::Dropout
        | Op::Resize(_)
        | Op::ReduceMean(_)
        | Op::ReduceSum(_)
        | Op::ReduceMax(_) => slot == 0,
        Op::Gather { .. } => slot == 0,
        Op::Where => slot >= 1,
        Op::Shape { .. }
        | Op::ArgMax(_)
        | Op::Equal
        | Op::ConstantOfShape { .. }
        | Op::Range
        | Op::DynamicQuantizeLinear
        | Op::QConv(_)
        | Op::QAdd
        | Op::QGlobalAveragePool
        | Op::Cast { .. } => false,
        Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. } => slot == 0,
        _ => true,
    }
}

/// Run one node forward.
pub fn forward(a: &ForwardArgs<'_>) -> Result<NodeForward, TrainError> {
    let kernel_err = |e| TrainError::Kernel { node: a.node.to_string(), source: e };
    match a.op {
        Op::Conv(attrs) if attrs.epilogue.is_empty() && is_f32_rank(a.inputs, 0, 4) => {
            Ok(NodeForward::outputs(vec![conv::forward(a, attrs)?]))
        }
        Op::ConvTranspose(attrs) if conv_transpose::handles(a.inputs, attrs) => {
            Ok(NodeForward::outputs(vec![conv_transpose::forward(a, attrs)?]))
        }
        Op::Gemm(attrs) => Ok(NodeForward::outputs(vec![linear::gemm_forward(a, attrs)?])),
        Op::MatMul if linear::matmul_is_2d_weight(a.inputs) => {
            Ok(NodeForward::outputs(vec![linear::matmul_forward(a)?]))
        }
        Op::MaxPool(attrs) => Ok(NodeForward::outputs(pool::max_pool_forward(a, attrs)?)),
        Op::Relu => Ok(NodeForward::outputs(activation::relu_forward(a)?)),
        Op::BatchNormalization { epsilon } if a.mode == Mode::Train => {
            let (y, stats) = norm::train_forward(a, *epsilon)?;
            Ok(NodeForward { outputs: vec![y], bn_stats: Some(stats), saved: None })
        }
        Op::Dropout => dropout::forward(a),
        op => {
            Ok(NodeForward::outputs(lithe_kernels::reference::eval(op, a.inputs, a.num_outputs).map_err(kernel_err)?))
        }
    }
}

fn is_f32_rank(inputs: &[Option<&Tensor>], slot: usize, rank: usize) -> bool {
    inputs.get(slot).copied().flatten().is_some_and(|t| t.dtype() == lithe_ir::DType::F32 && t.shape().len() == rank)
}

/// The gradients of a node's inputs from those of its outputs. Inputs whose `need` is false
/// may get `None`.
pub fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    match a.op {
        Op::Conv(attrs) => conv::backward(a, attrs),
        Op::ConvTranspose(attrs) => conv_transpose::backward(a, attrs),
        Op::Gemm(attrs) => linear::gemm_backward(a, attrs),
        Op::MatMul if linear::matmul_is_2d_weight(a.inputs) => linear::matmul_backward(a),
        Op::MatMul => matmul_nd::backward(a),
        Op::FullyConnected(attrs) => linear::fc_backward(a, attrs),
        Op::BatchNormalization { epsilon } => norm::backward(a, *epsilon),
        Op::Relu
        | Op::Clip
        | Op::LeakyRelu { .. }
        | Op::PRelu
        | Op::Sigmoid
        | Op::Tanh
        | Op::HardSigmoid { .. }
        | Op::HardSwish
        | Op::Identity => activation::backward(a),
        Op::Dropout => dropout::backward(a),
        Op::Add | Op::Sub | Op::Mul | Op::Div => arith::backward(a),
        Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze => shape::reshape_backward(a),
        Op::Transpose { perm } => shape::transpose_backward(a, perm.as_deref()),
        Op::Concat { axis } => shape::concat_backward(a, *axis),
        Op::Slice | Op::Split { .. } | Op::Pad { .. } | Op::Gather { .. } | Op::Expand => index_map::backward(a),
        Op::Softmax(attrs) => shape::softmax_backward(a, attrs),
        Op::MaxPool(attrs) => pool::max_pool_backward(a, attrs),
        Op::AveragePool(attrs) => pool::average_pool_backward(a, attrs),
        Op::GlobalAveragePool => pool::global_average_pool_backward(a),
        Op::GlobalMaxPool => pool::global_max_pool_backward(a),
        Op::QuantizeLinear { axis, .. } => quant::quantize_backward(a, *axis),
        Op::DequantizeLinear { axis } => quant::dequantize_backward(a, *axis),
        Op::ReduceSum(attrs) | Op::ReduceMean(attrs) | Op::ReduceMax(attrs) => reduce::backward(a, attrs),
        Op::Neg | Op::Abs | Op::Exp | Op::Log | Op::Sqrt | Op::Erf => unary::backward(a),
        Op::Where => condition::backward(a),
        Op::Pow => pow::backward(a),
        Op::LayerNormalization { axis, epsilon } => layer_norm::backward(a, *axis, *epsilon),
        Op::Resize(attrs) if index_map::resize_is_nearest(attrs) => index_map::backward(a),
        Op::Resize(_) => Err(a.no_rule("linear and cubic modes, and tf_crop_and_resize")),
        Op::Min | Op::Max => minmax::backward(a),
        _ => Err(a.no_rule("")),
    }
}

/// Sum `g` down to `shape` (the inverse of numpy broadcasting `shape` to `g`'s shape).
pub(crate) fn unbroadcast(mut g: ArrayD<f32>, shape: &[usize]) -> ArrayD<f32> {
    while g.ndim() > shape.len() {
        g = g.sum_axis(Axis(0));
    }
    for (ax, &d) in shape.iter().enumerate() {
        if d == 1 && g.shape()[ax] != 1 {
            g = g.sum_axis(Axis(ax)).insert_axis(Axis(ax));
        }
    }
    g
}
