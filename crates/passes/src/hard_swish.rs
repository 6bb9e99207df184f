//! The `fuse_hard_swish` pass: the decomposed forms of hard-swish become one HardSwish.
//!
//! Recognized, with `x` f32 and every intermediate read only inside the pattern:
//! - `x * HardSigmoid(x; alpha = 1/6, beta = 1/2)` (either operand order);
//! - `(x * Clip(x + 3, 0, 6)) / 6` and `(x * Clip(x + 3, 0, 6)) * (1/6)`;
//! - `x * (Clip(x + 3, 0, 6) / 6)` and `x * (Clip(x + 3, 0, 6) * (1/6))`,
//!
//! the last two being how PyTorch exports hardswish at opsets without HardSwish.

use crate::util::{absorb, const_input, fresh_name, input_at, scalar_f32, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Outlet};

/// How close a constant must be to the value of the pattern.
const TOLERANCE: f32 = 1e-6;

/// True when `a` is within [`TOLERANCE`] of `b`, relative to `b`'s magnitude (at least 1).
fn near(a: f32, b: f32) -> bool {
    (a - b).abs() <= TOLERANCE * b.abs().max(1.0)
}

/// The node of `o` when `o` is output 0 of a live node read only by `reader`.
fn private_to(g: &Graph, o: Outlet, reader: NodeId) -> Option<NodeId> {
    (o.slot == 0 && g.get_node(o.node).is_some() && single_consumer(g, o).map(|(n, _)| n) == Some(reader))
        .then_some(o.node)
}

/// The value of a one-element f32 constant at `slot` of `node` that broadcasting against
/// `x` cannot grow (rank 0, or not above `x`'s known rank).
fn scalar_input(g: &Graph, node: NodeId, slot: usize, x: Outlet) -> Option<f32> {
    let t = const_input(g, node, slot)?;
    let rank = t.shape().len();
    if rank > 0 {
        let x_rank = g.value(x).ty.shape.as_ref()?.rank();
        if rank > x_rank {
            return None;
        }
    }
    scalar_f32(t)
}

/// The operands of a two-input node, when both are present.
fn operands(g: &Graph, node: NodeId) -> Option<(Outlet, Outlet)> {
    let n = g.get_node(node)?;
    if n.num_inputs != 2 || n.outputs.len() != 1 {
        return None;
    }
    Some((input_at(g, node, 0)?, input_at(g, node, 1)?))
}

