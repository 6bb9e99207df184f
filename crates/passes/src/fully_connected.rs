//! The `matmul_to_fc` pass: MatMul or Gemm with a constant weight becomes FullyConnected.
//!
//! - `MatMul(X, W)` with `W` a constant f32 `[K, N]` (and an optional following
//!   `Add(·, B)` with `B` a constant broadcasting as `[N]`) becomes `FullyConnected(X, W, B)`.
//! - `Gemm(A, B, C)` with `trans_a = false` and `B` constant becomes
//!   `FullyConnected(A, alpha * B', beta * C)` when `C` is absent or a constant broadcasting as
//!   `[N]` (a `[M, N]` or non-constant C keeps the Gemm).
//!
//! - The weight may also be `DequantizeLinear` of a constant s8 matrix with zero point 0 and one
//!   scale or one per output column (a QDQ model's, e.g. onnxruntime's quantized classifier
//!   Gemm): with `alpha = 1` the FullyConnected reads the same dequantized `[K, N]` weight,
//!   transposed as integers with its scale axis moved when `trans_b` is set, so `fuse_qdq_conv`
//!   can then make it an int8 QConv.
//!
//! The op node is rewritten in place (it keeps its name); new weights go into new constants,
//! and unchanged ones are reused.

use crate::batch_norm::{channel_values, f32_tensor, f64_values, known_rank};
use crate::util::{absorb, fresh_name, input_at, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::op::FcAttrs;
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Outlet, Tensor};

