//! Every backward rule against central finite differences (see `common::check_gradients`):
//! the gradient of `Σ y·r` for a random `r` with respect to every graph input and every
//! trainable constant. Inputs stay clear of kinks (ReLU at 0, Clip bounds, HardSwish ±3) and
//! of ties (max pooling) by more than the difference step.

mod common;

use common::{Tol, away_from, check_gradients, distinct, uniform};
use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{
    AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, CoordTransform, FcAttrs, GemmAttrs, NearestMode, PadMode, PoolAttrs,
    ReduceAttrs, ResizeAttrs, SoftmaxAttrs,
};
use lithe_ir::{DType, Graph, Op, Outlet, Tensor};
use lithe_train::rng::Rng;
use lithe_train::{Mode, Tape, TrainError};
use proptest::prelude::*;

fn one_input(shape: &[usize]) -> (GraphBuilder, Outlet) {
    let mut b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, shape);
    (b, x)
}

fn finish(mut b: GraphBuilder, y: Outlet) -> Graph {
    b.output(y);
    b.finish().unwrap()
}

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
}

/// The node producing `y` run by the reference kernel on the values of the tape's forward pass.
fn reference_output(g: &Graph, inputs: &[Tensor], y: Outlet) -> (ndarray::ArrayD<f32>, Vec<f32>) {
    let tape = Tape::new(g).unwrap();
    let fwd = tape.forward(inputs.to_vec(), Mode::Train).unwrap();
    let ours = fwd.f32(y).unwrap().clone();
    let ins: Vec<Option<Tensor>> =
        g.node_inputs(y.node).iter().map(|o| o.map(|o| fwd.value(o).unwrap().clone())).collect();
    let refs: Vec<Option<&Tensor>> = ins.iter().map(Option::as_ref).collect();
    let want = lithe_kernels::reference::eval(&g.node(y.node).op, &refs, g.node(y.node).outputs.len()).unwrap();
    (ours, want[y.slot].to_f32_vec())
}

