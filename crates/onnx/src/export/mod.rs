//! ONNX export: an IR [`Graph`] to a standard ONNX model, the inverse of the importer.
//!
//! The model imports one opset, the default domain (`ai.onnx`) at [`EXPORT_OPSET`], the newest
//! opset whose semantics the importer follows; the IR's op conventions (parameters as inputs,
//! reduce axes as an input, Split `num_outputs`, Resize `half_pixel_symmetric`, 16-bit Q/DQ)
//! are that opset's forms, so most ops map one to one. Lithe-internal forms are expanded:
//! a Conv with a fused epilogue becomes `Conv [-> Add residual] [-> activation]`,
//! `FullyConnected` becomes `MatMul [-> Add bias] [-> activation]`, the int8 `QConv` becomes
//! `DequantizeLinear -> Conv [-> Add] [-> activation] [-> QuantizeLinear]`, and an opset<13
//! Softmax (`coerce_2d`) becomes `Flatten -> Softmax -> Reshape` (see `docs/onnx-export.md`).
//!
//! Graph inputs, outputs and every value keep their names; constants become initializers
//! (raw little-endian data). An op without an ONNX form gives [`OnnxError::UnsupportedExport`]
//! or [`OnnxError::Export`] naming the node; nothing panics on graph data.

mod attrs;
mod fused;
mod ops;
mod qconv;
mod tensor;

use crate::OnnxError;
use crate::proto::{AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto};
use lithe_ir::{Graph, Node, NodeId, Op, Outlet, Tensor, TypeInfo};
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The default-domain opset exported models import.
pub const EXPORT_OPSET: i64 = 21;
/// The ONNX IR version matching [`EXPORT_OPSET`] (opset 21 came with IR version 10).
const IR_VERSION: i64 = 10;
/// Protobuf messages must stay under 2 GiB.
const MAX_PROTO_BYTES: usize = i32::MAX as usize;

/// Options of [`export_model`].
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    /// `producer_name` of the model.
    pub producer_name: String,
    /// Also declare the type of every intermediate value (`graph.value_info`) whose shape is
    /// known. Off by default: consumers infer them.
    pub value_info: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { producer_name: "lithe".to_string(), value_info: false }
    }
}

/// Export `graph` as a serialized ONNX `ModelProto`.
pub fn export_model(graph: &Graph, opts: &ExportOptions) -> Result<Vec<u8>, OnnxError> {
    let model = export_model_proto(graph, opts)?;
    let len = model.encoded_len();
    if len > MAX_PROTO_BYTES {
        return Err(OnnxError::Model(format!(
            "the exported model would be {len} bytes, over protobuf's 2 GiB limit (the exporter writes no external data)"
        )));
    }
    Ok(model.encode_to_vec())
}

/// Export `graph` as an ONNX `ModelProto` message.
pub fn export_model_proto(graph: &Graph, opts: &ExportOptions) -> Result<ModelProto, OnnxError> {
    let mut w = Writer::new(graph)?;
    let order = w.order.clone();
    for id in order {
        let node = graph.node(id);
        match &node.op {
            Op::Input => {}
            Op::Const(t) => {
                let name = w.value_name(Outlet::new(id, 0)).to_string();
                w.initializers.push(tensor::tensor_proto(&name, t));
            }
            _ => ops::export_node(&mut w, id)?,
        }
    }
    let input = graph
        .inputs()
        .iter()
        .map(|&id| {
            let o = Outlet::new(id, 0);
            tensor::value_info(w.value_name(o), &graph.value(o).ty)
        })
        .collect();
    let output: Vec<_> =
        graph.outputs().iter().map(|&o| tensor::value_info(w.value_name(o), &graph.value(o).ty)).collect();
    let value_info = if opts.value_info { w.intermediate_value_infos() } else { Vec::new() };
    let name = if graph.name.is_empty() { "lithe".to_string() } else { graph.name.clone() };
    let g = GraphProto {
        node: std::mem::take(&mut w.nodes),
        name,
        initializer: std::mem::take(&mut w.initializers),
        input,
        output,
        value_info,
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: opts.producer_name.clone(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        graph: Some(g),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: EXPORT_OPSET }],
        ..Default::default()
    })
}

