//! The tape: a forward pass that keeps its values, and the reverse pass over it.

use crate::TrainError;
use crate::error::invalid;
use crate::rules::{self, BackwardArgs, BnStats, ForwardArgs};
use lithe_ir::{Graph, NodeId, Op, Outlet, Tensor};
use ndarray::ArrayD;
use std::collections::{HashMap, HashSet};

/// How ops with a training behaviour run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Batch normalization normalizes with the batch's statistics (and reports them, see
    /// [`Forward::bn_stats`]).
    #[default]
    Train,
    /// Inference semantics: batch normalization uses its running statistics.
    Eval,
}

/// A graph prepared for differentiation: its topological order, computed once.
#[derive(Debug)]
pub struct Tape<'g> {
    graph: &'g Graph,
    order: Vec<NodeId>,
    seed: u64,
}

/// The values of one forward pass. Constants are read from the graph, every other value is
/// kept until the forward pass is dropped.
#[derive(Debug)]
pub struct Forward<'g> {
    graph: &'g Graph,
    values: HashMap<Outlet, Tensor>,
    mode: Mode,
    /// Per batch-norm node run in [`Mode::Train`]: the batch mean and unbiased variance per
    /// channel, for the caller to fold into the running statistics.
    pub bn_stats: Vec<(NodeId, BnStats)>,
    /// Per node: what its forward kept for the backward rule (dropout keep masks).
    saved: HashMap<NodeId, Tensor>,
    /// Constants whose value a [`ForwardHook`] replaced for this pass.
    overrides: HashMap<Outlet, Tensor>,
}

/// Sees each node's inputs before it runs and may replace the values of its constant inputs
/// for this pass (fake quantization computes its scales from the batch this way). The
/// replaced values are what every reader of the constant, and the backward pass, see.
pub trait ForwardHook {
    /// Called before `node` runs with its input values (per slot); returns the constants
    /// (any in the graph, by outlet) to replace from now on in this pass, and their values.
    fn before_node(
        &mut self,
        node: NodeId,
        inputs: &[Option<&Tensor>],
        mode: Mode,
    ) -> Result<Vec<(Outlet, Tensor)>, TrainError>;
}

/// The hook that changes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHook;

impl ForwardHook for NoHook {
    fn before_node(&mut self, _: NodeId, _: &[Option<&Tensor>], _: Mode) -> Result<Vec<(Outlet, Tensor)>, TrainError> {
        Ok(Vec::new())
    }
}

impl<'g> Forward<'g> {
    /// The value at `o` (a constant of the graph or a computed value).
    pub fn value(&self, o: Outlet) -> Option<&Tensor> {
        match &self.graph.node(o.node).op {
            Op::Const(t) => Some(self.overrides.get(&o).unwrap_or(t)),
            _ => self.values.get(&o),
        }
    }

    /// The value at `o` as f32, or an error naming it.
    pub fn f32(&self, o: Outlet) -> Result<&ArrayD<f32>, TrainError> {
        let name = &self.graph.value(o).name;
        self.value(o)
            .ok_or_else(|| invalid(name.clone(), "no value"))?
            .view::<f32>()
            .ok_or_else(|| invalid(name.clone(), "not an f32 value"))
    }

    /// The graph outputs' values, in order.
    pub fn outputs(&self) -> Result<Vec<&Tensor>, TrainError> {
        self.graph
            .outputs()
            .iter()
            .map(|&o| self.value(o).ok_or_else(|| invalid(self.graph.value(o).name.clone(), "output not computed")))
            .collect()
    }

    /// The mode the pass ran in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What `node`'s forward kept for its backward rule: the boolean keep mask of a
    /// train-mode Dropout.
    pub fn saved(&self, node: NodeId) -> Option<&Tensor> {
        self.saved.get(&node)
    }
}

/// Gradients of one backward pass, one per value on a path from a target to a seed.
#[derive(Debug, Default)]
pub struct Gradients {
    grads: HashMap<Outlet, ArrayD<f32>>,
}

