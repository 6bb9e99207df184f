//! `quantize_through_clamp` must give the same bytes as the graph it rewrote, including for
//! values on rounding boundaries and beyond the saturation points.

mod common;

use lithe_ir::{DType, Graph, Op, Tensor, TypeInfo};
use lithe_passes::Pass;
use lithe_passes::qdq_relu::QuantizeThroughClamp;

/// `x -> Relu or Clip(lo, hi) -> QuantizeLinear(scale, zp) to u8 or s8`.
fn graph(clip: Option<(f32, f32)>, scale: f32, zp: i32, to: DType) -> Graph {
    let mut g = Graph::new("clamp_quantize");
    let x = g.add_input("x", TypeInfo::new(DType::F32, [64]));
    let c = match clip {
        None => g.add_node_inferred("relu", Op::Relu, &[Some(x)], 1).unwrap()[0],
        Some((lo, hi)) => {
            let l = g.add_const("lo", Tensor::scalar(lo));
            let h = g.add_const("hi", Tensor::scalar(hi));
            g.add_node_inferred("clip", Op::Clip, &[Some(x), Some(l), Some(h)], 1).unwrap()[0]
        }
    };
    let s = g.add_const("s", Tensor::scalar(scale));
    let z = match to {
        DType::U8 => g.add_const("z", Tensor::scalar(zp as u8)),
        _ => g.add_const("z", Tensor::scalar(zp as i8)),
    };
    let q = g.add_node_inferred("q", Op::QuantizeLinear { axis: 1, to }, &[Some(c), Some(s), Some(z)], 1).unwrap()[0];
    g.set_outputs(vec![q]);
    g
}

/// Values around every interesting level: the clamp bounds, half steps, saturation points.
fn probe(scale: f32, bounds: &[f32]) -> Tensor {
    let mut v = Vec::new();
    for &b in bounds {
        for k in [-2.0f32, -0.5, -0.25, 0.0, 0.25, 0.5, 2.0] {
            v.push(b + k * scale);
        }
    }
    v.extend([-1e6, 1e6, 0.0, -0.0, 300.0 * scale, -300.0 * scale, 127.5 * scale, 255.5 * scale]);
    v.resize(64, 0.5 * scale);
    Tensor::from_vec(&[64], v).unwrap()
}

/// (clip bounds or Relu, scale, zero point, type, whether the pass fires).
type Case = (Option<(f32, f32)>, f32, i32, DType, bool);

#[test]
fn rewritten_graphs_give_the_same_bytes() {
    let cases: Vec<Case> = vec![
        (None, 0.05, 0, DType::U8, true),
        (None, 0.05, 7, DType::U8, false),
        (Some((0.0, 6.0)), 6.0 / 255.0, 0, DType::U8, true),
        (Some((0.0, 6.0)), 0.05, 0, DType::U8, false),
        (Some((-1.0, 1.0)), 1.0 / 127.0, 0, DType::I8, false), // -1 quantizes to -127, not -128
        (Some((-2.0, 2.0)), 1.0 / 64.0, 0, DType::I8, true),
        (Some((-1.0, 6.0)), 0.02, 50, DType::U8, true),
    ];
    for (clip, scale, zp, to, fires) in cases {
        let before = graph(clip, scale, zp, to);
        let mut after = before.clone();
        let n = QuantizeThroughClamp.run(&mut after).unwrap();
        assert_eq!(n == 1, fires, "{clip:?} scale {scale} zp {zp} {to:?}");
        let bounds: Vec<f32> = clip.map_or(vec![0.0], |(lo, hi)| vec![lo, hi]);
        let x = probe(scale, &bounds);
        let (a, b) = (common::eval(&before, std::slice::from_ref(&x)), common::eval(&after, &[x]));
        assert_eq!(a[0].to_f32_vec(), b[0].to_f32_vec(), "{clip:?} scale {scale} zp {zp} {to:?}");
    }
}
