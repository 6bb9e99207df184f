//! `fuse_qdq_global_average_pool`: `QuantizeLinear(GlobalAveragePool(DequantizeLinear(X)))` on
//! u8 values becomes `QGlobalAveragePool`, which gives onnxruntime's
//! `QLinearGlobalAveragePool` bytes (its x86 formula, spelled out below) and stays within one
//! step of the float graph.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::{DType, Graph, Op, Tensor};
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use proptest::prelude::*;

fn graph(shape: &[usize], (xs, xz, ys, yz): (f32, u8, f32, u8)) -> Graph {
    let mut b = GraphBuilder::new("qdq_gap");
    let x = b.input("x", DType::F32, shape);
    let s = b.constant("xs", Tensor::scalar(xs));
    let z = b.constant("xz", Tensor::scalar(xz));
    let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[x, s, z]).unwrap();
    let d = b.node(Op::DequantizeLinear { axis: 1 }, &[q, s, z]).unwrap();
    let pooled = b.node(Op::GlobalAveragePool, &[d]).unwrap();
    let s = b.constant("ys", Tensor::scalar(ys));
    let z = b.constant("yz", Tensor::scalar(yz));
    let out = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[pooled, s, z]).unwrap();
    b.output(out);
    b.finish().unwrap()
}

fn run(g: Graph, x: Tensor) -> Vec<u8> {
    let mut p = Predictor::new(g).unwrap();
    let y = p.run_with(vec![x]).unwrap().remove(0);
    y.view_in_place::<u8>().unwrap().iter().copied().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn fused_pool_gives_onnxruntime_bytes(
        n in 1usize..3,
        c in 1usize..20,
        hw in 1usize..15,
        params in (0.005f32..0.05, any::<u8>(), 0.002f32..0.05, any::<u8>()),
        seed in any::<u64>(),
    ) {
        let (xs, xz, ys, yz) = params;
        let shape = [n, c, hw, hw];
        let count = n * c * hw * hw;
        let mut s = seed | 1;
        let x: Vec<f32> = (0..count)
            .map(|_| { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); -2.0 + 4.0 * ((s >> 40) as f32 / (1u64 << 24) as f32) })
            .collect();
        let mut fused = graph(&shape, params);
        PassManager::default_pipeline().run(&mut fused).unwrap();
        let ops: Vec<&str> = fused.node_ids().into_iter().map(|id| fused.node(id).op.name()).collect();
        prop_assert!(ops.contains(&"QGlobalAveragePool") && !ops.contains(&"GlobalAveragePool"), "{:?}", ops);
        let got = run(fused, Tensor::from_vec(&shape, x.clone()).unwrap());
        let plane = hw * hw;
        let scale = xs / (ys * plane as f32);
        let want: Vec<u8> = (0..n * c)
            .map(|p| {
                let sum: i32 = x[p * plane..(p + 1) * plane]
                    .iter()
                    .map(|&v| ((v / xs).round_ties_even() + f32::from(xz)).clamp(0.0, 255.0) as i32 - i32::from(xz))
                    .sum();
                ((sum as f32 * scale).round_ties_even() + f32::from(yz)).clamp(0.0, 255.0) as u8
            })
            .collect();
        prop_assert_eq!(&got, &want);
        let mut float = graph(&shape, params);
        let mut m = PassManager::default_pipeline();
        m.disable("fuse_qdq_global_average_pool").unwrap();
        m.run(&mut float).unwrap();
        let reference = run(float, Tensor::from_vec(&shape, x).unwrap());
        for (i, (&g, &r)) in got.iter().zip(&reference).enumerate() {
            prop_assert!(g.abs_diff(r) <= 1, "plane {}: {} vs {}", i, g, r);
        }
    }
}
