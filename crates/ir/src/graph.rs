//! The graph: operator nodes on petgraph, connected output slot to input slot.
//!
//! Invariants (checked by [`Graph::validate`]):
//! - Edges are the only record of connectivity. An edge carries `(from_slot, to_slot)`; each
//!   input slot of a node has at most one edge; absent optional inputs have none.
//! - Graph inputs are [`Op::Input`] nodes, constants (initializers) are [`Op::Const`] nodes;
//!   graph outputs are a list of outlets.
//! - Every node output has a [`ValueInfo`] (name and type); value names are unique.
//! - The graph is acyclic; [`Graph::topo_order`] is deterministic (ties broken by node id).

use crate::op::{self, InferInput};
use crate::{IrError, Op, Tensor, TypeInfo};
use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::fmt;

/// Identifies a node of a [`Graph`]; stable across removals of other nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(NodeIndex<u32>);

impl NodeId {
    /// The numeric id.
    pub fn index(self) -> usize {
        self.0.index()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0.index())
    }
}

/// One output of one node: the handle of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Outlet {
    /// The producing node.
    pub node: NodeId,
    /// The output slot.
    pub slot: usize,
}

impl Outlet {
    /// Output `slot` of `node`.
    pub fn new(node: NodeId, slot: usize) -> Self {
        Outlet { node, slot }
    }
}

/// A named, typed value produced by a node output.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    /// The value's name (from the source model when imported).
    pub name: String,
    /// What is known of its type.
    pub ty: TypeInfo,
}

/// A node: an operator, its input arity and its outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Node name (from the source model when imported), for errors and debugging.
    pub name: String,
    /// The operator.
    pub op: Op,
    /// Number of input slots, including absent optional inputs.
    pub num_inputs: usize,
    /// One entry per output slot.
    pub outputs: Vec<ValueInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wire {
    from_slot: usize,
    to_slot: usize,
}

