//! The straight-through estimator of a QuantizeLinear -> DequantizeLinear pair, as the
//! training tape computes it: the identity inside the representable range, 0 outside; the
//! forward pass rounds.

use lithe_ir::{DType, Graph, Op, Shape, Tensor, TypeInfo};
use lithe_train::{Mode, Tape};
use ndarray::{ArrayD, IxDyn};

/// `DequantizeLinear(QuantizeLinear(x, scale, zp), scale, zp)` on an input of `shape`.
fn pair(shape: &[usize], scale: Tensor, zero_point: Option<Tensor>, axis: i64, to: DType) -> Graph {
    let mut g = Graph::new("pair");
    let x = g.add_input("x", TypeInfo::new(DType::F32, Shape::known(shape)));
    let s = g.add_const("scale", scale);
    let z = zero_point.map(|z| g.add_const("zero_point", z));
    let q = g.add_node_inferred("q", Op::QuantizeLinear { axis, to }, &[Some(x), Some(s), z], 1).unwrap()[0];
    let dq = g.add_node_inferred("dq", Op::DequantizeLinear { axis }, &[Some(q), Some(s), z], 1).unwrap()[0];
    g.set_outputs(vec![dq]);
    g
}

/// Forward values and the gradient of `Σ y·r` with respect to `x`.
fn run(g: &Graph, x: Vec<f32>, shape: &[usize], r: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
    let tape = Tape::new(g).unwrap();
    let fwd = tape.forward(vec![Tensor::from_vec(shape, x).unwrap()], Mode::Train).unwrap();
    let out = g.outputs()[0];
    let y = fwd.f32(out).unwrap().iter().copied().collect();
    let xo = lithe_ir::Outlet::new(g.inputs()[0], 0);
    let seed = ArrayD::from_shape_vec(IxDyn(shape), r).unwrap();
    let grads = tape.backward(&fwd, vec![(out, seed)], &[xo]).unwrap();
    (y, grads.get(xo).unwrap().iter().copied().collect())
}

#[test]
fn u8_pair_passes_the_gradient_inside_the_range_only() {
    // scale 0.1, zero point 128: representable [-12.8, 12.7].
    let g = pair(&[6], Tensor::scalar(0.1f32), Some(Tensor::scalar(128u8)), 1, DType::U8);
    let x = vec![0.26, -3.0, 12.7, 12.8, -12.8, -13.0];
    let r = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let (y, gx) = run(&g, x, &[6], r);
    let want_y = [0.3, -3.0, 12.7, 12.7, -12.8, -12.8];
    for (a, b) in y.iter().zip(want_y) {
        assert!((a - b).abs() < 1e-5, "{y:?}");
    }
    assert_eq!(gx, vec![1.0, 2.0, 3.0, 0.0, 5.0, 0.0]);
}

#[test]
fn zero_point_zero_stops_negative_gradients() {
    let g = pair(&[4], Tensor::scalar(0.5f32), Some(Tensor::scalar(0u8)), 1, DType::U8);
    let (y, gx) = run(&g, vec![-1.0, 0.0, 10.0, 200.0], &[4], vec![1.0; 4]);
    assert_eq!(y, vec![0.0, 0.0, 10.0, 127.5]);
    assert_eq!(gx, vec![0.0, 1.0, 1.0, 0.0]);
}

#[test]
fn per_channel_s8_weights_use_each_channels_range() {
    // Channel 0: scale 0.5, range [-64, 63.5]; channel 1: scale 0.01, range [-1.28, 1.27].
    let scale = Tensor::from_vec(&[2], vec![0.5f32, 0.01]).unwrap();
    let g = pair(&[2, 3], scale, None, 0, DType::I8);
    let x = vec![1.2, 70.0, -64.0, 0.5, 1.3, -1.28];
    let (y, gx) = run(&g, x, &[2, 3], vec![1.0, -1.0, 2.0, 0.5, 7.0, -3.0]);
    let want_y = [1.0, 63.5, -64.0, 0.5, 1.27, -1.28];
    for (a, b) in y.iter().zip(want_y) {
        assert!((a - b).abs() < 1e-5, "{y:?}");
    }
    assert_eq!(gx, vec![1.0, 0.0, 2.0, 0.5, 0.0, -3.0]);
}
