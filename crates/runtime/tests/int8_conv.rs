//! QDQ convolutions fused into QConv (`fuse_qdq_conv`) and run by the int8 kernels give the
//! outputs of the QDQ graph (the reference semantics) to within one quantization step, on
//! random geometries: pointwise, 3x3 and 5x5 with padding and strides, grouped, depthwise,
//! with fused activations and residual adds, u8 or f32 outputs.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{Activation, ConvAttrs};
use lithe_ir::{DType, Graph, Op, Outlet, Tensor};
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use proptest::prelude::*;
use std::collections::HashMap;

/// One random QDQ conv case.
#[derive(Clone, Debug)]
struct Case {
    n: usize,
    c_in: usize,
    c_out: usize,
    hw: [usize; 2],
    kernel: usize,
    stride: usize,
    pad: [usize; 4],
    groups: usize,
    activation: Activation,
    residual: bool,
    /// Quantize the conv output (u8 output) or leave it f32.
    requantize: bool,
    per_channel: bool,
    seed: u64,
}

fn lcg(state: &mut u64) -> f32 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*state >> 40) as f32) / (1u64 << 24) as f32
}

fn case() -> impl Strategy<Value = Case> {
    let geometry = prop_oneof![
        // pointwise
        (1usize..20, 1usize..40, Just(1usize), Just(1usize), Just(1usize)),
        // dense k x k
        (1usize..8, 1usize..20, prop_oneof![Just(3usize), Just(5)], 1usize..3, Just(1usize)),
        // grouped
        (1usize..4, 1usize..4, Just(3usize), 1usize..3, 2usize..4),
        // depthwise (c_in = c_out = groups)
        (1usize..24, Just(1usize), prop_oneof![Just(3usize), Just(5)], 1usize..3, Just(0usize)),
    ];
    let activation = prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        Just(Activation::Clip { min: 0.0, max: 6.0 }),
        Just(Activation::HardSwish),
        Just(Activation::LeakyRelu { alpha: 0.1 }),
    ];
    (
        geometry,
        1usize..3,
        3usize..14,
        3usize..14,
        prop::array::uniform4(0usize..3),
        activation,
        any::<(bool, bool, bool)>(),
        any::<u64>(),
    )
        .prop_map(
            |((a, b, kernel, stride, g), n, h, w, pad, activation, (residual, requantize, per_channel), seed)| {
                let (c_in, c_out, groups) = match g {
                    0 => (a, a, a),         // depthwise: a channels
                    1 => (a, b, 1),         // dense
                    g => (a * g, b * g, g), // a, b per group
                };
                let pad = pad.map(|p| p.min(kernel / 2 + 1).min(kernel - 1));
                Case {
                    n,
                    c_in,
                    c_out,
                    hw: [h.max(kernel), w.max(kernel)],
                    kernel,
                    stride,
                    pad,
                    groups,
                    activation,
                    residual,
                    requantize,
                    per_channel,
                    seed,
                }
            },
        )
}

