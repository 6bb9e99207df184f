//! `cargo xtask onnx-export-check`: ONNX files written by Lithe's exporter, run by onnxruntime.
//!
//! Each model is imported, optimized with the default pass pipeline (fused conv epilogues and
//! FullyConnected present), run by Lithe's predictor and exported with
//! `lithe_onnx::export_model`; `xtask/python/export_check.py` then checks the file with the ONNX
//! checker, runs it with onnxruntime (bench-peers venv) and compares with Lithe's outputs. The
//! models: every `testdata/golden` case (the default model, MobileNetV2, among them), the MNIST
//! nets (16 test digits), onnxruntime's QOperator/dynamic int8 MNIST models in
//! `testdata/mnist/ort_qop` when present and, when `cargo xtask quant-data` has made them,
//! onnxruntime's `quantize_static` QDQ MNIST models. Fails when a model does not load or an output is off by
//! more than 1e-4 + 1e-4 * max |output| (QDQ models: one quantization step of the output,
//! see [`qdq_tolerance`]).

use anyhow::{Context, Result, bail};
use lithe_ir::{Graph, Tensor};
use lithe_onnx::{ExportOptions, ImportOptions, export_model, load_model};
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use std::path::{Path, PathBuf};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Only models whose name contains this string.
    #[arg(long)]
    filter: Option<String>,
    /// Export the imported graphs as they are, without the optimization passes.
    #[arg(long)]
    no_optimize: bool,
    /// Instead: Lithe's own int8 models (`lite-cli quant`) of the MNIST nets and, when cached,
    /// the ImageNet MobileNetV2, exported as QDQ ONNX; onnxruntime's outputs against Lithe's
    /// int8 `.nb` (see `export_int8`).
    #[arg(long)]
    int8: bool,
}

/// One model to check.
struct Case {
    name: String,
    model: PathBuf,
    inputs: Vec<Tensor>,
    qdq: bool,
}

fn mnist_images(n: usize) -> Result<Tensor> {
    let path = crate::root().join("testdata/mnist/t10k-images-idx3-ubyte");
    let b = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let px = b.get(16..16 + n * 784).context("short IDX file")?.iter().map(|&p| f32::from(p) / 255.0).collect();
    Ok(Tensor::from_vec(&[n, 1, 28, 28], px)?)
}

fn numbered_npy(dir: &Path, prefix: &str) -> Result<Vec<Tensor>> {
    let mut v = Vec::new();
    for i in 0.. {
        let p = dir.join(format!("{prefix}_{i}.npy"));
        if !p.is_file() {
            break;
        }
        v.push(lithe_ir::npy::read_npy(&p).with_context(|| format!("reading {}", p.display()))?);
    }
    Ok(v)
}

