//! Predictor runs on hand-built graphs: symbolic batch, outputs that are inputs or constants,
//! multi-output nodes, pruning and repeated runs.

use lithe_ir::{DType, Dim, Graph, Op, Outlet, Shape, Tensor, TypeInfo, ValueInfo};
use lithe_runtime::Predictor;

fn sym(dims: &[&str]) -> Shape {
    Shape(
        dims.iter()
            .map(|d| match d.parse::<usize>() {
                Ok(n) => Dim::Known(n),
                Err(_) if *d == "?" => Dim::Unknown,
                Err(_) => Dim::Sym((*d).to_string()),
            })
            .collect(),
    )
}

fn f32t(shape: &[&str]) -> TypeInfo {
    TypeInfo::new(DType::F32, sym(shape))
}

fn node(g: &mut Graph, name: &str, op: Op, inputs: &[Option<Outlet>], out: TypeInfo) -> Outlet {
    let id = g.add_node(name, op, inputs, vec![ValueInfo { name: name.to_string(), ty: out }]).unwrap();
    Outlet::new(id, 0)
}

const W: [f32; 12] = [0.5, -1.0, 2.0, 1.5, 0.25, -0.5, -2.0, 1.0, 0.0, 1.0, -0.75, 0.5];
const B: [f32; 3] = [0.1, -0.2, 0.3];

/// y = relu(x @ W + b) with x: f32[batch, 4], W: [4, 3], b: [3].
fn mlp() -> Graph {
    let mut g = Graph::new("mlp");
    let x = g.add_input("x", f32t(&["batch", "4"]));
    let w = g.add_const("w", Tensor::from_vec(&[4, 3], W.to_vec()).unwrap());
    let b = g.add_const("b", Tensor::from_vec(&[3], B.to_vec()).unwrap());
    let mm = node(&mut g, "mm", Op::MatMul, &[Some(x), Some(w)], f32t(&["batch", "3"]));
    let add = node(&mut g, "add", Op::Add, &[Some(mm), Some(b)], f32t(&["batch", "3"]));
    let y = node(&mut g, "y", Op::Relu, &[Some(add)], f32t(&["batch", "3"]));
    g.set_outputs(vec![y]);
    g
}

