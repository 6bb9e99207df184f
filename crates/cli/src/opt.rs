//! `lite-cli opt`: optimize a model with the pass pipeline and write one `.nb` file; list
//! passes, operators and what each target supports.

use crate::args::{InputShape, parse_input_shape};
use crate::model;
use crate::report::{human, table};
use anyhow::{Context, Result, bail};
use lithe_ir::{Dim, Graph};
use lithe_nbformat::ModelMeta;
use lithe_passes::{PassManager, PassReport, op_histogram};
use lithe_quant::weight_only::{WeightBits, WeightOnlyReport, quantize_weights};
use lithe_runtime::{Target, supported_ops, supports};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `lite-cli opt`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  lite-cli opt --model m.onnx --out m.nb --input-shape x=1,3,224,224\n  \
    lite-cli opt --model m.onnx --out m_w8.onnx --quant weight-int8\n  \
    lite-cli opt --model m.onnx --print-model-ops --valid-targets arm\n  lite-cli opt --print-passes")]
pub struct OptArgs {
    /// The model to optimize (ONNX, or a `.nb` to re-optimize).
    #[arg(long, short = 'm', required_unless_present_any = ["print_supported_ops", "print_all_ops", "print_passes"])]
    pub model: Option<PathBuf>,
    /// Where to write the optimized model: one `.nb` file, or ONNX when the path ends in `.onnx`
    /// (fused ops expanded to standard ONNX; with `--quant`, int8 weights behind DequantizeLinear).
    #[arg(long, short = 'o', required_unless_present_any = ["print_model_ops", "print_supported_ops", "print_all_ops", "print_passes"])]
    pub out: Option<PathBuf>,
    /// Fix an input's shape, e.g. `x=1,3,224,224` (repeatable). Without it symbolic dims stay
    /// symbolic and the predictor plans memory when it sees the input shape.
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    pub input_shapes: Vec<InputShape>,
    /// Targets the model must run on (comma-separated: arm, x86); opt fails if one lacks an operator.
    #[arg(long = "valid-targets", value_delimiter = ',', default_value = "arm,x86")]
    pub valid_targets: Vec<Target>,
    /// Run only these passes (comma-separated, pipeline order is kept).
    #[arg(long, value_delimiter = ',', value_name = "PASS,...")]
    pub passes: Option<Vec<String>>,
    /// Skip a pass (repeatable).
    #[arg(long = "disable-pass", value_name = "PASS")]
    pub disable_pass: Vec<String>,
    /// Print the operators the (optimized) model uses and whether each target supports them.
    #[arg(long)]
    pub print_model_ops: bool,
    /// Print the operators a target supports (with `--target`).
    #[arg(long, requires = "target")]
    pub print_supported_ops: bool,
    /// The target for `--print-supported-ops`.
    #[arg(long)]
    pub target: Option<Target>,
    /// Print every operator Lithe knows, with ONNX import and per-target support.
    #[arg(long)]
    pub print_all_ops: bool,
    /// Print the passes in pipeline order.
    #[arg(long)]
    pub print_passes: bool,
    /// Store weights quantized, no calibration data needed: `weight-int8` (about 25% of the
    /// fp32 size) or `weight-int16` (about 50%); per-channel symmetric, dequantized once at load.
    #[arg(long, value_name = "MODE")]
    pub quant: Option<WeightBits>,
}

