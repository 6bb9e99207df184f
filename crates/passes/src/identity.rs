//! The `remove_identity` pass: nodes whose output always equals their first input are bypassed
//! (their readers read that input instead) and removed.
//!
//! Removed: `Identity`; inference `Dropout` whose mask output is unused; `Cast` to the input's
//! dtype; `Reshape`/`Expand`/`Flatten`/`Squeeze`/`Unsqueeze` whose output shape provably equals
//! the input shape; `Transpose` with the identity permutation; `Pad` with all-zero pads; `Slice`
//! that provably takes every element; `Concat` of a single input.
//!
//! The helpers shared with the other structural passes (bypassing a node while keeping graph
//! output names, provable shape equality, reading integer constants) live here too.

use crate::util::{absorb, const_input, input_at};
use crate::{Pass, PassError};
use lithe_ir::op::normalize_axis;
use lithe_ir::{DType, Dim, Graph, IrError, NodeId, Op, Outlet, Shape, TypeInfo};

/// Slice bounds at or beyond this magnitude mean "to the end" (the convention of the IR's
/// shape rules: symbolic dims are assumed smaller).
const OPEN_BOUND: i64 = i32::MAX as i64;

/// Remove Identity, inference Dropout, no-op Cast/Reshape/Transpose/Pad/Slice/Expand.
#[derive(Debug, Default)]
pub struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove_identity"
    }
    fn description(&self) -> &'static str {
        "remove Identity, inference Dropout, no-op Cast/Reshape/Transpose/Pad/Slice/Expand"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        remove_identities(graph).map_err(|e| PassError::graph(self.name(), e))
    }
}

/// Bypass and remove every node that provably copies its first input; returns how many.
pub fn remove_identities(g: &mut Graph) -> Result<usize, IrError> {
    let mut removed = 0;
    for id in g.topo_order()? {
        if g.get_node(id).is_none() {
            continue;
        }
        let Some(src) = identity_source(g, id) else { continue };
        let (name, op) = {
            let n = g.node(id);
            (n.name.clone(), n.op.name())
        };
        if bypass(g, Outlet::new(id, 0), src)? {
            remove_if_dead(g, id);
            tracing::debug!(node = %name, op, "removed a node that copies its input");
            removed += 1;
        } else {
            tracing::debug!(node = %name, op, "kept a no-op node: bypassing it would rename a graph input or output");
        }
    }
    Ok(removed)
}

/// The value node `id`'s (first) output always equals, if the node is a provable no-op.
fn identity_source(g: &Graph, id: NodeId) -> Option<Outlet> {
    let node = g.get_node(id)?;
    let x = input_at(g, id, 0)?;
    let x_ty = &g.value(x).ty;
    let out_ty = &node.outputs.first()?.ty;
    if x_ty.dtype != out_ty.dtype {
        return None;
    }
    let single = node.outputs.len() == 1;
    let noop = match &node.op {
        Op::Identity => single,
        Op::Dropout => single || (node.outputs.len() == 2 && is_unused(g, Outlet::new(id, 1))),
        Op::Cast { to } => single && x_ty.dtype == *to,
        Op::Reshape { .. } | Op::Expand | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze => {
            single && provably_same_type(x_ty, out_ty)
        }
        Op::Transpose { perm } => {
            single
                && match perm {
                    Some(p) => p.iter().enumerate().all(|(i, &v)| i == v),
                    None => x_ty.shape.as_ref().is_some_and(|s| s.rank() <= 1),
                }
        }
        Op::Pad { .. } => single && int_const(g, id, 1).is_some_and(|p| p.iter().all(|&v| v == 0)),
        Op::Slice => single && slice_takes_all(g, id, x_ty),
        Op::Concat { .. } => single && node.num_inputs == 1,
        _ => false,
    };
    noop.then_some(x)
}

/// True when nothing reads `o` and it is not a graph output.
pub(crate) fn is_unused(g: &Graph, o: Outlet) -> bool {
    g.consumers(o).is_empty() && !g.outputs().contains(&o)
}

/// Remove node `id` when none of its outputs is read or is a graph output (graph inputs stay).
pub(crate) fn remove_if_dead(g: &mut Graph, id: NodeId) -> bool {
    let Some(node) = g.get_node(id) else { return false };
    if matches!(node.op, Op::Input) {
        return false;
    }
    let dead = (0..node.outputs.len()).all(|s| is_unused(g, Outlet::new(id, s)));
    if dead {
        g.remove_node(id);
    }
    dead
}

/// Make every reader of `out` (and the graph outputs) read `src` instead. When `out` is a graph
/// output, `src` takes its name (see [`absorb`]); that is refused (returns false, nothing
/// changed) when `src` is a graph input or itself a graph output, whose names must stay.
pub(crate) fn bypass(g: &mut Graph, out: Outlet, src: Outlet) -> Result<bool, IrError> {
    if out == src {
        return Ok(false);
    }
    if g.outputs().contains(&out) {
        if g.inputs().contains(&src.node) || g.outputs().contains(&src) {
            return Ok(false);
        }
        absorb(g, src, out)?;
    } else {
        g.replace_uses(out, src)?;
    }
    Ok(true)
}

/// True when the two shapes are equal for every binding of their symbols: same rank, each
/// dim the same known size or the same symbol (an unknown dim proves nothing).
pub(crate) fn provably_same_shape(a: &Shape, b: &Shape) -> bool {
    a.rank() == b.rank() && a.dims().iter().zip(b.dims()).all(|(x, y)| x == y && !matches!(x, Dim::Unknown))
}

/// [`provably_same_shape`] on types, which must also share the dtype.
pub(crate) fn provably_same_type(a: &TypeInfo, b: &TypeInfo) -> bool {
    a.dtype == b.dtype
        && match (&a.shape, &b.shape) {
            (Some(x), Some(y)) => provably_same_shape(x, y),
            _ => false,
        }
}

/// The values of an integer (i32 or i64) constant of rank 0 or 1 read at `slot` of `node`.
pub(crate) fn int_const(g: &Graph, node: NodeId, slot: usize) -> Option<Vec<i64>> {
    let t = const_input(g, node, slot)?;
    (matches!(t.dtype(), DType::I32 | DType::I64) && t.shape().len() <= 1).then(|| t.to_i64_vec())
}

/// True when the constant parameters of a Slice select every element of the input.
fn slice_takes_all(g: &Graph, id: NodeId, x_ty: &TypeInfo) -> bool {
    let Some(shape) = &x_ty.shape else { return false };
    let rank = shape.rank();
    let (Some(starts), Some(ends)) = (int_const(g, id, 1), int_const(g, id, 2)) else { return false };
    let n = starts.len();
    let axes = match input_at(g, id, 3) {
        None => (0..n as i64).collect(),
        Some(_) => match int_const(g, id, 3) {
            Some(a) => a,
            None => return false,
        },
    };
    let steps = match input_at(g, id, 4) {
        None => vec![1; n],
        Some(_) => match int_const(g, id, 4) {
            Some(s) => s,
            None => return false,
        },
    };
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return false;
    }
    (0..n).all(|k| {
        let Ok(ax) = normalize_axis(axes[k], rank) else { return false };
        let known = shape.dims()[ax].known().and_then(|d| i64::try_from(d).ok());
        let from_start = starts[k] == 0 || known.is_some_and(|d| starts[k] <= -d);
        let to_end = ends[k] >= OPEN_BOUND || known.is_some_and(|d| ends[k] >= d);
        steps[k] == 1 && from_start && to_end
    })
}
