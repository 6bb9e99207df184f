//! Memory planning: every intermediate value of a run gets an offset in one arena.
//!
//! For the value types resolved for the current input shapes, each value the schedule
//! computes gets its byte size and lifetime (from the step that writes it to the last step
//! that reads it; graph outputs live until the outputs are handed out, one step past the
//! schedule). Outputs of elementwise and view ops take the memory of an input that dies at
//! the same step ([`in_place`]), then the buffers are packed ([`placement`]).
//!
//! Values computed while resolving (shape computations) are not in the arena, and neither
//! are values whose shape depends on data (they stay separately allocated tensors).

pub(crate) mod arena;
mod in_place;
mod placement;

pub use placement::ARENA_ALIGN;

use crate::RuntimeError;
use crate::plan::{Plan, Source};
use crate::resolve::Resolved;
use lithe_ir::{Graph, Outlet, TypeInfo};
use placement::{Block, place};

/// Where one value lives during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In the arena at `offset` bytes.
    Arena {
        /// Offset in bytes from the arena start (a multiple of [`ARENA_ALIGN`]).
        offset: usize,
        /// The input value (index into [`MemoryReport::values`]) whose memory this value
        /// reuses, when it is computed in place.
        in_place_of: Option<usize>,
    },
    /// Computed once from the input shapes and constants when the shapes were resolved.
    Resolved,
    /// Its shape depends on data, so it is allocated when computed.
    Dynamic,
}

/// One value of the memory plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedValue {
    /// The value's name.
    pub name: String,
    /// The node output it is.
    pub outlet: Outlet,
    /// Its type for the planned input shapes.
    pub ty: TypeInfo,
    /// Its size in bytes (0 when [`Storage::Dynamic`]).
    pub bytes: usize,
    /// The schedule step that computes it.
    pub first_step: usize,
    /// The last step that reads it; the schedule length for graph outputs.
    pub last_step: usize,
    /// Where it lives.
    pub storage: Storage,
}

/// The memory plan for one set of input shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryReport {
    /// Size of the arena holding every planned value.
    pub arena_bytes: usize,
    /// Sum of the sizes of the values in the arena (what allocating each one separately and
    /// keeping it to the end would need).
    pub sum_intermediate_bytes: usize,
    /// The most bytes live at one step (values computed in place counted once): no arena can
    /// be smaller.
    pub peak_live_bytes: usize,
    /// How many values reuse an input's memory.
    pub in_place_values: usize,
    /// Every value the schedule computes, in schedule order.
    pub values: Vec<PlannedValue>,
}

/// A memory plan as the predictor uses it: the report plus per-slot lookups.
#[derive(Clone, Debug)]
pub(crate) struct MemoryPlan {
    /// The public report; `values[i]` is value slot `i` of the plan.
    pub report: MemoryReport,
}

