//! A minimal reader of the ONNX protobuf wire format: just what deciding whether a node test is
//! "claimed" needs (the operator types a model uses and the types of its inputs and outputs),
//! independent of the importer under test.

use anyhow::{Result, bail};
use std::collections::BTreeSet;

/// What the harness needs to know about one test model.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ModelSummary {
    /// Operator types of every node (nested graphs included), as `OpType` for the default
    /// domain and `domain::OpType` otherwise.
    pub op_types: BTreeSet<String>,
    /// Operator types in node order (top-level graph), same spelling as `op_types`.
    pub node_ops: Vec<String>,
    /// Types of the graph inputs that are not initializers, in order.
    pub inputs: Vec<ValueType>,
    /// Types of the graph outputs, in order.
    pub outputs: Vec<ValueType>,
}

/// The declared type of a graph input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A tensor with this `TensorProto.DataType` code.
    Tensor(i32),
    /// A sequence, map, optional or sparse tensor, or no type at all.
    NonTensor,
}

impl ValueType {
    /// The ONNX name of the type (`float`, `int64`, `sequence/map/optional`...).
    pub fn name(self) -> String {
        match self {
            ValueType::Tensor(code) => onnx_dtype_name(code),
            ValueType::NonTensor => "non-tensor".to_string(),
        }
    }
}

/// ONNX `TensorProto.DataType` codes that Lithe's IR has: float, uint8, int8, int16, int32,
/// int64, bool, float16.
pub const LITHE_DTYPES: [i32; 8] = [1, 2, 3, 5, 6, 7, 9, 10];

/// The ONNX name of a `TensorProto.DataType` code.
pub fn onnx_dtype_name(code: i32) -> String {
    let s = match code {
        0 => "undefined",
        1 => "float",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "double",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        23 => "float4e2m1",
        24 => "float8e8m0",
        25 => "uint2",
        26 => "int2",
        _ => return format!("dtype{code}"),
    };
    s.to_string()
}

/// Summarize a serialized `ModelProto`.
pub fn scan_model(bytes: &[u8]) -> Result<ModelSummary> {
    let mut summary = ModelSummary::default();
    let mut r = Reader::new(bytes);
    let mut found_graph = false;
    while let Some((field, v)) = r.next_field()? {
        if let (7, Value::Bytes(g)) = (field, v) {
            found_graph = true;
            scan_graph(g, &mut summary, true)?;
        }
    }
    if !found_graph {
        bail!("model has no graph");
    }
    Ok(summary)
}

fn scan_graph(bytes: &[u8], s: &mut ModelSummary, top: bool) -> Result<()> {
    let mut inputs = Vec::new();
    let mut initializers = BTreeSet::new();
    let mut r = Reader::new(bytes);
    while let Some((field, v)) = r.next_field()? {
        match (field, v) {
            (1, Value::Bytes(node)) => scan_node(node, s, top)?,
            (5, Value::Bytes(t)) => {
                if let Some(name) = string_field(t, 8)? {
                    initializers.insert(name);
                }
            }
            (11, Value::Bytes(vi)) if top => inputs.push(scan_value_info(vi)?),
            (12, Value::Bytes(vi)) if top => s.outputs.push(scan_value_info(vi)?.1),
            _ => {}
        }
    }
    if top {
        s.inputs = inputs.into_iter().filter(|(name, _)| !initializers.contains(name)).map(|(_, t)| t).collect();
    }
    Ok(())
}

fn scan_node(bytes: &[u8], s: &mut ModelSummary, top: bool) -> Result<()> {
    let (mut op_type, mut domain) = (String::new(), String::new());
    let mut r = Reader::new(bytes);
    while let Some((field, v)) = r.next_field()? {
        match (field, v) {
            (4, Value::Bytes(b)) => op_type = utf8(b)?,
            (7, Value::Bytes(b)) => domain = utf8(b)?,
            (5, Value::Bytes(attr)) => scan_attribute_graphs(attr, s)?,
            _ => {}
        }
    }
    let name = if domain.is_empty() || domain == "ai.onnx" { op_type } else { format!("{domain}::{op_type}") };
    if top {
        s.node_ops.push(name.clone());
    }
    s.op_types.insert(name);
    Ok(())
}

/// Nodes of subgraphs held by attributes (`g` = 6, `graphs` = 11).
fn scan_attribute_graphs(bytes: &[u8], s: &mut ModelSummary) -> Result<()> {
    let mut r = Reader::new(bytes);
    while let Some((field, v)) = r.next_field()? {
        if let (6 | 11, Value::Bytes(g)) = (field, v) {
            scan_graph(g, s, false)?;
        }
    }
    Ok(())
}

