//! `lite-cli train`: train a classifier (an ONNX or `.nb` model, or a built-in MNIST net) with
//! `lithe-train`: a progress bar per epoch with the running loss and accuracy, validation
//! top-1/top-5 and loss after each epoch, a checkpoint per epoch, the final model as `.nb`
//! (optimized for inference) or ONNX.

use crate::report::human;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lithe_ir::{Dim, Graph, Op, Outlet, Tensor};
use lithe_nbformat::ModelMeta;
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use lithe_train::checkpoint::{self, TrainState};
use lithe_train::data::{Augment, AugmentSteps, Batches, Dataset, Metrics, MetricsSum, Preprocess};
use lithe_train::models::{self, Init};
use lithe_train::optim::OptimizerKind;
use lithe_train::schedule::{Decay, Schedule};
use lithe_train::{Trainer, TrainerConfig, glob_match};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `lite-cli train`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Data: an IDX pair as IMAGES,LABELS (MNIST files: u8 pixels scaled to [0, 1]), a .npy pair \
    as SAMPLES.npy,LABELS.npy (samples stacked on axis 0, integer labels), a .npz with members x and y \
    (or labels), or an image folder with one sub-folder per class (see --preprocess). Samples are used \
    as stored: scale .npy/.npz values as the model expects.\n\n\
    Checkpoints (--checkpoint-dir DIR): DIR/epoch-NNN.nb after each epoch, the training graph as it is \
    (batch norm with its running statistics; `lite-cli run` runs it), DIR/epoch-NNN.state (epochs and \
    steps done) and DIR/epoch-NNN.optim (the optimizer's moments). `--model DIR/epoch-NNN.nb` resumes: \
    --epochs is the total, the schedule and the moments continue where they stopped.\n\n\
    Examples:\n  lite-cli train -m builtin:lenet_bn --train-data train-images-idx3-ubyte,train-labels-idx1-ubyte \\\n    \
    --val-data t10k-images-idx3-ubyte,t10k-labels-idx1-ubyte --epochs 8 --lr 2e-3 --weight-decay 1e-4 \\\n    \
    --schedule cosine --augment shift-batch:2 --checkpoint-dir ckpt -o lenet.nb\n  \
    lite-cli train -m ckpt/epoch-004.nb --train-data x.npy,y.npy --epochs 8 --schedule cosine -o lenet.onnx")]
pub struct TrainArgs {
    /// The model: an ONNX or `.nb` file (a checkpoint resumes), or `builtin:lenet_bn` /
    /// `builtin:dwsep` (the MNIST nets, randomly initialized with --seed).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: String,
    /// Training data: IMAGES,LABELS (IDX pair), SAMPLES.npy,LABELS.npy, DATA.npz or an image
    /// folder.
    #[arg(long, value_name = "DATA")]
    pub train_data: String,
    /// Validation data (same forms); evaluated after each epoch.
    #[arg(long, value_name = "DATA")]
    pub val_data: Option<String>,
    /// Train on the first N training samples only.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Validate on the first N validation samples only.
    #[arg(long, value_name = "N")]
    pub val_limit: Option<usize>,
    /// Total epochs (a resumed run trains the epochs after its checkpoint's).
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Samples per optimizer step.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// The update rule.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// SGD with Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (L2 for sgd and adam, decoupled for adamw).
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Learning-rate schedule: `constant`, `step:N:GAMMA` (times GAMMA every N steps) or
    /// `cosine` (to 0 over all steps).
    #[arg(long, default_value = "constant", value_parser = parse_schedule)]
    pub schedule: ScheduleArg,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: usize,
    /// Clip the global gradient norm to this value.
    #[arg(long, value_name = "NORM")]
    pub clip_norm: Option<f32>,
    /// Label smoothing of the cross-entropy loss (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f32,
    /// Leave constants whose name matches this glob (`*`, `?`) untrained (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub freeze: Vec<String>,
    /// Augmentation: `none`, `shift:N` (a random shift of up to N pixels per sample, zero
    /// fill), `shift-batch:N` (one shift per batch), or per-sample steps joined by `+`:
    /// `crop:P` (pad by P, crop back at a random offset), `flip` (horizontal), `shift:N`.
    #[arg(long, default_value = "none", value_parser = parse_augment)]
    pub augment: Augment,
    /// Seed of the built-in models' initialization, the shuffling and the augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Preprocessing of image-folder data (comma-separated key=value: resize, crop, mean, std,
    /// scale, order, layout; e.g. `scale=1/255,order=gray`); the crop defaults to the model
    /// input's size.
    #[arg(long, default_value = "", value_name = "SPEC")]
    pub preprocess: String,
    /// Threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: Option<u64>,
    /// Write a checkpoint (training form `.nb`, `.state` and `.optim` files) here after each
    /// epoch.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Also export each checkpoint as `DIR/epoch-NNN.onnx` (resumable like the `.nb`: the same
    /// `.state` and `.optim` files apply).
    #[arg(long, requires = "checkpoint_dir")]
    pub checkpoint_onnx: bool,
    /// The trained model: `.nb` (optimized for inference: batch norm folded, activations
    /// fused) or `.onnx` (the training graph, batch norm as BatchNormalization).
    #[arg(long, short = 'o', value_name = "OUT")]
    pub out: PathBuf,
    /// Write the `.nb` output in its training form, without the optimization passes (so it can
    /// be trained further).
    #[arg(long)]
    pub no_optimize: bool,
}

/// `--optimizer`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerArg {
    /// SGD with --momentum (0 for none), --nesterov and L2 --weight-decay.
    Sgd,
    /// Adam (torch's defaults) with L2 --weight-decay.
    Adam,
    /// AdamW: Adam with decoupled --weight-decay.
    Adamw,
}

