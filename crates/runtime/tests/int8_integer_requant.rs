//! A QDQ conv with a u8 output becomes a QConv with an int32 bias that requantizes as
//! onnxruntime's `QLinearConv` does: the bias is `round_half_even(B / (x_scale·w_scale))`, then
//! `q = saturate(round_half_even(f32(acc + bias) · ((x_scale·w_scale) / y_scale)) + y_zp)`.
//! The runtime's int8 kernels must give exactly these bytes; the oracle below recomputes them
//! element by element with that formula (exact integer accumulation, the same f32 operations),
//! independently of the kernels and of the reference QConv.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::ConvAttrs;
use lithe_ir::{DType, Graph, Op, Tensor};
use lithe_passes::PassManager;
use lithe_runtime::Predictor;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Case {
    c_in: usize,
    c_out: usize,
    hw: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    depthwise: bool,
    relu: bool,
    per_channel: bool,
    seed: u64,
}

fn lcg(s: &mut u64) -> f32 {
    *s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*s >> 40) as f32) / (1u64 << 24) as f32
}

/// The parameters the graph is built from (the oracle reads them too).
struct Params {
    xs: f32,
    xz: u8,
    w: Vec<i8>,
    ws: Vec<f32>,
    bias: Vec<f32>,
    ys: f32,
    yz: u8,
}

fn params(c: &Case) -> Params {
    let mut s = c.seed | 1;
    let mut r = |lo: f32, hi: f32| lo + (hi - lo) * lcg(&mut s);
    let cig = if c.depthwise { 1 } else { c.c_in };
    let xs = r(0.004, 0.03);
    let xz = r(0.0, 255.0) as u8;
    let w = (0..c.c_out * cig * c.kernel * c.kernel).map(|_| r(-127.0, 127.99).floor() as i8).collect();
    let ws = (0..if c.per_channel { c.c_out } else { 1 }).map(|_| r(0.0005, 0.01)).collect();
    let bias = (0..c.c_out).map(|_| r(-2.0, 2.0)).collect();
    Params { xs, xz, w, ws, bias, ys: r(0.005, 0.06), yz: r(0.0, 160.0) as u8 }
}

fn graph(c: &Case, p: &Params) -> Graph {
    let mut b = GraphBuilder::new("ort_requant");
    let x = b.input("x", DType::F32, &[1, c.c_in, c.hw, c.hw]);
    let xs = b.constant("xs", Tensor::scalar(p.xs));
    let xz = b.constant("xz", Tensor::scalar(p.xz));
    let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[x, xs, xz]).unwrap();
    let dq = b.node(Op::DequantizeLinear { axis: 1 }, &[q, xs, xz]).unwrap();
    let cig = if c.depthwise { 1 } else { c.c_in };
    let w = b.constant("w", Tensor::from_vec(&[c.c_out, cig, c.kernel, c.kernel], p.w.clone()).unwrap());
    let ws = if c.per_channel {
        b.constant("ws", Tensor::from_vec(&[c.c_out], p.ws.clone()).unwrap())
    } else {
        b.constant("ws", Tensor::scalar(p.ws[0]))
    };
    let wdq = b.node(Op::DequantizeLinear { axis: 0 }, &[w, ws]).unwrap();
    let bias = b.constant("b", Tensor::from_vec(&[c.c_out], p.bias.clone()).unwrap());
    let attrs = ConvAttrs {
        strides: vec![c.stride; 2],
        pads: vec![c.pad; 4],
        group: if c.depthwise { c.c_in } else { 1 },
        ..ConvAttrs::default()
    };
    let mut y = b.node(Op::Conv(attrs), &[dq, wdq, bias]).unwrap();
    if c.relu {
        y = b.relu(y).unwrap();
    }
    let ys = b.constant("ys", Tensor::scalar(p.ys));
    let yz = b.constant("yz", Tensor::scalar(p.yz));
    let yq = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[y, ys, yz]).unwrap();
    b.output(yq);
    b.finish().unwrap()
}

fn input(c: &Case) -> Vec<f32> {
    let mut s = c.seed.rotate_left(23) | 1;
    (0..c.c_in * c.hw * c.hw).map(|_| -1.5 + 4.0 * lcg(&mut s)).collect()
}