fn ok(r: Result<usize, String>) -> Result<(), TestCaseError> {
    match r {
        Ok(n) => {
            prop_assert!(n > 0, "nothing checked");
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(e)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Conv: plain, grouped and depthwise; kernel 1..3, stride 1..2, pads, dilation, bias.
    #[test]
    fn conv(seed in any::<u64>(), n in 1usize..3, cg in 1usize..3, groups in 1usize..4, mg in 1usize..3,
            k in 1usize..4, stride in 1usize..3, pad in 0usize..2, dil in 1usize..3, bias in any::<bool>(),
            hw in 5usize..8) {
        let mut rng = Rng::new(seed);
        let (c, m) = (cg * groups, mg * groups);
        let (mut b, x) = one_input(&[n, c, hw, hw + 1]);
        let w = uniform(&[m, cg, k, k], &mut rng, -1.0, 1.0);
        let bt = bias.then(|| uniform(&[m], &mut rng, -1.0, 1.0));
        let attrs = ConvAttrs { strides: vec![stride; 2], dilations: vec![dil; 2], pads: vec![pad; 4], group: groups, ..Default::default() };
        let y = b.conv2d(x, w, bt, attrs).unwrap();
        let g = finish(b, y);
        let xin = uniform(&[n, c, hw, hw + 1], &mut rng, -1.0, 1.0);
        // The GEMM forward equals the reference kernel.
        let tape = Tape::new(&g).unwrap();
        let fwd = tape.forward(vec![xin.clone()], Mode::Train).unwrap();
        let ours = fwd.f32(g.outputs()[0]).unwrap().clone();
        let node = g.outputs()[0].node;
        let ins: Vec<Option<Tensor>> = g.node_inputs(node).iter().map(|o| o.map(|o| fwd.value(o).unwrap().clone())).collect();
        let refs: Vec<Option<&Tensor>> = ins.iter().map(Option::as_ref).collect();
        let want = lithe_kernels::reference::eval(&g.node(node).op, &refs, 1).unwrap().remove(0);
        let diff = ours.iter().zip(want.to_f32_vec()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        prop_assert!(diff < 1e-4, "forward differs from the reference by {diff}");
        ok(check_gradients(&g, &[xin], Mode::Train, Tol::default(), seed))?;
    }

    /// Gemm with transposes, alpha, beta and a broadcast C.
    #[test]
    fn gemm(seed in any::<u64>(), m in 1usize..5, k in 1usize..6, n in 1usize..5, ta in any::<bool>(), tb in any::<bool>(),
            c_form in 0usize..5, alpha in prop::sample::select(vec![1.0f32, 0.5, -2.0]), beta in prop::sample::select(vec![1.0f32, 0.25])) {
        let mut rng = Rng::new(seed);
        let a_shape = if ta { [k, m] } else { [m, k] };
        let (mut b, a) = one_input(&a_shape);
        let bw = b.constant("B", uniform(&if tb { [n, k] } else { [k, n] }, &mut rng, -1.0, 1.0));
        let c_shape: Option<Vec<usize>> = match c_form { 0 => None, 1 => Some(vec![n]), 2 => Some(vec![1, n]), 3 => Some(vec![m, 1]), _ => Some(vec![m, n]) };
        let c = c_shape.map(|s| b.constant("C", uniform(&s, &mut rng, -1.0, 1.0)));
        let y = b.gemm(a, bw, c, GemmAttrs { alpha, beta, trans_a: ta, trans_b: tb }).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&a_shape, &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;
    }

    /// MatMul with a 2-D right operand and batched left operand; FullyConnected with bias.
    #[test]
    fn matmul_and_fully_connected(seed in any::<u64>(), lead in 1usize..3, m in 1usize..4, k in 1usize..5, n in 1usize..4) {
        let mut rng = Rng::new(seed);
        let (mut b, a) = one_input(&[lead, m, k]);
        let w = b.constant("W", uniform(&[k, n], &mut rng, -1.0, 1.0));
        let y = b.matmul(a, w).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&[lead, m, k], &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;

        let (mut b, a) = one_input(&[m, k]);
        let w = b.constant("W", uniform(&[k, n], &mut rng, -1.0, 1.0));
        let bias = b.constant("bias", uniform(&[n], &mut rng, -1.0, 1.0));
        let y = b.node(Op::FullyConnected(FcAttrs::default()), &[a, w, bias]).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&[m, k], &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;
    }

    /// Batch normalization with batch statistics (train) and running statistics (eval).
    #[test]
    fn batch_norm(seed in any::<u64>(), n in 2usize..4, c in 1usize..4, hw in 1usize..4, train in any::<bool>()) {
        let mut rng = Rng::new(seed);
        let (mut b, x) = one_input(&[n, c, hw, hw]);
        let y = b.batch_norm(x, uniform(&[c], &mut rng, 0.5, 1.5), uniform(&[c], &mut rng, -0.5, 0.5),
            uniform(&[c], &mut rng, -0.3, 0.3), uniform(&[c], &mut rng, 0.5, 1.5), 1e-5).unwrap();
        let g = finish(b, y);
        let mode = if train { Mode::Train } else { Mode::Eval };
        // Batch statistics over few values make the function steep: a smaller step.
        let tol = Tol { eps: 3e-3, atol: 3e-3, rtol: 2e-2 };
        // Distinct values 0.25 apart: a channel's batch deviation is at least 0.125 (two
        // near-equal values would make the normalized output arbitrarily steep).
        ok(check_gradients(&g, &[distinct(&[n, c, hw, hw], &mut rng, 0.25)], mode, tol, seed))?;
    }

    /// Elementwise activations, away from their kinks.
    #[test]
    fn activations(seed in any::<u64>(), which in 0usize..8, n in 1usize..3, c in 1usize..4, l in 1usize..6) {
        let mut rng = Rng::new(seed);
        let shape = [n, c, l];
        let (mut b, x) = one_input(&shape);
        let (y, kinks, scale): (Outlet, Vec<f32>, f32) = match which {
            0 => (b.relu(x).unwrap(), vec![0.0], 2.0),
            1 => {
                let lo = b.constant("lo", Tensor::scalar(0f32));
                let hi = b.constant("hi", Tensor::scalar(6f32));
                (b.node(Op::Clip, &[x, lo, hi]).unwrap(), vec![0.0, 6.0], 8.0)
            }
            2 => (b.node(Op::LeakyRelu { alpha: 0.1 }, &[x]).unwrap(), vec![0.0], 2.0),
            3 => (b.node(Op::Sigmoid, &[x]).unwrap(), vec![], 4.0),
            4 => (b.node(Op::Tanh, &[x]).unwrap(), vec![], 2.0),
            5 => (b.node(Op::HardSwish, &[x]).unwrap(), vec![-3.0, 3.0], 5.0),
            6 => (b.node(Op::HardSigmoid { alpha: 0.2, beta: 0.5 }, &[x]).unwrap(), vec![-2.5, 2.5], 4.0),
            _ => {
                let slope = b.constant("slope", uniform(&[c, 1], &mut rng, 0.05, 0.5));
                (b.node(Op::PRelu, &[x, slope]).unwrap(), vec![0.0], 2.0)
            }
        };
        let g = finish(b, y);
        let xin = away_from(&shape, &mut rng, scale, &kinks, 0.05);
        ok(check_gradients(&g, &[xin], Mode::Train, Tol::default(), seed))?;
    }

    /// Add, Sub, Mul, Div, Pow with the second operand broadcast in every way.
    #[test]
    fn arithmetic(seed in any::<u64>(), which in 0usize..5, form in 0usize..6, swap in any::<bool>()) {
        let mut rng = Rng::new(seed);
        let full = vec![2usize, 3, 4];
        let other: Vec<usize> = match form { 0 => vec![], 1 => vec![4], 2 => vec![3, 1], 3 => vec![1, 3, 4], 4 => vec![2, 1, 1], _ => full.clone() };
        let op = [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Pow][which].clone();
        // Div keeps its divisor away from 0, Pow its base positive; with `swap` the broadcast
        // operand is the first.
        let (sa, sb) = if swap && which != 3 { (other.clone(), full.clone()) } else { (full.clone(), other.clone()) };
        let mut b = GraphBuilder::new("t");
        let a = b.input("a", DType::F32, &sa);
        let c = b.input("b", DType::F32, &sb);
        let y = b.node(op, &[a, c]).unwrap();
        let g = finish(b, y);
        let bin = if which == 3 { uniform(&sb, &mut rng, 0.5, 2.0) } else { uniform(&sb, &mut rng, -1.0, 1.0) };
        let ain = if which == 4 { uniform(&sa, &mut rng, 0.5, 2.0) } else { uniform(&sa, &mut rng, -1.0, 1.0) };
        ok(check_gradients(&g, &[ain, bin], Mode::Train, Tol::default(), seed))?;
    }

    /// Pooling: max and average (pads, strides, ceil mode, count_include_pad), global max and average.
    #[test]
    fn pooling(seed in any::<u64>(), which in 0usize..4, k in 1usize..4, stride in 1usize..3, pad in 0usize..2,
               ceil in any::<bool>(), include in any::<bool>(), hw in 4usize..7) {
        let mut rng = Rng::new(seed);
        let shape = [2, 2, hw, hw + 1];
        let (mut b, x) = one_input(&shape);
        let pad = pad.min(k - 1);
        let pool = PoolAttrs { kernel_shape: vec![k, k], strides: vec![stride; 2], pads: vec![pad; 4], ceil_mode: ceil, ..Default::default() };
        let y = match which {
            0 => b.max_pool(x, pool).unwrap(),
            1 => b.node(Op::AveragePool(AvgPoolAttrs { pool, count_include_pad: include }), &[x]).unwrap(),
            2 => b.global_avg_pool(x).unwrap(),
            _ => b.node(Op::GlobalMaxPool, &[x]).unwrap(),
        };
        let g = finish(b, y);
        // Values 0.05 apart: a ±0.01 step never changes which element is a window's maximum.
        ok(check_gradients(&g, &[distinct(&shape, &mut rng, 0.05)], Mode::Train, Tol::default(), seed))?;
    }

    /// Softmax along each axis, opset-13 and coerce-2-D forms.
    #[test]
    fn softmax(seed in any::<u64>(), axis in -3i64..3, coerce in any::<bool>()) {
        let mut rng = Rng::new(seed);
        let shape = [2, 3, 4];
        let (mut b, x) = one_input(&shape);
        let y = b.node(Op::Softmax(SoftmaxAttrs { axis, coerce_2d: coerce }), &[x]).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -2.0, 2.0)], Mode::Train, Tol::default(), seed))?;
    }

    /// Reshape, Flatten, Transpose, Concat, and a value read twice (fan-out).
    #[test]
    fn data_movement(seed in any::<u64>(), axis in 0i64..3) {
        let mut rng = Rng::new(seed);
        let shape = [2, 3, 4];
        let (mut b, x) = one_input(&shape);
        let t = b.node(Op::Transpose { perm: Some(vec![2, 0, 1]) }, &[x]).unwrap(); // 4,2,3
        let r = b.reshape(t, &[2, 3, 4]).unwrap();
        let w = b.constant("w", uniform(&shape, &mut rng, -1.0, 1.0));
        let m = b.node(Op::Mul, &[r, w]).unwrap();
        let cat = b.node(Op::Concat { axis }, &[m, x, m]).unwrap();
        let f = b.node(Op::Flatten { axis: 1 }, &[cat]).unwrap();
        let g = finish(b, f);
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;
    }
    /// ConvTranspose: plain, grouped and depthwise; kernel 1..3, stride 1..3, pads, dilation,
    /// output_padding, bias, an output_shape one smaller or larger than the full output. The
    /// GEMM forward equals the reference kernel.
    #[test]
    fn conv_transpose(seed in any::<u64>(), n in 1usize..3, cg in 1usize..3, groups in 1usize..4, mg in 1usize..3,
                      k in 1usize..4, stride in 1usize..4, pad in 0usize..2, dil in 1usize..3, opad in 0usize..2,
                      bias in any::<bool>(), hw in 3usize..6, out_form in 0usize..3) {
        let mut rng = Rng::new(seed);
        let (c, m) = (cg * groups, mg * groups);
        let opad = opad.min(stride.max(dil) - 1);
        let (mut b, x) = one_input(&[n, c, hw, hw + 1]);
        let w = b.constant("W", uniform(&[c, mg, k, k], &mut rng, -1.0, 1.0));
        let mut ins = vec![x, w];
        if bias {
            ins.push(b.constant("B", uniform(&[m], &mut rng, -1.0, 1.0)));
        }
        let conv = ConvAttrs { strides: vec![stride; 2], dilations: vec![dil; 2], pads: vec![pad, 0, pad, pad], group: groups, ..Default::default() };
        // The full output of each axis: stride·(in − 1) + output_padding + (k − 1)·dilation + 1.
        let full = |len: usize, op: usize| stride * (len - 1) + op + (k - 1) * dil + 1;
        let output_shape = match out_form {
            0 => None,
            1 => Some(vec![full(hw, opad) - 1, full(hw + 1, 0) - 1]),
            _ => Some(vec![full(hw, opad) + 1, full(hw + 1, 0) + 1]),
        };
        let attrs = ConvTransposeAttrs { conv, output_padding: vec![opad, 0], output_shape };
        let y = b.node(Op::ConvTranspose(attrs), &ins).unwrap();
        let g = finish(b, y);
        let xin = uniform(&[n, c, hw, hw + 1], &mut rng, -1.0, 1.0);
        let (ours, want) = reference_output(&g, std::slice::from_ref(&xin), y);
        prop_assert_eq!(ours.len(), want.len());
        let diff = ours.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        prop_assert!(diff < 1e-4, "forward differs from the reference by {}", diff);
        ok(check_gradients(&g, &[xin], Mode::Train, Tol::default(), seed))?;
    }

    /// Split into 3 (given sizes or equal pieces) along any axis; the middle piece unused, so
    /// its gradient is zero.
    #[test]
    fn split(seed in any::<u64>(), axis in -3i64..3, sizes in any::<bool>()) {
        let mut rng = Rng::new(seed);
        let shape = [6usize, 7, 6];
        let (mut b, x) = one_input(&shape);
        let mut ins = vec![Some(x)];
        if sizes {
            let dim = shape[axis.rem_euclid(3) as usize] as i64;
            ins.push(Some(b.constant("split", i64s(&[1, dim - 3, 2]))));
        }
        let parts = b.node_with(Op::Split { axis, num_outputs: 3 }, &ins, 3).unwrap();
        let w = b.constant("w", uniform(&[1], &mut rng, 0.5, 1.5));
        let first = b.node(Op::Mul, &[parts[0], w]).unwrap();
        let y = b.node(Op::Concat { axis }, &[first, parts[2]]).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;
    }

    /// Slice with starts/ends that are negative or out of range, steps of either sign, axes
    /// given (possibly negative) or not.
    #[test]
    fn slice(seed in any::<u64>(), starts in prop::collection::vec(-8i64..8, 3), ends in prop::collection::vec(-9i64..9, 3),
             steps in prop::collection::vec(prop::sample::select(vec![-3i64, -2, -1, 1, 2, 3]), 3),
             axes_form in 0usize..3, count in 1usize..4) {
        let mut rng = Rng::new(seed);
        let shape = [4usize, 5, 6];
        let (mut b, x) = one_input(&shape);
        let s = b.constant("starts", i64s(&starts[..count]));
        let e = b.constant("ends", i64s(&ends[..count]));
        let mut ins = vec![x, s, e];
        let axes: Vec<i64> = match axes_form { 0 => (0..count as i64).collect(), 1 => (0..count as i64).map(|a| a - 3).rev().collect(), _ => vec![] };
        if !axes.is_empty() {
            ins.push(b.constant("axes", i64s(&axes)));
            ins.push(b.constant("steps", i64s(&steps[..count])));
        }
        let y = b.node(Op::Slice, &ins).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;
    }

    /// Pad in every mode with pads from -1 (cropping) to 2, and a constant value; Gather with
    /// repeated and negative indices; Expand.
    #[test]
    fn pad_gather_expand(seed in any::<u64>(), mode in 0usize..4, pads in prop::collection::vec(-1i64..3, 4),
                         axis in -2i64..2) {
        let mut rng = Rng::new(seed);
        let shape = [3usize, 4];
        let (mut b, x) = one_input(&shape);
        let mode = [PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap][mode];
        let p = b.constant("pads", i64s(&pads));
        let v = b.constant("value", Tensor::scalar(0.5f32));
        let y = b.node(Op::Pad { mode }, &[x, p, v]).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;

        let (mut b, x) = one_input(&shape);
        let idx = b.constant("idx", Tensor::from_vec(&[2, 3], vec![0i64, -1, 2, 0, 1, 0]).unwrap());
        let y = b.node(Op::Gather { axis }, &[x, idx]).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;

        let (mut b, x) = one_input(&[3, 1]);
        let to = b.constant("shape", i64s(&[2, 3, 4]));
        let y = b.node(Op::Expand, &[x, to]).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&[3, 1], &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;
    }

    /// Train-mode dropout between two weighted layers: the mask repeats for the tape's seed, so
    /// finite differences see the same mask.
    #[test]
    fn dropout_in_train_mode(seed in any::<u64>(), p in prop::sample::select(vec![0.0f32, 0.2, 0.5, 0.9])) {
        let mut rng = Rng::new(seed);
        let shape = [2usize, 3, 4];
        let (mut b, x) = one_input(&shape);
        let w = b.constant("w", uniform(&shape, &mut rng, -1.0, 1.0));
        let m = b.node(Op::Mul, &[x, w]).unwrap();
        let ratio = b.constant("ratio", Tensor::scalar(p));
        let y = b.node(Op::Dropout, &[m, ratio]).unwrap();
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;
    }
}