/// `--schedule`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScheduleArg {
    /// The peak rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Steps between drops.
        every: usize,
        /// Factor per drop.
        gamma: f32,
    },
    /// Cosine to 0 over every step of the run.
    Cosine,
}

/// Parse `constant`, `step:N:GAMMA` or `cosine`.
pub fn parse_schedule(s: &str) -> Result<ScheduleArg, String> {
    match s.split(':').collect::<Vec<_>>().as_slice() {
        ["constant"] => Ok(ScheduleArg::Constant),
        ["cosine"] => Ok(ScheduleArg::Cosine),
        ["step", n, g] => {
            let every =
                n.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| format!("'{n}' is not a step count"))?;
            let gamma = g.parse::<f32>().map_err(|_| format!("'{g}' is not a factor"))?;
            Ok(ScheduleArg::Step { every, gamma })
        }
        _ => Err(format!("expected constant, step:N:GAMMA or cosine, got '{s}'")),
    }
}

/// Parse `none`, `shift:N`, `shift-batch:N`, or per-sample steps separated by `+`:
/// `crop:P` (pad by P, crop back at random), `flip` (horizontal, p = 1/2), `shift:N`.
pub fn parse_augment(s: &str) -> Result<Augment, String> {
    let count = |n: &str| n.parse::<usize>().map_err(|_| format!("'{n}' in '{s}' is not a pixel count"));
    if s == "none" {
        return Ok(Augment::None);
    }
    if let Some(n) = s.strip_prefix("shift-batch:") {
        return Ok(Augment::ShiftBatch { max: count(n)? });
    }
    if let Some(n) = s.strip_prefix("shift:").filter(|n| !n.contains('+')) {
        return Ok(Augment::Shift { max: count(n)? });
    }
    let mut steps = AugmentSteps::default();
    for part in s.split('+') {
        match part.split_once(':') {
            None if part == "flip" => steps.flip = true,
            Some(("crop", n)) => steps.crop_padding = count(n)?,
            Some(("shift", n)) => steps.shift = count(n)?,
            _ => {
                return Err(format!(
                    "'{part}' in '{s}': expected none, shift:N, shift-batch:N or steps joined by + (crop:P, flip, shift:N)"
                ));
            }
        }
    }
    Ok(Augment::Steps(steps))
}

