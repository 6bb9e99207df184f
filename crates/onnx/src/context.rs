//! Import state shared by the converters: the graph being built, the value-name bindings, and
//! the per-node context a converter works through.

use crate::OnnxError;
use crate::attrs::Attrs;
use crate::proto::{NodeProto, TensorProto};
use crate::tensor_data::tensor_from_proto;
use lithe_ir::op::{self, InferInput};
use lithe_ir::{DType, Graph, Op, Outlet, Tensor, TypeInfo, ValueInfo};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// The graph under construction and the ONNX value names bound so far.
pub(crate) struct Builder {
    /// The graph.
    pub(crate) graph: Graph,
    values: HashMap<String, Outlet>,
    used_names: HashSet<String>,
    readers: HashMap<String, usize>,
    /// Directory external tensor data is relative to.
    pub(crate) base_dir: Option<PathBuf>,
}

impl Builder {
    /// A builder. `model_names` holds every value name of the model (so generated names avoid
    /// them); `readers` counts the nodes and graph outputs reading each value.
    pub(crate) fn new(
        graph_name: &str,
        base_dir: Option<PathBuf>,
        model_names: HashSet<String>,
        readers: HashMap<String, usize>,
    ) -> Self {
        Builder { graph: Graph::new(graph_name), values: HashMap::new(), used_names: model_names, readers, base_dir }
    }

    /// Bind an ONNX value name to an outlet.
    pub(crate) fn bind(&mut self, name: &str, o: Outlet) {
        self.used_names.insert(name.to_string());
        self.values.insert(name.to_string(), o);
    }

    /// The outlet bound to an ONNX value name.
    pub(crate) fn lookup(&self, name: &str) -> Option<Outlet> {
        self.values.get(name).copied()
    }

    /// A value name starting with `base` that no model value or generated value uses.
    pub(crate) fn fresh_name(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 1usize;
        while self.used_names.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.used_names.insert(name.clone());
        name
    }

    /// How many nodes and graph outputs read the value.
    pub(crate) fn reader_count(&self, name: &str) -> usize {
        self.readers.get(name).copied().unwrap_or(0)
    }

    /// Types to declare for a new node's outputs: the IR shape rule's answer when it accepts the
    /// inputs as known so far, else a dtype guess with unknown rank. `Graph::infer_shapes`
    /// later recomputes every type.
    fn declared_types(&self, op: &Op, inputs: &[Option<Outlet>], n: usize) -> Vec<TypeInfo> {
        let ins: Vec<Option<InferInput<'_>>> = inputs
            .iter()
            .map(|i| i.map(|o| InferInput { info: &self.graph.value(o).ty, value: self.graph.const_value(o) }))
            .collect();
        if let Ok(t) = op::infer(op, &ins, n)
            && t.len() == n
        {
            return t;
        }
        let dtype_of = |i: usize| inputs.get(i).copied().flatten().map(|o| self.graph.value(o).ty.dtype);
        let first = dtype_of(0).unwrap_or(DType::F32);
        (0..n)
            .map(|slot| {
                let dtype = match op {
                    Op::Shape { .. } | Op::ArgMax(_) => DType::I64,
                    Op::Equal => DType::Bool,
                    Op::Cast { to } | Op::QuantizeLinear { to, .. } => *to,
                    Op::DequantizeLinear { .. } => DType::F32,
                    Op::ConstantOfShape { value } => value.dtype(),
                    Op::Where => dtype_of(1).unwrap_or(first),
                    Op::Dropout if slot == 1 => DType::Bool,
                    _ => first,
                };
                TypeInfo::unranked(dtype)
            })
            .collect()
    }

    /// Add a node with named outputs; types as in [`Builder::declared_types`].
    fn add_node(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[Option<Outlet>],
        names: Vec<String>,
    ) -> Result<Vec<Outlet>, OnnxError> {
        let mut inputs = inputs.to_vec();
        while inputs.last() == Some(&None) {
            inputs.pop();
        }
        let types = self.declared_types(&op, &inputs, names.len());
        let outputs = names.into_iter().zip(types).map(|(name, ty)| ValueInfo { name, ty }).collect::<Vec<_>>();
        let n = outputs.len();
        let id = self.graph.add_node(name, op, &inputs, outputs)?;
        Ok((0..n).map(|s| Outlet::new(id, s)).collect())
    }
}

