//! `lite-cli train` end to end on a small slice of the committed MNIST split: checkpoints per
//! epoch that `lite-cli run` runs, resuming from one, the final `.nb` (optimized) and ONNX
//! outputs, and errors that name the file at fault.

mod common;

use common::{cli, idx_images, s, text};
use lithe_ir::Tensor;
use lithe_ir::npy::{read_npy, write_npy};
use std::path::{Path, PathBuf};

fn mnist(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist").join(name).to_str().unwrap().to_string()
}

fn train_pair() -> String {
    format!("{},{}", mnist("train-images-idx3-ubyte"), mnist("train-labels-idx1-ubyte"))
}

fn test_pair() -> String {
    format!("{},{}", mnist("t10k-images-idx3-ubyte"), mnist("t10k-labels-idx1-ubyte"))
}

/// The number after `key` in `line` (up to a space, `%` or `;`).
fn number_after(line: &str, key: &str) -> f64 {
    let rest = line.split(key).nth(1).unwrap_or_else(|| panic!("no '{key}' in {line}"));
    rest.trim_start().split([' ', '%', ';', ',']).next().unwrap().parse().unwrap()
}

/// The first `n` test images as an `n x 1 x 28 x 28` `.npy`.
fn test_images(n: usize, dest: &Path) {
    write_npy(dest, &idx_images(mnist("t10k-images-idx3-ubyte"), n)).unwrap();
}

/// `lite-cli run MODEL` on `input`; the logits it saves.
fn run_logits(model: &Path, input: &Path, dir: &Path) -> Vec<f32> {
    let r = cli(&["run", &s(model), "--input", &s(input), "--output", &s(dir)]);
    assert!(r.status.success(), "{}", text(&r));
    let file: PathBuf = std::fs::read_dir(dir).unwrap().next().unwrap().unwrap().path();
    read_npy(&file).unwrap().to_f32_vec()
}

#[test]
fn train_writes_checkpoints_resumes_and_outputs_runnable_models() {
    let work = tempfile::tempdir().unwrap();
    let ckpt = work.path().join("ckpt");
    let out_nb = work.path().join("lenet.nb");
    let train = train_pair();
    let val = test_pair();
    let common = [
        "--train-data",
        &train,
        "--val-data",
        &val,
        "--train-limit",
        "256",
        "--val-limit",
        "200",
        "--batch-size",
        "32",
        "--lr",
        "3e-3",
        "--schedule",
        "cosine",
        "--seed",
        "7",
    ];
    let mut args = vec!["train", "-m", "builtin:lenet_bn", "--epochs", "2", "--checkpoint-onnx", "--checkpoint-dir"];
    let ckpt_s = s(&ckpt);
    let out_s = s(&out_nb);
    args.extend([ckpt_s.as_str(), "-o", out_s.as_str()]);
    args.extend(common);
    let o = cli(&args);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    // Two epochs of 8 steps: the training loss falls, validation is reported with top-5.
    let epochs: Vec<&str> = out.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 2, "{out}");
    let (l1, l2) = (number_after(epochs[0], "train loss"), number_after(epochs[1], "train loss"));
    assert!(l2 < l1 && l1 < 2.4, "{out}");
    assert!(number_after(epochs[1], "acc") > 50.0, "{out}");
    assert!(epochs[1].contains("top-5") && number_after(epochs[1], "val loss") < 2.3, "{out}");
    for e in ["epoch-001", "epoch-002"] {
        for ext in ["nb", "state", "optim", "onnx"] {
            assert!(ckpt.join(format!("{e}.{ext}")).is_file(), "{e}.{ext}: {out}");
        }
    }
    assert_eq!(std::fs::read_to_string(ckpt.join("epoch-002.state")).unwrap().lines().nth(2), Some("steps = 16"));
    // The optimized .nb agrees with the training graph.
    let line = out.lines().find(|l| l.contains("max abs logit difference")).unwrap_or_else(|| panic!("{out}"));
    assert!(number_after(line, "difference") < 1e-4, "{line}");

    // The checkpoint (training form) and the optimized output run, and agree.
    let input = work.path().join("x.npy");
    test_images(8, &input);
    let a = run_logits(&ckpt.join("epoch-002.nb"), &input, &work.path().join("run_ckpt"));
    let b = run_logits(&out_nb, &input, &work.path().join("run_out"));
    assert_eq!(a.len(), 80);
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4, "checkpoint vs optimized output: {diff}");
    let e = run_logits(&ckpt.join("epoch-002.onnx"), &input, &work.path().join("run_ckpt_onnx"));
    let diff = a.iter().zip(&e).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4, "checkpoint .nb vs its ONNX export: {diff}");

    // Resume from epoch 1 to 2 epochs: the same step count and a state file for epoch 2.
    let ckpt2 = work.path().join("ckpt2");
    let onnx = work.path().join("lenet.onnx");
    let resume_from = s(&ckpt.join("epoch-001.nb"));
    let (ckpt2_s, onnx_s) = (s(&ckpt2), s(&onnx));
    let mut args = vec!["train", "-m", &resume_from, "--epochs", "2", "--checkpoint-dir", &ckpt2_s, "-o", &onnx_s];
    args.extend(common);
    let o = cli(&args);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("resuming") && out.contains("after epoch 1 (8 steps)"), "{out}");
    assert!(out.contains("optimizer state restored from"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("epoch 2/2")).count(), 1, "{out}");
    assert!(!ckpt2.join("epoch-001.nb").exists() && ckpt2.join("epoch-002.nb").is_file(), "{out}");
    assert_eq!(std::fs::read_to_string(ckpt2.join("epoch-002.state")).unwrap().lines().nth(2), Some("steps = 16"));
    // The ONNX output is the training graph: lite-cli imports and runs it.
    let c = run_logits(&onnx, &input, &work.path().join("run_onnx"));
    let d = run_logits(&ckpt2.join("epoch-002.nb"), &input, &work.path().join("run_ckpt2"));
    let diff = c.iter().zip(&d).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4, "ONNX output vs its checkpoint: {diff}");
    // Weights, running statistics, schedule and Adam's moments restored: the resumed run ends
    // where the uninterrupted one did.
    let diff = a.iter().zip(&d).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4, "resumed vs uninterrupted epoch 2: {diff}");

    // Training an inference-optimized .nb fails with a hint, not a panic.
    let o = cli(&[
        "train",
        "-m",
        &out_s,
        "--train-data",
        &train,
        "--train-limit",
        "32",
        "-o",
        &s(&work.path().join("x.nb")),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("optimized for inference"), "{}", text(&o));
}

