//! The int8 conv with output channels along the vector lanes (`QLinearConv2d::
//! prepare_channel_lanes`) against the reference conv and the position-lane GEMM path: exact
//! equality over positions 1..130, channels 1..100 (not only multiples of 16), depths from 1 to
//! over 1000, zero points, every output kind and activation, residuals and 1-3 threads.
//! Skipped (with a note) on CPUs without AVX-512 VNNI, where the path is never chosen.

use lithe_kernels::int8::reference::{QuantValues, qlinear_conv2d_reference_with_residual};
use lithe_kernels::int8::{I8Gemm4x8c4Generic, OutputKind, QActivation, QConvGeometry, QLinearConv2d, QuantEpilogue};
use proptest::prelude::*;

static GENERIC: I8Gemm4x8c4Generic = I8Gemm4x8c4Generic;

/// One conv case.
#[derive(Clone, Debug)]
struct Case {
    n: usize,
    ci: usize,
    co: usize,
    k: usize,
    stride: usize,
    pad: usize,
    out_hw: [usize; 2],
    x_zp: u8,
    seed: u64,
    bias: bool,
    bias_i32: bool,
    kind: OutputKind,
    activation: QActivation,
    residual: bool,
    threads: usize,
}

/// Deterministic pseudo-random bytes.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

fn arb_kind() -> impl Strategy<Value = OutputKind> {
    prop_oneof![
        Just(OutputKind::I32),
        Just(OutputKind::F32),
        (0.002f32..0.5, any::<u8>()).prop_map(|(scale, zero_point)| OutputKind::U8 { scale, zero_point }),
        (0.002f32..0.5, any::<i8>()).prop_map(|(scale, zero_point)| OutputKind::S8 { scale, zero_point }),
    ]
}

fn arb_activation() -> impl Strategy<Value = QActivation> {
    prop_oneof![
        Just(QActivation::None),
        Just(QActivation::Relu),
        (-2.0f32..1.0, 0.0f32..6.0).prop_map(|(min, d)| QActivation::Clamp { min, max: min + d }),
    ]
}

/// `(c_in, kernel)`: depths 1..9 (1x1 over 1..9 channels, 3x3 over one), mid-size, and over 1000.
fn arb_depth() -> impl Strategy<Value = (usize, usize)> {
    prop_oneof![
        3 => (1usize..=9).prop_map(|ci| (ci, 1)),
        1 => Just((1usize, 3)),
        3 => (10usize..=80, prop_oneof![Just(1usize), Just(3)]),
        1 => (1001usize..=1100).prop_map(|ci| (ci, 1)),
        1 => (112usize..=130).prop_map(|ci| (ci, 3)),
    ]
}

fn arb_case() -> impl Strategy<Value = Case> {
    (
        (1usize..=2, arb_depth(), 1usize..=100, 1usize..=2, 1usize..=13, 1usize..=10),
        (any::<u8>(), any::<u64>(), any::<bool>(), any::<bool>()),
        (arb_kind(), arb_activation(), any::<bool>(), 1usize..=3),
    )
        .prop_map(
            |(
                (n, (ci, k), co, stride, oh, ow),
                (x_zp, seed, bias, bias_i32),
                (kind, activation, residual, threads),
            )| {
                let n = if ci * k * k > 1000 { 1 } else { n };
                let pad = k / 2;
                Case {
                    n,
                    ci,
                    co,
                    k,
                    stride,
                    pad,
                    out_hw: [oh, ow],
                    x_zp,
                    seed,
                    bias,
                    bias_i32,
                    kind,
                    activation,
                    residual: residual && kind != OutputKind::I32,
                    threads,
                }
            },
        )
}

