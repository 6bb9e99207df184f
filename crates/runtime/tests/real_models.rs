//! Real trained models: the PP-OCR detection, direction-classifier and recognition models of the
//! `rapidocr-onnxruntime` 1.4.4 wheel, run by Lithe and compared with onnxruntime.
//!
//! Tolerance: every output element must satisfy `|lithe - ort| <= ATOL + RTOL * |ort|` with
//! `ATOL = RTOL = 1e-3` (f32, deep networks: ~60 convolutions deep for detection). On top of
//! that, the classifier's argmax must agree for every image and the recognizer's argmax over the
//! class axis must agree at every time step (what OCR decoding reads).
//!
//! The models and onnxruntime's outputs live outside git in `$LITHE_CACHE/models` (default
//! `target/lithe-cache/models`), made by `cargo xtask models`. These tests are ignored by
//! default; CI runs them with `cargo test -p lithe-runtime --test real_models -- --ignored`.
//! A missing cache is a failure, not a skip.

use lithe_ir::Tensor;
use lithe_runtime::Predictor;
use serde::Deserialize;
use std::path::{Path, PathBuf};

const ATOL: f32 = 1e-3;
const RTOL: f32 = 1e-3;

#[derive(Deserialize)]
struct Manifest {
    input_names: Vec<String>,
    output_names: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    description: String,
    inputs: Vec<FileEntry>,
    outputs: Vec<FileEntry>,
}

#[derive(Deserialize)]
struct FileEntry {
    file: String,
}

fn cache_dir() -> PathBuf {
    match std::env::var_os("LITHE_CACHE") {
        Some(p) => PathBuf::from(p),
        // crates/runtime -> the workspace root.
        None => {
            let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir).join("target/lithe-cache")
        }
    }
}

fn model_dir(name: &str) -> PathBuf {
    let dir = cache_dir().join("models").join(name);
    let manifest = dir.join("manifest.json");
    assert!(
        manifest.is_file() && dir.join("model.onnx").is_file(),
        "{} is missing: run `cargo xtask models` first (it fetches the PP-OCR models and computes \
         onnxruntime outputs; set LITHE_CACHE to use another cache directory)",
        manifest.display()
    );
    dir
}

/// Outputs of one case: Lithe's and onnxruntime's.
struct CaseRun {
    name: String,
    description: String,
    got: Vec<Tensor>,
    want: Vec<Tensor>,
}

/// Import the model once and run every case through the same predictor (the cases use
/// different input sizes, so symbolic dimensions are resolved per run).
fn run_model(name: &str) -> Vec<CaseRun> {
    let dir = model_dir(name);
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let manifest: Manifest = serde_json::from_str(&text).unwrap();
    assert!(!manifest.cases.is_empty(), "{name}: manifest lists no cases");

    let graph = lithe_onnx::load_model(&dir.join("model.onnx"), &lithe_onnx::ImportOptions::default())
        .unwrap_or_else(|e| panic!("{name}: import failed: {e}"));
    let mut predictor = Predictor::new(graph).unwrap_or_else(|e| panic!("{name}: predictor: {e}"));
    println!("{name}: inputs {:?}, outputs {:?}", manifest.input_names, manifest.output_names);

    manifest
        .cases
        .iter()
        .map(|case| {
            let cdir = dir.join(&case.name);
            let read = |f: &FileEntry| {
                let p = cdir.join(&f.file);
                lithe_ir::npy::read_npy(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
            };
            let inputs: Vec<Tensor> = case.inputs.iter().map(read).collect();
            let want: Vec<Tensor> = case.outputs.iter().map(read).collect();
            let started = std::time::Instant::now();
            let got = predictor.run_with(inputs).unwrap_or_else(|e| panic!("{name} {}: run failed: {e}", case.name));
            println!("{name} {} ({}): ran in {:.2}s", case.name, case.description, started.elapsed().as_secs_f64());
            assert_eq!(got.len(), want.len(), "{name} {}: number of outputs", case.name);
            CaseRun { name: case.name.clone(), description: case.description.clone(), got, want }
        })
        .collect()
}

/// Check every output of every case against the tolerance; print the max abs error per case.
/// Returns the problems found (empty when all is well).
fn check_close(model: &str, runs: &[CaseRun]) -> Vec<String> {
    let mut problems = Vec::new();
    for run in runs {
        for (i, (g, w)) in run.got.iter().zip(&run.want).enumerate() {
            let (Some(g), Some(w)) = (g.as_f32(), w.as_f32()) else {
                problems.push(format!("{} output {i}: dtype {} (expected {})", run.name, g.dtype(), w.dtype()));
                continue;
            };
            if g.shape() != w.shape() {
                problems.push(format!("{} output {i}: shape {:?}, expected {:?}", run.name, g.shape(), w.shape()));
                continue;
            }
            let mut max_abs = 0f32;
            let mut bad = 0usize;
            for (a, b) in g.iter().zip(w.iter()) {
                let d = (a - b).abs();
                // A NaN on either side is out of tolerance and makes the max error NaN.
                if d.is_nan() || d > ATOL + RTOL * b.abs() {
                    bad += 1;
                }
                if d.is_nan() || max_abs.is_nan() {
                    max_abs = f32::NAN;
                } else {
                    max_abs = max_abs.max(d);
                }
            }
            println!(
                "{model} {} ({}) output {i} {:?}: max abs err {max_abs:.3e}, {bad}/{} out of tolerance",
                run.name,
                run.description,
                w.shape(),
                w.len()
            );
            if bad > 0 {
                problems.push(format!(
                    "{} output {i}: {bad}/{} elements exceed {ATOL:e} + {RTOL:e}*|ort| (max abs err {max_abs:.3e})",
                    run.name,
                    w.len()
                ));
            }
        }
    }
    problems
}

/// Argmax along the last axis of a row-major array, one per leading position.
fn argmax_last(t: &Tensor) -> Vec<usize> {
    let a = t.as_f32().unwrap();
    let n = *a.shape().last().unwrap();
    let flat: Vec<f32> = a.iter().copied().collect();
    flat.chunks(n)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (k, &v)| if v > best.1 { (k, v) } else { best })
                .0
        })
        .collect()
}