/// What a converter sees of one ONNX node, and how it adds IR nodes.
pub(crate) struct NodeCtx<'a> {
    /// The import state.
    pub(crate) b: &'a mut Builder,
    /// The ONNX node.
    pub(crate) node: &'a NodeProto,
    /// The node's name (`{op_type}_{index}` when the model leaves it empty).
    pub(crate) name: String,
    /// The opset version the model imports for the node's domain.
    pub(crate) opset: i64,
    attrs: Attrs<'a>,
    inputs: Vec<Option<Outlet>>,
}

impl<'a> NodeCtx<'a> {
    /// A context for `node` with its inputs already resolved.
    pub(crate) fn new(
        b: &'a mut Builder,
        node: &'a NodeProto,
        name: String,
        opset: i64,
        inputs: Vec<Option<Outlet>>,
    ) -> Result<Self, OnnxError> {
        let attrs = Attrs::new(&node.attribute).map_err(|m| OnnxError::Node {
            node: name.clone(),
            op_type: node.op_type.clone(),
            message: m,
        })?;
        Ok(NodeCtx { b, node, name, opset, attrs, inputs })
    }

    /// An error about this node.
    pub(crate) fn err(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::Node { node: self.name.clone(), op_type: self.node.op_type.clone(), message: message.into() }
    }

    // ---- attributes -------------------------------------------------------------------------

