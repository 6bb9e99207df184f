//! ONNX export: every bundled model (`testdata/golden`, the MNIST nets) exported and imported
//! again gives the same outputs, as imported and after the optimization passes (fused
//! epilogues and FullyConnected expanded back to standard ONNX); value names, dtypes and
//! symbolic dims survive; malformed graphs give typed errors.

mod export_util;

use export_util::*;
use lithe_ir::op::{Activation, ConvAttrs, Epilogue, FcAttrs};
use lithe_ir::{DType, Dim, Graph, Op, Outlet, Shape, Tensor, TypeInfo, ValueInfo};
use lithe_onnx::proto::ModelProto;
use lithe_onnx::{EXPORT_OPSET, ExportOptions, ImportOptions, OnnxError, export_model, export_model_proto, load_model};
use lithe_passes::PassManager;
use prost::Message;
use std::path::PathBuf;

fn golden_cases() -> Vec<PathBuf> {
    let dir = testdata().join("golden");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    v.sort();
    assert!(v.len() >= 30, "golden data incomplete: {} cases in {}", v.len(), dir.display());
    v
}

fn name_of(p: &std::path::Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn io_names(g: &Graph) -> (Vec<String>, Vec<String>) {
    let ins = g.inputs().iter().map(|&id| g.value(Outlet::new(id, 0)).name.clone()).collect();
    let outs = g.outputs().iter().map(|&o| g.value(o).name.clone()).collect();
    (ins, outs)
}

/// Every golden case: import, export, import again: same input/output names and the same
/// outputs bit for bit.
#[test]
fn golden_models_round_trip_bit_exact() {
    let mut failures = Vec::new();
    for dir in golden_cases() {
        let case = name_of(&dir);
        let result = (|| -> Result<(), String> {
            let g = load_model(&dir.join("model.onnx"), &ImportOptions::default()).map_err(|e| e.to_string())?;
            let inputs = numbered_npy(&dir, "input");
            let want = run(&g, &inputs)?;
            let back = round_trip(&g)?;
            if io_names(&back) != io_names(&g) {
                return Err(format!("names {:?} became {:?}", io_names(&g), io_names(&back)));
            }
            same_bits("round trip", &run(&back, &inputs)?, &want)
        })();
        if let Err(e) = result {
            failures.push(format!("{case}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

/// The optimized graph, exported (fused forms expanded) and imported again.
struct Optimized {
    fused: (usize, usize),
    /// Max abs difference of the re-imported (unfused) graph from the optimized one.
    unfused_err: f64,
    /// Max abs difference from the reference outputs (onnxruntime's for golden cases).
    reference_err: f64,
}

/// Optimize, export, re-import; the re-imported graph, optimized again, must fuse the same
/// convs and FCs and give the optimized graph's outputs bit for bit.
fn optimized_round_trip(g: &Graph, inputs: &[Tensor], reference: &[Tensor]) -> Result<Optimized, String> {
    let mut opt = g.clone();
    PassManager::default_pipeline().run(&mut opt).map_err(|e| format!("passes: {e}"))?;
    let want = run(&opt, inputs)?;
    let back = round_trip(&opt)?;
    if fused_counts(&back) != (0, 0) {
        return Err("the re-imported graph has fused ops".into());
    }
    let got = run(&back, inputs)?;
    let mut again = back.clone();
    PassManager::default_pipeline().run(&mut again).map_err(|e| format!("passes on the re-import: {e}"))?;
    if fused_counts(&again) != fused_counts(&opt) {
        let h = lithe_passes::op_histogram;
        return Err(format!("re-optimized ops {:?} differ from {:?}", h(&again), h(&opt)));
    }
    same_bits("re-optimized", &run(&again, inputs)?, &want)?;
    Ok(Optimized {
        fused: fused_counts(&opt),
        unfused_err: max_abs_diff(&got, &want),
        reference_err: max_abs_diff(&got, reference),
    })
}

/// Every golden case after the default pipeline: the exported model reproduces the optimized
/// outputs and onnxruntime's (the golden tolerance, 1e-4 + 1e-4 relative, as max abs here).
#[test]
fn optimized_golden_models_export() {
    let mut failures = Vec::new();
    let (mut convs, mut fcs) = (0, 0);
    for dir in golden_cases() {
        let case = name_of(&dir);
        let result = (|| -> Result<Optimized, String> {
            let g = load_model(&dir.join("model.onnx"), &ImportOptions::default()).map_err(|e| e.to_string())?;
            optimized_round_trip(&g, &numbered_npy(&dir, "input"), &numbered_npy(&dir, "output"))
        })();
        match result {
            Ok(o) => {
                println!(
                    "{case}: fused conv {} fc {}; max abs diff vs optimized {:.2e}, vs onnxruntime {:.2e}",
                    o.fused.0, o.fused.1, o.unfused_err, o.reference_err
                );
                convs += o.fused.0;
                fcs += o.fused.1;
                if o.unfused_err > 1e-4 || o.reference_err > 1e-3 {
                    failures.push(format!("{case}: max abs diff {:.2e} / {:.2e}", o.unfused_err, o.reference_err));
                }
            }
            Err(e) => failures.push(format!("{case}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
    assert!(convs >= 50 && fcs >= 5, "too few fused ops exercised: {convs} convs, {fcs} FCs");
}

/// The MNIST nets (BatchNormalization folded, Conv+ReLU and FC+ReLU fused), symbolic batch.
#[test]
fn optimized_mnist_models_export() {
    let x = mnist_images(16);
    for name in ["lenet_bn", "dwsep"] {
        let path = testdata().join(format!("mnist/{name}.onnx"));
        let g = load_model(&path, &ImportOptions::default()).unwrap();
        let want = run(&g, std::slice::from_ref(&x)).unwrap();
        let o = optimized_round_trip(&g, std::slice::from_ref(&x), &want).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("{name}: fused {:?}, max abs diff {:.2e} / {:.2e}", o.fused, o.unfused_err, o.reference_err);
        assert!(o.fused.0 >= 2 && o.fused.1 >= 1, "{name}: {:?}", o.fused);
        assert!(
            o.unfused_err <= 1e-4 && o.reference_err <= 1e-4,
            "{name}: {:.2e} {:.2e}",
            o.unfused_err,
            o.reference_err
        );
        // The batch dim stays symbolic.
        let mut opt = g.clone();
        PassManager::default_pipeline().run(&mut opt).unwrap();
        let m = export_model_proto(&opt, &ExportOptions::default()).unwrap();
        let back = round_trip(&opt).unwrap();
        let ty = &back.value(Outlet::new(back.inputs()[0], 0)).ty;
        assert_eq!(ty.shape, g.value(Outlet::new(g.inputs()[0], 0)).ty.shape, "{name}");
        assert!(matches!(ty.shape.as_ref().map(|s| &s.dims()[0]), Some(Dim::Sym(_))), "{name}: {ty}");
        let graph = m.graph.as_ref().unwrap();
        assert!(graph.node.iter().all(|n| n.domain.is_empty()), "{name}: non-default domain");
        assert!(!graph.node.iter().any(|n| n.op_type == "FullyConnected"), "{name}");
    }
}

/// The model header: one default-domain opset, IR version 10, decodable bytes.
#[test]
fn model_header() {
    let g = load_model(&testdata().join("golden/gemm/model.onnx"), &ImportOptions::default()).unwrap();
    let bytes = export_model(&g, &ExportOptions::default()).unwrap();
    let m = ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(m.ir_version, 10);
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!((m.opset_import[0].domain.as_str(), m.opset_import[0].version), ("", EXPORT_OPSET));
    assert_eq!(m.producer_name, "lithe");
    let graph = m.graph.unwrap();
    assert_eq!(graph.input.len(), g.inputs().len());
    assert_eq!(graph.output.len(), g.outputs().len());
}

/// Constants of every dtype (and rank 0, and empty) come back as the same tensors.
#[test]
fn initializers_of_every_dtype() {
    use half::f16;
    let consts = vec![
        Tensor::from_vec(&[2, 2], vec![1.5f32, -0.0, f32::INFINITY, 3.25]).unwrap(),
        Tensor::from_vec(&[3], vec![f16::from_f32(0.5), f16::from_f32(-2.0), f16::from_f32(65504.0)]).unwrap(),
        Tensor::from_vec(&[3], vec![-128i8, 0, 127]).unwrap(),
        Tensor::from_vec(&[3], vec![0u8, 128, 255]).unwrap(),
        Tensor::from_vec(&[2], vec![i16::MIN, i16::MAX]).unwrap(),
        Tensor::from_vec(&[2], vec![i32::MIN, 7]).unwrap(),
        Tensor::from_vec(&[1, 2], vec![i64::MAX, -9]).unwrap(),
        Tensor::from_vec(&[3], vec![true, false, true]).unwrap(),
        Tensor::scalar(42i64),
        Tensor::zeros(DType::F32, &[0, 4]),
    ];
    let mut g = Graph::new("consts");
    let x = g.add_input("x", TypeInfo::new(DType::F32, Shape(vec![Dim::Sym("n".into()), Dim::Unknown, Dim::Known(3)])));
    let mut outs = vec![];
    for (i, t) in consts.iter().enumerate() {
        let c = g.add_const(format!("c{i}"), t.clone());
        let id = g
            .add_node(
                format!("id{i}"),
                Op::Identity,
                &[Some(c)],
                vec![ValueInfo { name: format!("y{i}"), ty: TypeInfo::new(t.dtype(), t.ir_shape()) }],
            )
            .unwrap();
        outs.push(Outlet::new(id, 0));
    }
    outs.push(x);
    g.set_outputs(outs);
    let back = round_trip(&g).unwrap();
    assert_eq!(io_names(&back), io_names(&g));
    for (i, t) in consts.iter().enumerate() {
        let o = back.find_value(&format!("c{i}")).unwrap();
        assert_eq!(back.const_value(o), Some(t), "c{i}");
    }
    let x_back = back.value(Outlet::new(back.inputs()[0], 0));
    assert_eq!(x_back.ty, g.value(x).ty);
}

fn conv_graph(epilogue: Epilogue, residual: bool, slope: bool) -> (Graph, Outlet) {
    let mut g = Graph::new("conv");
    let ty = TypeInfo::new(DType::F32, Shape::known(&[1, 2, 4, 4]));
    let x = g.add_input("x", ty.clone());
    let r = g.add_input("r", ty.clone());
    let w = g.add_const("w", Tensor::from_vec(&[2, 2, 1, 1], vec![0.5f32, -1.0, 2.0, 0.25]).unwrap());
    let b = g.add_const("b", Tensor::from_vec(&[2], vec![0.1f32, -0.2]).unwrap());
    let s = g.add_const("slope", Tensor::from_vec(&[2, 1, 1], vec![0.1f32, 0.3]).unwrap());
    let attrs = ConvAttrs { epilogue, ..Default::default() };
    let inputs = [Some(x), Some(w), Some(b), residual.then_some(r), slope.then_some(s)];
    let n = g.add_node("conv0", Op::Conv(attrs), &inputs, vec![ValueInfo { name: "y".into(), ty }]).unwrap();
    let y = Outlet::new(n, 0);
    g.set_outputs(vec![y]);
    (g, y)
}

/// Each fused activation, with and without the residual, expands to a graph computing the
/// same values: bit for bit with the reference kernels (whose epilogue is the standalone
/// ops), within 1e-5 with the predictor's fused kernels.
#[test]
fn every_conv_epilogue_expands_exactly() {
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::Clip { min: 0.0, max: 6.0 },
        Activation::Clip { min: -0.5, max: f32::INFINITY },
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::PRelu,
        Activation::HardSwish,
        Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
        Activation::Sigmoid,
        Activation::Tanh,
    ];
    let xs: Vec<f32> = (0..32).map(|i| (i as f32 - 15.0) * 0.37).collect();
    let x = Tensor::from_vec(&[1, 2, 4, 4], xs.clone()).unwrap();
    let r = Tensor::from_vec(&[1, 2, 4, 4], xs.iter().rev().map(|v| v * 0.5).collect()).unwrap();
    for residual in [false, true] {
        for act in acts {
            let e = Epilogue { residual, activation: act };
            if e.is_empty() {
                continue;
            }
            let (g, _) = conv_graph(e, residual, act == Activation::PRelu);
            let m = export_model_proto(&g, &ExportOptions::default()).unwrap();
            let types: Vec<&str> = m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
            let mut expect = vec!["Conv"];
            if residual {
                expect.push("Add");
            }
            if !act.is_none() {
                expect.push(act.name());
            }
            assert_eq!(types, expect, "{e:?}");
            let back = round_trip(&g).unwrap();
            let inputs = [x.clone(), r.clone()];
            let want = run_reference(&g, &inputs).unwrap();
            same_bits(&format!("{e:?}"), &run_reference(&back, &inputs).unwrap(), &want).unwrap();
            // The predictor's fused kernels may round differently from the standalone ops.
            let err = max_abs_diff(&run(&back, &inputs).unwrap(), &run(&g, &inputs).unwrap());
            assert!(err <= 1e-5, "{e:?}: predictor max abs diff {err:e}");
        }
    }
}

/// FullyConnected on a 3-D input, with and without bias, with a PRelu slope.
#[test]
fn fully_connected_expands_to_matmul_add() {
    for (bias, act) in
        [(true, Activation::Relu), (false, Activation::None), (true, Activation::PRelu), (false, Activation::Sigmoid)]
    {
        let mut g = Graph::new("fc");
        let x = g.add_input("x", TypeInfo::new(DType::F32, Shape::known(&[2, 3, 4])));
        let w = g.add_const("w", Tensor::from_vec(&[4, 5], (0..20).map(|i| (i as f32 - 9.5) * 0.1).collect()).unwrap());
        let b = g.add_const("b", Tensor::from_vec(&[5], vec![0.5f32, -0.5, 0.0, 1.0, -1.0]).unwrap());
        let s = g.add_const("s", Tensor::from_vec(&[5], vec![0.1f32, 0.2, 0.3, 0.4, 0.5]).unwrap());
        let slope = (act == Activation::PRelu).then_some(s);
        let ty = TypeInfo::new(DType::F32, Shape::known(&[2, 3, 5]));
        let n = g
            .add_node(
                "fc0",
                Op::FullyConnected(FcAttrs { activation: act }),
                &[Some(x), Some(w), bias.then_some(b), slope],
                vec![ValueInfo { name: "y".into(), ty }],
            )
            .unwrap();
        g.set_outputs(vec![Outlet::new(n, 0)]);
        let m = export_model_proto(&g, &ExportOptions::default()).unwrap();
        let types: Vec<&str> = m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(types[0], "MatMul");
        assert_eq!(types.contains(&"Add"), bias, "{types:?}");
        assert_eq!(m.graph.as_ref().unwrap().output[0].name, "y");
        let input = Tensor::from_vec(&[2, 3, 4], (0..24).map(|i| (i as f32 - 11.0) * 0.3).collect()).unwrap();
        let inputs = [input];
        same_bits("fc", &run(&round_trip(&g).unwrap(), &inputs).unwrap(), &run(&g, &inputs).unwrap()).unwrap();
    }
}

fn expect_export_error(g: &Graph, node: &str, op: &str, needle: &str) {
    match export_model(g, &ExportOptions::default()) {
        Err(OnnxError::Export { node: n, op: o, message }) => {
            assert_eq!((n.as_str(), o.as_str()), (node, op), "{message}");
            assert!(message.contains(needle), "{message}");
        }
        other => panic!("expected an export error for {node}, got {other:?}"),
    }
}

/// Malformed graphs: typed errors naming the node and op, never a panic.
#[test]
fn malformed_graphs_give_typed_errors() {
    // A residual epilogue without its input, and an input without the epilogue.
    let (g, _) = conv_graph(Epilogue { residual: true, activation: Activation::Relu }, false, false);
    expect_export_error(&g, "conv0", "Conv", "residual (input #3) is missing");
    let (g, _) = conv_graph(Epilogue { residual: false, activation: Activation::Relu }, true, false);
    expect_export_error(&g, "conv0", "Conv", "input #3 is set");
    let (g, _) = conv_graph(Epilogue { residual: false, activation: Activation::PRelu }, false, false);
    expect_export_error(&g, "conv0", "Conv", "PRelu slope");

    // An input slot the ONNX operator does not have.
    let mut g = Graph::new("bad");
    let ty = TypeInfo::new(DType::F32, Shape::known(&[2]));
    let x = g.add_input("x", ty.clone());
    let n = g
        .add_node("relu0", Op::Relu, &[Some(x), Some(x)], vec![ValueInfo { name: "y".into(), ty: ty.clone() }])
        .unwrap();
    g.set_outputs(vec![Outlet::new(n, 0)]);
    expect_export_error(&g, "relu0", "Relu", "at most 1");

    // Quantizing to a dtype ONNX QuantizeLinear cannot produce.
    let mut g = Graph::new("bad");
    let x = g.add_input("x", ty.clone());
    let s = g.add_const("s", Tensor::scalar(0.5f32));
    let q = Op::QuantizeLinear { axis: 1, to: DType::I32 };
    let n = g
        .add_node(
            "q0",
            q,
            &[Some(x), Some(s)],
            vec![ValueInfo { name: "y".into(), ty: TypeInfo::new(DType::I32, Shape::known(&[2])) }],
        )
        .unwrap();
    g.set_outputs(vec![Outlet::new(n, 0)]);
    expect_export_error(&g, "q0", "QuantizeLinear", "i32");

    // A required input missing.
    let mut g = Graph::new("bad");
    let x = g.add_input("x", ty.clone());
    let n = g
        .add_node(
            "fc0",
            Op::FullyConnected(FcAttrs::default()),
            &[Some(x), None],
            vec![ValueInfo { name: "y".into(), ty: ty.clone() }],
        )
        .unwrap();
    g.set_outputs(vec![Outlet::new(n, 0)]);
    expect_export_error(&g, "fc0", "FullyConnected", "W");

    // A cycle.
    let mut g = Graph::new("cycle");
    let x = g.add_input("x", ty.clone());
    let a =
        g.add_node("a", Op::Add, &[Some(x), Some(x)], vec![ValueInfo { name: "a".into(), ty: ty.clone() }]).unwrap();
    let b = g
        .add_node("b", Op::Relu, &[Some(Outlet::new(a, 0))], vec![ValueInfo { name: "b".into(), ty: ty.clone() }])
        .unwrap();
    g.set_input(a, 1, Some(Outlet::new(b, 0))).unwrap();
    g.set_outputs(vec![Outlet::new(b, 0)]);
    let e = export_model(&g, &ExportOptions::default()).unwrap_err();
    assert!(matches!(e, OnnxError::Ir(_)), "{e:?}");
    assert!(e.to_string().contains('a') || e.to_string().contains('b'), "{e}");
}

/// Softmax in its opset<13 form (normalized over every axis from `axis` on) and QuantizeLinear
/// to i8 without a zero point: forms the exported opset spells differently.
#[test]
fn legacy_softmax_and_zero_point_free_quantize() {
    use lithe_ir::op::SoftmaxAttrs;
    let mut g = Graph::new("forms");
    let ty = TypeInfo::new(DType::F32, Shape::known(&[2, 3, 4]));
    let x = g.add_input("x", ty.clone());
    let sm = g
        .add_node(
            "sm",
            Op::Softmax(SoftmaxAttrs { axis: 1, coerce_2d: true }),
            &[Some(x)],
            vec![ValueInfo { name: "sm".into(), ty: ty.clone() }],
        )
        .unwrap();
    let s = g.add_const("s", Tensor::from_vec(&[3], vec![0.01f32, 0.02, 0.05]).unwrap());
    let qty = TypeInfo::new(DType::I8, Shape::known(&[2, 3, 4]));
    let q = g
        .add_node(
            "q",
            Op::QuantizeLinear { axis: 1, to: DType::I8 },
            &[Some(x), Some(s)],
            vec![ValueInfo { name: "q".into(), ty: qty }],
        )
        .unwrap();
    let q16 = g
        .add_node(
            "q16",
            Op::QuantizeLinear { axis: 1, to: DType::I16 },
            &[Some(x), Some(s)],
            vec![ValueInfo { name: "q16".into(), ty: TypeInfo::new(DType::I16, Shape::known(&[2, 3, 4])) }],
        )
        .unwrap();
    g.set_outputs(vec![Outlet::new(sm, 0), Outlet::new(q, 0), Outlet::new(q16, 0)]);
    let input = Tensor::from_vec(&[2, 3, 4], (0..24).map(|i| ((i * 7) % 11) as f32 - 5.0).collect()).unwrap();
    let inputs = [input];
    let back = round_trip(&g).unwrap();
    same_bits("forms", &run(&back, &inputs).unwrap(), &run(&g, &inputs).unwrap()).unwrap();
}

/// `save_onnx` writes a file `load_model` reads back; `value_info` declares intermediate types.
#[test]
fn save_onnx_and_value_info() {
    let src = testdata().join("golden/mobilenet_v2/model.onnx");
    let mut g = load_model(&src, &ImportOptions::default()).unwrap();
    PassManager::default_pipeline().run(&mut g).unwrap();
    let dir = std::env::temp_dir().join(format!("lithe-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mobilenet_v2_opt.onnx");
    lithe_onnx::save_onnx(&path, &g).unwrap();
    let back = load_model(&path, &ImportOptions::default()).unwrap();
    let inputs = numbered_npy(&testdata().join("golden/mobilenet_v2"), "input");
    let err = max_abs_diff(&run(&back, &inputs).unwrap(), &run(&g, &inputs).unwrap());
    assert!(err <= 1e-4, "{err}");
    let plain = export_model_proto(&g, &ExportOptions::default()).unwrap();
    assert!(plain.graph.as_ref().unwrap().value_info.is_empty());
    let opts = ExportOptions { value_info: true, ..Default::default() };
    let typed = export_model_proto(&g, &opts).unwrap();
    let graph = typed.graph.as_ref().unwrap();
    // The intermediate values are declared, each with a name and a type.
    assert!(graph.value_info.len() >= 50, "{}", graph.value_info.len());
    assert!(graph.value_info.iter().all(|v| !v.name.is_empty() && v.r#type.is_some()));
    let bytes = typed.encode_to_vec();
    let again = lithe_onnx::load_model_bytes(&bytes, None, &ImportOptions::default()).unwrap();
    let err = max_abs_diff(&run(&again, &inputs).unwrap(), &run(&g, &inputs).unwrap());
    assert!(err <= 1e-4, "{err}");
    let e = lithe_onnx::save_onnx(&dir.join("missing/dir/x.onnx"), &g).unwrap_err();
    assert!(matches!(e, OnnxError::Io { .. }), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// onnxruntime's int8 MNIST models (`testdata/mnist/ort_qop`: QLinearConv/QLinearMatMul and
/// dynamic ConvInteger/MatMulInteger forms) imported and optimized (QDQ convs fused into QConv)
/// export to standard ONNX whose outputs match the optimized graph's and onnxruntime's logits.
#[test]
fn optimized_int8_mnist_models_export() {
    let dir = testdata().join("mnist/ort_qop");
    let x = mnist_images(16);
    let mut checked = 0;
    for name in ["lenet_bn_qlinear", "dwsep_qlinear", "lenet_bn_dynamic", "dwsep_dynamic"] {
        let g = load_model(&dir.join(format!("{name}.onnx")), &ImportOptions::default()).unwrap();
        let golden = lithe_ir::npy::read_npy(&dir.join(format!("{name}_golden.npy"))).unwrap();
        let mut opt = g.clone();
        PassManager::default_pipeline().run(&mut opt).unwrap();
        let want = run(&opt, std::slice::from_ref(&x)).unwrap();
        let back = round_trip(&opt).unwrap();
        let got = run(&back, std::slice::from_ref(&x)).unwrap();
        let qconvs = opt.node_ids().iter().filter(|&&id| matches!(opt.node(id).op, Op::QConv(_))).count();
        let (err, err_ort) = (max_abs_diff(&got, &want), max_abs_diff(&got, std::slice::from_ref(&golden)));
        println!("{name}: {qconvs} QConv; max abs diff vs optimized {err:.2e}, vs onnxruntime {err_ort:.2e}");
        // One output quantization step is ~0.1 here; the expansions should not even move one.
        assert!(err <= 1e-4, "{name}: {err}");
        assert!(err_ort <= 0.2, "{name}: {err_ort}");
        if name.ends_with("qlinear") {
            assert!(qconvs >= 2, "{name}: {qconvs} QConv nodes");
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}