/// Run `lite-cli opt`.
pub fn run(args: &OptArgs, out: &mut dyn Write) -> Result<()> {
    let mut manager = pass_manager(args)?;
    if args.print_passes {
        print_passes(&manager, out)?;
    }
    if args.print_all_ops {
        print_all_ops(out)?;
    }
    if args.print_supported_ops
        && let Some(t) = args.target
    {
        print_supported(t, out)?;
    }
    let Some(model) = &args.model else { return Ok(()) };
    if args.out.is_none() && !args.print_model_ops {
        return Ok(());
    }
    let start = Instant::now();
    let (mut graph, _) = model::load(model, &args.input_shapes)?;
    let report = manager_run(&mut manager, &mut graph, model)?;
    let elapsed = start.elapsed();
    if args.print_model_ops {
        print_model_ops(&graph, &args.valid_targets, out)?;
    }
    check_targets(&graph, &args.valid_targets)?;
    let Some(dest) = &args.out else { return Ok(()) };

    writeln!(out, "optimized {} in {:.1} ms ({} rounds)", model.display(), elapsed.as_secs_f64() * 1e3, report.rounds)?;
    print_report(&report, out)?;
    print_memory(&graph, out)?;
    let mut passes = report.applied();
    if let Some(bits) = args.quant {
        let q =
            quantize_weights(&mut graph, bits, 1).with_context(|| format!("cannot quantize '{}'", model.display()))?;
        print_weight_quant(bits, &q, out)?;
        passes.push(bits.to_string());
    }

    let meta = ModelMeta {
        producer: format!("lithe {}", env!("CARGO_PKG_VERSION")),
        source: model.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        passes,
        valid_targets: args.valid_targets.iter().map(|t| t.name().to_string()).collect(),
    };
    let format = crate::save::write_model(dest, &graph, &meta)?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    writeln!(out, "wrote {} ({format}): {}B (input {}B)", dest.display(), human(size(dest)), human(size(model)))?;
    Ok(())
}

/// What `--quant weight-int8|weight-int16` did: weights, bytes, the worst rounding errors.
fn print_weight_quant(bits: WeightBits, q: &WeightOnlyReport, out: &mut dyn Write) -> Result<()> {
    let ratio = if q.bytes_before > 0 { 100.0 * q.bytes_after as f64 / q.bytes_before as f64 } else { 100.0 };
    writeln!(
        out,
        "{bits}: {} weights and {} biases, {}B -> {}B ({ratio:.1}%)",
        q.quantized,
        q.biases,
        human(q.bytes_before as u64),
        human(q.bytes_after as u64)
    )?;
    for (name, err) in q.worst_relative_error.iter().take(3) {
        writeln!(out, "  largest rounding error {:.2e} of the channel's max |w| in {name}", err)?;
    }
    Ok(())
}

/// The pipeline with `--passes` / `--disable-pass` applied.
fn pass_manager(args: &OptArgs) -> Result<PassManager> {
    let mut m = PassManager::default_pipeline();
    if let Some(only) = &args.passes {
        let names: Vec<&str> = only.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        m.enable_only(&names).context("--passes")?;
    }
    for d in &args.disable_pass {
        m.disable(d).context("--disable-pass")?;
    }
    Ok(m)
}

fn manager_run(m: &mut PassManager, graph: &mut Graph, model: &Path) -> Result<PassReport> {
    m.run(graph).with_context(|| format!("cannot optimize '{}'", model.display()))
}

fn print_passes(m: &PassManager, out: &mut dyn Write) -> Result<()> {
    let rows: Vec<Vec<String>> = m
        .list()
        .into_iter()
        .map(|(name, desc, on)| vec![name.to_string(), if on { "on" } else { "off" }.to_string(), desc.to_string()])
        .collect();
    write!(out, "{}", table(&["pass", "state", "what it does"], &rows))?;
    Ok(())
}

