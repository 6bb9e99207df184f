//! Shape resolution: the type of every scheduled value for one set of concrete input shapes.
//!
//! This is the graph's shape inference ([`lithe_ir::op::infer`]) run over the schedule with
//! the input types replaced by the actual input shapes. It reads constants in place instead of
//! copying the graph, so it costs no weight copies.
//!
//! Shape computations are evaluated on the way: `Shape` of a value whose shape is now known,
//! and any small node whose inputs are all constants or values computed this way (the
//! `Shape -> Gather -> Concat -> Reshape` chains of exported models). Their results depend on
//! nothing but the input shapes, so they are kept with the resolved types, the run reads them
//! instead of recomputing them, and the shapes that depend on them become known, which is
//! what lets the memory plan size every value before the run.

use crate::RuntimeError;
use crate::plan::{Plan, Source};
use lithe_ir::op::{InferInput, infer};
use lithe_ir::{Graph, Op, Outlet, Shape, Tensor, TypeInfo};
use lithe_kernels::reference;
use std::collections::HashMap;

/// Largest output (in elements, over all outputs of one node) evaluated while resolving.
const MAX_RESOLVED_ELEMENTS: usize = 4096;

/// The value types resolved for one set of input shapes.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The concrete input shapes these types were resolved for.
    pub input_shapes: Vec<Vec<usize>>,
    /// The type of each value slot of the plan.
    pub slot_types: Vec<TypeInfo>,
    /// The value of each slot computed while resolving (shape computations), if it was.
    pub slot_values: Vec<Option<Tensor>>,
    /// The same types keyed by outlet, plus the graph inputs used by the plan.
    pub by_outlet: HashMap<Outlet, TypeInfo>,
}

impl Resolved {
    /// True when every output of step `index` was computed while resolving.
    pub fn step_is_resolved(&self, plan: &Plan, index: usize) -> bool {
        plan.steps
            .get(index)
            .is_some_and(|s| s.outputs.iter().all(|&v| self.slot_values.get(v).is_some_and(Option::is_some)))
    }
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
    let mut slot_values: Vec<Option<Tensor>> = vec![None; plan.value_outlets.len()];
    for step in &plan.steps {
        let node = graph.node(step.node);
        let (types, values) = {
            let mut ins = Vec::with_capacity(step.inputs.len());
            for s in &step.inputs {
                ins.push(match s {
                    None => None,
                    Some(Source::Input(i)) => input_types.get(*i).map(|info| InferInput { info, value: None }),
                    Some(Source::Const(id)) => {
                        let o = Outlet::new(*id, 0);
                        Some(InferInput { info: &graph.value(o).ty, value: graph.const_value(o) })
                    }
                    Some(Source::Value(v)) => slot_types
                        .get(*v)
                        .and_then(Option::as_ref)
                        .map(|info| InferInput { info, value: slot_values.get(*v).and_then(Option::as_ref) }),
                });
            }
            let types = infer(&node.op, &ins, node.outputs.len())
                .map_err(|e| e.in_node(&node.name, node.op.name()))
                .map_err(|source| RuntimeError::Resolve { shapes: describe(graph, input_shapes), source })?;
            let values = evaluate(&node.name, &node.op, &step.inputs, &ins, &types);
            (types, values)
        };
        for (i, (&v, t)) in step.outputs.iter().zip(types).enumerate() {
            if let Some(st) = slot_types.get_mut(v) {
                *st = Some(t);
            }
            if let (Some(sv), Some(values)) = (slot_values.get_mut(v), &values) {
                *sv = values.get(i).cloned();
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
    Ok(Resolved { input_shapes: input_shapes.to_vec(), slot_types, slot_values, by_outlet })
}

/// The outputs of one node when they follow from the input shapes and constants alone and
/// are small: `Shape` of a known shape, or a node whose inputs all have values. `None` when
/// the node must run with the graph.
fn evaluate(
    name: &str,
    op: &Op,
    sources: &[Option<Source>],
    ins: &[Option<InferInput<'_>>],
    types: &[TypeInfo],
) -> Option<Vec<Tensor>> {
    if let Op::Shape { start, end } = op {
        let info = ins.first()?.as_ref()?.info;
        return shape_value(info, *start, *end).map(|t| vec![t]);
    }
    // Nodes reading a graph input depend on its data, not only on its shape.
    if sources.iter().flatten().any(|s| matches!(s, Source::Input(_))) || ins.iter().all(Option::is_none) {
        return None;
    }
    let values: Vec<Option<&Tensor>> = ins
        .iter()
        .map(|i| match i {
            None => Some(None),
            Some(i) => i.value.map(Some),
        })
        .collect::<Option<_>>()?;
    let mut total = 0usize;
    for t in types {
        total = total.checked_add(t.shape.as_ref()?.num_elements()?)?;
    }
    if total > MAX_RESOLVED_ELEMENTS {
        return None;
    }
    match reference::eval(op, &values, types.len()) {
        Ok(out) if out.len() == types.len() && out.iter().zip(types).all(|(t, ty)| fits(t, ty)) => Some(out),
        Ok(_) => {
            tracing::debug!(node = name, "not evaluated while resolving: result disagrees with shape inference");
            None
        }
        Err(e) => {
            tracing::debug!(node = name, error = %e, "not evaluated while resolving");
            None
        }
    }
}

/// True when `t` has the dtype and (fully known) shape of `ty`.
fn fits(t: &Tensor, ty: &TypeInfo) -> bool {
    t.dtype() == ty.dtype && ty.shape.as_ref().and_then(Shape::as_known).is_some_and(|s| s == t.shape())
}

/// The value of `Shape` (ONNX start/end clamping) when the sliced dims are known.
fn shape_value(ty: &TypeInfo, start: i64, end: Option<i64>) -> Option<Tensor> {
    let shape = ty.shape.as_ref()?;
    let rank = i64::try_from(shape.rank()).ok()?;
    let clamp = |v: i64| usize::try_from((if v < 0 { v.saturating_add(rank) } else { v }).clamp(0, rank)).ok();
    let (s, e) = (clamp(start)?, clamp(end.unwrap_or(rank))?);
    let dims: Vec<i64> = shape
        .dims()
        .get(s..e.max(s))?
        .iter()
        .map(|d| d.known().and_then(|k| i64::try_from(k).ok()))
        .collect::<Option<_>>()?;
    Tensor::from_vec(&[dims.len()], dims).ok()
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