/// A computation graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    g: StableDiGraph<Node, Wire>,
    inputs: Vec<NodeId>,
    outputs: Vec<Outlet>,
    /// The graph's name.
    pub name: String,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: impl Into<String>) -> Self {
        Graph { name: name.into(), ..Default::default() }
    }

    /// Make room for `nodes` more nodes and `edges` more edges (a hint, saves regrowing).
    pub fn reserve(&mut self, nodes: usize, edges: usize) {
        self.g.reserve_nodes(nodes);
        self.g.reserve_edges(edges);
    }

    /// Add a graph input named `name`.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TypeInfo) -> Outlet {
        let name = name.into();
        let id = NodeId(self.g.add_node(Node {
            name: name.clone(),
            op: Op::Input,
            num_inputs: 0,
            outputs: vec![ValueInfo { name, ty }],
        }));
        self.inputs.push(id);
        Outlet::new(id, 0)
    }

    /// Add a constant (initializer) named `name`.
    pub fn add_const(&mut self, name: impl Into<String>, t: Tensor) -> Outlet {
        let name = name.into();
        let ty = TypeInfo::new(t.dtype(), t.ir_shape());
        let id = NodeId(self.g.add_node(Node {
            name: name.clone(),
            op: Op::Const(t),
            num_inputs: 0,
            outputs: vec![ValueInfo { name, ty }],
        }));
        Outlet::new(id, 0)
    }

    /// Add a node with the given inputs (absent optional inputs as `None`) and declared outputs.
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: &[Option<Outlet>],
        outputs: Vec<ValueInfo>,
    ) -> Result<NodeId, IrError> {
        let name = name.into();
        for (slot, i) in inputs.iter().enumerate() {
            if let Some(o) = i {
                self.check_outlet(*o).map_err(|e| e.in_node(&name, op.name()))?;
                let _ = slot;
            }
        }
        let id = NodeId(self.g.add_node(Node { name, op, num_inputs: inputs.len(), outputs }));
        for (slot, i) in inputs.iter().enumerate() {
            if let Some(o) = i {
                self.g.add_edge(o.node.0, id.0, Wire { from_slot: o.slot, to_slot: slot });
            }
        }
        Ok(id)
    }

    /// Add a node whose output types come from shape inference; outputs are named
    /// `name` (one output) or `name:i`.
    pub fn add_node_inferred(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: &[Option<Outlet>],
        num_outputs: usize,
    ) -> Result<Vec<Outlet>, IrError> {
        let name = name.into();
        let types = self.infer_op(&name, &op, inputs, num_outputs)?;
        let outputs = types
            .into_iter()
            .enumerate()
            .map(|(i, ty)| ValueInfo { name: if num_outputs == 1 { name.clone() } else { format!("{name}:{i}") }, ty })
            .collect();
        let id = self.add_node(name, op, inputs, outputs)?;
        Ok((0..num_outputs).map(|s| Outlet::new(id, s)).collect())
    }

    fn infer_op(
        &self,
        name: &str,
        op: &Op,
        inputs: &[Option<Outlet>],
        num_outputs: usize,
    ) -> Result<Vec<TypeInfo>, IrError> {
        let mut ins = Vec::with_capacity(inputs.len());
        for i in inputs {
            ins.push(match i {
                Some(o) => {
                    self.check_outlet(*o).map_err(|e| e.in_node(name, op.name()))?;
                    Some(InferInput { info: &self.value(*o).ty, value: self.const_value(*o) })
                }
                None => None,
            });
        }
        op::infer(op, &ins, num_outputs).map_err(|e| e.in_node(name, op.name()))
    }

    fn check_outlet(&self, o: Outlet) -> Result<(), IrError> {
        let n =
            self.g.node_weight(o.node.0).ok_or_else(|| IrError::Dangling(format!("node {} does not exist", o.node)))?;
        if o.slot >= n.outputs.len() {
            return Err(IrError::Dangling(format!(
                "node '{}' has {} outputs, slot {} requested",
                n.name,
                n.outputs.len(),
                o.slot
            )));
        }
        Ok(())
    }

    /// Declare the graph outputs.
    pub fn set_outputs(&mut self, outputs: Vec<Outlet>) {
        self.outputs = outputs;
    }

    /// The graph outputs.
    pub fn outputs(&self) -> &[Outlet] {
        &self.outputs
    }

    /// The graph input nodes, in declaration order.
    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    /// The node with this id. Panics if it was removed (ids come from this graph).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id.0]
    }

    /// The node, mutably.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id.0]
    }

    /// The node, if it exists.
    pub fn get_node(&self, id: NodeId) -> Option<&Node> {
        self.g.node_weight(id.0)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    /// Every node id in id order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.g.node_indices().map(NodeId).collect();
        v.sort_unstable();
        v
    }

    /// The value produced at an outlet. Panics on an outlet not of this graph.
    pub fn value(&self, o: Outlet) -> &ValueInfo {
        &self.g[o.node.0].outputs[o.slot]
    }

    /// The value, mutably.
    pub fn value_mut(&mut self, o: Outlet) -> &mut ValueInfo {
        &mut self.g[o.node.0].outputs[o.slot]
    }

    /// The constant at an outlet, if its producer is a [`Op::Const`].
    pub fn const_value(&self, o: Outlet) -> Option<&Tensor> {
        match &self.g.node_weight(o.node.0)?.op {
            Op::Const(t) if o.slot == 0 => Some(t),
            _ => None,
        }
    }

    /// The constant (initializer) nodes in id order.
    pub fn initializers(&self) -> Vec<NodeId> {
        self.node_ids().into_iter().filter(|&id| matches!(self.node(id).op, Op::Const(_))).collect()
    }

    /// The node's inputs by slot; `None` for an absent optional input.
    pub fn node_inputs(&self, id: NodeId) -> Vec<Option<Outlet>> {
        let mut v = vec![None; self.g[id.0].num_inputs];
        for e in self.g.edges_directed(id.0, Direction::Incoming) {
            let w = e.weight();
            if let Some(s) = v.get_mut(w.to_slot) {
                *s = Some(Outlet::new(NodeId(e.source()), w.from_slot));
            }
        }
        v
    }

    /// Every `(node, input slot)` that reads the outlet, sorted.
    pub fn consumers(&self, o: Outlet) -> Vec<(NodeId, usize)> {
        let mut v: Vec<(NodeId, usize)> = self
            .g
            .edges_directed(o.node.0, Direction::Outgoing)
            .filter(|e| e.weight().from_slot == o.slot)
            .map(|e| (NodeId(e.target()), e.weight().to_slot))
            .collect();
        v.sort_unstable();
        v
    }

    /// Connect `input` (or nothing) to input `slot` of `node`, replacing what was there.
    pub fn set_input(&mut self, node: NodeId, slot: usize, input: Option<Outlet>) -> Result<(), IrError> {
        if let Some(o) = input {
            self.check_outlet(o)?;
        }
        let old: Vec<_> = self
            .g
            .edges_directed(node.0, Direction::Incoming)
            .filter(|e| e.weight().to_slot == slot)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        let n = &mut self.g[node.0];
        n.num_inputs = n.num_inputs.max(slot + 1);
        if let Some(o) = input {
            self.g.add_edge(o.node.0, node.0, Wire { from_slot: o.slot, to_slot: slot });
        }
        Ok(())
    }

    /// Make every reader of `old` (nodes and graph outputs) read `new` instead.
    pub fn replace_uses(&mut self, old: Outlet, new: Outlet) -> Result<(), IrError> {
        self.check_outlet(new)?;
        for (n, slot) in self.consumers(old) {
            self.set_input(n, slot, Some(new))?;
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
        Ok(())
    }

    /// Remove a node and its edges. Graph inputs are removed from the input list too.
    pub fn remove_node(&mut self, id: NodeId) {
        self.g.remove_node(id.0);
        self.inputs.retain(|&i| i != id);
    }

    /// Remove every node that no graph output depends on (graph inputs stay). Returns how many.
    pub fn remove_unused(&mut self) -> usize {
        let mut live: HashSet<NodeIndex<u32>> = HashSet::new();
        let mut stack: Vec<NodeIndex<u32>> = self.outputs.iter().map(|o| o.node.0).collect();
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                stack.extend(self.g.neighbors_directed(n, Direction::Incoming));
            }
        }
        let dead: Vec<_> =
            self.g.node_indices().filter(|n| !live.contains(n) && !self.inputs.contains(&NodeId(*n))).collect();
        for &n in &dead {
            self.g.remove_node(n);
        }
        dead.len()
    }

    /// Nodes in a topological order, deterministic: among ready nodes the lowest id goes first.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, IrError> {
        // In-degree per node index; `usize::MAX` marks an index without a node.
        let mut indeg = vec![usize::MAX; petgraph::visit::NodeIndexable::node_bound(&self.g)];
        let mut count = 0;
        for n in self.g.node_indices() {
            indeg[n.index()] = self.g.edges_directed(n, Direction::Incoming).count();
            count += 1;
        }
        let mut ready: BinaryHeap<Reverse<NodeIndex<u32>>> =
            self.g.node_indices().filter(|n| indeg[n.index()] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(count);
        while let Some(Reverse(n)) = ready.pop() {
            order.push(NodeId(n));
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let d = &mut indeg[e.target().index()];
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(e.target()));
                }
            }
        }
        if order.len() != count {
            let stuck = self
                .g
                .node_indices()
                .find(|n| indeg[n.index()] > 0)
                .map(|n| self.g[n].name.clone())
                .unwrap_or_default();
            return Err(IrError::Cycle(stuck));
        }
        Ok(order)
    }

    /// Find the outlet producing the value named `name`.
    pub fn find_value(&self, name: &str) -> Option<Outlet> {
        self.node_ids()
            .into_iter()
            .find_map(|id| self.node(id).outputs.iter().position(|v| v.name == name).map(|s| Outlet::new(id, s)))
    }

    /// Change the declared type of graph input `index` (for example to bind symbolic dims).
    pub fn set_input_type(&mut self, index: usize, ty: TypeInfo) -> Result<(), IrError> {
        let id = *self.inputs.get(index).ok_or_else(|| IrError::UnknownName(format!("graph input #{index}")))?;
        self.g[id.0].outputs[0].ty = ty;
        Ok(())
    }

    /// Re-run shape inference over the whole graph in topological order, replacing the
    /// type of every node output (inputs and constants keep theirs).
    pub fn infer_shapes(&mut self) -> Result<(), IrError> {
        for id in self.topo_order()? {
            let node = &self.g[id.0];
            if matches!(node.op, Op::Input | Op::Const(_)) {
                continue;
            }
            let inputs = self.node_inputs(id);
            let types = self.infer_op(&node.name, &node.op, &inputs, node.outputs.len())?;
            let node = &mut self.g[id.0];
            for (v, t) in node.outputs.iter_mut().zip(types) {
                v.ty = t;
            }
        }
        Ok(())
    }

    /// Check every invariant listed in the module docs and that shape inference accepts every
    /// node with dtypes matching the declared ones. Reports all problems at once.
    pub fn validate(&self) -> Result<(), IrError> {
        let mut errs = Vec::new();
        for e in self.g.edge_indices() {
            let (s, t) = self.g.edge_endpoints(e).expect("edge exists");
            let w = self.g[e];
            let (src, dst) = (&self.g[s], &self.g[t]);
            if w.from_slot >= src.outputs.len() {
                errs.push(IrError::Dangling(format!(
                    "node '{}' reads output {} of '{}', which has {} outputs",
                    dst.name,
                    w.from_slot,
                    src.name,
                    src.outputs.len()
                )));
            }
            if w.to_slot >= dst.num_inputs {
                errs.push(IrError::Dangling(format!(
                    "node '{}' has {} input slots, an edge goes to slot {}",
                    dst.name, dst.num_inputs, w.to_slot
                )));
            }
        }
        let mut seen = Vec::new();
        for id in self.node_ids() {
            seen.clear();
            seen.resize(self.node(id).num_inputs, false);
            for e in self.g.edges_directed(id.0, Direction::Incoming) {
                // Slots beyond `num_inputs` were reported above.
                let Some(taken) = seen.get_mut(e.weight().to_slot) else { continue };
                if std::mem::replace(taken, true) {
                    errs.push(IrError::Dangling(format!(
                        "node '{}' has two edges into input slot {}",
                        self.node(id).name,
                        e.weight().to_slot
                    )));
                }
            }
        }
        for o in &self.outputs {
            if let Err(e) = self.check_outlet(*o) {
                errs.push(IrError::Dangling(format!("graph output: {e}")));
            }
        }
        let mut names = HashSet::new();
        for id in self.node_ids() {
            for v in &self.node(id).outputs {
                if !names.insert(v.name.as_str()) {
                    errs.push(IrError::Attribute(format!("value name '{}' is used twice", v.name)));
                }
            }
        }
        match self.topo_order() {
            Err(e) => errs.push(e),
            Ok(order) if errs.is_empty() => {
                for id in order {
                    let node = self.node(id);
                    if matches!(node.op, Op::Input | Op::Const(_)) {
                        continue;
                    }
                    match self.infer_op(&node.name, &node.op, &self.node_inputs(id), node.outputs.len()) {
                        Err(e) => errs.push(e),
                        Ok(types) => {
                            for (v, t) in node.outputs.iter().zip(types) {
                                if v.ty.dtype != t.dtype {
                                    errs.push(IrError::Node {
                                        node: node.name.clone(),
                                        op: node.op.name(),
                                        source: Box::new(IrError::DType {
                                            what: format!("output '{}'", v.name),
                                            expected: t.dtype,
                                            found: v.ty.dtype,
                                        }),
                                    });
                                }
                            }
                        }
                    }
                }
            }
            Ok(_) => {}
        }
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(IrError::Many(errs)),
        }
    }

    /// Number of parameters of a node: elements of its floating-point constant inputs that are
    /// not scalars (a Clip bound or a Pow exponent is a hyperparameter, not a weight). For a
    /// `DequantizeLinear` of a constant, the quantized elements (its scales are not counted).
    pub fn node_params(&self, id: NodeId) -> usize {
        let inputs = self.node_inputs(id);
        if matches!(self.node(id).op, Op::DequantizeLinear { .. }) {
            return inputs.first().copied().flatten().and_then(|o| self.const_value(o)).map_or(0, Tensor::len);
        }
        inputs
            .into_iter()
            .flatten()
            .filter_map(|o| self.const_value(o))
            .filter(|t| t.dtype().is_float() && !t.shape().is_empty())
            .map(Tensor::len)
            .sum()
    }

    /// Total parameters: the sum of [`Graph::node_params`] over every node, with a constant
    /// read by several nodes counted once.
    pub fn total_params(&self) -> usize {
        let mut counted = HashSet::new();
        let mut total = 0;
        for id in self.node_ids() {
            let dq = matches!(self.node(id).op, Op::DequantizeLinear { .. });
            for (slot, o) in self.node_inputs(id).into_iter().enumerate() {
                let Some(o) = o else { continue };
                let Some(t) = self.const_value(o) else { continue };
                let counts = if dq { slot == 0 } else { t.dtype().is_float() && !t.shape().is_empty() };
                if counts && counted.insert(o) {
                    total += t.len();
                }
            }
        }
        total
    }

    /// FLOPs of one node (2 per multiply-add), `None` when shapes are not all known.
    pub fn node_flops(&self, id: NodeId) -> Option<u64> {
        let node = self.node(id);
        let ins: Vec<Option<&TypeInfo>> =
            self.node_inputs(id).into_iter().map(|o| o.map(|o| &self.value(o).ty)).collect();
        let outs: Vec<&TypeInfo> = node.outputs.iter().map(|v| &v.ty).collect();
        op::flops(&node.op, &ins, &outs)
    }
}
