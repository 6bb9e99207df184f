//! The real PP-OCR models through `lite-cli run`, against onnxruntime outputs cached by
//! `cargo xtask models`: the ONNX file as is, and the `.nb` written by `lite-cli opt` (whose
//! graph must have no BatchNormalization, no fusable activation after a conv and no Pad before
//! a conv). Ignored by default (needs the cache); CI runs it with `--ignored`.
//! Tolerance as in `crates/runtime/tests/real_models.rs`: |lithe - ort| <= 1e-3 + 1e-3 * |ort|.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cache() -> PathBuf {
    std::env::var_os("LITHE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/lithe-cache"))
}

/// `lite-cli opt` the model into `dir`, check the optimized graph, return the `.nb` path.
fn optimize(onnx: &Path, dir: &Path) -> PathBuf {
    let nb = dir.join("model.nb");
    let opt = Command::new(env!("CARGO_BIN_EXE_lite-cli"))
        .args(["opt", "--model"])
        .arg(onnx)
        .arg("--out")
        .arg(&nb)
        .arg("--print-model-ops")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&opt.stdout).into_owned();
    assert!(opt.status.success(), "opt {}: {}", onnx.display(), String::from_utf8_lossy(&opt.stderr));
    println!("{stdout}");
    let (graph, _) = lithe_nbformat::read_file(&nb).unwrap();
    let missed = lithe_passes::check::missed_optimizations(&graph);
    assert!(missed.is_empty(), "{}: missed optimizations: {missed:?}", onnx.display());
    nb
}

fn check(model: &str) {
    let dir = cache().join("models").join(model);
    assert!(dir.join("model.onnx").exists(), "{} missing: run `cargo xtask models`", dir.display());
    let work = tempfile::tempdir().unwrap();
    let nb = optimize(&dir.join("model.onnx"), work.path());
    for (case, file) in
        [("case_0", dir.join("model.onnx")), ("case_1", dir.join("model.onnx")), ("case_0", nb.clone()), ("case_1", nb)]
    {
        let case_dir = dir.join(case);
        let out = tempfile::tempdir().unwrap();
        let run = Command::new(env!("CARGO_BIN_EXE_lite-cli"))
            .arg("run")
            .arg(&file)
            .arg("--input")
            .arg(case_dir.join("input_0.npy"))
            .arg("--output")
            .arg(out.path())
            .output()
            .unwrap();
        assert!(run.status.success(), "{model} {case}: {}", String::from_utf8_lossy(&run.stderr));
        let written: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(written.len(), 1, "{model} has one output");
        let got = lithe_ir::npy::read_npy(&written[0]).unwrap();
        let want = lithe_ir::npy::read_npy(&case_dir.join("output_0.npy")).unwrap();
        assert_eq!(got.shape(), want.shape(), "{model} {case}");
        let (g, w) = (got.to_f32_vec(), want.to_f32_vec());
        let mut max_err = 0f32;
        for (a, b) in g.iter().zip(&w) {
            let err = (a - b).abs();
            max_err = max_err.max(err);
            assert!(err <= 1e-3 + 1e-3 * b.abs(), "{model} {case}: {a} vs {b}");
        }
        let kind = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        println!("lite-cli run {model} ({kind}) {case}: max abs err {max_err:.3e}");
    }
}

#[test]
#[ignore = "needs `cargo xtask models`"]
fn ppocr_det_via_cli() {
    check("ppocr_det");
}

#[test]
#[ignore = "needs `cargo xtask models`"]
fn ppocr_cls_via_cli() {
    check("ppocr_cls");
}

#[test]
#[ignore = "needs `cargo xtask models`"]
fn ppocr_rec_via_cli() {
    check("ppocr_rec");
}
