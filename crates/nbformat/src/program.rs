//! The graph as a protobuf `Program` and back.
//!
//! Nodes are listed in node-id order, except that graph inputs take the positions of the
//! `Input` nodes in graph-input order; references are positions in that list. Reading
//! checks every reference before the graph is rebuilt and validated.

use crate::op_decode::{op_from_pb, weight_ref};
use crate::op_encode::op_to_pb;
use crate::tensor_map::{WeightsView, WeightsWriter, type_from_pb, value_to_pb};
use crate::{ModelMeta, NbError, pb};
use lithe_ir::{Graph, NodeId, Op, Outlet, ValueInfo};
use std::collections::{HashMap, HashSet};

/// The order nodes are written in: id order, graph inputs permuted among themselves into
/// graph-input order so that a reader can rebuild the input list by adding nodes in order.
fn node_order(graph: &Graph) -> Vec<NodeId> {
    let mut order = graph.node_ids();
    let inputs: HashSet<NodeId> = graph.inputs().iter().copied().collect();
    let mut next = graph.inputs().iter();
    for id in &mut order {
        if inputs.contains(id)
            && let Some(&g) = next.next()
        {
            *id = g;
        }
    }
    order
}

fn index_u32(v: usize, what: &str) -> Result<u32, NbError> {
    u32::try_from(v).map_err(|_| NbError::Encode(format!("{what} {v} does not fit the format's 32 bits")))
}

/// The `Program` message of a graph; tensor data goes to `weights`.
pub fn encode(graph: &Graph, meta: &ModelMeta, weights: &mut WeightsWriter) -> Result<pb::Program, NbError> {
    let order = node_order(graph);
    let mut index = HashMap::with_capacity(order.len());
    for (i, &id) in order.iter().enumerate() {
        index.insert(id, index_u32(i, "node index")?);
    }
    let outlet = |o: Outlet| -> Result<pb::Outlet, NbError> {
        let node = *index.get(&o.node).ok_or_else(|| NbError::Encode(format!("outlet of missing node {}", o.node)))?;
        Ok(pb::Outlet { node, slot: index_u32(o.slot, "output slot")? })
    };
    let mut nodes = Vec::with_capacity(order.len());
    for &id in &order {
        let node = graph.node(id);
        let inputs = graph
            .node_inputs(id)
            .into_iter()
            .map(|o| Ok(pb::InputSlot { outlet: o.map(outlet).transpose()? }))
            .collect::<Result<Vec<_>, NbError>>()?;
        nodes.push(pb::Node {
            name: node.name.clone(),
            op: Some(op_to_pb(&node.op, weights)),
            inputs,
            outputs: node.outputs.iter().map(|v| value_to_pb(&v.name, &v.ty)).collect(),
        });
    }
    let inputs =
        graph.inputs().iter().map(|id| outlet(Outlet::new(*id, 0)).map(|o| o.node)).collect::<Result<_, _>>()?;
    let outputs = graph.outputs().iter().map(|&o| outlet(o)).collect::<Result<_, _>>()?;
    Ok(pb::Program {
        graph_name: graph.name.clone(),
        nodes,
        inputs,
        outputs,
        meta: Some(pb::ModelMeta {
            producer: meta.producer.clone(),
            source: meta.source.clone(),
            passes: meta.passes.clone(),
            valid_targets: meta.valid_targets.clone(),
        }),
    })
}

fn node_ctx(nodes: &[pb::Node], i: usize) -> String {
    match nodes.get(i) {
        Some(n) => format!("node {i} '{}'", n.name),
        None => format!("node {i}"),
    }
}

/// Check every weight reference (aligned, inside the weights section) and that no two
/// tensors share bytes, before any tensor is materialized: the tensors then take at most
/// as many bytes as the weights section holds.
fn check_weight_refs(nodes: &[pb::Node], weights: &WeightsView<'_>) -> Result<(), NbError> {
    let mut spans = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(w) = weight_ref(n.op.as_ref()) {
            let (a, b) = weights.check(w, &|| node_ctx(nodes, i))?;
            if b > a {
                spans.push((a, b, i));
            }
        }
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        let ((a0, b0, i0), (a1, b1, i1)) = (w[0], w[1]);
        if b0 > a1 {
            return Err(NbError::BadReference {
                context: node_ctx(nodes, i1),
                field: "weights",
                detail: format!("bytes {a1}..{b1} overlap the tensor of {} ({a0}..{b0})", node_ctx(nodes, i0)),
            });
        }
    }
    Ok(())
}

