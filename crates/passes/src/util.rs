//! Pattern-matching and rewriting helpers shared by the passes.

use lithe_ir::{Graph, NodeId, Op, Outlet, Tensor};
use std::collections::HashSet;

/// The only reader of `o`, when exactly one node slot reads it and it is not a graph output.
pub fn single_consumer(g: &Graph, o: Outlet) -> Option<(NodeId, usize)> {
    if g.outputs().contains(&o) {
        return None;
    }
    let c = g.consumers(o);
    match c.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// True when nothing but the given node reads `o` (possibly at several slots) and it is not a
/// graph output.
pub fn only_read_by(g: &Graph, o: Outlet, node: NodeId) -> bool {
    !g.outputs().contains(&o) && g.consumers(o).iter().all(|&(n, _)| n == node)
}

/// The constant tensor at `o`, if `o` is the output of a `Const` node.
pub fn const_at(g: &Graph, o: Outlet) -> Option<&Tensor> {
    g.const_value(o)
}

/// The constant tensor read at input `slot` of `node`.
pub fn const_input(g: &Graph, node: NodeId, slot: usize) -> Option<&Tensor> {
    let o = g.node_inputs(node).get(slot).copied().flatten()?;
    g.const_value(o)
}

/// The outlet read at input `slot` of `node`.
pub fn input_at(g: &Graph, node: NodeId, slot: usize) -> Option<Outlet> {
    g.node_inputs(node).get(slot).copied().flatten()
}

/// The node producing the value read at `slot` of `node`, with its op.
pub fn producer(g: &Graph, node: NodeId, slot: usize) -> Option<(Outlet, &Op)> {
    let o = input_at(g, node, slot)?;
    Some((o, &g.get_node(o.node)?.op))
}

/// Make `keep` stand for `gone`: every reader of `gone` (and the graph outputs) reads `keep`
/// instead, and `keep` takes `gone`'s value name, so graph output names survive a fusion. The
/// node producing `gone` is left without readers (dead-code removal drops it). `keep`'s type is
/// left as is (the pass manager re-infers types).
pub fn absorb(g: &mut Graph, keep: Outlet, gone: Outlet) -> Result<(), lithe_ir::IrError> {
    g.replace_uses(gone, keep)?;
    let name = std::mem::take(&mut g.value_mut(gone).name);
    let old = std::mem::replace(&mut g.value_mut(keep).name, name);
    g.value_mut(gone).name = old;
    Ok(())
}

/// A value/node name not used in `g`, made from `base`.
pub fn fresh_name(g: &Graph, base: &str) -> String {
    let used: HashSet<&str> = g
        .node_ids()
        .into_iter()
        .flat_map(|id| {
            let n = g.node(id);
            std::iter::once(n.name.as_str()).chain(n.outputs.iter().map(|v| v.name.as_str()))
        })
        .collect();
    if !used.contains(base) {
        return base.to_string();
    }
    (1..).map(|i| format!("{base}_{i}")).find(|c| !used.contains(c.as_str())).unwrap_or_else(|| base.to_string())
}

/// The f32 values of a constant, when it is f32.
pub fn f32_values(t: &Tensor) -> Option<Vec<f32>> {
    t.as_f32().map(|a| a.iter().copied().collect())
}

/// The single f32 value of a one-element f32 constant.
pub fn scalar_f32(t: &Tensor) -> Option<f32> {
    let a = t.as_f32()?;
    if a.len() == 1 { a.iter().next().copied() } else { None }
}
