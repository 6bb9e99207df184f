//! Builds small ONNX models in Rust by filling the prost messages directly.
#![allow(dead_code)]

use lithe_ir::{Graph, NodeId, Op, Tensor};
use lithe_onnx::proto::attribute_proto::AttributeType;
use lithe_onnx::proto::tensor_proto::DataType;
use lithe_onnx::proto::tensor_shape_proto::{Dimension, dimension};
use lithe_onnx::proto::type_proto;
use lithe_onnx::proto::*;
use lithe_onnx::{ImportOptions, OnnxError, load_model_bytes};
use prost::Message;

/// One dimension of a graph input.
#[derive(Clone, Copy, Debug)]
pub enum D {
    /// A fixed size.
    V(i64),
    /// A named size.
    P(&'static str),
    /// No information.
    U,
}

pub const F32: i32 = DataType::Float as i32;
pub const I64: i32 = DataType::Int64 as i32;

pub fn value_info(name: &str, elem: i32, dims: Option<&[D]>) -> ValueInfoProto {
    let shape = dims.map(|d| TensorShapeProto {
        dim: d
            .iter()
            .map(|d| Dimension {
                value: match d {
                    D::V(v) => Some(dimension::Value::DimValue(*v)),
                    D::P(p) => Some(dimension::Value::DimParam(p.to_string())),
                    D::U => None,
                },
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: elem, shape })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn tensor_f32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: F32,
        dims: dims.to_vec(),
        raw_data: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub fn tensor_i64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_type: I64,
        dims: dims.to_vec(),
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

pub fn a_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: Some(v), ..Default::default() }
}

pub fn a_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

pub fn a_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Float as i32, f: Some(v), ..Default::default() }
}

pub fn a_floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Floats as i32, floats: v.to_vec(), ..Default::default() }
}

pub fn a_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

pub fn a_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Tensor as i32, t: Some(t), ..Default::default() }
}

/// A model under construction.
pub struct Model {
    pub opset: i64,
    pub graph: GraphProto,
    pub extra_opsets: Vec<(String, i64)>,
}

impl Model {
    pub fn new(opset: i64) -> Self {
        Model { opset, graph: GraphProto { name: "test".into(), ..Default::default() }, extra_opsets: vec![] }
    }

    pub fn input(mut self, name: &str, dims: &[D]) -> Self {
        self.graph.input.push(value_info(name, F32, Some(dims)));
        self
    }

    pub fn input_typed(mut self, name: &str, elem: i32, dims: &[D]) -> Self {
        self.graph.input.push(value_info(name, elem, Some(dims)));
        self
    }

    pub fn init(mut self, t: TensorProto) -> Self {
        self.graph.initializer.push(t);
        self
    }

    pub fn node(mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> Self {
        let n = self.graph.node.len();
        self.graph.node.push(NodeProto {
            name: format!("n{n}_{op}"),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
        self
    }

    pub fn node_in(mut self, domain: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> Self {
        let n = self.graph.node.len();
        self.graph.node.push(NodeProto {
            name: format!("n{n}_{op}"),
            op_type: op.into(),
            domain: domain.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        });
        self
    }

    pub fn output(mut self, name: &str) -> Self {
        self.graph.output.push(value_info(name, F32, None));
        self
    }

    pub fn proto(&self) -> ModelProto {
        let mut opset_import = vec![OperatorSetIdProto { domain: String::new(), version: self.opset }];
        for (d, v) in &self.extra_opsets {
            opset_import.push(OperatorSetIdProto { domain: d.clone(), version: *v });
        }
        ModelProto {
            ir_version: 8,
            producer_name: "lithe-tests".into(),
            opset_import,
            graph: Some(self.graph.clone()),
            ..Default::default()
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.proto().encode_to_vec()
    }

    pub fn load(&self) -> Result<Graph, OnnxError> {
        load_model_bytes(&self.bytes(), None, &ImportOptions::default())
    }

    pub fn load_with(&self, opts: &ImportOptions) -> Result<Graph, OnnxError> {
        load_model_bytes(&self.bytes(), None, opts)
    }

    pub fn load_unfolded(&self) -> Result<Graph, OnnxError> {
        load_model_bytes(&self.bytes(), None, &ImportOptions { fold_constants: false, ..Default::default() })
    }
}

/// Every node whose op has the given name.
pub fn nodes_of(g: &Graph, op: &str) -> Vec<NodeId> {
    g.node_ids().into_iter().filter(|&id| g.node(id).op.name() == op).collect()
}

/// The single node whose op has the given name.
pub fn only(g: &Graph, op: &str) -> NodeId {
    let v = nodes_of(g, op);
    assert_eq!(v.len(), 1, "expected one {op} node, found {}: {:?}", v.len(), ops(g));
    v[0]
}

/// The op names of the graph in id order.
pub fn ops(g: &Graph) -> Vec<&'static str> {
    g.node_ids().into_iter().map(|id| g.node(id).op.name()).collect()
}

/// The constant at input `slot` of `id` (`None` if absent or not constant).
pub fn const_in(g: &Graph, id: NodeId, slot: usize) -> Option<Tensor> {
    g.node_inputs(id).get(slot).copied().flatten().and_then(|o| g.const_value(o).cloned())
}

/// True if input `slot` of `id` is absent.
pub fn absent(g: &Graph, id: NodeId, slot: usize) -> bool {
    g.node_inputs(id).get(slot).copied().flatten().is_none()
}

/// The op of a node.
pub fn op(g: &Graph, id: NodeId) -> &Op {
    &g.node(id).op
}