/// The QDQ graph of `case`: Q(x) -> DQ -> Conv(DQ(W s8), B) [+ residual] [activation] [-> Q -> DQ].
/// Also returns the output scale when the output is requantized.
/// The QDQ graph, its output step when requantized, and the most the fused conv's int32 bias
/// (rounded to steps of `x_scale·w_scale`) can move an output, in steps (0 without one).
fn qdq_graph(case: &Case) -> (Graph, Option<f32>, f32) {
    let mut s = case.seed | 1;
    let mut rand = |lo: f32, hi: f32| lo + (hi - lo) * lcg(&mut s);
    let mut b = GraphBuilder::new("qdq_conv");
    let [h, w] = case.hw;
    let x = b.input("x", DType::F32, &[case.n, case.c_in, h, w]);
    let scalar_f = |b: &mut GraphBuilder, name: &str, v: f32| b.constant(name, Tensor::scalar(v));
    let scalar_u = |b: &mut GraphBuilder, name: &str, v: u8| b.constant(name, Tensor::scalar(v));
    let xs_value = rand(0.005, 0.03);
    let xs = scalar_f(&mut b, "xs", xs_value);
    let xz = scalar_u(&mut b, "xz", rand(0.0, 255.0) as u8);
    let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[x, xs, xz]).unwrap();
    let dq = b.node(Op::DequantizeLinear { axis: 1 }, &[q, xs, xz]).unwrap();
    let cig = case.c_in / case.groups;
    let k = case.kernel;
    let wn = case.c_out * cig * k * k;
    let wq: Vec<i8> = (0..wn).map(|_| rand(-127.0, 127.99).floor() as i8).collect();
    let wt = b.constant("w", Tensor::from_vec(&[case.c_out, cig, k, k], wq).unwrap());
    let ws: Vec<f32> = (0..if case.per_channel { case.c_out } else { 1 }).map(|_| rand(0.001, 0.01)).collect();
    let ws_max = ws.iter().copied().fold(0.0f32, f32::max);
    let ws = if case.per_channel {
        b.constant("ws", Tensor::from_vec(&[case.c_out], ws).unwrap())
    } else {
        b.constant("ws", Tensor::scalar(ws[0]))
    };
    let wdq = b.node(Op::DequantizeLinear { axis: 0 }, &[wt, ws]).unwrap();
    let bias: Vec<f32> = (0..case.c_out).map(|_| rand(-1.0, 1.0)).collect();
    let bias = b.constant("b", Tensor::from_vec(&[case.c_out], bias).unwrap());
    let attrs = ConvAttrs {
        strides: vec![case.stride; 2],
        pads: case.pad.to_vec(),
        group: case.groups,
        ..ConvAttrs::default()
    };
    let y = b.node(Op::Conv(attrs), &[dq, wdq, bias]).unwrap();
    let y = if case.residual {
        let shape = b.ty(y).shape.clone().unwrap().as_known().unwrap();
        let count: usize = shape.iter().product();
        let r: Vec<f32> = (0..count).map(|_| rand(-2.0, 2.0)).collect();
        let r = b.constant("r", Tensor::from_vec(&shape, r).unwrap());
        b.add(y, r).unwrap()
    } else {
        y
    };
    let y = match case.activation {
        Activation::None => y,
        Activation::Relu => b.relu(y).unwrap(),
        Activation::Clip { min, max } => {
            let (lo, hi) = (scalar_f(&mut b, "lo", min), scalar_f(&mut b, "hi", max));
            b.node(Op::Clip, &[y, lo, hi]).unwrap()
        }
        Activation::HardSwish => b.node(Op::HardSwish, &[y]).unwrap(),
        Activation::LeakyRelu { alpha } => b.node(Op::LeakyRelu { alpha }, &[y]).unwrap(),
        _ => unreachable!("not generated"),
    };
    let mut out_scale = None;
    let y = if case.requantize {
        let v = rand(0.01, 0.05);
        out_scale = Some(v);
        let ys = scalar_f(&mut b, "ys", v);
        let yz = scalar_u(&mut b, "yz", rand(0.0, 200.0) as u8);
        let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[y, ys, yz]).unwrap();
        b.node(Op::DequantizeLinear { axis: 1 }, &[q, ys, yz]).unwrap()
    } else {
        y
    };
    b.output(y);
    let int_bias = case.requantize
        && !case.residual
        && matches!(case.activation, Activation::None | Activation::Relu | Activation::Clip { .. });
    let shift = match out_scale {
        Some(step) if int_bias => 0.5 * xs_value * ws_max / step,
        _ => 0.0,
    };
    (b.finish().unwrap(), out_scale, shift)
}

fn input(case: &Case) -> Tensor {
    let mut s = case.seed.rotate_left(17) | 1;
    let [h, w] = case.hw;
    let v: Vec<f32> = (0..case.n * case.c_in * h * w).map(|_| -1.0 + 3.0 * lcg(&mut s)).collect();
    Tensor::from_vec(&[case.n, case.c_in, h, w], v).unwrap()
}

fn run(graph: Graph, x: &Tensor, threads: usize) -> Vec<f32> {
    let mut p = Predictor::new(graph).unwrap();
    p.set_threads(threads);
    p.run_with(vec![x.clone()]).unwrap().remove(0).to_f32_vec()
}

