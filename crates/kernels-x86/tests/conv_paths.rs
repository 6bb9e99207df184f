//! Conv and FullyConnected through every SIMD microkernel this CPU has, against the reference
//! kernels on random shapes (groups, pads, strides, dilations, residual, activations).

use lithe_ir::Tensor;
use lithe_ir::op::{Activation, AutoPad, ConvAttrs, Epilogue, FcAttrs, Op};
use lithe_kernels::conv2d_gemm::{Conv2dGemm, ConvUnfold};
use lithe_kernels::fully_connected_gemm::FullyConnectedGemm;
use lithe_kernels::gemm::Residual;
use lithe_kernels::gemm::conformance::{all_activations, seeded_values};
use lithe_kernels::reference;
use lithe_kernels_x86::available_f32_gemm;
use proptest::prelude::*;

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(shape, seeded_values(shape.iter().product(), seed)).unwrap()
}

fn close(got: &[f32], want: &[f32], scale: f32) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        prop_assert!((g - w).abs() <= 1e-5 * scale + 1e-6 * w.abs(), "element {}: {} vs {}", i, g, w);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conv_on_every_simd_kernel_matches_the_reference(
        groups in 1usize..=2, cg in 1usize..=20, mg in 1usize..=40, h in 1usize..=15, w in 1usize..=15,
        k in 1usize..=3, stride in 1usize..=2, pad in 0usize..=1, residual: bool, act in 0usize..9, seed: u64,
    ) {
        prop_assume!(h + 2 * pad >= k && w + 2 * pad >= k);
        let attrs = ConvAttrs {
            kernel_shape: None,
            strides: vec![stride, stride],
            dilations: vec![],
            pads: vec![pad; 4],
            auto_pad: AutoPad::NotSet,
            group: groups,
            epilogue: Epilogue { residual, activation: all_activations()[act] },
        };
        let x = tensor(&[1, groups * cg, h, w], seed);
        let wt = tensor(&[groups * mg, cg, k, k], seed ^ 1);
        let b = tensor(&[groups * mg], seed ^ 2);
        let plain = reference::conv::conv(&ConvAttrs { epilogue: Epilogue::default(), ..attrs.clone() }, &x, &wt, None)?;
        let r = residual.then(|| tensor(plain.shape(), seed ^ 3));
        let slope = matches!(attrs.epilogue.activation, Activation::PRelu).then(|| tensor(&[groups * mg, 1, 1], seed ^ 4));
        let inputs = [Some(&x), Some(&wt), Some(&b), r.as_ref(), slope.as_ref()];
        let want = reference::eval(&Op::Conv(attrs.clone()), &inputs, 1)?.remove(0);
        let rv = r.as_ref().map(Tensor::to_f32_vec);
        for kernel in available_f32_gemm() {
            let mut prepared = Conv2dGemm::prepare(kernel, &attrs, &wt, Some(&b), slope.as_ref())?;
            for unfold in [ConvUnfold::Flat, ConvUnfold::Implicit] {
                prepared.set_unfold(unfold);
                let mut y = vec![f32::NAN; want.len()];
                let res = rv.as_deref().map_or(Residual::None, Residual::Separate);
                prepared.run(&x.to_f32_vec(), x.shape(), res, &mut y, &mut Vec::new(), 1)?;
                close(&y, &want.to_f32_vec(), (cg * k * k) as f32 + 2.0)?;
            }
            if k == 1 && stride == 1 && pad == 0 {
                let sm = Conv2dGemm::prepare_spatial_major(kernel, &attrs, &wt, Some(&b), slope.as_ref())?;
                let mut y = vec![f32::NAN; want.len()];
                let res = rv.as_deref().map_or(Residual::None, Residual::Separate);
                sm.run(&x.to_f32_vec(), x.shape(), res, &mut y, &mut Vec::new(), 2)?;
                close(&y, &want.to_f32_vec(), cg as f32 + 2.0)?;
            }
        }
    }

    #[test]
    fn fully_connected_on_every_simd_kernel_matches_the_reference(
        rows in 1usize..=20, k in 1usize..=70, n in 1usize..=70, act in 0usize..9, seed: u64,
    ) {
        let attrs = FcAttrs { activation: all_activations()[act] };
        let x = tensor(&[rows, k], seed);
        let w = tensor(&[k, n], seed ^ 1);
        let b = tensor(&[n], seed ^ 2);
        let slope = matches!(attrs.activation, Activation::PRelu).then(|| tensor(&[n], seed ^ 3));
        let want = reference::eval(&Op::FullyConnected(attrs), &[Some(&x), Some(&w), Some(&b), slope.as_ref()], 1)?.remove(0);
        for kernel in available_f32_gemm() {
            let prepared = FullyConnectedGemm::prepare(kernel, &attrs, &w, Some(&b), slope.as_ref())?;
            let mut y = vec![f32::NAN; rows * n];
            prepared.run(&x.to_f32_vec(), x.shape(), &mut y, 2)?;
            close(&y, &want.to_f32_vec(), k as f32 + 2.0)?;
        }
    }
}

#[test]
fn this_cpu_has_simd_kernels_to_check_when_it_has_avx2() {
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        assert!(!available_f32_gemm().is_empty());
    }
}