/// A Dropout node with its mask output, on `shape`, drop probability `p`.
fn dropout_graph(shape: &[usize], p: f32) -> Graph {
    let (mut b, x) = one_input(shape);
    let ratio = b.constant("ratio", Tensor::scalar(p));
    let outs = b.node_with(Op::Dropout, &[Some(x), Some(ratio)], 2).unwrap();
    b.output(outs[0]);
    b.output(outs[1]);
    b.finish().unwrap()
}

#[test]
fn dropout_gradient_is_dy_times_the_forward_mask_over_keep_probability() {
    let shape = [4usize, 50];
    let p = 0.3f32;
    let g = dropout_graph(&shape, p);
    let mut rng = Rng::new(5);
    let xin = uniform(&shape, &mut rng, -1.0, 1.0);
    let tape = Tape::new(&g).unwrap().with_seed(77);
    let fwd = tape.forward(vec![xin.clone()], Mode::Train).unwrap();
    let y_out = g.outputs()[0];
    let mask = fwd.saved(y_out.node).expect("a train-mode dropout keeps its mask");
    let mask: Vec<bool> = mask.view::<bool>().unwrap().iter().copied().collect();
    let mask_out: Vec<bool> = fwd.value(g.outputs()[1]).unwrap().view::<bool>().unwrap().iter().copied().collect();
    assert_eq!(mask, mask_out, "the mask output is the kept mask");
    let kept = mask.iter().filter(|&&k| k).count();
    assert!(kept > 0 && kept < mask.len(), "{kept} of {} kept", mask.len());
    let scale = 1.0 / (1.0 - p);
    let x = xin.to_f32_vec();
    let y: Vec<f32> = fwd.f32(y_out).unwrap().iter().copied().collect();
    for i in 0..x.len() {
        assert_eq!(y[i], if mask[i] { x[i] * scale } else { 0.0 }, "y[{i}]");
    }
    let dy = uniform(&shape, &mut rng, -1.0, 1.0).to_f32_vec();
    let seed_grad = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), dy.clone()).unwrap();
    let xo = Outlet::new(g.inputs()[0], 0);
    let grads = tape.backward(&fwd, vec![(y_out, seed_grad)], &[xo]).unwrap();
    let dx: Vec<f32> = grads.get(xo).unwrap().iter().copied().collect();
    for i in 0..x.len() {
        assert_eq!(dx[i], if mask[i] { dy[i] * scale } else { 0.0 }, "dx[{i}]");
    }
    // Eval mode: the identity, and no mask kept.
    let fwd = tape.forward(vec![xin.clone()], Mode::Eval).unwrap();
    assert!(fwd.saved(y_out.node).is_none());
    assert_eq!(fwd.f32(y_out).unwrap().iter().copied().collect::<Vec<_>>(), x);
}