/// The graph's first output computed node by node with the reference kernels: an oracle that
/// does not depend on which fast f32 conv path (GEMM, Winograd tile) the runtime would pick.
fn run_reference(graph: &Graph, x: &Tensor) -> Vec<f32> {
    let mut values: HashMap<Outlet, Tensor> = HashMap::new();
    let [input] = graph.inputs() else { panic!("one graph input") };
    values.insert(Outlet::new(*input, 0), x.clone());
    for id in graph.topo_order().unwrap() {
        let node = graph.node(id);
        if matches!(node.op, Op::Input) {
            continue;
        }
        let ins: Vec<Option<&Tensor>> = graph.node_inputs(id).into_iter().map(|o| o.map(|o| &values[&o])).collect();
        let outs = lithe_kernels::reference::eval(&node.op, &ins, node.outputs.len())
            .unwrap_or_else(|e| panic!("node '{}' ({}): {e}", node.name, node.op.name()));
        for (slot, t) in outs.into_iter().enumerate() {
            values.insert(Outlet::new(id, slot), t);
        }
    }
    values[&graph.outputs()[0]].to_f32_vec()
}

fn op_count(g: &Graph, name: &str) -> usize {
    g.node_ids().into_iter().filter(|&id| g.node(id).op.name() == name).count()
}

/// The QDQ graph optimized without `fuse_qdq_conv` (the reference semantics) and with it.
fn optimized_both_ways(qdq: Graph) -> (Graph, Graph) {
    let mut reference = qdq.clone();
    let mut unfused = PassManager::default_pipeline();
    unfused.disable("fuse_qdq_conv").unwrap();
    unfused.run(&mut reference).unwrap();
    let mut fused = qdq;
    PassManager::default_pipeline().run(&mut fused).unwrap();
    (reference, fused)
}

