//! Attribute defaults and forms of the neural-network, activation, math and shape converters.

mod common;
use common::*;
use lithe_ir::op::{ArgAttrs, AutoPad, AvgPoolAttrs, ConvAttrs, GemmAttrs, PoolAttrs, ReduceAttrs};
use lithe_ir::{DType, Op, Shape};

fn out_shape(g: &lithe_ir::Graph) -> Shape {
    g.value(g.outputs()[0]).ty.shape.clone().unwrap()
}

fn conv_model(attrs: Vec<lithe_onnx::proto::AttributeProto>) -> Model {
    Model::new(13)
        .input("x", &[D::V(1), D::V(4), D::V(8), D::V(8)])
        .init(tensor_f32("w", &[4, 2, 3, 3], &[0.1; 72]))
        .init(tensor_f32("b", &[4], &[0.0; 4]))
        .node("Conv", &["x", "w", "b"], &["y"], attrs)
        .output("y")
}

#[test]
fn conv_defaults_and_attributes() {
    let e = conv_model(vec![]).load().unwrap_err();
    // group defaults to 1: 4 input channels do not match the weight's 2 per group.
    assert!(e.to_string().contains("n0_Conv"), "{e}");

    let g = conv_model(vec![a_int("group", 2)]).load().unwrap();
    let c = only(&g, "Conv");
    assert_eq!(
        op(&g, c),
        &Op::Conv(ConvAttrs {
            kernel_shape: None,
            strides: vec![],
            dilations: vec![],
            pads: vec![],
            auto_pad: AutoPad::NotSet,
            group: 2,
            epilogue: Default::default()
        })
    );
    assert_eq!(out_shape(&g), Shape::known(&[1, 4, 6, 6]));

    let g = conv_model(vec![
        a_int("group", 2),
        a_ints("kernel_shape", &[3, 3]),
        a_ints("strides", &[2, 2]),
        a_ints("pads", &[1, 1, 1, 1]),
        a_ints("dilations", &[1, 1]),
    ])
    .load()
    .unwrap();
    assert_eq!(out_shape(&g), Shape::known(&[1, 4, 4, 4]));

    let g = conv_model(vec![a_int("group", 2), a_str("auto_pad", "SAME_UPPER")]).load().unwrap();
    let Op::Conv(a) = op(&g, only(&g, "Conv")) else { unreachable!() };
    assert_eq!(a.auto_pad, AutoPad::SameUpper);
    assert_eq!(out_shape(&g), Shape::known(&[1, 4, 8, 8]));

    let e = conv_model(vec![a_int("group", 2), a_str("auto_pad", "SAME")]).load().unwrap_err();
    assert!(e.to_string().contains("unknown auto_pad 'SAME'"), "{e}");
    let e = conv_model(vec![a_int("group", 0)]).load().unwrap_err();
    assert!(e.to_string().contains("group must be at least 1"), "{e}");
    let e = conv_model(vec![a_int("group", 2), a_ints("strides", &[-1, 1])]).load().unwrap_err();
    assert!(e.to_string().contains("must not be negative"), "{e}");
    // Wrong attribute type.
    let e = conv_model(vec![a_float("group", 2.0)]).load().unwrap_err();
    assert!(e.to_string().contains("attribute 'group' must be of type INT, found FLOAT"), "{e}");
}

#[test]
fn conv_transpose_output_shape_and_padding() {
    let m = |attrs| {
        Model::new(13)
            .input("x", &[D::V(1), D::V(2), D::V(3), D::V(3)])
            .init(tensor_f32("w", &[2, 1, 3, 3], &[1.0; 18]))
            .node("ConvTranspose", &["x", "w"], &["y"], attrs)
            .output("y")
    };
    let g = m(vec![a_ints("strides", &[2, 2])]).load().unwrap();
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 7, 7]));
    let g = m(vec![a_ints("strides", &[2, 2]), a_ints("output_padding", &[1, 1])]).load().unwrap();
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 8, 8]));
    // Full output_shape (N, C, H, W) keeps the spatial part.
    let g = m(vec![a_ints("strides", &[2, 2]), a_ints("output_shape", &[1, 1, 6, 6])]).load().unwrap();
    let Op::ConvTranspose(a) = op(&g, only(&g, "ConvTranspose")) else { unreachable!() };
    assert_eq!(a.output_shape, Some(vec![6, 6]));
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 6, 6]));
}

