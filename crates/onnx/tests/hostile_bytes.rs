//! Mutated, truncated and random bytes never make the importer panic.

mod common;
use common::*;
use lithe_onnx::{ImportOptions, load_model_bytes, parse_tensor_proto};
use proptest::prelude::*;

/// A small model touching initializers, attributes of several types, old-opset forms,
/// shape folding and multiple outputs.
fn seed_model() -> Vec<u8> {
    Model::new(9)
        .input("x", &[D::P("n"), D::V(2), D::V(4), D::V(4)])
        .init(tensor_f32("w", &[2, 1, 3, 3], &[0.5; 18]))
        .init(tensor_f32("b", &[2], &[0.1, -0.1]))
        .init(tensor_f32("scales", &[4], &[1.0, 1.0, 2.0, 2.0]))
        .init(tensor_i64("idx", &[1], &[1]))
        .node(
            "Conv",
            &["x", "w", "b"],
            &["c"],
            vec![a_int("group", 2), a_ints("pads", &[1, 1, 1, 1]), a_str("auto_pad", "NOTSET")],
        )
        .node("Clip", &["c"], &["r"], vec![a_float("min", 0.0), a_float("max", 6.0)])
        .node("Upsample", &["r", "scales"], &["u"], vec![a_str("mode", "nearest")])
        .node("Shape", &["u"], &["s"], vec![])
        .node("Gather", &["s", "idx"], &["g"], vec![])
        .node("Split", &["u"], &["p", "q"], vec![a_int("axis", 1)])
        .node("Slice", &["p"], &["sl"], vec![a_ints("starts", &[0]), a_ints("ends", &[4]), a_ints("axes", &[2])])
        .node("Pad", &["q"], &["pd"], vec![a_ints("pads", &[0, 0, 0, 0, 0, 0, 1, 1])])
        .node("Softmax", &["pd"], &["sm"], vec![])
        .output("sl")
        .output("sm")
        .output("g")
        .bytes()
}

#[test]
fn seed_model_imports() {
    let g = load_model_bytes(&seed_model(), None, &ImportOptions::default()).unwrap();
    assert_eq!(g.outputs().len(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn truncated_models_do_not_panic(cut in 0usize..4096) {
        let bytes = seed_model();
        let cut = cut % (bytes.len() + 1);
        let _ = load_model_bytes(&bytes[..cut], None, &ImportOptions::default());
    }

    #[test]
    fn mutated_models_do_not_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = seed_model();
        for (pos, val) in edits {
            let i = pos % bytes.len();
            bytes[i] = val;
        }
        let _ = load_model_bytes(&bytes, None, &ImportOptions::default());
        let _ = load_model_bytes(&bytes, None, &ImportOptions { fold_constants: false, ..Default::default() });
    }

    #[test]
    fn spliced_models_do_not_panic(pos in any::<usize>(), junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = seed_model();
        let i = pos % (bytes.len() + 1);
        bytes.splice(i..i, junk);
        let _ = load_model_bytes(&bytes, None, &ImportOptions::default());
    }

    #[test]
    fn random_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = load_model_bytes(&bytes, None, &ImportOptions::default());
        let _ = parse_tensor_proto(&bytes);
    }
}