#[test]
fn dropout_masks_repeat_for_a_seed_and_keep_one_minus_p() {
    let n = 200_000usize;
    let p = 0.3f32;
    let g = dropout_graph(&[n], p);
    let x = lithe_train::init::filled(&[n], 1.0);
    let mask_of = |seed: u64| -> Vec<bool> {
        let tape = Tape::new(&g).unwrap().with_seed(seed);
        let fwd = tape.forward(vec![x.clone()], Mode::Train).unwrap();
        fwd.saved(g.outputs()[0].node).unwrap().view::<bool>().unwrap().iter().copied().collect()
    };
    let a = mask_of(1);
    assert_eq!(a, mask_of(1), "same seed, same mask");
    assert_ne!(a, mask_of(2), "another seed, another mask");
    // Kept count ~ Binomial(n, 1 - p): mean 140,000, sigma 205; 6 sigma is 1,230.
    let kept = a.iter().filter(|&&k| k).count() as f64;
    let (mean, sigma) = (n as f64 * (1.0 - p as f64), (n as f64 * p as f64 * (1.0 - p as f64)).sqrt());
    assert!((kept - mean).abs() < 6.0 * sigma, "kept {kept}, expected {mean} ± {}", 6.0 * sigma);
    // Two dropout nodes of one graph draw different masks.
    assert_ne!(lithe_train::rules::node_seed(1, 3), lithe_train::rules::node_seed(1, 4));
}

