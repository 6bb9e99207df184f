//! A builder API to write graphs in Rust (tests, hand-written models, NAS search spaces).
//!
//! Every node's output types come from shape inference as it is added, so a mistake (a
//! wrong channel count, a dtype mismatch) is reported at the call that makes it.
//!
//! ```
//! use lithe_ir::builder::GraphBuilder;
//! use lithe_ir::op::ConvAttrs;
//! use lithe_ir::{DType, Dim, Tensor};
//!
//! let mut b = GraphBuilder::new("tiny");
//! let x = b.input("x", DType::F32, &[Dim::Sym("batch".into()), 3.into(), 8.into(), 8.into()]);
//! let w = Tensor::zeros(DType::F32, &[4, 3, 3, 3]);
//! let conv = ConvAttrs { pads: vec![1, 1, 1, 1], group: 1, ..Default::default() };
//! let y = b.conv2d(x, w, None, conv).unwrap();
//! let y = b.relu(y).unwrap();
//! b.output(y);
//! let g = b.finish().unwrap();
//! assert_eq!(g.value(g.outputs()[0]).ty.to_string(), "f32[batch,4,8,8]");
//! ```

use crate::op::{ConvAttrs, GemmAttrs, PoolAttrs};
use crate::{DType, Dim, Graph, IrError, Op, Outlet, Shape, Tensor, TypeInfo};
use std::collections::HashSet;

/// Builds a [`Graph`] node by node, inferring output types as it goes.
#[derive(Debug)]
pub struct GraphBuilder {
    graph: Graph,
    names: HashSet<String>,
    counter: usize,
    outputs: Vec<Outlet>,
}

