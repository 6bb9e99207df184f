//! `lite-cli quant`: quantize a model (weight-only, or static int8 with calibration data),
//! report the size and the fp32-vs-quantized agreement, write one `.nb`.

use crate::args::{InputShape, parse_input_shape};
use crate::model;
use crate::report::human;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lithe_ir::Graph;
use lithe_nbformat::ModelMeta;
use lithe_passes::PassManager;
use lithe_quant::QuantError;
use lithe_quant::analysis::{
    SkipEvent, SkipRanking, SkipSearch, compare_values, input_specs, quantized_values, suggest_skips_with,
};
use lithe_quant::calib::{CalibAlgo, CalibOptions};
use lithe_quant::data::{CalibSource, Preprocess, open_source};
use lithe_quant::eval::compare;
use lithe_quant::ptq::{Calibration, PtqConfig, calibrate_graph};
use lithe_quant::qat::{ActStrategy, QuantOpType};
use lithe_quant::weight_only::{WeightBits, quantize_weights};
use lithe_train::data::Augment;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `lite-cli quant`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  lite-cli quant -m m.onnx -o m.nb --quant weight-int8\n  \
    lite-cli quant -m m.onnx -o m_int8.nb --quant int8 --calib calib.npy --algo kl --eval eval.npy\n  \
    lite-cli quant -m m.onnx -o m_int8.nb --quant int8 --calib photos/ \
    --preprocess resize=256,crop=224,scale=1/255,mean=0.485:0.456:0.406,std=0.229:0.224:0.225\n  \
    lite-cli quant -m m.onnx -o m_int8.nb --calib calib.npy --eval eval.npy --analyze --target-agreement 0.99\n  \
    lite-cli quant -m m.onnx -o m_int8_qdq.onnx --quant int8 --calib calib.npy   # QDQ ONNX for onnxruntime\n  \
    lite-cli quant -m m.onnx -o m_int8.nb --qat --train-data images.idx,labels.idx --epochs 2 --lr 3e-5 \
    --batch-size 64 --augment shift-batch:2 --eval test-images.idx,test-labels.idx   # quantization-aware training")]
