//! Export of the int8 ops: `QConv` (made by `lithe-passes` from QDQ convs) expands back to
//! `DequantizeLinear -> Conv [-> Add] [-> activation] [-> QuantizeLinear]`, and
//! `DynamicQuantizeLinear` maps one to one. The expanded form computes in f32 what QConv
//! accumulates in i32, so f32 outputs agree to f32 rounding and u8 outputs to one level.

mod export_util;

use export_util::*;
use lithe_ir::op::{Activation, ConvAttrs, Epilogue, QConvAttrs};
use lithe_ir::{DType, Graph, Op, Outlet, Shape, Tensor, TypeInfo, ValueInfo};
use lithe_onnx::{ExportOptions, export_model_proto};

/// A QConv on a 1x4x6x6 u8 input with 3x3 i8 weights (per-channel or per-tensor scales).
fn qconv_graph(to: DType, epilogue: Epilogue, per_channel: bool, group: usize) -> Graph {
    let mut g = Graph::new("qconv");
    let x = g.add_input("x", TypeInfo::new(DType::U8, Shape::known(&[1, 4, 6, 6])));
    let r = g.add_input("r", TypeInfo::new(DType::F32, Shape::known(&[1, 6, 4, 4])));
    let c = |g: &mut Graph, n: &str, t: Tensor| Some(g.add_const(n, t));
    let cin = 4 / group;
    let w: Vec<i8> = (0..6 * cin * 9).map(|i| ((i * 37 % 255) as i32 - 127) as i8).collect();
    let w_scale = if per_channel {
        Tensor::from_vec(&[6], vec![0.011f32, 0.02, 0.005, 0.013, 0.017, 0.009]).unwrap()
    } else {
        Tensor::from_vec(&[1], vec![0.012f32]).unwrap()
    };
    let mut inputs = vec![
        Some(x),
        c(&mut g, "x_scale", Tensor::scalar(0.02f32)),
        c(&mut g, "x_zero_point", Tensor::scalar(7u8)),
        c(&mut g, "w", Tensor::from_vec(&[6, cin, 3, 3], w).unwrap()),
        c(&mut g, "w_scale", w_scale),
        c(&mut g, "b", Tensor::from_vec(&[6], vec![0.1f32, -0.2, 0.3, 0.0, -0.05, 0.25]).unwrap()),
        epilogue.residual.then_some(r),
    ];
    if to == DType::U8 {
        inputs.push(c(&mut g, "y_scale", Tensor::scalar(0.05f32)));
        inputs.push(c(&mut g, "y_zero_point", Tensor::scalar(100u8)));
    }
    let conv = ConvAttrs { group, epilogue, ..Default::default() };
    let ty = TypeInfo::new(to, Shape::known(&[1, 6, 4, 4]));
    let n = g
        .add_node("qconv0", Op::QConv(QConvAttrs { conv, to }), &inputs, vec![ValueInfo { name: "y".into(), ty }])
        .unwrap();
    g.set_outputs(vec![Outlet::new(n, 0)]);
    g
}

fn inputs() -> Vec<Tensor> {
    let x: Vec<u8> = (0..144).map(|i| (i * 53 % 256) as u8).collect();
    let r: Vec<f32> = (0..96).map(|i| (i as f32 - 48.0) * 0.03).collect();
    vec![Tensor::from_vec(&[1, 4, 6, 6], x).unwrap(), Tensor::from_vec(&[1, 6, 4, 4], r).unwrap()]
}

#[test]
fn qconv_expands_to_qdq_conv() {
    let epilogues = [
        Epilogue::default(),
        Epilogue { residual: false, activation: Activation::Relu },
        Epilogue { residual: true, activation: Activation::Clip { min: 0.0, max: 6.0 } },
        Epilogue { residual: true, activation: Activation::None },
    ];
    for to in [DType::F32, DType::U8] {
        for e in epilogues {
            for (per_channel, group) in [(true, 1), (false, 1), (true, 2)] {
                let g = qconv_graph(to, e, per_channel, group);
                let what = format!("{to} {e:?} per_channel={per_channel} group={group}");
                let m = export_model_proto(&g, &ExportOptions::default()).unwrap();
                let types: Vec<&str> = m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
                assert_eq!(&types[..3], ["DequantizeLinear", "DequantizeLinear", "Conv"], "{what}");
                assert_eq!(types.last() == Some(&"QuantizeLinear"), to == DType::U8, "{what}: {types:?}");
                let back = round_trip(&g).unwrap();
                assert!(!back.node_ids().iter().any(|&id| matches!(back.node(id).op, Op::QConv(_))));
                let want = run_reference(&g, &inputs()).unwrap();
                let got = run_reference(&back, &inputs()).unwrap();
                let err = max_abs_diff(&got, &want);
                // f32: rounding of f32 vs exact i32 accumulation; u8: at most one level.
                let tol = if to == DType::U8 { 1.0 } else { 1e-5 };
                assert!(err <= tol, "{what}: max abs diff {err}");
            }
        }
    }
}