/// Run `case` fused (on `threads`) and unfused and compare.
fn check(case: &Case, threads: usize) -> Result<(), TestCaseError> {
    let (qdq, out_scale, bias_shift) = qdq_graph(case);
    let x = input(case);
    let (reference, fused) = optimized_both_ways(qdq);
    prop_assert_eq!(op_count(&fused, "QConv"), 1, "the conv was not fused");
    prop_assert_eq!(op_count(&fused, "Conv"), 0);
    let out_is_u8 = fused.outputs().iter().any(|&o: &Outlet| {
        let p = fused.node(o.node);
        matches!(p.op, Op::DequantizeLinear { .. })
    });
    prop_assert_eq!(out_is_u8, case.requantize);
    let want = run_reference(&reference, &x);
    let got = run(fused, &x, threads);
    prop_assert_eq!(want.len(), got.len());
    let scale = want.iter().map(|v| v.abs()).fold(0.0f32, f32::max).max(1.0);
    let mut differing = 0usize;
    for (i, (&a, &b)) in want.iter().zip(&got).enumerate() {
        let d = (a - b).abs();
        if let Some(step) = out_scale {
            // Values on a rounding boundary may land one step apart.
            prop_assert!(d <= step * 1.001 || d < 1e-6, "element {i}: {a} vs {b} (step {step})");
            if d > 1e-6 {
                differing += 1;
            }
        } else {
            prop_assert!(d <= 1e-5 * scale, "element {i}: {a} vs {b}");
        }
    }
    // Float noise puts about one value in a thousand near a rounding boundary; an int32 bias
    // moves values by up to `bias_shift` steps, across a boundary for about 2·shift of them.
    let allowed = want.len().max(1000) / 1000 + (want.len() as f32 * 4.0 * bias_shift) as usize;
    prop_assert!(differing <= allowed, "{differing} of {} elements differ (allowed {allowed})", want.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn fused_qconv_matches_the_qdq_graph(case in case(), threads in 1usize..3) {
        check(&case, threads)?;
    }
}

/// Sizes of real networks: deep pointwise convs (several depth blocks), large maps (several
/// column blocks), wide depthwise layers.
fn large_case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just((960usize, 160usize, 1usize, 7usize)),
            Just((128, 96, 3, 7)),
            Just((32, 96, 1, 56)),
            Just((144, 144, 3, 28)),
            Just((64, 64, 3, 20))
        ],
        any::<(bool, bool, bool)>(),
        1usize..3,
        any::<u64>(),
    )
        .prop_map(|((c_in, c_out, kernel, hw), (residual, requantize, per_channel), stride, seed)| {
            let depthwise = kernel == 3 && c_in == c_out && hw == 28;
            Case {
                n: 1,
                c_in,
                c_out,
                hw: [hw, hw],
                kernel,
                stride: if kernel == 1 { 1 } else { stride },
                pad: [kernel / 2; 4],
                groups: if depthwise { c_in } else { 1 },
                activation: Activation::Clip { min: 0.0, max: 6.0 },
                residual: residual && stride == 1,
                requantize,
                per_channel,
                seed,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn fused_qconv_matches_the_qdq_graph_at_network_sizes(case in large_case(), threads in 1usize..3) {
        check(&case, threads)?;
    }
}

/// A QDQ fully connected layer `[B, K] x [K, N]`: fused into a 1x1 QConv between reshapes
/// (a matrix-vector kernel for clamp-like activations, the GEMM otherwise).
fn qdq_fc(
    batch: usize,
    k: usize,
    n: usize,
    activation: Activation,
    requantize: bool,
    seed: u64,
) -> (Graph, Tensor, Option<f32>) {
    let mut s = seed | 1;
    let mut rand = |lo: f32, hi: f32| lo + (hi - lo) * lcg(&mut s);
    let mut b = GraphBuilder::new("qdq_fc");
    let x = b.input("x", DType::F32, &[batch, k]);
    let xs = b.constant("xs", Tensor::scalar(rand(0.005, 0.03)));
    let xz = b.constant("xz", Tensor::scalar(rand(0.0, 255.0) as u8));
    let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[x, xs, xz]).unwrap();
    let dq = b.node(Op::DequantizeLinear { axis: 1 }, &[q, xs, xz]).unwrap();
    let wq: Vec<i8> = (0..k * n).map(|_| rand(-127.0, 127.99).floor() as i8).collect();
    let w = b.constant("w", Tensor::from_vec(&[k, n], wq).unwrap());
    let ws: Vec<f32> = (0..n).map(|_| rand(0.001, 0.01)).collect();
    let ws = b.constant("ws", Tensor::from_vec(&[n], ws).unwrap());
    let wdq = b.node(Op::DequantizeLinear { axis: 1 }, &[w, ws]).unwrap();
    let bias: Vec<f32> = (0..n).map(|_| rand(-1.0, 1.0)).collect();
    let bias = b.constant("b", Tensor::from_vec(&[n], bias).unwrap());
    let y = b.node(Op::FullyConnected(lithe_ir::op::FcAttrs { activation }), &[dq, wdq, bias]).unwrap();
    let mut out_scale = None;
    let y = if requantize {
        let v = rand(0.01, 0.05);
        out_scale = Some(v);
        let ys = b.constant("ys", Tensor::scalar(v));
        let yz = b.constant("yz", Tensor::scalar(rand(0.0, 200.0) as u8));
        let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[y, ys, yz]).unwrap();
        b.node(Op::DequantizeLinear { axis: 1 }, &[q, ys, yz]).unwrap()
    } else {
        y
    };
    b.output(y);
    let mut s2 = seed.rotate_left(9) | 1;
    let xv: Vec<f32> = (0..batch * k).map(|_| -1.0 + 3.0 * lcg(&mut s2)).collect();
    (b.finish().unwrap(), Tensor::from_vec(&[batch, k], xv).unwrap(), out_scale)
}

#[test]
fn fused_fully_connected_matches_the_qdq_graph() {
    let acts = [Activation::None, Activation::Relu, Activation::Clip { min: 0.0, max: 6.0 }, Activation::HardSwish];
    for (i, act) in acts.into_iter().enumerate() {
        for (batch, k, n, requantize) in
            [(1, 1280, 1000, false), (3, 37, 21, true), (2, 300, 64, false), (1, 17, 5, true)]
        {
            let seed = 1000 + i as u64 * 31 + (k * n) as u64;
            let (qdq, x, out_scale) = qdq_fc(batch, k, n, act, requantize, seed);
            let (reference, fused) = optimized_both_ways(qdq);
            assert_eq!(op_count(&fused, "QConv"), 1, "{act:?} {batch}x{k}x{n}");
            assert_eq!(op_count(&fused, "FullyConnected"), 0);
            let (want, got) = (run(reference, &x, 1), run(fused, &x, 2));
            let tol = out_scale.map_or(1e-5 * want.iter().fold(1.0f32, |m, v| m.max(v.abs())), |s| s * 1.001);
            for (j, (a, b)) in want.iter().zip(&got).enumerate() {
                assert!((a - b).abs() <= tol, "{act:?} {batch}x{k}x{n} element {j}: {a} vs {b}");
            }
        }
    }
}