pub struct QuantArgs {
    /// The fp32 model (ONNX or `.nb`); it is optimized first like `lite-cli opt`.
    #[arg(long, short = 'm')]
    pub model: PathBuf,
    /// Where to write the quantized model: one `.nb`, or ONNX when the path ends in `.onnx`
    /// (int8: QDQ, each int8 conv as DequantizeLinear -> Conv -> QuantizeLinear; weight-only:
    /// int8/int16 weights behind DequantizeLinear), which onnxruntime runs.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// `int8` (static, needs `--calib`), `weight-int8` or `weight-int16` (no data needed).
    #[arg(long, default_value = "int8")]
    pub quant: String,
    /// Calibration data: a `.npy` (one input), a `.npz` (one member per input) or an image folder.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Use at most this many calibration batches (all when absent).
    #[arg(long)]
    pub calib_batches: Option<usize>,
    /// Samples per calibration batch.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Activation calibration: abs_max, avg, kl, hist, mse.
    #[arg(long, default_value = "hist")]
    pub algo: CalibAlgo,
    /// Percentile of `--algo hist`.
    #[arg(long)]
    pub hist_percent: Option<f32>,
    /// One weight scale per layer instead of per output channel.
    #[arg(long)]
    pub per_layer: bool,
    /// Shift each quantized node's bias by the mean error its int8 weights cause on the
    /// calibration data (recommended for depthwise-heavy nets such as MobileNets).
    #[arg(long)]
    pub bias_correction: bool,
    /// Keep residual adds in fp32, fused into the conv before them, instead of quantizing
    /// their inputs and running them as int8 adds (onnxruntime's scheme, the default).
    #[arg(long)]
    pub fp32_adds: bool,
    /// Leave nodes whose name matches this pattern (`*` wildcards) in fp32 (repeatable).
    #[arg(long, value_name = "NODE_PATTERN")]
    pub skip: Vec<String>,
    /// Evaluation data (same forms as `--calib`): report fp32-vs-quantized agreement on it.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Use at most this many evaluation samples.
    #[arg(long)]
    pub eval_samples: Option<usize>,
    /// Preprocessing of image folders, e.g. `resize=256,crop=224,scale=1/255,mean=...,std=...`.
    #[arg(long)]
    pub preprocess: Option<Preprocess>,
    /// Fix an input's shape, e.g. `x=1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    pub input_shapes: Vec<InputShape>,
    /// Print each quantized node's output error against fp32 on the `--eval` data (or the
    /// calibration data): cosine similarity and SNR, worst first (cumulative: a node's error
    /// includes everything upstream).
    #[arg(long)]
    pub analyze: bool,
    /// How many rows of `--analyze` to print (0: all).
    #[arg(long, default_value_t = 10)]
    pub analyze_top: usize,
    /// Search which quantized nodes to leave in fp32 so that the top-1 agreement with fp32 on
    /// the `--eval` data (or the calibration data) reaches `--target-agreement`; prints each
    /// step and a `--skip` line to re-run with. Re-quantizes with the calibrated ranges.
    #[arg(long)]
    pub suggest_skips: bool,
    /// The agreement `--suggest-skips` aims for, in [0, 1] (giving it implies --suggest-skips).
    #[arg(long, value_name = "T", value_parser = parse_fraction)]
    pub target_agreement: Option<f64>,
    /// At most this many nodes are added to the suggested skip list.
    #[arg(long, default_value_t = 20)]
    pub max_skip_steps: usize,
    /// Order of the skip search: `cosine` (each node's output cosine, then agreement, when only
    /// it stays fp32: one evaluation per quantized node), `agreement` (the same measurements,
    /// agreement first) or `analysis` (the --analyze order, worst SNR first: one evaluation).
    #[arg(long, default_value = "cosine")]
    pub skip_ranking: SkipRanking,
    /// Threads for calibration and evaluation runs.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Quantization-aware training: fine-tune the model through fake quantization on
    /// `--train-data`, then write the same int8 model as post-training quantization.
    #[arg(long)]
    pub qat: bool,
    /// Labelled training data of `--qat`: `IMAGES,LABELS` (IDX or `.npy` pair), a `.npz`
    /// (`x` and `y`/`labels`) or an image folder; also `--eval` takes these forms with `--qat`
    /// (then the top-1 accuracy of fp32 and int8 is printed).
    #[arg(long, value_name = "DATA")]
    pub train_data: Option<String>,
    /// Passes over `--train-data` (`--qat`).
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// Peak learning rate of `--qat` (Adam, cosine decay to 0).
    #[arg(long, default_value_t = 3e-5)]
    pub lr: f32,
    /// Activation scales of `--qat`: abs_max (each batch's), moving_average_abs_max or range_abs_max.
    #[arg(long, default_value = "moving_average_abs_max")]
    pub act_strategy: ActStrategy,
    /// Weight of the past in moving_average_abs_max.
    #[arg(long, default_value_t = lithe_quant::qat::DEFAULT_MOVING_RATE)]
    pub moving_rate: f32,
    /// Batch maxima kept by range_abs_max.
    #[arg(long, default_value_t = lithe_quant::qat::DEFAULT_WINDOW_SIZE)]
    pub window_size: usize,
    /// Bits of weights and activations with `--qat` (2 to 8).
    #[arg(long, default_value_t = 8)]
    pub bits: u32,
    /// Op families `--qat` quantizes (comma-separated: conv, depthwise_conv, linear).
    #[arg(long, value_delimiter = ',', default_value = "conv,depthwise_conv,linear")]
    pub op_types: Vec<QuantOpType>,
    /// PACT with `--qat`: clip each quantized activation to `[-a, a]` with a trainable `a`
    /// starting at A (20 when no value is given) before its fake quantizer.
    #[arg(long, value_name = "A", num_args = 0..=1, default_missing_value = "20")]
    pub pact: Option<f32>,
    /// Augmentation of the `--qat` training batches: none, shift:N, shift-batch:N, or steps
    /// joined by `+` (crop:P, flip, shift:N), as `lite-cli train --augment`.
    #[arg(long, default_value = "none", value_parser = crate::train::parse_augment)]
    pub augment: Augment,
    /// Seed of the `--qat` batch order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Run `lite-cli quant`.
pub fn run(args: &QuantArgs, out: &mut dyn Write) -> Result<()> {
    let mode = args.quant.trim().to_ascii_lowercase();
    let search = args.suggest_skips || args.target_agreement.is_some();
    if search && mode != "int8" {
        bail!("--suggest-skips and --target-agreement need --quant int8 (a calibrated model)");
    }
    if args.qat && mode != "int8" {
        bail!("--qat writes an int8 model: use it with --quant int8");
    }
    let (mut graph, _) = model::load(&args.model, &args.input_shapes)?;
    let imported = args.qat.then(|| graph.clone());
    let mut optimizer = PassManager::default_pipeline();
    if mode == "int8" && !args.qat && !args.fp32_adds {
        // Residual adds stay separate nodes so that static quantization can quantize them.
        optimizer.disable("fuse_conv_residual")?;
    }
    optimizer.run(&mut graph).with_context(|| format!("cannot optimize '{}'", args.model.display()))?;
    let fp32 = graph.clone();
    let fp32_bytes = lithe_nbformat::write(&fp32, &ModelMeta::default()).context("cannot encode the fp32 model")?.len();
    let mut calibration = None;
    let applied = if let Some(imported) = &imported {
        graph = crate::qat::quantize(args, imported, &fp32, out)?;
        format!("int8-qat-{}", args.act_strategy)
    } else if mode == "int8" {
        let (applied, c) = static_int8(args, &mut graph, out)?;
        calibration = Some(c);
        applied
    } else {
        let bits: WeightBits = mode.parse().context("--quant (int8, weight-int8, weight-int16)")?;
        let r = quantize_weights(&mut graph, bits, 1).context("cannot quantize the weights")?;
        writeln!(out, "{bits}: {} weights and {} biases stored as integers", r.quantized, r.biases)?;
        bits.to_string()
    };
    if args.analyze {
        let data = args.eval.as_ref().or(args.calib.as_ref());
        let Some(data) = data else { bail!("--analyze needs --eval or --calib data") };
        let source = open_data(data, &fp32, args.preprocess.as_ref())?;
        let values = quantized_values(&fp32, &graph);
        let rows =
            compare_values(&fp32, &graph, &values, source.as_ref(), args.batch_size, args.eval_samples, args.threads)
                .context("per-layer analysis")?;
        let take = if args.analyze_top == 0 { rows.len() } else { args.analyze_top.min(rows.len()) };
        writeln!(
            out,
            "per-layer error vs fp32 on {} ({} quantized nodes, worst {take} first):",
            data.display(),
            rows.len()
        )?;
        writeln!(out, "  {:>8}  {:>9}  {:<16} value", "SNR dB", "cosine", "op")?;
        for r in rows.iter().take(take) {
            writeln!(out, "  {:>8.2}  {:>9.6}  {:<16} {}", r.snr_db, r.cosine, r.op, r.value)?;
        }
    }
    // The QDQ graph becomes the int8 one (QConv nodes run by the int8 kernels); evaluation
    // and the written model are that graph.
    PassManager::default_pipeline().run(&mut graph).context("cannot fuse the quantized graph")?;
    if let (Some(eval), false) = (&args.eval, args.qat) {
        let source = open_data(eval, &fp32, args.preprocess.as_ref())?;
        let a = compare(&fp32, &graph, source.as_ref(), args.batch_size, args.eval_samples, args.threads)
            .context("evaluation")?;
        writeln!(
            out,
            "fp32 vs {applied} on {} samples of {}: top-1 agreement {:.4}, max abs error {:.4}, mean abs error {:.5}, cosine {:.6}",
            a.samples,
            eval.display(),
            a.top1_agreement,
            a.max_abs_error,
            a.mean_abs_error,
            a.cosine
        )?;
    }
    let meta = ModelMeta {
        producer: format!("lithe {}", env!("CARGO_PKG_VERSION")),
        source: args.model.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        passes: vec![applied],
        valid_targets: vec!["arm".into(), "x86".into()],
    };
    let format = crate::save::write_model(&args.out, &graph, &meta)?;
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    writeln!(
        out,
        "wrote {} ({format}): {}B ({:.1}% of the fp32 .nb, {}B)",
        args.out.display(),
        human(size),
        100.0 * size as f64 / fp32_bytes.max(1) as f64,
        human(fp32_bytes as u64)
    )?;
    // After writing: the model is there even if the search fails or is interrupted.
    if let (true, Some(calibration)) = (search, &calibration) {
        search_skips(args, &fp32, calibration, out)?;
    }
    Ok(())
}

/// Static int8: calibrate on `--calib` and insert the QDQ pairs.
fn static_int8(args: &QuantArgs, graph: &mut Graph, out: &mut dyn Write) -> Result<(String, Calibration)> {
    let Some(calib) = &args.calib else { bail!("--quant int8 needs calibration data (--calib PATH)") };
    let source = open_data(calib, graph, args.preprocess.as_ref())?;
    let mut calib_options = CalibOptions::default();
    let mut algo = args.algo;
    if let (CalibAlgo::Hist { percent }, Some(p)) = (&mut algo, args.hist_percent) {
        *percent = p;
    }
    calib_options.two_pass = true;
    let config = PtqConfig {
        algo,
        calib: calib_options,
        per_channel: !args.per_layer,
        skip: args.skip.clone(),
        batch_size: args.batch_size.max(1),
        max_samples: args.calib_batches.map(|b| b * args.batch_size.max(1)),
        threads: args.threads,
        bias_correction: args.bias_correction,
        quantize_adds: !args.fp32_adds,
    };
    let total = config.max_samples.unwrap_or(usize::MAX).min(source.len()) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("calibrating (pass {msg}) [{bar:30}] {pos}/{len} samples {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let calibration = calibrate_graph(graph, source.as_ref(), &config, &mut |pass, done| {
        bar.set_message(pass.to_string());
        bar.set_position(done as u64);
    })
    .with_context(|| format!("cannot calibrate on '{}'", calib.display()))?;
    bar.finish_and_clear();
    let report = calibration.apply(graph, &BTreeSet::new()).context("cannot quantize")?;
    writeln!(
        out,
        "int8 ({}, {} weights{}): {} nodes quantized, {} skipped, {} activations calibrated on {} samples",
        config.algo,
        if config.per_channel { "per-channel" } else { "per-layer" },
        if config.bias_correction { ", bias correction" } else { "" },
        report.quantized.len(),
        report.skipped.len(),
        report.ranges.len(),
        report.samples
    )?;
    Ok((format!("int8-{}", config.algo), calibration))
}

