//! The predictor: runs a graph on input tensors with the reference kernels.

use crate::RuntimeError;
use crate::bind::check_inputs;
use crate::plan::{Plan, Source};
use crate::resolve::{Resolved, resolve};
use lithe_ir::{Dim, Graph, NodeId, Outlet, Tensor, TypeInfo};
use lithe_kernels::reference;
use std::collections::HashMap;

/// Runs one graph: set the inputs, [`run`](Predictor::run), read the outputs.
///
/// Built once per graph: validation, the schedule and the value lifetimes are computed in
/// [`Predictor::new`]. Intermediate values are dropped as soon as their last reader ran.
/// Inputs with symbolic dims accept any size for them; the value types for the actual input
/// shapes are re-inferred when the shapes change and cached otherwise.
#[derive(Debug)]
pub struct Predictor {
    graph: Graph,
    plan: Plan,
    input_names: Vec<String>,
    input_types: Vec<TypeInfo>,
    output_names: Vec<String>,
    inputs: Vec<Option<Tensor>>,
    outputs: Vec<Option<Tensor>>,
    resolved: Option<Resolved>,
    peak_live_bytes: usize,
}

impl Predictor {
    /// Validate `graph` and plan its execution.
    pub fn new(graph: Graph) -> Result<Predictor, RuntimeError> {
        graph.validate().map_err(RuntimeError::Graph)?;
        let plan = Plan::new(&graph)?;
        let (input_names, input_types) = graph
            .inputs()
            .iter()
            .map(|&id| {
                let v = graph.value(Outlet::new(id, 0));
                (v.name.clone(), v.ty.clone())
            })
            .unzip();
        let output_names: Vec<String> = graph.outputs().iter().map(|&o| graph.value(o).name.clone()).collect();
        let n_in = graph.inputs().len();
        let n_out = output_names.len();
        Ok(Predictor {
            graph,
            plan,
            input_names,
            input_types,
            output_names,
            inputs: (0..n_in).map(|_| None).collect(),
            outputs: (0..n_out).map(|_| None).collect(),
            resolved: None,
            peak_live_bytes: 0,
        })
    }

    /// The graph being run.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The compute nodes in execution order (inputs, constants and nodes no output depends on
    /// are not listed).
    pub fn schedule(&self) -> Vec<NodeId> {
        self.plan.steps.iter().map(|s| s.node).collect()
    }

    /// Names of the graph inputs, in order.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    /// Declared types of the graph inputs, in order.
    pub fn input_types(&self) -> &[TypeInfo] {
        &self.input_types
    }

