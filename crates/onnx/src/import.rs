//! Whole-model import: structural checks, the unsupported-op scan, initializers and inputs,
//! node conversion in topological order, outputs, then shape inference, folding and validation.

use crate::context::{Builder, NodeCtx};
use crate::proto::{GraphProto, ModelProto, NodeProto};
use crate::registry::Registry;
use crate::tensor_data::tensor_from_proto;
use crate::types::{MAX_DIM, checked_count, type_info};
use crate::{ImportOptions, OnnxError, UnsupportedOp};
use lithe_ir::{Dim, Graph, Shape, TypeInfo};
use prost::Message;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The newest default-domain opset whose operator semantics the importer was written against.
const NEWEST_KNOWN_OPSET: i64 = 21;
/// The oldest default-domain opset the importer is meant for.
const OLDEST_SUPPORTED_OPSET: i64 = 7;

/// The label used for in-memory model bytes in decode errors.
pub(crate) const MEMORY: &str = "<memory>";

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// The opset version imported for each domain.
struct Opsets {
    versions: HashMap<String, i64>,
}

impl Opsets {
    fn new(model: &ModelProto) -> Self {
        let mut versions: HashMap<String, i64> = HashMap::new();
        for o in &model.opset_import {
            let d = if is_default_domain(&o.domain) { "ai.onnx" } else { o.domain.as_str() };
            let v = versions.entry(d.to_string()).or_insert(o.version);
            *v = (*v).max(o.version);
        }
        if !versions.contains_key("ai.onnx") {
            tracing::warn!("the model imports no default-domain opset; assuming opset 1");
            versions.insert("ai.onnx".to_string(), 1);
        }
        let default = versions.get("ai.onnx").copied().unwrap_or(1);
        if default > NEWEST_KNOWN_OPSET {
            tracing::warn!(
                opset = default,
                "the model uses opset {default}, newer than {NEWEST_KNOWN_OPSET}; importing with opset-{NEWEST_KNOWN_OPSET} semantics"
            );
        } else if default < OLDEST_SUPPORTED_OPSET {
            tracing::warn!(
                opset = default,
                "the model uses opset {default}, older than {OLDEST_SUPPORTED_OPSET}; importing with best effort"
            );
        }
        Opsets { versions }
    }

    fn get(&self, domain: &str) -> Option<i64> {
        let d = if is_default_domain(domain) { "ai.onnx" } else { domain };
        self.versions.get(d).copied()
    }
}

fn node_name(n: &NodeProto, index: usize) -> String {
    if n.name.is_empty() { format!("{}_{index}", n.op_type) } else { n.name.clone() }
}

/// Collect every node whose operator the importer cannot convert, grouped by type.
fn check_supported(g: &GraphProto, opsets: &Opsets) -> Result<(), OnnxError> {
    let reg = Registry::global();
    let mut unsupported: Vec<UnsupportedOp> = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        // Control-flow ops (the ones with subgraph attributes) are not registered.
        let default = is_default_domain(&n.domain);
        if default && reg.get(&n.op_type).is_some() {
            continue;
        }
        let domain = if default { "ai.onnx".to_string() } else { n.domain.clone() };
        match unsupported.iter_mut().find(|u| u.op_type == n.op_type && u.domain == domain) {
            Some(u) => u.count += 1,
            None => unsupported.push(UnsupportedOp {
                op_type: n.op_type.clone(),
                opset: opsets.get(&domain),
                domain,
                count: 1,
                first_node: node_name(n, i),
            }),
        }
    }
    if unsupported.is_empty() { Ok(()) } else { Err(OnnxError::UnsupportedOps(unsupported)) }
}

/// Name checks and a topological order of the nodes (the model's order where it is valid).
struct Plan {
    order: Vec<usize>,
    readers: HashMap<String, usize>,
    names: HashSet<String>,
}