/// Load a dataset: `A,B` (an IDX pair, or a `.npy` pair), a `.npz` archive (members `x` and
/// `y` or `labels`), or an image folder (one sub-folder per class) decoded with `pre`.
pub fn load_data(spec: &str, what: &str, pre: &Preprocess) -> Result<Dataset> {
    let d = if let Some((a, b)) = spec.split_once(',') {
        let (a, b) = (Path::new(a.trim()), Path::new(b.trim()));
        for p in [a, b] {
            if !p.is_file() {
                bail!("{what}: cannot read '{}': no such file", p.display());
            }
        }
        let is_npy = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
        if is_npy(a) && is_npy(b) { Dataset::from_npy(a, b) } else { Dataset::from_idx(a, b) }
    } else {
        let p = Path::new(spec);
        if p.is_dir() {
            Dataset::from_image_folder(p, pre).map(|(d, _classes)| d)
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")) {
            if !p.is_file() {
                bail!("{what}: cannot read '{spec}': no such file");
            }
            Dataset::from_npz(p, None, None)
        } else if !p.exists() {
            bail!("{what}: cannot read '{spec}': no such file or folder");
        } else {
            bail!(
                "{what} '{spec}': give an IDX pair as IMAGES,LABELS, a .npy pair as SAMPLES.npy,LABELS.npy, \
                 a .npz or an image folder"
            );
        }
    };
    let d = d.with_context(|| format!("cannot load {what} '{spec}'"))?;
    if d.is_empty() {
        bail!("{what} '{spec}' holds no samples");
    }
    Ok(d)
}

/// `--preprocess` for image folders, its crop defaulting to the model input's height and width.
fn preprocess_for(graph: &Graph, spec: &str) -> Result<Preprocess> {
    let mut pre: Preprocess = spec.parse().context("--preprocess")?;
    if pre.crop.is_none() && pre.resize.is_none() {
        let input = graph.value(Outlet::new(graph.inputs()[0], 0));
        let dims = input.ty.shape.as_ref().map(|s| s.dims().to_vec()).unwrap_or_default();
        if let [.., Dim::Known(h), Dim::Known(w)] = dims.as_slice() {
            pre.crop = Some((*h as u32, *w as u32));
        }
    }
    Ok(pre)
}

/// The starting model and, for a checkpoint, where its run stood.
fn load_model(spec: &str, seed: u64) -> Result<(Graph, Option<TrainState>)> {
    match spec.strip_prefix("builtin:") {
        Some("lenet_bn") => Ok((models::lenet_bn(seed, Init::TorchDefault)?, None)),
        Some("dwsep") => Ok((models::dwsep(seed, Init::TorchDefault)?, None)),
        Some(other) => bail!("unknown built-in model '{other}' (builtin:lenet_bn or builtin:dwsep)"),
        None => {
            let path = Path::new(spec);
            let g = checkpoint::load_model(path).with_context(|| format!("cannot load model '{spec}'"))?;
            let state = TrainState::load(path)?;
            Ok((g, state))
        }
    }
}

/// The model's input shape after the batch dim and its class count, checked against the data.
fn check_data(graph: &Graph, data: &Dataset, spec: &str) -> Result<()> {
    let input = graph.value(Outlet::new(graph.inputs()[0], 0));
    if let Some(shape) = &input.ty.shape {
        let dims = shape.dims();
        let fits = dims.len() == data.sample_shape.len() + 1
            && dims[1..].iter().zip(&data.sample_shape).all(|(d, &s)| !matches!(d, Dim::Known(k) if *k != s));
        if !fits {
            bail!(
                "'{spec}' has samples of shape {:?}; the model's input '{}' is {shape}",
                data.sample_shape,
                input.name
            );
        }
    }
    let logits = graph.value(graph.outputs()[0]);
    let classes = logits.ty.shape.as_ref().and_then(|s| s.dims().last().and_then(Dim::known));
    let top = data.labels.iter().copied().max().unwrap_or(0);
    if let Some(c) = classes
        && top >= c
    {
        bail!("'{spec}' has label {top}; the model's output '{}' has {c} classes", logits.name);
    }
    Ok(())
}

