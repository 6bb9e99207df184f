//! `lite-cli quant --target-agreement` and `lite-cli diff` end to end on the committed MNIST
//! nets: the suggested `--skip` line reaches the target when quantizing again with it, a model
//! diffed with itself has no error, and fp32 against int8 agrees with `quant --analyze`.

mod common;

use common::{cli, idx_images, s, text};
use lithe_ir::Tensor;
use lithe_ir::npy::write_npy;
use std::path::{Path, PathBuf};

fn mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

/// The first `n` images of an IDX file as an `n x 1 x 28 x 28` f32 `.npy` in `[0, 1]`.
fn idx_to_npy(idx: &str, n: usize, dest: &Path) {
    write_npy(dest, &idx_images(mnist().join(idx), n)).unwrap();
}

/// The number after `key` in `line`, up to a comma or space.
fn number_after(line: &str, key: &str) -> f64 {
    let rest = line.split(key).nth(1).unwrap_or_else(|| panic!("no '{key}' in {line}"));
    rest.split([',', ' ']).next().unwrap().parse().unwrap_or_else(|_| panic!("{line}"))
}

/// The fp32-vs-int8 top-1 agreement `quant --eval` printed.
fn eval_agreement(out: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with("fp32 vs ")).unwrap_or_else(|| panic!("{out}"));
    number_after(line, "top-1 agreement ")
}

struct Data {
    _dir: tempfile::TempDir,
    calib: String,
    eval: String,
    dir: PathBuf,
}

fn data() -> Data {
    let dir = tempfile::tempdir().unwrap();
    let (calib, eval) = (dir.path().join("calib.npy"), dir.path().join("eval.npy"));
    idx_to_npy("train-images-idx3-ubyte", 200, &calib);
    idx_to_npy("t10k-images-idx3-ubyte", 300, &eval);
    Data { calib: s(&calib), eval: s(&eval), dir: dir.path().to_path_buf(), _dir: dir }
}