fn scan_value_info(bytes: &[u8]) -> Result<(String, ValueType)> {
    let (mut name, mut ty) = (String::new(), ValueType::NonTensor);
    let mut r = Reader::new(bytes);
    while let Some((field, v)) = r.next_field()? {
        match (field, v) {
            (1, Value::Bytes(b)) => name = utf8(b)?,
            (2, Value::Bytes(t)) => ty = scan_type(t)?,
            _ => {}
        }
    }
    Ok((name, ty))
}

/// `TypeProto`: only `tensor_type` (field 1) is a plain tensor.
fn scan_type(bytes: &[u8]) -> Result<ValueType> {
    let mut r = Reader::new(bytes);
    let mut ty = ValueType::NonTensor;
    while let Some((field, v)) = r.next_field()? {
        if let (1, Value::Bytes(t)) = (field, v) {
            let mut elem = 0;
            let mut tr = Reader::new(t);
            while let Some((f, v)) = tr.next_field()? {
                if let (1, Value::Varint(code)) = (f, v) {
                    elem = i32::try_from(code).unwrap_or(-1);
                }
            }
            ty = ValueType::Tensor(elem);
        }
    }
    Ok(ty)
}

fn string_field(bytes: &[u8], want: u32) -> Result<Option<String>> {
    let mut r = Reader::new(bytes);
    let mut out = None;
    while let Some((field, v)) = r.next_field()? {
        match v {
            Value::Bytes(b) if field == want => out = Some(utf8(b)?),
            _ => {}
        }
    }
    Ok(out)
}

fn utf8(b: &[u8]) -> Result<String> {
    Ok(std::str::from_utf8(b).map_err(|e| anyhow::anyhow!("invalid UTF-8 string in model: {e}"))?.to_string())
}

/// A decoded field value.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed,
    Bytes(&'a [u8]),
}

/// Walks the fields of one protobuf message.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else { bail!("truncated varint at byte {}", self.pos) };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        bail!("varint longer than 10 bytes at byte {}", self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else { bail!("field of {n} bytes runs past the end of its message") };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next `(field number, value)`, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| anyhow::anyhow!("field number too large"))?;
        let v = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| anyhow::anyhow!("length too large"))?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            w => bail!("unsupported protobuf wire type {w} (field {field})"),
        };
        Ok(Some((field, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
        varint(u64::from(field) << 3 | 2, out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    fn tensor_value_info(name: &str, elem: u64) -> Vec<u8> {
        let mut tensor = Vec::new();
        varint(1 << 3, &mut tensor);
        varint(elem, &mut tensor);
        let mut ty = Vec::new();
        bytes_field(1, &tensor, &mut ty);
        let mut vi = Vec::new();
        bytes_field(1, name.as_bytes(), &mut vi);
        bytes_field(2, &ty, &mut vi);
        vi
    }

    #[test]
    fn reads_ops_and_io_types() {
        let mut relu = Vec::new();
        bytes_field(4, b"Relu", &mut relu);
        let mut adam = Vec::new();
        bytes_field(4, b"Adam", &mut adam);
        bytes_field(7, b"ai.onnx.preview.training", &mut adam);
        let mut init = Vec::new();
        bytes_field(8, b"w", &mut init);
        let mut seq_ty = Vec::new();
        bytes_field(4, &[], &mut seq_ty);
        let mut seq_vi = Vec::new();
        bytes_field(1, b"s", &mut seq_vi);
        bytes_field(2, &seq_ty, &mut seq_vi);

        let mut graph = Vec::new();
        bytes_field(1, &relu, &mut graph);
        bytes_field(1, &adam, &mut graph);
        bytes_field(5, &init, &mut graph);
        bytes_field(11, &tensor_value_info("x", 1), &mut graph);
        bytes_field(11, &tensor_value_info("w", 11), &mut graph);
        bytes_field(12, &tensor_value_info("y", 7), &mut graph);
        bytes_field(12, &seq_vi, &mut graph);
        let mut model = Vec::new();
        varint(1 << 3, &mut model); // ir_version
        varint(8, &mut model);
        bytes_field(7, &graph, &mut model);

        let s = scan_model(&model).unwrap();
        assert_eq!(s.node_ops, vec!["Relu".to_string(), "ai.onnx.preview.training::Adam".to_string()]);
        assert_eq!(s.inputs, vec![ValueType::Tensor(1)]);
        assert_eq!(s.outputs, vec![ValueType::Tensor(7), ValueType::NonTensor]);
        assert_eq!(s.outputs[0].name(), "int64");
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut graph = Vec::new();
        bytes_field(1, b"\x22\x04Re", &mut graph);
        let mut model = Vec::new();
        bytes_field(7, &graph, &mut model);
        assert!(scan_model(&model).is_err());
        assert!(scan_model(&model[..model.len() - 1]).is_err());
        assert!(scan_model(&[]).is_err());
    }
}