impl Gradients {
    /// The gradient of `o`, when `o` was a target (or lies between a target and a seed)
    /// and the seeds depend on it.
    pub fn get(&self, o: Outlet) -> Option<&ArrayD<f32>> {
        self.grads.get(&o)
    }

    /// Take the gradient of `o` out.
    pub fn take(&mut self, o: Outlet) -> Option<ArrayD<f32>> {
        self.grads.remove(&o)
    }
}

impl<'g> Tape<'g> {
    /// Prepare `graph` (validated, ordered).
    pub fn new(graph: &'g Graph) -> Result<Self, TrainError> {
        Ok(Tape { graph, order: graph.topo_order()?, seed: 0 })
    }

    /// Prepare `graph` with a topological order computed before (`Graph::topo_order`).
    pub fn with_order(graph: &'g Graph, order: Vec<NodeId>) -> Self {
        Tape { graph, order, seed: 0 }
    }

    /// The same tape drawing its random masks (train-mode dropout) from `seed` (0 by default):
    /// forward passes repeat exactly for a seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The graph.
    pub fn graph(&self) -> &'g Graph {
        self.graph
    }

    /// Run the graph on `inputs` (one per graph input, in order), keeping every value.
    pub fn forward(&self, inputs: Vec<Tensor>, mode: Mode) -> Result<Forward<'g>, TrainError> {
        self.forward_with(inputs, mode, &mut NoHook)
    }

    /// [`Tape::forward`] with `hook` called before every node.
    pub fn forward_with(
        &self,
        inputs: Vec<Tensor>,
        mode: Mode,
        hook: &mut dyn ForwardHook,
    ) -> Result<Forward<'g>, TrainError> {
        let g = self.graph;
        if inputs.len() != g.inputs().len() {
            return Err(invalid(
                format!("graph {}", g.name),
                format!("{} inputs given, the graph has {}", inputs.len(), g.inputs().len()),
            ));
        }
        let mut fwd = Forward {
            graph: g,
            values: HashMap::new(),
            mode,
            bn_stats: Vec::new(),
            saved: HashMap::new(),
            overrides: HashMap::new(),
        };
        for (&id, t) in g.inputs().iter().zip(inputs) {
            fwd.values.insert(Outlet::new(id, 0), t);
        }
        for &id in &self.order {
            let node = g.node(id);
            if matches!(node.op, Op::Input | Op::Const(_)) {
                continue;
            }
            let ins = g.node_inputs(id);
            let overrides = {
                let vals = input_values(&fwd, &ins, &node.name)?;
                hook.before_node(id, &vals, mode)?
            };
            for (o, t) in overrides {
                if !matches!(g.get_node(o.node).map(|n| &n.op), Some(Op::Const(_))) {
                    return Err(invalid(&node.name, "a forward hook replaced a value that is not a constant"));
                }
                fwd.overrides.insert(o, t);
            }
            let vals = input_values(&fwd, &ins, &node.name)?;
            let args = ForwardArgs {
                node: &node.name,
                op: &node.op,
                inputs: &vals,
                num_outputs: node.outputs.len(),
                mode,
                seed: rules::node_seed(self.seed, id.index()),
            };
            let out = rules::forward(&args)?;
            if let Some(s) = out.bn_stats {
                fwd.bn_stats.push((id, s));
            }
            if let Some(t) = out.saved {
                fwd.saved.insert(id, t);
            }
            for (slot, t) in out.outputs.into_iter().enumerate() {
                fwd.values.insert(Outlet::new(id, slot), t);
            }
        }
        Ok(fwd)
    }

    /// Reverse pass: starting from `seeds` (a value and the gradient of the loss with respect
    /// to it), accumulate the gradient of every value that lies on a path from one of
    /// `targets` to a seed. Gradients of values read by several nodes are summed.
    pub fn backward(
        &self,
        fwd: &Forward<'g>,
        seeds: Vec<(Outlet, ArrayD<f32>)>,
        targets: &[Outlet],
    ) -> Result<Gradients, TrainError> {
        let g = self.graph;
        // Which values need a gradient: the targets and everything computed from them
        // through differentiable slots.
        let mut needs: HashSet<Outlet> = targets.iter().copied().collect();
        for &id in &self.order {
            let node = g.node(id);
            let reached =
                g.node_inputs(id).iter().enumerate().any(|(slot, o)| {
                    o.is_some_and(|o| needs.contains(&o)) && rules::differentiable_slot(&node.op, slot)
                });
            if reached {
                for slot in 0..node.outputs.len() {
                    needs.insert(Outlet::new(id, slot));
                }
            }
        }
        let mut grads = Gradients::default();
        for (o, s) in seeds {
            let v = fwd.f32(o)?;
            if v.shape() != s.shape() {
                return Err(invalid(
                    g.value(o).name.clone(),
                    format!("seed gradient {:?} for a value of shape {:?}", s.shape(), v.shape()),
                ));
            }
            accumulate(&mut grads.grads, o, s);
        }
        for &id in self.order.iter().rev() {
            let node = g.node(id);
            if matches!(node.op, Op::Input | Op::Const(_)) {
                continue;
            }
            let outs: Vec<Outlet> = (0..node.outputs.len()).map(|s| Outlet::new(id, s)).collect();
            if !outs.iter().any(|o| grads.grads.contains_key(o)) {
                continue;
            }
            let ins = g.node_inputs(id);
            let need: Vec<bool> = ins
                .iter()
                .enumerate()
                .map(|(slot, o)| o.is_some_and(|o| needs.contains(&o)) && rules::differentiable_slot(&node.op, slot))
                .collect();
            if !need.iter().any(|&n| n) {
                continue;
            }
            let in_vals: Vec<Option<&Tensor>> = ins.iter().map(|o| o.and_then(|o| fwd.value(o))).collect();
            let out_vals: Vec<&Tensor> = outs
                .iter()
                .map(|&o| fwd.value(o).ok_or_else(|| invalid(&node.name, "output not computed")))
                .collect::<Result<_, _>>()?;
            let gy: Vec<Option<ArrayD<f32>>> = outs.iter().map(|o| grads.grads.remove(o)).collect();
            let args = BackwardArgs {
                node: &node.name,
                op: &node.op,
                inputs: &in_vals,
                outputs: &out_vals,
                grads: &gy,
                need: &need,
                mode: fwd.mode,
                saved: fwd.saved.get(&id),
            };
            let gx = rules::backward(&args)?;
            // Outputs that are targets keep their gradient.
            for (o, gyo) in outs.iter().zip(gy) {
                if let Some(v) = gyo
                    && targets.contains(o)
                {
                    grads.grads.insert(*o, v);
                }
            }
            for ((slot, gxi), o) in gx.into_iter().enumerate().zip(&ins) {
                if let (Some(gxi), Some(o), true) = (gxi, o, need.get(slot).copied().unwrap_or(false)) {
                    let shape = in_vals[slot].map(|t| t.shape().to_vec()).unwrap_or_default();
                    if gxi.shape() != shape.as_slice() {
                        return Err(invalid(
                            &node.name,
                            format!(
                                "backward rule gave a {:?} gradient for input {slot} of shape {shape:?}",
                                gxi.shape()
                            ),
                        ));
                    }
                    accumulate(&mut grads.grads, *o, gxi);
                }
            }
        }
        grads.grads.retain(|o, _| targets.contains(o));
        Ok(grads)
    }
}

/// The values of a node's inputs, per slot.
fn input_values<'a>(
    fwd: &'a Forward<'_>,
    ins: &[Option<Outlet>],
    node: &str,
) -> Result<Vec<Option<&'a Tensor>>, TrainError> {
    ins.iter()
        .map(|o| match o {
            Some(o) => fwd.value(*o).map(Some).ok_or_else(|| invalid(node, "input not computed")),
            None => Ok(None),
        })
        .collect()
}

fn accumulate(grads: &mut HashMap<Outlet, ArrayD<f32>>, o: Outlet, g: ArrayD<f32>) {
    match grads.get_mut(&o) {
        Some(acc) => *acc += &g,
        None => {
            grads.insert(o, g);
        }
    }
}