/// Run `c` with the channel-lane path, the position-lane path and the reference; `Ok(false)`
/// when this CPU has no channel-lane kernel.
fn check(c: &Case) -> Result<bool, String> {
    let [oh, ow] = c.out_hw;
    // The input size that gives `oh x ow` outputs.
    let (h, w) = ((oh - 1) * c.stride + c.k - 2 * c.pad, (ow - 1) * c.stride + c.k - 2 * c.pad);
    let x_shape = [c.n, c.ci, h, w];
    let w_shape = [c.co, c.ci, c.k, c.k];
    let x = bytes(c.seed, c.n * c.ci * h * w);
    let wts: Vec<i8> = bytes(c.seed ^ 0x55, c.co * c.ci * c.k * c.k).into_iter().map(|v| v as i8).collect();
    let w_scale: Vec<f32> = bytes(c.seed ^ 0x77, c.co).iter().map(|&v| 1e-4 + v as f32 * 4e-5).collect();
    let bias: Vec<f32> = bytes(c.seed ^ 0x99, c.co).iter().map(|&v| (v as f32 - 128.0) * 0.03).collect();
    let bias_i32: Vec<i32> = bytes(c.seed ^ 0x33, c.co).iter().map(|&v| (v as i32 - 128) * 999).collect();
    let geom = QConvGeometry { strides: [c.stride; 2], pads: [c.pad; 4], dilations: [1, 1], groups: 1 };
    let ep = QuantEpilogue {
        x_scale: 0.0213,
        bias: c.bias.then_some(&bias[..]),
        bias_i32: c.bias_i32.then_some(&bias_i32[..]),
        activation: c.activation,
    };
    let len = c.n * c.co * oh * ow;
    let residual: Option<Vec<f32>> =
        c.residual.then(|| bytes(c.seed ^ 0x11, len).iter().map(|&v| (v as f32 - 100.0) * 0.05).collect());
    let Some(conv) = QLinearConv2d::prepare_channel_lanes(&GENERIC, &wts, w_shape, &w_scale, geom)
        .map_err(|e| format!("prepare: {e}"))?
    else {
        return Ok(false);
    };
    assert!(conv.uses_channel_lanes());
    let (want, shape) = qlinear_conv2d_reference_with_residual(
        &x,
        x_shape,
        c.x_zp,
        &wts,
        w_shape,
        &w_scale,
        &geom,
        &ep,
        residual.as_deref(),
        c.kind,
    )
    .map_err(|e| format!("reference: {e}"))?;
    assert_eq!(shape, [c.n, c.co, oh, ow]);
    let mut got = QuantValues::zeros(c.kind, len);
    conv.run_with_residual(&x, x_shape, c.x_zp, &ep, residual.as_deref(), got.as_out(c.kind), c.threads)
        .map_err(|e| format!("channel lanes: {e}"))?;
    let gemm = QLinearConv2d::prepare(&GENERIC, &wts, w_shape, &w_scale, geom).map_err(|e| format!("{e}"))?;
    let mut old = QuantValues::zeros(c.kind, len);
    gemm.run_with_residual(&x, x_shape, c.x_zp, &ep, residual.as_deref(), old.as_out(c.kind), c.threads)
        .map_err(|e| format!("position lanes: {e}"))?;
    for (what, other) in [("reference", &want), ("position-lane GEMM", &old)] {
        if !same_bits(&got, other) {
            let i = (0..len).find(|&i| got.get(i).to_bits() != other.get(i).to_bits()).unwrap_or(0);
            return Err(format!("differs from the {what} at {i}: {} vs {}", got.get(i), other.get(i)));
        }
    }
    Ok(true)
}

/// Bitwise equality (f32 compared by bits, so NaN and -0.0 count).
fn same_bits(a: &QuantValues, b: &QuantValues) -> bool {
    match (a, b) {
        (QuantValues::F32(a), QuantValues::F32(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn channel_lanes_equal_reference(c in arb_case()) {
        match check(&c) {
            Ok(_) => {}
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

#[test]
fn channel_lanes_edges() {
    // Channel counts around the 16- and 32-lane panels, positions around the 11-position tiles
    // and 32-position panels, the extreme zero points and a ReLU6 into u8 with a residual.
    let mut ran = false;
    for co in [1, 15, 16, 17, 31, 32, 33, 47, 64, 100] {
        for (oh, ow) in [(1, 1), (1, 11), (1, 12), (2, 11), (4, 8), (1, 33), (7, 7), (5, 13), (10, 13)] {
            for (x_zp, kind) in [
                (0, OutputKind::U8 { scale: 0.05, zero_point: 3 }),
                (255, OutputKind::F32),
                (128, OutputKind::S8 { scale: 0.1, zero_point: -7 }),
                (7, OutputKind::I32),
            ] {
                let c = Case {
                    n: 1,
                    ci: 5,
                    co,
                    k: 3,
                    stride: 1,
                    pad: 1,
                    out_hw: [oh, ow],
                    x_zp,
                    seed: (co * 131 + oh * 17 + ow) as u64,
                    bias: true,
                    bias_i32: x_zp == 7,
                    kind,
                    activation: QActivation::Clamp { min: 0.0, max: 6.0 },
                    residual: kind != OutputKind::I32,
                    threads: 1 + co % 3,
                };
                ran |= check(&c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            }
        }
    }
    if !ran {
        eprintln!("no AVX-512 VNNI: the channel-lane int8 kernel was not tested");
    }
}

#[test]
fn chosen_only_for_few_positions_and_enough_channels() {
    let geom = QConvGeometry::default();
    let w = vec![1i8; 128 * 128];
    // The generic GEMM kernel never pairs with the channel-lane path.
    let conv = QLinearConv2d::prepare_for_output(&GENERIC, &w, [128, 128, 1, 1], &[0.1], geom, [7, 7]).unwrap();
    assert!(!conv.uses_channel_lanes());
    // Grouped convs are not supported.
    let grouped = QConvGeometry { groups: 2, ..geom };
    let w2 = vec![1i8; 128 * 64];
    assert!(QLinearConv2d::prepare_channel_lanes(&GENERIC, &w2, [128, 64, 1, 1], &[0.1], grouped).unwrap().is_none());
}
