//! `lite-cli info`: a model's interface, operators, parameters and FLOPs.

use crate::args::{InputShape, parse_input_shape};
use crate::report::{count, table, type_json};
use anyhow::{Context, Result};
use lithe_ir::{Graph, NodeId, Op, Outlet};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `lite-cli info`.
#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// The model (ONNX or .nb).
    pub model: PathBuf,
    /// Fix an input's shape, e.g. `x=1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    pub input_shapes: Vec<InputShape>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Load `model` (ONNX or `.nb`) with the given fixed input shapes.
pub fn load(model: &Path, shapes: &[InputShape]) -> Result<Graph> {
    crate::model::load(model, shapes).map(|(g, _)| g)
}

/// What `info` reports about one compute node.
struct NodeRow {
    name: String,
    op: &'static str,
    outputs: Vec<(String, lithe_ir::TypeInfo)>,
    params: usize,
    flops: Option<u64>,
}

/// Run `lite-cli info`.
pub fn run(args: &InfoArgs, out: &mut dyn Write) -> Result<()> {
    let g = load(&args.model, &args.input_shapes)?;
    let order = g.topo_order().context("cannot order the graph's nodes")?;
    let rows: Vec<NodeRow> = order
        .into_iter()
        .filter(|&id| !matches!(g.node(id).op, Op::Input | Op::Const(_)))
        .map(|id| node_row(&g, id))
        .collect();
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *histogram.entry(r.op).or_default() += 1;
    }
    let total_params = g.total_params();
    let unknown = rows.iter().filter(|r| r.flops.is_none()).count();
    let known_flops: u64 = rows.iter().filter_map(|r| r.flops).fold(0u64, u64::saturating_add);
    let inputs: Vec<(String, lithe_ir::TypeInfo)> = g
        .inputs()
        .iter()
        .map(|&id| {
            let v = g.value(Outlet::new(id, 0));
            (v.name.clone(), v.ty.clone())
        })
        .collect();
    let outputs: Vec<(String, lithe_ir::TypeInfo)> =
        g.outputs().iter().map(|&o| (g.value(o).name.clone(), g.value(o).ty.clone())).collect();

    if args.json {
        let io = |v: &[(String, lithe_ir::TypeInfo)]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|(n, t)| {
                    let mut j = type_json(t);
                    j["name"] = n.as_str().into();
                    j
                })
                .collect()
        };
        let nodes: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "op": r.op,
                    "outputs": io(&r.outputs),
                    "params": r.params,
                    "flops": r.flops,
                })
            })
            .collect();
        let j = serde_json::json!({
            "model": args.model.display().to_string(),
            "graph": g.name,
            "inputs": io(&inputs),
            "outputs": io(&outputs),
            "op_histogram": histogram,
            "num_nodes": rows.len(),
            "total_params": total_params,
            "nodes": nodes,
            "total_flops": if unknown == 0 { Some(known_flops) } else { None },
            "known_flops": known_flops,
            "nodes_with_unknown_flops": unknown,
        });
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(());
    }

    writeln!(out, "model: {} (graph '{}')", args.model.display(), g.name)?;
    writeln!(out, "inputs:")?;
    for (n, t) in &inputs {
        writeln!(out, "  {n}: {t}")?;
    }
    writeln!(out, "outputs:")?;
    for (n, t) in &outputs {
        writeln!(out, "  {n}: {t}")?;
    }
    writeln!(out, "operators ({} nodes):", rows.len())?;
    let hist_rows: Vec<Vec<String>> = histogram.iter().map(|(op, n)| vec![(*op).to_string(), n.to_string()]).collect();
    write!(out, "{}", table(&["op", "count"], &hist_rows))?;
    writeln!(out, "parameters: {}", count(total_params as u64))?;
    writeln!(out, "nodes:")?;
    let node_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let shapes: Vec<String> = r.outputs.iter().map(|(_, t)| t.to_string()).collect();
            vec![
                r.name.clone(),
                r.op.to_string(),
                shapes.join(", "),
                r.params.to_string(),
                r.flops.map_or_else(|| "?".to_string(), |f| f.to_string()),
            ]
        })
        .collect();
    write!(out, "{}", table(&["name", "op", "output", "params", "FLOPs"], &node_rows))?;
    if unknown == 0 {
        writeln!(out, "total FLOPs: {}", count(known_flops))?;
    } else {
        let rest = if unknown < rows.len() {
            let k = rows.len() - unknown;
            format!("; the other {k} node{}: {}", if k == 1 { "" } else { "s" }, count(known_flops))
        } else {
            String::new()
        };
        writeln!(
            out,
            "total FLOPs: ? ({unknown} of {} nodes have symbolic or unknown shapes: fix them with \
             --input-shape NAME=DIMS{rest})",
            rows.len()
        )?;
    }
    Ok(())
}

fn node_row(g: &Graph, id: NodeId) -> NodeRow {
    let n = g.node(id);
    NodeRow {
        name: n.name.clone(),
        op: n.op.name(),
        outputs: n.outputs.iter().map(|v| (v.name.clone(), v.ty.clone())).collect(),
        params: g.node_params(id),
        flops: g.node_flops(id),
    }
}