impl GraphBuilder {
    /// An empty builder for a graph named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        GraphBuilder { graph: Graph::new(name), names: HashSet::new(), counter: 0, outputs: Vec::new() }
    }

    /// The graph built so far.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The type of a value built so far.
    pub fn ty(&self, o: Outlet) -> &TypeInfo {
        &self.graph.value(o).ty
    }

    /// A fresh node name `{prefix}_{n}` not used yet.
    fn fresh(&mut self, prefix: &str) -> String {
        loop {
            let name = format!("{prefix}_{}", self.counter);
            self.counter += 1;
            if self.names.insert(name.clone()) {
                return name;
            }
        }
    }

    /// Add a graph input with the given dtype and dims (sizes or [`Dim`]s).
    pub fn input<D: Clone + Into<Dim>>(&mut self, name: impl Into<String>, dtype: DType, dims: &[D]) -> Outlet {
        let name = name.into();
        self.names.insert(name.clone());
        let shape = Shape(dims.iter().cloned().map(Into::into).collect());
        self.graph.add_input(name, TypeInfo { dtype, shape: Some(shape) })
    }

    /// Add a constant (initializer).
    pub fn constant(&mut self, name: impl Into<String>, t: Tensor) -> Outlet {
        let name = name.into();
        self.names.insert(name.clone());
        self.graph.add_const(name, t)
    }

    /// Add a one-output node with required inputs; it is named `{Op}_{n}`.
    pub fn node(&mut self, op: Op, inputs: &[Outlet]) -> Result<Outlet, IrError> {
        let ins: Vec<Option<Outlet>> = inputs.iter().copied().map(Some).collect();
        let outs = self.node_with(op, &ins, 1)?;
        outs.into_iter().next().ok_or_else(|| IrError::Attribute("node produced no output".into()))
    }

    /// Add a node with optional inputs (`None` for absent ones) and `num_outputs` outputs.
    pub fn node_with(&mut self, op: Op, inputs: &[Option<Outlet>], num_outputs: usize) -> Result<Vec<Outlet>, IrError> {
        let name = self.fresh(op.name());
        self.add_named(name, op, inputs, num_outputs)
    }

    fn add_named(
        &mut self,
        name: String,
        op: Op,
        inputs: &[Option<Outlet>],
        num_outputs: usize,
    ) -> Result<Vec<Outlet>, IrError> {
        if num_outputs > 1 {
            for i in 0..num_outputs {
                self.names.insert(format!("{name}:{i}"));
            }
        }
        self.graph.add_node_inferred(name, op, inputs, num_outputs)
    }

    /// Add a one-output node whose parameters are new constants named `{node}.{what}`,
    /// placed at the input slots marked `None` in `inputs` (in order). On error the
    /// constants are removed again, leaving the graph as it was.
    fn node_with_params(
        &mut self,
        op: Op,
        inputs: &[Option<Outlet>],
        params: Vec<(&str, Option<Tensor>)>,
    ) -> Result<Outlet, IrError> {
        let name = self.fresh(op.name());
        let mut added = Vec::new();
        let mut consts = Vec::new();
        for (what, t) in params {
            let o = t.map(|t| self.constant(format!("{name}.{what}"), t));
            added.extend(o);
            consts.push(o);
        }
        let mut consts = consts.into_iter();
        let mut ins: Vec<Option<Outlet>> =
            inputs.iter().map(|i| if i.is_some() { *i } else { consts.next().flatten() }).collect();
        while ins.last() == Some(&None) {
            ins.pop();
        }
        match self.add_named(name, op, &ins, 1).and_then(first) {
            Ok(o) => Ok(o),
            Err(e) => {
                for o in added {
                    self.graph.remove_node(o.node);
                }
                Err(e)
            }
        }
    }

    /// Convolution with weight `w` (`OIHW`) and optional bias, both stored as constants.
    pub fn conv2d(&mut self, x: Outlet, w: Tensor, b: Option<Tensor>, attrs: ConvAttrs) -> Result<Outlet, IrError> {
        self.node_with_params(Op::Conv(attrs), &[Some(x), None, None], vec![("weight", Some(w)), ("bias", b)])
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, x: Outlet) -> Result<Outlet, IrError> {
        self.node(Op::Relu, &[x])
    }

    /// Elementwise `a + b` with broadcasting.
    pub fn add(&mut self, a: Outlet, b: Outlet) -> Result<Outlet, IrError> {
        self.node(Op::Add, &[a, b])
    }

    /// Numpy-style matrix product.
    pub fn matmul(&mut self, a: Outlet, b: Outlet) -> Result<Outlet, IrError> {
        self.node(Op::MatMul, &[a, b])
    }

    /// `alpha * A' * B' + beta * C`.
    pub fn gemm(&mut self, a: Outlet, b: Outlet, c: Option<Outlet>, attrs: GemmAttrs) -> Result<Outlet, IrError> {
        first(self.node_with(Op::Gemm(attrs), &[Some(a), Some(b), c], 1)?)
    }

    /// A fully connected layer: `x * w^T + b` with `w` of shape `[out, in]` (a Gemm with
    /// `trans_b`), weights stored as constants.
    pub fn linear(&mut self, x: Outlet, w: Tensor, b: Option<Tensor>) -> Result<Outlet, IrError> {
        let attrs = GemmAttrs { trans_b: true, ..GemmAttrs::default() };
        self.node_with_params(Op::Gemm(attrs), &[Some(x), None, None], vec![("weight", Some(w)), ("bias", b)])
    }

    /// Max pooling.
    pub fn max_pool(&mut self, x: Outlet, attrs: PoolAttrs) -> Result<Outlet, IrError> {
        self.node(Op::MaxPool(attrs), &[x])
    }

    /// Mean over the spatial axes, kept as size 1.
    pub fn global_avg_pool(&mut self, x: Outlet) -> Result<Outlet, IrError> {
        self.node(Op::GlobalAveragePool, &[x])
    }

    /// Reshape to `shape` (0 copies the input dim, -1 infers), stored as an i64 constant.
    pub fn reshape(&mut self, x: Outlet, shape: &[i64]) -> Result<Outlet, IrError> {
        let t = Tensor::from_vec(&[shape.len()], shape.to_vec())?;
        self.node_with_params(Op::Reshape { allowzero: false }, &[Some(x), None], vec![("shape", Some(t))])
    }

    /// Inference-mode batch normalization with per-channel parameters stored as constants.
    pub fn batch_norm(
        &mut self,
        x: Outlet,
        scale: Tensor,
        bias: Tensor,
        mean: Tensor,
        var: Tensor,
        epsilon: f32,
    ) -> Result<Outlet, IrError> {
        let params = vec![("scale", Some(scale)), ("bias", Some(bias)), ("mean", Some(mean)), ("var", Some(var))];
        self.node_with_params(Op::BatchNormalization { epsilon }, &[Some(x), None, None, None, None], params)
    }

    /// Declare a graph output (in call order).
    pub fn output(&mut self, o: Outlet) {
        self.outputs.push(o);
    }

    /// Set the outputs, validate and return the graph. Fails when there are no outputs or
    /// validation finds problems (all of them are reported).
    pub fn finish(mut self) -> Result<Graph, IrError> {
        if self.outputs.is_empty() {
            return Err(IrError::Attribute(format!("graph '{}' has no outputs", self.graph.name)));
        }
        self.graph.set_outputs(self.outputs);
        self.graph.validate()?;
        Ok(self.graph)
    }
}

fn first(outs: Vec<Outlet>) -> Result<Outlet, IrError> {
    outs.into_iter().next().ok_or_else(|| IrError::Attribute("node produced no output".into()))
}
