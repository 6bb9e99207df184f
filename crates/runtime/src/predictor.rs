//! The predictor: runs a graph on input tensors with the reference kernels.

use crate::bind::check_inputs;
use crate::exec::{Elems, ElemsMut, Input, Prepared, kernel_set, prepare_steps};
use crate::memory::MemoryPlan;
use crate::memory::arena::{Arena, f32s, f32s_mut};
use crate::plan::{Plan, Source, Step};
use crate::resolve::{Resolved, resolve};
use crate::{MemoryReport, PredictorOptions, RuntimeError, Target};
use lithe_ir::{DType, Dim, Graph, NodeId, Op, Outlet, QuantParams, Tensor, TypeInfo};
use lithe_kernels::reference;
use lithe_nbformat::ModelMeta;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs one graph: set the inputs, [`run`](Predictor::run), read the outputs.
///
/// Built once per graph: validation and the schedule are computed when it is built. When the
/// input shapes change, the value types are re-inferred for them and the memory of every
/// intermediate value is planned in one arena ([`memory_report`](Predictor::memory_report));
/// both are cached while the shapes stay the same. The arena is allocated once and grows only
/// when a new plan needs more. Runs execute inside the predictor's own thread pool
/// ([`PredictorOptions::threads`]), created by the first run like the arena, so building a
/// predictor only decodes and plans.
///
/// [`Clone`] gives a predictor sharing this one's loaded model (graph, weights, packed
/// weights, schedule) with its own inputs, arena and thread pool, so several predictors can
/// run the same model concurrently on different threads for the memory of one.
#[derive(Debug)]
pub struct Predictor {
    model: Arc<Model>,
    inputs: Vec<Option<Tensor>>,
    outputs: Vec<Option<Tensor>>,
    resolved: Option<Resolved>,
    memory: Option<MemoryPlan>,
    arena: Arena,
    options: PredictorOptions,
    pool: Option<rayon::ThreadPool>,
    /// Scratch memory of the fast kernels (im2col columns), grown as needed.
    scratch: Vec<f32>,
    /// Time of each step in the last run, when profiling is on.
    step_times: Option<Vec<Duration>>,
}

/// What predictors of one model share: read-only after loading.
#[derive(Debug)]
struct Model {
    graph: Graph,
    plan: Plan,
    input_names: Vec<String>,
    input_types: Vec<TypeInfo>,
    output_names: Vec<String>,
    meta: ModelMeta,
    /// Per step: the fast kernel with its packed weights, if one applies.
    prepared: Vec<Option<Prepared>>,
}

impl Clone for Predictor {
    /// A predictor sharing this one's model, with the same options and fresh run state
    /// (no inputs set, its own arena, scratch and thread pool).
    fn clone(&self) -> Self {
        Predictor::from_model(Arc::clone(&self.model), self.options.clone())
    }
}

/// What one node cost in the last profiled run ([`Predictor::set_profiling`]).
#[derive(Clone, Debug)]
pub struct NodeProfile {
    /// The node.
    pub node: NodeId,
    /// Its name.
    pub name: String,
    /// Its operator.
    pub op: &'static str,
    /// The kernel it ran with (see [`Predictor::node_kernels`]).
    pub kernel: String,
    /// Wall time of the node (zero when its value was computed while planning).
    pub time: Duration,
    /// Its FLOPs (2 per multiply-add), when the graph's shapes are known.
    pub flops: Option<u64>,
}

impl Predictor {
    /// Validate `graph` and plan its execution, with the default options.
    pub fn new(graph: Graph) -> Result<Predictor, RuntimeError> {
        Predictor::with_options(graph, PredictorOptions::default())
    }

    /// Validate `graph` and plan its execution with `options`.
    pub fn with_options(graph: Graph, options: PredictorOptions) -> Result<Predictor, RuntimeError> {
        graph.validate().map_err(RuntimeError::Graph)?;
        Predictor::with_meta(graph, ModelMeta::default(), options)
    }

