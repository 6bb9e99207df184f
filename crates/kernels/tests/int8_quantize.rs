//! The fast QuantizeLinear / DequantizeLinear slices against the reference kernels
//! (`reference::quantize`), bit for bit: per tensor and per channel (NCHW axis 1), u8 and s8,
//! random values with halfway points, zeros, huge values, infinities and NaN, any scale, 1 and
//! 2 threads.

use lithe_ir::{DType, Tensor};
use lithe_kernels::int8::{
    QuantElem, dequantize_linear, dequantize_linear_per_channel, quantize_linear, quantize_linear_per_channel,
};
use lithe_kernels::reference::quantize as reference;
use proptest::prelude::*;

/// Inputs that stress the rounding and saturation: multiples of scale/2 (exact halfway
/// points), ordinary values, zeros, huge and non-finite values.
fn arb_x(scale: f32) -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => (-600i32..600).prop_map(move |k| k as f32 * 0.5 * scale),
        4 => -400.0f32..400.0,
        1 => Just(0.0f32),
        1 => Just(-0.0f32),
        1 => prop_oneof![Just(f32::INFINITY), Just(f32::NEG_INFINITY), Just(f32::NAN), Just(1e38f32), Just(-1e38f32)],
        1 => any::<f32>(),
    ]
}

fn arb_scale() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => 1e-3f32..4.0,
        1 => -2.0f32..-1e-3,
        1 => prop_oneof![Just(0.0f32), Just(f32::INFINITY), Just(f32::NAN), Just(1e-38f32), Just(1e30f32)],
    ]
}

/// A `[n, c, h, w]` case: shape, per-channel scales, u8 and s8 zero points, values.
type Case = ([usize; 4], Vec<f32>, Vec<u8>, Vec<i8>, Vec<f32>);

fn arb_case() -> impl Strategy<Value = Case> {
    (1usize..3, 1usize..6, 1usize..9, 1usize..40).prop_flat_map(|(n, c, h, w)| {
        (Just([n, c, h, w]), proptest::collection::vec(arb_scale(), c), any::<u8>()).prop_flat_map(
            move |(shape, scales, s)| {
                let len = n * c * h * w;
                let s0 = if scales[0].is_finite() && scales[0] != 0.0 { scales[0] } else { 0.1 };
                (
                    Just(shape),
                    Just(scales),
                    proptest::collection::vec(any::<u8>(), c),
                    proptest::collection::vec(any::<i8>(), c),
                    proptest::collection::vec(arb_x(s0 * (1.0 + s as f32 / 256.0)), len),
                )
            },
        )
    })
}

fn q_ref(x: &Tensor, scale: &Tensor, zp: &Tensor, to: DType) -> Tensor {
    reference::quantize_linear(x, scale, Some(zp), 1, to).unwrap()
}

