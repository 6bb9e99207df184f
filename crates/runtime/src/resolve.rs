//! Shape resolution: the type of every scheduled value for one set of concrete input shapes.
//!
//! This is the graph's shape inference ([`lithe_ir::op::infer`]) run over the schedule with
//! the input types replaced by the actual input shapes. It reads constants in place instead of
//! copying the graph, so it costs no weight copies.

use crate::RuntimeError;
use crate::plan::{Plan, Source};
use lithe_ir::op::{InferInput, infer};
use lithe_ir::{Graph, Outlet, Shape, TypeInfo};
use std::collections::HashMap;

/// The value types resolved for one set of input shapes.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The concrete input shapes these types were resolved for.
    pub input_shapes: Vec<Vec<usize>>,
    /// The type of each value slot of the plan.
    pub slot_types: Vec<TypeInfo>,
    /// The same types keyed by outlet, plus the graph inputs used by the plan.
    pub by_outlet: HashMap<Outlet, TypeInfo>,
}

/// Resolve the types of every value of `plan` for `input_shapes`.
pub(crate) fn resolve(graph: &Graph, plan: &Plan, input_shapes: &[Vec<usize>]) -> Result<Resolved, RuntimeError> {
    let input_types: Vec<TypeInfo> = graph
        .inputs()
        .iter()
        .zip(input_shapes)
        .map(|(&id, s)| TypeInfo::new(graph.value(Outlet::new(id, 0)).ty.dtype, Shape::known(s)))
        .collect();
    let mut slot_types: Vec<Option<TypeInfo>> = vec![None; plan.value_outlets.len()];
    for step in &plan.steps {
        let node = graph.node(step.node);
        let types = {
            let mut ins = Vec::with_capacity(step.inputs.len());
            for s in &step.inputs {
                ins.push(match s {
                    None => None,
                    Some(Source::Input(i)) => input_types.get(*i).map(|info| InferInput { info, value: None }),
                    Some(Source::Const(id)) => {
                        let o = Outlet::new(*id, 0);
                        Some(InferInput { info: &graph.value(o).ty, value: graph.const_value(o) })
                    }
                    Some(Source::Value(v)) => {
                        slot_types.get(*v).and_then(Option::as_ref).map(|info| InferInput { info, value: None })
                    }
                });
            }
            infer(&node.op, &ins, node.outputs.len())
                .map_err(|e| e.in_node(&node.name, node.op.name()))
                .map_err(|source| RuntimeError::Resolve { shapes: describe(graph, input_shapes), source })?
        };
        for (&v, t) in step.outputs.iter().zip(types) {
            if let Some(st) = slot_types.get_mut(v) {
                *st = Some(t);
            }
        }
    }
    // Every slot is produced by its step above; fall back to the declared type otherwise.
    let slot_types: Vec<TypeInfo> = slot_types
        .into_iter()
        .zip(&plan.value_outlets)
        .map(|(t, &o)| t.unwrap_or_else(|| graph.value(o).ty.clone()))
        .collect();
    let mut by_outlet: HashMap<Outlet, TypeInfo> =
        plan.value_outlets.iter().copied().zip(slot_types.iter().cloned()).collect();
    for (&id, t) in graph.inputs().iter().zip(&input_types) {
        by_outlet.insert(Outlet::new(id, 0), t.clone());
    }
    Ok(Resolved { input_shapes: input_shapes.to_vec(), slot_types, by_outlet })
}

/// `a: [1,3], b: [2]` for error messages.
fn describe(graph: &Graph, input_shapes: &[Vec<usize>]) -> String {
    graph
        .inputs()
        .iter()
        .zip(input_shapes)
        .map(|(&id, s)| format!("{}: {}", graph.node(id).name, Shape::known(s)))
        .collect::<Vec<_>>()
        .join(", ")
}