#[test]
fn dropout_ratio_outside_zero_one_is_an_error_naming_the_node() {
    let g = dropout_graph(&[4], 1.0);
    let err = Tape::new(&g).unwrap().forward(vec![lithe_train::init::filled(&[4], 1.0)], Mode::Train).unwrap_err();
    assert!(err.to_string().contains("Dropout") && err.to_string().contains("outside [0, 1)"), "{err}");
}

#[test]
fn a_small_cnn_end_to_end_in_train_mode() {
    // conv -> BN -> ReLU -> maxpool -> depthwise conv -> residual add -> global pool -> gemm.
    let mut rng = Rng::new(9);
    let (mut b, x) = one_input(&[3, 2, 6, 6]);
    let c1 = b
        .conv2d(
            x,
            uniform(&[4, 2, 3, 3], &mut rng, -0.5, 0.5),
            None,
            ConvAttrs { pads: vec![1; 4], ..Default::default() },
        )
        .unwrap();
    let bn = b
        .batch_norm(
            c1,
            uniform(&[4], &mut rng, 0.5, 1.5),
            uniform(&[4], &mut rng, -0.2, 0.2),
            Tensor::zeros(DType::F32, &[4]),
            lithe_train::init::filled(&[4], 1.0),
            1e-5,
        )
        .unwrap();
    let r = b.node(Op::Tanh, &[bn]).unwrap();
    let p = b.max_pool(r, PoolAttrs { kernel_shape: vec![2, 2], strides: vec![2, 2], ..Default::default() }).unwrap();
    let dw = b
        .conv2d(
            p,
            uniform(&[4, 1, 3, 3], &mut rng, -0.5, 0.5),
            Some(uniform(&[4], &mut rng, -0.1, 0.1)),
            ConvAttrs { pads: vec![1; 4], group: 4, ..Default::default() },
        )
        .unwrap();
    let s = b.add(dw, p).unwrap();
    let gp = b.global_avg_pool(s).unwrap();
    let fl = b.node(Op::Flatten { axis: 1 }, &[gp]).unwrap();
    let y = b.linear(fl, uniform(&[5, 4], &mut rng, -0.5, 0.5), Some(uniform(&[5], &mut rng, -0.1, 0.1))).unwrap();
    let g = finish(b, y);
    let xin = uniform(&[3, 2, 6, 6], &mut rng, -1.0, 1.0);
    let tol = Tol { eps: 3e-3, atol: 3e-3, rtol: 3e-2 };
    for mode in [Mode::Train, Mode::Eval] {
        let n = check_gradients(&g, std::slice::from_ref(&xin), mode, tol, 1).unwrap();
        assert!(n > 100, "{n}");
    }
}

