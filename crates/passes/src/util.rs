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

/// The constant scalar `(scale, zero point)` of `QuantizeLinear` node `id` to u8, as values and
/// as the outlets holding them.
fn u8_quantize_params(g: &Graph, id: NodeId) -> Option<(f32, u8, Outlet, Outlet)> {
    let node = g.get_node(id)?;
    let Op::QuantizeLinear { to: lithe_ir::DType::U8, .. } = node.op else { return None };
    let s = input_at(g, id, 1)?;
    let z = input_at(g, id, 2)?;
    let one = |t: &&Tensor| t.shape().iter().product::<usize>() == 1;
    let scale = g.const_value(s).filter(one).filter(|t| t.dtype() == lithe_ir::DType::F32)?.to_f32_vec()[0];
    let zt = g.const_value(z).filter(one).filter(|t| t.dtype() == lithe_ir::DType::U8)?;
    let zp = zt.expect_view::<u8>("zero point").ok()?.iter().next().copied()?;
    Some((scale, zp, s, z))
}

/// When every reader of `o` (at least one) is a `QuantizeLinear` to u8, at its input 0, with
/// the same constant scalar scale and zero point, and `o` is not a graph output: the outlets of
/// that scale and zero point, and the readers. `None` also when several readers would each
/// need to keep a graph output name.
pub fn common_u8_quantize(g: &Graph, o: Outlet) -> Option<(Outlet, Outlet, Vec<NodeId>)> {
    if g.outputs().contains(&o) {
        return None;
    }
    let readers = g.consumers(o);
    let mut found: Option<(f32, u8, Outlet, Outlet)> = None;
    for &(n, slot) in &readers {
        let p = u8_quantize_params(g, n).filter(|_| slot == 0)?;
        match found {
            None => found = Some(p),
            Some((s, z, ..)) if s.to_bits() == p.0.to_bits() && z == p.1 => {}
            Some(_) => return None,
        }
    }
    let (.., s, z) = found?;
    if readers.len() > 1 && readers.iter().any(|&(n, _)| g.outputs().contains(&Outlet::new(n, 0))) {
        return None; // only one graph output name could survive
    }
    Some((s, z, readers.into_iter().map(|(n, _)| n).collect()))
}

/// Make `keep` stand for the output of each of `readers` (the first one's name goes to `keep`,
/// see [`absorb`]) and remove them.
pub fn replace_readers(g: &mut Graph, keep: Outlet, readers: Vec<NodeId>) -> Result<(), lithe_ir::IrError> {
    for (i, n) in readers.into_iter().enumerate() {
        let out = Outlet::new(n, 0);
        if i == 0 {
            absorb(g, keep, out)?;
        } else {
            g.replace_uses(out, keep)?;
        }
        g.remove_node(n);
    }
    Ok(())
}