/// Every `--freeze` glob must match some constant (a typo would silently train everything).
fn check_freeze(graph: &Graph, globs: &[String]) -> Result<()> {
    let names: Vec<&str> = graph
        .node_ids()
        .into_iter()
        .filter(|&id| matches!(graph.node(id).op, Op::Const(_)))
        .map(|id| graph.node(id).name.as_str())
        .collect();
    for g in globs {
        if !names.iter().any(|n| glob_match(g, n)) {
            let some: Vec<&str> = names.iter().take(6).copied().collect();
            bail!("--freeze '{g}' matches no constant of the model (constants: {}, ...)", some.join(", "));
        }
    }
    Ok(())
}

fn optimizer(a: &TrainArgs) -> OptimizerKind {
    match a.optimizer {
        OptimizerArg::Sgd => {
            OptimizerKind::Sgd { momentum: a.momentum, nesterov: a.nesterov, weight_decay: a.weight_decay }
        }
        OptimizerArg::Adam => OptimizerKind::adam(a.weight_decay),
        OptimizerArg::Adamw => OptimizerKind::adamw(a.weight_decay),
    }
}

fn schedule(a: &TrainArgs, total_steps: usize) -> Schedule {
    let decay = match a.schedule {
        ScheduleArg::Constant => Decay::Constant,
        ScheduleArg::Step { every, gamma } => Decay::Step { every, gamma },
        ScheduleArg::Cosine => Decay::Cosine { total: total_steps, min_lr: 0.0 },
    };
    Schedule { base_lr: a.lr, warmup: a.warmup_steps, decay }
}

/// Loss, top-1 and top-5 over a dataset in eval mode.
fn evaluate(trainer: &Trainer, data: &Dataset, batch: usize) -> Result<Metrics> {
    let mut sum = MetricsSum::default();
    for (x, labels) in Batches::new(data, batch, None, Augment::None) {
        sum.add(&trainer.predict(x)?.view(), &labels)?;
    }
    Ok(sum.metrics())
}