#[test]
fn train_errors_name_the_file_and_usage_errors_exit_2() {
    let work = tempfile::tempdir().unwrap();
    let out = s(&work.path().join("m.nb"));
    let missing = mnist("no-such-images");
    let bad_pair = format!("{missing},{}", mnist("train-labels-idx1-ubyte"));
    let o = cli(&["train", "-m", "builtin:dwsep", "--train-data", &bad_pair, "-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).starts_with("error: ") && text(&o).contains("no-such-images"), "{}", text(&o));

    // Labels given as images: the IDX ranks do not pair; the error names the file.
    let swapped = format!("{},{}", mnist("train-labels-idx1-ubyte"), mnist("train-images-idx3-ubyte"));
    let o = cli(&["train", "-m", "builtin:dwsep", "--train-data", &swapped, "-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("train-labels-idx1-ubyte"), "{}", text(&o));

    // Samples that do not fit the model's input.
    let (x, y) = (work.path().join("x.npy"), work.path().join("y.npy"));
    write_npy(&x, &Tensor::from_vec(&[4, 3, 8, 8], vec![0.5f32; 4 * 192]).unwrap()).unwrap();
    write_npy(&y, &Tensor::from_vec(&[4], vec![0i64, 1, 2, 3]).unwrap()).unwrap();
    let o = cli(&["train", "-m", "builtin:lenet_bn", "--train-data", &format!("{},{}", s(&x), s(&y)), "-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("x.npy") && text(&o).contains("[3, 8, 8]"), "{}", text(&o));

    let bad_model = s(&work.path().join("missing.onnx"));
    let o = cli(&["train", "-m", &bad_model, "--train-data", &train_pair(), "-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("missing.onnx"), "{}", text(&o));
    let o = cli(&["train", "-m", "builtin:resnet", "--train-data", &train_pair(), "-o", &out]);
    assert!(text(&o).contains("builtin:lenet_bn"), "{}", text(&o));

    // Usage errors: clap's exit code 2.
    for bad in [["--schedule", "linear"], ["--optimizer", "rmsprop"], ["--augment", "rotate"], ["--batch-size", "0"]] {
        let o = cli(&["train", "-m", "builtin:dwsep", "--train-data", &train_pair(), "-o", &out, bad[0], bad[1]]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
    }
    assert!(!Path::new(&out).exists());
}

#[test]
fn train_help_lists_the_options() {
    let o = cli(&["train", "--help"]);
    assert!(o.status.success());
    let help = text(&o);
    for opt in [
        "--model",
        "--train-data",
        "--val-data",
        "--epochs",
        "--batch-size",
        "--optimizer",
        "--lr",
        "--momentum",
        "--nesterov",
        "--weight-decay",
        "--schedule",
        "--warmup-steps",
        "--clip-norm",
        "--label-smoothing",
        "--freeze",
        "--augment",
        "--seed",
        "--threads",
        "--checkpoint-dir",
        "--out",
        "--no-optimize",
        "--checkpoint-onnx",
        "builtin:lenet_bn",
        "epoch-NNN.nb",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
    }
}

/// The torch-trained ONNX model imports as a starting point (batch norm kept in training form)
/// and fine-tunes without losing its accuracy.
#[test]
fn train_fine_tunes_a_torch_exported_onnx_model() {
    let work = tempfile::tempdir().unwrap();
    let out = s(&work.path().join("ft.nb"));
    let (train, val) = (train_pair(), test_pair());
    let o = cli(&[
        "train",
        "-m",
        &mnist("lenet_bn.onnx"),
        "--train-data",
        &train,
        "--val-data",
        &val,
        "--train-limit",
        "128",
        "--val-limit",
        "300",
        "--lr",
        "1e-4",
        "--optimizer",
        "sgd",
        "--nesterov",
        "--freeze",
        "0.*",
        "--freeze",
        "4.weight",
        "-o",
        &out,
    ]);
    let text = text(&o);
    assert!(o.status.success(), "{text}");
    let epoch = text.lines().find(|l| l.starts_with("epoch 1/1")).unwrap_or_else(|| panic!("{text}"));
    assert!(number_after(epoch, "top-1") >= 95.0, "{epoch}");
    assert!(text.contains("sgd (momentum 0.9, nesterov)"), "{text}");
    // Frozen: both conv weights (torch names their constants by module index), 2 of 10 tensors.
    assert!(text.contains(": 8 trainable tensors"), "{text}");
    let o = cli(&["train", "-m", &mnist("lenet_bn.onnx"), "--train-data", &train, "--freeze", "conv9*", "-o", &out]);
    assert_eq!(o.status.code(), Some(1));
    assert!(self::text(&o).contains("--freeze 'conv9*' matches no constant"), "{}", self::text(&o));
}