#[test]
fn ops_without_a_rule_are_typed_errors_naming_the_node() {
    let (mut b, x) = one_input(&[1, 2, 3, 3]);
    let scales = b.constant("scales", Tensor::from_vec(&[4], vec![1f32, 1.0, 2.0, 2.0]).unwrap());
    let linear = ResizeAttrs { mode: lithe_ir::op::ResizeMode::Linear, ..Default::default() };
    let y = b.node_with(Op::Resize(linear), &[Some(x), None, Some(scales)], 1).unwrap()[0];
    let g = finish(b, y);
    let tape = Tape::new(&g).unwrap();
    let fwd = tape.forward(vec![lithe_train::init::filled(&[1, 2, 3, 3], 1.0)], Mode::Train).unwrap();
    let seed = ndarray::ArrayD::ones(ndarray::IxDyn(&[1, 2, 6, 6]));
    let inputs = [Outlet::new(g.inputs()[0], 0)];
    let err = tape.backward(&fwd, vec![(g.outputs()[0], seed)], &inputs).unwrap_err();
    assert!(matches!(err, TrainError::NoBackwardRule { op: "Resize", .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "no backward rule for op Resize at node {}: linear and cubic modes, and tf_crop_and_resize",
            g.node(g.outputs()[0].node).name
        )
    );
}

#[test]
fn trainer_dropout_masks_repeat_for_the_config_seed() {
    // x -> Gemm -> Dropout(0.5) -> Gemm: two trainers with one seed take the same steps.
    let mut rng = Rng::new(3);
    let (mut b, x) = one_input(&[8, 6]);
    let h = b.linear(x, uniform(&[10, 6], &mut rng, -0.5, 0.5), None).unwrap();
    let ratio = b.constant("ratio", Tensor::scalar(0.5f32));
    let d = b.node(Op::Dropout, &[h, ratio]).unwrap();
    let y = b.linear(d, uniform(&[3, 10], &mut rng, -0.5, 0.5), None).unwrap();
    let g = finish(b, y);
    let xin = uniform(&[8, 6], &mut rng, -1.0, 1.0);
    let labels = [0usize, 1, 2, 0, 1, 2, 0, 1];
    let run = |seed: u64| -> Vec<f32> {
        let config = lithe_train::TrainerConfig { seed, ..Default::default() };
        let mut t = lithe_train::Trainer::new(g.clone(), config).unwrap();
        (0..3).map(|_| t.step(xin.clone(), &labels).unwrap().loss).collect()
    };
    let a = run(11);
    assert_eq!(a, run(11));
    assert_ne!(a, run(12));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// ReduceSum, ReduceMean and ReduceMax over any subset of axes (given as negative or
    /// positive indices, or absent), keepdims either way, noop_with_empty_axes.
    #[test]
    fn reductions(seed in any::<u64>(), which in 0usize..3, pick in prop::collection::vec(any::<bool>(), 3),
                  negative in any::<bool>(), keepdims in any::<bool>(), noop in any::<bool>()) {
        let mut rng = Rng::new(seed);
        let shape = [2usize, 3, 4];
        let (mut b, x) = one_input(&shape);
        let axes: Vec<i64> = (0..3).filter(|&i| pick[i as usize]).map(|i| if negative { i - 3 } else { i }).collect();
        let attrs = ReduceAttrs { keepdims, noop_with_empty_axes: noop };
        let op = [Op::ReduceSum(attrs.clone()), Op::ReduceMean(attrs.clone()), Op::ReduceMax(attrs)][which].clone();
        let mut ins = vec![x];
        if !axes.is_empty() {
            ins.push(b.constant("axes", i64s(&axes)));
        }
        let y = b.node(op, &ins).unwrap();
        let g = finish(b, y);
        // Distinct values 0.05 apart: a step never changes which element is a group's maximum.
        let xin = if which == 2 { distinct(&shape, &mut rng, 0.05) } else { uniform(&shape, &mut rng, -1.0, 1.0) };
        ok(check_gradients(&g, &[xin], Mode::Train, Tol::default(), seed))?;
    }

    /// Neg, Abs (away from 0), Exp, Log and Sqrt (on positive inputs), Erf.
    #[test]
    fn elementwise_math(seed in any::<u64>(), which in 0usize..6, n in 1usize..3, l in 1usize..7) {
        let mut rng = Rng::new(seed);
        let shape = [n, l];
        let (mut b, x) = one_input(&shape);
        let op = [Op::Neg, Op::Abs, Op::Exp, Op::Log, Op::Sqrt, Op::Erf][which].clone();
        let y = b.node(op, &[x]).unwrap();
        let g = finish(b, y);
        let xin = match which {
            0 | 1 => away_from(&shape, &mut rng, 2.0, &[0.0], 0.05),
            2 | 5 => uniform(&shape, &mut rng, -2.0, 2.0),
            _ => uniform(&shape, &mut rng, 0.5, 2.0),
        };
        ok(check_gradients(&g, &[xin], Mode::Train, Tol::default(), seed))?;
    }

    /// Min and Max of 2 or 3 operands broadcast against each other; all values distinct.
    #[test]
    fn min_max(seed in any::<u64>(), max in any::<bool>(), three in any::<bool>(), form in 0usize..4) {
        let mut rng = Rng::new(seed);
        let shapes: Vec<Vec<usize>> = match form {
            0 => vec![vec![2, 3], vec![2, 3], vec![2, 3]],
            1 => vec![vec![2, 3], vec![3], vec![1, 3]],
            2 => vec![vec![2, 1], vec![1, 3], vec![]],
            _ => vec![vec![3], vec![2, 3], vec![2, 1]],
        };
        let count = if three { 3 } else { 2 };
        let mut b = GraphBuilder::new("t");
        let ins: Vec<Outlet> = (0..count).map(|i| b.input(format!("x{i}"), DType::F32, &shapes[i])).collect();
        let y = b.node(if max { Op::Max } else { Op::Min }, &ins).unwrap();
        let g = finish(b, y);
        // Distinct values 0.05 apart across all operands, so no step changes a winner.
        let lens: Vec<usize> = shapes[..count].iter().map(|s| s.iter().product()).collect();
        let all = distinct(&[lens.iter().sum()], &mut rng, 0.05).to_f32_vec();
        let mut at = 0;
        let xs: Vec<Tensor> = shapes[..count].iter().zip(&lens).map(|(s, &l)| {
            let t = Tensor::from_vec(s, all[at..at + l].to_vec()).unwrap();
            at += l;
            t
        }).collect();
        ok(check_gradients(&g, &xs, Mode::Train, Tol::default(), seed))?;
    }

    /// MatMul with a batched (N-D) or 1-D right operand, broadcast batch axes, 1-D left operand.
    #[test]
    fn matmul_batched(seed in any::<u64>(), form in 0usize..5, m in 1usize..4, k in 1usize..4, n in 1usize..4) {
        let mut rng = Rng::new(seed);
        let (sa, sb): (Vec<usize>, Vec<usize>) = match form {
            0 => (vec![2, m, k], vec![2, k, n]),
            1 => (vec![m, k], vec![3, k, n]),
            2 => (vec![2, 1, m, k], vec![3, k, n]),
            3 => (vec![k], vec![2, k, n]),
            _ => (vec![2, m, k], vec![k]),
        };
        let mut b = GraphBuilder::new("t");
        let a = b.input("a", DType::F32, &sa);
        let c = b.input("b", DType::F32, &sb);
        let y = b.matmul(a, c).unwrap();
        let g = finish(b, y);
        let xs = [uniform(&sa, &mut rng, -1.0, 1.0), uniform(&sb, &mut rng, -1.0, 1.0)];
        ok(check_gradients(&g, &xs, Mode::Train, Tol::default(), seed))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Where with the condition and both branches broadcast.
    #[test]
    fn where_select(seed in any::<u64>(), form in 0usize..3) {
        let mut rng = Rng::new(seed);
        let (sc, sx, sy): (Vec<usize>, Vec<usize>, Vec<usize>) = match form {
            0 => (vec![2, 3], vec![2, 3], vec![2, 3]),
            1 => (vec![1, 3], vec![2, 1], vec![3]),
            _ => (vec![2, 3], vec![], vec![2, 3]),
        };
        let mut b = GraphBuilder::new("t");
        let c = b.constant("cond", {
            let n: usize = sc.iter().product();
            Tensor::from_vec(&sc, (0..n).map(|_| rng.uniform() < 0.5).collect::<Vec<bool>>()).unwrap()
        });
        let x = b.input("x", DType::F32, &sx);
        let y = b.input("y", DType::F32, &sy);
        let out = b.node(Op::Where, &[c, x, y]).unwrap();
        let g = finish(b, out);
        let xs = [uniform(&sx, &mut rng, -1.0, 1.0), uniform(&sy, &mut rng, -1.0, 1.0)];
        ok(check_gradients(&g, &xs, Mode::Train, Tol::default(), seed))?;
    }

    /// LayerNormalization over the trailing axes from `axis`, scale of the full or a broadcast
    /// normalized shape, with or without bias.
    #[test]
    fn layer_norm(seed in any::<u64>(), axis in -2i64..3, bias in any::<bool>(), broadcast_scale in any::<bool>()) {
        let mut rng = Rng::new(seed);
        let shape = [2usize, 3, 4];
        let ax = axis.rem_euclid(3) as usize;
        let mut norm: Vec<usize> = shape[ax..].to_vec();
        if broadcast_scale && norm.len() > 1 {
            norm[0] = 1;
        }
        let (mut b, x) = one_input(&shape);
        let mut ins = vec![x, b.constant("scale", uniform(&norm, &mut rng, 0.5, 1.5))];
        if bias {
            ins.push(b.constant("bias", uniform(&norm, &mut rng, -0.5, 0.5)));
        }
        let y = b.node(Op::LayerNormalization { axis, epsilon: 1e-5 }, &ins).unwrap();
        let g = finish(b, y);
        let tol = Tol { eps: 3e-3, atol: 3e-3, rtol: 2e-2 };
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -2.0, 2.0)], Mode::Train, tol, seed))?;
    }

    /// Nearest-neighbour Resize (up and down, by scales or sizes, several coordinate
    /// transforms and rounding modes).
    #[test]
    fn resize_nearest(seed in any::<u64>(), by_sizes in any::<bool>(), up in any::<bool>(), coord in 0usize..4, round in 0usize..4) {
        let mut rng = Rng::new(seed);
        let shape = [1usize, 2, 4, 5];
        let (mut b, x) = one_input(&shape);
        let coord = [CoordTransform::HalfPixel, CoordTransform::Asymmetric, CoordTransform::AlignCorners, CoordTransform::PytorchHalfPixel][coord];
        let nearest = [NearestMode::RoundPreferFloor, NearestMode::RoundPreferCeil, NearestMode::Floor, NearestMode::Ceil][round];
        let attrs = ResizeAttrs { coord, nearest, ..Default::default() };
        let y = if by_sizes {
            let sizes: Vec<i64> = if up { vec![1, 2, 7, 9] } else { vec![1, 2, 3, 2] };
            let s = b.constant("sizes", i64s(&sizes));
            b.node_with(Op::Resize(attrs), &[Some(x), None, None, Some(s)], 1).unwrap()[0]
        } else {
            let scales: Vec<f32> = if up { vec![1.0, 1.0, 2.0, 1.5] } else { vec![1.0, 1.0, 0.5, 0.6] };
            let s = b.constant("scales", Tensor::from_vec(&[4], scales).unwrap());
            b.node_with(Op::Resize(attrs), &[Some(x), None, Some(s)], 1).unwrap()[0]
        };
        let g = finish(b, y);
        ok(check_gradients(&g, &[uniform(&shape, &mut rng, -1.0, 1.0)], Mode::Train, Tol::default(), seed))?;
    }
}

