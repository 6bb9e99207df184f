//! `quantize_before_max_pool`: `QuantizeLinear(MaxPool(x))` becomes `MaxPool(QuantizeLinear(x))`
//! and the pool runs on u8 values. The swap alone is exact (bit-identical outputs); with
//! `fuse_qdq_conv` the conv before the pool then requantizes to u8 itself, within one step, on
//! as many values as its int32 bias can move across a rounding boundary.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{ConvAttrs, PoolAttrs};
use lithe_ir::{DType, Graph, Op, Tensor};
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    c_in: usize,
    c_out: usize,
    hw: [usize; 2],
    pool_kernel: usize,
    pool_stride: usize,
    pool_pad: [usize; 4],
    relu: bool,
    seed: u64,
}

fn lcg(state: &mut u64) -> f32 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*state >> 40) as f32) / (1u64 << 24) as f32
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..6,
        1usize..12,
        4usize..20,
        4usize..20,
        2usize..4,
        1usize..3,
        prop::array::uniform4(0usize..2),
        any::<(bool, u64)>(),
    )
        .prop_map(|(c_in, c_out, h, w, pool_kernel, pool_stride, pool_pad, (relu, seed))| Case {
            c_in,
            c_out,
            hw: [h, w],
            pool_kernel,
            pool_stride,
            pool_pad,
            relu,
            seed,
        })
}

/// `x -> Q -> DQ -> Conv 3x3 (-> Relu) -> MaxPool -> Q -> DQ`, the output step, and the most
/// the fused conv's int32 bias (rounded to steps of `x_scale·w_scale`) moves a value, in steps.
fn graph(case: &Case) -> (Graph, f32, f32) {
    let mut s = case.seed | 1;
    let mut rand = |lo: f32, hi: f32| lo + (hi - lo) * lcg(&mut s);
    let mut b = GraphBuilder::new("conv_pool");
    let [h, w] = case.hw;
    let x = b.input("x", DType::F32, &[1, case.c_in, h, w]);
    let xs_value = rand(0.005, 0.03);
    let xs = b.constant("xs", Tensor::scalar(xs_value));
    let xz = b.constant("xz", Tensor::scalar(rand(0.0, 255.0) as u8));
    let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[x, xs, xz]).unwrap();
    let dq = b.node(Op::DequantizeLinear { axis: 1 }, &[q, xs, xz]).unwrap();
    let wn = case.c_out * case.c_in * 9;
    let wq: Vec<i8> = (0..wn).map(|_| rand(-127.0, 127.99).floor() as i8).collect();
    let wt = b.constant("w", Tensor::from_vec(&[case.c_out, case.c_in, 3, 3], wq).unwrap());
    let ws: Vec<f32> = (0..case.c_out).map(|_| rand(0.001, 0.01)).collect();
    let ws_max = ws.iter().copied().fold(0.0f32, f32::max);
    let ws = b.constant("ws", Tensor::from_vec(&[case.c_out], ws).unwrap());
    let wdq = b.node(Op::DequantizeLinear { axis: 0 }, &[wt, ws]).unwrap();
    let bias: Vec<f32> = (0..case.c_out).map(|_| rand(-1.0, 1.0)).collect();
    let bias = b.constant("b", Tensor::from_vec(&[case.c_out], bias).unwrap());
    let attrs = ConvAttrs { pads: vec![1; 4], ..ConvAttrs::default() };
    let y = b.node(Op::Conv(attrs), &[dq, wdq, bias]).unwrap();
    let y = if case.relu { b.relu(y).unwrap() } else { y };
    let k = case.pool_kernel;
    let pool = PoolAttrs {
        kernel_shape: vec![k, k],
        strides: vec![case.pool_stride; 2],
        pads: case.pool_pad.iter().map(|&p| p.min(k - 1)).collect(),
        ..PoolAttrs::default()
    };
    let y = b.node(Op::MaxPool(pool), &[y]).unwrap();
    let step = rand(0.01, 0.05);
    let ys = b.constant("ys", Tensor::scalar(step));
    let yz = b.constant("yz", Tensor::scalar(rand(0.0, 200.0) as u8));
    let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[y, ys, yz]).unwrap();
    let y = b.node(Op::DequantizeLinear { axis: 1 }, &[q, ys, yz]).unwrap();
    b.output(y);
    (b.finish().unwrap(), step, 0.5 * xs_value * ws_max / step)
}

