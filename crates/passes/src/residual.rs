//! The `fuse_conv_residual` pass: `Add(Conv(...), r)` becomes a Conv whose epilogue adds `r`.
//!
//! The conv's output must be read only by the Add, and the conv, `r` and the Add must provably
//! have the same shape (no broadcasting): equal known sizes or equal symbols, dim by dim.

use crate::util::{absorb, input_at, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Outlet};

/// True when the two values provably have the same shape and both are f32.
fn same_f32_shape(g: &Graph, a: Outlet, b: Outlet) -> bool {
    let (ta, tb) = (&g.value(a).ty, &g.value(b).ty);
    if ta.dtype != DType::F32 || tb.dtype != DType::F32 {
        return false;
    }
    match (&ta.shape, &tb.shape) {
        (Some(sa), Some(sb)) => sa.provably_equal(sb),
        _ => false,
    }
}

/// A conv with an empty epilogue producing `o`, read only at `(add, _)`.
fn fusable_conv(g: &Graph, o: Outlet, add: NodeId) -> Option<NodeId> {
    if o.slot != 0 || single_consumer(g, o).map(|(n, _)| n) != Some(add) {
        return None;
    }
    match &g.get_node(o.node)?.op {
        Op::Conv(c) if c.epilogue.is_empty() => Some(o.node),
        _ => None,
    }
}

/// The conv to fuse into and the residual operand, for Add node `add`.
fn matched(g: &Graph, add: NodeId) -> Option<(NodeId, Outlet)> {
    let node = g.get_node(add)?;
    if !matches!(node.op, Op::Add) || node.num_inputs != 2 || node.outputs.len() != 1 {
        return None;
    }
    let (a, b) = (input_at(g, add, 0)?, input_at(g, add, 1)?);
    let out = Outlet::new(add, 0);
    let mut candidates: Vec<(NodeId, Outlet)> = [(a, b), (b, a)]
        .into_iter()
        .filter_map(|(c, r)| fusable_conv(g, c, add).map(|conv| (conv, r)))
        .filter(|&(conv, r)| same_f32_shape(g, Outlet::new(conv, 0), out) && same_f32_shape(g, r, out))
        .collect();
    // Both operands convs: the later one (higher id) takes the residual.
    candidates.sort_by_key(|&(conv, _)| std::cmp::Reverse(conv));
    candidates.into_iter().next()
}

/// Fuse an elementwise Add of a same-shape tensor into the preceding Conv as a residual epilogue.
#[derive(Debug, Default)]
pub struct FuseConvResidual;

impl FuseConvResidual {
    fn try_fuse(g: &mut Graph, add: NodeId) -> Result<bool, IrError> {
        let Some((conv, residual)) = matched(g, add) else { return Ok(false) };
        tracing::debug!(add = %g.node(add).name, conv = %g.node(conv).name, "fused residual Add into Conv");
        g.set_input(conv, 3, Some(residual))?;
        if let Op::Conv(c) = &mut g.node_mut(conv).op {
            c.epilogue.residual = true;
        }
        absorb(g, Outlet::new(conv, 0), Outlet::new(add, 0))?;
        g.remove_node(add);
        Ok(true)
    }
}

impl Pass for FuseConvResidual {
    fn name(&self) -> &'static str {
        "fuse_conv_residual"
    }
    fn description(&self) -> &'static str {
        "fuse an elementwise Add of a same-shape tensor into the preceding Conv as a residual epilogue"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, Self::try_fuse)
    }
}