#[test]
fn an_encoder_decoder_with_dropout_end_to_end() {
    // Pad -> strided conv -> BN -> Tanh -> Dropout -> ConvTranspose (output_padding) ->
    // Slice (crop) -> Concat with the input (skip) -> Resize (nearest, down) -> ReduceMean.
    let mut rng = Rng::new(21);
    let (mut b, x) = one_input(&[2, 3, 8, 8]);
    let pads = b.constant("pads", i64s(&[0, 0, 1, 1, 0, 0, 1, 1]));
    let p = b.node(Op::Pad { mode: PadMode::Constant }, &[x, pads]).unwrap();
    let c = b
        .conv2d(
            p,
            uniform(&[4, 3, 3, 3], &mut rng, -0.5, 0.5),
            None,
            ConvAttrs { strides: vec![2, 2], ..Default::default() },
        )
        .unwrap();
    let bn = b
        .batch_norm(
            c,
            uniform(&[4], &mut rng, 0.5, 1.5),
            uniform(&[4], &mut rng, -0.2, 0.2),
            Tensor::zeros(DType::F32, &[4]),
            lithe_train::init::filled(&[4], 1.0),
            1e-5,
        )
        .unwrap();
    let t = b.node(Op::Tanh, &[bn]).unwrap();
    let ratio = b.constant("ratio", Tensor::scalar(0.3f32));
    let d = b.node(Op::Dropout, &[t, ratio]).unwrap();
    let w = b.constant("up.weight", uniform(&[4, 3, 3, 3], &mut rng, -0.5, 0.5));
    let bias = b.constant("up.bias", uniform(&[3], &mut rng, -0.1, 0.1));
    let conv = ConvAttrs { strides: vec![2, 2], pads: vec![1; 4], ..Default::default() };
    let attrs = ConvTransposeAttrs { conv, output_padding: vec![1, 1], output_shape: None };
    let up = b.node(Op::ConvTranspose(attrs), &[d, w, bias]).unwrap(); // 2 x 3 x 8 x 8
    let (s, e, ax) = (b.constant("s", i64s(&[1, 7])), b.constant("e", i64s(&[7, 1])), b.constant("ax", i64s(&[2, 3])));
    let st = b.constant("st", i64s(&[1, -1]));
    let crop = b.node(Op::Slice, &[up, s, e, ax, st]).unwrap(); // 2 x 3 x 6 x 6
    let (s2, e2) = (b.constant("s2", i64s(&[1, 1])), b.constant("e2", i64s(&[7, 7])));
    let skip = b.node(Op::Slice, &[x, s2, e2, ax]).unwrap();
    let cat = b.node(Op::Concat { axis: 1 }, &[crop, skip]).unwrap();
    let scales = b.constant("scales", Tensor::from_vec(&[4], vec![1f32, 1.0, 0.5, 0.5]).unwrap());
    let r = b.node_with(Op::Resize(ResizeAttrs::default()), &[Some(cat), None, Some(scales)], 1).unwrap()[0];
    let axes = b.constant("axes", i64s(&[3]));
    let y = b.node(Op::ReduceMean(ReduceAttrs::default()), &[r, axes]).unwrap();
    let g = finish(b, y);
    let xin = uniform(&[2, 3, 8, 8], &mut rng, -1.0, 1.0);
    let tol = Tol { eps: 3e-3, atol: 3e-3, rtol: 3e-2 };
    for mode in [Mode::Train, Mode::Eval] {
        // 24 picks of the input, conv and transposed-conv weights, every BN scale and bias (4 + 4)
        // and every transposed-conv bias (3).
        let n = check_gradients(&g, std::slice::from_ref(&xin), mode, tol, 2).unwrap();
        assert_eq!(n, 24 * 3 + 4 + 4 + 3);
    }
}