impl MemoryPlan {
    /// Plan the values of `plan` with the types of `resolved`.
    pub fn new(graph: &Graph, plan: &Plan, resolved: &Resolved) -> Result<MemoryPlan, RuntimeError> {
        let n_steps = plan.steps.len();
        let n_values = plan.value_outlets.len();
        let executed: Vec<bool> = (0..n_steps).map(|i| !resolved.step_is_resolved(plan, i)).collect();

        // Sizes and classes.
        let mut storage = vec![Storage::Dynamic; n_values];
        let mut bytes = vec![0usize; n_values];
        for v in 0..n_values {
            let ty = resolved.slot_types.get(v);
            if resolved.slot_values.get(v).is_some_and(Option::is_some) {
                storage[v] = Storage::Resolved;
            } else if let Some(n) = ty.and_then(|t| t.shape.as_ref()?.num_elements()) {
                let dtype_bytes = ty.map_or(1, |t| t.dtype.size_bytes());
                bytes[v] = n.checked_mul(dtype_bytes).ok_or_else(|| {
                    RuntimeError::Internal(format!("the size of value {} overflows", describe(graph, plan, v)))
                })?;
                storage[v] = Storage::Arena { offset: 0, in_place_of: None };
            }
        }

        // Lifetimes over the executed steps.
        let mut first = vec![0usize; n_values];
        let mut last = vec![0usize; n_values];
        for (si, step) in plan.steps.iter().enumerate() {
            for &v in &step.outputs {
                first[v] = si;
                last[v] = si;
            }
            if executed[si] {
                for s in step.inputs.iter().flatten() {
                    if let Source::Value(v) = *s {
                        last[v] = last[v].max(si);
                    }
                }
            }
        }
        for s in &plan.outputs {
            if let Source::Value(v) = *s {
                last[v] = n_steps;
            }
        }

        // In place: merge an output into the buffer of an input dying at the same step.
        let mut buffer_of: Vec<usize> = (0..n_values).collect();
        let mut blocks: Vec<Block> =
            (0..n_values).map(|v| Block { bytes: 0, first: first[v], last: last[v] }).collect();
        for (si, step) in plan.steps.iter().enumerate() {
            if !executed[si] {
                continue;
            }
            let node = graph.node(step.node);
            let mut claimed: Vec<usize> = Vec::new();
            for (k, &v) in step.outputs.iter().enumerate() {
                if !matches!(storage[v], Storage::Arena { .. }) {
                    blocks[v].bytes = 0;
                    continue;
                }
                blocks[v].bytes = bytes[v];
                let candidates = in_place::in_place_inputs(&node.op, k, step.inputs.len());
                let donor = candidates.into_iter().find_map(|slot| {
                    let Some(Some(Source::Value(u))) = step.inputs.get(slot).copied() else { return None };
                    let b = buffer_of[u];
                    let fits = matches!(storage[u], Storage::Arena { .. })
                        && last[u] == si
                        && blocks[b].last == si
                        && bytes[u] == bytes[v]
                        && resolved.slot_types.get(u).map(|t| t.dtype) == resolved.slot_types.get(v).map(|t| t.dtype)
                        && !claimed.contains(&b);
                    fits.then_some(u)
                });
                if let Some(u) = donor {
                    let b = buffer_of[u];
                    claimed.push(b);
                    buffer_of[v] = b;
                    blocks[b].last = last[v];
                    blocks[v].bytes = 0;
                    storage[v] = Storage::Arena { offset: 0, in_place_of: Some(u) };
                }
            }
        }

        let (offsets, arena_bytes) = place(&blocks)?;
        let mut values = Vec::with_capacity(n_values);
        let mut sum = 0usize;
        let mut in_place_values = 0usize;
        for v in 0..n_values {
            let outlet = plan.value_outlets[v];
            let st = match &storage[v] {
                Storage::Arena { in_place_of, .. } => {
                    sum = sum.saturating_add(bytes[v]);
                    in_place_values += usize::from(in_place_of.is_some());
                    Storage::Arena { offset: offsets[buffer_of[v]], in_place_of: *in_place_of }
                }
                other => other.clone(),
            };
            values.push(PlannedValue {
                name: graph.value(outlet).name.clone(),
                outlet,
                ty: resolved.slot_types.get(v).cloned().unwrap_or_else(|| graph.value(outlet).ty.clone()),
                bytes: bytes[v],
                first_step: first[v],
                last_step: last[v],
                storage: st,
            });
        }
        let peak_live_bytes = peak_live(&blocks, n_steps);
        tracing::debug!(arena_bytes, sum_intermediate_bytes = sum, peak_live_bytes, in_place_values, "memory planned");
        Ok(MemoryPlan {
            report: MemoryReport { arena_bytes, sum_intermediate_bytes: sum, peak_live_bytes, in_place_values, values },
        })
    }

    /// Arena offset and size of value slot `v`, when it lives in the arena.
    pub fn arena_slot(&self, v: usize) -> Option<(usize, usize)> {
        match self.report.values.get(v)? {
            PlannedValue { storage: Storage::Arena { offset, .. }, bytes, .. } => Some((*offset, *bytes)),
            _ => None,
        }
    }
}

/// The most bytes live at one step, by a sweep over the steps `0..=n_steps`.
fn peak_live(blocks: &[Block], n_steps: usize) -> usize {
    let mut delta = vec![0i128; n_steps + 2];
    for b in blocks.iter().filter(|b| b.bytes > 0) {
        let size = i128::try_from(b.bytes).unwrap_or(i128::MAX / 4);
        if let Some(d) = delta.get_mut(b.first) {
            *d += size;
        }
        if let Some(d) = delta.get_mut(b.last.saturating_add(1)) {
            *d -= size;
        }
    }
    let (mut live, mut peak) = (0i128, 0i128);
    for d in delta {
        live += d;
        peak = peak.max(live);
    }
    usize::try_from(peak).unwrap_or(usize::MAX)
}

/// `'name'` of value slot `v`, for messages.
fn describe(graph: &Graph, plan: &Plan, v: usize) -> String {
    plan.value_outlets.get(v).map_or_else(|| format!("#{v}"), |&o| format!("'{}'", graph.value(o).name))
}

/// The memory plan of `graph` for its declared input shapes, which must all be known (a
/// graph with symbolic input dims is planned by its predictor when it sees the inputs).
pub fn plan_memory(graph: &Graph) -> Result<MemoryReport, RuntimeError> {
    graph.validate().map_err(RuntimeError::Graph)?;
    let plan = Plan::new(graph)?;
    let mut shapes = Vec::with_capacity(graph.inputs().len());
    for &id in graph.inputs() {
        let v = graph.value(Outlet::new(id, 0));
        let shape = v.ty.shape.as_ref().and_then(lithe_ir::Shape::as_known);
        shapes.push(shape.ok_or_else(|| RuntimeError::UnknownInputShape { name: v.name.clone(), ty: v.ty.clone() })?);
    }
    let resolved = crate::resolve::resolve(graph, &plan, &shapes)?;
    Ok(MemoryPlan::new(graph, &plan, &resolved)?.report)
}
