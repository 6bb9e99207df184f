//! Golden tests: every case directory in `testdata/golden/` (made by `cargo xtask golden`) is
//! imported, run through the Lithe predictor, and compared with the onnxruntime outputs; then
//! again after the default optimization pipeline and a round trip through `.nb` bytes (which
//! must also leave no BatchNormalization, no fusable activation after a conv and no Pad before
//! a conv).
//!
//! Tolerance: a float output element passes when `|lithe - ort| <= 1e-4 + 1e-4 * |ort|`
//! (NaN only matches NaN); integer and bool outputs must be exactly equal; output shapes and
//! dtypes must be equal.
//!
//! All cases run even when some fail; the panic message lists every failing case with its
//! maximum absolute error, and one line per case is printed (`--nocapture` shows them on
//! success too).

use lithe_ir::{Tensor, npy::read_npy};
use lithe_runtime::Predictor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Absolute tolerance for float outputs.
const ATOL: f64 = 1e-4;
/// Relative tolerance for float outputs (relative to the onnxruntime value).
const RTOL: f64 = 1e-4;
/// Fewer case directories than this means the golden data is missing or incomplete.
const MIN_CASES: usize = 30;

/// The parts of `meta.json` the test needs.
#[derive(serde::Deserialize)]
struct Meta {
    inputs: Vec<String>,
    outputs: Vec<String>,
    opset: i64,
}

/// A failed case: what went wrong, and the largest absolute error seen in any compared output
/// (`None` when the case failed before outputs could be compared).
struct Failure {
    message: String,
    max_abs_err: Option<f64>,
}

impl Failure {
    fn setup(message: String) -> Failure {
        Failure { message, max_abs_err: None }
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden")
}

/// Case directories, sorted by name.
fn case_dirs() -> Vec<PathBuf> {
    let dir = golden_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut dirs: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

/// Compare one output. `Ok` holds the max abs error; `Err` says why it failed (and carries the
/// max abs error when the values could be compared).
fn compare(index: usize, name: &str, got: &Tensor, want: &Tensor) -> Result<f64, (String, Option<f64>)> {
    let what = format!("output {index} ({name})");
    if got.dtype() != want.dtype() {
        return Err((format!("{what}: dtype {:?}, expected {:?}", got.dtype(), want.dtype()), None));
    }
    if got.shape() != want.shape() {
        return Err((format!("{what}: shape {:?}, expected {:?}", got.shape(), want.shape()), None));
    }
    let mut max_err = 0.0f64;
    let mut bad = 0usize;
    let mut worst: Option<(usize, f64, f64)> = None;
    if want.dtype().is_float() {
        let (g, w) = (got.to_f32_vec(), want.to_f32_vec());
        for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
            let (a, b) = (f64::from(a), f64::from(b));
            let (err, ok) = if a.is_nan() || b.is_nan() {
                if a.is_nan() && b.is_nan() { (0.0, true) } else { (f64::INFINITY, false) }
            } else if a == b {
                (0.0, true)
            } else if a.is_infinite() || b.is_infinite() {
                (f64::INFINITY, false)
            } else {
                let e = (a - b).abs();
                (e, e <= ATOL + RTOL * b.abs())
            };
            if !ok {
                bad += 1;
                if worst.is_none_or(|(_, e, _)| err > e) {
                    worst = Some((i, err, a));
                }
            }
            max_err = max_err.max(err);
        }
        if let Some((i, err, a)) = worst {
            return Err((
                format!(
                    "{what}: {bad} of {} elements out of tolerance; worst at flat index {i}: lithe {a}, ort {}, error {err:.3e}",
                    w.len(),
                    w[i]
                ),
                Some(max_err),
            ));
        }
    } else {
        let (g, w) = (got.to_i64_vec(), want.to_i64_vec());
        for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
            if a != b {
                bad += 1;
                let err = (a as f64 - b as f64).abs();
                max_err = max_err.max(err);
                if worst.is_none() {
                    worst = Some((i, err, a as f64));
                }
            }
        }
        if let Some((i, _, a)) = worst {
            return Err((
                format!(
                    "{what}: {bad} of {} elements differ; first at flat index {i}: lithe {a}, ort {}",
                    w.len(),
                    w[i]
                ),
                Some(max_err),
            ));
        }
    }
    Ok(max_err)
}

/// How a case's imported graph becomes a predictor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The imported graph as is.
    Imported,
    /// The default pass pipeline, then written to `.nb` bytes and loaded back from them.
    OptimizedNb,
}