/// Export `graph` with default options to the file `path` (written to a temporary file
/// beside it, then renamed).
pub fn save_onnx(path: &Path, graph: &Graph) -> Result<(), OnnxError> {
    save_onnx_with(path, graph, &ExportOptions::default())
}

/// Export `graph` with `opts` to the file `path` (written to a temporary file beside it, then
/// renamed).
pub fn save_onnx_with(path: &Path, graph: &Graph, opts: &ExportOptions) -> Result<(), OnnxError> {
    let bytes = export_model(graph, opts)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| OnnxError::Io { path: p, source }
    };
    std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        OnnxError::Io { path: path.to_path_buf(), source: e }
    })
}

/// The model being written: value names, nodes and initializers.
pub(crate) struct Writer<'g> {
    graph: &'g Graph,
    order: Vec<NodeId>,
    names: HashMap<Outlet, String>,
    used: HashSet<String>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl<'g> Writer<'g> {
    /// Names every value: its own name, or a fresh one when it is empty or taken.
    fn new(graph: &'g Graph) -> Result<Self, OnnxError> {
        let order = graph.topo_order()?;
        let mut w = Writer {
            graph,
            order,
            names: HashMap::new(),
            used: HashSet::new(),
            nodes: Vec::new(),
            initializers: Vec::new(),
        };
        for &id in &w.order.clone() {
            for (slot, v) in graph.node(id).outputs.iter().enumerate() {
                let name = if v.name.is_empty() || w.used.contains(&v.name) {
                    let base =
                        if v.name.is_empty() { format!("{}:{slot}", graph.node(id).name) } else { v.name.clone() };
                    w.fresh(&base)
                } else {
                    w.used.insert(v.name.clone());
                    v.name.clone()
                };
                w.names.insert(Outlet::new(id, slot), name);
            }
        }
        Ok(w)
    }

    /// A value name starting with `base` that nothing uses yet.
    pub(crate) fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 1usize;
        while self.used.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// The exported name of a value.
    pub(crate) fn value_name(&self, o: Outlet) -> &str {
        self.names.get(&o).map_or("", String::as_str)
    }

    /// Add `t` as an initializer named after `base`; returns its name.
    pub(crate) fn add_initializer(&mut self, base: &str, t: &Tensor) -> String {
        let name = self.fresh(base);
        self.initializers.push(tensor::tensor_proto(&name, t));
        name
    }

    /// Add a default-domain node. Absent inputs are `None` (written as empty names; trailing
    /// ones dropped).
    pub(crate) fn push_node(
        &mut self,
        name: &str,
        op_type: &str,
        inputs: &[Option<String>],
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        let mut input: Vec<String> = inputs.iter().map(|i| i.clone().unwrap_or_default()).collect();
        while input.last().is_some_and(String::is_empty) {
            input.pop();
        }
        self.nodes.push(NodeProto {
            input,
            output: outputs,
            name: name.to_string(),
            op_type: op_type.to_string(),
            attribute,
            ..Default::default()
        });
    }

    /// `ValueInfoProto`s of the values that are neither graph inputs, constants nor outputs
    /// and whose shape is known.
    fn intermediate_value_infos(&self) -> Vec<crate::proto::ValueInfoProto> {
        let outputs: HashSet<Outlet> = self.graph.outputs().iter().copied().collect();
        let mut out = Vec::new();
        for &id in &self.order {
            let node = self.graph.node(id);
            if matches!(node.op, Op::Input | Op::Const(_)) {
                continue;
            }
            for (slot, v) in node.outputs.iter().enumerate() {
                let o = Outlet::new(id, slot);
                if !outputs.contains(&o) && v.ty.shape.is_some() {
                    out.push(tensor::value_info(self.value_name(o), &v.ty));
                }
            }
        }
        out
    }
}