#[test]
fn batch_norm_forms() {
    let m = |opset, outputs: &[&str], attrs| {
        let mut m = Model::new(opset).input("x", &[D::V(1), D::V(2), D::V(3), D::V(3)]);
        for n in ["s", "b", "m", "v"] {
            m = m.init(tensor_f32(n, &[2], &[1.0, 2.0]));
        }
        m.node("BatchNormalization", &["x", "s", "b", "m", "v"], outputs, attrs).output("y")
    };
    for opset in [7, 9, 14, 15] {
        let g = m(opset, &["y"], vec![]).load().unwrap();
        assert_eq!(op(&g, only(&g, "BatchNormalization")), &Op::BatchNormalization { epsilon: 1e-5 });
    }
    let g = m(9, &["y"], vec![a_float("epsilon", 1e-3)]).load().unwrap();
    assert_eq!(op(&g, only(&g, "BatchNormalization")), &Op::BatchNormalization { epsilon: 1e-3 });
    let e = m(9, &["y", "rm", "rv"], vec![]).load().unwrap_err();
    assert!(e.to_string().contains("training outputs"), "{e}");
    let e = m(14, &["y"], vec![a_int("training_mode", 1)]).load().unwrap_err();
    assert!(e.to_string().contains("training_mode"), "{e}");
    let e = m(7, &["y"], vec![a_int("spatial", 0)]).load().unwrap_err();
    assert!(e.to_string().contains("spatial=0"), "{e}");
}

#[test]
fn pooling() {
    let m = |op: &str, outputs: &[&str], attrs| {
        Model::new(12).input("x", &[D::V(1), D::V(1), D::V(5), D::V(5)]).node(op, &["x"], outputs, attrs).output("y")
    };
    let g =
        m("MaxPool", &["y"], vec![a_ints("kernel_shape", &[2, 2]), a_ints("strides", &[2, 2]), a_int("ceil_mode", 1)])
            .load()
            .unwrap();
    assert_eq!(
        op(&g, only(&g, "MaxPool")),
        &Op::MaxPool(PoolAttrs {
            kernel_shape: vec![2, 2],
            strides: vec![2, 2],
            ceil_mode: true,
            ..Default::default()
        })
    );
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 3, 3]));
    let e = m("MaxPool", &["y", "idx"], vec![a_ints("kernel_shape", &[2, 2])]).load().unwrap_err();
    assert!(e.to_string().contains("Indices output is not supported"), "{e}");
    let e = m("MaxPool", &["y"], vec![]).load().unwrap_err();
    assert!(e.to_string().contains("'kernel_shape' is required"), "{e}");

    let g = m(
        "AveragePool",
        &["y"],
        vec![a_ints("kernel_shape", &[3, 3]), a_ints("pads", &[1, 1, 1, 1]), a_int("count_include_pad", 1)],
    )
    .load()
    .unwrap();
    assert_eq!(
        op(&g, only(&g, "AveragePool")),
        &Op::AveragePool(AvgPoolAttrs {
            pool: PoolAttrs { kernel_shape: vec![3, 3], pads: vec![1, 1, 1, 1], ..Default::default() },
            count_include_pad: true
        })
    );
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 5, 5]));
    let g = m("GlobalAveragePool", &["y"], vec![]).load().unwrap();
    assert_eq!(out_shape(&g), Shape::known(&[1, 1, 1, 1]));
}