fn print_all_ops(out: &mut dyn Write) -> Result<()> {
    let onnx: BTreeSet<&str> = lithe_onnx::supported_ops().into_iter().collect();
    let rows: Vec<Vec<String>> = lithe_ir::Op::all_names()
        .into_iter()
        .map(|op| {
            let mut row = vec![op.to_string(), yes_no(onnx.contains(op))];
            row.extend(Target::ALL.iter().map(|&t| yes_no(supports(t, op))));
            row
        })
        .collect();
    let mut header = vec!["operator", "onnx import"];
    header.extend(Target::ALL.iter().map(|t| t.name()));
    write!(out, "{}", table(&header, &rows))?;
    Ok(())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

fn print_supported(t: Target, out: &mut dyn Write) -> Result<()> {
    let rows: Vec<Vec<String>> =
        supported_ops(t).into_iter().map(|s| vec![s.op.to_string(), s.kernels.join(", ")]).collect();
    writeln!(out, "operators supported on {t}: {}", rows.len())?;
    write!(out, "{}", table(&["operator", "kernels"], &rows))?;
    Ok(())
}

fn print_model_ops(g: &Graph, targets: &[Target], out: &mut dyn Write) -> Result<()> {
    let h = op_histogram(g);
    let rows: Vec<Vec<String>> = h
        .iter()
        .map(|(op, n)| {
            let mut row = vec![op.clone(), n.to_string()];
            row.extend(targets.iter().map(|&t| yes_no(supports(t, op))));
            row
        })
        .collect();
    let mut header = vec!["operator", "nodes"];
    header.extend(targets.iter().map(|t| t.name()));
    writeln!(out, "operators used by the model: {}", h.len())?;
    write!(out, "{}", table(&header, &rows))?;
    Ok(())
}

/// Fail when a valid target lacks a kernel for an operator the graph uses.
fn check_targets(g: &Graph, targets: &[Target]) -> Result<()> {
    let h = op_histogram(g);
    let mut missing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for &t in targets {
        for op in h.keys() {
            if !supports(t, op) {
                missing.entry(t.name()).or_default().push(op);
            }
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(t, ops)| format!("{t}: {}", ops.join(", "))).collect();
        bail!("the model uses operators a valid target cannot run ({})", list.join("; "));
    }
    Ok(())
}

fn print_report(r: &PassReport, out: &mut dyn Write) -> Result<()> {
    let rows: Vec<Vec<String>> =
        r.stats.iter().filter(|s| s.changes > 0).map(|s| vec![s.name.clone(), s.changes.to_string()]).collect();
    if !rows.is_empty() {
        write!(out, "{}", table(&["pass", "rewrites"], &rows))?;
    }
    let ops: BTreeSet<&String> = r.ops_before.keys().chain(r.ops_after.keys()).collect();
    let n = |m: &BTreeMap<String, usize>, k: &String| m.get(k).copied().unwrap_or(0);
    let mut rows: Vec<Vec<String>> = ops
        .iter()
        .map(|k| vec![(*k).clone(), n(&r.ops_before, k).to_string(), n(&r.ops_after, k).to_string()])
        .collect();
    let total = |m: &BTreeMap<String, usize>| m.values().sum::<usize>().to_string();
    rows.push(vec!["total".into(), total(&r.ops_before), total(&r.ops_after)]);
    write!(out, "{}", table(&["operator", "before", "after"], &rows))?;
    Ok(())
}

/// Arena size against the sum of intermediates, when every shape is known.
fn print_memory(g: &Graph, out: &mut dyn Write) -> Result<()> {
    let symbolic: BTreeSet<String> = g
        .node_ids()
        .into_iter()
        .flat_map(|id| g.node(id).outputs.iter().filter_map(|v| v.ty.shape.clone()).collect::<Vec<_>>())
        .flat_map(|s| s.0.into_iter())
        .filter_map(|d| match d {
            Dim::Sym(s) => Some(s),
            Dim::Unknown => Some("?".to_string()),
            Dim::Known(_) => None,
        })
        .collect();
    if !symbolic.is_empty() {
        let list: Vec<String> = symbolic.into_iter().collect();
        writeln!(out, "memory: planned when the predictor sees the input shapes (symbolic dims: {})", list.join(", "))?;
        return Ok(());
    }
    let m = lithe_runtime::plan_memory(g).context("cannot plan memory")?;
    let pct = if m.sum_intermediate_bytes == 0 {
        0.0
    } else {
        100.0 * m.arena_bytes as f64 / m.sum_intermediate_bytes as f64
    };
    writeln!(
        out,
        "memory: arena {}B for intermediate tensors totalling {}B ({pct:.1}%)",
        human(m.arena_bytes as u64),
        human(m.sum_intermediate_bytes as u64)
    )?;
    Ok(())
}