#[test]
fn qconv_with_prelu_is_a_typed_error() {
    let mut g = qconv_graph(DType::F32, Epilogue { residual: false, activation: Activation::PRelu }, true, 1);
    g.name = "bad".into();
    let e = lithe_onnx::export_model(&g, &ExportOptions::default()).unwrap_err();
    assert!(matches!(&e, lithe_onnx::OnnxError::Export { node, op, .. } if node == "qconv0" && op == "QConv"), "{e}");
}

#[test]
fn dynamic_quantize_linear_round_trips() {
    let mut g = Graph::new("dql");
    let x = g.add_input("x", TypeInfo::new(DType::F32, Shape::known(&[2, 5])));
    let outs = vec![
        ValueInfo { name: "y".into(), ty: TypeInfo::new(DType::U8, Shape::known(&[2, 5])) },
        ValueInfo { name: "y_scale".into(), ty: TypeInfo::new(DType::F32, Shape::known(&[])) },
        ValueInfo { name: "y_zero_point".into(), ty: TypeInfo::new(DType::U8, Shape::known(&[])) },
    ];
    let n = g.add_node("dql0", Op::DynamicQuantizeLinear, &[Some(x)], outs).unwrap();
    g.set_outputs((0..3).map(|s| Outlet::new(n, s)).collect());
    let x = Tensor::from_vec(&[2, 5], vec![-1.5f32, 0.0, 0.3, 2.7, 9.0, -0.1, 4.4, 5.5, -3.0, 1.0]).unwrap();
    let back = round_trip(&g).unwrap();
    let x = std::slice::from_ref(&x);
    same_bits("DynamicQuantizeLinear", &run(&back, x).unwrap(), &run(&g, x).unwrap()).unwrap();
}

/// A QConv with an int32 bias (integer requantization) exports its bias as
/// `DequantizeLinear(B, x_scale·w_scale)`; imported and optimized again it is the same QConv
/// and gives the same bytes.
#[test]
fn qconv_with_an_int32_bias_round_trips_to_the_same_bytes() {
    let activations = [Activation::None, Activation::Relu, Activation::Clip { min: 0.0, max: 6.0 }];
    for activation in activations {
        for per_channel in [true, false] {
            let what = format!("{activation:?} per_channel={per_channel}");
            let mut g = qconv_graph(DType::U8, Epilogue { residual: false, activation }, per_channel, 1);
            let id = g.outputs()[0].node;
            let b = g.add_const("b_i32", Tensor::from_vec(&[6], vec![500i32, -1200, 37, 0, -5, 2400]).unwrap());
            g.set_input(id, 5, Some(b)).unwrap();
            let m = export_model_proto(&g, &ExportOptions::default()).unwrap();
            let types: Vec<&str> = m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
            assert!(types.contains(&"Mul"), "{what}: {types:?}");
            assert_eq!(types.iter().filter(|t| **t == "DequantizeLinear").count(), 3, "{what}: {types:?}");
            let mut back = round_trip(&g).unwrap();
            lithe_passes::PassManager::default_pipeline().run(&mut back).unwrap();
            let q = back.node_ids().into_iter().find(|&id| matches!(back.node(id).op, Op::QConv(_))).expect("a QConv");
            let bias = back.node_inputs(q)[5].and_then(|o| back.const_value(o)).expect("a constant bias");
            assert_eq!(bias.to_i64_vec(), vec![500, -1200, 37, 0, -5, 2400], "{what}");
            let x = &inputs();
            same_bits(&what, &run(&back, x).unwrap(), &run(&g, x).unwrap()).unwrap();
        }
    }
}

