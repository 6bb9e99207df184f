//! Whole-model behaviour: inputs and initializers, names, errors, external data, folding.

mod common;
use common::*;
use lithe_ir::{DType, Dim, Op, Shape};
use lithe_onnx::proto::{StringStringEntryProto, TensorProto};
use lithe_onnx::{ImportOptions, OnnxError, load_model, load_model_bytes, parse_tensor_proto, read_tensor_proto};
use prost::Message;
use std::collections::HashMap;
use std::path::PathBuf;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lithe-onnx-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn relu_model() -> Model {
    Model::new(13).input("x", &[D::P("batch"), D::V(3), D::U]).node("Relu", &["x"], &["y"], vec![]).output("y")
}

#[test]
fn input_types_from_value_info() {
    let g = relu_model().load().unwrap();
    let x = g.inputs()[0];
    assert_eq!(g.node(x).op, Op::Input);
    let ty = &g.node(x).outputs[0].ty;
    assert_eq!(ty.dtype, DType::F32);
    assert_eq!(ty.shape, Some(Shape(vec![Dim::Sym("batch".into()), Dim::Known(3), Dim::Unknown])));
    let y = g.value(g.outputs()[0]);
    assert_eq!(y.name, "y");
    assert_eq!(y.ty.shape, ty.shape);
}

#[test]
fn input_shapes_override_and_bind_symbols() {
    let m = Model::new(13)
        .input("a", &[D::P("batch"), D::V(3), D::U])
        .input("b", &[D::P("batch"), D::V(3), D::V(5)])
        .node("Add", &["a", "b"], &["y"], vec![])
        .output("y");
    let opts = ImportOptions { input_shapes: HashMap::from([("a".to_string(), vec![2, 3, 5])]), ..Default::default() };
    let g = m.load_with(&opts).unwrap();
    let tys: Vec<_> = g.inputs().iter().map(|&i| g.node(i).outputs[0].ty.shape.clone().unwrap()).collect();
    assert_eq!(tys, vec![Shape::known(&[2, 3, 5]), Shape::known(&[2, 3, 5])]);
    assert_eq!(g.value(g.outputs()[0]).ty.shape, Some(Shape::known(&[2, 3, 5])));

    let bad = |dims: Vec<usize>| {
        let opts = ImportOptions { input_shapes: HashMap::from([("a".to_string(), dims)]), ..Default::default() };
        m.load_with(&opts).unwrap_err().to_string()
    };
    assert!(bad(vec![2, 4, 5]).contains("dim 1 is fixed to 3"), "{}", bad(vec![2, 4, 5]));
    assert!(bad(vec![2, 3]).contains("input_shapes gives [2, 3]"));
    let opts = ImportOptions { input_shapes: HashMap::from([("zz".to_string(), vec![1])]), ..Default::default() };
    let e = m.load_with(&opts).unwrap_err().to_string();
    assert!(e.contains("graph input 'zz'") && e.contains("names no graph input"), "{e}");
}

#[test]
fn initializers_listed_as_inputs_are_constants() {
    let mut m = Model::new(9)
        .input("x", &[D::V(2)])
        .init(tensor_f32("w", &[2], &[1.0, 2.0]))
        .node("Mul", &["x", "w"], &["y"], vec![])
        .output("y");
    m.graph.input.push(value_info("w", F32, Some(&[D::V(2)])));
    let g = m.load().unwrap();
    assert_eq!(g.inputs().len(), 1);
    let mul = only(&g, "Mul");
    assert_eq!(const_in(&g, mul, 1).unwrap().to_f32_vec(), vec![1.0, 2.0]);
    assert_eq!(g.node(g.node_inputs(mul)[1].unwrap().node).name, "w");
}

#[test]
fn unsupported_input_types_and_dims() {
    let m = Model::new(13).input_typed("x", 11, &[D::V(2)]).node("Relu", &["x"], &["y"], vec![]).output("y");
    let e = m.load().unwrap_err().to_string();
    assert!(e.contains("graph input 'x'") && e.contains("DOUBLE"), "{e}");
    // A negative dim (Paddle2ONNX writes -1) and each "?" are independent unknown sizes.
    let m =
        Model::new(13).input("x", &[D::V(-1), D::P("?"), D::P("?")]).node("Relu", &["x"], &["y"], vec![]).output("y");
    let g = m.load().unwrap();
    let x = g.value(lithe_ir::Outlet::new(g.inputs()[0], 0));
    assert_eq!(x.ty.shape.as_ref().unwrap().dims(), &[Dim::Unknown, Dim::Unknown, Dim::Unknown]);
    let m = Model::new(13)
        .input("x", &[D::V(1 << 31), D::V(1 << 31), D::V(1 << 31)])
        .node("Relu", &["x"], &["y"], vec![])
        .output("y");
    assert!(matches!(m.load().unwrap_err(), OnnxError::Input { .. }));
}