    /// Index of the input named `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.input_names.iter().position(|n| n == name)
    }

    /// Names of the graph outputs, in order.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Set input `index`. The tensor is checked against the declared type when running.
    pub fn set_input(&mut self, index: usize, t: Tensor) -> Result<(), RuntimeError> {
        let count = self.inputs.len();
        let slot = self.inputs.get_mut(index).ok_or(RuntimeError::InputIndex { index, count })?;
        *slot = Some(t);
        Ok(())
    }

    /// Set the input named `name`.
    pub fn set_input_by_name(&mut self, name: &str, t: Tensor) -> Result<(), RuntimeError> {
        let index = self
            .input_index(name)
            .ok_or_else(|| RuntimeError::UnknownInput { name: name.to_string(), known: self.input_names.join(", ") })?;
        self.set_input(index, t)
    }

    /// The tensor currently set for input `index`.
    pub fn input(&self, index: usize) -> Option<&Tensor> {
        self.inputs.get(index).and_then(Option::as_ref)
    }

    /// Output `index` of the last successful run.
    pub fn output(&self, index: usize) -> Option<&Tensor> {
        self.outputs.get(index).and_then(Option::as_ref)
    }

    /// Move the outputs of the last successful run out (empty if there is none).
    pub fn take_outputs(&mut self) -> Vec<Tensor> {
        if self.outputs.iter().any(Option::is_none) {
            return Vec::new();
        }
        self.outputs.iter_mut().filter_map(Option::take).collect()
    }

    /// Peak bytes of intermediate values (tensors produced by nodes, including outputs
    /// kept to the end) held at once during the last run; inputs and constants are not counted.
    pub fn peak_live_bytes(&self) -> usize {
        self.peak_live_bytes
    }

    /// The input shapes of the last run, once one has passed the input checks.
    pub fn resolved_input_shapes(&self) -> Option<&[Vec<usize>]> {
        self.resolved.as_ref().map(|r| r.input_shapes.as_slice())
    }

    /// The type of every value the schedule reads or produces (graph inputs included,
    /// constants not) as inferred for the input shapes of the last run.
    pub fn resolved_value_types(&self) -> Option<&HashMap<Outlet, TypeInfo>> {
        self.resolved.as_ref().map(|r| &r.by_outlet)
    }

    /// Set every input (they stay set, as with [`set_input`](Predictor::set_input)), run and
    /// return the outputs.
    pub fn run_with(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError> {
        if inputs.len() != self.inputs.len() {
            return Err(RuntimeError::InputCount { expected: self.inputs.len(), got: inputs.len() });
        }
        for (slot, t) in self.inputs.iter_mut().zip(inputs) {
            *slot = Some(t);
        }
        self.run()?;
        Ok(self.take_outputs())
    }

    /// Run the graph on the inputs set. Inputs stay set, so a second `run` recomputes.
    pub fn run(&mut self) -> Result<(), RuntimeError> {
        for o in &mut self.outputs {
            *o = None;
        }
        let shapes = check_inputs(&self.input_names, &self.input_types, &self.inputs)?;
        let resolved = match self.resolved.take() {
            Some(r) if r.input_shapes == shapes => r,
            _ => {
                tracing::debug!(?shapes, "resolving value types for new input shapes");
                resolve(&self.graph, &self.plan, &shapes)?
            }
        };
        let result = self.execute(&resolved);
        self.resolved = Some(resolved);
        let (outputs, peak) = result?;
        self.peak_live_bytes = peak;
        for (o, t) in self.outputs.iter_mut().zip(outputs) {
            *o = Some(t);
        }
        Ok(())
    }

    /// Run every step; returns the outputs and the peak live bytes.
    fn execute(&self, resolved: &Resolved) -> Result<(Vec<Tensor>, usize), RuntimeError> {
        let mut values: Vec<Option<Tensor>> = (0..self.plan.value_outlets.len()).map(|_| None).collect();
        let mut live = 0usize;
        let mut peak = 0usize;
        for step in &self.plan.steps {
            let node = self.graph.node(step.node);
            let span = tracing::debug_span!("node", name = %node.name, op = node.op.name());
            let _enter = span.enter();
            let results = {
                let mut ins = Vec::with_capacity(step.inputs.len());
                for s in &step.inputs {
                    ins.push(match s {
                        None => None,
                        Some(s) => Some(self.lookup(*s, &values).ok_or_else(|| {
                            RuntimeError::Internal(format!("node '{}': input {s:?} is not available", node.name))
                        })?),
                    });
                }
                reference::eval(&node.op, &ins, node.outputs.len()).map_err(|source| RuntimeError::Node {
                    node: node.name.clone(),
                    op: node.op.name(),
                    source,
                })?
            };
            if results.len() != node.outputs.len() {
                return Err(RuntimeError::KernelOutput {
                    node: node.name.clone(),
                    op: node.op.name(),
                    detail: format!("count is {}, expected {}", results.len(), node.outputs.len()),
                });
            }
            for ((t, &v), info) in results.into_iter().zip(&step.outputs).zip(&node.outputs) {
                let expected = resolved.slot_types.get(v).unwrap_or(&info.ty);
                if let Some(detail) = type_mismatch(&t, info.ty.dtype, expected) {
                    return Err(RuntimeError::KernelOutput {
                        node: node.name.clone(),
                        op: node.op.name(),
                        detail: format!("'{}' {detail}", info.name),
                    });
                }
                live += t.size_bytes();
                if let Some(slot) = values.get_mut(v) {
                    *slot = Some(t);
                }
            }
            peak = peak.max(live);
            for &v in &step.frees {
                if let Some(t) = values.get_mut(v).and_then(Option::take) {
                    live -= t.size_bytes();
                }
            }
        }
        let mut outputs = Vec::with_capacity(self.plan.outputs.len());
        for (i, &src) in self.plan.outputs.iter().enumerate() {
            let reused_later = self.plan.outputs.get(i + 1..).is_some_and(|rest| rest.contains(&src));
            let t = match src {
                Source::Value(v) if !reused_later => values.get_mut(v).and_then(Option::take),
                _ => self.lookup(src, &values).cloned(),
            };
            let name = self.output_names.get(i).map_or("", String::as_str);
            outputs.push(t.ok_or_else(|| RuntimeError::Internal(format!("output '{name}' was not computed")))?);
        }
        Ok((outputs, peak))
    }

    fn lookup<'a>(&'a self, s: Source, values: &'a [Option<Tensor>]) -> Option<&'a Tensor> {
        match s {
            Source::Input(i) => self.inputs.get(i).and_then(Option::as_ref),
            Source::Const(id) => self.graph.const_value(Outlet::new(id, 0)),
            Source::Value(v) => values.get(v).and_then(Option::as_ref),
        }
    }
}

/// How `t` differs from `dtype` and the known parts of `expected`, if it does.
fn type_mismatch(t: &Tensor, dtype: lithe_ir::DType, expected: &TypeInfo) -> Option<String> {
    if t.dtype() != dtype {
        return Some(format!("has dtype {}, expected {dtype}", t.dtype()));
    }
    let shape = expected.shape.as_ref()?;
    let got = t.shape();
    let bad =
        shape.rank() != got.len() || shape.dims().iter().zip(got).any(|(d, &n)| matches!(d, Dim::Known(k) if *k != n));
    bad.then(|| format!("has shape {}, expected {}", lithe_ir::Shape::known(got), shape))
}