/// The argmax over the class (last) axis must agree everywhere.
fn check_argmax(runs: &[CaseRun], what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for run in runs {
        let (Some(g), Some(w)) = (run.got.first(), run.want.first()) else { continue };
        if g.as_f32().is_none() || g.shape() != w.shape() {
            continue; // already reported by check_close
        }
        let (ga, wa) = (argmax_last(g), argmax_last(w));
        let differ: Vec<usize> = (0..wa.len()).filter(|&k| ga[k] != wa[k]).collect();
        println!("{} {what}: {}/{} agree", run.name, wa.len() - differ.len(), wa.len());
        if let Some(&k) = differ.first() {
            problems.push(format!(
                "{} {what}: argmax differs at {}/{} positions, first at flat position {k} (lithe {}, ort {})",
                run.name,
                differ.len(),
                wa.len(),
                ga[k],
                wa[k]
            ));
        }
    }
    problems
}

fn report(model: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{model} does not match onnxruntime:\n  {}", problems.join("\n  "));
}

#[test]
#[ignore = "needs `cargo xtask models` (real models in the cache)"]
fn ppocr_det_matches_onnxruntime() {
    let runs = run_model("ppocr_det");
    assert!(runs.len() >= 2, "expected detection cases at two image sizes");
    report("ppocr_det", check_close("ppocr_det", &runs));
}

#[test]
#[ignore = "needs `cargo xtask models` (real models in the cache)"]
fn ppocr_cls_matches_onnxruntime() {
    let runs = run_model("ppocr_cls");
    let mut problems = check_close("ppocr_cls", &runs);
    problems.extend(check_argmax(&runs, "label per image"));
    report("ppocr_cls", problems);
}

#[test]
#[ignore = "needs `cargo xtask models` (real models in the cache)"]
fn ppocr_rec_matches_onnxruntime() {
    let runs = run_model("ppocr_rec");
    assert!(runs.len() >= 2, "expected recognition cases at two widths");
    let mut problems = check_close("ppocr_rec", &runs);
    problems.extend(check_argmax(&runs, "class per time step"));
    report("ppocr_rec", problems);
}

#[test]
fn argmax_last_picks_first_maximum_per_row() {
    let t = Tensor::from_vec(&[2, 1, 3], vec![0.1f32, 0.7, 0.2, 0.5, 0.5, 0.0]).unwrap();
    assert_eq!(argmax_last(&t), vec![1, 0]);
}

#[test]
fn check_close_flags_out_of_tolerance_and_nan() {
    let want = Tensor::from_vec(&[3], vec![1.0f32, 10.0, 0.0]).unwrap();
    let ok = Tensor::from_vec(&[3], vec![1.0015f32, 10.009, 0.0009]).unwrap();
    let run =
        |got: Tensor| CaseRun { name: "c".into(), description: "d".into(), got: vec![got], want: vec![want.clone()] };
    assert!(check_close("m", &[run(ok)]).is_empty());
    let off = Tensor::from_vec(&[3], vec![1.0f32, 10.02, 0.0]).unwrap();
    assert_eq!(check_close("m", &[run(off)]).len(), 1);
    let nan = Tensor::from_vec(&[3], vec![1.0f32, f32::NAN, 0.0]).unwrap();
    assert_eq!(check_close("m", &[run(nan)]).len(), 1);
}
