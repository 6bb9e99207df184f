//! Shared by the integration tests and the fuzz-seed example: a graph using every operator
//! and dtype, and a node-by-node graph comparison.
#![allow(dead_code)]

use half::f16;
use lithe_ir::op::{
    Activation, ArgAttrs, AutoPad, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, CoordTransform, Epilogue, FcAttrs,
    GemmAttrs, NearestMode, PadMode, PoolAttrs, QConvAttrs, ReduceAttrs, ResizeAttrs, ResizeMode, SoftmaxAttrs,
};
use lithe_ir::{DType, Dim, Graph, NodeId, Op, Outlet, QuantParams, Shape, Tensor, TensorData, TypeInfo};
use std::collections::HashMap;

fn f32s(shape: &[usize], seed: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|i| seed + i as f32 * 0.25 - 1.0).collect()).unwrap()
}

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
}

struct B {
    g: Graph,
    n: usize,
}

impl B {
    fn c(&mut self, t: Tensor) -> Outlet {
        self.n += 1;
        self.g.add_const(format!("const_{}", self.n), t)
    }

    fn op(&mut self, op: Op, inputs: &[Option<Outlet>]) -> Outlet {
        self.ops(op, inputs, 1)[0]
    }

    fn ops(&mut self, op: Op, inputs: &[Option<Outlet>], outs: usize) -> Vec<Outlet> {
        self.n += 1;
        let name = format!("{}_{}", op.name(), self.n);
        self.g.add_node_inferred(name, op, inputs, outs).unwrap()
    }
}

/// One constant of every dtype (with quantization parameters on the 8-bit ones).
pub fn every_dtype_tensors() -> Vec<Tensor> {
    let mut q8 = Tensor::from_vec(&[2, 3], vec![-128i8, -1, 0, 1, 64, 127]).unwrap();
    q8.quant = Some(QuantParams { scale: vec![0.5, 0.125], zero_point: vec![0, -3], axis: Some(0) });
    let mut qu8 = Tensor::from_vec(&[4], vec![0u8, 1, 128, 255]).unwrap();
    qu8.quant = Some(QuantParams { scale: vec![0.02], zero_point: vec![128], axis: None });
    vec![
        Tensor::from_vec(&[2, 2], vec![1.5f32, -0.0, f32::MAX, f32::MIN_POSITIVE]).unwrap(),
        Tensor::from_vec(&[3], vec![f16::from_f32(1.0), f16::from_f32(-2.5), f16::MAX]).unwrap(),
        q8,
        qu8,
        Tensor::from_vec(&[2], vec![i16::MIN, i16::MAX]).unwrap(),
        Tensor::from_vec(&[2, 1], vec![i32::MIN, 7]).unwrap(),
        Tensor::from_vec(&[3], vec![i64::MIN, -1, i64::MAX]).unwrap(),
        Tensor::from_vec(&[5], vec![true, false, false, true, true]).unwrap(),
        Tensor::scalar(3.25f32),
        Tensor::zeros(DType::F32, &[0, 4]),
    ]
}