#[test]
fn all_unsupported_ops_are_listed_at_once() {
    let mut m = Model::new(13)
        .input("x", &[D::V(2)])
        .node("NonZero", &["x"], &["a"], vec![])
        .node("Relu", &["a"], &["b"], vec![])
        .node("NonZero", &["b"], &["c"], vec![])
        .node_in("com.example", "FancyOp", &["c"], &["d"])
        .node("TopK", &["d"], &["e"], vec![])
        .output("e");
    m.extra_opsets.push(("com.example".into(), 3));
    let e = m.load().unwrap_err();
    let OnnxError::UnsupportedOps(list) = &e else { panic!("{e}") };
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list[0].op_type, "NonZero");
    assert_eq!(list[0].count, 2);
    assert_eq!(list[0].first_node, "n0_NonZero");
    assert_eq!(list[0].opset, Some(13));
    assert_eq!((list[1].domain.as_str(), list[1].opset), ("com.example", Some(3)));
    assert_eq!(list[2].op_type, "TopK");
    let msg = e.to_string();
    assert!(msg.contains("3 unsupported operator types"), "{msg}");
    assert!(msg.contains("NonZero (ai.onnx opset 13; 2 nodes, first 'n0_NonZero')"), "{msg}");
    assert!(msg.contains("FancyOp (com.example opset 3"), "{msg}");
}

#[test]
fn structural_errors_name_nodes_and_values() {
    let e = Model::new(13)
        .input("x", &[D::V(2)])
        .node("Add", &["x", "ghost"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("n0_Add") && msg.contains("'ghost'"), "{msg}");

    let e = Model::new(13)
        .input("x", &[D::V(2)])
        .node("Relu", &["x"], &["y"], vec![])
        .node("Neg", &["x"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("value 'y' is produced by both node 'n0_Relu' and node 'n1_Neg'"), "{e}");

    let e = Model::new(13).input("x", &[D::V(2)]).node("Relu", &["x"], &["x"], vec![]).output("x").load().unwrap_err();
    assert!(e.to_string().contains("redefines a graph input"), "{e}");

    let e = Model::new(13)
        .input("x", &[D::V(2)])
        .node("Add", &["x", "b"], &["a"], vec![])
        .node("Relu", &["a"], &["b"], vec![])
        .output("b")
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("cycle"), "{e}");

    let e = relu_model().output("nowhere").load().unwrap_err();
    assert!(e.to_string().contains("graph output 'nowhere'"), "{e}");

    let e = Model::new(13).input("x", &[D::V(2)]).node("Relu", &["x"], &["y"], vec![]).load().unwrap_err();
    assert!(e.to_string().contains("no outputs"), "{e}");
}

#[test]
fn nodes_out_of_order_are_sorted_and_unnamed_nodes_get_names() {
    let mut m = Model::new(13)
        .input("x", &[D::V(2)])
        .node("Neg", &["a"], &["y"], vec![])
        .node("Relu", &["x"], &["a"], vec![])
        .output("y");
    m.graph.node[0].name.clear();
    let g = m.load().unwrap();
    assert_eq!(g.node(only(&g, "Neg")).name, "Neg_0");
    assert_eq!(g.node(only(&g, "Relu")).name, "n1_Relu");
}

#[test]
fn decode_errors() {
    let bytes = relu_model().bytes();
    let e = load_model_bytes(&bytes[..bytes.len() / 2], None, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, OnnxError::Decode { .. }), "{e}");
    let e = load_model_bytes(&[0xff; 16], None, &ImportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("not a valid ONNX protobuf"), "{e}");
}

