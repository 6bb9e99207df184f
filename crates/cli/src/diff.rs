//! `lite-cli diff A B --input DATA`: run two models (ONNX or `.nb`) on the same data and report,
//! for every f32 value they share by name, how far B's value is from A's (cosine, SNR, max abs
//! error, worst first), then how their graph outputs differ (top-1 agreement when the output
//! looks like class scores).

use crate::args::{InputShape, parse_input_shape};
use crate::model;
use crate::quant::open_data;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use lithe_ir::Graph;
use lithe_passes::PassManager;
use lithe_quant::analysis::{check_same_inputs, diff_models};
use lithe_quant::data::Preprocess;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `lite-cli diff`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Values are paired by name: quantization keeps the fp32 names (its own `.quantize`/\
    `.dequantize` values have no counterpart), so an fp32 model and its quantized `.nb` pair up.\n\n\
    Examples:\n  lite-cli diff m.onnx m_int8.nb --input eval.npy --optimize\n  \
    lite-cli diff v1.onnx v2.onnx --input photos/ --preprocess resize=256,crop=224,scale=1/255 --top 20")]
pub struct DiffArgs {
    /// The reference model (ONNX or `.nb`).
    pub a: PathBuf,
    /// The model compared with it (ONNX or `.nb`), with the same inputs.
    pub b: PathBuf,
    /// Data to run both on: a `.npy` (one input), a `.npz` (one member per input) or an image
    /// folder (see --preprocess).
    #[arg(long, short = 'i', value_name = "DATA")]
    pub input: PathBuf,
    /// How many values to list, worst first (0: all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Use at most this many samples of the data.
    #[arg(long)]
    pub samples: Option<usize>,
    /// Samples per run.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Optimize ONNX models like `lite-cli opt` and `quant` do first (BN folded, activations
    /// fused), so that their value names line up with a `.nb` those commands wrote.
    #[arg(long)]
    pub optimize: bool,
    /// Preprocessing of image folders, e.g. `resize=256,crop=224,scale=1/255,mean=...,std=...`.
    #[arg(long)]
    pub preprocess: Option<Preprocess>,
    /// Fix an input's shape in both models, e.g. `x=1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    pub input_shapes: Vec<InputShape>,
    /// Predictor threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

fn load(path: &Path, args: &DiffArgs) -> Result<Graph> {
    let (mut g, meta) = model::load(path, &args.input_shapes)?;
    if args.optimize && meta.is_none() {
        PassManager::default_pipeline().run(&mut g).with_context(|| format!("cannot optimize '{}'", path.display()))?;
    }
    Ok(g)
}

/// Run `lite-cli diff`.
pub fn run(args: &DiffArgs, out: &mut dyn Write) -> Result<()> {
    let a = load(&args.a, args)?;
    let b = load(&args.b, args)?;
    check_same_inputs(&a, &b).with_context(|| format!("'{}' and '{}'", args.a.display(), args.b.display()))?;
    let source = open_data(&args.input, &a, args.preprocess.as_ref())?;
    let total = args.samples.unwrap_or(usize::MAX).min(source.len());
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("running both models [{bar:30}] {pos}/{len} samples {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let d = diff_models(&a, &b, source.as_ref(), args.batch_size.max(1), args.samples, args.threads, &mut |done| {
        bar.set_position(done as u64)
    })
    .with_context(|| format!("cannot compare '{}' and '{}'", args.a.display(), args.b.display()));
    bar.finish_and_clear();
    let d = d?;
    let m = &d.matching;
    writeln!(
        out,
        "A = {}, B = {}: {} samples of {}",
        args.a.display(),
        args.b.display(),
        d.samples,
        args.input.display()
    )?;
    writeln!(
        out,
        "{} values matched by name, {} only in A, {} only in B, {} with different types",
        m.pairs.len(),
        m.only_a.len(),
        m.only_b.len(),
        m.mismatched.len()
    )?;
    if !d.values.is_empty() {
        let take = if args.top == 0 { d.values.len() } else { args.top.min(d.values.len()) };
        writeln!(out, "per-value error of B against A (worst {take} of {} first):", d.values.len())?;
        writeln!(out, "  {:>8}  {:>9}  {:>12}  {:<16} value", "SNR dB", "cosine", "max abs err", "op")?;
        for r in d.values.iter().take(take) {
            writeln!(
                out,
                "  {:>8.2}  {:>9.6}  {:>12.6}  {:<16} {}",
                r.snr_db, r.cosine, r.max_abs_error, r.op, r.value
            )?;
        }
    }
    writeln!(out, "outputs:")?;
    for o in &d.outputs {
        let top1 = o.top1_agreement.map(|t| format!("top-1 agreement {t:.4}, ")).unwrap_or_default();
        writeln!(
            out,
            "  {}: {top1}max abs error {:.6}, mean abs error {:.6}, cosine {:.6}, SNR {:.2} dB",
            o.name, o.max_abs_error, o.mean_abs_error, o.cosine, o.snr_db
        )?;
    }
    Ok(())
}