/// One IR node being exported: its inputs' and outputs' names, and errors naming it.
pub(crate) struct NodeCx<'w, 'g> {
    pub(crate) w: &'w mut Writer<'g>,
    pub(crate) node: &'g Node,
    inputs: Vec<Option<String>>,
    input_outlets: Vec<Option<Outlet>>,
    pub(crate) outputs: Vec<String>,
}

impl<'w, 'g> NodeCx<'w, 'g> {
    fn new(w: &'w mut Writer<'g>, id: NodeId) -> Self {
        let graph = w.graph;
        let node = graph.node(id);
        let input_outlets = graph.node_inputs(id);
        let inputs = input_outlets.iter().map(|o| o.map(|o| w.value_name(o).to_string())).collect();
        let outputs = (0..node.outputs.len()).map(|s| w.value_name(Outlet::new(id, s)).to_string()).collect();
        NodeCx { w, node, inputs, input_outlets, outputs }
    }

    /// An [`OnnxError::Export`] about this node.
    pub(crate) fn err(&self, message: impl Into<String>) -> OnnxError {
        OnnxError::Export { node: self.node.name.clone(), op: self.node.op.name().to_string(), message: message.into() }
    }

    /// The node's input names as listed (absent ones `None`).
    pub(crate) fn inputs(&self) -> &[Option<String>] {
        &self.inputs
    }

    /// Input `i`'s name, `None` when absent.
    pub(crate) fn opt(&self, i: usize) -> Option<String> {
        self.inputs.get(i).cloned().flatten()
    }

    /// Input `i`'s name; an error naming `what` when absent.
    pub(crate) fn req(&self, i: usize, what: &str) -> Result<String, OnnxError> {
        self.opt(i).ok_or_else(|| self.err(format!("required input #{i} ({what}) is missing")))
    }

    /// Fail when the node has inputs past the first `n` slots.
    pub(crate) fn at_most(&self, n: usize) -> Result<(), OnnxError> {
        match self.inputs.iter().skip(n).position(Option::is_some) {
            Some(p) => Err(self.err(format!("has input #{} but the operator takes at most {n}", n + p))),
            None => Ok(()),
        }
    }

    /// The type of input `i`, when present.
    pub(crate) fn input_type(&self, i: usize) -> Option<&'g TypeInfo> {
        let graph = self.w.graph;
        self.input_outlets.get(i).copied().flatten().map(|o| &graph.value(o).ty)
    }

    /// The constant value of input `i`, when it is a constant.
    pub(crate) fn const_input(&self, i: usize) -> Option<&'g Tensor> {
        let graph = self.w.graph;
        self.input_outlets.get(i).copied().flatten().and_then(|o| graph.const_value(o))
    }

    /// The type of output `slot`.
    pub(crate) fn output_type(&self, slot: usize) -> Option<&'g TypeInfo> {
        self.node.outputs.get(slot).map(|v| &v.ty)
    }

    /// The node's only output's name (an error unless it has exactly one).
    pub(crate) fn single_output(&self) -> Result<String, OnnxError> {
        match self.outputs.as_slice() {
            [one] => Ok(one.clone()),
            o => Err(self.err(format!("has {} outputs, the operator produces one", o.len()))),
        }
    }

    /// A fresh value name derived from the node's output and `label`.
    pub(crate) fn fresh_value(&mut self, out: &str, label: &str) -> String {
        self.w.fresh(&format!("{out}_{label}"))
    }

    /// A node named after this one (`name/label`, or the node's own name for an empty label).
    pub(crate) fn push(
        &mut self,
        label: &str,
        op_type: &str,
        inputs: &[Option<String>],
        outputs: Vec<String>,
        attrs: Vec<AttributeProto>,
    ) {
        let name = if label.is_empty() { self.node.name.clone() } else { format!("{}/{label}", self.node.name) };
        self.w.push_node(&name, op_type, inputs, outputs, attrs);
    }

    /// An initializer named after this node and `label`; returns its name.
    pub(crate) fn initializer(&mut self, label: &str, t: &Tensor) -> String {
        let base = format!("{}_{label}", self.node.name);
        self.w.add_initializer(&base, t)
    }
}