    /// Plan the execution of `graph` (described by `meta`, already validated) with `options`.
    pub(crate) fn with_meta(
        mut graph: Graph,
        meta: ModelMeta,
        options: PredictorOptions,
    ) -> Result<Predictor, RuntimeError> {
        if let Some(name) = &options.target {
            check_target(&graph, &meta, name)?;
        }
        crate::dequantize::dequantize_constant_weights(&mut graph)?;
        let plan = Plan::new(&graph)?;
        let prepared = prepare_steps(&graph, &plan, kernel_set());
        let (input_names, input_types) = graph
            .inputs()
            .iter()
            .map(|&id| {
                let v = graph.value(Outlet::new(id, 0));
                (v.name.clone(), v.ty.clone())
            })
            .unzip();
        let output_names: Vec<String> = graph.outputs().iter().map(|&o| graph.value(o).name.clone()).collect();
        let model = Model { graph, plan, input_names, input_types, output_names, meta, prepared };
        Ok(Predictor::from_model(Arc::new(model), options))
    }

    fn from_model(model: Arc<Model>, options: PredictorOptions) -> Predictor {
        let n_in = model.input_names.len();
        let n_out = model.output_names.len();
        Predictor {
            model,
            inputs: (0..n_in).map(|_| None).collect(),
            outputs: (0..n_out).map(|_| None).collect(),
            resolved: None,
            memory: None,
            arena: Arena::default(),
            options,
            pool: None,
            scratch: Vec::new(),
            step_times: None,
        }
    }

    /// What the `.nb` file says about the model (passes applied, targets checked); empty for
    /// a predictor built from a graph.
    pub fn meta(&self) -> &ModelMeta {
        &self.model.meta
    }

    /// The options the predictor was built with.
    pub fn options(&self) -> &PredictorOptions {
        &self.options
    }

    /// Worker threads of the predictor's thread pool (`threads` of the options, or the
    /// number of CPU cores when that is 0).
    pub fn threads(&self) -> usize {
        match (&self.pool, self.options.threads) {
            (Some(pool), _) => pool.current_num_threads(),
            (None, 0) => std::thread::available_parallelism().map_or(1, usize::from),
            (None, n) => n,
        }
    }

    /// The graph being run.
    pub fn graph(&self) -> &Graph {
        &self.model.graph
    }

    /// The compute nodes in execution order (inputs, constants and nodes no output depends on
    /// are not listed).
    pub fn schedule(&self) -> Vec<NodeId> {
        self.model.plan.steps.iter().map(|s| s.node).collect()
    }

    /// The kernel each scheduled node runs with, in execution order: a fast kernel's name
    /// (family and microkernel), or `reference`.
    pub fn node_kernels(&self) -> Vec<(NodeId, String)> {
        self.model
            .plan
            .steps
            .iter()
            .zip(&self.model.prepared)
            .map(|(s, p)| (s.node, p.as_ref().map_or_else(|| "reference".to_string(), Prepared::kernel_name)))
            .collect()
    }

    /// Run the following runs on `threads` worker threads (0: one per CPU core). The thread
    /// pool is rebuilt by the next run; the arena and packed weights are kept.
    pub fn set_threads(&mut self, threads: usize) {
        if threads != self.options.threads {
            self.options.threads = threads;
            self.pool = None;
        }
    }

    /// Time every node of the following runs (a clock read per node; off by default).
    pub fn set_profiling(&mut self, on: bool) {
        self.step_times = on.then(Vec::new);
    }

    /// Per node, in execution order, what it cost in the last run, when profiling is on and
    /// a run succeeded.
    pub fn profile(&self) -> Option<Vec<NodeProfile>> {
        let times = self.step_times.as_ref().filter(|t| t.len() == self.model.plan.steps.len())?;
        let kernels = self.node_kernels();
        Some(
            self.model
                .plan
                .steps
                .iter()
                .zip(times)
                .zip(kernels)
                .map(|((step, &time), (_, kernel))| {
                    let node = self.model.graph.node(step.node);
                    NodeProfile {
                        node: step.node,
                        name: node.name.clone(),
                        op: node.op.name(),
                        kernel,
                        time,
                        flops: self.model.graph.node_flops(step.node),
                    }
                })
                .collect(),
        )
    }

    /// Names of the graph inputs, in order.
    pub fn input_names(&self) -> &[String] {
        &self.model.input_names
    }

