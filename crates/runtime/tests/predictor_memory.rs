//! The memory plan of the predictor: intermediate values share one arena, outputs of
//! elementwise and view ops reuse their dying input, shape computations are resolved before
//! the run, and data-dependent shapes stay outside the arena.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::{DType, Dim, Graph, Op, Outlet, Shape, Tensor, TypeInfo, ValueInfo};
use lithe_runtime::{ARENA_ALIGN, MemoryReport, Predictor, RuntimeError, Storage, plan_memory};

fn f32_batch(n: usize) -> TypeInfo {
    TypeInfo::new(DType::F32, Shape(vec![Dim::Sym("batch".into()), Dim::Known(n)]))
}

fn node(g: &mut Graph, name: &str, op: Op, inputs: &[Option<Outlet>], out: TypeInfo) -> Outlet {
    let id = g.add_node(name, op, inputs, vec![ValueInfo { name: name.to_string(), ty: out }]).unwrap();
    Outlet::new(id, 0)
}

/// Every pair of arena values live at the same step either shares memory by an in-place
/// chain or does not overlap.
fn assert_no_live_overlap(r: &MemoryReport) {
    let root = |mut i: usize| {
        while let Storage::Arena { in_place_of: Some(j), .. } = r.values[i].storage {
            i = j;
        }
        i
    };
    for (i, a) in r.values.iter().enumerate() {
        let Storage::Arena { offset: oa, .. } = a.storage else { continue };
        assert_eq!(oa % ARENA_ALIGN, 0);
        assert!(oa + a.bytes <= r.arena_bytes, "{} ends past the arena", a.name);
        for (j, b) in r.values.iter().enumerate().skip(i + 1) {
            let Storage::Arena { offset: ob, .. } = b.storage else { continue };
            let live_together = a.first_step <= b.last_step && b.first_step <= a.last_step;
            if !live_together || a.bytes == 0 || b.bytes == 0 || root(i) == root(j) {
                continue;
            }
            assert!(oa + a.bytes <= ob || ob + b.bytes <= oa, "{} and {} overlap while both are live", a.name, b.name);
        }
    }
}

#[test]
fn unary_chain_runs_in_one_buffer() {
    const N: usize = 1024;
    let mut g = Graph::new("chain");
    let mut cur = g.add_input("x", f32_batch(N));
    let ops = [Op::Neg, Op::Relu, Op::Neg, Op::Abs, Op::Neg, Op::Neg];
    for (i, op) in ops.iter().cloned().enumerate() {
        cur = node(&mut g, &format!("n{i}"), op, &[Some(cur)], f32_batch(N));
    }
    g.set_outputs(vec![cur]);
    let mut p = Predictor::new(g).unwrap();
    assert!(p.memory_report().is_none());
    assert_eq!(p.peak_live_bytes(), 0);

    let x: Vec<f32> = (0..N).map(|i| i as f32 - 512.0).collect();
    let out = p.run_with(vec![Tensor::from_vec(&[1, N], x.clone()).unwrap()]).unwrap();
    // -x, relu(-x), -relu(-x), relu(-x), -relu(-x), relu(-x).
    let want: Vec<f32> = x.iter().map(|v| (-v).max(0.0)).collect();
    assert_eq!(out[0].to_f32_vec(), want);

    // n0 reads the graph input (not overwritten); every later node overwrites its input.
    let one = N * 4;
    let r = p.memory_report().unwrap();
    assert_eq!(r.sum_intermediate_bytes, ops.len() * one);
    assert_eq!(r.arena_bytes, one);
    assert_eq!(r.peak_live_bytes, one);
    assert_eq!(r.in_place_values, ops.len() - 1);
    assert_eq!(r.values[0].storage, Storage::Arena { offset: 0, in_place_of: None });
    for (i, v) in r.values.iter().enumerate().skip(1) {
        assert_eq!(v.storage, Storage::Arena { offset: 0, in_place_of: Some(i - 1) });
        assert_eq!((v.first_step, v.last_step), (i, if i + 1 == ops.len() { ops.len() } else { i + 1 }));
    }
    assert_eq!(p.peak_live_bytes(), one);
    assert_eq!(p.arena_capacity(), one);

    // Batch 3 re-plans a 3x larger arena; going back to batch 1 keeps the grown arena.
    let x3: Vec<f32> = (0..3 * N).map(|i| (i % 7) as f32 - 3.0).collect();
    let out = p.run_with(vec![Tensor::from_vec(&[3, N], x3.clone()).unwrap()]).unwrap();
    assert_eq!(out[0].to_f32_vec(), x3.iter().map(|v| (-v).max(0.0)).collect::<Vec<_>>());
    assert_eq!(p.memory_report().unwrap().arena_bytes, 3 * one);
    assert_eq!(p.peak_live_bytes(), 3 * one);
    assert_eq!(p.arena_capacity(), 3 * one);
    let out = p.run_with(vec![Tensor::from_vec(&[1, N], x.clone()).unwrap()]).unwrap();
    assert_eq!(out[0].to_f32_vec(), want);
    assert_eq!(p.memory_report().unwrap().arena_bytes, one);
    assert_eq!(p.arena_capacity(), 3 * one);
}