fn plan(g: &GraphProto) -> Result<Plan, OnnxError> {
    let model = |m: String| OnnxError::Model(m);
    let mut names: HashSet<String> = HashSet::new();
    let mut sources: HashSet<&str> = HashSet::new();
    for t in &g.initializer {
        if t.name.is_empty() {
            return Err(model("an initializer has no name".into()));
        }
        if !sources.insert(&t.name) {
            return Err(model(format!("initializer '{}' is defined twice", t.name)));
        }
    }
    if let Some(s) = g.sparse_initializer.first() {
        let name = s.values.as_ref().map_or("<unnamed>", |v| v.name.as_str());
        return Err(OnnxError::tensor(name, "sparse initializers are not supported"));
    }
    let mut input_names: HashSet<&str> = HashSet::new();
    for vi in &g.input {
        if vi.name.is_empty() {
            return Err(model("a graph input has no name".into()));
        }
        if !input_names.insert(&vi.name) {
            return Err(model(format!("graph input '{}' is listed twice", vi.name)));
        }
        sources.insert(&vi.name);
    }
    let mut producers: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for out in n.output.iter().filter(|o| !o.is_empty()) {
            if sources.contains(out.as_str()) {
                return Err(model(format!(
                    "node '{}' output '{out}' redefines a graph input or initializer",
                    node_name(n, i)
                )));
            }
            if let Some(&p) = producers.get(out.as_str()) {
                let first = g.node.get(p).map(|m| node_name(m, p)).unwrap_or_default();
                return Err(model(format!(
                    "value '{out}' is produced by both node '{first}' and node '{}'",
                    node_name(n, i)
                )));
            }
            producers.insert(out, i);
        }
    }
    names.extend(sources.iter().map(|s| s.to_string()));
    names.extend(producers.keys().map(|s| s.to_string()));
    let mut readers: HashMap<String, usize> = HashMap::new();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
    let mut indegree = vec![0usize; g.node.len()];
    for (i, n) in g.node.iter().enumerate() {
        for inp in n.input.iter().filter(|s| !s.is_empty()) {
            *readers.entry(inp.clone()).or_default() += 1;
            if let Some(&p) = producers.get(inp.as_str()) {
                if let Some(u) = users.get_mut(p) {
                    u.push(i);
                }
                if let Some(d) = indegree.get_mut(i) {
                    *d += 1;
                }
            } else if !sources.contains(inp.as_str()) {
                return Err(OnnxError::Node {
                    node: node_name(n, i),
                    op_type: n.op_type.clone(),
                    message: format!("reads value '{inp}', which no node, graph input or initializer produces"),
                });
            }
        }
    }
    for vi in &g.output {
        *readers.entry(vi.name.clone()).or_default() += 1;
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        indegree.iter().enumerate().filter(|(_, d)| **d == 0).map(|(i, _)| Reverse(i)).collect();
    let mut order = Vec::with_capacity(g.node.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &u in users.get(i).map(Vec::as_slice).unwrap_or_default() {
            if let Some(d) = indegree.get_mut(u) {
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(u));
                }
            }
        }
    }
    if order.len() != g.node.len() {
        let stuck = indegree.iter().position(|&d| d > 0).unwrap_or(0);
        let name = g.node.get(stuck).map(|n| node_name(n, stuck)).unwrap_or_default();
        return Err(model(format!("the nodes form a cycle through node '{name}'")));
    }
    Ok(Plan { order, readers, names })
}

/// Fix an input's dims to `dims`, checking them against what the model declares.
fn fixed_input_type(name: &str, ty: &TypeInfo, dims: &[usize]) -> Result<TypeInfo, OnnxError> {
    let err = |m: String| OnnxError::input(name, m);
    if let Some(&d) = dims.iter().find(|&&d| d as u64 > MAX_DIM) {
        return Err(err(format!("input_shapes dimension {d} is too large")));
    }
    checked_count(dims).map_err(err)?;
    if let Some(shape) = &ty.shape {
        if shape.rank() != dims.len() {
            return Err(err(format!("the model declares shape {shape}, input_shapes gives {dims:?}")));
        }
        for (i, (d, &n)) in shape.dims().iter().zip(dims).enumerate() {
            if let Dim::Known(k) = d
                && *k != n
            {
                return Err(err(format!("dim {i} is fixed to {k} in the model, input_shapes gives {n}")));
            }
        }
    }
    Ok(TypeInfo::new(ty.dtype, Shape::known(dims)))
}