#[test]
fn gemm_matmul_layer_norm() {
    let g = Model::new(11)
        .input("a", &[D::V(2), D::V(3)])
        .init(tensor_f32("b", &[4, 3], &[0.5; 12]))
        .node("Gemm", &["a", "b"], &["y"], vec![a_int("transB", 1), a_float("alpha", 2.0)])
        .output("y")
        .load()
        .unwrap();
    let gm = only(&g, "Gemm");
    assert_eq!(op(&g, gm), &Op::Gemm(GemmAttrs { alpha: 2.0, beta: 1.0, trans_a: false, trans_b: true }));
    assert!(absent(&g, gm, 2));
    assert_eq!(out_shape(&g), Shape::known(&[2, 4]));

    let g = Model::new(13)
        .input("a", &[D::P("batch"), D::V(2), D::V(3)])
        .init(tensor_f32("b", &[3, 5], &[0.5; 15]))
        .node("MatMul", &["a", "b"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(
        out_shape(&g),
        Shape(vec![lithe_ir::Dim::Sym("batch".into()), lithe_ir::Dim::Known(2), lithe_ir::Dim::Known(5)])
    );

    let g = Model::new(17)
        .input("x", &[D::V(2), D::V(4)])
        .init(tensor_f32("s", &[4], &[1.0; 4]))
        .node("LayerNormalization", &["x", "s"], &["y", "mean_unused"], vec![])
        .output("y")
        .load()
        .unwrap();
    let ln = only(&g, "LayerNormalization");
    assert_eq!(op(&g, ln), &Op::LayerNormalization { axis: -1, epsilon: 1e-5 });
    // The unused Mean output is not emitted.
    assert_eq!(g.node(ln).outputs.len(), 1);

    let g = Model::new(17)
        .input("x", &[D::V(2), D::V(4)])
        .init(tensor_f32("s", &[4], &[1.0; 4]))
        .node("LayerNormalization", &["x", "s"], &["y", "mean"], vec![a_int("axis", 1), a_float("epsilon", 1e-3)])
        .output("y")
        .output("mean")
        .load_unfolded()
        .unwrap();
    let ln = only(&g, "LayerNormalization");
    assert_eq!(op(&g, ln), &Op::LayerNormalization { axis: 1, epsilon: 1e-3 });
    assert_eq!(g.node(ln).outputs.len(), 2);
    assert_eq!(g.value(g.outputs()[1]).ty.shape, Some(Shape::known(&[2, 1])));
}

#[test]
fn activations_defaults() {
    let m = |op: &str, attrs| Model::new(14).input("x", &[D::V(3)]).node(op, &["x"], &["y"], attrs).output("y").load();
    let g = m("LeakyRelu", vec![]).unwrap();
    assert_eq!(op(&g, only(&g, "LeakyRelu")), &Op::LeakyRelu { alpha: 0.01 });
    let g = m("HardSigmoid", vec![]).unwrap();
    assert_eq!(op(&g, only(&g, "HardSigmoid")), &Op::HardSigmoid { alpha: 0.2, beta: 0.5 });
    let g = m("HardSigmoid", vec![a_float("alpha", 1.0 / 6.0)]).unwrap();
    assert_eq!(op(&g, only(&g, "HardSigmoid")), &Op::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 });
    for name in ["Relu", "Sigmoid", "Tanh", "HardSwish", "Sqrt", "Exp", "Log", "Neg", "Abs", "Erf", "Identity"] {
        let g = m(name, vec![]).unwrap();
        assert_eq!(op(&g, only(&g, name)).name(), name);
        assert_eq!(out_shape(&g), Shape::known(&[3]));
    }
}

#[test]
fn arg_max_cast_dropout_and_shape_ops() {
    let g = Model::new(13)
        .input("x", &[D::V(2), D::V(3)])
        .node("ArgMax", &["x"], &["y"], vec![a_int("axis", 1)])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(op(&g, only(&g, "ArgMax")), &Op::ArgMax(ArgAttrs { axis: 1, keepdims: true, select_last_index: false }));
    assert_eq!(g.value(g.outputs()[0]).ty.dtype, DType::I64);

    let g = Model::new(13)
        .input("x", &[D::V(2)])
        .node("Cast", &["x"], &["y"], vec![a_int("to", 6)])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(op(&g, only(&g, "Cast")), &Op::Cast { to: DType::I32 });
    let e = Model::new(13)
        .input("x", &[D::V(2)])
        .node("Cast", &["x"], &["y"], vec![a_int("to", 11)])
        .output("y")
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("DOUBLE is not supported"), "{e}");

    for (opset, outputs) in [(7, &["y"][..]), (12, &["y", "mask"][..])] {
        let g = Model::new(opset)
            .input("x", &[D::V(2)])
            .node("Dropout", &["x"], outputs, vec![])
            .output("y")
            .load()
            .unwrap();
        assert_eq!(g.node(only(&g, "Dropout")).outputs.len(), outputs.len());
    }

    let g = Model::new(13)
        .input("x", &[D::V(2), D::V(3), D::V(4)])
        .node("Flatten", &["x"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(op(&g, only(&g, "Flatten")), &Op::Flatten { axis: 1 });
    assert_eq!(out_shape(&g), Shape::known(&[2, 12]));

    let g = Model::new(13)
        .input("x", &[D::V(2), D::V(3), D::V(4)])
        .node("Transpose", &["x"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(out_shape(&g), Shape::known(&[4, 3, 2]));

    let g = Model::new(13)
        .input("x", &[D::V(5), D::V(3)])
        .init(tensor_i64("i", &[2], &[4, 0]))
        .node("Gather", &["x", "i"], &["y"], vec![])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(op(&g, only(&g, "Gather")), &Op::Gather { axis: 0 });
    assert_eq!(out_shape(&g), Shape::known(&[2, 3]));

    let e = Model::new(13)
        .input("x", &[D::V(2)])
        .input("y", &[D::V(2)])
        .node("Concat", &["x", "y"], &["z"], vec![])
        .output("z")
        .load()
        .unwrap_err();
    assert!(e.to_string().contains("'axis' is required"), "{e}");

    let g = Model::new(13)
        .input("x", &[D::V(2)])
        .input("y", &[D::V(2)])
        .input("z", &[D::V(2)])
        .node("Max", &["x", "y", "z"], &["m"], vec![])
        .output("m")
        .load()
        .unwrap();
    assert_eq!(g.node_inputs(only(&g, "Max")).len(), 3);
}

#[test]
fn constant_node_forms() {
    let m = |attr| Model::new(13).node("Constant", &[], &["c"], vec![attr]).output("c").load();
    let g = m(a_float("value_float", 1.5)).unwrap();
    let c = g.const_value(g.outputs()[0]).unwrap();
    assert_eq!((c.shape(), c.to_f32_vec()), (&[][..], vec![1.5]));
    let g = m(a_ints("value_ints", &[3, -1])).unwrap();
    let c = g.const_value(g.outputs()[0]).unwrap();
    assert_eq!((c.dtype(), c.to_i64_vec()), (DType::I64, vec![3, -1]));
    let g = m(a_tensor("value", tensor_f32("", &[2], &[1.0, 2.0]))).unwrap();
    assert_eq!(g.const_value(g.outputs()[0]).unwrap().to_f32_vec(), vec![1.0, 2.0]);
    assert_eq!(g.value(g.outputs()[0]).name, "c");
    let e = m(a_str("value_string", "x")).unwrap_err();
    assert!(e.to_string().contains("string constants"), "{e}");
}

#[test]
fn reduce_attrs_read() {
    let g = Model::new(18)
        .input("x", &[D::V(2), D::V(3)])
        .node("ReduceMean", &["x"], &["y"], vec![a_int("noop_with_empty_axes", 1)])
        .output("y")
        .load()
        .unwrap();
    assert_eq!(
        op(&g, only(&g, "ReduceMean")),
        &Op::ReduceMean(ReduceAttrs { keepdims: true, noop_with_empty_axes: true })
    );
    assert_eq!(out_shape(&g), Shape::known(&[2, 3]));
}