#[test]
fn errors_from_files_name_the_file() {
    let dir = temp_dir("names");
    let path = dir.join("model.onnx");
    let m = Model::new(13).input("x", &[D::V(2)]).node("TopK", &["x"], &["y"], vec![]).output("y");
    std::fs::write(&path, m.bytes()).unwrap();
    let e = load_model(&path, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("model.onnx") && e.contains("TopK"), "{e}");
    let e = load_model(&dir.join("missing.onnx"), &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("cannot read") && e.contains("missing.onnx"), "{e}");
    std::fs::write(&path, b"garbage").unwrap();
    let e = load_model(&path, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("model.onnx") && e.contains("not a valid ONNX"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn external(name: &str, location: &str, offset: Option<u64>, len: Option<u64>) -> TensorProto {
    let mut entries = vec![StringStringEntryProto { key: "location".into(), value: location.into() }];
    if let Some(o) = offset {
        entries.push(StringStringEntryProto { key: "offset".into(), value: o.to_string() });
    }
    if let Some(l) = len {
        entries.push(StringStringEntryProto { key: "length".into(), value: l.to_string() });
    }
    TensorProto {
        name: name.into(),
        data_type: F32,
        dims: vec![3],
        external_data: entries,
        data_location: Some(1),
        ..Default::default()
    }
}

fn external_model(t: TensorProto) -> Model {
    Model::new(13).input("x", &[D::V(3)]).init(t).node("Add", &["x", "w"], &["y"], vec![]).output("y")
}

#[test]
fn external_data_round_trip() {
    let dir = temp_dir("external");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mut blob = vec![0u8; 8];
    for v in [1.5f32, -2.0, 4.25] {
        blob.extend(v.to_le_bytes());
    }
    std::fs::write(dir.join("data/weights.bin"), &blob).unwrap();
    let path = dir.join("model.onnx");
    std::fs::write(&path, external_model(external("w", "data/weights.bin", Some(8), Some(12))).bytes()).unwrap();
    let g = load_model(&path, &ImportOptions::default()).unwrap();
    assert_eq!(const_in(&g, only(&g, "Add"), 1).unwrap().to_f32_vec(), vec![1.5, -2.0, 4.25]);

    // Without a base directory, external data cannot be found.
    let bytes = external_model(external("w", "data/weights.bin", Some(8), None)).bytes();
    let e = load_model_bytes(&bytes, None, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("tensor 'w'") && e.contains("directory is unknown"), "{e}");
    let g = load_model_bytes(&bytes, Some(&dir), &ImportOptions::default()).unwrap();
    assert_eq!(const_in(&g, only(&g, "Add"), 1).unwrap().to_f32_vec(), vec![1.5, -2.0, 4.25]);

    // A file too short for the tensor, a missing file, a wrong length.
    let short = external_model(external("w", "data/weights.bin", Some(12), None)).bytes();
    let e = load_model_bytes(&short, Some(&dir), &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("has 20 bytes, the tensor needs bytes 12..24"), "{e}");
    let missing = external_model(external("w", "data/nope.bin", None, None)).bytes();
    let e = load_model_bytes(&missing, Some(&dir), &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("nope.bin"), "{e}");
    let wrong_len = external_model(external("w", "data/weights.bin", Some(8), Some(16))).bytes();
    let e = load_model_bytes(&wrong_len, Some(&dir), &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("length 16"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn external_paths_must_stay_in_the_model_directory() {
    let root = temp_dir("escape");
    let dir = root.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(root.join("secret.bin"), [0u8; 12]).unwrap();
    for loc in ["../secret.bin", "data/../../secret.bin"] {
        let bytes = external_model(external("w", loc, None, None)).bytes();
        let e = load_model_bytes(&bytes, Some(&dir), &ImportOptions::default()).unwrap_err().to_string();
        assert!(e.contains("must not contain '..'"), "{e}");
    }
    let abs = root.join("secret.bin");
    let bytes = external_model(external("w", abs.to_str().unwrap(), None, None)).bytes();
    let e = load_model_bytes(&bytes, Some(&dir), &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("must be a relative path"), "{e}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn tensor_files() {
    let t = tensor_i64("input_0", &[2, 2], &[1, 2, 3, -4]);
    let (name, v) = parse_tensor_proto(&t.encode_to_vec()).unwrap();
    assert_eq!(name, "input_0");
    assert_eq!((v.shape(), v.to_i64_vec()), (&[2, 2][..], vec![1, 2, 3, -4]));
    let dir = temp_dir("pb");
    let path = dir.join("output_0.pb");
    std::fs::write(&path, tensor_f32("out", &[1], &[0.25]).encode_to_vec()).unwrap();
    let (name, v) = read_tensor_proto(&path).unwrap();
    assert_eq!((name.as_str(), v.to_f32_vec()), ("out", vec![0.25]));
    std::fs::write(&path, [0x0a, 0xff]).unwrap();
    let e = read_tensor_proto(&path).unwrap_err().to_string();
    assert!(e.contains("output_0.pb"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    let mut bad = tensor_f32("t", &[4], &[1.0, 2.0]);
    bad.dims = vec![4];
    let e = parse_tensor_proto(&bad.encode_to_vec()).unwrap_err().to_string();
    assert!(e.contains("raw_data has 8 bytes") && e.contains("needs 16"), "{e}");
}

#[test]
fn supported_ops_cover_the_ir() {
    let ops = lithe_onnx::supported_ops();
    let mut sorted = ops.clone();
    sorted.sort_unstable();
    assert_eq!(ops, sorted);
    for name in Op::all_names() {
        let pass_only = Op::pass_only_names().contains(&name);
        assert_eq!(ops.contains(&name), !pass_only, "{name}: importable must equal !pass_only");
    }
    for name in ["Constant", "Upsample"] {
        assert!(ops.contains(&name));
    }
}

/// torch's dynamic reshape: `x.view(x.size(0), -1)`.
fn dynamic_reshape_model() -> Model {
    Model::new(13)
        .input("x", &[D::P("batch"), D::V(3), D::V(4)])
        .init(tensor_i64("zero", &[], &[0]))
        .init(tensor_i64("axes0", &[1], &[0]))
        .init(tensor_i64("minus_one", &[1], &[-1]))
        .node("Shape", &["x"], &["s"], vec![])
        .node("Gather", &["s", "zero"], &["n"], vec![a_int("axis", 0)])
        .node("Unsqueeze", &["n", "axes0"], &["n1"], vec![])
        .node("Concat", &["n1", "minus_one"], &["shape"], vec![a_int("axis", 0)])
        .node("Reshape", &["x", "shape"], &["y"], vec![])
        .output("y")
}

#[test]
fn shape_chain_folds_into_a_constant_reshape() {
    let opts = ImportOptions { input_shapes: HashMap::from([("x".to_string(), vec![2, 3, 4])]), ..Default::default() };
    let g = dynamic_reshape_model().load_with(&opts).unwrap();
    assert_eq!(ops(&g).iter().filter(|o| **o != "Input" && **o != "Const").count(), 1, "{:?}", ops(&g));
    let r = only(&g, "Reshape");
    let shape = const_in(&g, r, 1).unwrap();
    assert_eq!(shape.to_i64_vec(), vec![2, -1]);
    assert_eq!(g.node(g.node_inputs(r)[1].unwrap().node).name, "shape");
    assert_eq!(g.value(g.outputs()[0]).ty.shape, Some(Shape::known(&[2, 12])));

    // With a symbolic batch the chain stays.
    let g = dynamic_reshape_model().load().unwrap();
    assert_eq!(nodes_of(&g, "Shape").len(), 1);
    assert_eq!(nodes_of(&g, "Concat").len(), 1);
    // And without folding it stays too.
    let g = dynamic_reshape_model().load_with(&ImportOptions { fold_constants: false, ..opts }).unwrap();
    assert_eq!(nodes_of(&g, "Gather").len(), 1);
}

#[test]
fn constant_outputs_stay_outputs_after_folding() {
    let g = Model::new(13)
        .input("x", &[D::V(2)])
        .init(tensor_f32("a", &[2], &[1.0, -2.0]))
        .node("Abs", &["a"], &["b"], vec![])
        .node("Add", &["x", "b"], &["y"], vec![])
        .output("y")
        .output("b")
        .load()
        .unwrap();
    let b = g.outputs()[1];
    assert_eq!(g.value(b).name, "b");
    assert_eq!(g.const_value(b).unwrap().to_f32_vec(), vec![1.0, 2.0]);
    assert_eq!(const_in(&g, only(&g, "Add"), 1).unwrap().to_f32_vec(), vec![1.0, 2.0]);
    assert!(nodes_of(&g, "Abs").is_empty());
    g.validate().unwrap();
}

#[test]
fn unused_initializers_are_dropped() {
    let g = relu_model().init(tensor_f32("unused", &[1], &[0.0])).load().unwrap();
    assert!(g.find_value("unused").is_none());
}
