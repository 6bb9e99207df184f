//! The `canonicalize_shapes` pass: chains of Flatten/Squeeze/Unsqueeze/Reshape become one
//! Reshape with a constant i64 shape.
//!
//! All four ops only relabel the dims of a row-major buffer, so a chain of them equals one
//! Reshape to the chain's final shape. The shape is written with known sizes, `0` for a
//! symbolic dim provably copied from the same position of the chain's input, and `-1` for at
//! most one other dim: the result is right for every value of the symbols. A chain whose
//! final shape cannot be written that way is left alone (a shorter prefix may still be merged).
//! A single Flatten/Squeeze/Unsqueeze becomes a Reshape the same way; a single Reshape is kept.

use crate::util::{fresh_name, input_at, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::op::{InferInput, infer};
use lithe_ir::{DType, Dim, Graph, IrError, NodeId, Op, Outlet, Shape, Tensor, TypeInfo};

/// Merge Flatten/Squeeze/Unsqueeze/Reshape chains into one Reshape with a constant shape.
#[derive(Debug, Default)]
pub struct CanonicalizeShapes;

impl Pass for CanonicalizeShapes {
    fn name(&self) -> &'static str {
        "canonicalize_shapes"
    }
    fn description(&self) -> &'static str {
        "merge Flatten/Squeeze/Unsqueeze/Reshape chains into one Reshape with a constant shape"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        canonicalize_shapes(graph).map_err(|e| PassError::graph(self.name(), e))
    }
}

/// Rewrite every provable shape-op chain into one Reshape; returns how many chains.
pub fn canonicalize_shapes(g: &mut Graph) -> Result<usize, IrError> {
    let mut rewrites = 0;
    for id in g.topo_order()? {
        let Some(node) = g.get_node(id) else { continue };
        if !is_shape_op(&node.op) || node.outputs.len() != 1 {
            continue;
        }
        // Only chain ends start a rewrite; a member whose only reader continues the chain is
        // handled with that reader.
        if let Some((reader, 0)) = single_consumer(g, Outlet::new(id, 0))
            && is_shape_op(&g.node(reader).op)
        {
            continue;
        }
        let chain = chain_ending_at(g, id);
        // Try the whole chain first, then shorter ones ending earlier.
        for end in (0..chain.len()).rev() {
            let members = &chain[..=end];
            if let [single] = members
                && matches!(g.node(*single).op, Op::Reshape { .. })
            {
                break;
            }
            if rewrite_chain(g, members)? {
                rewrites += 1;
                break;
            }
        }
    }
    Ok(rewrites)
}

/// True for the ops that only relabel dims.
fn is_shape_op(op: &Op) -> bool {
    matches!(op, Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze | Op::Reshape { .. })
}

/// The chain of shape ops ending at `end`, first member first: each member's data input is the
/// previous member's output, read by nothing else and not a graph output.
fn chain_ending_at(g: &Graph, end: NodeId) -> Vec<NodeId> {
    let mut chain = vec![end];
    let mut cur = end;
    while let Some(src) = input_at(g, cur, 0) {
        let p = g.node(src.node);
        if !is_shape_op(&p.op) || p.outputs.len() != 1 || single_consumer(g, src) != Some((cur, 0)) {
            break;
        }
        chain.push(src.node);
        cur = src.node;
    }
    chain.reverse();
    chain
}

/// Replace `members` (a chain, first member first) by one Reshape at the last member, which
/// keeps its name and output. Returns false, changing nothing, when the shape is not provable.
fn rewrite_chain(g: &mut Graph, members: &[NodeId]) -> Result<bool, IrError> {
    let (Some(&first), Some(&last)) = (members.first(), members.last()) else { return Ok(false) };
    let Some(x) = input_at(g, first, 0) else { return Ok(false) };
    let x_ty = g.value(x).ty.clone();
    let out_ty = g.value(Outlet::new(last, 0)).ty.clone();
    let Some(out_shape) = &out_ty.shape else { return Ok(false) };
    let Some(spec) = reshape_spec(x_ty.shape.as_ref(), out_shape) else { return Ok(false) };
    let t = Tensor::from_vec(&[spec.len()], spec.clone())?;
    if !reshape_keeps_type(&x_ty, &t, &out_ty) {
        return Ok(false);
    }
    let base = format!("{}.shape", g.node(last).name);
    let shape_const = g.add_const(fresh_name(g, &base), t);
    let old_inputs = g.node(last).num_inputs;
    for slot in 2..old_inputs {
        g.set_input(last, slot, None)?;
    }
    g.set_input(last, 0, Some(x))?;
    g.set_input(last, 1, Some(shape_const))?;
    let node = g.node_mut(last);
    node.num_inputs = 2;
    let old_op = std::mem::replace(&mut node.op, Op::Reshape { allowzero: false });
    for &m in &members[..members.len() - 1] {
        g.remove_node(m);
    }
    tracing::debug!(
        node = %g.node(last).name,
        was = old_op.name(),
        merged = members.len(),
        shape = ?spec,
        "shape ops became one Reshape"
    );
    Ok(true)
}

/// A Reshape shape giving `out` from any input of shape `input` (rank may be unknown): known
/// sizes, `0` where `out` has the same symbol at the same position of `input`, `-1` for at most
/// one other dim. `None` when `out` has a zero size (which `0` would not express) or more than
/// one dim that is neither known nor copied.
pub(crate) fn reshape_spec(input: Option<&Shape>, out: &Shape) -> Option<Vec<i64>> {
    let mut spec = Vec::with_capacity(out.rank());
    let mut inferred = false;
    for (i, d) in out.dims().iter().enumerate() {
        match d {
            Dim::Known(0) => return None,
            Dim::Known(n) => spec.push(i64::try_from(*n).ok()?),
            Dim::Sym(_) if input.and_then(|s| s.dims().get(i)) == Some(d) => spec.push(0),
            _ if !inferred => {
                inferred = true;
                spec.push(-1);
            }
            _ => return None,
        }
    }
    Some(spec)
}

/// True when shape inference accepts a Reshape of `x` by `shape` and gives a type that agrees
/// with `expected` (same dtype and rank, equal dims where both are known or symbolic).
pub(crate) fn reshape_keeps_type(x: &TypeInfo, shape: &Tensor, expected: &TypeInfo) -> bool {
    let shape_ty = TypeInfo::new(DType::I64, shape.ir_shape());
    let ins = [Some(InferInput { info: x, value: None }), Some(InferInput { info: &shape_ty, value: Some(shape) })];
    let Ok(types) = infer(&Op::Reshape { allowzero: false }, &ins, 1) else { return false };
    let Some(got) = types.first() else { return false };
    let (Some(gs), Some(es)) = (&got.shape, &expected.shape) else { return false };
    got.dtype == expected.dtype
        && gs.rank() == es.rank()
        && gs
            .dims()
            .iter()
            .zip(es.dims())
            .all(|(a, b)| matches!(a, Dim::Unknown) || matches!(b, Dim::Unknown) || a == b)
}