fn optimized(mut g: Graph, disabled: &[&str]) -> Graph {
    let mut m = PassManager::default_pipeline();
    for d in disabled {
        m.disable(d).unwrap();
    }
    m.run(&mut g).unwrap();
    g
}

fn run(graph: Graph, x: &Tensor, threads: usize) -> Vec<f32> {
    let mut p = Predictor::new(graph).unwrap();
    p.set_threads(threads);
    p.run_with(vec![x.clone()]).unwrap().remove(0).to_f32_vec()
}

fn u8_pools(g: &Graph) -> usize {
    g.node_ids()
        .into_iter()
        .filter(|&id| {
            matches!(g.node(id).op, Op::MaxPool(_))
                && g.node_inputs(id)[0].is_some_and(|x| g.value(x).ty.dtype == DType::U8)
        })
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn max_pool_on_quantized_values_matches(case in case(), threads in 1usize..3) {
        let (g, step, bias_shift) = graph(&case);
        let [h, w] = case.hw;
        let mut s = case.seed.rotate_left(9) | 1;
        let v: Vec<f32> = (0..case.c_in * h * w).map(|_| -1.0 + 3.0 * lcg(&mut s)).collect();
        let x = Tensor::from_vec(&[1, case.c_in, h, w], v).unwrap();
        let plain = optimized(g.clone(), &["quantize_before_max_pool", "fuse_qdq_conv"]);
        prop_assert_eq!(u8_pools(&plain), 0);
        let swapped = optimized(g.clone(), &["fuse_qdq_conv"]);
        prop_assert_eq!(u8_pools(&swapped), 1, "the quantization was not moved");
        let fused = optimized(g, &[]);
        prop_assert_eq!(u8_pools(&fused), 1);
        let want = run(plain, &x, 1);
        // The swap alone is exact.
        prop_assert_eq!(&run(swapped, &x, threads), &want);
        // The requantizing conv may round a boundary value one step apart: those within float
        // noise of a boundary, and those its int32 bias moves across one (about 2·shift of
        // them; twice that plus two allowed).
        let got = run(fused, &x, threads);
        let differing = want.iter().zip(&got).filter(|(a, b)| (*a - *b).abs() > 1e-6).count();
        for (i, (a, b)) in want.iter().zip(&got).enumerate() {
            prop_assert!((a - b).abs() <= step * 1.001 + 1e-6, "element {i}: {a} vs {b}");
        }
        let allowed = 2 + (want.len() as f32 * (4.0 * bias_shift + 0.01)) as usize;
        prop_assert!(differing <= allowed, "{differing} of {} differ (allowed {allowed})", want.len());
    }
}

/// A MaxPool whose f32 output has another reader keeps running in f32.
#[test]
fn pool_with_an_f32_reader_is_left_alone() {
    let mut b = GraphBuilder::new("shared_pool");
    let x = b.input("x", DType::F32, &[1, 2, 6, 6]);
    let pool = PoolAttrs { kernel_shape: vec![2, 2], strides: vec![2, 2], ..PoolAttrs::default() };
    let y = b.node(Op::MaxPool(pool), &[x]).unwrap();
    let ys = b.constant("ys", Tensor::scalar(0.02f32));
    let yz = b.constant("yz", Tensor::scalar(10u8));
    let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[y, ys, yz]).unwrap();
    let dq = b.node(Op::DequantizeLinear { axis: 1 }, &[q, ys, yz]).unwrap();
    let sum = b.add(dq, y).unwrap();
    b.output(sum);
    let g = optimized(b.finish().unwrap(), &[]);
    assert_eq!(u8_pools(&g), 0);
}
