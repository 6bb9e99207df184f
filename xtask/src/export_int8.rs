//! `cargo xtask onnx-export-check --int8`: Lithe's int8 models exported as QDQ ONNX and run by
//! onnxruntime, next to Lithe's own int8 execution of the same model.
//!
//! For the MNIST nets (`testdata/mnist/lenet_bn.onnx`, `dwsep.onnx`; calibrated on the first
//! 1,000 training images, evaluated on the 1,000 first test images) and, when `cargo xtask
//! quant-data` has cached it, the ImageNet MobileNetV2 (calibrated on `photos/calib.npy`,
//! evaluated on `photos/eval.npy`), the release `lite-cli quant` writes the int8 model twice
//! from the same calibration: `-o int8.nb` and `-o int8.onnx` (QDQ). Lithe runs the `.nb` (int8
//! QConv kernels) and, as a round-trip check, the `.onnx` imported again and optimized (it must
//! give the `.nb`'s outputs); `xtask/python/int8_check.py` runs the `.onnx` with onnxruntime
//! (CPU, one thread) twice, with its default graph optimizations (its QDQ fusion into int8
//! kernels) and with none (each Q/DQ as written around float ops), and prints
//! per output the max abs difference, the share of elements more than one quantization step
//! apart (the step: the scale of the last activation QuantizeLinear on the output's path), top-1
//! agreement and each engine's accuracy (MNIST: against the labels; ImageNet crops have none:
//! against fp32's top-1).

use anyhow::{Context, Result, bail};
use lithe_ir::Tensor;
use lithe_onnx::{ImportOptions, load_model};
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Rows per run (the ImageNet crops are large).
const CHUNK: usize = 16;

/// One model to quantize and compare.
struct Case {
    name: &'static str,
    model: PathBuf,
    calib: PathBuf,
    eval: PathBuf,
    /// Labels of the evaluation rows (MNIST), else fp32's top-1 is the reference.
    labels: Option<Vec<i64>>,
}

/// `n` IDX images (`[n, 1, 28, 28]`, pixels / 255) into `dest`.
fn idx_to_npy(file: &str, n: usize, dest: &Path) -> Result<()> {
    let path = crate::root().join("testdata/mnist").join(file);
    let b = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let px = b.get(16..16 + n * 784).context("short IDX file")?.iter().map(|&p| f32::from(p) / 255.0).collect();
    lithe_ir::npy::write_npy(dest, &Tensor::from_vec(&[n, 1, 28, 28], px)?)?;
    Ok(())
}

fn idx_labels(file: &str, n: usize) -> Result<Vec<i64>> {
    let path = crate::root().join("testdata/mnist").join(file);
    let b = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(b.get(8..8 + n).context("short IDX label file")?.iter().map(|&l| i64::from(l)).collect())
}

/// Run `p` on the rows of `x` in chunks of [`CHUNK`]; the first output, rows concatenated.
fn run_rows(p: &mut Predictor, x: &Tensor) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    let n = shape[0];
    let row: usize = shape[1..].iter().product();
    let data = x.to_f32_vec();
    let (mut out, mut out_row) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let mut s = shape.clone();
        s[0] = end - start;
        let t = Tensor::from_vec(&s, data[start * row..end * row].to_vec())?;
        let y = p.run_with(vec![t])?.into_iter().next().context("no output")?;
        out_row = y.shape()[1..].to_vec();
        out.extend(y.to_f32_vec());
    }
    let mut s = vec![n];
    s.extend(out_row);
    Ok(Tensor::from_vec(&s, out)?)
}

fn top1(t: &Tensor) -> Vec<i64> {
    let n = t.shape()[0];
    let v = t.to_f32_vec();
    let c = v.len() / n.max(1);
    (0..n)
        .map(|i| {
            let r = &v[i * c..(i + 1) * c];
            (0..c).fold(0, |b, j| if r[j] > r[b] { j } else { b }) as i64
        })
        .collect()
}

fn write_i64(path: &Path, v: &[i64]) -> Result<()> {
    lithe_ir::npy::write_npy(path, &Tensor::from_vec(&[v.len()], v.to_vec())?)?;
    Ok(())
}

/// The release `lite-cli`, built when needed.
fn lite_cli() -> Result<PathBuf> {
    let root = crate::root();
    let st = Command::new(crate::cross::cargo())
        .current_dir(&root)
        .args(["build", "--release", "-p", "lithe-cli", "--bin", "lite-cli"])
        .status()
        .context("running cargo build")?;
    if !st.success() {
        bail!("cargo build --release -p lithe-cli failed");
    }
    Ok(root.join("target/release/lite-cli"))
}

