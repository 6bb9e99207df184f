//! Every f32 GEMM microkernel this CPU supports, through the driver, against the f64
//! reference (the shared conformance suite of `lithe-kernels` plus random cases). Off AArch64
//! there are no kernels and the tests pass trivially; run them with `cargo xtask test-arm`.

use lithe_kernels::gemm::F32GemmMicrokernel;
use lithe_kernels::gemm::conformance::{Axis, GemmCase, ResidualKind, all_activations, check_case, run_suite};
use lithe_kernels_arm::{available_f32_gemm, detect_f32_gemm};
use proptest::prelude::*;

#[test]
fn suite_for_every_available_kernel() {
    let kernels = available_f32_gemm();
    eprintln!("testing {:?}", kernels.iter().map(|k| k.name()).collect::<Vec<_>>());
    for k in kernels {
        run_suite(k).unwrap();
    }
}

#[test]
fn detection_is_consistent() {
    if let Some(k) = detect_f32_gemm() {
        assert!(available_f32_gemm().iter().any(|a| a.name() == k.name()));
    }
    #[cfg(target_arch = "aarch64")]
    {
        assert_eq!(available_f32_gemm().len(), 1);
        if !lithe_kernels::force_generic() {
            assert_eq!(detect_f32_gemm().map(|k| k.name()), Some("f32_gemm_8x12__neon"));
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        assert!(available_f32_gemm().is_empty());
        assert!(detect_f32_gemm().is_none());
    }
}

fn arb_case() -> impl Strategy<Value = GemmCase> {
    (
        (1usize..70, 1usize..70, 0usize..600),
        (any::<bool>(), any::<bool>(), 0usize..3, any::<bool>(), any::<bool>()),
        (0usize..3, 0usize..3, 0usize..9, 1usize..3, any::<u64>()),
    )
        .prop_map(|((m, n, k), (at, bt, pad, pa, pb), (bias, res, act, threads, seed))| GemmCase {
            m,
            n,
            k,
            a_trans: at,
            b_trans: bt,
            pad,
            pack_a: pa,
            pack_b: pb,
            bias: [Axis::None, Axis::Row, Axis::Col][bias],
            residual: [ResidualKind::None, ResidualKind::Separate, ResidualKind::InOutput][res],
            activation: all_activations()[act],
            threads,
            seed,
        })
}

proptest! {
    // An explicit count: `PROPTEST_CASES` does not override it (about 9 s under qemu).
    #![proptest_config(ProptestConfig::with_cases(150))]
    #[test]
    fn simd_kernels_match_reference(case in arb_case()) {
        for k in available_f32_gemm() {
            let k: &dyn F32GemmMicrokernel = k;
            prop_assert_eq!(check_case(k, &case), Ok(()));
        }
    }
}
