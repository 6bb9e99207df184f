//! `lite-cli quant` end to end on the committed MNIST LeNet (trained on real digits): static
//! int8 calibrated on training images, evaluated on test images, and the `.nb` it writes runs.

use lithe_ir::Tensor;
use lithe_ir::npy::{read_npy, write_npy};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lite-cli")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The first `n` images of an IDX file as an `n x 1 x 28 x 28` f32 `.npy` in `[0, 1]`.
fn idx_to_npy(idx: &str, n: usize, dest: &Path) {
    let b = std::fs::read(mnist().join(idx)).unwrap();
    let px: Vec<f32> = b[16..16 + n * 784].iter().map(|&p| f32::from(p) / 255.0).collect();
    write_npy(dest, &Tensor::from_vec(&[n, 1, 28, 28], px).unwrap()).unwrap();
}

#[test]
fn quant_int8_calibrates_reports_agreement_and_writes_a_runnable_nb() {
    let work = tempfile::tempdir().unwrap();
    let (calib, eval) = (work.path().join("calib.npy"), work.path().join("eval.npy"));
    idx_to_npy("train-images-idx3-ubyte", 200, &calib);
    idx_to_npy("t10k-images-idx3-ubyte", 300, &eval);
    let nb = work.path().join("lenet_int8.nb");
    let model = mnist().join("lenet_bn.onnx");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = cli(&[
        "quant",
        "-m",
        &s(&model),
        "-o",
        &s(&nb),
        "--quant",
        "int8",
        "--calib",
        &s(&calib),
        "--algo",
        "mse",
        "--batch-size",
        "50",
        "--eval",
        &s(&eval),
        "--analyze",
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let line = out.lines().find(|l| l.contains("top-1 agreement")).unwrap_or_else(|| panic!("{out}"));
    let agree: f64 = line.split("top-1 agreement ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(agree >= 0.98, "{line}");
    assert!(out.contains("nodes quantized") && out.contains("wrote"), "{out}");
    assert!(out.contains("per-layer error vs fp32") && out.contains("SNR dB"), "{out}");

    // The written model runs and classifies like the report says.
    let outdir = work.path().join("out");
    let one = work.path().join("one.npy");
    idx_to_npy("t10k-images-idx3-ubyte", 1, &one);
    let r = cli(&["run", &s(&nb), "--input", &s(&one), "--output", &s(&outdir)]);
    assert!(r.status.success(), "{}", text(&r));
    let got = std::fs::read_dir(&outdir).unwrap().next().unwrap().unwrap().path();
    assert_eq!(read_npy(&got).unwrap().len(), 10);

    // Missing calibration data and unknown modes are errors with a message, not panics.
    let bad = cli(&["quant", "-m", &s(&model), "-o", &s(&nb), "--quant", "int8"]);
    assert!(!bad.status.success() && text(&bad).contains("--calib"), "{}", text(&bad));
    let bad = cli(&["quant", "-m", &s(&model), "-o", &s(&nb), "--quant", "int4"]);
    assert!(!bad.status.success(), "{}", text(&bad));
    let bad = cli(&["quant", "-m", &s(&model), "-o", &s(&nb), "--calib", &s(&model)]);
    assert!(!bad.status.success() && text(&bad).contains("lenet_bn.onnx"), "{}", text(&bad));
}
