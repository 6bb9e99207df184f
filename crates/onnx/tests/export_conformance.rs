//! Export round trip over the ONNX backend node tests that Lithe passes
//! (`testdata/conformance/passing.txt`): import, export, import again and run every data set;
//! the outputs must equal the first import's bit for bit. Done twice: with the importer's
//! constant folding (as the conformance run imports) and without (so that every node of the
//! test model is exported, not only the folded value).
//!
//! The node tests live outside git in `$LITHE_CACHE/onnx-node-tests` (default
//! `target/lithe-cache/onnx-node-tests`), extracted by `cargo xtask onnx-conformance`; so the
//! test is ignored by default: `cargo test -p lithe-onnx --test export_conformance -- --ignored`.
//! Without the node tests it checks nothing; `cargo xtask onnx-conformance` itself round-trips
//! every passing test the same way (with import-time folding only) and fails on a difference.

mod export_util;

use export_util::*;
use lithe_ir::Tensor;
use lithe_onnx::{ImportOptions, load_model, read_tensor_proto};
use std::path::{Path, PathBuf};

fn node_tests_dir() -> PathBuf {
    let cache = std::env::var_os("LITHE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/lithe-cache"));
    cache.join("onnx-node-tests")
}

fn read_set(dir: &Path, prefix: &str) -> Result<Vec<Tensor>, String> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.is_file())
        .map(|p| read_tensor_proto(&p).map(|(_, t)| t).map_err(|e| format!("{}: {e}", p.display())))
        .collect()
}

fn check(dir: &Path) -> Result<usize, String> {
    let model = dir.join("model.onnx");
    let g = load_model(&model, &ImportOptions::default()).map_err(|e| format!("import: {e}"))?;
    let back = round_trip(&g)?;
    // Without constant folding every node of the test model is exported, not just its folded value.
    let unfolded_opts = ImportOptions { fold_constants: false, ..Default::default() };
    let unfolded = load_model(&model, &unfolded_opts).map_err(|e| format!("import unfolded: {e}"))?;
    let unfolded_back = round_trip(&unfolded)?;
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    sets.sort();
    for set in &sets {
        let inputs = read_set(set, "input")?;
        let want = run(&g, &inputs)?;
        same_bits(&set.display().to_string(), &run(&back, &inputs)?, &want)?;
        let want = run(&unfolded, &inputs)?;
        same_bits(&format!("{} (unfolded)", set.display()), &run(&unfolded_back, &inputs)?, &want)?;
    }
    Ok(sets.len())
}

#[test]
#[ignore = "needs the ONNX node tests in the cache (`cargo xtask onnx-conformance` extracts them)"]
fn passing_node_tests_round_trip_bit_exact() {
    let root = node_tests_dir();
    if !root.is_dir() {
        // CI runs the ignored tests before `cargo xtask onnx-conformance` extracts the node
        // tests; that run does the same round trip on every passing test and fails on a difference.
        eprintln!("{} is missing (run `cargo xtask onnx-conformance`); nothing to check", root.display());
        return;
    }
    let baseline = std::fs::read_to_string(testdata().join("conformance/passing.txt")).expect("passing.txt");
    let names: Vec<&str> = baseline.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(names.len() > 400, "baseline has only {} tests", names.len());
    let mut failures = Vec::new();
    let mut sets = 0;
    for name in &names {
        match check(&root.join(name)) {
            Ok(n) => sets += n,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("{} node tests ({sets} data sets) round-tripped, {} failed", names.len() - failures.len(), failures.len());
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), names.len(), failures.join("\n"));
}