/// `o = v / 6` or `o = v * (1/6)` (either order): returns `v` and the node of `o`.
fn sixth_of(g: &Graph, o: Outlet) -> Option<(Outlet, NodeId)> {
    if o.slot != 0 {
        return None;
    }
    let node = o.node;
    let (a, b) = operands(g, node)?;
    match g.get_node(node)?.op {
        Op::Div => near(scalar_input(g, node, 1, a)?, 6.0).then_some((a, node)),
        Op::Mul => {
            if scalar_input(g, node, 1, a).is_some_and(|v| near(v, 1.0 / 6.0)) {
                Some((a, node))
            } else if scalar_input(g, node, 0, b).is_some_and(|v| near(v, 1.0 / 6.0)) {
                Some((b, node))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `o = Clip(x + 3, 0, 6)` with the Add read only by the Clip: returns `x` and both nodes.
fn relu6_of_x_plus_3(g: &Graph, o: Outlet) -> Option<(Outlet, [NodeId; 2])> {
    if o.slot != 0 {
        return None;
    }
    let clip = o.node;
    if !matches!(g.get_node(clip)?.op, Op::Clip) {
        return None;
    }
    let sum = input_at(g, clip, 0)?;
    let add = private_to(g, sum, clip)?;
    let (a, b) = operands(g, add)?;
    if !matches!(g.node(add).op, Op::Add) {
        return None;
    }
    let x = if scalar_input(g, add, 1, a).is_some_and(|v| near(v, 3.0)) {
        a
    } else if scalar_input(g, add, 0, b).is_some_and(|v| near(v, 3.0)) {
        b
    } else {
        return None;
    };
    let lo = scalar_f32(const_input(g, clip, 1)?)?;
    let hi = scalar_f32(const_input(g, clip, 2)?)?;
    (near(lo, 0.0) && near(hi, 6.0)).then_some((x, [add, clip]))
}

/// `x` and the inner nodes when `p * q` (with `mul` that product) is `x * HardSigmoid(x)` or
/// `x * (Clip(x + 3, 0, 6) / 6)`.
fn x_times_hard_sigmoid(g: &Graph, mul: NodeId, p: Outlet, q: Outlet) -> Option<(Outlet, Vec<NodeId>)> {
    let qn = private_to(g, q, mul)?;
    match g.node(qn).op {
        Op::HardSigmoid { alpha, beta } => {
            let ok = near(alpha, 1.0 / 6.0) && near(beta, 0.5) && input_at(g, qn, 0) == Some(p);
            ok.then(|| (p, vec![qn]))
        }
        _ => {
            let (inner, scale) = sixth_of(g, q)?;
            private_to(g, inner, scale)?;
            let (x, nodes) = relu6_of_x_plus_3(g, inner)?;
            (x == p).then(|| (x, vec![scale, nodes[1], nodes[0]]))
        }
    }
}

/// The input `x` of a hard-swish pattern ending at `end`, and the pattern's inner nodes.
fn match_hard_swish(g: &Graph, end: NodeId) -> Option<(Outlet, Vec<NodeId>)> {
    let node = g.get_node(end)?;
    if node.outputs.len() != 1 || node.outputs[0].ty.dtype != DType::F32 {
        return None;
    }
    if let Some((prod, scale)) = sixth_of(g, Outlet::new(end, 0)) {
        // (x * Clip(x + 3, 0, 6)) / 6
        let mul = private_to(g, prod, scale)?;
        if !matches!(g.node(mul).op, Op::Mul) {
            return None;
        }
        let (a, b) = operands(g, mul)?;
        for (p, q) in [(a, b), (b, a)] {
            let Some(clip) = private_to(g, q, mul) else { continue };
            if let Some((x, nodes)) = relu6_of_x_plus_3(g, Outlet::new(clip, q.slot))
                && x == p
            {
                return Some((x, vec![mul, nodes[1], nodes[0]]));
            }
        }
        return None;
    }
    if !matches!(node.op, Op::Mul) {
        return None;
    }
    let (a, b) = operands(g, end)?;
    x_times_hard_sigmoid(g, end, a, b).or_else(|| x_times_hard_sigmoid(g, end, b, a))
}

/// Fuse x * HardSigmoid(x) (and PyTorch's x * Clip(x + 3, 0, 6) / 6) into HardSwish.
#[derive(Debug, Default)]
pub struct FuseHardSwish;

impl FuseHardSwish {
    fn try_fuse(g: &mut Graph, end: NodeId) -> Result<bool, IrError> {
        let Some((x, inner)) = match_hard_swish(g, end) else { return Ok(false) };
        if g.value(x).ty.dtype != DType::F32 {
            return Ok(false);
        }
        let base = g.node(end).name.clone();
        let hs = g.add_node_inferred(fresh_name(g, &format!("{base}.hard_swish")), Op::HardSwish, &[Some(x)], 1)?;
        tracing::debug!(node = %base, nodes = inner.len() + 1, "fused hard-swish pattern");
        absorb(g, hs[0], Outlet::new(end, 0))?;
        g.remove_node(end);
        for n in inner {
            g.remove_node(n);
        }
        Ok(true)
    }
}

impl Pass for FuseHardSwish {
    fn name(&self) -> &'static str {
        "fuse_hard_swish"
    }
    fn description(&self) -> &'static str {
        "fuse x * HardSigmoid(x) (and x * Clip(x + 3, 0, 6) / 6) into HardSwish"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, Self::try_fuse)
    }
}