fn check<Q: QuantElem + lithe_ir::Element + PartialEq + std::fmt::Debug>(
    shape: [usize; 4],
    x: &[f32],
    scales: &[f32],
    zps: &[Q],
    to: DType,
    threads: usize,
) -> Result<(), TestCaseError> {
    let [n, c, h, w] = shape;
    let xt = Tensor::from_vec(&shape, x.to_vec()).unwrap();
    // Per tensor (channel 0's parameters).
    let want = q_ref(&xt, &Tensor::scalar(scales[0]), &Tensor::scalar(zps[0]), to);
    let mut got = vec![zps[0]; x.len()];
    quantize_linear(x, scales[0], zps[0], &mut got, threads).unwrap();
    prop_assert_eq!(&got[..], want.view::<Q>().unwrap().as_slice().unwrap());
    let mut back = vec![0f32; x.len()];
    dequantize_linear(&got, scales[0], zps[0], &mut back, threads).unwrap();
    let want_back =
        reference::dequantize_linear(&want, &Tensor::scalar(scales[0]), Some(&Tensor::scalar(zps[0])), 1).unwrap();
    let wb = want_back.view::<f32>().unwrap();
    for (g, r) in back.iter().zip(wb.iter()) {
        prop_assert!(g.to_bits() == r.to_bits() || (g.is_nan() && r.is_nan()), "{} vs {}", g, r);
    }
    // Per channel, axis 1 (skipped when c == 1: a one-element scale is per tensor).
    if c > 1 {
        let st = Tensor::from_vec(&[c], scales.to_vec()).unwrap();
        let zt = Tensor::from_vec(&[c], zps.to_vec()).unwrap();
        let want = q_ref(&xt, &st, &zt, to);
        let mut got = vec![zps[0]; x.len()];
        quantize_linear_per_channel(x, scales, zps, h * w, &mut got, threads).unwrap();
        prop_assert_eq!(&got[..], want.view::<Q>().unwrap().as_slice().unwrap());
        let mut back = vec![0f32; x.len()];
        dequantize_linear_per_channel(&got, scales, zps, h * w, &mut back, threads).unwrap();
        let want_back = reference::dequantize_linear(&want, &st, Some(&zt), 1).unwrap();
        let wb = want_back.view::<f32>().unwrap();
        for (g, r) in back.iter().zip(wb.iter()) {
            prop_assert!(g.to_bits() == r.to_bits() || (g.is_nan() && r.is_nan()), "{} vs {}", g, r);
        }
    }
    let _ = n;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn quantize_and_dequantize_match_the_reference((shape, scales, zu, zs, x) in arb_case(), threads in 1usize..3) {
        check::<u8>(shape, &x, &scales, &zu, DType::U8, threads)?;
        check::<i8>(shape, &x, &scales, &zs, DType::I8, threads)?;
    }
}

/// Large enough that two threads split it (and per-channel runs straddle the split).
#[test]
fn threaded_splits_match_one_thread() {
    let (c, hw) = (3, 70_001);
    let x: Vec<f32> = (0..c * hw).map(|i| ((i * 7919) % 2001) as f32 * 0.37 - 370.0).collect();
    let scales = [0.5f32, 1.7, 3.0];
    let zps = [0u8, 128, 255];
    let mut one = vec![0u8; x.len()];
    let mut two = vec![0u8; x.len()];
    quantize_linear_per_channel(&x, &scales, &zps, hw, &mut one, 1).unwrap();
    quantize_linear_per_channel(&x, &scales, &zps, hw, &mut two, 2).unwrap();
    assert_eq!(one, two);
    for (i, (&v, &q)) in x.iter().zip(&one).enumerate() {
        let ch = i / hw;
        assert_eq!(q as i64, reference::quantize_value(v, scales[ch], zps[ch] as i64, 0, 255));
    }
    let mut d1 = vec![0f32; x.len()];
    let mut d2 = vec![0f32; x.len()];
    dequantize_linear(&one, 0.25, 7, &mut d1, 1).unwrap();
    dequantize_linear(&one, 0.25, 7, &mut d2, 2).unwrap();
    assert_eq!(d1, d2);
}

#[test]
fn bad_lengths_are_errors() {
    let x = [1.0f32; 12];
    let mut y = [0u8; 12];
    assert!(quantize_linear(&x, 1.0, 0u8, &mut y[..11], 1).is_err());
    assert!(quantize_linear_per_channel(&x, &[1.0, 2.0], &[0u8], 6, &mut y, 1).is_err());
    assert!(quantize_linear_per_channel(&x, &[1.0; 5], &[0u8; 5], 2, &mut y, 1).is_err());
    assert!(quantize_linear_per_channel(&x, &[1.0; 2], &[0u8; 2], 0, &mut y, 1).is_err());
    let mut f = [0f32; 11];
    assert!(dequantize_linear(&y, 1.0, 0u8, &mut f, 1).is_err());
    assert!(dequantize_linear_per_channel(&y[..11], &[1.0; 2], &[0u8; 2], 3, &mut f, 1).is_err());
}