/// A graph that uses every [`Op`] variant, every dtype, absent optional inputs, fused
/// epilogues, symbolic, unknown and unranked shapes, and multi-output nodes.
pub fn all_ops_graph() -> Graph {
    let mut b = B { g: Graph::new("all_ops"), n: 0 };
    let x = b.g.add_input("x", TypeInfo::new(DType::F32, [1, 4, 8, 8]));
    let s = b.g.add_input(
        "s",
        TypeInfo { dtype: DType::F32, shape: Some(Shape(vec![Dim::Sym("batch".into()), Dim::Unknown, Dim::Known(5)])) },
    );
    let u = b.g.add_input("u", TypeInfo::unranked(DType::I64));
    let mut outs = Vec::new();

    // Convolutions, plain and fused.
    let w = b.c(f32s(&[4, 4, 3, 3], 0.5));
    let bias = b.c(f32s(&[4], 0.1));
    let conv =
        b.op(Op::Conv(ConvAttrs { pads: vec![1, 1, 1, 1], ..Default::default() }), &[Some(x), Some(w), Some(bias)]);
    let slope = b.c(f32s(&[4, 1, 1], 0.2));
    let fused = b.op(
        Op::Conv(ConvAttrs {
            pads: vec![1, 1, 1, 1],
            epilogue: Epilogue { residual: true, activation: Activation::PRelu },
            ..Default::default()
        }),
        &[Some(x), Some(w), None, Some(conv), Some(slope)],
    );
    let w2 = b.c(f32s(&[4, 2, 3, 3], -0.3));
    let conv2 = b.op(
        Op::Conv(ConvAttrs {
            kernel_shape: Some(vec![3, 3]),
            strides: vec![2, 2],
            dilations: vec![1, 1],
            auto_pad: AutoPad::SameUpper,
            group: 2,
            epilogue: Epilogue { residual: false, activation: Activation::Clip { min: 0.0, max: 6.0 } },
            ..Default::default()
        }),
        &[Some(fused), Some(w2)],
    );
    for act in [
        Activation::Relu,
        Activation::LeakyRelu { alpha: 0.01 },
        Activation::HardSwish,
        Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::None,
    ] {
        let attrs = ConvAttrs { epilogue: Epilogue { residual: false, activation: act }, ..Default::default() };
        let w1 = b.c(f32s(&[4, 4, 1, 1], 0.05));
        outs.push(b.op(Op::Conv(attrs), &[Some(conv2), Some(w1)]));
    }
    let (wt, bt) = (b.c(f32s(&[4, 2, 2, 2], 0.7)), b.c(f32s(&[2], 0.0)));
    let ct = b.op(
        Op::ConvTranspose(ConvTransposeAttrs {
            conv: ConvAttrs { strides: vec![2, 2], ..Default::default() },
            output_padding: vec![1, 1],
            output_shape: None,
        }),
        &[Some(conv2), Some(wt), Some(bt)],
    );
    outs.push(ct);
    let wt2 = b.c(f32s(&[4, 1, 3, 3], 0.7));
    outs.push(b.op(
        Op::ConvTranspose(ConvTransposeAttrs {
            conv: ConvAttrs { strides: vec![2, 2], auto_pad: AutoPad::SameLower, ..Default::default() },
            output_padding: vec![],
            output_shape: Some(vec![8, 8]),
        }),
        &[Some(conv2), Some(wt2)],
    ));
    let bn_params: Vec<_> = (0..4).map(|i| Some(b.c(f32s(&[4], 1.0 + i as f32)))).collect();
    let bn = b.op(
        Op::BatchNormalization { epsilon: 1e-5 },
        &[Some(conv), bn_params[0], bn_params[1], bn_params[2], bn_params[3]],
    );

    // Activations.
    let mut y = b.op(Op::Relu, &[Some(bn)]);
    let cmax = b.c(Tensor::scalar(6.0f32));
    y = b.op(Op::Clip, &[Some(y), None, Some(cmax)]);
    y = b.op(Op::LeakyRelu { alpha: 0.1 }, &[Some(y)]);
    y = b.op(Op::PRelu, &[Some(y), Some(slope)]);
    y = b.op(Op::Sigmoid, &[Some(y)]);
    y = b.op(Op::HardSigmoid { alpha: 0.2, beta: 0.5 }, &[Some(y)]);
    y = b.op(Op::HardSwish, &[Some(y)]);
    y = b.op(Op::Tanh, &[Some(y)]);
    y = b.op(Op::Softmax(SoftmaxAttrs { axis: 1, coerce_2d: false }), &[Some(y)]);
    outs.push(b.op(Op::Softmax(SoftmaxAttrs { axis: -1, coerce_2d: true }), &[Some(y)]));

    // Linear algebra.
    let a23 = b.c(f32s(&[2, 3], 0.3));
    let b43 = b.c(f32s(&[4, 3], 0.4));
    let c4 = b.c(f32s(&[4], 0.0));
    outs.push(b.op(
        Op::Gemm(GemmAttrs { alpha: 0.5, beta: 2.0, trans_a: false, trans_b: true }),
        &[Some(a23), Some(b43), Some(c4)],
    ));
    let b35 = b.c(f32s(&[3, 5], 0.6));
    outs.push(b.op(Op::MatMul, &[Some(a23), Some(b35)]));
    let b5 = b.c(f32s(&[5], 0.6));
    outs.push(b.op(
        Op::FullyConnected(FcAttrs { activation: Activation::LeakyRelu { alpha: 0.2 } }),
        &[Some(a23), Some(b35), Some(b5)],
    ));
    let fc_slope = b.c(f32s(&[5], 0.25));
    outs.push(b.op(
        Op::FullyConnected(FcAttrs { activation: Activation::PRelu }),
        &[Some(a23), Some(b35), None, Some(fc_slope)],
    ));

    // Elementwise binary and unary.
    let mut e = b.op(Op::Add, &[Some(y), Some(conv)]);
    let sub = bias_like(&mut b);
    e = b.op(Op::Sub, &[Some(e), Some(sub)]);
    e = b.op(Op::Mul, &[Some(e), Some(fused)]);
    e = b.op(Op::Div, &[Some(e), Some(cmax)]);
    let two = b.c(Tensor::scalar(2.0f32));
    e = b.op(Op::Pow, &[Some(e), Some(two)]);
    e = b.op(Op::Sqrt, &[Some(e)]);
    for op in [Op::Erf, Op::Exp, Op::Log, Op::Neg, Op::Abs, Op::Identity] {
        e = b.op(op, &[Some(e)]);
    }
    let drop = b.ops(Op::Dropout, &[Some(e)], 2);
    outs.extend(drop.iter().copied());
    outs.push(b.op(Op::Min, &[Some(e), Some(conv), Some(fused)]));
    outs.push(b.op(Op::Max, &[Some(e), Some(conv)]));

    // Pooling.
    let pool = PoolAttrs {
        kernel_shape: vec![3, 3],
        strides: vec![2, 2],
        dilations: vec![1, 1],
        pads: vec![1, 1, 1, 1],
        auto_pad: AutoPad::NotSet,
        ceil_mode: true,
    };
    outs.extend(b.ops(Op::MaxPool(pool.clone()), &[Some(x)], 1));
    outs.push(b.op(Op::AveragePool(AvgPoolAttrs { pool, count_include_pad: true }), &[Some(x)]));
    outs.push(b.op(Op::GlobalAveragePool, &[Some(x)]));
    outs.push(b.op(Op::GlobalMaxPool, &[Some(x)]));

    // Layout.
    outs.push(b.op(Op::Concat { axis: 1 }, &[Some(x), Some(conv), Some(fused)]));
    let shape = b.c(i64s(&[1, -1]));
    outs.push(b.op(Op::Reshape { allowzero: false }, &[Some(x), Some(shape)]));
    outs.push(b.op(Op::Flatten { axis: -2 }, &[Some(x)]));
    outs.push(b.op(Op::Transpose { perm: Some(vec![0, 2, 3, 1]) }, &[Some(x)]));
    outs.push(b.op(Op::Transpose { perm: None }, &[Some(x)]));
    let ax0 = b.c(i64s(&[0]));
    let un = b.op(Op::Unsqueeze, &[Some(x), Some(ax0)]);
    outs.push(b.op(Op::Squeeze, &[Some(un), Some(ax0)]));
    let pads = b.c(i64s(&[0, 0, 1, 2, 0, 0, 2, 1]));
    outs.push(b.op(Op::Pad { mode: PadMode::Reflect }, &[Some(x), Some(pads)]));
    for mode in [PadMode::Constant, PadMode::Edge, PadMode::Wrap] {
        outs.push(b.op(Op::Pad { mode }, &[Some(x), Some(pads)]));
    }
    let scales = b.c(Tensor::from_vec(&[4], vec![1.0f32, 1.0, 2.0, 1.5]).unwrap());
    outs.push(b.op(
        Op::Resize(ResizeAttrs {
            mode: ResizeMode::Linear,
            coord: CoordTransform::AlignCorners,
            nearest: NearestMode::Ceil,
            cubic_coeff_a: -0.5,
            extrapolation_value: 1.0,
            exclude_outside: true,
        }),
        &[Some(x), None, Some(scales)],
    ));
    let sizes = b.c(i64s(&[1, 4, 5, 7]));
    outs.push(b.op(
        Op::Resize(ResizeAttrs {
            mode: ResizeMode::Cubic,
            coord: CoordTransform::HalfPixelSymmetric,
            nearest: NearestMode::RoundPreferCeil,
            ..Default::default()
        }),
        &[Some(x), None, None, Some(sizes)],
    ));
    let (st, en, ax, sp) = (b.c(i64s(&[0])), b.c(i64s(&[2])), b.c(i64s(&[1])), b.c(i64s(&[1])));
    outs.push(b.op(Op::Slice, &[Some(x), Some(st), Some(en), Some(ax), Some(sp)]));
    let split = b.c(i64s(&[1, 3]));
    outs.extend(b.ops(Op::Split { axis: 1, num_outputs: 2 }, &[Some(x), Some(split)], 2));
    let idx = b.c(i64s(&[0, 2, -1]));
    outs.push(b.op(Op::Gather { axis: 1 }, &[Some(x), Some(idx)]));
    outs.push(b.op(Op::Shape { start: 1, end: Some(3) }, &[Some(x)]));
    outs.push(b.op(Op::Shape { start: -2, end: None }, &[Some(s)]));
    let shp = b.c(i64s(&[2, 4, 8, 8]));
    outs.push(b.op(Op::Expand, &[Some(x), Some(shp)]));

    // Reductions and normalization.
    let axes = b.c(i64s(&[2, 3]));
    let r = ReduceAttrs { keepdims: false, noop_with_empty_axes: true };
    outs.push(b.op(Op::ReduceMean(r.clone()), &[Some(x), Some(axes)]));
    outs.push(b.op(Op::ReduceSum(ReduceAttrs::default()), &[Some(x), Some(axes)]));
    outs.push(b.op(Op::ReduceMax(r), &[Some(x), None]));
    outs.push(b.op(Op::ArgMax(ArgAttrs { axis: 1, keepdims: false, select_last_index: true }), &[Some(x)]));
    let (sc, bi) = (b.c(f32s(&[8], 1.0)), b.c(f32s(&[8], 0.0)));
    outs.extend(b.ops(Op::LayerNormalization { axis: -1, epsilon: 1e-6 }, &[Some(x), Some(sc), Some(bi)], 1));

    // Value-producing ops.
    let dims = b.c(i64s(&[2, 3]));
    let mut fill = Tensor::from_vec(&[1], vec![7i32]).unwrap();
    fill.quant = Some(QuantParams { scale: vec![1.5], zero_point: vec![2], axis: None });
    outs.push(b.op(Op::ConstantOfShape { value: fill }, &[Some(dims)]));
    outs.push(b.op(Op::ConstantOfShape { value: Tensor::from_vec(&[1], vec![true]).unwrap() }, &[Some(dims)]));
    let (r0, r1, r2) = (b.c(Tensor::scalar(0i64)), b.c(Tensor::scalar(10i64)), b.c(Tensor::scalar(3i64)));
    outs.push(b.op(Op::Range, &[Some(r0), Some(r1), Some(r2)]));
    let eq = b.op(Op::Equal, &[Some(x), Some(conv)]);
    outs.push(eq);
    outs.push(b.op(Op::Where, &[Some(eq), Some(x), Some(conv)]));

    // Every dtype as a constant, cast and passed through.
    for t in every_dtype_tensors() {
        let dt = t.dtype();
        let c = b.c(t);
        outs.push(c);
        outs.push(b.op(Op::Cast { to: DType::F32 }, &[Some(c)]));
        if dt != DType::F32 {
            let back = b.op(Op::Cast { to: DType::F32 }, &[Some(c)]);
            outs.push(b.op(Op::Cast { to: dt }, &[Some(back)]));
        }
    }

    // Quantize and dequantize, per tensor and per axis, with and without zero points.
    let q_scale = b.c(Tensor::scalar(0.05f32));
    let q_zp = b.c(Tensor::scalar(128u8));
    let qx = b.op(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[Some(x), Some(q_scale), Some(q_zp)]);
    outs.push(qx);
    outs.push(b.op(Op::DequantizeLinear { axis: 1 }, &[Some(qx), Some(q_scale), Some(q_zp)]));
    let w_scale = b.c(Tensor::from_vec(&[4], vec![0.1f32, 0.2, 0.3, 0.4]).unwrap());
    let wq = b.op(Op::QuantizeLinear { axis: 1, to: DType::I8 }, &[Some(x), Some(w_scale)]);
    outs.push(b.op(Op::DequantizeLinear { axis: -3 }, &[Some(wq), Some(w_scale)]));
    outs.extend(b.ops(Op::DynamicQuantizeLinear, &[Some(x)], 3));

    // The int8 conv: f32 output, and a requantized u8 output with a fused ReLU.
    let w8 = b.c(Tensor::from_vec(&[2, 4, 1, 1], vec![1i8, -2, 3, -4, 5, -6, 7, -8]).unwrap());
    let w8_scale = b.c(Tensor::from_vec(&[2], vec![0.01f32, 0.02]).unwrap());
    let qconv = |to: DType, activation: Activation| {
        Op::QConv(QConvAttrs {
            conv: ConvAttrs { epilogue: Epilogue { residual: false, activation }, ..ConvAttrs::default() },
            to,
        })
    };
    let (qs, qz) = (Some(q_scale), Some(q_zp));
    outs.push(b.op(qconv(DType::F32, Activation::None), &[Some(qx), qs, qz, Some(w8), Some(w8_scale)]));
    let relu = qconv(DType::U8, Activation::Relu);
    outs.push(b.op(relu, &[Some(qx), qs, qz, Some(w8), Some(w8_scale), None, None, qs, qz]));
    // With an int32 bias (integer requantization).
    let b32 = b.c(Tensor::from_vec(&[2], vec![-70i32, 1234]).unwrap());
    let clip = qconv(DType::U8, Activation::Clip { min: 0.0, max: 6.0 });
    outs.push(b.op(clip, &[Some(qx), qs, qz, Some(w8), Some(w8_scale), Some(b32), None, qs, qz]));
    // The int8 add.
    let c_scale = b.c(Tensor::scalar(0.08f32));
    let c_zp = b.c(Tensor::scalar(100u8));
    outs.push(b.op(Op::QAdd, &[Some(qx), qs, qz, Some(qx), qs, qz, Some(c_scale), Some(c_zp)]));
    outs.push(b.op(Op::QGlobalAveragePool, &[Some(qx), qs, qz, Some(c_scale), Some(c_zp)]));

    // Symbolic, unknown and unranked inputs.
    outs.push(b.op(Op::Relu, &[Some(s)]));
    outs.push(b.op(Op::Identity, &[Some(u)]));

    b.g.set_outputs(outs);
    b.g.validate().unwrap();
    b.g
}