    /// Declared types of the graph inputs, in order.
    pub fn input_types(&self) -> &[TypeInfo] {
        &self.model.input_types
    }

    /// Index of the input named `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.model.input_names.iter().position(|n| n == name)
    }

    /// Names of the graph outputs, in order.
    pub fn output_names(&self) -> &[String] {
        &self.model.output_names
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
        let index = self.input_index(name).ok_or_else(|| RuntimeError::UnknownInput {
            name: name.to_string(),
            known: self.model.input_names.join(", "),
        })?;
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

    /// Peak bytes of intermediate values (tensors produced by nodes, including outputs kept
    /// to the end) live at one step for the input shapes of the last run, a value computed in
    /// place of its input counted once; inputs, constants and values computed from the shapes
    /// alone are not counted. 0 before the first run.
    pub fn peak_live_bytes(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.report.peak_live_bytes)
    }

    /// The memory plan for the input shapes of the last run (once one has passed the input
    /// checks): the arena size and where every intermediate value lives.
    pub fn memory_report(&self) -> Option<&MemoryReport> {
        self.memory.as_ref().map(|m| &m.report)
    }

    /// Bytes currently allocated for the arena (at least the last plan's arena size).
    pub fn arena_capacity(&self) -> usize {
        self.arena.len()
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
        if self.pool.is_none() {
            let threads = self.options.threads;
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("lithe-predictor-{i}"))
                .build()
                .map_err(|e| RuntimeError::ThreadPool { threads, message: e.to_string() })?;
            self.pool = Some(pool);
        }
        let shapes = check_inputs(&self.model.input_names, &self.model.input_types, &self.inputs)?;
        let (resolved, memory) = match (self.resolved.take(), self.memory.take()) {
            (Some(r), Some(m)) if r.input_shapes == shapes => (r, m),
            _ => {
                tracing::debug!(?shapes, "resolving value types and planning memory for new input shapes");
                let r = resolve(&self.model.graph, &self.model.plan, &shapes)?;
                let m = MemoryPlan::new(&self.model.graph, &self.model.plan, &r)?;
                (r, m)
            }
        };
        self.arena.reserve_len(memory.report.arena_bytes);
        let run = Run {
            graph: &self.model.graph,
            plan: &self.model.plan,
            resolved: &resolved,
            memory: &memory,
            inputs: &self.inputs,
            prepared: &self.model.prepared,
        };
        let (arena, scratch) = (&mut self.arena, &mut self.scratch);
        let mut times = self.step_times.as_mut();
        if let Some(t) = times.as_deref_mut() {
            t.clear();
        }
        let result = match &self.pool {
            Some(pool) => pool.install(|| run.execute(arena, scratch, times)),
            None => Err(RuntimeError::Internal("the thread pool was not created".to_string())),
        };
        self.resolved = Some(resolved);
        self.memory = Some(memory);
        for (o, t) in self.outputs.iter_mut().zip(result?) {
            *o = Some(t);
        }
        Ok(())
    }
}

/// Refuse a graph using operators `target` has no kernel for; warn when the model was checked
/// for other targets only.
fn check_target(graph: &Graph, meta: &ModelMeta, name: &str) -> Result<(), RuntimeError> {
    let target: Target = name.parse().map_err(|e| RuntimeError::UnknownTarget(Arc::new(e)))?;
    let missing: BTreeSet<&'static str> = graph
        .node_ids()
        .into_iter()
        .map(|id| &graph.node(id).op)
        .filter(|op| !matches!(op, Op::Input | Op::Const(_)))
        .map(Op::name)
        .filter(|op| !crate::supports(target, op))
        .collect();
    if !missing.is_empty() {
        return Err(RuntimeError::UnsupportedOps { target, ops: missing.into_iter().collect::<Vec<_>>().join(", ") });
    }
    if !meta.valid_targets.is_empty()
        && !meta.valid_targets.iter().any(|t| t.parse::<Target>().is_ok_and(|t| t == target))
    {
        tracing::warn!(
            %target,
            valid_targets = %meta.valid_targets.join(", "),
            "the model was not optimized for this target"
        );
    }
    Ok(())
}

