//! Every int8 GEMM microkernel this CPU supports (`sdot` with dotprod, `smlal`), through the
//! driver and the conv paths, against the reference kernels (the shared conformance suites of
//! `lithe-kernels` plus random cases); results must be bit-identical. Off AArch64 there are no
//! kernels and the tests pass trivially; run them with `cargo xtask test-arm`.

use lithe_kernels::int8::I8GemmMicrokernel;
use lithe_kernels::int8::QConvGeometry;
use lithe_kernels::int8::conformance::{
    ALL_OUTPUTS, I8GemmCase, QConvCase, all_activations, check_case, check_conv_case, run_conv_suite, run_suite,
};
use lithe_kernels_arm::{available_i8_gemm, best_i8_gemm, detect_i8_gemm};
use proptest::prelude::*;

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

fn arb_case() -> impl Strategy<Value = I8GemmCase> {
    (
        (1usize..70, 1usize..100, 0usize..700, any::<u8>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), 0usize..4, 0usize..4),
        (0usize..3, any::<bool>(), 1usize..3, any::<u64>()),
    )
        .prop_map(|((m, n, k, zp), (pc, bias, bi, act, out), (pad, source, threads, seed))| I8GemmCase {
            m,
            n,
            k,
            x_zp: [0, 128, zp, 255][seed as usize % 4],
            per_channel: pc,
            bias,
            bias_i32: bi,
            activation: all_activations()[act],
            out: ALL_OUTPUTS[out],
            pad,
            source,
            threads,
            seed,
        })
}

fn arb_conv() -> impl Strategy<Value = QConvCase> {
    (
        (1usize..3, 1usize..9, 1usize..9, 1usize..3, 3usize..14, 3usize..14),
        (prop_oneof![Just(1usize), Just(3), Just(5)], 1usize..3, 0usize..3, 1usize..3, any::<bool>()),
        (0usize..4, 0usize..4, any::<bool>(), 1usize..3, any::<u64>()),
    )
        .prop_map(|((n, cg, cog, g, h, w), (k, s, p, d, dw), (act, out, bias, threads, seed))| {
            let k = k.min(h).min(w);
            let p = p.min(k - 1);
            let d = if dw || (k - 1) * d + 1 > h.min(w) { 1 } else { d };
            let (c_in, c_out, groups) = if dw { (g * cg, g * cg, g * cg) } else { (g * cg, g * cog, g) };
            QConvCase {
                n,
                c_in,
                c_out,
                hw: [h, w],
                kernel_hw: [k, k],
                geom: QConvGeometry { strides: [s, s], pads: [p, p, p, p], dilations: [d, d], groups },
                x_zp: [0, 128, (seed >> 8) as u8, 255][seed as usize % 4],
                bias,
                bias_i32: seed % 3 == 0,
                activation: all_activations()[act],
                out: ALL_OUTPUTS[out],
                allow_depthwise: true,
                threads,
                seed,
            }
        })
}

proptest! {
    // An explicit count: `PROPTEST_CASES` does not override it.
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn simd_kernels_match_reference(case in arb_case()) {
        for k in available_i8_gemm() {
            let k: &dyn I8GemmMicrokernel = k;
            prop_assert_eq!(check_case(k, &case), Ok(()));
        }
    }

    #[test]
    fn simd_convs_match_reference(case in arb_conv()) {
        for k in available_i8_gemm() {
            prop_assert_eq!(check_conv_case(k, &case), Ok(()));
        }
    }
}
