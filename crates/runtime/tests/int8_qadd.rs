//! `fuse_qdq_add`: `QuantizeLinear(DequantizeLinear(A) + DequantizeLinear(B))` on u8 values
//! becomes `QAdd`, which gives onnxruntime's `QLinearAdd` bytes (its x86 formula, spelled out
//! below independently of the kernel) and stays within one step of the float graph.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::{DType, Graph, Op, Tensor};
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Params {
    s: [f32; 3],
    z: [u8; 3],
}

/// `x, y -> Q -> DQ` each, added, then `Q` (and `DQ` when `dequantize_out`).
fn graph(shape: &[usize], p: &Params, dequantize_out: bool) -> Graph {
    let mut b = GraphBuilder::new("qdq_add");
    let x = b.input("x", DType::F32, shape);
    let y = b.input("y", DType::F32, shape);
    let mut deq = Vec::new();
    for (i, v) in [x, y].into_iter().enumerate() {
        let s = b.constant(format!("s{i}"), Tensor::scalar(p.s[i]));
        let z = b.constant(format!("z{i}"), Tensor::scalar(p.z[i]));
        let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[v, s, z]).unwrap();
        deq.push(b.node(Op::DequantizeLinear { axis: 1 }, &[q, s, z]).unwrap());
    }
    let sum = b.add(deq[0], deq[1]).unwrap();
    let s = b.constant("sc", Tensor::scalar(p.s[2]));
    let z = b.constant("zc", Tensor::scalar(p.z[2]));
    let mut out = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[sum, s, z]).unwrap();
    if dequantize_out {
        out = b.node(Op::DequantizeLinear { axis: 1 }, &[out, s, z]).unwrap();
    }
    b.output(out);
    b.finish().unwrap()
}

fn quantize(x: f32, s: f32, z: u8) -> u8 {
    ((x / s).round_ties_even() + f32::from(z)).clamp(0.0, 255.0) as u8
}

/// onnxruntime's x86 `QLinearAdd`, one element.
fn onnxruntime_qadd(a: u8, b: u8, p: &Params) -> u8 {
    let ra = p.s[0] / p.s[2];
    let rb = p.s[1] / p.s[2];
    let k = p.z[2] as f32 - (ra * p.z[0] as f32 + rb * p.z[1] as f32);
    let v = (b as f32).mul_add(rb, (a as f32).mul_add(ra, k));
    v.round_ties_even().clamp(0.0, 255.0) as u8
}

fn op_count(g: &Graph, name: &str) -> usize {
    g.node_ids().into_iter().filter(|&id| g.node(id).op.name() == name).count()
}

fn run(g: Graph, inputs: Vec<Tensor>, threads: usize) -> Tensor {
    let mut p = Predictor::new(g).unwrap();
    p.set_threads(threads);
    p.run_with(inputs).unwrap().remove(0)
}

fn params() -> impl Strategy<Value = Params> {
    (prop::array::uniform3(0.002f32..0.1), prop::array::uniform3(any::<u8>())).prop_map(|(s, z)| Params { s, z })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fused_add_gives_onnxruntime_bytes(
        p in params(),
        dims in prop::collection::vec(1usize..9, 1..5),
        seed in any::<u64>(),
        threads in 1usize..3,
    ) {
        let n: usize = dims.iter().product();
        let mut s = seed | 1;
        let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (s >> 40) as f32 / (1u64 << 24) as f32 };
        let x: Vec<f32> = (0..n).map(|_| -3.0 + 6.0 * next()).collect();
        let y: Vec<f32> = (0..n).map(|_| -3.0 + 6.0 * next()).collect();
        let inputs = vec![Tensor::from_vec(&dims, x.clone()).unwrap(), Tensor::from_vec(&dims, y.clone()).unwrap()];

        let mut fused = graph(&dims, &p, false);
        PassManager::default_pipeline().run(&mut fused).unwrap();
        prop_assert_eq!(op_count(&fused, "QAdd"), 1);
        prop_assert_eq!(op_count(&fused, "Add"), 0);
        let got = run(fused, inputs.clone(), threads);
        let got: Vec<u8> = got.view_in_place::<u8>().unwrap().iter().copied().collect();
        let want: Vec<u8> = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| onnxruntime_qadd(quantize(a, p.s[0], p.z[0]), quantize(b, p.s[1], p.z[1]), &p))
            .collect();
        prop_assert_eq!(&got, &want);

        // Within one step of the float graph (the Add between dequantize and quantize).
        let mut float = graph(&dims, &p, false);
        let mut m = PassManager::default_pipeline();
        m.disable("fuse_qdq_add").unwrap();
        m.run(&mut float).unwrap();
        let reference = run(float, inputs, 1);
        for (i, (&g, &r)) in got.iter().zip(reference.view_in_place::<u8>().unwrap().iter()).enumerate() {
            prop_assert!(g.abs_diff(r) <= 1, "element {}: {} vs {}", i, g, r);
        }
    }
}

/// An add whose sum has an f32 reader, or whose operands differ in shape, stays as it is.
#[test]
fn other_adds_are_left_alone() {
    let p = Params { s: [0.02, 0.03, 0.04], z: [128, 10, 0] };
    // The sum read in f32 (the output is dequantized after the Q, but the Add also feeds it).
    let mut g = graph(&[2, 3], &p, true);
    PassManager::default_pipeline().run(&mut g).unwrap();
    assert_eq!(op_count(&g, "QAdd"), 1, "a dequantized output keeps the fusion");

    let mut b = GraphBuilder::new("f32_reader");
    let x = b.input("x", DType::F32, &[4]);
    let s = b.constant("s", Tensor::scalar(0.02f32));
    let z = b.constant("z", Tensor::scalar(7u8));
    let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[x, s, z]).unwrap();
    let d = b.node(Op::DequantizeLinear { axis: 1 }, &[q, s, z]).unwrap();
    let sum = b.add(d, d).unwrap();
    let q2 = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[sum, s, z]).unwrap();
    b.output(q2);
    b.output(sum);
    let mut g = b.finish().unwrap();
    PassManager::default_pipeline().run(&mut g).unwrap();
    assert_eq!(op_count(&g, "QAdd"), 0);

    let mut b = GraphBuilder::new("broadcast");
    let x = b.input("x", DType::F32, &[2, 4]);
    let y = b.input("y", DType::F32, &[1, 4]);
    let s = b.constant("s", Tensor::scalar(0.02f32));
    let z = b.constant("z", Tensor::scalar(7u8));
    let mut deq = Vec::new();
    for v in [x, y] {
        let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[v, s, z]).unwrap();
        deq.push(b.node(Op::DequantizeLinear { axis: 1 }, &[q, s, z]).unwrap());
    }
    let sum = b.add(deq[0], deq[1]).unwrap();
    let q2 = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[sum, s, z]).unwrap();
    b.output(q2);
    let mut g = b.finish().unwrap();
    PassManager::default_pipeline().run(&mut g).unwrap();
    assert_eq!(op_count(&g, "QAdd"), 0);
}
