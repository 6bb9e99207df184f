//! `lite-cli bench`: latency of a model (median, min, max over repeated runs) and, with
//! `--profile`, where the time goes: per operator type, the slowest nodes, the kernel each
//! node ran with and its GFLOP/s.

use crate::args::{InputShape, parse_input_shape};
use crate::model::{ModelKind, fix_input_shapes, model_kind};
use anyhow::{Context, Result, bail};
use lithe_ir::{DType, Graph, Tensor, TypeInfo};
use lithe_passes::PassManager;
use lithe_runtime::{NodeProfile, Predictor, PredictorOptions, kernel_set};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Arguments of `lite-cli bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The model: a `.nb` (run as written) or an ONNX file (optimized in memory first, as
    /// `lite-cli opt` would).
    pub model: PathBuf,
    /// Worker threads.
    #[arg(long, short = 't', default_value_t = 1)]
    pub threads: usize,
    /// Untimed runs before measuring.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 50)]
    pub repeats: usize,
    /// Also time every node and print where the time goes.
    #[arg(long)]
    pub profile: bool,
    /// With `--profile`: how many of the slowest nodes to list (0 lists every node, in run order).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Fix an input's shape, e.g. `x=1,3,224,224` (repeatable; needed for symbolic dims).
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    pub input_shapes: Vec<InputShape>,
}

/// Run `lite-cli bench`.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<()> {
    if args.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    let options = PredictorOptions::default().with_threads(args.threads);
    let mut p = predictor(&args.model, &args.input_shapes, options)?;
    let inputs = synthetic_inputs(p.input_names(), p.input_types())?;
    for (i, t) in inputs.into_iter().enumerate() {
        p.set_input(i, t)?;
    }
    for _ in 0..args.warmup {
        p.run()?;
    }
    let mut times = Vec::with_capacity(args.repeats);
    for _ in 0..args.repeats {
        let start = Instant::now();
        p.run()?;
        times.push(start.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    writeln!(
        out,
        "{}: {} thread(s), {} runs after {} warm-up, kernels {} / {}",
        args.model.display(),
        p.threads(),
        args.repeats,
        args.warmup,
        kernel_set().f32_gemm.name(),
        kernel_set().i8_gemm.name()
    )?;
    writeln!(
        out,
        "latency ms: median {:.3}  min {:.3}  max {:.3}",
        ms(median(&times)),
        ms(times[0]),
        ms(times[times.len() - 1])
    )?;
    if args.profile {
        p.set_profiling(true);
        let mut runs = Vec::with_capacity(args.repeats);
        for _ in 0..args.repeats {
            p.run()?;
            runs.push(p.profile().context("the profiled run recorded no times")?);
        }
        print_profile(out, &median_profile(runs), args.top)?;
    }
    Ok(())
}

/// The predictor for `model`: `.nb` files as written, ONNX files through the default passes.
fn predictor(model: &Path, shapes: &[InputShape], options: PredictorOptions) -> Result<Predictor> {
    let context = || format!("cannot prepare model '{}'", model.display());
    match model_kind(model)? {
        ModelKind::Nb if shapes.is_empty() => Predictor::from_file(model, options).with_context(context),
        ModelKind::Nb => {
            let (mut g, _) = lithe_nbformat::read_file(model).context("cannot load model")?;
            fix_input_shapes(&mut g, shapes)?;
            Predictor::with_options(g, options).with_context(context)
        }
        ModelKind::Onnx => {
            let mut g: Graph = crate::model::load(model, shapes)?.0;
            PassManager::default_pipeline()
                .run(&mut g)
                .with_context(|| format!("cannot optimize '{}'", model.display()))?;
            Predictor::with_options(g, options).with_context(context)
        }
    }
}

/// Deterministic inputs in [-1, 1) (0 and 1 for integer and bool inputs) of every declared
/// type; symbolic dims must have been fixed.
fn synthetic_inputs(names: &[String], types: &[TypeInfo]) -> Result<Vec<Tensor>> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    names
        .iter()
        .zip(types)
        .map(|(name, ty)| {
            let shape = ty.shape.as_ref().and_then(lithe_ir::Shape::as_known).with_context(|| {
                format!("input '{name}' has type {ty}: fix its shape with --input-shape {name}=DIMS")
            })?;
            let n: usize = shape.iter().product();
            let t = match ty.dtype {
                DType::F32 => Tensor::from_vec(&shape, (0..n).map(|_| next()).collect::<Vec<f32>>())?,
                other => Tensor::zeros(DType::F32, &shape).cast(other),
            };
            Ok(t)
        })
        .collect()
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 }
}

/// Per node, the median time over the profiled runs.
fn median_profile(runs: Vec<Vec<NodeProfile>>) -> Vec<NodeProfile> {
    let Some(first) = runs.first() else { return Vec::new() };
    let mut result = first.clone();
    for (i, node) in result.iter_mut().enumerate() {
        let mut t: Vec<Duration> = runs.iter().filter_map(|r| r.get(i)).map(|n| n.time).collect();
        t.sort();
        node.time = median(&t);
    }
    result
}

fn gflops(flops: Option<u64>, t: Duration) -> String {
    match flops {
        Some(f) if t > Duration::ZERO => format!("{:.1}", f as f64 / t.as_secs_f64() / 1e9),
        _ => "-".to_string(),
    }
}

fn print_profile(out: &mut dyn Write, nodes: &[NodeProfile], top: usize) -> Result<()> {
    let total: Duration = nodes.iter().map(|n| n.time).sum();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let share = |d: Duration| if total > Duration::ZERO { 100.0 * d.as_secs_f64() / total.as_secs_f64() } else { 0.0 };
    let mut by_op: BTreeMap<&str, (usize, Duration, Option<u64>)> = BTreeMap::new();
    for n in nodes {
        let e = by_op.entry(n.op).or_insert((0, Duration::ZERO, Some(0)));
        e.0 += 1;
        e.1 += n.time;
        e.2 = e.2.zip(n.flops).map(|(a, b)| a + b);
    }
    let mut ops: Vec<_> = by_op.into_iter().collect();
    ops.sort_by_key(|o| std::cmp::Reverse(o.1.1));
    writeln!(out, "\nper operator type (median of each node over the runs; total {:.3} ms):", ms(total))?;
    writeln!(out, "{:<22} {:>6} {:>10} {:>7} {:>9}", "op", "nodes", "ms", "%", "GFLOP/s")?;
    for (op, (count, t, flops)) in &ops {
        writeln!(out, "{op:<22} {count:>6} {:>10.3} {:>6.1}% {:>9}", ms(*t), share(*t), gflops(*flops, *t))?;
    }
    let mut slow: Vec<&NodeProfile> = nodes.iter().collect();
    if top == 0 {
        writeln!(out, "\nevery node, in run order:")?;
    } else {
        slow.sort_by_key(|n| std::cmp::Reverse(n.time));
        slow.truncate(top);
        writeln!(out, "\n{} slowest nodes:", slow.len())?;
    }
    writeln!(out, "{:<32} {:<16} {:<34} {:>9} {:>9}", "node", "op", "kernel", "ms", "GFLOP/s")?;
    for n in &slow {
        writeln!(
            out,
            "{:<32} {:<16} {:<34} {:>9.3} {:>9}",
            truncate(&n.name, 32),
            n.op,
            truncate(&n.kernel, 34),
            ms(n.time),
            gflops(n.flops, n.time)
        )?;
    }
    let reference: usize = nodes.iter().filter(|n| n.kernel == "reference").count();
    writeln!(out, "\n{} of {} nodes ran with the reference kernels", reference, nodes.len())?;
    Ok(())
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let head: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{head}…")
    }
}
