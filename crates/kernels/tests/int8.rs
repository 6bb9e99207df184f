//! The int8 frame with the portable microkernel against the reference kernels: the shared
//! conformance suites, random cases, and typed errors on bad arguments.

use lithe_kernels::KernelError;
use lithe_kernels::int8::conformance::{check_case, check_conv_case, run_conv_suite, run_extreme_suite, run_suite};
use lithe_kernels::int8::reference::{QuantValues, i8_gemm_reference};
use lithe_kernels::int8::{
    I8Gemm4x8c4Generic, I8GemmMicrokernel, I8Input, OutputKind, PackedI8Weights, QActivation, QConvGeometry,
    QLinearConv2d, QuantEpilogue, QuantOut, U8MatRef, i8_gemm, s8_to_u8_activations, u8_zero_point_from_s8,
};
use proptest::prelude::*;

#[path = "support/int8_cases.rs"]
mod int8_cases;
use int8_cases::{GENERIC_SIZES, arb_conv_case, arb_gemm_case, arb_residual_conv_case, arb_residual_gemm_case};

static GENERIC: I8Gemm4x8c4Generic = I8Gemm4x8c4Generic;

#[test]
fn gemm_suite_generic() {
    run_suite(&GENERIC).unwrap();
    run_extreme_suite(&GENERIC).unwrap();
}

#[test]
fn conv_suite_generic() {
    run_conv_suite(&GENERIC).unwrap();
}

#[test]
fn reference_small_by_hand() {
    // 1 x 2 output, k = 2: acc = (x - zp)·w.
    let w = [2i8, -3];
    let x = [10u8, 0, 4, 255]; // rows k: [10, 0], [4, 255]
    let ep = QuantEpilogue { x_scale: 0.5, ..Default::default() };
    let got = i8_gemm_reference(1, 2, 2, &w, &x, 4, &[1.0], &ep, OutputKind::I32).unwrap();
    // Column 0: (10 - 4)·2 + (4 - 4)·(-3); column 1: (0 - 4)·2 + (255 - 4)·(-3).
    assert_eq!(got, QuantValues::I32(vec![12, -8 - 753]));
    // y = acc·0.5 → u8 with scale 1, zp 100; ties go to even: acc 12 → 6; -761 → -380.5 → -380 → clamp 0.
    let got =
        i8_gemm_reference(1, 2, 2, &w, &x, 4, &[1.0], &ep, OutputKind::U8 { scale: 1.0, zero_point: 100 }).unwrap();
    assert_eq!(got, QuantValues::U8(vec![106, 0]));
    let got =
        i8_gemm_reference(1, 1, 1, &[1], &[5], 0, &[1.0], &ep, OutputKind::S8 { scale: 1.0, zero_point: 0 }).unwrap();
    assert_eq!(got, QuantValues::S8(vec![2])); // 2.5 rounds to 2
}

#[test]
fn s8_activation_helper_keeps_differences() {
    let src: Vec<i8> = (-128..=127).collect();
    let mut dst = vec![0u8; src.len()];
    s8_to_u8_activations(&src, &mut dst).unwrap();
    for zp in [-128i8, -3, 0, 77, 127] {
        let uzp = u8_zero_point_from_s8(zp);
        for (&s, &u) in src.iter().zip(&dst) {
            assert_eq!(s as i32 - zp as i32, u as i32 - uzp as i32);
        }
    }
    assert!(s8_to_u8_activations(&src, &mut dst[1..]).is_err());
}

#[test]
fn extreme_depth_is_exact() {
    // Every product at its extreme: 255·(-128) summed over MAX_DEPTH must not overflow.
    let k = lithe_kernels::int8::MAX_DEPTH;
    let w = vec![-128i8; k];
    let x = vec![255u8; k];
    let packed = PackedI8Weights::pack(&GENERIC, 1, k, &w, &[1.0]).unwrap();
    let mut out = [0i32; 1];
    let ep = QuantEpilogue { x_scale: 1.0, ..Default::default() };
    let view = U8MatRef::new(&x, k, 1, 1).unwrap();
    i8_gemm(&GENERIC, &packed, I8Input::Dense(view), 0, &ep, QuantOut::I32(&mut out), 1, 1).unwrap();
    assert_eq!(out[0] as i64, -128 * 255 * k as i64);
    assert!(PackedI8Weights::pack(&GENERIC, 1, k + 1, &vec![0; k + 1], &[1.0]).is_err());
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, KernelError>) -> bool {
    matches!(r, Err(KernelError::Invalid { .. }))
}