fn bias_like(b: &mut B) -> Outlet {
    b.c(f32s(&[1, 4, 1, 1], 0.9))
}

/// The names of every op the graph uses.
pub fn op_names(g: &Graph) -> std::collections::BTreeSet<&'static str> {
    g.node_ids().into_iter().map(|id| g.node(id).op.name()).collect()
}

/// Exact equality of tensors, comparing floats by their bits.
pub fn assert_same_tensor(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.dtype(), b.dtype(), "{what}: dtype");
    assert_eq!(a.shape(), b.shape(), "{what}: shape");
    assert_eq!(a.quant, b.quant, "{what}: quant");
    match (a.data(), b.data()) {
        (TensorData::F32(x), TensorData::F32(y)) => {
            assert!(x.iter().zip(y.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "{what}: f32 data");
        }
        (TensorData::F16(x), TensorData::F16(y)) => {
            assert!(x.iter().zip(y.iter()).all(|(p, q)| p.to_bits() == q.to_bits()), "{what}: f16 data");
        }
        (x, y) => assert_eq!(x, y, "{what}: data"),
    }
}

/// Node-by-node equality (in node-id order): names, ops with attributes, constant tensors
/// bit for bit, input wiring, output names and types, graph inputs and outputs.
pub fn assert_same_graph(a: &Graph, b: &Graph) {
    assert_eq!(a.name, b.name);
    let (ia, ib) = (a.node_ids(), b.node_ids());
    assert_eq!(ia.len(), ib.len(), "node count");
    let pa: HashMap<NodeId, usize> = ia.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let pb: HashMap<NodeId, usize> = ib.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let pos = |p: &HashMap<NodeId, usize>, o: Outlet| (p[&o.node], o.slot);
    for (k, (&x, &y)) in ia.iter().zip(&ib).enumerate() {
        let (na, nb) = (a.node(x), b.node(y));
        let what = format!("node {k} '{}'", na.name);
        assert_eq!(na.name, nb.name, "{what}: name");
        match (&na.op, &nb.op) {
            (Op::Const(s), Op::Const(t)) => assert_same_tensor(s, t, &what),
            (Op::ConstantOfShape { value: s }, Op::ConstantOfShape { value: t }) => assert_same_tensor(s, t, &what),
            (p, q) => assert_eq!(p, q, "{what}: op"),
        }
        assert_eq!(na.num_inputs, nb.num_inputs, "{what}: input count");
        assert_eq!(na.outputs, nb.outputs, "{what}: outputs");
        let ins_a: Vec<_> = a.node_inputs(x).into_iter().map(|o| o.map(|o| pos(&pa, o))).collect();
        let ins_b: Vec<_> = b.node_inputs(y).into_iter().map(|o| o.map(|o| pos(&pb, o))).collect();
        assert_eq!(ins_a, ins_b, "{what}: inputs");
    }
    let gi_a: Vec<_> = a.inputs().iter().map(|id| pa[id]).collect();
    let gi_b: Vec<_> = b.inputs().iter().map(|id| pb[id]).collect();
    assert_eq!(gi_a, gi_b, "graph inputs");
    let go_a: Vec<_> = a.outputs().iter().map(|&o| pos(&pa, o)).collect();
    let go_b: Vec<_> = b.outputs().iter().map(|&o| pos(&pb, o)).collect();
    assert_eq!(go_a, go_b, "graph outputs");
}

/// A sample metadata block.
pub fn meta() -> lithe_nbformat::ModelMeta {
    lithe_nbformat::ModelMeta {
        producer: "lithe 0.1.0".into(),
        source: "model.onnx".into(),
        passes: vec!["fold_constants".into(), "fuse_conv_bn".into()],
        valid_targets: vec!["arm".into(), "x86".into()],
    }
}

/// The golden ONNX models under testdata/golden, by case name.
pub fn golden_models() -> Vec<(String, std::path::PathBuf)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden");
    let mut v: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p.join("model.onnx")))
        .collect();
    v.sort();
    v
}

/// Import a golden model with default options.
pub fn load_golden(path: &std::path::Path) -> Graph {
    lithe_onnx::load_model(path, &lithe_onnx::ImportOptions::default()).unwrap()
}