/// Check an outlet against the node list.
fn check_outlet(
    o: &pb::Outlet,
    nodes: &[pb::Node],
    ctx: &dyn Fn() -> String,
    field: &'static str,
) -> Result<(usize, usize), NbError> {
    let bad = |detail: String| NbError::BadReference { context: ctx(), field, detail };
    let node = o.node as usize;
    let src = nodes.get(node).ok_or_else(|| bad(format!("node {node} of {}", nodes.len())))?;
    let slot = o.slot as usize;
    if slot >= src.outputs.len() {
        return Err(bad(format!(
            "output {slot} of {}, which has {} outputs",
            node_ctx(nodes, node),
            src.outputs.len()
        )));
    }
    Ok((node, slot))
}

/// Which nodes are graph inputs, checked: `Input` nodes, listed in strictly increasing order.
fn graph_input_flags(p: &pb::Program) -> Result<Vec<bool>, NbError> {
    let mut flags = vec![false; p.nodes.len()];
    let mut prev: Option<usize> = None;
    for (k, &ix) in p.inputs.iter().enumerate() {
        let ix = ix as usize;
        let bad =
            |detail: String| NbError::BadReference { context: format!("graph input {k}"), field: "inputs", detail };
        let node = p.nodes.get(ix).ok_or_else(|| bad(format!("node {ix} of {}", p.nodes.len())))?;
        if !matches!(node.op.as_ref().and_then(|o| o.kind.as_ref()), Some(pb::op::Kind::Input(_))) {
            return Err(bad(format!("{} is not an Input node", node_ctx(&p.nodes, ix))));
        }
        if prev.is_some_and(|p| p >= ix) {
            return Err(bad(format!("node {ix} is not after the previous graph input (inputs must be in node order)")));
        }
        prev = Some(ix);
        flags[ix] = true;
    }
    Ok(flags)
}

/// Rebuild and validate the graph of a `Program`.
pub fn decode(p: &pb::Program, weights: &WeightsView<'_>) -> Result<(Graph, ModelMeta), NbError> {
    let nodes = &p.nodes;
    check_weight_refs(nodes, weights)?;
    let is_input = graph_input_flags(p)?;
    let mut g = Graph::new(p.graph_name.clone());
    // Capacity hints only; the file's counts are bounded by its size (prost decoded them).
    g.reserve(nodes.len(), nodes.iter().map(|n| n.inputs.len()).sum());
    let mut ids: Vec<NodeId> = Vec::with_capacity(nodes.len());
    let mut forward = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let ctx = || node_ctx(nodes, i);
        let op = op_from_pb(n.op.as_ref(), weights, &ctx)?;
        let outputs = n
            .outputs
            .iter()
            .enumerate()
            .map(|(s, v)| {
                let vctx = || format!("{} output {s}", ctx());
                Ok(ValueInfo { name: v.name.clone(), ty: type_from_pb(v, &vctx)? })
            })
            .collect::<Result<Vec<_>, NbError>>()?;
        if matches!(op, Op::Input | Op::Const(_)) && (!n.inputs.is_empty() || outputs.len() != 1) {
            return Err(NbError::InvalidField {
                context: ctx(),
                field: "inputs",
                detail: format!(
                    "{} nodes have no inputs and one output, this one has {} and {}",
                    op.name(),
                    n.inputs.len(),
                    outputs.len()
                ),
            });
        }
        let mut inputs = vec![None; n.inputs.len()];
        for (slot, inp) in n.inputs.iter().enumerate() {
            if let Some(o) = &inp.outlet {
                let (src, src_slot) = check_outlet(o, nodes, &ctx, "inputs")?;
                match ids.get(src) {
                    Some(&id) => inputs[slot] = Some(Outlet::new(id, src_slot)),
                    None => forward.push((i, slot, src, src_slot)),
                }
            }
        }
        let id = if is_input[i] {
            let first = outputs.first().map(|v| (v.name.clone(), v.ty.clone()));
            let (name, ty) = first.ok_or_else(|| NbError::MissingField { context: ctx(), field: "outputs" })?;
            let id = g.add_input(name, ty).node;
            let node = g.node_mut(id);
            node.name = n.name.clone();
            node.outputs = outputs;
            id
        } else {
            g.add_node(n.name.clone(), op, &inputs, outputs)?
        };
        ids.push(id);
    }
    for (i, slot, src, src_slot) in forward {
        g.set_input(ids[i], slot, Some(Outlet::new(ids[src], src_slot)))?;
    }
    let outputs = p
        .outputs
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let (src, slot) = check_outlet(o, nodes, &|| format!("graph output {k}"), "outputs")?;
            Ok(Outlet::new(ids[src], slot))
        })
        .collect::<Result<Vec<_>, NbError>>()?;
    g.set_outputs(outputs);
    g.validate()?;
    let meta = p
        .meta
        .as_ref()
        .map(|m| ModelMeta {
            producer: m.producer.clone(),
            source: m.source.clone(),
            passes: m.passes.clone(),
            valid_targets: m.valid_targets.clone(),
        })
        .unwrap_or_default();
    Ok((g, meta))
}