    /// An INT attribute.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, OnnxError> {
        self.attrs.int(name).map_err(|m| self.err(m))
    }

    /// An INT attribute with a default.
    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// An INT attribute used as a flag (0 or 1).
    pub(crate) fn flag(&self, name: &str, default: bool) -> Result<bool, OnnxError> {
        match self.int(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(self.err(format!("attribute '{name}' must be 0 or 1, found {v}"))),
        }
    }

    /// A FLOAT attribute.
    pub(crate) fn float(&self, name: &str) -> Result<Option<f32>, OnnxError> {
        self.attrs.float(name).map_err(|m| self.err(m))
    }

    /// A FLOAT attribute with a default.
    pub(crate) fn float_or(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    /// A STRING attribute.
    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        self.attrs.string(name).map_err(|m| self.err(m))
    }

    /// A STRING attribute with a default.
    pub(crate) fn string_or(&self, name: &str, default: &str) -> Result<String, OnnxError> {
        Ok(self.string(name)?.unwrap_or_else(|| default.to_string()))
    }

    /// An INTS attribute.
    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, OnnxError> {
        self.attrs.ints(name).map(|o| o.map(<[i64]>::to_vec)).map_err(|m| self.err(m))
    }

    /// An INTS attribute whose entries must be non-negative.
    pub(crate) fn usizes(&self, name: &str) -> Result<Option<Vec<usize>>, OnnxError> {
        match self.ints(name)? {
            None => Ok(None),
            Some(v) => v
                .iter()
                .map(|&x| {
                    usize::try_from(x)
                        .map_err(|_| self.err(format!("attribute '{name}' must not be negative, found {v:?}")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    /// A FLOATS attribute.
    pub(crate) fn floats(&self, name: &str) -> Result<Option<Vec<f32>>, OnnxError> {
        self.attrs.floats(name).map(|o| o.map(<[f32]>::to_vec)).map_err(|m| self.err(m))
    }

    /// A TENSOR attribute.
    pub(crate) fn tensor_attr(&self, name: &str) -> Result<Option<&'a TensorProto>, OnnxError> {
        self.attrs.tensor(name).map_err(|m| self.err(m))
    }

    /// A TENSOR attribute converted to an IR tensor.
    pub(crate) fn tensor_value(&self, name: &str) -> Result<Option<Tensor>, OnnxError> {
        match self.tensor_attr(name)? {
            None => Ok(None),
            Some(t) => tensor_from_proto(t, self.b.base_dir.as_deref())
                .map(Some)
                .map_err(|e| self.err(format!("attribute '{name}': {e}"))),
        }
    }

    // ---- inputs -----------------------------------------------------------------------------

    /// Input `i`, or `None` when absent.
    pub(crate) fn opt_input(&self, i: usize) -> Option<Outlet> {
        self.inputs.get(i).copied().flatten()
    }

    /// Required input `i`.
    pub(crate) fn input(&self, i: usize) -> Result<Outlet, OnnxError> {
        self.opt_input(i).ok_or_else(|| self.err(format!("required input #{i} is missing")))
    }

    /// The constant value of input `i`, if it is a constant.
    pub(crate) fn const_input(&self, i: usize) -> Option<&Tensor> {
        self.opt_input(i).and_then(|o| self.b.graph.const_value(o))
    }

    /// The type known so far of input `i`.
    pub(crate) fn input_type(&self, i: usize) -> Option<&TypeInfo> {
        self.opt_input(i).map(|o| &self.b.graph.value(o).ty)
    }

    /// The rank of input `i`, when known so far.
    pub(crate) fn input_rank(&self, i: usize) -> Option<usize> {
        self.input_type(i).and_then(|t| t.shape.as_ref()).map(|s| s.rank())
    }

    /// The inputs `from..` as listed (absent ones `None`).
    pub(crate) fn inputs_from(&self, from: usize) -> Vec<Option<Outlet>> {
        self.inputs.iter().skip(from).copied().collect()
    }

    // ---- outputs ----------------------------------------------------------------------------

    /// Number of output slots up to the last one with a name.
    pub(crate) fn output_count(&self) -> usize {
        self.node.output.iter().rposition(|n| !n.is_empty()).map_or(0, |p| p + 1)
    }

    /// True when output `i` has a name and something reads it.
    pub(crate) fn output_used(&self, i: usize) -> bool {
        self.node.output.get(i).is_some_and(|n| !n.is_empty() && self.b.reader_count(n) > 0)
    }

    /// True when output `i` has a name.
    pub(crate) fn has_output(&self, i: usize) -> bool {
        self.node.output.get(i).is_some_and(|n| !n.is_empty())
    }

    // ---- adding nodes -----------------------------------------------------------------------

    /// A constant named after this node and `label`.
    pub(crate) fn constant(&mut self, label: &str, t: Tensor) -> Outlet {
        let name = self.b.fresh_name(&format!("{}_{label}", self.name));
        self.b.graph.add_const(name, t)
    }

    /// A 1-D i64 constant.
    pub(crate) fn const_i64(&mut self, label: &str, v: &[i64]) -> Result<Outlet, OnnxError> {
        let t = Tensor::from_vec(&[v.len()], v.to_vec())?;
        Ok(self.constant(label, t))
    }

    /// An intermediate single-output node, its output named after this node and `label`.
    pub(crate) fn intermediate(&mut self, label: &str, op: Op, inputs: &[Option<Outlet>]) -> Result<Outlet, OnnxError> {
        let out = self.b.fresh_name(&format!("{}_{label}", self.name));
        let node_name = format!("{}/{label}", self.name);
        let outs = self.b.add_node(&node_name, op, inputs, vec![out])?;
        outs.first().copied().ok_or_else(|| self.err("internal: node without output"))
    }

    /// Add the node producing this ONNX node's outputs (`num_outputs` of them).
    pub(crate) fn emit_n(&mut self, op: Op, inputs: &[Option<Outlet>], num_outputs: usize) -> Result<(), OnnxError> {
        let mut names = Vec::with_capacity(num_outputs);
        for i in 0..num_outputs {
            let onnx = self.node.output.get(i).filter(|n| !n.is_empty()).cloned();
            names.push(match onnx {
                Some(n) => n,
                None => self.b.fresh_name(&format!("{}:{i}", self.name)),
            });
        }
        let outs = self.b.add_node(&self.name, op, inputs, names.clone())?;
        for (name, o) in names.iter().zip(outs) {
            if self.node.output.contains(name) {
                self.b.bind(name, o);
            }
        }
        Ok(())
    }

    /// Add the node producing this ONNX node's outputs (as many as the node names).
    pub(crate) fn emit(&mut self, op: Op, inputs: &[Option<Outlet>]) -> Result<(), OnnxError> {
        let n = self.output_count().max(1);
        self.emit_n(op, inputs, n)
    }

    /// Bind this node's first output to a constant.
    pub(crate) fn emit_const(&mut self, t: Tensor) -> Result<(), OnnxError> {
        let name = match self.node.output.first().filter(|n| !n.is_empty()) {
            Some(n) => n.clone(),
            None => return Err(self.err("has no output")),
        };
        let o = self.b.graph.add_const(name.clone(), t);
        self.b.bind(&name, o);
        Ok(())
    }
}