/// onnxruntime's arithmetic, element by element.
fn oracle(c: &Case, p: &Params, x: &[f32]) -> Vec<u8> {
    let xq: Vec<i32> = x
        .iter()
        .map(|&v| ((v / p.xs).round_ties_even() + f32::from(p.xz)).clamp(0.0, 255.0) as i32 - i32::from(p.xz))
        .collect();
    let (k, hw) = (c.kernel, c.hw);
    let oh = (hw + 2 * c.pad - k) / c.stride + 1;
    let cig = if c.depthwise { 1 } else { c.c_in };
    let mut out = Vec::new();
    for o in 0..c.c_out {
        let ws = p.ws[if c.per_channel { o } else { 0 }];
        let bias_scale = p.xs * ws;
        let bq = (p.bias[o] / bias_scale).round_ties_even() as i64;
        let mult = p.xs * ws / p.ys;
        for oy in 0..oh {
            for ox in 0..oh {
                let mut acc = 0i64;
                for ci in 0..cig {
                    let cx = if c.depthwise { o } else { ci };
                    for ky in 0..k {
                        for kx in 0..k {
                            let (iy, ix) = (
                                (oy * c.stride + ky) as isize - c.pad as isize,
                                (ox * c.stride + kx) as isize - c.pad as isize,
                            );
                            if iy < 0 || ix < 0 || iy >= hw as isize || ix >= hw as isize {
                                continue;
                            }
                            let xv = xq[cx * hw * hw + iy as usize * hw + ix as usize] as i64;
                            acc += xv * i64::from(p.w[((o * cig + ci) * k + ky) * k + kx]);
                        }
                    }
                }
                let mut t = (acc + bq) as f32 * mult;
                if c.relu {
                    t = t.max(0.0);
                }
                let lo = -f32::from(p.yz);
                let hi = 255.0 - f32::from(p.yz);
                out.push((t.clamp(lo, hi).round_ties_even() + f32::from(p.yz)) as u8);
            }
        }
    }
    out
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..20, 1usize..40, 1usize..9, prop_oneof![Just(1usize), Just(3)], 1usize..3, 0usize..2, any::<bool>())
        .prop_flat_map(|(c_in, c_out, hw, kernel, stride, pad, depthwise)| {
            let hw = hw.max(kernel.saturating_sub(2 * pad));
            (Just((c_in, c_out, hw, kernel, stride, pad, depthwise)), any::<bool>(), any::<bool>(), any::<u64>())
        })
        .prop_map(|((c_in, c_out, hw, kernel, stride, pad, depthwise), relu, per_channel, seed)| Case {
            c_in,
            c_out: if depthwise { c_in } else { c_out },
            hw,
            kernel,
            stride,
            pad,
            depthwise,
            relu,
            per_channel,
            seed,
        })
}

