//! `lite-cli quant --qat`: quantization-aware fine-tuning of an fp32 model, converted to the
//! int8 graph `lite-cli quant --quant int8` writes.

use crate::quant::{QuantArgs, open_data};
use crate::train::load_data;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lithe_ir::Graph;
use lithe_quant::data::CalibSource;
use lithe_quant::eval::compare;
use lithe_quant::qat::{ActStrategy, LabelledSource, QatConfig, QatModel, QatTrainOptions};
use lithe_train::data::{Dataset, Preprocess};
use std::io::Write;
use std::time::Instant;

/// The settings `--act-strategy`, `--moving-rate` and `--window-size` give.
fn strategy(args: &QuantArgs) -> ActStrategy {
    match args.act_strategy {
        ActStrategy::MovingAverageAbsMax { .. } => ActStrategy::MovingAverageAbsMax { moving_rate: args.moving_rate },
        ActStrategy::RangeAbsMax { .. } => ActStrategy::RangeAbsMax { window_size: args.window_size },
        s => s,
    }
}

/// The input name of a single-input classifier.
fn input_name(graph: &Graph) -> Result<String> {
    match graph.inputs() {
        [id] => Ok(graph.node(*id).name.clone()),
        ins => bail!("--qat trains single-input classifiers; '{}' has {} inputs", graph.name, ins.len()),
    }
}

/// A labelled evaluation set (`IMAGES,LABELS`, `.npz`, image folder), else `None` for data
/// without labels (a lone `.npy`), which is compared with fp32 only.
fn labelled(spec: &str) -> Option<Result<Dataset>> {
    let p = std::path::Path::new(spec);
    let has_labels = spec.contains(',') || p.is_dir() || p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    has_labels.then(|| load_data(spec, "--eval", &Preprocess::default()))
}

/// Prepare `imported` (the fp32 model as loaded), fine-tune it on `--train-data`, report the
/// accuracy of the int8 model against `fp32` (the optimized fp32 model) on `--eval`, and
/// return the converted QDQ graph.
pub fn quantize(args: &QuantArgs, imported: &Graph, fp32: &Graph, out: &mut dyn Write) -> Result<Graph> {
    if args.bias_correction || args.suggest_skips || args.target_agreement.is_some() {
        bail!("--qat does not combine with --bias-correction, --suggest-skips or --target-agreement");
    }
    let Some(spec) = &args.train_data else { bail!("--qat needs labelled training data (--train-data)") };
    let train = load_data(spec, "--train-data", &Preprocess::default())?;
    let name = input_name(imported)?;
    let config = QatConfig {
        act_strategy: strategy(args),
        per_channel: !args.per_layer,
        bits: args.bits,
        skip: args.skip.clone(),
        op_types: args.op_types.clone(),
        calib_batch_size: args.batch_size.max(1),
        calib_samples: args.calib_batches.map(|b| b * args.batch_size.max(1)).or(Some(1024)),
        pact: args.pact,
        ..QatConfig::default()
    };
    let train_source = LabelledSource::new(&train, name.clone());
    let own;
    let calib: &dyn CalibSource = match &args.calib {
        Some(path) => {
            own = open_data(path, imported, args.preprocess.as_ref())?;
            own.as_ref()
        }
        None => &train_source,
    };
    let bar = ProgressBar::new(config.calib_samples.unwrap_or(usize::MAX).min(calib.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("zero points [{bar:30}] {pos}/{len} samples {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut qat = QatModel::prepare(imported, calib, &config, &mut |done| bar.set_position(done as u64))
        .context("cannot prepare quantization-aware training")?;
    bar.finish_and_clear();
    writeln!(
        out,
        "qat ({} activations, {} weights, {} bits): {} nodes fake-quantized, {} left in fp32",
        config.act_strategy,
        if config.per_channel { "per-channel" } else { "per-layer" },
        config.bits,
        qat.quantized().len(),
        qat.skipped().len()
    )?;
    let options = QatTrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size.max(1),
        lr: args.lr,
        seed: args.seed,
        augment: args.augment,
        max_steps: None,
    };
    let per_epoch = train.len().div_ceil(options.batch_size);
    let bar = ProgressBar::new((per_epoch * options.epochs) as u64);
    bar.set_style(
        ProgressStyle::with_template("training [{bar:30}] {pos}/{len} steps {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let epochs = qat
        .train(&train, &options, &mut |epoch, _, _, loss| {
            bar.inc(1);
            bar.set_message(format!("epoch {epoch} loss {loss:.4}"));
        })
        .context("quantization-aware training")?;
    bar.finish_and_clear();
    for (value, alpha) in qat.pact_alphas() {
        tracing::info!(value, alpha, "PACT clip after training");
    }
    for e in &epochs {
        writeln!(out, "  epoch {}: {} steps, mean loss {:.4}", e.epoch, e.steps, e.loss)?;
    }
    writeln!(
        out,
        "trained {} epochs on {} samples in {:.1} s (batch {}, lr {})",
        epochs.len(),
        train.len(),
        start.elapsed().as_secs_f64(),
        options.batch_size,
        options.lr
    )?;
    let qdq = qat.convert().context("cannot convert the trained model")?;
    if let Some(eval) = &args.eval {
        let spec = eval.to_string_lossy();
        let int8 = qat.convert_int8().context("cannot fuse the converted model")?;
        let (a, labels) = match labelled(&spec) {
            Some(data) => {
                let data = data?;
                let source = LabelledSource::new(&data, name.clone());
                let a = compare(fp32, &int8, &source, args.batch_size.max(1), args.eval_samples, args.threads)
                    .context("evaluation")?;
                (a, Some(source.labels().to_vec()))
            }
            None => {
                let source = open_data(eval, fp32, args.preprocess.as_ref())?;
                let a = compare(fp32, &int8, source.as_ref(), args.batch_size.max(1), args.eval_samples, args.threads)
                    .context("evaluation")?;
                (a, None)
            }
        };
        writeln!(
            out,
            "fp32 vs qat int8 on {} samples of {spec}: top-1 agreement {:.4}, max abs error {:.4}, cosine {:.6}",
            a.samples, a.top1_agreement, a.max_abs_error, a.cosine
        )?;
        if let Some(labels) = labels {
            let (acc32, acc8) = a.accuracy(&labels);
            writeln!(out, "top-1 accuracy: fp32 {:.2}%, qat int8 {:.2}%", 100.0 * acc32, 100.0 * acc8)?;
        }
    }
    Ok(qdq)
}