#[test]
fn diamond_reuses_dying_inputs() {
    // a = relu(x); b = neg(a); c = exp(a); d = b + c.
    let mut g = Graph::new("diamond");
    let x = g.add_input("x", f32_batch(256));
    let a = node(&mut g, "a", Op::Relu, &[Some(x)], f32_batch(256));
    let b = node(&mut g, "b", Op::Neg, &[Some(a)], f32_batch(256));
    let c = node(&mut g, "c", Op::Exp, &[Some(a)], f32_batch(256));
    let d = node(&mut g, "d", Op::Add, &[Some(b), Some(c)], f32_batch(256));
    g.set_outputs(vec![d]);
    let mut p = Predictor::new(g).unwrap();
    let x: Vec<f32> = (0..256).map(|i| (i as f32 - 128.0) / 64.0).collect();
    let out = p.run_with(vec![Tensor::from_vec(&[1, 256], x.clone()).unwrap()]).unwrap();
    for (got, xv) in out[0].to_f32_vec().iter().zip(&x) {
        let a = xv.max(0.0);
        assert!((got - (a.exp() - a)).abs() < 1e-5);
    }
    // b cannot overwrite a (c still reads it), c can; d overwrites b. Two 1 KiB buffers.
    let r = p.memory_report().unwrap();
    let storage: Vec<&Storage> = r.values.iter().map(|v| &v.storage).collect();
    assert_eq!(
        storage,
        [
            &Storage::Arena { offset: 0, in_place_of: None },
            &Storage::Arena { offset: 1024, in_place_of: None },
            &Storage::Arena { offset: 0, in_place_of: Some(0) },
            &Storage::Arena { offset: 1024, in_place_of: Some(1) },
        ]
    );
    assert_eq!((r.arena_bytes, r.sum_intermediate_bytes, r.peak_live_bytes), (2048, 4096, 2048));
    assert_eq!(p.peak_live_bytes(), 2 * 1024);
    assert_no_live_overlap(r);
}

#[test]
fn broadcasting_and_live_inputs_are_not_overwritten() {
    // s = x + row (row broadcasts: s may take x's memory only if x dies, which it does not);
    // y = s * x; both read x, a graph input, which is never overwritten.
    let mut g = Graph::new("bcast");
    let x = g.add_input("x", TypeInfo::new(DType::F32, [2, 3]));
    let row = g.add_input("row", TypeInfo::new(DType::F32, [3]));
    let r1 = node(&mut g, "r1", Op::Relu, &[Some(row)], TypeInfo::new(DType::F32, [3]));
    let s = node(&mut g, "s", Op::Add, &[Some(x), Some(r1)], TypeInfo::new(DType::F32, [2, 3]));
    let y = node(&mut g, "y", Op::Mul, &[Some(s), Some(r1)], TypeInfo::new(DType::F32, [2, 3]));
    g.set_outputs(vec![y, r1]);
    let mut p = Predictor::new(g).unwrap();
    let out = p
        .run_with(vec![
            Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
            Tensor::from_vec(&[3], vec![1.0f32, -1.0, 2.0]).unwrap(),
        ])
        .unwrap();
    assert_eq!(out[0].to_f32_vec(), vec![2.0, 0.0, 10.0, 5.0, 0.0, 16.0]);
    assert_eq!(out[1].to_f32_vec(), vec![1.0, 0.0, 2.0]);
    let r = p.memory_report().unwrap();
    // y overwrites s (same shape, dies at y); r1 is a graph output and is never overwritten.
    assert_eq!(r.values[2].storage, Storage::Arena { offset: 0, in_place_of: Some(1) });
    assert_eq!(r.in_place_values, 1);
    assert_eq!(r.values[0].last_step, 3);
    assert_no_live_overlap(r);
}

