//! `lite-cli opt` end to end on the golden CNNs in `testdata/golden/`: the `.nb` it writes runs
//! through `lite-cli run` and `lite-cli info` with the onnxruntime outputs, and the listing
//! flags print what they promise.

use lithe_ir::npy::read_npy;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn golden(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden").join(case)
}

fn cli(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lite-cli")).args(args).output().unwrap()
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn opt_writes_an_nb_that_runs_like_onnxruntime() {
    let dir = golden("mobilenet_v2");
    let work = tempfile::tempdir().unwrap();
    let nb = work.path().join("m.nb");
    let o = cli(&[os("opt"), os("--model"), os(&dir.join("model.onnx")), os("--out"), os(&nb)]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for want in ["BatchNormalization", "total", "memory: arena", "wrote"] {
        assert!(out.contains(want), "opt output lacks '{want}':\n{out}");
    }
    // Every BatchNormalization is gone: its row reads "before N, after 0".
    let bn = out.lines().find(|l| l.trim_start().starts_with("BatchNormalization")).unwrap();
    assert!(bn.split_whitespace().last() == Some("0"), "{bn}");

    let outdir = work.path().join("out");
    let r = cli(&[os("run"), os(&nb), os("--input"), os(&dir.join("input_0.npy")), os("--output"), os(&outdir)]);
    assert!(r.status.success(), "{}", text(&r));
    let got = std::fs::read_dir(&outdir).unwrap().next().unwrap().unwrap().path();
    let (g, w) = (read_npy(&got).unwrap().to_f32_vec(), read_npy(&dir.join("output_0.npy")).unwrap().to_f32_vec());
    assert_eq!(g.len(), w.len());
    for (a, b) in g.iter().zip(&w) {
        assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "{a} vs {b}");
    }

    let i = cli(&[os("info"), os(&nb)]);
    assert!(i.status.success(), "{}", text(&i));
    assert!(text(&i).contains("Conv"), "{}", text(&i));
}

#[test]
fn print_flags_list_passes_and_ops() {
    let p = cli(&[os("opt"), os("--print-passes")]);
    assert!(p.status.success());
    for pass in ["fold_constants", "fold_batch_norm", "fuse_activation", "fold_pad", "dead_code"] {
        assert!(text(&p).contains(pass), "{}", text(&p));
    }
    let all = cli(&[os("opt"), os("--print-all-ops")]);
    assert!(all.status.success() && text(&all).contains("FullyConnected") && text(&all).contains("onnx import"));
    let arm = cli(&[os("opt"), os("--print-supported-ops"), os("--target"), os("arm")]);
    assert!(arm.status.success() && text(&arm).contains("operators supported on arm"), "{}", text(&arm));
    // --print-supported-ops needs --target: a usage error.
    assert_eq!(cli(&[os("opt"), os("--print-supported-ops")]).status.code(), Some(2));

    let dir = golden("resnet18_w16");
    let m = cli(&[
        os("opt"),
        os("--model"),
        os(&dir.join("model.onnx")),
        os("--print-model-ops"),
        os("--valid-targets"),
        os("arm"),
    ]);
    let out = text(&m);
    assert!(m.status.success(), "{out}");
    assert!(
        out.contains("operators used by the model") && out.contains("Conv") && !out.contains("BatchNormalization"),
        "{out}"
    );
}

#[test]
fn pass_selection_is_honoured_and_checked() {
    let dir = golden("mobilenet_v1");
    let work = tempfile::tempdir().unwrap();
    let nb = work.path().join("m.nb");
    let model = dir.join("model.onnx");
    // With only constant folding, BatchNormalization stays.
    let o = cli(&[os("opt"), os("--model"), os(&model), os("--out"), os(&nb), os("--passes"), os("fold_constants")]);
    assert!(o.status.success(), "{}", text(&o));
    let bn = text(&o).lines().find(|l| l.trim_start().starts_with("BatchNormalization")).map(str::to_string).unwrap();
    assert!(!bn.ends_with(" 0"), "{bn}");
    let o =
        cli(&[os("opt"), os("--model"), os(&model), os("--out"), os(&nb), os("--disable-pass"), os("fold_batch_norm")]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("fold_batch_norm"), "{}", text(&o));

    let bad = cli(&[os("opt"), os("--model"), os(&model), os("--out"), os(&nb), os("--passes"), os("no_such_pass")]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("unknown pass 'no_such_pass'"), "{}", text(&bad));
    let bad = cli(&[os("opt"), os("--model"), os(&model), os("--out"), os(&nb), os("--valid-targets"), os("mips")]);
    assert_eq!(bad.status.code(), Some(2));
    // Missing --out without a print flag is a usage error.
    assert_eq!(cli(&[os("opt"), os("--model"), os(&model)]).status.code(), Some(2));
}

#[test]
fn symbolic_inputs_stay_symbolic_unless_fixed() {
    // mobilenet_v1 is exported with a dynamic batch axis.
    let dir = golden("mobilenet_v1");
    let model = dir.join("model.onnx");
    let work = tempfile::tempdir().unwrap();
    let nb = work.path().join("m.nb");
    let o = cli(&[os("opt"), os("--model"), os(&model), os("--out"), os(&nb)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("planned when the predictor sees the input shapes"), "{}", text(&o));
    // The symbolic .nb runs on the batch-2 golden input.
    let r = cli(&[os("run"), os(&nb), os("--input"), os(&dir.join("input_0.npy"))]);
    assert!(r.status.success(), "{}", text(&r));

    let fixed = work.path().join("fixed.nb");
    let o = cli(&[
        os("opt"),
        os("--model"),
        os(&model),
        os("--out"),
        os(&fixed),
        os("--input-shape"),
        os("input=2,3,112,112"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("memory: arena"), "{}", text(&o));
    let r = cli(&[os("run"), os(&fixed), os("--input"), os(&dir.join("input_0.npy"))]);
    assert!(r.status.success(), "{}", text(&r));
}

#[test]
fn bench_reports_latency_and_a_profile_naming_the_fast_kernels() {
    let model = golden("mobilenet_v2").join("model.onnx");
    let o = cli(&[os("bench"), os(&model), os("--warmup"), os("1"), os("--repeats"), os("3"), os("--profile")]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for want in ["latency ms: median", "per operator type", "10 slowest nodes", "conv2d_gemm/"] {
        assert!(out.contains(want), "bench output lacks '{want}':\n{out}");
    }
    let conv = out.lines().find(|l| l.starts_with("Conv ")).unwrap_or_default();
    assert!(conv.split_whitespace().nth(1).is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n > 0)), "{out}");
    let o = cli(&[os("bench"), os(&model), os("--repeats"), os("0")]);
    assert!(!o.status.success());
}

#[test]
fn opt_quant_weight_only_writes_smaller_files_that_run_close_to_fp32() {
    let dir = golden("mobilenet_v2");
    let work = tempfile::tempdir().unwrap();
    let run = |nb: &Path, tag: &str| {
        let outdir = work.path().join(tag);
        let r = cli(&[os("run"), os(nb), os("--input"), os(&dir.join("input_0.npy")), os("--output"), os(&outdir)]);
        assert!(r.status.success(), "{}", text(&r));
        let got = std::fs::read_dir(&outdir).unwrap().next().unwrap().unwrap().path();
        read_npy(&got).unwrap().to_f32_vec()
    };
    let fp32 = work.path().join("fp32.nb");
    assert!(cli(&[os("opt"), os("--model"), os(&dir.join("model.onnx")), os("--out"), os(&fp32)]).status.success());
    let want = run(&fp32, "fp32");
    let size32 = std::fs::metadata(&fp32).unwrap().len() as f64;
    // This golden model has random weights, which amplify rounding noise through its 52
    // convs, so the bounds are loose sanity checks; accuracy on a trained model is checked by
    // lithe-quant's MNIST test.
    for (mode, max_ratio, min_cosine) in [("weight-int8", 0.35, 0.9), ("weight-int16", 0.60, 0.9999)] {
        let nb = work.path().join(format!("{mode}.nb"));
        let o = cli(&[
            os("opt"),
            os("--model"),
            os(&dir.join("model.onnx")),
            os("--out"),
            os(&nb),
            os("--quant"),
            os(mode),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains(&format!("{mode}: ")), "{}", text(&o));
        let ratio = std::fs::metadata(&nb).unwrap().len() as f64 / size32;
        assert!(ratio < max_ratio, "{mode}: {ratio}");
        let got = run(&nb, mode);
        let dot: f64 = got.iter().zip(&want).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        let norm = |v: &[f32]| v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
        let cosine = dot / (norm(&got) * norm(&want));
        assert!(cosine >= min_cosine, "{mode}: cosine {cosine}");
    }
    let bad = cli(&[
        os("opt"),
        os("--model"),
        os(&dir.join("model.onnx")),
        os("--out"),
        os(&fp32),
        os("--quant"),
        os("int3"),
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("weight-int8"), "{}", text(&bad));
}