/// Quantize, run and export one case into `dir`; returns the round-trip max abs difference.
fn prepare(cli: &Path, c: &Case, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for out in ["int8.nb", "model.onnx"] {
        let dest = dir.join(out);
        let args = [
            "quant".to_string(),
            "-m".into(),
            c.model.display().to_string(),
            "-o".into(),
            dest.display().to_string(),
            "--quant".into(),
            "int8".into(),
            "--calib".into(),
            c.calib.display().to_string(),
        ];
        eprintln!("int8 check: lite-cli {}", args.join(" "));
        let o = Command::new(cli).args(&args).output().context("running lite-cli")?;
        if !o.status.success() {
            bail!("lite-cli {} failed: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim());
        }
    }
    let x = lithe_ir::npy::read_npy(&c.eval).with_context(|| format!("reading {}", c.eval.display()))?;
    let int8 = run_rows(&mut Predictor::from_file(&dir.join("int8.nb"), Default::default())?, &x)?;
    // Round trip: the exported ONNX imported and optimized again runs like the .nb.
    let mut g = load_model(&dir.join("model.onnx"), &ImportOptions::default())?;
    PassManager::default_pipeline().run(&mut g)?;
    let again = run_rows(&mut Predictor::new(g)?, &x)?;
    let rt = int8.to_f32_vec().iter().zip(again.to_f32_vec()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let reference = match &c.labels {
        Some(l) => l.clone(),
        None => {
            let mut fp32 = load_model(&c.model, &ImportOptions::default())?;
            PassManager::default_pipeline().run(&mut fp32)?;
            top1(&run_rows(&mut Predictor::new(fp32)?, &x)?)
        }
    };
    std::fs::copy(&c.eval, dir.join("input.npy"))?;
    lithe_ir::npy::write_npy(&dir.join("lithe.npy"), &int8)?;
    write_i64(&dir.join("reference.npy"), &reference)?;
    let info = serde_json::json!({
        "roundtrip_max_abs": rt,
        "reference": if c.labels.is_some() { "labels" } else { "fp32 top-1" },
        "calib": c.calib.display().to_string(),
        "eval": c.eval.display().to_string(),
        "chunk": CHUNK,
    });
    std::fs::write(dir.join("case.json"), serde_json::to_string_pretty(&info)?)?;
    Ok(())
}

/// Entry point (`cargo xtask onnx-export-check --int8 [--filter NAME]`).
pub fn run(filter: Option<&str>) -> Result<()> {
    let root = crate::cache_dir().join("export-check-int8");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }
    std::fs::create_dir_all(&root)?;
    let (calib, eval) = (root.join("mnist_calib.npy"), root.join("mnist_test.npy"));
    idx_to_npy("train-images-idx3-ubyte", 1000, &calib)?;
    idx_to_npy("t10k-images-idx3-ubyte", 1000, &eval)?;
    let labels = idx_labels("t10k-labels-idx1-ubyte", 1000)?;
    let mut cases = Vec::new();
    for (name, file) in [("mnist_lenet_bn", "lenet_bn.onnx"), ("mnist_dwsep", "dwsep.onnx")] {
        cases.push(Case {
            name,
            model: crate::root().join("testdata/mnist").join(file),
            calib: calib.clone(),
            eval: eval.clone(),
            labels: Some(labels.clone()),
        });
    }
    let q = crate::cache_dir().join("quant");
    if q.join("mobilenet_v2_imagenet.onnx").is_file() && q.join("photos/eval.npy").is_file() {
        cases.push(Case {
            name: "imagenet_mobilenet_v2",
            model: q.join("mobilenet_v2_imagenet.onnx"),
            calib: q.join("photos/calib.npy"),
            eval: q.join("photos/eval.npy"),
            labels: None,
        });
    } else {
        eprintln!("no {} (run `cargo xtask quant-data`); MNIST only", q.join("mobilenet_v2_imagenet.onnx").display());
    }
    cases.retain(|c| filter.is_none_or(|f| c.name.contains(f)));
    if cases.is_empty() {
        bail!("no model matches the filter {filter:?}");
    }
    let cli = lite_cli()?;
    for c in &cases {
        prepare(&cli, c, &root.join(c.name)).with_context(|| format!("case {}", c.name))?;
    }
    let py = crate::python::ensure_venv(crate::bench_peers::VENV, crate::bench_peers::PACKAGES)?;
    crate::python::run_script(&py, "int8_check.py", &[root.display().to_string()])?;
    let results_path = root.join("results.json");
    let text = std::fs::read_to_string(&results_path).with_context(|| format!("reading {}", results_path.display()))?;
    let results: serde_json::Value = serde_json::from_str(&text)?;
    let mut bad = Vec::new();
    for c in &cases {
        let r = &results[c.name];
        if let Some(e) = r.get("error").and_then(|e| e.as_str()) {
            bad.push(format!("{}: {e}", c.name));
        } else if r["roundtrip_max_abs"].as_f64().unwrap_or(f64::INFINITY) != 0.0 {
            bad.push(format!("{}: the re-imported ONNX differs from the .nb", c.name));
        }
    }
    println!("\nmodels, data and outputs in {}", root.display());
    if !bad.is_empty() {
        bail!("{}", bad.join("; "));
    }
    Ok(())
}
