//! End-to-end tests of the `lite-cli` binary on small ONNX models written by the tests
//! themselves (with the importer's public protobuf types).

use lithe_ir::Tensor;
use lithe_ir::npy::{read_npy, write_npy};
use lithe_onnx::proto;
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---- building models ----

const FLOAT: i32 = 1;

fn value_info(name: &str, elem_type: i32, dims: &[&str]) -> proto::ValueInfoProto {
    use proto::tensor_shape_proto::{Dimension, dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d.parse::<i64>() {
                Ok(n) => dimension::Value::DimValue(n),
                Err(_) => dimension::Value::DimParam((*d).to_string()),
            }),
            ..Default::default()
        })
        .collect();
    proto::ValueInfoProto {
        name: name.into(),
        r#type: Some(proto::TypeProto {
            value: Some(proto::type_proto::Value::TensorType(proto::type_proto::Tensor {
                elem_type,
                shape: Some(proto::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn f32_init(name: &str, dims: &[i64], data: Vec<f32>) -> proto::TensorProto {
    proto::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: FLOAT,
        float_data: data,
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<proto::AttributeProto>,
) -> proto::NodeProto {
    proto::NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| (*s).to_string()).collect(),
        output: outputs.iter().map(|s| (*s).to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn ints_attr(name: &str, v: &[i64]) -> proto::AttributeProto {
    proto::AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: proto::attribute_proto::AttributeType::Ints as i32,
        ..Default::default()
    }
}

fn int_attr(name: &str, v: i64) -> proto::AttributeProto {
    proto::AttributeProto {
        name: name.into(),
        i: Some(v),
        r#type: proto::attribute_proto::AttributeType::Int as i32,
        ..Default::default()
    }
}

fn model(graph: proto::GraphProto) -> Vec<u8> {
    proto::ModelProto {
        ir_version: 8,
        producer_name: "lite-cli tests".into(),
        opset_import: vec![proto::OperatorSetIdProto { domain: String::new(), version: 17 }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Weights of the MLP: W[k][j] = (k * 6 + j) / 8 - 1.25, b[j] = j / 10 - 0.2.
fn mlp_weights() -> (Vec<f32>, Vec<f32>) {
    let w = (0..24).map(|i| i as f32 / 8.0 - 1.25).collect();
    let b = (0..6).map(|j| j as f32 / 10.0 - 0.2).collect();
    (w, b)
}

/// y/out:0 = relu(x @ W + b), x: f32[batch, 4], W: [4, 6], b: [6].
fn mlp_model() -> Vec<u8> {
    let (w, b) = mlp_weights();
    model(proto::GraphProto {
        name: "mlp".into(),
        node: vec![
            node("MatMul", "mm", &["x", "W"], &["h"], vec![]),
            node("Add", "add", &["h", "B"], &["z"], vec![]),
            node("Relu", "relu", &["z"], &["y/out:0"], vec![]),
        ],
        initializer: vec![f32_init("W", &[4, 6], w), f32_init("B", &[6], b)],
        input: vec![value_info("x", FLOAT, &["batch", "4"])],
        output: vec![value_info("y/out:0", FLOAT, &["batch", "6"])],
        ..Default::default()
    })
}

fn mlp_expected(x: &[f32]) -> Vec<f32> {
    let (w, b) = mlp_weights();
    let mut out = Vec::new();
    for row in x.chunks(4) {
        for j in 0..6 {
            let s: f32 = b[j] + row.iter().enumerate().map(|(k, v)| v * w[k * 6 + j]).sum::<f32>();
            out.push(s.max(0.0));
        }
    }
    out
}

/// sum = a + b, prod = a * b with a, b: f32[2, 3].
fn two_input_model() -> Vec<u8> {
    model(proto::GraphProto {
        name: "two".into(),
        node: vec![
            node("Add", "add", &["a", "b"], &["sum"], vec![]),
            node("Mul", "mul", &["a", "b"], &["prod"], vec![]),
        ],
        input: vec![value_info("a", FLOAT, &["2", "3"]), value_info("b", FLOAT, &["2", "3"])],
        output: vec![value_info("sum", FLOAT, &["2", "3"]), value_info("prod", FLOAT, &["2", "3"])],
        ..Default::default()
    })
}

/// Conv(3->4, 3x3, pad 1) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(4->2), x: [1,3,8,8].
fn conv_model() -> Vec<u8> {
    let w: Vec<f32> = (0..108).map(|i| ((i % 7) as f32 - 3.0) / 10.0).collect();
    let fc: Vec<f32> = (0..8).map(|i| i as f32 / 4.0 - 1.0).collect();
    model(proto::GraphProto {
        name: "convnet".into(),
        node: vec![
            node(
                "Conv",
                "conv",
                &["x", "cw", "cb"],
                &["c"],
                vec![ints_attr("kernel_shape", &[3, 3]), ints_attr("pads", &[1, 1, 1, 1])],
            ),
            node("Relu", "relu", &["c"], &["r"], vec![]),
            node("GlobalAveragePool", "gap", &["r"], &["p"], vec![]),
            node("Flatten", "flat", &["p"], &["f"], vec![int_attr("axis", 1)]),
            node("Gemm", "fc", &["f", "fw", "fb"], &["logits"], vec![int_attr("transB", 1)]),
        ],
        initializer: vec![
            f32_init("cw", &[4, 3, 3, 3], w),
            f32_init("cb", &[4], vec![0.1, -0.1, 0.2, 0.0]),
            f32_init("fw", &[2, 4], fc),
            f32_init("fb", &[2], vec![0.5, -0.5]),
        ],
        input: vec![value_info("x", FLOAT, &["1", "3", "8", "8"])],
        output: vec![value_info("logits", FLOAT, &["1", "2"])],
        ..Default::default()
    })
}

fn unknown_op_model() -> Vec<u8> {
    model(proto::GraphProto {
        name: "fancy".into(),
        node: vec![node("FancyOp", "fancy_node", &["x"], &["y"], vec![])],
        input: vec![value_info("x", FLOAT, &["2"])],
        output: vec![value_info("y", FLOAT, &["2"])],
        ..Default::default()
    })
}

// ---- running the binary ----

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn npy(&self, name: &str, t: &Tensor) -> PathBuf {
        let p = self.path(name);
        write_npy(&p, t).unwrap();
        p
    }
}

fn cli(dir: &Dir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lite-cli"))
        .args(args)
        .env_remove("RUST_LOG")
        .current_dir(dir.0.path())
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_ok(o: &Output) -> String {
    assert!(o.status.success(), "exit {:?}, stderr: {}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    stdout(o)
}

/// Exit code 1, one `error: ...` line on stderr, no panic; returns the line.
fn assert_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "stderr: {err}, stdout: {}", stdout(o));
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

// ---- tests ----

#[test]
fn ops_lists_supported_operators_sorted() {
    let dir = Dir::new();
    let out = assert_ok(&cli(&dir, &["ops"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() > 20, "{out}");
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    for op in ["Conv", "Gemm", "MatMul", "Relu", "Softmax"] {
        assert!(lines.contains(&op), "{op} missing from {out}");
    }
    assert!(!lines.contains(&"FancyOp"));
}

#[test]
fn info_text_reports_types_ops_params_and_unknown_flops() {
    let dir = Dir::new();
    let m = dir.write("mlp.onnx", &mlp_model());
    let out = assert_ok(&cli(&dir, &["info", s(&m)]));
    assert!(out.contains("x: f32[batch,4]"), "{out}");
    assert!(out.contains("y/out:0: f32[batch,6]"), "{out}");
    assert!(out.contains("operators (3 nodes):"), "{out}");
    for op in ["MatMul", "Add", "Relu"] {
        assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [op, "1"]), "{op}: {out}");
    }
    assert!(out.contains("parameters: 30\n"), "{out}");
    // Symbolic batch: FLOPs are unknown and the report says so.
    assert!(out.contains("total FLOPs: ?"), "{out}");
    assert!(out.contains("--input-shape"), "{out}");
    let mm = out.lines().find(|l| l.trim_start().starts_with("mm ")).unwrap();
    assert!(mm.contains("MatMul") && mm.contains("f32[batch,6]") && mm.trim_end().ends_with('?'), "{mm}");
}

#[test]
fn info_json_with_fixed_input_shape() {
    let dir = Dir::new();
    let m = dir.write("mlp.onnx", &mlp_model());
    let out = assert_ok(&cli(&dir, &["info", s(&m), "--input-shape", "x=2,4", "--json"]));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["inputs"][0]["name"], "x");
    assert_eq!(j["inputs"][0]["dtype"], "f32");
    assert_eq!(j["inputs"][0]["shape"], serde_json::json!([2, 4]));
    assert_eq!(j["total_params"], 30);
    assert_eq!(j["num_nodes"], 3);
    assert_eq!(j["op_histogram"]["MatMul"], 1);
    assert_eq!(j["nodes_with_unknown_flops"], 0);
    let nodes = j["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[0]["op"], "MatMul");
    assert_eq!(nodes[0]["outputs"][0]["shape"], serde_json::json!([2, 6]));
    assert_eq!(nodes[0]["params"], 24);
    // MatMul [2,4] x [4,6]: 2 * 2 * 4 * 6 FLOPs.
    assert_eq!(nodes[0]["flops"], 96);
    let sum: u64 = nodes.iter().map(|n| n["flops"].as_u64().unwrap()).sum();
    assert_eq!(j["total_flops"].as_u64(), Some(sum));

    let symbolic: serde_json::Value = serde_json::from_str(&assert_ok(&cli(&dir, &["info", s(&m), "--json"]))).unwrap();
    assert_eq!(symbolic["inputs"][0]["shape"], serde_json::json!(["batch", 4]));
    assert!(symbolic["total_flops"].is_null());
    assert_eq!(symbolic["nodes_with_unknown_flops"], 3);
}

#[test]
fn info_on_a_conv_net() {
    let dir = Dir::new();
    let m = dir.write("conv.onnx", &conv_model());
    let j: serde_json::Value = serde_json::from_str(&assert_ok(&cli(&dir, &["info", s(&m), "--json"]))).unwrap();
    assert_eq!(j["total_params"], 108 + 4 + 8 + 2);
    assert_eq!(j["num_nodes"], 5);
    assert_eq!(j["outputs"][0]["shape"], serde_json::json!([1, 2]));
    let conv = &j["nodes"][0];
    assert_eq!(conv["op"], "Conv");
    assert_eq!(conv["params"], 112);
    assert_eq!(conv["outputs"][0]["shape"], serde_json::json!([1, 4, 8, 8]));
    // At least the multiply-adds: 2 * (4*8*8 outputs) * (3*3*3 taps).
    assert!(conv["flops"].as_u64().unwrap() >= 2 * 256 * 27, "{conv}");
    assert!(j["total_flops"].as_u64().is_some());
    let text = assert_ok(&cli(&dir, &["info", s(&m)]));
    assert!(text.contains("total FLOPs: ") && !text.contains("total FLOPs: ?"), "{text}");
}

#[test]
fn run_single_input_writes_outputs_and_prints_top5() {
    let dir = Dir::new();
    let m = dir.write("mlp.onnx", &mlp_model());
    let xv = vec![1.0f32, -0.5, 2.0, 0.25];
    let x = dir.npy("x.npy", &Tensor::from_vec(&[1, 4], xv.clone()).unwrap());
    let outdir = dir.path("out/nested");
    let out = assert_ok(&cli(&dir, &["run", s(&m), "--input", s(&x), "--output", s(&outdir)]));

    let file = outdir.join("y_out_0.npy");
    let y = read_npy(&file).unwrap();
    assert_eq!(y.shape(), [1, 6]);
    let want = mlp_expected(&xv);
    close(&y.to_f32_vec(), &want);
    assert!(out.contains("output 'y/out:0': f32[1,6]"), "{out}");
    assert!(out.contains(&format!("saved to {}", file.display())), "{out}");
    assert!(out.contains("run time: ") && out.contains(" ms"), "{out}");

    // top-5 indices, largest first.
    let mut idx: Vec<usize> = (0..6).collect();
    idx.sort_by(|&a, &b| want[b].total_cmp(&want[a]).then(a.cmp(&b)));
    let top = out.lines().find(|l| l.trim_start().starts_with("top-5: ")).unwrap();
    let got: Vec<usize> = top.trim_start()["top-5: ".len()..]
        .split(", ")
        .map(|p| p.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(got, idx[..5]);
    let max = want.iter().copied().fold(f32::MIN, f32::max);
    assert!(out.contains(&format!("max {}", max)), "{out}");
}

#[test]
fn run_by_name_at_another_batch_without_writing() {
    let dir = Dir::new();
    let m = dir.write("mlp.onnx", &mlp_model());
    let xv: Vec<f32> = (0..12).map(|i| i as f32 / 4.0 - 1.0).collect();
    let x = dir.npy("x3.npy", &Tensor::from_vec(&[3, 4], xv).unwrap());
    let before: Vec<_> = std::fs::read_dir(dir.0.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    let out = assert_ok(&cli(&dir, &["run", s(&m), "--input", &format!("x={}", s(&x))]));
    assert!(out.contains("output 'y/out:0': f32[3,6]"), "{out}");
    assert!(!out.contains("top-5"), "{out}");
    assert!(!out.contains("saved to"), "{out}");
    let after: Vec<_> = std::fs::read_dir(dir.0.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before.len(), after.len());
}

#[test]
fn run_two_inputs_by_index_and_name() {
    let dir = Dir::new();
    let m = dir.write("two.onnx", &two_input_model());
    let a = dir.npy("a.npy", &Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
    let b = dir.npy("b.npy", &Tensor::from_vec(&[2, 3], vec![0.5f32, -1.0, 2.0, 0.0, 1.0, -2.0]).unwrap());
    let o = dir.path("o");
    let out = assert_ok(&cli(
        &dir,
        &["run", s(&m), "-i", &format!("1={}", s(&b)), "-i", &format!("a={}", s(&a)), "-o", s(&o)],
    ));
    close(&read_npy(&o.join("sum.npy")).unwrap().to_f32_vec(), &[1.5, 1.0, 5.0, 4.0, 6.0, 4.0]);
    close(&read_npy(&o.join("prod.npy")).unwrap().to_f32_vec(), &[0.5, -2.0, 6.0, 0.0, 5.0, -12.0]);
    assert!(out.contains("output 'sum': f32[2,3]  min 1  max 6  mean 3.583333"), "{out}");
    assert!(out.contains("output 'prod': f32[2,3]  min -12  max 6  mean -0.416667"), "{out}");
}

#[test]
fn errors_are_one_line_with_exit_code_1() {
    let dir = Dir::new();
    let mlp = dir.write("mlp.onnx", &mlp_model());
    let two = dir.write("two.onnx", &two_input_model());
    let good = dir.npy("good.npy", &Tensor::from_vec(&[1, 4], vec![0.0f32; 4]).unwrap());
    let pair = dir.npy("pair.npy", &Tensor::zeros(lithe_ir::DType::F32, &[2, 3]));

    let missing = dir.path("nope.onnx");
    let e = assert_error(&cli(&dir, &["info", s(&missing)]));
    assert!(e.contains("nope.onnx"), "{e}");

    let bytes = mlp_model();
    let truncated = dir.write("trunc.onnx", &bytes[..bytes.len() / 2]);
    let e = assert_error(&cli(&dir, &["info", s(&truncated)]));
    assert!(e.contains("trunc.onnx"), "{e}");

    let e = assert_error(&cli(&dir, &["run", s(&good), "--input", s(&good)]));
    assert!(e.contains("good.npy"), "{e}");

    let fancy = dir.write("fancy.onnx", &unknown_op_model());
    let e = assert_error(&cli(&dir, &["info", s(&fancy)]));
    assert!(e.contains("FancyOp"), "{e}");

    let bad_shape = dir.npy("bad_shape.npy", &Tensor::zeros(lithe_ir::DType::F32, &[1, 5]));
    let e = assert_error(&cli(&dir, &["run", s(&mlp), "--input", s(&bad_shape)]));
    assert!(e.contains("input 'x' expects f32[batch,4], got f32[1,5]: dim 1 is 5, expected 4"), "{e}");

    let bad_dtype = dir.npy("bad_dtype.npy", &Tensor::from_vec(&[1, 4], vec![1i64, 2, 3, 4]).unwrap());
    let e = assert_error(&cli(&dir, &["run", s(&mlp), "--input", s(&bad_dtype)]));
    assert!(e.contains("dtype is i64, expected f32"), "{e}");

    let e = assert_error(&cli(&dir, &["run", s(&two), "--input", &format!("a={}", s(&pair))]));
    assert!(e.contains("missing input 'b' (f32[2,3])"), "{e}");

    let e = assert_error(&cli(&dir, &["run", s(&mlp), "--input", &format!("zz={}", s(&good))]));
    assert!(e.contains("no input named 'zz' (inputs: x)"), "{e}");

    let e = assert_error(&cli(&dir, &["run", s(&mlp), "--input", "absent.npy"]));
    assert!(e.contains("cannot read input 'x' from 'absent.npy'"), "{e}");

    let junk = dir.write("junk.npy", b"\x93NUMPY\x01\x00\xff\xffgarbage");
    let e = assert_error(&cli(&dir, &["run", s(&mlp), "--input", s(&junk)]));
    assert!(e.contains("junk.npy"), "{e}");

    let e = assert_error(&cli(&dir, &["run", s(&mlp)]));
    assert!(e.contains("missing input 'x'"), "{e}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = Dir::new();
    for args in [&["frobnicate"][..], &["info"], &["run"], &["info", "m.onnx", "--input-shape", "x"]] {
        let o = cli(&dir, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_ok(&cli(&dir, &["--help"]));
}

#[test]
fn verbose_logs_go_to_stderr() {
    let dir = Dir::new();
    let m = dir.write("mlp.onnx", &mlp_model());
    let x = dir.npy("x.npy", &Tensor::from_vec(&[1, 4], vec![0.5f32; 4]).unwrap());
    let quiet = cli(&dir, &["run", s(&m), "--input", s(&x)]);
    assert_ok(&quiet);
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    let loud = cli(&dir, &["-vv", "run", s(&m), "--input", s(&x)]);
    let out = assert_ok(&loud);
    let log = String::from_utf8_lossy(&loud.stderr);
    assert!(log.contains("DEBUG"), "{log}");
    assert!(!log.contains('\x1b'), "no colors when stderr is not a terminal: {log:?}");
    assert!(out.contains("output 'y/out:0'"));
    assert!(!out.contains("DEBUG"));
}
