//! `lite-cli quant --qat` end to end on the committed MNIST LeNet: a short fine-tuning run on
//! training digits, the int8 `.nb` it writes, accuracy on test digits, and its errors.

mod common;

use common::{cli, idx_images, s, text};
use lithe_ir::Tensor;
use lithe_ir::npy::write_npy;
use std::path::{Path, PathBuf};

fn mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

/// The first `n` digits of an IDX pair as `x.npy` (`n x 1 x 28 x 28`, f32 in `[0, 1]`) and
/// `y.npy` (i64 labels) under `dir`; returns `"x.npy,y.npy"`.
fn npy_pair(images: &str, labels: &str, n: usize, dir: &Path, stem: &str) -> String {
    let x = idx_images(mnist().join(images), n);
    let l = std::fs::read(mnist().join(labels)).unwrap();
    let y: Vec<i64> = l[8..8 + n].iter().map(|&v| i64::from(v)).collect();
    let (xp, yp) = (dir.join(format!("{stem}_x.npy")), dir.join(format!("{stem}_y.npy")));
    write_npy(&xp, &x).unwrap();
    write_npy(&yp, &Tensor::from_vec(&[n], y).unwrap()).unwrap();
    format!("{},{}", s(&xp), s(&yp))
}

#[test]
fn qat_fine_tunes_reports_accuracy_and_writes_a_runnable_int8_nb() {
    let work = tempfile::tempdir().unwrap();
    let train = npy_pair("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 384, work.path(), "train");
    let test = npy_pair("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 300, work.path(), "test");
    let nb = work.path().join("lenet_qat.nb");
    let model = s(&mnist().join("lenet_bn.onnx"));
    let o = cli(&[
        "quant",
        "-m",
        &model,
        "-o",
        &s(&nb),
        "--qat",
        "--train-data",
        &train,
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--eval",
        &test,
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("moving_average_abs_max activations, per-channel weights, 8 bits"), "{out}");
    assert!(out.contains("4 nodes fake-quantized, 0 left in fp32"), "{out}");
    assert!(out.contains("epoch 1: 6 steps"), "{out}");
    let line = out.lines().find(|l| l.starts_with("top-1 accuracy")).unwrap_or_else(|| panic!("{out}"));
    let pct = |key: &str| -> f64 { line.split(key).nth(1).unwrap().trim().split('%').next().unwrap().parse().unwrap() };
    let (acc32, acc8) = (pct("fp32 "), pct("qat int8 "));
    assert!(acc32 > 95.0, "{line}");
    assert!(acc8 >= acc32 - 1.0, "{line}");
    assert!(out.contains("int8-qat-moving_average_abs_max") || out.contains("wrote"), "{out}");

    // The .nb holds the int8 graph and runs.
    let info = cli(&["info", &s(&nb)]);
    assert!(info.status.success() && text(&info).contains("QConv"), "{}", text(&info));
    let x = work.path().join("test_x.npy");
    let run = cli(&["run", &s(&nb), "--input", &s(&x)]);
    assert!(run.status.success(), "{}", text(&run));
}

#[test]
fn qat_errors_name_the_setting() {
    let work = tempfile::tempdir().unwrap();
    let train = npy_pair("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 32, work.path(), "train");
    let model = s(&mnist().join("lenet_bn.onnx"));
    let out = s(&work.path().join("o.nb"));
    let base = ["quant", "-m", model.as_str(), "-o", out.as_str(), "--qat"];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        cli(&a)
    };
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--train-data"), "{}", text(&o));
    let o = run(&["--train-data", &train, "--bits", "12"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("'bits'") && text(&o).contains("2 to 8"), "{}", text(&o));
    let o = run(&["--train-data", &train, "--quant", "weight-int8"]);
    assert!(text(&o).contains("--quant int8"), "{}", text(&o));
    let o = run(&["--train-data", &train, "--act-strategy", "minmax"]);
    assert_eq!(o.status.code(), Some(2), "a usage error: {}", text(&o));
    let o = run(&["--train-data", "missing.idx,labels.idx"]);
    assert!(text(&o).contains("missing.idx"), "{}", text(&o));
    assert!(!Path::new(&out).exists(), "nothing written on errors");
}
