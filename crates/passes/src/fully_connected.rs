//! The `matmul_to_fc` pass: MatMul or Gemm with a constant weight becomes FullyConnected.
//!
//! - `MatMul(X, W)` with `W` a constant f32 `[K, N]` (and an optional following
//!   `Add(·, B)` with `B` a constant broadcasting as `[N]`) becomes `FullyConnected(X, W, B)`.
//! - `Gemm(A, B, C)` with `trans_a = false` and `B` constant becomes
//!   `FullyConnected(A, alpha * B', beta * C)` when `C` is absent or a constant broadcasting as
//!   `[N]` (a `[M, N]` or non-constant C keeps the Gemm).
//!
//! The op node is rewritten in place (it keeps its name); new weights go into new constants,
//! and unchanged ones are reused.

use crate::batch_norm::{channel_values, f32_tensor, f64_values, known_rank};
use crate::util::{absorb, fresh_name, input_at, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::op::FcAttrs;
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Outlet, Tensor};

/// A weight or bias of the new FullyConnected: an existing constant or a new tensor.
enum Param {
    Existing(Outlet),
    New(Tensor),
}

/// A bias of the new FullyConnected, with its values for merging with a following Add.
struct Bias {
    param: Param,
    values: Vec<f64>,
}

/// The plan of one conversion.
struct Conversion {
    weight: Param,
    bias: Option<Bias>,
    /// A following Add whose constant operand went into the bias.
    add: Option<NodeId>,
}

/// The `[K, N]` of an unquantized f32 2-D constant.
fn matrix(t: &Tensor) -> Option<(usize, usize)> {
    match (t.dtype(), t.quant.is_none(), t.shape()) {
        (DType::F32, true, &[k, n]) => Some((k, n)),
        _ => None,
    }
}

/// The weight of a MatMul: its constant `[K, N]` B as is; no bias.
fn plan_matmul(g: &Graph, id: NodeId) -> Option<(Param, Option<Bias>, usize)> {
    let w = input_at(g, id, 1)?;
    let (_, n) = matrix(g.const_value(w)?)?;
    Some((Param::Existing(w), None, n))
}

/// Weight `alpha * B'` (`[K, N]`) and bias `beta * C` (`[N]`) of a Gemm without `trans_a`.
fn plan_gemm(g: &Graph, id: NodeId) -> Option<(Param, Option<Bias>, usize)> {
    let Op::Gemm(a) = &g.get_node(id)?.op else { return None };
    if a.trans_a {
        return None;
    }
    let bo = input_at(g, id, 1)?;
    let bt = g.const_value(bo)?;
    let (rows, cols) = matrix(bt)?;
    let (k, n) = if a.trans_b { (cols, rows) } else { (rows, cols) };
    let weight = if !a.trans_b && a.alpha == 1.0 {
        Param::Existing(bo)
    } else {
        let v = f64_values(bt)?;
        let alpha = f64::from(a.alpha);
        let mut w = Vec::with_capacity(k * n);
        for i in 0..k {
            for j in 0..n {
                let idx = if a.trans_b { j * cols + i } else { i * cols + j };
                w.push(alpha * v.get(idx)?);
            }
        }
        Param::New(f32_tensor(&[k, n], w)?)
    };
    let bias = match input_at(g, id, 2) {
        None => None,
        Some(_) if a.beta == 0.0 => None,
        Some(co) => {
            let ct = g.const_value(co)?;
            let values = channel_values(ct, 2, 1, n)?;
            if a.beta == 1.0 && ct.shape() == [n] {
                Some(Bias { param: Param::Existing(co), values })
            } else {
                let beta = f64::from(a.beta);
                let values: Vec<f64> = values.iter().map(|v| beta * v).collect();
                Some(Bias { param: Param::New(f32_tensor(&[n], values.clone())?), values })
            }
        }
    };
    Some((weight, bias, n))
}

/// The conversion of MatMul or Gemm node `id`, with a following bias Add when there is one.
fn plan(g: &Graph, id: NodeId) -> Option<Conversion> {
    let node = g.get_node(id)?;
    if node.outputs.len() != 1 || node.outputs[0].ty.dtype != DType::F32 {
        return None;
    }
    let x = input_at(g, id, 0)?;
    let x_rank = known_rank(g, x)?;
    let (weight, bias, n) = match node.op {
        Op::MatMul if x_rank >= 1 => plan_matmul(g, id)?,
        Op::Gemm(_) if x_rank == 2 => plan_gemm(g, id)?,
        _ => return None,
    };
    let out = Outlet::new(id, 0);
    let Some((add, operand, exact, extra)) = bias_add(g, out, n) else {
        return Some(Conversion { weight, bias, add: None });
    };
    let bias = match bias {
        None if exact => Bias { param: Param::Existing(operand), values: extra },
        None => Bias { param: Param::New(f32_tensor(&[n], extra.clone())?), values: extra },
        Some(b) => {
            let values: Vec<f64> = b.values.iter().zip(&extra).map(|(a, b)| a + b).collect();
            Bias { param: Param::New(f32_tensor(&[n], values.clone())?), values }
        }
    };
    Some(Conversion { weight, bias: Some(bias), add: Some(add) })
}

/// The Add that is the only reader of `out` when its other operand is a constant broadcasting
/// as `[N]` over `out`: the Add, that operand, whether it is exactly `[N]`, and its values.
fn bias_add(g: &Graph, out: Outlet, n: usize) -> Option<(NodeId, Outlet, bool, Vec<f64>)> {
    let (add, slot) = single_consumer(g, out)?;
    let node = g.node(add);
    if !matches!(node.op, Op::Add) || node.num_inputs != 2 || node.outputs.len() != 1 {
        return None;
    }
    let operand = input_at(g, add, 1 - slot)?;
    let t = g.const_value(operand)?;
    let rank = known_rank(g, out)?;
    let values = channel_values(t, rank, rank.checked_sub(1)?, n)?;
    Some((add, operand, t.shape() == [n], values))
}

/// The outlet of a parameter, adding a new constant when needed.
fn materialize(g: &mut Graph, p: Param, name: &str) -> Outlet {
    match p {
        Param::Existing(o) => o,
        Param::New(t) => g.add_const(fresh_name(g, name), t),
    }
}

/// Turn MatMul/Gemm with a constant weight (and a following bias Add) into FullyConnected.
#[derive(Debug, Default)]
pub struct MatMulToFc;

impl MatMulToFc {
    fn try_convert(g: &mut Graph, id: NodeId) -> Result<bool, IrError> {
        let Some(c) = plan(g, id) else { return Ok(false) };
        let base = g.node(id).name.clone();
        let w = materialize(g, c.weight, &format!("{base}.fc_weight"));
        let b = c.bias.map(|b| materialize(g, b.param, &format!("{base}.fc_bias")));
        let op = g.node(id).op.name();
        tracing::debug!(node = %base, op, with_add = c.add.is_some(), "converted to FullyConnected");
        g.set_input(id, 1, Some(w))?;
        g.set_input(id, 2, b)?;
        g.node_mut(id).op = Op::FullyConnected(FcAttrs::default());
        if let Some(add) = c.add {
            absorb(g, Outlet::new(id, 0), Outlet::new(add, 0))?;
            g.remove_node(add);
        }
        Ok(true)
    }
}

impl Pass for MatMulToFc {
    fn name(&self) -> &'static str {
        "matmul_to_fc"
    }
    fn description(&self) -> &'static str {
        "turn MatMul/Gemm with a constant weight (and a following bias Add) into FullyConnected"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, Self::try_convert)
    }
}