fn cases() -> Result<Vec<Case>> {
    let mut out = Vec::new();
    let golden = crate::root().join("testdata/golden");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&golden)
        .with_context(|| format!("listing {}", golden.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    dirs.sort();
    for d in dirs {
        let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.push(Case {
            name: format!("golden_{name}"),
            model: d.join("model.onnx"),
            inputs: numbered_npy(&d, "input")?,
            qdq: false,
        });
    }
    let digits = mnist_images(16)?;
    for m in ["lenet_bn", "dwsep"] {
        let model = crate::root().join(format!("testdata/mnist/{m}.onnx"));
        out.push(Case { name: format!("mnist_{m}"), model, inputs: vec![digits.clone()], qdq: false });
    }
    let ort_dir = crate::cache_dir().join("quant/ort");
    let mut found = 0;
    for m in ["lenet_bn", "dwsep"] {
        for q in ["minmax_per_channel", "minmax_per_tensor"] {
            let model = ort_dir.join(format!("{m}_{q}.onnx"));
            if model.is_file() {
                found += 1;
                out.push(Case { name: format!("qdq_{m}_{q}"), model, inputs: vec![digits.clone()], qdq: true });
            }
        }
    }
    // onnxruntime's QOperator and dynamic int8 MNIST models (QLinearConv, ConvInteger, ...),
    // when present.
    let qop_dir = crate::root().join("testdata/mnist/ort_qop");
    let mut qop: Vec<PathBuf> =
        std::fs::read_dir(&qop_dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    qop.retain(|p| p.extension().is_some_and(|e| e == "onnx"));
    qop.sort();
    for model in qop {
        let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        out.push(Case { name: format!("qop_{stem}"), model, inputs: vec![digits.clone()], qdq: true });
    }
    if found == 0 {
        eprintln!("no QDQ models in {} (run `cargo xtask quant-data --steps ort`); skipping them", ort_dir.display());
    }
    Ok(out)
}

/// Tolerance of a QDQ model's float output: the final DequantizeLinear makes every output a
/// multiple of its scale, and onnxruntime's fused int8 kernels may round a value to the
/// neighbouring level, so one level (about max |output| / 127) plus a little.
fn qdq_tolerance(max_abs: f64) -> f64 {
    max_abs / 100.0 + 1e-4
}

/// Import, optimize, run and export one case into `dir`.
fn prepare(case: &Case, dir: &Path, optimize: bool) -> Result<(usize, usize)> {
    let mut g: Graph = load_model(&case.model, &ImportOptions::default())?;
    if optimize {
        PassManager::default_pipeline().run(&mut g)?;
    }
    let fused = g
        .node_ids()
        .into_iter()
        .filter(|&id| match &g.node(id).op {
            lithe_ir::Op::Conv(a) => !a.epilogue.is_empty(),
            lithe_ir::Op::FullyConnected(_) => true,
            op => op.name() == "QConv",
        })
        .count();
    let outputs = Predictor::new(g.clone())?.run_with(case.inputs.clone())?;
    let bytes = export_model(&g, &ExportOptions::default())?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("model.onnx"), &bytes)?;
    for (i, t) in case.inputs.iter().enumerate() {
        lithe_ir::npy::write_npy(&dir.join(format!("input_{i}.npy")), t)?;
    }
    for (i, t) in outputs.iter().enumerate() {
        lithe_ir::npy::write_npy(&dir.join(format!("lithe_{i}.npy")), t)?;
    }
    Ok((fused, bytes.len()))
}

/// Entry point.
pub fn run(a: Args) -> Result<()> {
    if a.int8 {
        return crate::export_int8::run(a.filter.as_deref());
    }
    let root = crate::cache_dir().join("export-check");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("clearing {}", root.display()))?;
    }
    let cases: Vec<Case> =
        cases()?.into_iter().filter(|c| a.filter.as_deref().is_none_or(|f| c.name.contains(f))).collect();
    if cases.is_empty() {
        bail!("no model matches the filter {:?}", a.filter);
    }
    // Per case: (fused ops, bytes), or why Lithe could not import, run or export it.
    let mut prepared = Vec::new();
    for c in &cases {
        let r = prepare(c, &root.join(&c.name), !a.no_optimize).map_err(|e| format!("{e:#}"));
        prepared.push(r);
    }
    let py = crate::python::ensure_venv(crate::bench_peers::VENV, crate::bench_peers::PACKAGES)?;
    crate::python::run_script(&py, "export_check.py", &[root.display().to_string()])?;
    let results_path = root.join("results.json");
    let text = std::fs::read_to_string(&results_path).with_context(|| format!("reading {}", results_path.display()))?;
    let results: serde_json::Value = serde_json::from_str(&text)?;

    println!("\n| model | fused ops | ONNX nodes | bytes | max abs error | max abs output | result |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    let mut bad = Vec::new();
    for (c, p) in cases.iter().zip(&prepared) {
        let (n, bytes) = match p {
            Ok(v) => *v,
            Err(e) => {
                println!("| {} | | | | | | Lithe: {e} |", c.name);
                bad.push(c.name.clone());
                continue;
            }
        };
        let r = &results[&c.name];
        if let Some(e) = r.get("error").and_then(|e| e.as_str()) {
            println!("| {} | {n} | | {bytes} | | | onnxruntime: {e} |", c.name);
            bad.push(c.name.clone());
            continue;
        }
        let outs = r["outputs"].as_array().cloned().unwrap_or_default();
        let err = outs.iter().filter_map(|o| o["max_abs_err"].as_f64()).fold(0.0, f64::max);
        let scale = outs.iter().filter_map(|o| o["max_abs_value"].as_f64()).fold(0.0, f64::max);
        let tol = if c.qdq { qdq_tolerance(scale) } else { 1e-4 + 1e-4 * scale };
        let ok = err <= tol;
        let nodes = r["nodes"].as_u64().unwrap_or(0);
        let note = r.get("note").and_then(|n| n.as_str()).map(|n| format!(" ({n})")).unwrap_or_default();
        println!(
            "| {} | {n} | {nodes} | {bytes} | {err:.3e} | {scale:.3} | {}{note} |",
            c.name,
            if ok { "ok" } else { "FAIL" }
        );
        if !ok {
            bad.push(c.name.clone());
        }
    }
    println!(
        "\n{} models exported and run by onnxruntime ({}); outputs in {}",
        cases.len(),
        if a.no_optimize { "as imported" } else { "optimized" },
        root.display()
    );
    if !bad.is_empty() {
        bail!("{} models failed: {}", bad.len(), bad.join(", "));
    }
    Ok(())
}