/// Candidates listed by `--suggest-skips`.
const RANKING_ROWS: usize = 10;

/// `--suggest-skips`: search the nodes to leave in fp32 and print a `--skip` line.
fn search_skips(args: &QuantArgs, fp32: &Graph, calibration: &Calibration, out: &mut dyn Write) -> Result<()> {
    let data = args.eval.as_ref().or(args.calib.as_ref());
    let Some(data) = data else { bail!("--suggest-skips needs --eval or --calib data") };
    let source = open_data(data, fp32, args.preprocess.as_ref())?;
    let search = SkipSearch {
        target: args.target_agreement.unwrap_or(0.99),
        max_steps: args.max_skip_steps,
        ranking: args.skip_ranking,
        batch_size: args.batch_size.max(1),
        max_samples: args.eval_samples,
        threads: args.threads,
    };
    writeln!(
        out,
        "skip search on {} (target top-1 agreement {}, {} ranking, at most {} steps):",
        data.display(),
        search.target,
        search.ranking,
        search.max_steps
    )?;
    let bar = ProgressBar::new(calibration.nodes.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("measuring sensitivity [{bar:30}] {pos}/{len} nodes {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut written: std::io::Result<()> = Ok(());
    let mut print = |out: &mut dyn Write, line: String| {
        if written.is_ok() {
            written = writeln!(out, "{line}");
        }
    };
    // Candidates are measured after the optimizer, like the written model (Q/DQ fusion).
    let lower = |g: &mut Graph| -> Result<(), QuantError> {
        PassManager::default_pipeline().run(g).map(|_| ()).map_err(|e| QuantError::Run(e.to_string()))
    };
    let result = suggest_skips_with(fp32, calibration, source.as_ref(), &search, &lower, &mut |event| match event {
        SkipEvent::Baseline { agreement, cosine } => {
            print(
                out,
                format!(
                    "  all {} nodes quantized: agreement {agreement:.4}, cosine {cosine:.6}",
                    calibration.nodes.len()
                ),
            );
        }
        SkipEvent::Ranking { done, .. } => bar.set_position(done as u64),
        SkipEvent::Ranked(ranking) => {
            bar.finish_and_clear();
            if !ranking.is_empty() {
                print(out, format!("  candidates, most promising first ({} ranking):", search.ranking));
            }
            for r in ranking.iter().take(RANKING_ROWS) {
                let how = match (r.agreement, r.cosine, r.snr_db) {
                    (Some(a), Some(c), _) => format!("agreement {a:.4}, cosine {c:.6} with only this node in fp32"),
                    (_, _, Some(snr)) => format!("output SNR {snr:.2} dB"),
                    _ => "not in the analysis".to_string(),
                };
                print(out, format!("    {:<32} {:<16} {} -> {}", r.node, r.op, how, r.value));
            }
            if ranking.len() > RANKING_ROWS {
                print(out, format!("    ... {} more", ranking.len() - RANKING_ROWS));
            }
        }
        SkipEvent::Step(s) => print(
            out,
            format!(
                "  {} {:<32} skips {:>3}: agreement {:.4}, cosine {:.6}",
                if s.added { "skip    " } else { "quantize" },
                s.node,
                s.skips,
                s.agreement,
                s.cosine
            ),
        ),
    });
    bar.finish_and_clear();
    written?;
    let s = result.context("skip search")?;
    if s.skips.is_empty() && s.reached {
        writeln!(out, "no skips needed: agreement {:.4} on {} samples", s.agreement, s.samples)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} {} of {} nodes in fp32: agreement {:.4} on {} samples (target {}{})",
        if s.reached { "reached with" } else { "NOT reached; best found with" },
        s.skips.len(),
        calibration.nodes.len(),
        s.agreement,
        s.samples,
        search.target,
        if s.reached { "" } else { ": raise --max-skip-steps or lower the target" }
    )?;
    let mut all: Vec<String> = args.skip.clone();
    all.extend(s.skips.iter().cloned());
    let line: Vec<String> = all.iter().map(|n| format!("--skip {}", shell_quote(n))).collect();
    writeln!(out, "suggested: {}", line.join(" "))?;
    Ok(())
}

/// `s` as one shell word (single-quoted unless it is plain).
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:=+,@%".contains(c));
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', "'\\''")) }
}