fn mlp_expected(x: &[f32]) -> Vec<f32> {
    let mut out = Vec::new();
    for row in x.chunks(4) {
        for j in 0..3 {
            let mut s = B[j];
            for (k, xv) in row.iter().enumerate() {
                s += xv * W[k * 3 + j];
            }
            out.push(s.max(0.0));
        }
    }
    out
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

#[test]
fn symbolic_batch_runs_at_batch_1_then_3_then_1() {
    let mut p = Predictor::new(mlp()).unwrap();
    assert_eq!(p.input_names(), ["x"]);
    assert_eq!(p.input_types()[0].to_string(), "f32[batch,4]");
    assert_eq!(p.output_names(), ["y"]);

    let x1 = vec![1.0, 2.0, -1.0, 0.5];
    let y = p.run_with(vec![Tensor::from_vec(&[1, 4], x1.clone()).unwrap()]).unwrap();
    assert_eq!(y.len(), 1);
    assert_eq!(y[0].shape(), [1, 3]);
    assert_close(&y[0].to_f32_vec(), &mlp_expected(&x1));
    // By hand: [0.5+3+2+0.5+0.1, relu(-1+0.5-1-0.375-0.2), 2-1+0+0.25+0.3].
    assert_close(&y[0].to_f32_vec(), &[6.1, 0.0, 1.55]);
    assert_eq!(p.resolved_input_shapes().unwrap(), [vec![1, 4]]);

    let x3: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
    let y = p.run_with(vec![Tensor::from_vec(&[3, 4], x3.clone()).unwrap()]).unwrap();
    assert_eq!(y[0].shape(), [3, 3]);
    assert_close(&y[0].to_f32_vec(), &mlp_expected(&x3));
    assert_eq!(p.resolved_input_shapes().unwrap(), [vec![3, 4]]);
    let types = p.resolved_value_types().unwrap();
    let g = p.graph();
    let y_outlet = g.outputs()[0];
    assert_eq!(types[&y_outlet], TypeInfo::new(DType::F32, [3, 3]));
    let x_outlet = Outlet::new(g.inputs()[0], 0);
    assert_eq!(types[&x_outlet], TypeInfo::new(DType::F32, [3, 4]));

    // Back to batch 1 through set_input/run/output.
    p.set_input_by_name("x", Tensor::from_vec(&[1, 4], x1.clone()).unwrap()).unwrap();
    p.run().unwrap();
    assert_close(&p.output(0).unwrap().to_f32_vec(), &mlp_expected(&x1));
    assert!(p.output(1).is_none());
    // Inputs stay set: running again gives the same result.
    p.run().unwrap();
    let outs = p.take_outputs();
    assert_close(&outs[0].to_f32_vec(), &mlp_expected(&x1));
    assert!(p.output(0).is_none());
    assert!(p.take_outputs().is_empty());
}

#[test]
fn unknown_dims_accept_any_size() {
    let mut g = Graph::new("u");
    let x = g.add_input("x", f32t(&["?", "2"]));
    let y = node(&mut g, "neg", Op::Neg, &[Some(x)], f32t(&["?", "2"]));
    g.set_outputs(vec![y]);
    let mut p = Predictor::new(g).unwrap();
    for n in [1usize, 5, 2] {
        let v: Vec<f32> = (0..n * 2).map(|i| i as f32).collect();
        let out = p.run_with(vec![Tensor::from_vec(&[n, 2], v.clone()).unwrap()]).unwrap();
        assert_eq!(out[0].shape(), [n, 2]);
        assert_close(&out[0].to_f32_vec(), &v.iter().map(|a| -a).collect::<Vec<_>>());
    }
}

#[test]
fn unranked_input_accepts_any_rank() {
    let mut g = Graph::new("r");
    let x = g.add_input("x", TypeInfo::unranked(DType::F32));
    let y = node(&mut g, "abs", Op::Abs, &[Some(x)], TypeInfo::unranked(DType::F32));
    g.set_outputs(vec![y]);
    let mut p = Predictor::new(g).unwrap();
    let out = p.run_with(vec![Tensor::from_vec(&[2, 1, 2], vec![-1.0f32, 2.0, -3.0, 4.0]).unwrap()]).unwrap();
    assert_eq!(out[0].shape(), [2, 1, 2]);
    assert_close(&out[0].to_f32_vec(), &[1.0, 2.0, 3.0, 4.0]);
    let out = p.run_with(vec![Tensor::scalar(-7.5f32)]).unwrap();
    assert_eq!(out[0].shape(), [] as [usize; 0]);
    assert_close(&out[0].to_f32_vec(), &[7.5]);
}

#[test]
fn outputs_may_be_inputs_constants_and_repeated_values() {
    let mut g = Graph::new("passthrough");
    let x = g.add_input("x", f32t(&["2"]));
    let c = g.add_const("c", Tensor::from_vec(&[3], vec![7i64, 8, 9]).unwrap());
    let r = node(&mut g, "r", Op::Relu, &[Some(x)], f32t(&["2"]));
    g.set_outputs(vec![x, c, r, r]);
    let mut p = Predictor::new(g).unwrap();
    assert_eq!(p.output_names(), ["x", "c", "r", "r"]);
    let outs = p.run_with(vec![Tensor::from_vec(&[2], vec![-1.5f32, 2.5]).unwrap()]).unwrap();
    assert_eq!(outs.len(), 4);
    assert_close(&outs[0].to_f32_vec(), &[-1.5, 2.5]);
    assert_eq!(outs[1].dtype(), DType::I64);
    assert_eq!(outs[1].to_i64_vec(), [7, 8, 9]);
    assert_close(&outs[2].to_f32_vec(), &[0.0, 2.5]);
    assert_eq!(outs[2], outs[3]);
    // The input is still set and unchanged.
    assert_close(&p.input(0).unwrap().to_f32_vec(), &[-1.5, 2.5]);
}

#[test]
fn node_with_two_outputs() {
    let mut g = Graph::new("split");
    let x = g.add_input("x", f32t(&["4", "2"]));
    let id = g
        .add_node(
            "split",
            Op::Split { axis: 0, num_outputs: 2 },
            &[Some(x), None],
            vec![
                ValueInfo { name: "top".into(), ty: f32t(&["2", "2"]) },
                ValueInfo { name: "bottom".into(), ty: f32t(&["2", "2"]) },
            ],
        )
        .unwrap();
    let (top, bottom) = (Outlet::new(id, 0), Outlet::new(id, 1));
    let diff = node(&mut g, "diff", Op::Sub, &[Some(bottom), Some(top)], f32t(&["2", "2"]));
    g.set_outputs(vec![top, diff]);
    let mut p = Predictor::new(g).unwrap();
    let v: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0];
    let outs = p.run_with(vec![Tensor::from_vec(&[4, 2], v).unwrap()]).unwrap();
    assert_eq!(outs[0].shape(), [2, 2]);
    assert_close(&outs[0].to_f32_vec(), &[1.0, 2.0, 3.0, 4.0]);
    assert_close(&outs[1].to_f32_vec(), &[9.0, 18.0, 27.0, 36.0]);
}