/// Run `lite-cli train`.
pub fn run(args: &TrainArgs, out: &mut dyn Write) -> Result<()> {
    if let Some(t) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(t as usize).build_global().context("--threads")?;
    }
    let (graph, state) = load_model(&args.model, args.seed)?;
    let pre = preprocess_for(&graph, &args.preprocess)?;
    let train = load_data(&args.train_data, "--train-data", &pre)?;
    let train = args.train_limit.map_or(train.clone(), |n| train.take(n));
    let val = match &args.val_data {
        Some(spec) => {
            let d = load_data(spec, "--val-data", &pre)?;
            Some((args.val_limit.map_or(d.clone(), |n| d.take(n)), spec.as_str()))
        }
        None => None,
    };
    let classes = graph
        .value(graph.outputs()[0])
        .ty
        .shape
        .as_ref()
        .and_then(|s| s.dims().last().and_then(Dim::known))
        .unwrap_or(0);
    check_data(&graph, &train, &args.train_data)?;
    if let Some((v, spec)) = &val {
        check_data(&graph, v, spec)?;
    }
    check_freeze(&graph, &args.freeze)?;
    let batch = args.batch_size as usize;
    let per_epoch = train.len().div_ceil(batch);
    let config = TrainerConfig {
        freeze: args.freeze.clone(),
        optimizer: optimizer(args),
        schedule: schedule(args, args.epochs * per_epoch),
        clip_norm: args.clip_norm,
        label_smoothing: args.label_smoothing,
        seed: args.seed,
        ..TrainerConfig::default()
    };
    let mut trainer = Trainer::new(graph, config).with_context(|| format!("cannot train '{}'", args.model))?;
    let fused = trainer.graph().node_ids().into_iter().any(|id| match &trainer.graph().node(id).op {
        Op::Conv(a) => !a.epilogue.is_empty(),
        op => Op::pass_only_names().contains(&op.name()),
    });
    let start_epoch = state.as_ref().map_or(0, |s| s.epoch);
    if let Some(s) = &state {
        trainer.resume_at(s.steps);
        writeln!(out, "resuming {} after epoch {} ({} steps)", args.model, s.epoch, s.steps)?;
    }
    if !args.model.starts_with("builtin:") {
        let model = Path::new(&args.model);
        let optim = checkpoint::optimizer_path(model);
        let restored = checkpoint::load_optimizer(&mut trainer, model).with_context(|| {
            format!("cannot restore the optimizer state (delete '{}' to start with fresh moments)", optim.display())
        })?;
        if restored {
            writeln!(out, "optimizer state restored from {}", optim.display())?;
        } else if state.is_some() {
            writeln!(out, "no optimizer state next to the checkpoint: the moments start afresh")?;
        }
    }
    writeln!(
        out,
        "training {}: {} trainable tensors, {} parameters; {} training samples{}; batch {batch}, {} steps per epoch, \
         {}, {} threads",
        args.model,
        trainer.params().len(),
        human(trainer.params().num_scalars(trainer.graph()) as u64),
        train.len(),
        val.as_ref().map(|(v, _)| format!(", {} validation samples", v.len())).unwrap_or_default(),
        per_epoch,
        trainer_summary(args),
        rayon::current_num_threads()
    )?;
    if start_epoch >= args.epochs {
        writeln!(out, "the checkpoint is at epoch {start_epoch} of --epochs {}: nothing to train", args.epochs)?;
    }
    if let Some(dir) = &args.checkpoint_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create checkpoint directory '{}'", dir.display()))?;
    }
    let source = Path::new(&args.model).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    for epoch in start_epoch..args.epochs {
        let t0 = Instant::now();
        let bar = ProgressBar::new(per_epoch as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, args.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let shuffle = args.seed.wrapping_add(epoch as u64);
        for (x, labels) in Batches::new(&train, batch, Some(shuffle), args.augment) {
            let step = trainer.steps();
            let s = trainer.step(x, &labels).map_err(|e| {
                let hint = if fused { " (the model was optimized for inference: train a checkpoint, an ONNX output or a --no-optimize .nb)" } else { "" };
                anyhow::Error::from(e).context(format!("epoch {}, step {step}{hint}", epoch + 1))
            })?;
            if !s.loss.is_finite() {
                bail!(
                    "epoch {}, step {}: the loss is {} (lower --lr or set --clip-norm)",
                    epoch + 1,
                    trainer.steps(),
                    s.loss
                );
            }
            loss_sum += s.loss as f64 * labels.len() as f64;
            correct += s.correct;
            seen += labels.len();
            bar.set_message(format!(
                "loss {:.4} acc {:.1}%",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64
            ));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let dt = t0.elapsed().as_secs_f64();
        let mut line = format!(
            "epoch {}/{}: train loss {:.4} acc {:.2}% ({:.1} s, {:.0} samples/s)",
            epoch + 1,
            args.epochs,
            loss_sum / seen.max(1) as f64,
            100.0 * correct as f64 / seen.max(1) as f64,
            dt,
            seen as f64 / dt.max(1e-9)
        );
        if let Some((v, _)) = &val {
            let e = evaluate(&trainer, v, batch.max(64))?;
            line += &format!("; val loss {:.4} top-1 {:.2}%", e.loss, 100.0 * e.top1);
            if classes > 5 {
                line += &format!(" top-5 {:.2}%", 100.0 * e.top5);
            }
        }
        if let Some(dir) = &args.checkpoint_dir {
            let path = dir.join(format!("epoch-{:03}.nb", epoch + 1));
            checkpoint::save_nb(trainer.graph(), &path, &source)?;
            TrainState { epoch: epoch + 1, steps: trainer.steps() }.save(&path)?;
            checkpoint::save_optimizer(&trainer, &path)?;
            if args.checkpoint_onnx {
                checkpoint::save_onnx(trainer.graph(), &path.with_extension("onnx"))?;
            }
            line += &format!("; checkpoint {}", path.display());
        }
        tracing::info!("{line}");
        writeln!(out, "{line}")?;
    }
    write_output(args, trainer.graph(), val.as_ref().map(|(v, _)| v), &source, out)
}

/// The optimizer and schedule in one line.
fn trainer_summary(a: &TrainArgs) -> String {
    let opt = match a.optimizer {
        OptimizerArg::Sgd => format!("sgd (momentum {}{})", a.momentum, if a.nesterov { ", nesterov" } else { "" }),
        OptimizerArg::Adam => "adam".to_string(),
        OptimizerArg::Adamw => "adamw".to_string(),
    };
    let schedule = match a.schedule {
        ScheduleArg::Constant => "constant".to_string(),
        ScheduleArg::Step { every, gamma } => format!("x{gamma} every {every} steps"),
        ScheduleArg::Cosine => "cosine".to_string(),
    };
    let warmup = if a.warmup_steps > 0 { format!(" after {} warm-up steps", a.warmup_steps) } else { String::new() };
    format!("{opt}, lr {} {schedule}{warmup}, weight decay {}", a.lr, a.weight_decay)
}

/// Write the trained model: ONNX as trained, `.nb` optimized (unless --no-optimize) and
/// checked against the training graph on up to 64 validation samples.
fn write_output(
    args: &TrainArgs,
    trained: &Graph,
    val: Option<&Dataset>,
    source: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let dest = &args.out;
    if crate::save::is_onnx(dest) {
        checkpoint::save_onnx(trained, dest).with_context(|| format!("cannot write '{}'", dest.display()))?;
        writeln!(out, "wrote {} (ONNX, training graph)", dest.display())?;
        return Ok(());
    }
    let mut graph = trained.clone();
    let mut passes = Vec::new();
    if !args.no_optimize {
        let report = PassManager::default_pipeline().run(&mut graph).context("cannot optimize the trained model")?;
        passes = report.applied();
        if let Some(v) = val {
            let diff = max_abs_diff(trained, &graph, &v.take(64))?;
            writeln!(
                out,
                "optimized for inference ({}): max abs logit difference {diff:.2e} on {} validation samples",
                passes.join(", "),
                v.len().min(64)
            )?;
        }
    }
    let meta = ModelMeta {
        producer: format!("lithe {} (lite-cli train)", env!("CARGO_PKG_VERSION")),
        source: source.to_string(),
        passes,
        valid_targets: Vec::new(),
    };
    crate::save::write_model(dest, &graph, &meta)?;
    let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    writeln!(
        out,
        "wrote {} (.nb{}): {}B",
        dest.display(),
        if args.no_optimize { ", training form" } else { "" },
        human(size)
    )?;
    Ok(())
}

/// Largest difference between the two graphs' first outputs on `data` (Lithe's predictor).
fn max_abs_diff(a: &Graph, b: &Graph, data: &Dataset) -> Result<f32> {
    let (x, _) = data.gather(&(0..data.len()).collect::<Vec<_>>());
    let run = |g: &Graph, x: Tensor| -> Result<Vec<f32>> {
        let mut p = Predictor::new(g.clone()).context("cannot prepare the trained model")?;
        let outs = p.run_with(vec![x]).context("cannot run the trained model")?;
        Ok(outs.first().map(Tensor::to_f32_vec).unwrap_or_default())
    };
    let (ya, yb) = (run(a, x.clone())?, run(b, x)?);
    Ok(ya.iter().zip(&yb).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_and_augmentations_parse() {
        assert_eq!(parse_schedule("cosine").unwrap(), ScheduleArg::Cosine);
        assert_eq!(parse_schedule("step:100:0.5").unwrap(), ScheduleArg::Step { every: 100, gamma: 0.5 });
        assert!(parse_schedule("step:0:0.5").unwrap_err().contains("'0'"));
        assert!(parse_schedule("linear").unwrap_err().contains("expected constant"));
        assert_eq!(parse_augment("shift:2").unwrap(), Augment::Shift { max: 2 });
        assert_eq!(parse_augment("shift-batch:1").unwrap(), Augment::ShiftBatch { max: 1 });
        assert_eq!(parse_augment("none").unwrap(), Augment::None);
        let steps = AugmentSteps { crop_padding: 4, flip: true, shift: 0 };
        assert_eq!(parse_augment("crop:4+flip").unwrap(), Augment::Steps(steps));
        assert_eq!(parse_augment("flip").unwrap(), Augment::flip());
        assert!(parse_augment("rotate").unwrap_err().contains("expected none"));
        assert!(parse_augment("crop:x").unwrap_err().contains("'x'"));
    }
}