/// A structural edit of the seed model: hostile values in well-formed protobuf.
#[derive(Clone, Debug)]
enum Edit {
    /// Set an INT(S) attribute value of some node.
    AttrInt { node: usize, attr: usize, value: i64 },
    /// Change the declared type of some attribute.
    AttrType { node: usize, attr: usize, ty: i32 },
    /// Set one dim of some initializer.
    InitDim { init: usize, dim: usize, value: i64 },
    /// Rewire an input of some node to another value name.
    Rewire { node: usize, input: usize, to: usize },
    /// Replace an op type by another supported one.
    OpType { node: usize, op: usize },
    /// Set one dim of the graph input.
    InputDim { dim: usize, value: i64 },
    /// Change the model opset.
    Opset(i64),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let val = prop_oneof![-3i64..20, any::<i64>(), Just(i64::MAX), Just(i64::MIN), Just(1 << 40)];
    prop_oneof![
        (0usize..16, 0usize..4, val.clone()).prop_map(|(node, attr, value)| Edit::AttrInt { node, attr, value }),
        (0usize..16, 0usize..4, 0i32..16).prop_map(|(node, attr, ty)| Edit::AttrType { node, attr, ty }),
        (0usize..8, 0usize..4, val.clone()).prop_map(|(init, dim, value)| Edit::InitDim { init, dim, value }),
        (0usize..16, 0usize..4, 0usize..32).prop_map(|(node, input, to)| Edit::Rewire { node, input, to }),
        (0usize..16, 0usize..128).prop_map(|(node, op)| Edit::OpType { node, op }),
        (0usize..4, val).prop_map(|(dim, value)| Edit::InputDim { dim, value }),
        (1i64..25).prop_map(Edit::Opset),
    ]
}

fn apply(m: &mut lithe_onnx::proto::ModelProto, e: &Edit) {
    use lithe_onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
    use lithe_onnx::proto::type_proto::Value as TypeValue;
    let Some(g) = m.graph.as_mut() else { return };
    let names: Vec<String> = g
        .node
        .iter()
        .flat_map(|n| n.output.clone())
        .chain(g.initializer.iter().map(|t| t.name.clone()))
        .chain(g.input.iter().map(|i| i.name.clone()))
        .collect();
    let nn = g.node.len();
    match *e {
        Edit::AttrInt { node, attr, value } => {
            if let Some(a) = g.node.get_mut(node % nn).and_then(|n| n.attribute.get_mut(attr)) {
                if a.i.is_some() {
                    a.i = Some(value);
                }
                if let Some(x) = a.ints.first_mut() {
                    *x = value;
                }
                if a.f.is_some() {
                    a.f = Some(value as f32);
                }
            }
        }
        Edit::AttrType { node, attr, ty } => {
            if let Some(a) = g.node.get_mut(node % nn).and_then(|n| n.attribute.get_mut(attr)) {
                a.r#type = ty;
            }
        }
        Edit::InitDim { init, dim, value } => {
            let n = g.initializer.len();
            if let Some(d) = g.initializer.get_mut(init % n).and_then(|t| t.dims.get_mut(dim)) {
                *d = value;
            }
        }
        Edit::Rewire { node, input, to } => {
            if let Some(i) = g.node.get_mut(node % nn).and_then(|n| n.input.get_mut(input)) {
                *i = names[to % names.len()].clone();
            }
        }
        Edit::OpType { node, op } => {
            let ops = lithe_onnx::supported_ops();
            g.node[node % nn].op_type = ops[op % ops.len()].to_string();
        }
        Edit::InputDim { dim, value } => {
            if let Some(TypeValue::TensorType(t)) = g.input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
                && let Some(d) = t.shape.as_mut().and_then(|s| s.dim.get_mut(dim))
            {
                d.value = Some(DimValue::DimValue(value));
            }
        }
        Edit::Opset(v) => m.opset_import[0].version = v,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn hostile_values_do_not_panic(edits in prop::collection::vec(edit_strategy(), 1..5), fix in any::<bool>()) {
        use prost::Message;
        let mut m = lithe_onnx::proto::ModelProto::decode(seed_model().as_slice()).unwrap();
        for e in &edits {
            apply(&mut m, e);
        }
        let opts = if fix {
            ImportOptions {
                input_shapes: std::collections::HashMap::from([("x".to_string(), vec![1, 2, 4, 4])]),
                ..Default::default()
            }
        } else {
            ImportOptions::default()
        };
        let _ = load_model_bytes(&m.encode_to_vec(), None, &opts);
    }
}
