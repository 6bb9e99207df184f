//! onnxruntime's quantized operator formats: QLinearConv, QLinearMatMul, ConvInteger and
//! MatMulInteger decompose into DequantizeLinear -> f32 op -> QuantizeLinear/Cast (structure,
//! names, numerics against integer arithmetic), DynamicQuantizeLinear imports as its IR op,
//! and malformed nodes are errors naming the node.

mod common;
use common::*;
use lithe_ir::{DType, Graph, Op, Outlet, Tensor};
use lithe_kernels::reference;
use lithe_onnx::proto::TensorProto;
use lithe_onnx::proto::tensor_proto::DataType;
use std::collections::HashMap;

const U8: i32 = DataType::Uint8 as i32;
const I8: i32 = DataType::Int8 as i32;
const I32: i32 = DataType::Int32 as i32;
const F16: i32 = DataType::Float16 as i32;

fn raw(name: &str, data_type: i32, dims: &[i64], bytes: Vec<u8>) -> TensorProto {
    TensorProto { name: name.into(), data_type, dims: dims.to_vec(), raw_data: bytes, ..Default::default() }
}
fn t_u8(name: &str, dims: &[i64], v: &[u8]) -> TensorProto {
    raw(name, U8, dims, v.to_vec())
}
fn t_i8(name: &str, dims: &[i64], v: &[i8]) -> TensorProto {
    raw(name, I8, dims, v.iter().map(|&x| x as u8).collect())
}
fn t_i32(name: &str, dims: &[i64], v: &[i32]) -> TensorProto {
    raw(name, I32, dims, v.iter().flat_map(|x| x.to_le_bytes()).collect())
}
fn t_f16(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    raw(name, F16, dims, v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect())
}

/// Run `g` with the reference kernels, node by node, on named inputs.
fn run(g: &Graph, inputs: &[(&str, Tensor)]) -> Vec<Tensor> {
    let feeds: HashMap<&str, &Tensor> = inputs.iter().map(|(n, t)| (*n, t)).collect();
    let mut values: HashMap<Outlet, Tensor> = HashMap::new();
    for id in g.topo_order().unwrap() {
        let node = g.node(id);
        let outs = match &node.op {
            Op::Input => vec![feeds[node.outputs[0].name.as_str()].clone()],
            Op::Const(t) => vec![t.clone()],
            op => {
                let ins: Vec<Option<&Tensor>> = g.node_inputs(id).iter().map(|i| i.map(|o| &values[&o])).collect();
                reference::eval(op, &ins, node.outputs.len()).unwrap()
            }
        };
        for (slot, t) in outs.into_iter().enumerate() {
            values.insert(Outlet::new(id, slot), t);
        }
    }
    g.outputs().iter().map(|o| values[o].clone()).collect()
}

fn producer(g: &Graph, o: Outlet) -> &lithe_ir::Node {
    g.node(o.node)
}

/// x (u8, graph input) -> QLinearConv with per-channel int8 weights and an int32 bias.
fn qconv_model(w_scale: &[f32], w_zp: &[i8], bias: Option<&[i32]>) -> Model {
    let w: Vec<i8> = (0..3 * 2 * 3 * 3).map(|i| ((i * 37) % 255) as i8).collect();
    let m = w_scale.len() as i64;
    let mut inputs = vec!["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"];
    let mut model = Model::new(13)
        .input_typed("x", U8, &[D::V(1), D::V(2), D::V(5), D::V(5)])
        .init(tensor_f32("x_scale", &[], &[0.02]))
        .init(t_u8("x_zp", &[], &[128]))
        .init(t_i8("w", &[3, 2, 3, 3], &w))
        .init(tensor_f32("w_scale", &[m], w_scale))
        .init(t_i8("w_zp", &[w_zp.len() as i64], w_zp))
        .init(tensor_f32("y_scale", &[], &[0.5]))
        .init(t_u8("y_zp", &[], &[100]));
    if let Some(b) = bias {
        model = model.init(t_i32("B", &[b.len() as i64], b));
        inputs.push("B");
    }
    let mut model = model.node("QLinearConv", &inputs, &["y"], vec![a_ints("pads", &[1, 1, 1, 1])]);
    model.graph.output.push(value_info("y", U8, None));
    model
}