#[test]
fn unused_second_output_and_dead_nodes() {
    // Dropout's mask is never read; a node no output depends on is not scheduled.
    let mut g = Graph::new("dead");
    let x = g.add_input("x", f32t(&["3"]));
    let id = g
        .add_node(
            "drop",
            Op::Dropout,
            &[Some(x)],
            vec![
                ValueInfo { name: "d".into(), ty: f32t(&["3"]) },
                ValueInfo { name: "mask".into(), ty: TypeInfo::new(DType::Bool, [3]) },
            ],
        )
        .unwrap();
    let d = Outlet::new(id, 0);
    let unused = node(&mut g, "unused", Op::Exp, &[Some(x)], f32t(&["3"]));
    let y = node(&mut g, "y", Op::Sigmoid, &[Some(d)], f32t(&["3"]));
    g.set_outputs(vec![y]);
    let mut p = Predictor::new(g).unwrap();
    let sched = p.schedule();
    assert_eq!(sched.len(), 2);
    assert!(!sched.contains(&unused.node));
    let outs = p.run_with(vec![Tensor::from_vec(&[3], vec![0.0f32, 2.0, -2.0]).unwrap()]).unwrap();
    assert_close(&outs[0].to_f32_vec(), &[0.5, 0.880_797, 0.119_203]);
    // Step 1 holds d (12 B) and mask (3 B, never read); y overwrites d at step 2.
    assert_eq!(p.peak_live_bytes(), 15);
    let r = p.memory_report().unwrap();
    assert_eq!(r.in_place_values, 1);
    assert_eq!(r.arena_bytes, 64 + 3);
}

#[test]
fn schedule_is_topological_and_stable() {
    // Two independent branches joined by Add: the lower node id runs first among ready nodes.
    let mut g = Graph::new("branches");
    let x = g.add_input("x", f32t(&["2"]));
    let a = node(&mut g, "a", Op::Relu, &[Some(x)], f32t(&["2"]));
    let b = node(&mut g, "b", Op::Neg, &[Some(x)], f32t(&["2"]));
    let s = node(&mut g, "s", Op::Add, &[Some(b), Some(a)], f32t(&["2"]));
    g.set_outputs(vec![s]);
    let p = Predictor::new(g).unwrap();
    assert_eq!(p.schedule(), vec![a.node, b.node, s.node]);
    let p2 = Predictor::new(p.graph().clone()).unwrap();
    assert_eq!(p2.schedule(), p.schedule());
}

#[test]
fn integer_graph_with_optional_inputs() {
    // Clip with an absent min and a constant max on i64 values.
    let mut g = Graph::new("clip");
    let x = g.add_input("x", TypeInfo::new(DType::I64, sym(&["n"])));
    let hi = g.add_const("hi", Tensor::scalar(5i64));
    let y = node(&mut g, "clip", Op::Clip, &[Some(x), None, Some(hi)], TypeInfo::new(DType::I64, sym(&["n"])));
    g.set_outputs(vec![y]);
    let mut p = Predictor::new(g).unwrap();
    let outs = p.run_with(vec![Tensor::from_vec(&[4], vec![-9i64, 3, 5, 12]).unwrap()]).unwrap();
    assert_eq!(outs[0].to_i64_vec(), [-9, 3, 5, 5]);
}