/// Network-sized convs: enough outputs (about 10⁵ per case) that a formula off by one f32
/// rounding anywhere (the multiplier's order of operations, the bias rounding) changes some.
fn large_case() -> impl Strategy<Value = Case> {
    (32usize..64, 32usize..64, 14usize..24, prop_oneof![Just(1usize), Just(3)], any::<bool>(), any::<u64>()).prop_map(
        |(c_in, c_out, hw, kernel, relu, seed)| Case {
            c_in,
            c_out,
            hw,
            kernel,
            stride: 1,
            pad: kernel / 2,
            depthwise: false,
            relu,
            per_channel: true,
            seed,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn fused_conv_requantizes_like_onnxruntime_at_network_sizes(c in large_case(), threads in 1usize..3) {
        check(&c, threads)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn fused_conv_requantizes_like_onnxruntime(c in case(), threads in 1usize..3) {
        check(&c, threads)?;
    }
}

/// Fuse, check the int32 bias, run, and compare every byte with the oracle.
fn check(c: &Case, threads: usize) -> Result<(), TestCaseError> {
    let c = c.clone();
    {
        let p = params(&c);
        let mut g = graph(&c, &p);
        PassManager::default_pipeline().run(&mut g).unwrap();
        // One QConv with an int32 bias equal to round_half_even(B / (x_scale·w_scale)).
        let qconvs: Vec<_> = g.node_ids().into_iter().filter(|&id| matches!(g.node(id).op, Op::QConv(_))).collect();
        prop_assert_eq!(qconvs.len(), 1);
        let bias = g.node_inputs(qconvs[0])[5].and_then(|o| g.const_value(o)).expect("a constant bias");
        prop_assert_eq!(bias.dtype(), DType::I32);
        let want_bias: Vec<i32> = (0..c.c_out)
            .map(|o| (p.bias[o] / (p.xs * p.ws[if c.per_channel { o } else { 0 }])).round_ties_even() as i32)
            .collect();
        prop_assert_eq!(bias.view_in_place::<i32>().unwrap().iter().copied().collect::<Vec<_>>(), want_bias);

        let x = input(&c);
        let mut pred = Predictor::new(g).unwrap();
        pred.set_threads(threads);
        let y = pred.run_with(vec![Tensor::from_vec(&[1, c.c_in, c.hw, c.hw], x.clone()).unwrap()]).unwrap().remove(0);
        let got: Vec<u8> = y.view_in_place::<u8>().expect("a u8 output").iter().copied().collect();
        let want = oracle(&c, &p, &x);
        let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        prop_assert_eq!(differing, 0, "{} of {} bytes differ", differing, want.len());
    }
    Ok(())
}

/// A QDQ classifier as onnxruntime writes it, `Gemm(DequantizeLinear(x), DequantizeLinear(W:
/// s8 [N, K]), C)` with `trans_b` and a requantized output, becomes a FullyConnected and then an
/// int8 QConv with the same integer requantization (onnxruntime's `QGemm`), per output row
/// scale or one scale.
#[test]
fn quantized_gemm_classifier_becomes_an_int8_conv() {
    use lithe_ir::op::GemmAttrs;
    for per_channel in [true, false] {
        let (batch, k, n) = (3usize, 37usize, 11usize);
        let mut s = 0x5eed_u64 + u64::from(per_channel);
        let mut r = |lo: f32, hi: f32| lo + (hi - lo) * lcg(&mut s);
        let (xs, xz, ys, yz) = (r(0.01, 0.03), r(0.0, 255.0) as u8, r(0.02, 0.08), r(0.0, 200.0) as u8);
        let w: Vec<i8> = (0..n * k).map(|_| r(-127.0, 127.99).floor() as i8).collect();
        let ws: Vec<f32> = (0..if per_channel { n } else { 1 }).map(|_| r(0.001, 0.01)).collect();
        let bias: Vec<f32> = (0..n).map(|_| r(-1.0, 1.0)).collect();
        let x: Vec<f32> = (0..batch * k).map(|_| r(-1.0, 3.0)).collect();

        let mut b = GraphBuilder::new("qdq_gemm");
        let xi = b.input("x", DType::F32, &[batch, k]);
        let xs_c = b.constant("xs", Tensor::scalar(xs));
        let xz_c = b.constant("xz", Tensor::scalar(xz));
        let q = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[xi, xs_c, xz_c]).unwrap();
        let dq = b.node(Op::DequantizeLinear { axis: 1 }, &[q, xs_c, xz_c]).unwrap();
        let wc = b.constant("w", Tensor::from_vec(&[n, k], w.clone()).unwrap());
        let wsc = if per_channel {
            b.constant("ws", Tensor::from_vec(&[n], ws.clone()).unwrap())
        } else {
            b.constant("ws", Tensor::scalar(ws[0]))
        };
        let wdq = b.node(Op::DequantizeLinear { axis: 0 }, &[wc, wsc]).unwrap();
        let bc = b.constant("b", Tensor::from_vec(&[n], bias.clone()).unwrap());
        let gemm = GemmAttrs { trans_b: true, ..GemmAttrs::default() };
        let y = b.node(Op::Gemm(gemm), &[dq, wdq, bc]).unwrap();
        let ysc = b.constant("ys", Tensor::scalar(ys));
        let yzc = b.constant("yz", Tensor::scalar(yz));
        let yq = b.node(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[y, ysc, yzc]).unwrap();
        b.output(yq);
        let mut g = b.finish().unwrap();
        PassManager::default_pipeline().run(&mut g).unwrap();
        let names: Vec<&str> = g.node_ids().into_iter().map(|id| g.node(id).op.name()).collect();
        assert!(names.contains(&"QConv") && !names.contains(&"Gemm"), "{names:?}");

        let mut p = Predictor::new(g).unwrap();
        let got = p.run_with(vec![Tensor::from_vec(&[batch, k], x.clone()).unwrap()]).unwrap().remove(0);
        let got: Vec<u8> = got.view_in_place::<u8>().unwrap().iter().copied().collect();
        let mut want = Vec::new();
        for row in 0..batch {
            for o in 0..n {
                let wso = ws[if per_channel { o } else { 0 }];
                let acc: i64 = (0..k)
                    .map(|i| {
                        let xq = ((x[row * k + i] / xs).round_ties_even() + f32::from(xz)).clamp(0.0, 255.0) as i64;
                        (xq - i64::from(xz)) * i64::from(w[o * k + i])
                    })
                    .sum();
                let bq = (bias[o] / (xs * wso)).round_ties_even() as i64;
                let t = ((acc + bq) as f32 * (xs * wso / ys)).clamp(-f32::from(yz), 255.0 - f32::from(yz));
                want.push((t.round_ties_even() + f32::from(yz)) as u8);
            }
        }
        assert_eq!(got, want, "per_channel={per_channel}");
    }
}