/// QLinearConv by the ONNX reference's arithmetic: int32 accumulation, then one f32 requantize.
fn qconv_expected(x: &[u8], w_scale: &[f32], w_zp: &[i8], bias: &[i32]) -> Vec<u8> {
    let w: Vec<i32> = (0..3 * 2 * 3 * 3).map(|i| i32::from(((i * 37) % 255) as i8)).collect();
    let mut out = Vec::new();
    for m in 0..3 {
        let zp = i32::from(w_zp[if w_zp.len() == 1 { 0 } else { m }]);
        let ws = w_scale[if w_scale.len() == 1 { 0 } else { m }];
        for oy in 0..5i32 {
            for ox in 0..5i32 {
                let mut acc = bias[m];
                for c in 0..2 {
                    for ky in 0..3i32 {
                        for kx in 0..3i32 {
                            let (iy, ix) = (oy + ky - 1, ox + kx - 1);
                            if !(0..5).contains(&iy) || !(0..5).contains(&ix) {
                                continue;
                            }
                            let xv = i32::from(x[c * 25 + (iy * 5 + ix) as usize]) - 128;
                            let wv = w[(m * 2 + c) * 9 + (ky * 3 + kx) as usize] - zp;
                            acc += xv * wv;
                        }
                    }
                }
                let y = (acc as f32 * (0.02 * ws / 0.5)).round_ties_even() + 100.0;
                out.push(y.clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

fn x_input() -> (Vec<u8>, Tensor) {
    let x: Vec<u8> = (0..50).map(|i| ((i * 73 + 11) % 256) as u8).collect();
    let t = Tensor::from_vec(&[1, 2, 5, 5], x.clone()).unwrap();
    (x, t)
}

#[test]
fn qlinear_conv_is_dequantize_conv_quantize() {
    let (ws, wz, b) = ([0.01f32, 0.02, 0.005], [0i8, 0, 0], [1000i32, -2000, 300]);
    let g = qconv_model(&ws, &wz, Some(&b)).load_unfolded().unwrap();
    // The ONNX node's name and output end the chain; intermediates are named after it.
    let q = only(&g, "QuantizeLinear");
    assert_eq!(g.node(q).name, "n0_QLinearConv");
    assert_eq!(g.node(q).outputs[0].name, "y");
    assert_eq!(op(&g, q), &Op::QuantizeLinear { axis: 1, to: DType::U8 });
    let ins = g.node_inputs(q);
    let conv = producer(&g, ins[0].unwrap());
    assert!(matches!(conv.op, Op::Conv(_)), "{:?}", conv.op);
    assert_eq!(conv.name, "n0_QLinearConv/conv");
    let cins = g.node_inputs(ins[0].unwrap().node);
    // x: DequantizeLinear of the graph input (per tensor).
    let xd = producer(&g, cins[0].unwrap());
    assert_eq!(xd.name, "n0_QLinearConv/x_dequantized");
    let xdi = g.node_inputs(cins[0].unwrap().node);
    assert_eq!(producer(&g, xdi[0].unwrap()).op, Op::Input);
    // w: DequantizeLinear of the int8 constant, per output channel (axis 0).
    let wd = producer(&g, cins[1].unwrap());
    assert_eq!(wd.op, Op::DequantizeLinear { axis: 0 });
    let wdi = g.node_inputs(cins[1].unwrap().node);
    assert_eq!(g.const_value(wdi[0].unwrap()).unwrap().dtype(), DType::I8);
    // B: DequantizeLinear(int32, x_scale * w_scale) with zero point 0, the scale a constant.
    let bd = producer(&g, cins[2].unwrap());
    assert_eq!(bd.op, Op::DequantizeLinear { axis: 0 });
    let bdi = g.node_inputs(cins[2].unwrap().node);
    assert_eq!(g.const_value(bdi[0].unwrap()).unwrap().dtype(), DType::I32);
    assert_eq!(g.const_value(bdi[1].unwrap()).unwrap().to_f32_vec(), vec![0.02 * 0.01, 0.02 * 0.02, 0.02 * 0.005]);
    assert!(bdi.get(2).copied().flatten().is_none());

    // Numerics: within one output step of int32 accumulation, mostly equal.
    let (x, xt) = x_input();
    for (ws, wz, b) in [
        (vec![0.01f32, 0.02, 0.005], vec![0i8, 0, 0], vec![1000i32, -2000, 300]),
        (vec![0.01f32], vec![3i8], vec![0i32, 0, 0]),
    ] {
        let bias = b.iter().any(|&v| v != 0).then_some(b.as_slice());
        for g in [qconv_model(&ws, &wz, bias).load_unfolded().unwrap(), qconv_model(&ws, &wz, bias).load().unwrap()] {
            let got = run(&g, &[("x", xt.clone())]).remove(0);
            assert_eq!(got.dtype(), DType::U8);
            let want = qconv_expected(&x, &ws, &wz, &b);
            let got: Vec<u8> = got.to_i64_vec().iter().map(|&v| v as u8).collect();
            let off = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert!(got.iter().zip(&want).all(|(a, b)| a.abs_diff(*b) <= 1), "{got:?}\n{want:?}");
            assert!(off * 20 <= want.len(), "{off} of {} outputs off by one", want.len());
        }
    }
}

#[test]
fn qlinear_conv_bias_scale_is_a_mul_when_scales_are_computed() {
    // x_scale is a graph input: the bias scale is a Mul node named after the QLinearConv.
    let mut m = qconv_model(&[0.01, 0.02, 0.005], &[0, 0, 0], Some(&[1, 2, 3]));
    m.graph.initializer.retain(|t| t.name != "x_scale");
    m.graph.input.push(value_info("x_scale", F32, Some(&[])));
    let g = m.load().unwrap();
    let mul = only(&g, "Mul");
    assert_eq!(g.node(mul).name, "n0_QLinearConv/bias_scale");
    let (_, xt) = x_input();
    let y = run(&g, &[("x", xt), ("x_scale", Tensor::scalar(0.02f32))]).remove(0);
    assert_eq!(y.shape(), &[1, 3, 5, 5]);
}

fn err_of(m: &Model) -> String {
    m.load().unwrap_err().to_string()
}

#[test]
fn malformed_qlinear_conv_nodes_are_errors_naming_the_node() {
    // Per-channel scale of the wrong length.
    let e = err_of(&qconv_model(&[0.1, 0.2], &[0, 0], None));
    assert!(e.contains("n0_QLinearConv") && e.contains("2 per-axis values") && e.contains("size 3"), "{e}");
    // Scale and zero point of different lengths.
    let e = err_of(&qconv_model(&[0.1, 0.2, 0.3], &[0], None));
    assert!(e.contains("n0_QLinearConv") && e.contains("the scale has 3 elements, the zero point 1"), "{e}");
    // A float bias.
    let mut m = qconv_model(&[0.1], &[0], None);
    m = m.init(tensor_f32("B", &[3], &[0.0; 3]));
    m.graph.node[0].input.push("B".into());
    let e = err_of(&m);
    assert!(e.contains("n0_QLinearConv") && e.contains("bias B must be i32"), "{e}");
    // f32 data where u8/i8 is required.
    let mut m = qconv_model(&[0.1], &[0], None);
    m.graph.input[0] = value_info("x", F32, Some(&[D::V(1), D::V(2), D::V(5), D::V(5)]));
    let e = err_of(&m);
    assert!(e.contains("n0_QLinearConv") && e.contains("x must be u8 or i8, found f32"), "{e}");
    // A zero point whose dtype is not the data's.
    let mut m = qconv_model(&[0.1], &[0], None);
    m.graph.initializer.retain(|t| t.name != "x_zp");
    m = m.init(t_i8("x_zp", &[], &[0]));
    let e = err_of(&m);
    assert!(e.contains("n0_QLinearConv") && e.contains("zero point is i8, the data u8"), "{e}");
    // A per-channel output scale.
    let mut m = qconv_model(&[0.1], &[0], None);
    m.graph.initializer.retain(|t| t.name != "y_scale");
    m = m.init(tensor_f32("y_scale", &[3], &[0.5; 3]));
    let e = err_of(&m);
    assert!(e.contains("n0_QLinearConv") && e.contains("y_scale must hold one value"), "{e}");
    // Older opsets do not have the operator.
    let mut m = qconv_model(&[0.1], &[0], None);
    m.opset = 9;
    assert!(err_of(&m).contains("exists from opset 10 on"));
}

/// a [2, 3] (u8 input) x b [3, 4] (i8 constant, per-column scale) -> QLinearMatMul.
fn qmatmul_model(opset: i64, b_scale: TensorProto, b_zp: &[i8]) -> Model {
    let mut m = Model::new(opset)
        .input_typed("a", U8, &[D::V(2), D::V(3)])
        .init(tensor_f32("a_scale", &[], &[0.1]))
        .init(t_u8("a_zp", &[], &[10]))
        .init(t_i8("b", &[3, 4], &[1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12]))
        .init(b_scale)
        .init(t_i8("b_zp", &[b_zp.len() as i64], b_zp))
        .init(tensor_f32("y_scale", &[], &[0.05]))
        .init(t_i8("y_zp", &[], &[-3]))
        .node("QLinearMatMul", &["a", "a_scale", "a_zp", "b", "b_scale", "b_zp", "y_scale", "y_zp"], &["y"], vec![]);
    m.graph.output.push(value_info("y", I8, None));
    m
}

#[test]
fn qlinear_matmul_per_column_scales() {
    let scales = [0.01f32, 0.02, 0.03, 0.04];
    let g = qmatmul_model(10, tensor_f32("b_scale", &[4], &scales), &[0, 1, 0, -1]).load_unfolded().unwrap();
    let bd = nodes_of(&g, "DequantizeLinear").into_iter().find(|&id| g.node(id).name.ends_with("b_dequantized"));
    assert_eq!(op(&g, bd.unwrap()), &Op::DequantizeLinear { axis: -1 });
    let a: Vec<u8> = vec![0, 10, 255, 7, 200, 13];
    let y = run(&g, &[("a", Tensor::from_vec(&[2, 3], a.clone()).unwrap())]).remove(0);
    assert_eq!(y.dtype(), DType::I8);
    let b = [1i32, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12];
    let bz = [0i32, 1, 0, -1];
    let mut want = Vec::new();
    for r in 0..2 {
        for c in 0..4 {
            let acc: i32 = (0..3).map(|k| (i32::from(a[r * 3 + k]) - 10) * (b[k * 4 + c] - bz[c])).sum();
            let v = (acc as f32 * (0.1 * scales[c] / 0.05)).round_ties_even() - 3.0;
            want.push(v.clamp(-128.0, 127.0) as i64);
        }
    }
    let got = y.to_i64_vec();
    assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1), "{got:?} vs {want:?}");

    // Per-column length against b's columns.
    let e = err_of(&qmatmul_model(10, tensor_f32("b_scale", &[3], &[0.1; 3]), &[0, 0, 0]));
    assert!(e.contains("n0_QLinearMatMul") && e.contains("axis -1 of the data has size 4"), "{e}");
}

#[test]
fn qlinear_matmul_f16_scales_from_opset_21() {
    let s = t_f16("b_scale", &[], &[0.02]);
    let g = qmatmul_model(21, s.clone(), &[0]).load().unwrap();
    assert_eq!(g.value(g.outputs()[0]).ty.dtype, DType::I8);
    let e = err_of(&qmatmul_model(13, s, &[0]));
    assert!(e.contains("b_scale must be f32, found f16"), "{e}");
}

#[test]
fn conv_integer_and_matmul_integer_are_exact() {
    // ConvInteger with a per-channel weight zero point (the ONNX backend test's data).
    let mut m = Model::new(10)
        .input_typed("x", U8, &[D::V(1), D::V(1), D::V(3), D::V(3)])
        .init(t_u8("w", &[2, 1, 2, 2], &[1; 8]))
        .init(t_u8("x_zp", &[], &[1]))
        .init(t_u8("w_zp", &[2], &[0, 1]))
        .node("ConvInteger", &["x", "w", "x_zp", "w_zp"], &["y"], vec![a_ints("pads", &[1, 1, 1, 1])]);
    m.graph.output.push(value_info("y", I32, None));
    let g = m.load().unwrap();
    assert_eq!(g.node(only(&g, "Cast")).name, "n0_ConvInteger");
    let x = Tensor::from_vec(&[1, 1, 3, 3], (2u8..11).collect::<Vec<_>>()).unwrap();
    let y = run(&g, &[("x", x)]).remove(0);
    assert_eq!(y.dtype(), DType::I32);
    assert_eq!(y.to_i64_vec()[..16], [1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9]);
    assert!(y.to_i64_vec()[16..].iter().all(|&v| v == 0));

    // MatMulInteger: per-row A zero points ([M]) and [.., 1, N] B zero points (broadcast form),
    // extreme values: every partial sum is an exact integer in f32.
    let a: Vec<i8> = vec![-128, 127, -1, 0, 5, -128];
    let b: Vec<u8> = vec![255, 0, 1, 128, 255, 255];
    let mut m = Model::new(10)
        .input_typed("A", I8, &[D::V(2), D::V(3)])
        .init(t_u8("B", &[3, 2], &b))
        .init(t_i8("a_zp", &[2], &[3, -7]))
        .init(t_u8("b_zp", &[1, 2], &[0, 200]))
        .node("MatMulInteger", &["A", "B", "a_zp", "b_zp"], &["Y"], vec![]);
    m.graph.output.push(value_info("Y", I32, None));
    let g = m.load_unfolded().unwrap();
    let names: Vec<&str> = g.node_ids().into_iter().map(|id| g.node(id).name.as_str()).collect();
    assert!(names.contains(&"n0_MatMulInteger/b_dequantized_centered"), "{names:?}");
    let y = run(&g, &[("A", Tensor::from_vec(&[2, 3], a.clone()).unwrap())]).remove(0);
    let (az, bz) = ([3i64, -7], [0i64, 200]);
    let mut want = Vec::new();
    for r in 0..2 {
        for c in 0..2 {
            want.push(
                (0..3).map(|k| (i64::from(a[r * 3 + k]) - az[r]) * (i64::from(b[k * 2 + c]) - bz[c])).sum::<i64>(),
            );
        }
    }
    assert_eq!(y.to_i64_vec(), want);

    // A 2-D zero point for ConvInteger's x is an error naming the node.
    let mut m = Model::new(10)
        .input_typed("x", U8, &[D::V(1), D::V(1), D::V(3), D::V(3)])
        .init(t_u8("w", &[2, 1, 2, 2], &[1; 8]))
        .init(t_u8("x_zp", &[1, 1], &[1]))
        .node("ConvInteger", &["x", "w", "x_zp"], &["y"], vec![]);
    m.graph.output.push(value_info("y", I32, None));
    let e = err_of(&m);
    assert!(e.contains("n0_ConvInteger") && e.contains("scalars or 1-D"), "{e}");
}

#[test]
fn dynamic_quantize_linear_imports_with_three_outputs() {
    // Only y is read: the node still has its three outputs.
    let mut m =
        Model::new(11).input("x", &[D::P("n"), D::V(3)]).node("DynamicQuantizeLinear", &["x"], &["y", "", ""], vec![]);
    m.graph.output.push(value_info("y", U8, None));
    let g = m.load().unwrap();
    let d = only(&g, "DynamicQuantizeLinear");
    assert_eq!(g.node(d).outputs.len(), 3);
    assert_eq!(g.node(d).outputs[1].ty.dtype, DType::F32);
    let x = Tensor::from_vec(&[2, 3], vec![0.0f32, 2.0, -3.0, -2.5, 1.34, 0.5]).unwrap();
    let y = run(&g, &[("x", x)]).remove(0);
    assert_eq!(y.to_i64_vec(), vec![153, 255, 0, 26, 221, 179]);

    let mut m = Model::new(10).input("x", &[D::V(3)]).node("DynamicQuantizeLinear", &["x"], &["y", "s", "z"], vec![]);
    m.graph.output.push(value_info("y", U8, None));
    assert!(err_of(&m).contains("exists from opset 11 on"));
    let mut m =
        Model::new(11).input_typed("x", U8, &[D::V(3)]).node("DynamicQuantizeLinear", &["x"], &["y", "s", "z"], vec![]);
    m.graph.output.push(value_info("y", U8, None));
    let e = err_of(&m);
    assert!(e.contains("n0_DynamicQuantizeLinear") && e.contains("x must be f32, found u8"), "{e}");
}

/// Every input slot of every op replaced by graph inputs of other dtypes and ranks (or left
/// out): the importer answers with a graph or an error naming the node, never a panic.
#[test]
fn malformed_inputs_never_panic() {
    let cases: [(&str, i64, usize); 5] = [
        ("QLinearConv", 10, 9),
        ("QLinearMatMul", 21, 8),
        ("ConvInteger", 10, 4),
        ("MatMulInteger", 10, 4),
        ("DynamicQuantizeLinear", 11, 1),
    ];
    let variants: [(i32, Option<&[D]>); 7] = [
        (F32, Some(&[])),
        (U8, Some(&[D::V(1), D::V(2), D::V(4), D::V(4)])),
        (I8, Some(&[D::V(3), D::V(2), D::V(3), D::V(3)])),
        (I32, Some(&[D::V(3)])),
        (F16, Some(&[D::V(1)])),
        (U8, Some(&[D::V(2), D::V(2)])),
        (I8, None),
    ];
    let mut accepted = 0;
    for (op_type, opset, n) in cases {
        for slot in 0..n {
            for v in 0..=variants.len() {
                let mut m = Model::new(opset);
                let mut names = Vec::new();
                for i in 0..n {
                    let name = format!("in{i}");
                    let (elem, dims) = if i == slot {
                        match variants.get(v) {
                            Some(&(e, d)) => (e, d),
                            None => {
                                names.push(String::new()); // absent
                                continue;
                            }
                        }
                    } else {
                        // A plausible default per slot: data u8/i8, scales f32 scalars, zero points.
                        match (op_type, i) {
                            (_, 0) if op_type == "DynamicQuantizeLinear" => (F32, Some(&[D::V(2), D::V(3)][..])),
                            (_, 0) => (U8, Some(&[D::V(1), D::V(2), D::V(4), D::V(4)][..])),
                            ("QLinearConv", 3) | ("ConvInteger", 1) => {
                                (I8, Some(&[D::V(3), D::V(2), D::V(3), D::V(3)][..]))
                            }
                            ("QLinearMatMul", 3) | ("MatMulInteger", 1) => (I8, Some(&[D::V(4), D::V(5)][..])),
                            ("QLinearConv" | "QLinearMatMul", 1 | 4 | 6) => (F32, Some(&[][..])),
                            ("QLinearConv", 8) => (I32, Some(&[D::V(3)][..])),
                            ("QLinearConv" | "QLinearMatMul", 5) | ("ConvInteger" | "MatMulInteger", 3) => {
                                (I8, Some(&[][..]))
                            }
                            _ => (U8, Some(&[][..])),
                        }
                    };
                    m.graph.input.push(value_info(&name, elem, dims));
                    names.push(name);
                }
                let ins: Vec<&str> = names.iter().map(String::as_str).collect();
                let outs: &[&str] = if op_type == "DynamicQuantizeLinear" { &["y", "s", "z"] } else { &["y"] };
                m = m.node(op_type, &ins, outs, vec![]);
                m.graph.output.push(value_info("y", U8, None));
                match m.load() {
                    Ok(_) => accepted += 1,
                    Err(e) => {
                        let e = e.to_string();
                        assert!(
                            e.contains(op_type) || e.contains("graph input"),
                            "{op_type} slot {slot} variant {v}: {e}"
                        );
                    }
                }
            }
        }
    }
    assert!(accepted > 0);
}
