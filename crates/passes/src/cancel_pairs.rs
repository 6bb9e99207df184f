//! The `cancel_transpose_reshape` pass: pairs of Transposes and pairs of Reshapes that cancel
//! or compose.
//!
//! - Transpose then Transpose: when the composed permutation is the identity the second one is
//!   bypassed (the first stays only if something else reads it); otherwise, when the first one
//!   has no other reader, the two become one Transpose.
//! - Reshape then Reshape: when the second provably restores the first one's input shape it is
//!   bypassed; otherwise, when the first one has no other reader, the second reads the first
//!   one's input directly (a Reshape only depends on the element count, except where its shape
//!   copies a dim with `0`: such a dim must be provably the same in both inputs, or known).

use crate::identity::{bypass, int_const, provably_same_type, remove_if_dead};
use crate::reshape_chain::reshape_keeps_type;
use crate::util::{fresh_name, input_at, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::op::resolve_perm;
use lithe_ir::{Dim, Graph, IrError, NodeId, Op, Outlet, Tensor};

/// Remove or merge Transpose/Transpose and Reshape/Reshape pairs.
#[derive(Debug, Default)]
pub struct CancelTransposeReshape;

impl Pass for CancelTransposeReshape {
    fn name(&self) -> &'static str {
        "cancel_transpose_reshape"
    }
    fn description(&self) -> &'static str {
        "remove Transpose/Reshape pairs that cancel, merge consecutive Transposes and Reshapes"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        cancel_pairs(graph).map_err(|e| PassError::graph(self.name(), e))
    }
}

/// Rewrite every cancelling or composable pair; returns how many.
pub fn cancel_pairs(g: &mut Graph) -> Result<usize, IrError> {
    let mut rewrites = 0;
    for id in g.topo_order()? {
        let Some(node) = g.get_node(id) else { continue };
        let changed = match node.op {
            Op::Transpose { .. } => transpose_pair(g, id)?,
            Op::Reshape { .. } => reshape_pair(g, id)?,
            _ => false,
        };
        if changed {
            rewrites += 1;
        }
    }
    Ok(rewrites)
}

/// The permutation of a one-output Transpose node, resolved for the rank of its input.
fn transpose_perm(g: &Graph, id: NodeId, rank: Option<usize>) -> Option<Vec<usize>> {
    let node = g.node(id);
    let Op::Transpose { perm } = &node.op else { return None };
    if node.outputs.len() != 1 {
        return None;
    }
    let rank = rank.or_else(|| perm.as_ref().map(Vec::len))?;
    resolve_perm(perm.as_deref(), rank).ok()
}

/// Handle a Transpose `second` reading a Transpose.
fn transpose_pair(g: &mut Graph, second: NodeId) -> Result<bool, IrError> {
    let Some(mid) = input_at(g, second, 0) else { return Ok(false) };
    let first = mid.node;
    let Some(x) = input_at(g, first, 0) else { return Ok(false) };
    let rank = g.value(x).ty.shape.as_ref().map(|s| s.rank());
    let Some(p1) = transpose_perm(g, first, rank) else { return Ok(false) };
    let Some(p2) = transpose_perm(g, second, Some(p1.len())) else { return Ok(false) };
    if p1.len() != p2.len() {
        return Ok(false);
    }
    // Output axis j of the second is axis p2[j] of the first's output, axis p1[p2[j]] of x.
    let composed: Vec<usize> = p2.iter().map(|&j| p1[j]).collect();
    let out = Outlet::new(second, 0);
    if composed.iter().enumerate().all(|(i, &p)| i == p) && bypass(g, out, x)? {
        let (n1, n2) = (g.node(first).name.clone(), g.node(second).name.clone());
        remove_if_dead(g, second);
        remove_if_dead(g, first);
        tracing::debug!(first = %n1, second = %n2, "removed a Transpose pair that cancels");
        return Ok(true);
    }
    if single_consumer(g, mid) != Some((second, 0)) {
        return Ok(false);
    }
    g.set_input(second, 0, Some(x))?;
    g.node_mut(second).op = Op::Transpose { perm: Some(composed.clone()) };
    let n1 = g.node(first).name.clone();
    remove_if_dead(g, first);
    tracing::debug!(first = %n1, second = %g.node(second).name, perm = ?composed, "merged two Transposes");
    Ok(true)
}

/// Handle a Reshape `second` reading a Reshape.
fn reshape_pair(g: &mut Graph, second: NodeId) -> Result<bool, IrError> {
    let Some(mid) = input_at(g, second, 0) else { return Ok(false) };
    let first = mid.node;
    {
        let f = g.node(first);
        if !matches!(f.op, Op::Reshape { .. }) || f.outputs.len() != 1 || g.node(second).outputs.len() != 1 {
            return Ok(false);
        }
    }
    let Some(x) = input_at(g, first, 0) else { return Ok(false) };
    let out = Outlet::new(second, 0);
    if provably_same_type(&g.value(x).ty, &g.value(out).ty) && bypass(g, out, x)? {
        let (n1, n2) = (g.node(first).name.clone(), g.node(second).name.clone());
        remove_if_dead(g, second);
        remove_if_dead(g, first);
        tracing::debug!(first = %n1, second = %n2, "removed a Reshape pair that restores the shape");
        return Ok(true);
    }
    if single_consumer(g, mid) != Some((second, 0)) {
        return Ok(false);
    }
    let Op::Reshape { allowzero } = g.node(second).op else { return Ok(false) };
    let Some(spec) = int_const(g, second, 1) else { return Ok(false) };
    let Some(new_spec) = spec_for_input(g, &spec, allowzero, x, mid) else { return Ok(false) };
    if new_spec != spec {
        let t = Tensor::from_vec(&[new_spec.len()], new_spec.clone())?;
        if !reshape_keeps_type(&g.value(x).ty, &t, &g.value(out).ty) {
            return Ok(false);
        }
        let base = format!("{}.shape", g.node(second).name);
        let c = g.add_const(fresh_name(g, &base), t);
        g.set_input(second, 1, Some(c))?;
    }
    g.set_input(second, 0, Some(x))?;
    let n1 = g.node(first).name.clone();
    remove_if_dead(g, first);
    tracing::debug!(first = %n1, second = %g.node(second).name, shape = ?new_spec, "merged two Reshapes");
    Ok(true)
}

/// The shape `spec` of a Reshape reading `mid`, rewritten to give the same result when it
/// reads `x` instead (`mid` being a reshape of `x`): each `0` that copies a dim must copy the
/// same dim from `x` (provably) or becomes the dim's known size.
fn spec_for_input(g: &Graph, spec: &[i64], allowzero: bool, x: Outlet, mid: Outlet) -> Option<Vec<i64>> {
    if allowzero || !spec.contains(&0) {
        return Some(spec.to_vec());
    }
    let xs = g.value(x).ty.shape.as_ref();
    let ms = g.value(mid).ty.shape.as_ref()?;
    spec.iter()
        .enumerate()
        .map(|(i, &v)| {
            if v != 0 {
                return Some(v);
            }
            let d = ms.dims().get(i)?;
            match d {
                Dim::Known(0) => None,
                Dim::Known(n) if xs.and_then(|s| s.dims().get(i)) != Some(d) => i64::try_from(*n).ok(),
                Dim::Unknown => None,
                d => (xs.and_then(|s| s.dims().get(i)) == Some(d)).then_some(0),
            }
        })
        .collect()
}
