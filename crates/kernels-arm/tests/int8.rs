//! Every int8 GEMM microkernel this CPU supports (`sdot` with dotprod, `smlal`), through the
//! driver and the conv paths, against the reference kernels (the shared conformance suites of
//! `lithe-kernels` plus random cases); results must be bit-identical. Off AArch64 there are no
//! kernels and the tests pass trivially; run them with `cargo xtask test-arm`.

use lithe_kernels::int8::I8GemmMicrokernel;
use lithe_kernels::int8::conformance::{check_case, check_conv_case, run_conv_suite, run_suite};
use lithe_kernels_arm::{available_i8_gemm, best_i8_gemm, detect_i8_gemm};
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
    #[cfg(target_arch = "aarch64")]
    {
        let names: Vec<_> = available_i8_gemm().iter().map(|k| k.name()).collect();
        assert!(names.contains(&"qu8s8_gemm_8x8c1__neon"));
        assert_eq!(names.contains(&"qu8s8_gemm_8x12c4__neondot"), std::arch::is_aarch64_feature_detected!("dotprod"));
        // `cargo xtask test-arm` runs qemu with `-cpu max`, which has dotprod: both paths run.
        if std::env::var("LITHE_EXPECT_DOTPROD").is_ok() {
            assert!(names.contains(&"qu8s8_gemm_8x12c4__neondot"), "dotprod expected, kernels {names:?}");
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        assert!(available_i8_gemm().is_empty());
        assert!(detect_i8_gemm().is_none());
    }
}

proptest! {
    // An explicit count: `PROPTEST_CASES` does not override it.
    #![proptest_config(ProptestConfig::with_cases(48))]
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
