//! `cargo xtask train-export-check`: the MNIST nets trained by Lithe, exported to ONNX by
//! Lithe, run by onnxruntime.
//!
//! Each of `lenet_bn` and `dwsep` is trained from torch's initialization (seed 20240605) on the
//! 4,000 training rows of `testdata/mnist` for `--steps` Adam steps (batch 64, weight decay
//! 1e-4, cosine decay over the run, one random shift of up to 2 pixels per batch; lenet_bn at
//! 2e-3, dwsep at 3e-3), on one thread by default, which makes the run bit for bit
//! reproducible on a given kernel set (`LITHE_KERNELS=generic` makes it the same everywhere). The trained graph (batch norm in its training form
//! with the running statistics) is exported with `lithe_onnx::export_model`; Lithe computes the
//! logits of the 1,000 test images twice, with the trainer's eval pass and with the predictor on
//! the re-imported ONNX file; `xtask/python/train_export_check.py` runs the file with
//! onnxruntime and compares (max abs difference, argmax agreement, accuracy). Fails when a
//! difference exceeds `1e-4 + 1e-5 * max |logit|` or an argmax differs.
//!
//! `--write-golden` then writes `testdata/mnist/trained/<model>.onnx` and onnxruntime's logits of
//! the first 64 test images (`<model>_ort_logits.npy`), which `crates/train/tests/checkpoint.rs`
//! checks without Python. `--check` instead reruns onnxruntime on the committed files and
//! requires their committed logits exactly (within 1e-6).

use anyhow::{Context, Result, bail};
use lithe_ir::Tensor;
use lithe_ir::npy::{read_npy, write_npy};
use lithe_onnx::{ExportOptions, ImportOptions, export_model, load_model};
use lithe_runtime::Predictor;
use lithe_train::data::{Augment, Batches, Dataset};
use lithe_train::models::{self, Init};
use lithe_train::optim::OptimizerKind;
use lithe_train::schedule::Schedule;
use lithe_train::{Trainer, TrainerConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Optimizer steps per model (63 steps are one epoch of the 4,000 training rows).
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Also write the ONNX files and onnxruntime's logits of the first 64 test images to
    /// `testdata/mnist/trained`.
    #[arg(long)]
    write_golden: bool,
    /// Training threads: with one (the default) a run is bit for bit reproducible on the same
    /// kernel set (`LITHE_KERNELS=generic` everywhere); more threads sum gradients in a varying
    /// order.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Only check that onnxruntime reproduces the committed logits from the committed ONNX files.
    #[arg(long, conflicts_with = "write_golden")]
    check: bool,
}

/// The models and their peak learning rates.
const MODELS: [(&str, f32); 2] = [("lenet_bn", 2e-3), ("dwsep", 3e-3)];
/// Seed of the initialization, shuffling and augmentation.
const SEED: u64 = 20240605;
/// Test images in the committed golden logits.
const GOLDEN_IMAGES: usize = 64;
const BATCH: usize = 64;

fn mnist(split: &str) -> Result<Dataset> {
    let d = crate::root().join("testdata/mnist");
    let (x, y) = (d.join(format!("{split}-images-idx3-ubyte")), d.join(format!("{split}-labels-idx1-ubyte")));
    Dataset::from_idx(&x, &y).with_context(|| format!("reading {}", x.display()))
}

fn golden_dir() -> PathBuf {
    crate::root().join("testdata/mnist/trained")
}

/// The whole dataset as one tensor and its labels as an i64 tensor.
fn as_tensors(d: &Dataset) -> Result<(Tensor, Tensor)> {
    let (x, labels) = d.gather(&(0..d.len()).collect::<Vec<_>>());
    let y = Tensor::from_vec(&[labels.len()], labels.iter().map(|&l| l as i64).collect::<Vec<_>>())?;
    Ok((x, y))
}

/// Train one model; returns the trainer and the training time in seconds.
fn train(name: &str, lr: f32, steps: usize, data: &Dataset) -> Result<(Trainer, f64)> {
    let graph = if name == "lenet_bn" {
        models::lenet_bn(SEED, Init::TorchDefault)?
    } else {
        models::dwsep(SEED, Init::TorchDefault)?
    };
    let config = TrainerConfig {
        optimizer: OptimizerKind::adam(1e-4),
        schedule: Schedule::cosine(lr, steps),
        seed: SEED,
        ..TrainerConfig::default()
    };
    let mut t = Trainer::new(graph, config)?;
    let start = Instant::now();
    let mut epoch = 0u64;
    while t.steps() < steps {
        for (x, labels) in Batches::new(data, BATCH, Some(SEED + epoch), Augment::ShiftBatch { max: 2 }) {
            if t.steps() == steps {
                break;
            }
            t.step(x, &labels)?;
        }
        epoch += 1;
    }
    Ok((t, start.elapsed().as_secs_f64()))
}

/// Logits of `x` by the trainer's eval pass, 250 images at a time.
fn trainer_logits(t: &Trainer, test: &Dataset) -> Result<Tensor> {
    let mut v = Vec::new();
    for (x, _) in Batches::new(test, 250, None, Augment::None) {
        v.extend(t.predict(x)?.iter().copied());
    }
    Ok(Tensor::from_vec(&[test.len(), v.len() / test.len().max(1)], v)?)
}

