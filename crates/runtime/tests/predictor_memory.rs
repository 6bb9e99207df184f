//! Intermediate values are dropped after their last reader.

use lithe_ir::{DType, Dim, Graph, Op, Outlet, Shape, Tensor, TypeInfo, ValueInfo};
use lithe_runtime::Predictor;

fn f32_batch(n: usize) -> TypeInfo {
    TypeInfo::new(DType::F32, Shape(vec![Dim::Sym("batch".into()), Dim::Known(n)]))
}

fn node(g: &mut Graph, name: &str, op: Op, inputs: &[Option<Outlet>], out: TypeInfo) -> Outlet {
    let id = g.add_node(name, op, inputs, vec![ValueInfo { name: name.to_string(), ty: out }]).unwrap();
    Outlet::new(id, 0)
}

#[test]
fn chain_keeps_at_most_two_intermediates() {
    const N: usize = 1024;
    const STEPS: usize = 6;
    let mut g = Graph::new("chain");
    let mut cur = g.add_input("x", f32_batch(N));
    let ops = [Op::Neg, Op::Relu, Op::Neg, Op::Abs, Op::Neg, Op::Neg];
    assert_eq!(ops.len(), STEPS);
    for (i, op) in ops.into_iter().enumerate() {
        cur = node(&mut g, &format!("n{i}"), op, &[Some(cur)], f32_batch(N));
    }
    g.set_outputs(vec![cur]);
    let mut p = Predictor::new(g).unwrap();

    let x: Vec<f32> = (0..N).map(|i| i as f32 - 512.0).collect();
    let out = p.run_with(vec![Tensor::from_vec(&[1, N], x.clone()).unwrap()]).unwrap();
    // -x, relu(-x), -relu(-x), relu(-x), -relu(-x), relu(-x).
    let want: Vec<f32> = x.iter().map(|v| (-v).max(0.0)).collect();
    assert_eq!(out[0].to_f32_vec(), want);

    let one = N * 4;
    let sum_of_intermediates = STEPS * one;
    assert_eq!(p.peak_live_bytes(), 2 * one);
    assert!(p.peak_live_bytes() < sum_of_intermediates);

    // With batch 3 every value is 3x larger, and so is the peak.
    let x3 = Tensor::zeros(DType::F32, &[3, N]);
    p.run_with(vec![x3]).unwrap();
    assert_eq!(p.peak_live_bytes(), 2 * 3 * one);
}

#[test]
fn diamond_frees_after_the_last_reader() {
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
    // At most three 1 KiB values at once (a, b, c while c runs; b, c, d while d runs).
    assert_eq!(p.peak_live_bytes(), 3 * 1024);
    assert!(p.peak_live_bytes() < 4 * 1024);
}
