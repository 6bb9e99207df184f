//! Building, validating and ordering graphs.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{ConvAttrs, PoolAttrs};
use lithe_ir::{DType, Dim, Graph, IrError, Op, Outlet, Tensor, TypeInfo, ValueInfo};

fn small_cnn() -> Graph {
    let mut b = GraphBuilder::new("cnn");
    let x = b.input("x", DType::F32, &[Dim::Sym("N".into()), 3.into(), 32.into(), 32.into()]);
    let conv = ConvAttrs { strides: vec![2, 2], pads: vec![1; 4], group: 1, ..Default::default() };
    let y = b.conv2d(x, Tensor::zeros(DType::F32, &[8, 3, 3, 3]), Some(Tensor::zeros(DType::F32, &[8])), conv).unwrap();
    let p = || Tensor::zeros(DType::F32, &[8]);
    let y = b.batch_norm(y, p(), p(), p(), p(), 1e-5).unwrap();
    let y = b.relu(y).unwrap();
    let pool = PoolAttrs { kernel_shape: vec![2, 2], strides: vec![2, 2], ..Default::default() };
    let y = b.max_pool(y, pool).unwrap();
    assert_eq!(b.ty(y).to_string(), "f32[N,8,8,8]");
    let g = b.global_avg_pool(y).unwrap();
    let r = b.reshape(g, &[0, -1]).unwrap();
    assert_eq!(b.ty(r).to_string(), "f32[N,8]");
    let z = b.linear(r, Tensor::zeros(DType::F32, &[10, 8]), Some(Tensor::zeros(DType::F32, &[10]))).unwrap();
    let skip = b.add(z, z).unwrap();
    b.output(skip);
    b.finish().unwrap()
}

#[test]
fn builder_builds_a_valid_graph() {
    let g = small_cnn();
    let o = g.outputs()[0];
    assert_eq!(g.value(o).ty.to_string(), "f32[N,10]");
    // conv 8*3*3*3 + 8, bn 4*8, linear 10*8 + 10 (the reshape shape is i64, not a parameter).
    assert_eq!(g.total_params(), 216 + 8 + 32 + 80 + 10);
    assert!(g.find_value("Conv_0.weight").is_some(), "weights are named after their node");
    // All node names are unique and validation passes.
    g.validate().unwrap();
}

#[test]
fn builder_reports_errors_and_leaves_no_garbage() {
    let mut b = GraphBuilder::new("bad");
    let x = b.input("x", DType::F32, &[1usize, 4, 8, 8]);
    let before = b.graph().len();
    let e = b
        .conv2d(x, Tensor::zeros(DType::F32, &[8, 3, 3, 3]), None, ConvAttrs { group: 1, ..Default::default() })
        .unwrap_err();
    assert!(e.to_string().contains("Conv_0") && e.to_string().contains("4 channels"), "{e}");
    assert_eq!(b.graph().len(), before, "failed node's constants were removed");
    let i = b.input("i", DType::I64, &[8usize]);
    let v = b.input("v", DType::F32, &[8usize]);
    assert!(matches!(b.add(i, v), Err(IrError::Node { .. })));
    assert!(b.finish().is_err(), "a graph without outputs is rejected");
}

#[test]
fn validation_reports_every_problem() {
    let mut g = Graph::new("bad");
    let x = g.add_input("x", TypeInfo::new(DType::F32, [1, 3, 8, 8]));
    let idx = g.add_input("idx", TypeInfo::new(DType::I64, [1, 3, 8, 8]));
    // A Conv without its weight.
    let conv = g
        .add_node(
            "conv",
            Op::Conv(ConvAttrs { group: 1, ..Default::default() }),
            &[Some(x), None],
            vec![ValueInfo { name: "c".into(), ty: TypeInfo::new(DType::F32, [1, 3, 8, 8]) }],
        )
        .unwrap();
    // An Add of f32 and i64.
    let add = g
        .add_node(
            "add",
            Op::Add,
            &[Some(x), Some(idx)],
            vec![ValueInfo { name: "a".into(), ty: TypeInfo::new(DType::F32, [1, 3, 8, 8]) }],
        )
        .unwrap();
    // A Relu whose declared dtype is wrong.
    let relu = g
        .add_node(
            "relu",
            Op::Relu,
            &[Some(x)],
            vec![ValueInfo { name: "r".into(), ty: TypeInfo::new(DType::I8, [1, 3, 8, 8]) }],
        )
        .unwrap();
    g.set_outputs(vec![Outlet::new(conv, 0), Outlet::new(add, 0), Outlet::new(relu, 0)]);
    let e = g.validate().unwrap_err();
    let IrError::Many(errs) = &e else { panic!("expected several problems, got {e}") };
    assert_eq!(errs.len(), 3, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("'conv'") && msg.contains("missing input 1 (W)"), "{msg}");
    assert!(msg.contains("'add'") && msg.contains("expected dtype f32, found i64"), "{msg}");
    assert!(msg.contains("'relu'") && msg.contains("found i8"), "{msg}");
}

#[test]
fn validation_finds_cycles() {
    let mut g = Graph::new("cyclic");
    let x = g.add_input("x", TypeInfo::new(DType::F32, [4]));
    let a = g.add_node_inferred("a", Op::Relu, &[Some(x)], 1).unwrap()[0];
    let b = g.add_node_inferred("b", Op::Add, &[Some(a), Some(x)], 1).unwrap()[0];
    g.set_input(a.node, 0, Some(b)).unwrap();
    g.set_outputs(vec![b]);
    assert!(matches!(g.validate(), Err(IrError::Cycle(_))));
}

#[test]
fn topo_order_is_deterministic() {
    // A diamond with the branches added in an order unlike their dependency order.
    let build = || {
        let mut b = GraphBuilder::new("diamond");
        let x = b.input("x", DType::F32, &[4usize]);
        let l = b.relu(x).unwrap();
        let r = b.node(Op::Sigmoid, &[x]).unwrap();
        let r2 = b.node(Op::Neg, &[r]).unwrap();
        let j = b.add(r2, l).unwrap();
        b.output(j);
        b.finish().unwrap()
    };
    let g = build();
    let names: Vec<String> = g.topo_order().unwrap().iter().map(|&id| g.node(id).name.clone()).collect();
    assert_eq!(names, ["x", "Relu_0", "Sigmoid_1", "Neg_2", "Add_3"]);
    for _ in 0..3 {
        let h = build();
        let again: Vec<String> = h.topo_order().unwrap().iter().map(|&id| h.node(id).name.clone()).collect();
        assert_eq!(again, names);
    }
    assert_eq!(g.clone().topo_order().unwrap(), g.topo_order().unwrap());
}

#[test]
fn node_flops_through_the_graph() {
    let g = small_cnn();
    let conv = g.node_ids().into_iter().find(|&id| g.node(id).name == "Conv_0").unwrap();
    // Symbolic batch: unknown.
    assert_eq!(g.node_flops(conv), None);
    let mut g = g;
    g.set_input_type(0, TypeInfo::new(DType::F32, [2, 3, 32, 32])).unwrap();
    g.infer_shapes().unwrap();
    let out = 2 * 8 * 16 * 16;
    assert_eq!(g.node_flops(conv), Some(2 * out * 27 + out));
    assert_eq!(g.value(g.outputs()[0]).ty.to_string(), "f32[2,10]");
}