/// The predictor for `graph` in `mode`. In `OptimizedNb` mode, CNN cases (every conv model)
/// must also have no missed optimization left.
fn prepare(graph: lithe_ir::Graph, mode: Mode) -> Result<Predictor, Failure> {
    match mode {
        Mode::Imported => Predictor::new(graph).map_err(|e| Failure::setup(format!("Predictor::new: {e}"))),
        Mode::OptimizedNb => {
            let mut graph = graph;
            lithe_passes::PassManager::default_pipeline()
                .run(&mut graph)
                .map_err(|e| Failure::setup(format!("optimize: {e}")))?;
            let missed = lithe_passes::check::missed_optimizations(&graph);
            if !missed.is_empty() {
                let list: Vec<String> = missed.iter().map(ToString::to_string).collect();
                return Err(Failure::setup(format!("missed optimizations: {}", list.join("; "))));
            }
            let meta = lithe_nbformat::ModelMeta::default();
            let bytes = lithe_nbformat::write(&graph, &meta).map_err(|e| Failure::setup(format!("write .nb: {e}")))?;
            Predictor::from_bytes(&bytes, lithe_runtime::PredictorOptions::default())
                .map_err(|e| Failure::setup(format!("Predictor::from_bytes: {e}")))
        }
    }
}

/// Run one case; `Ok` holds the max abs error over all outputs.
fn run_case(dir: &Path, mode: Mode) -> Result<f64, Failure> {
    let meta_path = dir.join("meta.json");
    let text = std::fs::read_to_string(&meta_path)
        .map_err(|e| Failure::setup(format!("cannot read {}: {e}", meta_path.display())))?;
    let meta: Meta =
        serde_json::from_str(&text).map_err(|e| Failure::setup(format!("bad {}: {e}", meta_path.display())))?;
    if dir.join(format!("input_{}.npy", meta.inputs.len())).exists() {
        return Err(Failure::setup(format!("more input files than the {} inputs in meta.json", meta.inputs.len())));
    }
    if dir.join(format!("output_{}.npy", meta.outputs.len())).exists() {
        return Err(Failure::setup(format!("more output files than the {} outputs in meta.json", meta.outputs.len())));
    }

    let graph = lithe_onnx::load_model(&dir.join("model.onnx"), &lithe_onnx::ImportOptions::default())
        .map_err(|e| Failure::setup(format!("import (opset {}): {e}", meta.opset)))?;
    let names: Vec<String> = graph.inputs().iter().map(|&id| graph.node(id).name.clone()).collect();
    if names != meta.inputs {
        return Err(Failure::setup(format!("graph inputs {names:?}, expected {:?}", meta.inputs)));
    }
    if graph.outputs().len() != meta.outputs.len() {
        return Err(Failure::setup(format!(
            "graph has {} outputs, expected {}",
            graph.outputs().len(),
            meta.outputs.len()
        )));
    }
    let mut inputs = Vec::with_capacity(meta.inputs.len());
    for i in 0..meta.inputs.len() {
        let path = dir.join(format!("input_{i}.npy"));
        inputs.push(read_npy(&path).map_err(|e| Failure::setup(format!("reading input {i}: {e}")))?);
    }
    let mut expected = Vec::with_capacity(meta.outputs.len());
    for i in 0..meta.outputs.len() {
        let path = dir.join(format!("output_{i}.npy"));
        expected.push(read_npy(&path).map_err(|e| Failure::setup(format!("reading output {i}: {e}")))?);
    }

    let mut predictor = prepare(graph, mode)?;
    let got = predictor.run_with(inputs).map_err(|e| Failure::setup(format!("run: {e}")))?;
    if got.len() != expected.len() {
        return Err(Failure::setup(format!("{} outputs, expected {}", got.len(), expected.len())));
    }

    let mut max_err = 0.0f64;
    let mut problems = Vec::new();
    for (i, (g, w)) in got.iter().zip(&expected).enumerate() {
        match compare(i, &meta.outputs[i], g, w) {
            Ok(e) => max_err = max_err.max(e),
            Err((msg, e)) => {
                if let Some(e) = e {
                    max_err = max_err.max(e);
                }
                problems.push(msg);
            }
        }
    }
    if problems.is_empty() {
        Ok(max_err)
    } else {
        Err(Failure { message: problems.join("; "), max_abs_err: Some(max_err) })
    }
}

#[test]
fn golden_cases_match_onnxruntime() {
    run_all(Mode::Imported);
}

#[test]
fn optimized_nb_matches_onnxruntime() {
    run_all(Mode::OptimizedNb);
}

/// Run every case in `mode`, printing one line per case, and fail listing every failure.
fn run_all(mode: Mode) {
    let dirs = case_dirs();
    assert!(
        dirs.len() >= MIN_CASES,
        "found {} case directories in {}, expected at least {MIN_CASES} (run `cargo xtask golden`)",
        dirs.len(),
        golden_dir().display()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let result = catch_unwind(AssertUnwindSafe(|| run_case(dir, mode))).unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Failure::setup(format!("panicked: {msg}")))
        });
        match result {
            Ok(err) => println!("golden {mode:?} {name:<40} ok    max abs error {err:.3e}"),
            Err(f) => {
                let err = f.max_abs_err.map_or("n/a".to_string(), |e| format!("{e:.3e}"));
                println!("golden {mode:?} {name:<40} FAIL  max abs error {err}: {}", f.message);
                failures.push(format!("{name} (max abs error {err}): {}", f.message));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} golden cases failed:\n{}", failures.len(), dirs.len(), failures.join("\n"));
}