/// A weight or bias of the new FullyConnected: an existing constant or a new tensor, or (a
/// weight) `DequantizeLinear` of new s8 integers with the scale and zero point at the outlets
/// and the scale axis.
enum Param {
    Existing(Outlet),
    New(Tensor),
    NewDequantized { q: Tensor, scale: Outlet, zero_point: Option<Outlet>, axis: i64 },
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

/// The weight of a MatMul: its constant `[K, N]` B as is, or B dequantized from a constant s8
/// matrix; no bias.
fn plan_matmul(g: &Graph, id: NodeId) -> Option<(Param, Option<Bias>, usize)> {
    let w = input_at(g, id, 1)?;
    let n = match g.const_value(w) {
        Some(t) => matrix(t)?.1,
        None if reads_dequantized(g, id) => dequantized_s8(g, w, 1)?.0.shape()[1],
        None => return None,
    };
    Some((Param::Existing(w), None, n))
}

/// `B = DequantizeLinear(q, scale, zero point?)` with `q` a constant s8 `[rows, cols]`, zero
/// point absent or 0, and one scale or one per `out_axis` entry (the output columns): `(q, scale,
/// zero point, per-channel)`.
fn dequantized_s8(g: &Graph, b: Outlet, out_axis: usize) -> Option<(&Tensor, Outlet, Option<Outlet>, bool)> {
    let Op::DequantizeLinear { axis } = g.get_node(b.node)?.op else { return None };
    let (q, s) = (input_at(g, b.node, 0)?, input_at(g, b.node, 1)?);
    let z = input_at(g, b.node, 2);
    let (qt, st) = (g.const_value(q)?, g.const_value(s)?);
    let &[rows, cols] = qt.shape() else { return None };
    if qt.dtype() != DType::I8 || st.dtype() != DType::F32 {
        return None;
    }
    if z.is_some_and(|z| !g.const_value(z).is_some_and(|t| t.to_f32_vec().iter().all(|&v| v == 0.0))) {
        return None;
    }
    let n = [rows, cols][out_axis];
    let count = st.shape().iter().product::<usize>();
    let on_axis = axis == out_axis as i64 || axis == out_axis as i64 - 2;
    let per_channel = count != 1;
    (!per_channel || (count == n && st.shape().len() == 1 && on_axis)).then_some((qt, s, z, per_channel))
}

/// True when the op's input 0 is a `DequantizeLinear` output (a QDQ model's quantized
/// activation): only then is a dequantized weight taken, for `fuse_qdq_conv` to make the int8
/// op; weight-only quantized models keep their ops (their weights become constants at load).
fn reads_dequantized(g: &Graph, id: NodeId) -> bool {
    input_at(g, id, 0).and_then(|x| g.get_node(x.node)).is_some_and(|n| matches!(n.op, Op::DequantizeLinear { .. }))
}

/// The weight of a Gemm with `alpha = 1` whose B is a dequantized s8 matrix, as a `[K, N]`
/// dequantized weight.
fn dequantized_gemm_weight(g: &Graph, bo: Outlet, trans_b: bool) -> Option<(Param, usize)> {
    if !trans_b {
        let (qt, ..) = dequantized_s8(g, bo, 1)?;
        return Some((Param::Existing(bo), qt.shape()[1]));
    }
    let (qt, scale, zero_point, per_channel) = dequantized_s8(g, bo, 0)?;
    let &[n, k] = qt.shape() else { return None };
    let v = qt.expect_view::<i8>("Gemm B").ok()?;
    let v: Vec<i8> = v.iter().copied().collect();
    let mut t = vec![0i8; k * n];
    for r in 0..n {
        for c in 0..k {
            t[c * n + r] = v[r * k + c];
        }
    }
    let q = Tensor::from_vec(&[k, n], t).ok()?;
    Some((Param::NewDequantized { q, scale, zero_point, axis: if per_channel { 1 } else { 0 } }, n))
}

/// Weight `alpha * B'` (`[K, N]`) and bias `beta * C` (`[N]`) of a Gemm without `trans_a`.
fn plan_gemm(g: &Graph, id: NodeId) -> Option<(Param, Option<Bias>, usize)> {
    let Op::Gemm(a) = &g.get_node(id)?.op else { return None };
    if a.trans_a {
        return None;
    }
    let bo = input_at(g, id, 1)?;
    if g.const_value(bo).is_none() && a.alpha == 1.0 && reads_dequantized(g, id) {
        let (weight, n) = dequantized_gemm_weight(g, bo, a.trans_b)?;
        return Some((weight, gemm_bias(g, id, a.beta, n)?, n));
    }
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
    Some((weight, gemm_bias(g, id, a.beta, n)?, n))
}

/// The bias `beta * C` (`[N]`) of Gemm `id`: `Some(None)` without one, `None` when C is not a
/// constant broadcasting as `[N]`.
fn gemm_bias(g: &Graph, id: NodeId, beta: f32, n: usize) -> Option<Option<Bias>> {
    let a_beta = beta;
    let bias = match input_at(g, id, 2) {
        None => None,
        Some(_) if a_beta == 0.0 => None,
        Some(co) => {
            let ct = g.const_value(co)?;
            let values = channel_values(ct, 2, 1, n)?;
            if a_beta == 1.0 && ct.shape() == [n] {
                Some(Bias { param: Param::Existing(co), values })
            } else {
                let beta = f64::from(a_beta);
                let values: Vec<f64> = values.iter().map(|v| beta * v).collect();
                Some(Bias { param: Param::New(f32_tensor(&[n], values.clone())?), values })
            }
        }
    };
    Some(bias)
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

/// The outlet of a parameter, adding a new constant (and `DequantizeLinear`) when needed.
fn materialize(g: &mut Graph, p: Param, name: &str) -> Result<Outlet, IrError> {
    Ok(match p {
        Param::Existing(o) => o,
        Param::New(t) => g.add_const(fresh_name(g, name), t),
        Param::NewDequantized { q, scale, zero_point, axis } => {
            let q = g.add_const(fresh_name(g, &format!("{name}_quantized")), q);
            let node = fresh_name(g, &format!("{name}_dequantize"));
            let op = Op::DequantizeLinear { axis };
            g.add_node_inferred(node, op, &[Some(q), Some(scale), zero_point], 1)?[0]
        }
    })
}

/// Turn MatMul/Gemm with a constant weight (and a following bias Add) into FullyConnected.
#[derive(Debug, Default)]
pub struct MatMulToFc;

impl MatMulToFc {
    fn try_convert(g: &mut Graph, id: NodeId) -> Result<bool, IrError> {
        let Some(c) = plan(g, id) else { return Ok(false) };
        let base = g.node(id).name.clone();
        let w = materialize(g, c.weight, &format!("{base}.fc_weight"))?;
        let b = match c.bias {
            Some(b) => Some(materialize(g, b.param, &format!("{base}.fc_bias"))?),
            None => None,
        };
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