/// A number in [0, 1].
fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("{v} is not in [0, 1]")) }
}

/// Open `path` as data for `graph`'s inputs (`.npy`, `.npz` or an image folder).
pub(crate) fn open_data(path: &Path, graph: &Graph, preprocess: Option<&Preprocess>) -> Result<Box<dyn CalibSource>> {
    if !path.exists() {
        bail!("cannot open '{}': no such file or folder", path.display());
    }
    open_source(path, &input_specs(graph), preprocess).with_context(|| format!("cannot open '{}'", path.display()))
}

#[cfg(test)]
mod tests {
    use super::{parse_fraction, shell_quote};

    #[test]
    fn skip_names_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(shell_quote("/features.1/conv/Conv"), "/features.1/conv/Conv");
        assert_eq!(shell_quote("conv 1"), "'conv 1'");
        assert_eq!(shell_quote("a*b"), "'a*b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn target_agreements_are_fractions() {
        assert_eq!(parse_fraction("0.95"), Ok(0.95));
        assert_eq!(parse_fraction("1"), Ok(1.0));
        assert!(parse_fraction("1.5").unwrap_err().contains("not in [0, 1]"));
        assert!(parse_fraction("-0.1").is_err());
        assert!(parse_fraction("NaN").is_err());
        assert!(parse_fraction("x").unwrap_err().contains("not a number"));
    }
}
