//! The execution plan: the node schedule, where each node reads its inputs from, and when
//! each intermediate value dies.

use crate::RuntimeError;
use lithe_ir::{Graph, IrError, NodeId, Op, Outlet};
use std::collections::{HashMap, HashSet};

/// Where a value lives while the graph runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Graph input number `.0` (owned by the predictor's input table).
    Input(usize),
    /// The tensor of a [`Op::Const`] node, read in place from the graph.
    Const(NodeId),
    /// Intermediate value slot `.0`, produced by a scheduled node.
    Value(usize),
}

/// One scheduled node.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// The node.
    pub node: NodeId,
    /// Its inputs by slot; `None` for absent optional inputs.
    pub inputs: Vec<Option<Source>>,
    /// The value slot of each output.
    pub outputs: Vec<usize>,
    /// Value slots whose last reader is this step (or that nobody reads): dropped after it.
    pub frees: Vec<usize>,
}

/// The whole plan.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Scheduled compute nodes (no `Input`/`Const`) in a stable topological order.
    pub steps: Vec<Step>,
    /// The outlet of each value slot.
    pub value_outlets: Vec<Outlet>,
    /// Where each graph output comes from.
    pub outputs: Vec<Source>,
}

impl Plan {
    /// Build the plan of a validated graph. Nodes that no graph output depends on are not
    /// scheduled.
    pub fn new(graph: &Graph) -> Result<Plan, RuntimeError> {
        let input_index: HashMap<NodeId, usize> = graph.inputs().iter().enumerate().map(|(i, &id)| (id, i)).collect();
        let needed = needed_nodes(graph);
        let order = graph.topo_order().map_err(RuntimeError::Graph)?;

        let mut slot_of: HashMap<Outlet, usize> = HashMap::new();
        let mut value_outlets = Vec::new();
        let mut steps = Vec::new();
        let source_of = |o: Outlet, slot_of: &HashMap<Outlet, usize>| -> Result<Source, RuntimeError> {
            let node = graph
                .get_node(o.node)
                .ok_or_else(|| RuntimeError::Graph(IrError::Dangling(format!("node {} does not exist", o.node))))?;
            match &node.op {
                Op::Input => input_index.get(&o.node).map(|&i| Source::Input(i)).ok_or_else(|| {
                    RuntimeError::Graph(IrError::Dangling(format!(
                        "input node '{}' is not in the graph's input list",
                        node.name
                    )))
                }),
                Op::Const(_) if o.slot == 0 => Ok(Source::Const(o.node)),
                _ => slot_of.get(&o).map(|&s| Source::Value(s)).ok_or_else(|| {
                    RuntimeError::Graph(IrError::Dangling(format!(
                        "value {} of node '{}' is read before it is computed",
                        o.slot, node.name
                    )))
                }),
            }
        };

        for id in order {
            if !needed.contains(&id) {
                continue;
            }
            let node = graph.node(id);
            if matches!(node.op, Op::Input | Op::Const(_)) {
                continue;
            }
            let mut inputs = Vec::with_capacity(node.num_inputs);
            for i in graph.node_inputs(id) {
                inputs.push(match i {
                    Some(o) => Some(source_of(o, &slot_of)?),
                    None => None,
                });
            }
            let mut outputs = Vec::with_capacity(node.outputs.len());
            for slot in 0..node.outputs.len() {
                let o = Outlet::new(id, slot);
                slot_of.insert(o, value_outlets.len());
                outputs.push(value_outlets.len());
                value_outlets.push(o);
            }
            steps.push(Step { node: id, inputs, outputs, frees: Vec::new() });
        }

        let mut outputs = Vec::with_capacity(graph.outputs().len());
        for &o in graph.outputs() {
            outputs.push(source_of(o, &slot_of)?);
        }

        // Last reader of each value slot; graph outputs are never freed.
        let kept: HashSet<usize> = outputs
            .iter()
            .filter_map(|s| match s {
                Source::Value(v) => Some(*v),
                _ => None,
            })
            .collect();
        let mut last_use: Vec<Option<usize>> = vec![None; value_outlets.len()];
        for (si, step) in steps.iter().enumerate() {
            for &v in &step.outputs {
                if let Some(l) = last_use.get_mut(v) {
                    *l = Some(si);
                }
            }
            for s in step.inputs.iter().flatten() {
                if let Source::Value(v) = s
                    && let Some(l) = last_use.get_mut(*v)
                {
                    *l = Some(si);
                }
            }
        }
        for (v, l) in last_use.iter().enumerate() {
            if kept.contains(&v) {
                continue;
            }
            if let Some(step) = l.and_then(|si| steps.get_mut(si)) {
                step.frees.push(v);
            }
        }
        Ok(Plan { steps, value_outlets, outputs })
    }
}

/// Every node some graph output depends on.
fn needed_nodes(graph: &Graph) -> HashSet<NodeId> {
    let mut seen = HashSet::new();
    let mut stack: Vec<NodeId> = graph.outputs().iter().map(|o| o.node).collect();
    while let Some(id) = stack.pop() {
        if graph.get_node(id).is_none() || !seen.insert(id) {
            continue;
        }
        stack.extend(graph.node_inputs(id).into_iter().flatten().map(|o| o.node));
    }
    seen
}