#[test]
fn bad_arguments_are_typed_errors() {
    let w = vec![1i8; 6];
    assert!(is_invalid(PackedI8Weights::pack(&GENERIC, 2, 4, &w, &[1.0])));
    assert!(is_invalid(PackedI8Weights::pack(&GENERIC, 2, 3, &w, &[1.0, 2.0, 3.0])));
    assert!(is_invalid(PackedI8Weights::pack(&GENERIC, 2, 3, &w, &[f32::NAN])));
    let p = PackedI8Weights::pack(&GENERIC, 2, 3, &w, &[1.0]).unwrap();
    let x = vec![0u8; 12];
    let ep = QuantEpilogue { x_scale: 1.0, ..Default::default() };
    let view = U8MatRef::new(&x, 3, 4, 4).unwrap();
    assert!(is_invalid(U8MatRef::new(&x, 3, 5, 4)));
    let mut small = vec![0f32; 7];
    assert!(is_invalid(i8_gemm(&GENERIC, &p, I8Input::Dense(view), 0, &ep, QuantOut::F32(&mut small), 4, 1)));
    let mut out = vec![0u8; 8];
    let bad_scale = QuantOut::U8 { data: &mut out, scale: 0.0, zero_point: 0 };
    assert!(is_invalid(i8_gemm(&GENERIC, &p, I8Input::Dense(view), 0, &ep, bad_scale, 4, 1)));
    let bias = [1.0f32; 3];
    let ep_bad = QuantEpilogue { x_scale: 1.0, bias: Some(&bias), ..Default::default() };
    let mut outf = vec![0f32; 8];
    assert!(is_invalid(i8_gemm(&GENERIC, &p, I8Input::Dense(view), 0, &ep_bad, QuantOut::F32(&mut outf), 4, 1)));
    let view_k = U8MatRef::new(&x, 2, 4, 4).unwrap();
    assert!(is_invalid(i8_gemm(&GENERIC, &p, I8Input::Dense(view_k), 0, &ep, QuantOut::F32(&mut outf), 4, 1)));
    // Conv: bad shapes, bad input lengths, windows larger than the input.
    let g = QConvGeometry::default();
    assert!(is_invalid(QLinearConv2d::prepare(&GENERIC, &[0; 5], [2, 1, 1, 3], &[1.0], g)));
    let conv = QLinearConv2d::prepare(&GENERIC, &[0; 18], [2, 1, 3, 3], &[1.0], g).unwrap();
    assert!(is_invalid(conv.output_shape([1, 2, 3, 3])));
    assert!(is_invalid(conv.output_shape([1, 1, 2, 5])));
    let mut o = vec![0f32; 2];
    assert!(is_invalid(conv.run(&[0; 8], [1, 1, 3, 3], 0, &ep, QuantOut::F32(&mut o), 1)));
    let zero_stride = QConvGeometry { strides: [0, 1], ..g };
    assert!(is_invalid(QLinearConv2d::prepare(&GENERIC, &[0; 18], [2, 1, 3, 3], &[1.0], zero_stride)));
}

#[test]
fn depthwise_takes_the_direct_kernel() {
    let geom = QConvGeometry { strides: [2, 2], pads: [1; 4], dilations: [1, 1], groups: 4 };
    let c = QLinearConv2d::prepare(&GENERIC, &[1; 36], [4, 1, 3, 3], &[1.0], geom).unwrap();
    assert!(c.is_depthwise());
    let dil = QConvGeometry { dilations: [2, 2], ..geom };
    let c = QLinearConv2d::prepare(&GENERIC, &[1; 36], [4, 1, 3, 3], &[1.0], dil).unwrap();
    assert!(!c.is_depthwise());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn generic_gemm_matches_reference(case in arb_gemm_case(GENERIC_SIZES)) {
        prop_assert_eq!(check_case(&GENERIC, &case), Ok(()));
    }

    #[test]
    fn generic_conv_matches_reference(case in arb_conv_case(GENERIC_SIZES)) {
        prop_assert_eq!(check_conv_case(&GENERIC, &case), Ok(()));
    }

    #[test]
    fn generic_residual_epilogue_matches_reference(case in arb_residual_gemm_case(GENERIC_SIZES)) {
        prop_assert_eq!(check_case(&GENERIC, &case), Ok(()));
    }

    #[test]
    fn generic_residual_conv_matches_reference(case in arb_residual_conv_case(GENERIC_SIZES)) {
        prop_assert_eq!(check_conv_case(&GENERIC, &case), Ok(()));
    }
}

#[test]
fn names_and_activation_bounds() {
    assert_eq!(GENERIC.name(), "qu8s8_gemm_4x8c4__generic");
    assert_eq!(QActivation::Relu.bounds(), Some((0.0, f32::INFINITY)));
}

/// The residual epilogue is the separate f32 pass it replaces: `y = acc·scale + bias`, `y + r`,
/// then `FastActivation`'s Relu/Clip (NaN and -0.0 kept), bit for bit.
#[test]
fn residual_epilogue_equals_the_separate_pass() {
    use lithe_kernels::fast::FastActivation;
    use lithe_kernels::int8::{dequant, dequant_residual};
    let acts = [
        (None, FastActivation::None),
        (Some((0.0, f32::INFINITY)), FastActivation::Relu),
        (Some((0.0, 6.0)), FastActivation::Clip { min: 0.0, max: 6.0 }),
        (Some((3.0, 1.0)), FastActivation::Clip { min: 3.0, max: 1.0 }),
    ];
    let residuals = [0.0, -0.0, 1.5, -7.25, 1e-30, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
    for (clamp, act) in acts {
        for acc in [0, 1, -1, 12_345, -98_765, i32::MAX] {
            for bias in [0.0f32, -0.0, 0.75, -3.5] {
                for &r in &residuals {
                    let mut sep = [dequant(acc, 0.0123, bias, None) + r];
                    act.apply_row(&mut sep);
                    let got = dequant_residual(acc, 0.0123, bias, r, clamp);
                    assert_eq!(got.to_bits(), sep[0].to_bits(), "acc {acc} bias {bias} r {r} clamp {clamp:?}");
                }
            }
        }
    }
}