/// Graph inputs that are not initializers, with their types (`input_shapes` applied, and the
/// symbols they fix bound in the other inputs).
fn input_types(g: &GraphProto, opts: &ImportOptions) -> Result<Vec<(String, TypeInfo)>, OnnxError> {
    let initializers: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut out = Vec::new();
    let mut bindings: HashMap<String, usize> = HashMap::new();
    for vi in g.input.iter().filter(|vi| !initializers.contains(vi.name.as_str())) {
        let ty = type_info(vi).map_err(|m| OnnxError::input(&vi.name, m))?;
        let ty = match opts.input_shapes.get(&vi.name) {
            None => ty,
            Some(dims) => {
                let fixed = fixed_input_type(&vi.name, &ty, dims)?;
                for (d, &n) in ty.shape.iter().flat_map(|s| s.dims()).zip(dims) {
                    if let Dim::Sym(s) = d {
                        if let Some(&prev) = bindings.get(s)
                            && prev != n
                        {
                            return Err(OnnxError::input(
                                &vi.name,
                                format!("input_shapes binds '{s}' to {n}, another input to {prev}"),
                            ));
                        }
                        bindings.insert(s.clone(), n);
                    }
                }
                fixed
            }
        };
        out.push((vi.name.clone(), ty));
    }
    for name in opts.input_shapes.keys() {
        if !out.iter().any(|(n, _)| n == name) {
            let known: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
            return Err(OnnxError::input(name, format!("input_shapes names no graph input (inputs: {known:?})")));
        }
    }
    if !bindings.is_empty() {
        for (_, ty) in &mut out {
            if let Some(s) = &ty.shape {
                ty.shape = Some(s.bind(&bindings));
            }
        }
    }
    Ok(out)
}

/// Import a serialized `ModelProto`.
pub(crate) fn import_model(bytes: &[u8], base_dir: Option<&Path>, opts: &ImportOptions) -> Result<Graph, OnnxError> {
    let mut model =
        ModelProto::decode(bytes).map_err(|source| OnnxError::Decode { path: PathBuf::from(MEMORY), source })?;
    let opsets = Opsets::new(&model);
    let mut graph_proto = model.graph.take().ok_or_else(|| OnnxError::Model("the model has no graph".into()))?;
    check_supported(&graph_proto, &opsets)?;
    let plan = plan(&graph_proto)?;
    let inputs = input_types(&graph_proto, opts)?;
    let base = base_dir.map(Path::to_path_buf);
    let mut b = Builder::new(&graph_proto.name, base, plan.names, plan.readers);
    for t in &mut graph_proto.initializer {
        let tensor = tensor_from_proto(t, base_dir)?;
        // The proto's copy of the data is not needed any more: free it as we go.
        t.raw_data = Vec::new();
        t.float_data = Vec::new();
        t.int32_data = Vec::new();
        t.int64_data = Vec::new();
        let o = b.graph.add_const(t.name.clone(), tensor);
        b.bind(&t.name, o);
    }
    let g = &graph_proto;
    for (name, ty) in inputs {
        let o = b.graph.add_input(name.clone(), ty);
        b.bind(&name, o);
    }
    let reg = Registry::global();
    for &i in &plan.order {
        let Some(node) = g.node.get(i) else { continue };
        let name = node_name(node, i);
        let op_err = |m: String| OnnxError::Node { node: name.clone(), op_type: node.op_type.clone(), message: m };
        let mut resolved = Vec::with_capacity(node.input.len());
        for inp in &node.input {
            resolved.push(if inp.is_empty() {
                None
            } else {
                Some(b.lookup(inp).ok_or_else(|| op_err(format!("reads value '{inp}', which is not produced")))?)
            });
        }
        let convert = reg.get(&node.op_type).ok_or_else(|| op_err("unsupported operator".into()))?;
        let opset = opsets.get(&node.domain).unwrap_or(1);
        let mut ctx = NodeCtx::new(&mut b, node, name.clone(), opset, resolved)?;
        convert(&mut ctx)?;
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            if b.lookup(out).is_none() && b.reader_count(out) > 0 {
                return Err(op_err(format!("output '{out}' is not supported by the importer")));
            }
        }
    }
    if g.output.is_empty() {
        return Err(OnnxError::Model("the graph declares no outputs".into()));
    }
    let mut outputs = Vec::with_capacity(g.output.len());
    for vi in &g.output {
        let o = b.lookup(&vi.name).ok_or_else(|| {
            OnnxError::Model(format!("graph output '{}' is not produced by any node, input or initializer", vi.name))
        })?;
        outputs.push(o);
    }
    let mut graph = b.graph;
    graph.set_outputs(outputs);
    graph.infer_shapes()?;
    if opts.fold_constants {
        let n = lithe_passes::fold::fold_constants(&mut graph)?;
        tracing::debug!(folded = n, "constant folding done");
    }
    let removed = graph.remove_unused();
    tracing::debug!(removed, "removed unused nodes");
    graph.validate()?;
    Ok(graph)
}
