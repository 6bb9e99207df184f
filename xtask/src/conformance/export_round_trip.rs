//! The export round trip of every passing node test: import, `lithe_onnx::export_model`,
//! import the bytes again (no constant folding, so the exported nodes stay as written) and run
//! every data set; the outputs must equal the first import's bit for bit. Run after the
//! conformance tests on the ones that passed; any difference fails `cargo xtask onnx-conformance`.

use super::runner::{Outcome, TestResult};
use lithe_ir::{Tensor, TensorView};
use lithe_onnx::{ExportOptions, ImportOptions, export_model, load_model, load_model_bytes};
use lithe_runtime::Predictor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn bits(t: &Tensor) -> Vec<u64> {
    match t.data_view() {
        TensorView::F32(a) => a.iter().map(|x| u64::from(x.to_bits())).collect(),
        TensorView::F16(a) => a.iter().map(|x| u64::from(x.to_bits())).collect(),
        _ => t.to_i64_vec().into_iter().map(|x| x as u64).collect(),
    }
}

fn data_sets(dir: &Path) -> Result<Vec<Vec<Tensor>>, String> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    sets.sort();
    sets.iter()
        .map(|set| {
            (0..)
                .map(|i| set.join(format!("input_{i}.pb")))
                .take_while(|p| p.is_file())
                .map(|p| lithe_onnx::read_tensor_proto(&p).map(|(_, t)| t).map_err(|e| e.to_string()))
                .collect()
        })
        .collect()
}

/// The round trip of one test directory.
fn round_trip(dir: &Path) -> Result<(), String> {
    let graph = load_model(&dir.join("model.onnx"), &ImportOptions::default()).map_err(|e| format!("import: {e}"))?;
    let bytes = export_model(&graph, &ExportOptions::default()).map_err(|e| format!("export: {e}"))?;
    let opts = ImportOptions { fold_constants: false, ..Default::default() };
    let back = load_model_bytes(&bytes, None, &opts).map_err(|e| format!("re-import: {e}"))?;
    let mut first = Predictor::new(graph).map_err(|e| e.to_string())?;
    let mut second = Predictor::new(back).map_err(|e| format!("re-imported predictor: {e}"))?;
    for (k, inputs) in data_sets(dir)?.into_iter().enumerate() {
        let want = first.run_with(inputs.clone()).map_err(|e| e.to_string())?;
        let got = second.run_with(inputs).map_err(|e| format!("re-imported run: {e}"))?;
        if got.len() != want.len() {
            return Err(format!("data set {k}: {} outputs, expected {}", got.len(), want.len()));
        }
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            if g.dtype() != w.dtype() || g.shape() != w.shape() || bits(g) != bits(w) {
                return Err(format!("data set {k}: output {i} differs after the round trip"));
            }
        }
    }
    Ok(())
}

/// Round-trip every passing test; returns how many ran and the failures (`name: reason`).
pub fn check(results: &[TestResult]) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut n = 0;
    for r in results.iter().filter(|r| r.outcome == Outcome::Pass) {
        n += 1;
        let outcome =
            catch_unwind(AssertUnwindSafe(|| round_trip(&r.test.dir))).unwrap_or_else(|_| Err("panicked".to_string()));
        if let Err(e) = outcome {
            failures.push(format!("{}: {}", r.test.name, e.lines().next().unwrap_or("")));
        }
    }
    (n, failures)
}
