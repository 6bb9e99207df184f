//! Every int8 GEMM microkernel this CPU supports, through the driver and the conv paths,
//! against the reference kernels (the shared conformance suites of `lithe-kernels` plus random
//! cases); results must be bit-identical.

use lithe_kernels::int8::I8GemmMicrokernel;
use lithe_kernels::int8::conformance::{check_case, check_conv_case, run_conv_suite, run_extreme_suite, run_suite};
use lithe_kernels_x86::{available_i8_gemm, best_i8_gemm, detect_i8_gemm};
use proptest::prelude::*;

#[path = "../../kernels/tests/support/int8_cases.rs"]
mod int8_cases;
use int8_cases::{SIMD_SIZES, arb_conv_case, arb_gemm_case, arb_residual_conv_case, arb_residual_gemm_case};

#[test]
fn gemm_suite_for_every_available_kernel() {
    let kernels = available_i8_gemm();
    eprintln!("testing {:?}", kernels.iter().map(|k| k.name()).collect::<Vec<_>>());
    for k in kernels {
        run_suite(k).unwrap();
    }
}

#[test]
fn extreme_epilogues_for_every_available_kernel() {
    for k in available_i8_gemm() {
        run_extreme_suite(k).unwrap();
    }
}

#[test]
fn conv_suite_for_every_available_kernel() {
    for k in available_i8_gemm() {
        run_conv_suite(k).unwrap();
    }
}

#[test]
fn detection_is_consistent() {
    if let Some(k) = detect_i8_gemm() {
        assert!(available_i8_gemm().iter().any(|a| a.name() == k.name()));
        assert_eq!(best_i8_gemm().name(), k.name());
    } else {
        assert_eq!(best_i8_gemm().name(), "qu8s8_gemm_4x8c4__generic");
    }
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512f") {
            assert!(available_i8_gemm().iter().any(|k| k.name().ends_with("avx512vnni")));
        }
        if is_x86_feature_detected!("avx2") {
            assert!(available_i8_gemm().iter().any(|k| k.name().ends_with("avx2")));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    #[test]
    fn simd_kernels_match_reference(case in arb_gemm_case(SIMD_SIZES)) {
        for k in available_i8_gemm() {
            let k: &dyn I8GemmMicrokernel = k;
            prop_assert_eq!(check_case(k, &case), Ok(()));
        }
    }

    #[test]
    fn simd_convs_match_reference(case in arb_conv_case(SIMD_SIZES)) {
        for k in available_i8_gemm() {
            prop_assert_eq!(check_conv_case(k, &case), Ok(()));
        }
    }

    #[test]
    fn simd_residual_epilogue_matches_reference(case in arb_residual_gemm_case(SIMD_SIZES)) {
        for k in available_i8_gemm() {
            let k: &dyn I8GemmMicrokernel = k;
            prop_assert_eq!(check_case(k, &case), Ok(()));
        }
    }

    #[test]
    fn simd_residual_convs_match_reference(case in arb_residual_conv_case(SIMD_SIZES)) {
        for k in available_i8_gemm() {
            prop_assert_eq!(check_conv_case(k, &case), Ok(()));
        }
    }
}