/// `QAdd` expands to `DequantizeLinear`, `DequantizeLinear`, `Add`, `QuantizeLinear` and fuses
/// back to the same bytes.
#[test]
fn qadd_round_trips() {
    let mut g = Graph::new("qadd");
    let ty = TypeInfo::new(DType::U8, Shape::known(&[2, 3, 5]));
    let a = g.add_input("a", ty.clone());
    let b = g.add_input("b", ty.clone());
    let c = |g: &mut Graph, n: &str, t: Tensor| Some(g.add_const(n, t));
    let inputs = [
        Some(a),
        c(&mut g, "a_scale", Tensor::scalar(0.031f32)),
        c(&mut g, "a_zero_point", Tensor::scalar(121u8)),
        Some(b),
        c(&mut g, "b_scale", Tensor::scalar(0.018f32)),
        c(&mut g, "b_zero_point", Tensor::scalar(3u8)),
        c(&mut g, "c_scale", Tensor::scalar(0.04f32)),
        c(&mut g, "c_zero_point", Tensor::scalar(90u8)),
    ];
    let n = g.add_node("qadd0", Op::QAdd, &inputs, vec![ValueInfo { name: "y".into(), ty }]).unwrap();
    g.set_outputs(vec![Outlet::new(n, 0)]);
    let m = export_model_proto(&g, &ExportOptions::default()).unwrap();
    let types: Vec<&str> = m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(types, ["DequantizeLinear", "DequantizeLinear", "Add", "QuantizeLinear"]);
    let mut back = round_trip(&g).unwrap();
    lithe_passes::PassManager::default_pipeline().run(&mut back).unwrap();
    assert!(back.node_ids().into_iter().any(|id| matches!(back.node(id).op, Op::QAdd)));
    let xa: Vec<u8> = (0..30).map(|i| (i * 37 % 256) as u8).collect();
    let xb: Vec<u8> = (0..30).map(|i| (i * 91 % 256) as u8).collect();
    let x = [Tensor::from_vec(&[2, 3, 5], xa).unwrap(), Tensor::from_vec(&[2, 3, 5], xb).unwrap()];
    same_bits("QAdd", &run(&back, &x).unwrap(), &run(&g, &x).unwrap()).unwrap();
}

/// `QGlobalAveragePool` expands to `DequantizeLinear`, `GlobalAveragePool`, `QuantizeLinear`
/// and fuses back to the same bytes.
#[test]
fn qglobal_average_pool_round_trips() {
    let mut g = Graph::new("qgap");
    let x = g.add_input("x", TypeInfo::new(DType::U8, Shape::known(&[2, 3, 4, 5])));
    let c = |g: &mut Graph, n: &str, t: Tensor| Some(g.add_const(n, t));
    let inputs = [
        Some(x),
        c(&mut g, "x_scale", Tensor::scalar(0.031f32)),
        c(&mut g, "x_zero_point", Tensor::scalar(17u8)),
        c(&mut g, "y_scale", Tensor::scalar(0.012f32)),
        c(&mut g, "y_zero_point", Tensor::scalar(40u8)),
    ];
    let ty = TypeInfo::new(DType::U8, Shape::known(&[2, 3, 1, 1]));
    let n = g.add_node("gap0", Op::QGlobalAveragePool, &inputs, vec![ValueInfo { name: "y".into(), ty }]).unwrap();
    g.set_outputs(vec![Outlet::new(n, 0)]);
    let m = export_model_proto(&g, &ExportOptions::default()).unwrap();
    let types: Vec<&str> = m.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(types, ["DequantizeLinear", "GlobalAveragePool", "QuantizeLinear"]);
    let mut back = round_trip(&g).unwrap();
    lithe_passes::PassManager::default_pipeline().run(&mut back).unwrap();
    assert!(back.node_ids().into_iter().any(|id| matches!(back.node(id).op, Op::QGlobalAveragePool)));
    let xv: Vec<u8> = (0..120).map(|i| (i * 59 % 256) as u8).collect();
    let x = [Tensor::from_vec(&[2, 3, 4, 5], xv).unwrap()];
    same_bits("QGlobalAveragePool", &run(&back, &x).unwrap(), &run(&g, &x).unwrap()).unwrap();
}