/// Per model: the case directory and a note (training time).
fn prepare(root: &Path, steps: usize) -> Result<Vec<(String, String)>> {
    let train_data = mnist("train")?;
    let test = mnist("t10k")?;
    let (x, y) = as_tensors(&test)?;
    let mut cases = Vec::new();
    for (name, lr) in MODELS {
        eprintln!("training {name}: {steps} steps");
        let (t, secs) = train(name, lr, steps, &train_data)?;
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let bytes = export_model(t.graph(), &ExportOptions::default())?;
        std::fs::write(dir.join("model.onnx"), &bytes)?;
        write_npy(&dir.join("input.npy"), &x)?;
        write_npy(&dir.join("labels.npy"), &y)?;
        write_npy(&dir.join("lithe_trainer.npy"), &trainer_logits(&t, &test)?)?;
        let imported = load_model(&dir.join("model.onnx"), &ImportOptions::default())?;
        let out = Predictor::new(imported)?.run_with(vec![x.clone()])?;
        let first = out.into_iter().next().context("the imported model has no output")?;
        write_npy(&dir.join("lithe_predictor.npy"), &first)?;
        cases.push((name.to_string(), format!("{steps} steps in {secs:.1} s, {} B ONNX", bytes.len())));
    }
    Ok(cases)
}

/// Case directories holding the committed ONNX files with their committed logits as "Lithe's".
fn prepare_check(root: &Path) -> Result<Vec<(String, String)>> {
    let test = mnist("t10k")?.take(GOLDEN_IMAGES);
    let (x, y) = as_tensors(&test)?;
    let mut cases = Vec::new();
    for (name, _) in MODELS {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let model = golden_dir().join(format!("{name}.onnx"));
        std::fs::copy(&model, dir.join("model.onnx")).with_context(|| format!("copying {}", model.display()))?;
        let logits = golden_dir().join(format!("{name}_ort_logits.npy"));
        std::fs::copy(&logits, dir.join("lithe_committed.npy"))
            .with_context(|| format!("copying {}", logits.display()))?;
        write_npy(&dir.join("input.npy"), &x)?;
        write_npy(&dir.join("labels.npy"), &y)?;
        cases.push((name.to_string(), "committed".to_string()));
    }
    Ok(cases)
}

/// Entry point.
pub fn run(a: Args) -> Result<()> {
    let root = crate::cache_dir().join(if a.check { "train-export-check-golden" } else { "train-export-check" });
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }
    let cases = if a.check {
        prepare_check(&root)?
    } else {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(a.threads.max(1)).build()?;
        pool.install(|| prepare(&root, a.steps))?
    };
    let py = crate::python::ensure_venv(crate::bench_peers::VENV, crate::bench_peers::PACKAGES)?;
    crate::python::run_script(&py, "train_export_check.py", &[root.display().to_string()])?;
    let results_path = root.join("results.json");
    let text = std::fs::read_to_string(&results_path).with_context(|| format!("reading {}", results_path.display()))?;
    let results: serde_json::Value = serde_json::from_str(&text)?;

    println!(
        "\n| model | run | Lithe logits | max abs diff | max abs logit | argmax agreement | Lithe acc | onnxruntime acc | result |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---|");
    let mut bad = Vec::new();
    for (name, note) in &cases {
        let r = &results[name];
        if let Some(e) = r.get("error").and_then(|e| e.as_str()) {
            println!("| {name} | {note} | | | | | | | onnxruntime: {e} |");
            bad.push(name.clone());
            continue;
        }
        let ort_acc = r["ort_accuracy"].as_f64().unwrap_or(0.0);
        let Some(lithe) = r["lithe"].as_object() else { bail!("{name}: no comparisons in {}", results_path.display()) };
        for (what, m) in lithe {
            let err = m["max_abs_err"].as_f64().unwrap_or(f64::INFINITY);
            let scale = m["max_abs_value"].as_f64().unwrap_or(0.0);
            let agree = m["argmax_agreement"].as_f64().unwrap_or(0.0);
            let tol = if a.check { 1e-6 } else { 1e-4 + 1e-5 * scale };
            let ok = err <= tol && agree == 1.0;
            println!(
                "| {name} | {note} | {what} | {err:.2e} | {scale:.2} | {:.4} | {:.2}% | {:.2}% | {} |",
                agree,
                100.0 * m["accuracy"].as_f64().unwrap_or(0.0),
                100.0 * ort_acc,
                if ok { "ok" } else { "FAIL" }
            );
            if !ok {
                bad.push(format!("{name} ({what})"));
            }
        }
    }
    if !bad.is_empty() {
        bail!("{} comparisons failed: {}", bad.len(), bad.join(", "));
    }
    if a.write_golden {
        write_golden(&root)?;
    }
    println!("\noutputs in {}", root.display());
    Ok(())
}

/// Copy each model and onnxruntime's first [`GOLDEN_IMAGES`] rows of logits into `testdata`.
fn write_golden(root: &Path) -> Result<()> {
    let dest = golden_dir();
    std::fs::create_dir_all(&dest)?;
    for (name, _) in MODELS {
        let model = dest.join(format!("{name}.onnx"));
        std::fs::copy(root.join(name).join("model.onnx"), &model)?;
        let ort = read_npy(&root.join(name).join("ort.npy"))?;
        let classes = ort.shape().get(1).copied().unwrap_or(0);
        let rows: Vec<f32> = ort.to_f32_vec().into_iter().take(GOLDEN_IMAGES * classes).collect();
        let logits = dest.join(format!("{name}_ort_logits.npy"));
        write_npy(&logits, &Tensor::from_vec(&[GOLDEN_IMAGES, classes], rows)?)?;
        println!("wrote {} and {}", model.display(), logits.display());
    }
    Ok(())
}