#[test]
fn suggested_skip_line_reaches_the_target_when_quantizing_again() {
    let d = data();
    let nb = s(&d.dir.join("m.nb"));
    for model in ["lenet_bn.onnx", "dwsep.onnx"] {
        let model = s(&mnist().join(model));
        // KL clips most of these nets' ranges: far from fp32 (docs/calibration.md).
        let base = ["quant", "-m", &model, "-o", &nb, "--calib", &d.calib, "--algo", "kl", "--batch-size", "100"];
        let mut args = base.to_vec();
        args.extend(["--eval", &d.eval, "--target-agreement", "0.995", "--max-skip-steps", "6"]);
        let o = cli(&args);
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(eval_agreement(&out) < 0.995, "{out}");
        assert!(out.contains("all ") && out.contains("candidates, most promising first"), "{out}");
        let reached = out.lines().find(|l| l.starts_with("reached with")).unwrap_or_else(|| panic!("{out}"));
        let promised = number_after(reached, "agreement ");
        let line = out.lines().find(|l| l.starts_with("suggested: ")).unwrap_or_else(|| panic!("{out}"));
        let skips: Vec<&str> = line["suggested: ".len()..].split_whitespace().collect();
        assert!(skips.len() >= 2 && skips.len() <= 12 && skips.chunks(2).all(|c| c[0] == "--skip"), "{line}");
        // Quantize again from scratch with the printed line.
        let mut again = base.to_vec();
        again.extend(["--eval", &d.eval]);
        again.extend(&skips);
        let o = cli(&again);
        let out2 = text(&o);
        assert!(o.status.success(), "{out2}");
        let got = eval_agreement(&out2);
        assert!(got >= 0.995, "{model}: {got} with {line}\n{out}\n{out2}");
        assert!((got - promised).abs() < 1e-4, "{model}: search said {promised}, got {got}");
        assert!(out2.contains(&format!("{} skipped", skips.len() / 2)), "{out2}");
    }
    // Usage errors: a target outside [0, 1]; the search needs static int8.
    let model = s(&mnist().join("lenet_bn.onnx"));
    let o = cli(&["quant", "-m", &model, "-o", &nb, "--calib", &d.calib, "--target-agreement", "1.5"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not in [0, 1]"), "{}", text(&o));
    let o = cli(&["quant", "-m", &model, "-o", &nb, "--quant", "weight-int8", "--calib", &d.calib, "--suggest-skips"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--target-agreement need --quant int8"), "{}", text(&o));
}

/// The data rows of a table printed by `quant --analyze` or `diff`: (SNR, cosine, value, op).
fn rows(out: &str, header: &str) -> Vec<(String, f64, String, String)> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with(header)).skip(2);
    let mut v = Vec::new();
    for l in lines.by_ref() {
        if !l.starts_with("  ") {
            break;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        v.push((f[0].to_string(), f[1].parse().unwrap(), f[f.len() - 1].to_string(), f[f.len() - 2].to_string()));
    }
    v
}

#[test]
fn diff_with_itself_is_exact_and_fp32_vs_int8_matches_the_analysis() {
    let d = data();
    let onnx = s(&mnist().join("lenet_bn.onnx"));
    let o = cli(&["diff", &onnx, &onnx, "--input", &d.eval, "--top", "0"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("300 samples") && out.contains("only in A, 0 only in B, 0 with different types"), "{out}");
    let table = rows(&out, "per-value error");
    assert!(table.len() >= 8, "{out}");
    for (snr, cos, value, _) in &table {
        assert!(snr == "inf" && *cos == 1.0, "{value}: {out}");
    }
    assert!(out.contains("max abs error 0.000000, mean abs error 0.000000, cosine 1.000000, SNR inf dB"), "{out}");
    assert!(out.contains("top-1 agreement 1.0000"), "{out}");

    // fp32 against its int8 .nb: the quantized nodes' rows are --analyze's rows.
    let nb = s(&d.dir.join("lenet_int8.nb"));
    let q = cli(&[
        "quant",
        "-m",
        &onnx,
        "-o",
        &nb,
        "--calib",
        &d.calib,
        "--eval",
        &d.eval,
        "--batch-size",
        "100",
        "--analyze",
        "--analyze-top",
        "0",
    ]);
    let qout = text(&q);
    assert!(q.status.success(), "{qout}");
    let analysis = rows(&qout, "per-layer error vs fp32");
    assert_eq!(analysis.len(), 4, "{qout}");
    let o = cli(&["diff", &onnx, &nb, "--input", &d.eval, "--optimize", "--top", "0"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let table = rows(&out, "per-value error");
    // The diff also covers values the analysis does not (the input's quantization).
    assert!(table.iter().any(|r| !analysis.iter().any(|a| a.2 == r.2)), "{out}");
    let snr = |v: &(String, f64, String, String)| v.0.parse::<f64>().unwrap();
    // Nodes whose f32 output the fused graph still has: the same error as the analysis, up to
    // the int8 execution's own rounding (exact int32 sums, and a requantizing conv's bias
    // rounded to int32 at x_scale·w_scale as onnxruntime does): within 0.1 dB. A node
    // whose output it keeps only requantized (a conv before a max pool: `X.quantize`) is in the
    // diff under that name, with the output's own quantization error added.
    let mut exact = Vec::new();
    for a in &analysis {
        match table.iter().find(|r| r.2 == a.2) {
            Some(row) => {
                assert!((snr(row) - snr(a)).abs() <= 0.1, "{a:?} vs {row:?}");
                exact.push((a, row));
            }
            // A hidden dense layer's output exists in the int8 graph only inside the reshape
            // chain from one int8 dense layer (run as a 1x1 conv) to the next, which the
            // optimizer merges away once the quantization has moved in front of it.
            None if a.3 == "FullyConnected" => {}
            None => assert!(
                table.iter().any(|r| r.2.strip_suffix(".quantize") == Some(a.2.as_str())),
                "{} not in the diff:\n{out}",
                a.2
            ),
        }
    }
    assert!(!exact.is_empty(), "{out}");
    let worst_analysis = exact.iter().min_by(|x, y| snr(x.0).total_cmp(&snr(y.0))).unwrap();
    let worst_diff = exact.iter().min_by(|x, y| snr(x.1).total_cmp(&snr(y.1))).unwrap();
    assert_eq!(worst_analysis.0.2, worst_diff.1.2, "{qout}\n{out}");
    let line = out.lines().find(|l| l.trim_start().starts_with("logits:")).unwrap_or_else(|| panic!("{out}"));
    assert!((number_after(line, "top-1 agreement ") - eval_agreement(&qout)).abs() < 1e-9, "{line}\n{qout}");
    // Without --optimize the raw ONNX still pairs up with the fused .nb where names survive.
    let o = cli(&["diff", &onnx, &nb, "--input", &d.eval]);
    assert!(o.status.success() && text(&o).contains("values matched by name"), "{}", text(&o));
}

#[test]
fn diff_errors_name_the_file_at_fault() {
    let d = data();
    let onnx = s(&mnist().join("lenet_bn.onnx"));
    let other = s(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden/conv/model.onnx"));
    let missing = s(&d.dir.join("missing.nb"));
    let fail = |args: &[&str], code: i32, want: &[&str]| {
        let o = cli(args);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {out}");
        for w in want {
            assert!(out.contains(w), "{args:?}: no '{w}' in {out}");
        }
    };
    fail(&["diff", &onnx, &missing, "--input", &d.eval], 1, &["error: ", "missing.nb"]);
    fail(&["diff", &onnx, &onnx, "--input", &s(&d.dir.join("none.npy"))], 1, &["none.npy"]);
    fail(&["diff", &onnx, &other, "--input", &d.eval], 1, &["different inputs", "'input'", "'x'"]);
    fail(&["diff", &d.eval, &onnx, "--input", &d.eval], 1, &["eval.npy"]);
    let wrong = d.dir.join("wrong.npy");
    write_npy(&wrong, &Tensor::from_vec(&[2, 3, 8, 8], vec![0.0f32; 384]).unwrap()).unwrap();
    fail(&["diff", &onnx, &onnx, "--input", &s(&wrong)], 1, &["wrong.npy", "does not fit input 'input'"]);
    fail(&["diff", &onnx, &onnx], 2, &["--input"]);
    fail(&["diff", &onnx], 2, &["<B>"]);
}
