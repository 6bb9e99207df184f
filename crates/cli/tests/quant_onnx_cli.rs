//! `lite-cli quant -o M.onnx` / `lite-cli opt --out M.onnx`: the quantized model as ONNX (QDQ for
//! int8, DequantizeLinear of integer weights for weight-only). Round trip without Python: the
//! exported int8 MNIST net imported again and optimized has the `.nb`'s int8 graph (the same
//! QConv nodes) and gives the `.nb`'s outputs bit for bit.

use lithe_ir::npy::write_npy;
use lithe_ir::{Graph, Op, Tensor};
use lithe_onnx::{ImportOptions, load_model};
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use std::collections::BTreeMap;
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

/// The first `n` images of an IDX file as `n x 1 x 28 x 28` f32 in `[0, 1]`.
fn images(idx: &str, n: usize) -> Tensor {
    let b = std::fs::read(mnist().join(idx)).unwrap();
    let px: Vec<f32> = b[16..16 + n * 784].iter().map(|&p| f32::from(p) / 255.0).collect();
    Tensor::from_vec(&[n, 1, 28, 28], px).unwrap()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Operator histogram, and the QConv nodes as (output value, output dtype, epilogue) sorted.
fn structure(g: &Graph) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut hist = BTreeMap::new();
    let mut qconv = Vec::new();
    for id in g.node_ids() {
        let n = g.node(id);
        *hist.entry(n.op.name().to_string()).or_insert(0) += 1;
        if n.op.name() == "QConv" {
            let out = n.outputs.first().map(|v| v.name.clone()).unwrap_or_default();
            qconv.push(format!("{out} {:?}", n.op));
        }
    }
    qconv.sort();
    (hist, qconv)
}

/// The `.nb` graph and the re-imported, optimized ONNX graph, with their outputs on `x`.
fn both(nb: &Path, onnx: &Path, x: &Tensor) -> ((Graph, Vec<f32>), (Graph, Vec<f32>)) {
    let (nb_graph, _) = lithe_nbformat::read(&std::fs::read(nb).unwrap()).unwrap();
    let nb_out = Predictor::from_file(nb, Default::default()).unwrap().run_with(vec![x.clone()]).unwrap();
    let mut g = load_model(onnx, &ImportOptions::default()).unwrap();
    PassManager::default_pipeline().run(&mut g).unwrap();
    let onnx_out = Predictor::new(g.clone()).unwrap().run_with(vec![x.clone()]).unwrap();
    ((nb_graph, nb_out[0].to_f32_vec()), (g, onnx_out[0].to_f32_vec()))
}

#[test]
fn int8_onnx_export_reimports_to_the_same_qconv_graph_and_outputs() {
    let work = tempfile::tempdir().unwrap();
    let calib = work.path().join("calib.npy");
    write_npy(&calib, &images("train-images-idx3-ubyte", 200)).unwrap();
    let x = images("t10k-images-idx3-ubyte", 100);
    for model in ["lenet_bn", "dwsep"] {
        let (nb, onnx) = (work.path().join(format!("{model}.nb")), work.path().join(format!("{model}.onnx")));
        for dest in [&nb, &onnx] {
            let m = s(&mnist().join(format!("{model}.onnx")));
            let o = cli(&["quant", "-m", &m, "-o", &s(dest), "--quant", "int8", "--calib", &s(&calib)]);
            assert!(o.status.success(), "{}", text(&o));
            let kind = if dest == &onnx { "(ONNX)" } else { "(.nb)" };
            assert!(text(&o).contains(kind), "{}", text(&o));
        }
        // The file is QDQ ONNX: no Lithe-only operator, int8 weights behind DequantizeLinear.
        let proto = std::fs::read(&onnx).unwrap();
        let plain = load_model(&onnx, &ImportOptions::default()).unwrap();
        let (hist, _) = structure(&plain);
        assert!(!hist.contains_key("QConv") && !hist.contains_key("FullyConnected"), "{model}: {hist:?}");
        assert!(hist["DequantizeLinear"] > hist["Conv"] && hist["QuantizeLinear"] >= 1, "{model}: {hist:?}");
        assert!(proto.len() < std::fs::metadata(mnist().join(format!("{model}.onnx"))).unwrap().len() as usize / 2);

        let ((nb_graph, want), (g, got)) = both(&nb, &onnx, &x);
        let (a, b) = (structure(&nb_graph), structure(&g));
        assert!(a.0.get("QConv").copied().unwrap_or(0) >= 2, "{model}: {:?}", a.0);
        assert_eq!(a, b, "{model}: the re-imported ONNX optimizes to another graph");
        assert_eq!(want.len(), got.len());
        let differ = want.iter().zip(&got).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "{model}: {differ} of {} outputs differ from the .nb", want.len());
    }
}

#[test]
fn weight_only_onnx_export_runs_like_the_nb() {
    let work = tempfile::tempdir().unwrap();
    let x = images("t10k-images-idx3-ubyte", 16);
    let m = s(&mnist().join("dwsep.onnx"));
    let (nb, onnx) = (work.path().join("w8.nb"), work.path().join("w8.onnx"));
    for dest in [&nb, &onnx] {
        let o = cli(&["opt", "--model", &m, "--out", &s(dest), "--quant", "weight-int8"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let plain = load_model(&onnx, &ImportOptions::default()).unwrap();
    let int8_weights =
        plain.node_ids().into_iter().filter(|&id| matches!(plain.node(id).op, Op::DequantizeLinear { .. })).count();
    assert!(int8_weights >= 3, "{int8_weights} DequantizeLinear nodes");
    let ((_, want), (_, got)) = both(&nb, &onnx, &x);
    let err = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(err <= 1e-5, "max abs difference {err}");
}

#[test]
fn onnx_export_errors_name_the_file() {
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("missing_dir/m.onnx");
    let m = s(&mnist().join("lenet_bn.onnx"));
    let o = cli(&["opt", "--model", &m, "--out", &s(&dest)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("cannot export") && text(&o).contains("m.onnx"), "{}", text(&o));
}