#[test]
fn shape_computations_are_resolved_and_reshape_is_planned() {
    // y = relu(reshape(x, concat(shape(x)[0:1], [-1]))) for x: f32[batch, 2, 3].
    let mut b = GraphBuilder::new("shape_chain");
    let x = b.input("x", DType::F32, &[Dim::Sym("batch".into()), Dim::Known(2), Dim::Known(3)]);
    let s = b.node(Op::Shape { start: 0, end: Some(1) }, &[x]).unwrap();
    let minus_one = b.constant("minus_one", Tensor::from_vec(&[1], vec![-1i64]).unwrap());
    let target = b.node(Op::Concat { axis: 0 }, &[s, minus_one]).unwrap();
    let r = b.node(Op::Reshape { allowzero: false }, &[x, target]).unwrap();
    let y = b.relu(r).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    assert!(g.value(r).ty.shape.as_ref().is_some_and(|s| s.dims()[1] == Dim::Unknown || s.as_known().is_none()));

    let mut p = Predictor::new(g).unwrap();
    let x: Vec<f32> = (0..12).map(|i| i as f32 - 6.0).collect();
    let out = p.run_with(vec![Tensor::from_vec(&[2, 2, 3], x.clone()).unwrap()]).unwrap();
    assert_eq!(out[0].shape(), &[2, 6]);
    assert_eq!(out[0].to_f32_vec(), x.iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
    let r = p.memory_report().unwrap();
    let storage: Vec<&Storage> = r.values.iter().map(|v| &v.storage).collect();
    assert_eq!(
        storage,
        [
            &Storage::Resolved,
            &Storage::Resolved,
            &Storage::Arena { offset: 0, in_place_of: None },
            &Storage::Arena { offset: 0, in_place_of: Some(2) },
        ]
    );
    assert_eq!(r.values[2].ty.shape, Some(Shape::known(&[2, 6])));
    assert_eq!((r.arena_bytes, r.sum_intermediate_bytes), (48, 96));
}

#[test]
fn data_dependent_shapes_stay_outside_the_arena() {
    // y = relu(reshape(x, s)) + 0 where the target shape s is a graph input (data).
    let mut g = Graph::new("dynamic");
    let x = g.add_input("x", TypeInfo::new(DType::F32, [6]));
    let s = g.add_input("s", TypeInfo::new(DType::I64, [2]));
    let unknown = TypeInfo::new(DType::F32, Shape(vec![Dim::Unknown, Dim::Unknown]));
    let r = node(&mut g, "r", Op::Reshape { allowzero: false }, &[Some(x), Some(s)], unknown.clone());
    let y = node(&mut g, "y", Op::Relu, &[Some(r)], unknown);
    let z = node(&mut g, "z", Op::Neg, &[Some(x)], TypeInfo::new(DType::F32, [6]));
    g.set_outputs(vec![y, z]);
    let mut p = Predictor::new(g).unwrap();
    let x: Vec<f32> = vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0];
    for shape in [[2i64, 3], [3, 2]] {
        let out = p
            .run_with(vec![Tensor::from_vec(&[6], x.clone()).unwrap(), Tensor::from_vec(&[2], shape.to_vec()).unwrap()])
            .unwrap();
        assert_eq!(out[0].shape(), &[shape[0] as usize, shape[1] as usize]);
        assert_eq!(out[0].to_f32_vec(), vec![0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
        assert_eq!(out[1].to_f32_vec(), vec![1.0, -2.0, 3.0, -4.0, 5.0, -6.0]);
    }
    let r = p.memory_report().unwrap();
    let storage: Vec<&Storage> = r.values.iter().map(|v| &v.storage).collect();
    assert_eq!(storage, [&Storage::Dynamic, &Storage::Dynamic, &Storage::Arena { offset: 0, in_place_of: None }]);
    assert_eq!((r.arena_bytes, r.sum_intermediate_bytes), (24, 24));
}

#[test]
fn integer_and_bool_values_live_in_the_arena() {
    // m = (a == b) (bool); c = cast(m) to i64; d = c + a (i64); e = d * d.
    let mut g = Graph::new("ints");
    let a = g.add_input("a", TypeInfo::new(DType::I64, [5]));
    let b = g.add_input("b", TypeInfo::new(DType::I64, [5]));
    let m = node(&mut g, "m", Op::Equal, &[Some(a), Some(b)], TypeInfo::new(DType::Bool, [5]));
    let c = node(&mut g, "c", Op::Cast { to: DType::I64 }, &[Some(m)], TypeInfo::new(DType::I64, [5]));
    let d = node(&mut g, "d", Op::Add, &[Some(c), Some(a)], TypeInfo::new(DType::I64, [5]));
    let e = node(&mut g, "e", Op::Mul, &[Some(d), Some(d)], TypeInfo::new(DType::I64, [5]));
    g.set_outputs(vec![e, m]);
    let mut p = Predictor::new(g).unwrap();
    let av = vec![3i64, -1 << 20, 7, 0, 9];
    let bv = vec![3i64, 5, 7, 1, -9];
    let out =
        p.run_with(vec![Tensor::from_vec(&[5], av.clone()).unwrap(), Tensor::from_vec(&[5], bv).unwrap()]).unwrap();
    let want: Vec<i64> = [4i64, -1 << 20, 8, 0, 9].iter().map(|v| v * v).collect();
    assert_eq!(out[0].to_i64_vec(), want);
    assert_eq!(out[0].dtype(), DType::I64);
    assert_eq!(out[1], Tensor::from_vec(&[5], vec![true, false, true, false, false]).unwrap());
    let r = p.memory_report().unwrap();
    assert_eq!(r.values.iter().map(|v| v.bytes).collect::<Vec<_>>(), vec![5, 40, 40, 40]);
    // m is a graph output (kept); d overwrites c, e overwrites d: one 40 B buffer at 0, m after it.
    let storage: Vec<&Storage> = r.values.iter().map(|v| &v.storage).collect();
    assert_eq!(
        storage,
        [
            &Storage::Arena { offset: 64, in_place_of: None },
            &Storage::Arena { offset: 0, in_place_of: None },
            &Storage::Arena { offset: 0, in_place_of: Some(1) },
            &Storage::Arena { offset: 0, in_place_of: Some(2) },
        ]
    );
    assert_eq!(r.arena_bytes, 69);
    assert_no_live_overlap(r);
}

#[test]
fn plan_memory_needs_known_input_shapes_and_matches_the_predictor() {
    let mut g = Graph::new("known");
    let x = g.add_input("x", TypeInfo::new(DType::F32, [4, 16]));
    let a = node(&mut g, "a", Op::Sigmoid, &[Some(x)], TypeInfo::new(DType::F32, [4, 16]));
    let b = node(&mut g, "b", Op::Tanh, &[Some(x)], TypeInfo::new(DType::F32, [4, 16]));
    let c = node(&mut g, "c", Op::Mul, &[Some(a), Some(b)], TypeInfo::new(DType::F32, [4, 16]));
    g.set_outputs(vec![c]);
    let report = plan_memory(&g).unwrap();
    assert_eq!((report.arena_bytes, report.sum_intermediate_bytes, report.in_place_values), (512, 768, 1));
    let mut p = Predictor::new(g).unwrap();
    p.run_with(vec![Tensor::zeros(DType::F32, &[4, 16])]).unwrap();
    assert_eq!(p.memory_report(), Some(&report));

    let mut g = Graph::new("symbolic");
    let x = g.add_input("x", f32_batch(8));
    let y = node(&mut g, "y", Op::Relu, &[Some(x)], f32_batch(8));
    g.set_outputs(vec![y]);
    let e = plan_memory(&g).unwrap_err();
    assert!(matches!(&e, RuntimeError::UnknownInputShape { name, .. } if name == "x"), "{e:?}");
    assert!(e.to_string().contains("f32[batch,8]"), "{e}");
}