/// One run: everything [`Run::execute`] reads.
struct Run<'a> {
    graph: &'a Graph,
    plan: &'a Plan,
    resolved: &'a Resolved,
    memory: &'a MemoryPlan,
    inputs: &'a [Option<Tensor>],
    prepared: &'a [Option<Prepared>],
}

/// Where a fast kernel reads one operand from.
enum Operand<'a> {
    /// Arena slot (offset, bytes) of a value with this shape.
    Arena((usize, usize), Vec<usize>),
    /// An f32 tensor outside the arena (graph input, constant, dynamic value).
    Tensor(&'a [f32], &'a [usize]),
}

/// Where an int8 kernel reads one operand from.
enum ByteOperand<'a> {
    /// Arena slot (offset, bytes) of a value with this dtype and shape.
    Arena((usize, usize), DType, Vec<usize>),
    /// The bytes of a tensor outside the arena, with its dtype and shape.
    Tensor(&'a [u8], DType, &'a [usize]),
}

impl Run<'_> {
    /// Run every step that was not computed while resolving, keeping planned values in
    /// `arena`; returns the graph outputs.
    ///
    /// Prepared fast kernels read and write the arena in place. The reference kernels return
    /// owned tensors: each result is copied into its arena slot and each arena input is
    /// rebuilt from its slot for the kernel.
    /// With `times`, the wall time of every step is pushed to it.
    fn execute(
        &self,
        arena: &mut Arena,
        scratch: &mut Vec<f32>,
        mut times: Option<&mut Vec<Duration>>,
    ) -> Result<Vec<Tensor>, RuntimeError> {
        let n_values = self.plan.value_outlets.len();
        // Values outside the arena (shapes known only once computed) and quantization
        // parameters of arena values (the arena holds elements only).
        let mut dynamic: Vec<Option<Tensor>> = (0..n_values).map(|_| None).collect();
        let mut quant: Vec<Option<QuantParams>> = vec![None; n_values];
        for (si, step) in self.plan.steps.iter().enumerate() {
            let start = times.is_some().then(Instant::now);
            if !self.resolved.step_is_resolved(self.plan, si) {
                let fast = match self.prepared.get(si).and_then(Option::as_ref) {
                    Some(p) => self.run_prepared(p, step, arena, &dynamic, scratch)?,
                    None => false,
                };
                if !fast {
                    self.run_step(step, arena, &mut dynamic, &mut quant)?;
                }
            }
            if let (Some(t), Some(start)) = (times.as_deref_mut(), start) {
                t.push(start.elapsed());
            }
            for &v in &step.frees {
                if let Some(slot) = dynamic.get_mut(v) {
                    *slot = None;
                }
            }
        }
        let mut outputs = Vec::with_capacity(self.plan.outputs.len());
        for (i, &src) in self.plan.outputs.iter().enumerate() {
            let reused_later = self.plan.outputs.get(i + 1..).is_some_and(|rest| rest.contains(&src));
            let t = match src {
                Source::Value(v) if self.memory.arena_slot(v).is_some() => Some(self.load(v, arena, &quant)?),
                Source::Value(v) if !reused_later && dynamic.get(v).is_some_and(Option::is_some) => {
                    dynamic.get_mut(v).and_then(Option::take)
                }
                _ => self.lookup(src, None, &dynamic).cloned(),
            };
            let name = self.graph.outputs().get(i).map_or("", |&o| self.graph.value(o).name.as_str());
            outputs.push(t.ok_or_else(|| RuntimeError::Internal(format!("output '{name}' was not computed")))?);
        }
        Ok(outputs)
    }

    /// Run `step` and store its outputs.
    fn run_step(
        &self,
        step: &Step,
        arena: &mut Arena,
        dynamic: &mut [Option<Tensor>],
        quant: &mut [Option<QuantParams>],
    ) -> Result<(), RuntimeError> {
        let node = self.graph.node(step.node);
        let span = tracing::debug_span!("node", name = %node.name, op = node.op.name());
        let _enter = span.enter();
        let mut loaded: Vec<Option<Tensor>> = Vec::with_capacity(step.inputs.len());
        for s in &step.inputs {
            loaded.push(match s {
                Some(Source::Value(v)) if self.memory.arena_slot(*v).is_some() => Some(self.load(*v, arena, quant)?),
                _ => None,
            });
        }
        let results = {
            let mut ins = Vec::with_capacity(step.inputs.len());
            for (s, l) in step.inputs.iter().zip(&loaded) {
                ins.push(match s {
                    None => None,
                    Some(s) => Some(self.lookup(*s, l.as_ref(), dynamic).ok_or_else(|| {
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
        drop(loaded);
        if results.len() != node.outputs.len() {
            return Err(RuntimeError::KernelOutput {
                node: node.name.clone(),
                op: node.op.name(),
                detail: format!("count is {}, expected {}", results.len(), node.outputs.len()),
            });
        }
        for ((t, &v), info) in results.into_iter().zip(&step.outputs).zip(&node.outputs) {
            let expected = self.resolved.slot_types.get(v).unwrap_or(&info.ty);
            if let Some(detail) = type_mismatch(&t, info.ty.dtype, expected) {
                return Err(RuntimeError::KernelOutput {
                    node: node.name.clone(),
                    op: node.op.name(),
                    detail: format!("'{}' {detail}", info.name),
                });
            }
            if let Some((offset, bytes)) = self.memory.arena_slot(v) {
                arena.write(offset, bytes, &t)?;
                if let Some(q) = quant.get_mut(v) {
                    *q = t.quant;
                }
            } else if let Some(slot) = dynamic.get_mut(v) {
                *slot = Some(t);
            }
        }
        Ok(())
    }

    /// Run `step` with its prepared kernel in place on the arena. `Ok(false)` when this run
    /// can't (the output is not an f32 arena value, an operand is not f32 or not contiguous,
    /// or the kernel has no path for these shapes): the reference kernel runs the step.
    fn run_prepared(
        &self,
        p: &Prepared,
        step: &Step,
        arena: &mut Arena,
        dynamic: &[Option<Tensor>],
        scratch: &mut Vec<f32>,
    ) -> Result<bool, RuntimeError> {
        let view_of_bytes = matches!(p, Prepared::View)
            && step
                .outputs
                .first()
                .and_then(|&o| self.resolved.slot_types.get(o))
                .is_some_and(|t| t.dtype == DType::U8);
        if p.is_int8() || view_of_bytes {
            return self.run_int8(p, step, arena, dynamic, scratch);
        }
        let node = self.graph.node(step.node);
        let Some((out_slot, out_ty)) = self.arena_output(step) else { return Ok(false) };
        let Some(out_shape) = out_ty.shape.as_ref().and_then(lithe_ir::Shape::as_known) else { return Ok(false) };
        if out_ty.dtype != DType::F32 {
            return Ok(false);
        }
        let mut operands = Vec::new();
        for slot in p.operand_slots(&node.op, step.inputs.len()) {
            match self.operand(step, slot, dynamic) {
                Some(o) => operands.push(o),
                None => return Ok(false),
            }
        }
        // Operands planned in place of the output are read from it.
        let reads: Vec<(usize, usize)> = operands
            .iter()
            .filter_map(|o| match o {
                Operand::Arena(slot, _) if *slot != out_slot => Some(*slot),
                _ => None,
            })
            .collect();
        let (arena_reads, y) = arena.f32_slots(&reads, out_slot)?;
        let mut arena_reads = arena_reads.into_iter();
        let mut inputs: Vec<Input<'_>> = Vec::with_capacity(operands.len());
        for o in &operands {
            inputs.push(match o {
                Operand::Arena(slot, shape) if *slot == out_slot => Input::InOutput(shape),
                Operand::Arena(_, shape) => Input::Slice(arena_reads.next().unwrap_or_default(), shape),
                Operand::Tensor(data, shape) => Input::Slice(data, shape),
            });
        }
        let result = p.run(&node.op, &inputs, y, &out_shape, scratch, rayon::current_num_threads());
        result.map_err(|source| RuntimeError::Node { node: node.name.clone(), op: node.op.name(), source })
    }

    /// The arena slot and resolved type of `step`'s first output, when it lives in the arena.
    fn arena_output(&self, step: &Step) -> Option<((usize, usize), &TypeInfo)> {
        let &out = step.outputs.first()?;
        Some((self.memory.arena_slot(out)?, self.resolved.slot_types.get(out)?))
    }

    /// Run an int8 prepared kernel (u8 or f32 operands and output) in place on the arena.
    /// `Ok(false)` when this run can't (see [`run_prepared`](Self::run_prepared)).
    fn run_int8(
        &self,
        p: &Prepared,
        step: &Step,
        arena: &mut Arena,
        dynamic: &[Option<Tensor>],
        scratch: &mut Vec<f32>,
    ) -> Result<bool, RuntimeError> {
        let node = self.graph.node(step.node);
        let Some((out_slot, out_ty)) = self.arena_output(step) else { return Ok(false) };
        let mut operands = Vec::new();
        for slot in p.operand_slots(&node.op, step.inputs.len()) {
            match self.byte_operand(step, slot, dynamic) {
                // A view planned in place of its input has nothing to do.
                Some(ByteOperand::Arena(s, ..)) if s == out_slot && matches!(p, Prepared::View) => return Ok(true),
                Some(o) if !matches!(o, ByteOperand::Arena(s, ..) if s == out_slot) => operands.push(o),
                _ => return Ok(false),
            }
        }
        let reads: Vec<(usize, usize)> = operands
            .iter()
            .filter_map(|o| match o {
                ByteOperand::Arena(slot, ..) => Some(*slot),
                ByteOperand::Tensor(..) => None,
            })
            .collect();
        let (arena_reads, y) = arena.byte_slots(&reads, out_slot)?;
        let mut arena_reads = arena_reads.into_iter();
        let mut inputs: Vec<(Elems<'_>, &[usize])> = Vec::with_capacity(operands.len());
        for o in &operands {
            let (bytes, dtype, shape) = match o {
                ByteOperand::Arena(_, dtype, shape) => {
                    (arena_reads.next().unwrap_or_default(), *dtype, shape.as_slice())
                }
                ByteOperand::Tensor(bytes, dtype, shape) => (*bytes, *dtype, *shape),
            };
            inputs.push(match dtype {
                DType::U8 => (Elems::U8(bytes), shape),
                DType::F32 => (Elems::F32(f32s(bytes)?), shape),
                _ => return Ok(false),
            });
        }
        let y = match out_ty.dtype {
            DType::U8 => ElemsMut::U8(y),
            DType::F32 => ElemsMut::F32(f32s_mut(y)?),
            _ => return Ok(false),
        };
        let threads = rayon::current_num_threads();
        let fail = |source| RuntimeError::Node { node: node.name.clone(), op: node.op.name(), source };
        Ok(match (p, inputs.as_slice(), y) {
            (Prepared::QConv(q), [(Elems::U8(x), x_shape)], y) => {
                q.run(x, x_shape, None, y, scratch, threads).map_err(fail)?
            }
            (Prepared::QConv(q), [(Elems::U8(x), x_shape), (Elems::F32(r), _)], y) => {
                q.run(x, x_shape, Some(r), y, scratch, threads).map_err(fail)?
            }
            (Prepared::QAdd(params), [(Elems::U8(a), a_shape), (Elems::U8(b), b_shape)], ElemsMut::U8(y))
                if a_shape == b_shape =>
            {
                lithe_kernels::int8::qadd_u8(a, b, params, y, threads).map_err(fail)?;
                true
            }
            (Prepared::QGlobalAveragePool(params), [(Elems::U8(x), x_shape)], ElemsMut::U8(y))
                if x_shape.len() == 4 =>
            {
                let planes = x_shape[0] * x_shape[1];
                lithe_kernels::int8::qglobal_average_pool_u8(x, planes, params, y).map_err(fail)?;
                true
            }
            (Prepared::Quantize(q), [(Elems::F32(x), _)], ElemsMut::U8(y)) => {
                q.quantize(x, y, threads).map_err(fail)?;
                true
            }
            (Prepared::Dequantize(q), [(Elems::U8(x), _)], ElemsMut::F32(y)) => {
                q.dequantize(x, y, threads).map_err(fail)?;
                true
            }
            (Prepared::MaxPoolU8(a), [(Elems::U8(x), x_shape)], ElemsMut::U8(y)) => {
                match crate::exec::pool_params(a, x_shape, true) {
                    Some(([n, c, h, w], params)) => {
                        lithe_kernels::fast::u8_maxpool2d(x, n, c, h, w, &params, y).map_err(fail)?;
                        true
                    }
                    None => false,
                }
            }
            (Prepared::View, [(Elems::U8(x), _)], ElemsMut::U8(y)) if x.len() == y.len() => {
                y.copy_from_slice(x);
                true
            }
            _ => false,
        })
    }

    /// Operand `slot` of `step` for an int8 kernel: an arena value (slot, dtype, shape) or the
    /// bytes of a tensor outside the arena.
    fn byte_operand<'a>(&'a self, step: &Step, slot: usize, dynamic: &'a [Option<Tensor>]) -> Option<ByteOperand<'a>> {
        let src = step.inputs.get(slot).copied().flatten()?;
        if let Source::Value(v) = src
            && let Some(arena_slot) = self.memory.arena_slot(v)
        {
            let ty = self.resolved.slot_types.get(v)?;
            return Some(ByteOperand::Arena(arena_slot, ty.dtype, ty.shape.as_ref()?.as_known()?));
        }
        let t = self.lookup(src, None, dynamic)?;
        let bytes: &[u8] = match t.dtype() {
            DType::U8 => t.view_in_place::<u8>()?.to_slice()?,
            DType::F32 => {
                let f = t.view_in_place::<f32>()?.to_slice()?;
                // SAFETY: reading the initialized elements of an f32 slice as bytes (u8 has no
                // invalid bit patterns and alignment 1); the result borrows `t`.
                unsafe { std::slice::from_raw_parts(f.as_ptr().cast::<u8>(), std::mem::size_of_val(f)) }
            }
            _ => return None,
        };
        Some(ByteOperand::Tensor(bytes, t.dtype(), t.shape()))
    }

    /// Operand `slot` of `step` for a fast kernel: an f32 arena value or a contiguous f32
    /// tensor; `None` otherwise.
    fn operand<'a>(&'a self, step: &Step, slot: usize, dynamic: &'a [Option<Tensor>]) -> Option<Operand<'a>> {
        let src = step.inputs.get(slot).copied().flatten()?;
        if let Source::Value(v) = src
            && let Some(arena_slot) = self.memory.arena_slot(v)
        {
            let ty = self.resolved.slot_types.get(v)?;
            let shape = ty.shape.as_ref()?.as_known()?;
            return (ty.dtype == DType::F32).then_some(Operand::Arena(arena_slot, shape));
        }
        let t = self.lookup(src, None, dynamic)?;
        let data = t.view_in_place::<f32>()?.to_slice()?;
        Some(Operand::Tensor(data, t.shape()))
    }

    /// The tensor of arena value `v`.
    fn load(&self, v: usize, arena: &Arena, quant: &[Option<QuantParams>]) -> Result<Tensor, RuntimeError> {
        let (offset, _) = self
            .memory
            .arena_slot(v)
            .ok_or_else(|| RuntimeError::Internal(format!("value {v} is not in the arena")))?;
        let ty = self.resolved.slot_types.get(v);
        let shape = ty.and_then(|t| t.shape.as_ref()?.as_known());
        let (Some(ty), Some(shape)) = (ty, shape) else {
            return Err(RuntimeError::Internal(format!("arena value {v} has no known shape")));
        };
        let mut t = arena.read(offset, ty.dtype, &shape)?;
        t.quant = quant.get(v).cloned().flatten();
        Ok(t)
    }

    /// A tensor that is not in the arena (or `loaded`, the one rebuilt from it).
    fn lookup<'a>(
        &'a self,
        s: Source,
        loaded: Option<&'a Tensor>,
        dynamic: &'a [Option<Tensor>],
    ) -> Option<&'a Tensor> {
        match s {
            Source::Input(i) => self.inputs.get(i).and_then(Option::as_ref),
            Source::Const(id) => self.graph.const_value(Outlet::new(id, 0)),
            Source::Value(v) => loaded
                .or_else(|| self.resolved.slot_values.get(v).and_then(Option::as_ref))
                .or_else(|| dynamic.get(v).and_then(Option::as_ref)),
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
