//! Winograd convs with every SIMD microkernel of this CPU against im2col + GEMM with the same
//! kernel (odd sizes, every padding 0..=2, bias, residual, Relu). Tolerance as in
//! lithe-kernels' tests: `eps(tile) * (C_in * 9 + 2)`.

use lithe_ir::Tensor;
use lithe_ir::op::{Activation, ConvAttrs, Epilogue};
use lithe_kernels::conv2d_gemm::Conv2dGemm;
use lithe_kernels::conv2d_winograd::{Conv2dWinograd, WinogradTile};
use lithe_kernels::gemm::Residual;
use lithe_kernels::gemm::conformance::seeded_values as values;
use lithe_kernels_x86::available_f32_gemm;

#[test]
fn winograd_matches_im2col_on_every_kernel() {
    for kernel in available_f32_gemm() {
        for (tile, eps) in [(WinogradTile::F2x3, 1e-5), (WinogradTile::F4x3, 5e-5), (WinogradTile::F6x3, 5e-4)] {
            for (seed, &(c_in, c_out, h, w, pad)) in
                [(1, 1, 1, 1, 1), (7, 13, 9, 11, 0), (17, 33, 20, 13, 2), (32, 24, 15, 16, 1)].iter().enumerate()
            {
                let seed = seed as u64;
                let attrs = ConvAttrs {
                    pads: vec![pad, pad + 1 - pad.min(1), pad, pad],
                    epilogue: Epilogue { residual: true, activation: Activation::Relu },
                    ..ConvAttrs::default()
                };
                let wt = Tensor::from_vec(&[c_out, c_in, 3, 3], values(c_out * c_in * 9, seed ^ 1)).unwrap();
                let b = Tensor::from_vec(&[c_out], values(c_out, seed ^ 2)).unwrap();
                let x = values(c_in * h * w, seed);
                let gemm = Conv2dGemm::prepare(kernel, &attrs, &wt, Some(&b), None).unwrap();
                let wino = Conv2dWinograd::prepare(kernel, &attrs, &wt, Some(&b), None, tile).unwrap();
                let s = gemm.shape_for(&[1, c_in, h, w]).unwrap();
                let len = c_out * s.output_hw[0] * s.output_hw[1];
                let r = values(len, seed ^ 3);
                let (mut want, mut got) = (vec![0.0; len], vec![0.0; len]);
                let mut scratch = Vec::new();
                gemm.run(&x, &[1, c_in, h, w], Residual::Separate(&r), &mut want, &mut scratch, 1).unwrap();
                wino.run(&x, &[1, c_in, h, w], Residual::Separate(&r), &mut got, &mut scratch, 2).unwrap();
                let tol = eps * ((c_in * 9) as f32 + 2.0);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= tol, "{} {tile:?} case {seed} element {i}: {g} vs {w}", kernel.name());
                }
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Random channels (lane and panel tails), odd sizes, pads, residual in the output or
    /// separate, Relu or none, 1 and 2 threads: Winograd against im2col + GEMM on every kernel.
    #[test]
    fn winograd_matches_im2col_on_random_shapes(
        tile in 0usize..3, c_in in 1usize..40, c_out in 1usize..40, h in 1usize..24, w in 1usize..24,
        pads in [0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2], in_output: bool, relu: bool, threads in 1usize..=2,
        seed: u64,
    ) {
        if h + pads[0] + pads[2] < 3 || w + pads[1] + pads[3] < 3 {
            return Ok(());
        }
        let (tile, eps) = [(WinogradTile::F2x3, 1e-5), (WinogradTile::F4x3, 5e-5), (WinogradTile::F6x3, 5e-4)][tile];
        let activation = if relu { Activation::Relu } else { Activation::None };
        let attrs = ConvAttrs { pads: pads.to_vec(), epilogue: Epilogue { residual: true, activation }, ..ConvAttrs::default() };
        let wt = Tensor::from_vec(&[c_out, c_in, 3, 3], values(c_out * c_in * 9, seed ^ 1)).unwrap();
        let b = Tensor::from_vec(&[c_out], values(c_out, seed ^ 2)).unwrap();
        let x = values(c_in * h * w, seed);
        for kernel in available_f32_gemm() {
            let gemm = Conv2dGemm::prepare(kernel, &attrs, &wt, Some(&b), None).unwrap();
            let wino = Conv2dWinograd::prepare(kernel, &attrs, &wt, Some(&b), None, tile).unwrap();
            let s = gemm.shape_for(&[1, c_in, h, w]).unwrap();
            let len = c_out * s.output_hw[0] * s.output_hw[1];
            let r = values(len, seed ^ 3);
            let mut want = vec![0.0; len];
            let mut scratch = Vec::new();
            gemm.run(&x, &[1, c_in, h, w], Residual::Separate(&r), &mut want, &mut scratch, 1).unwrap();
            let mut got = if in_output { r.clone() } else { vec![f32::NAN; len] };
            let residual = if in_output { Residual::InOutput } else { Residual::Separate(&r) };
            wino.run(&x, &[1, c_in, h, w], residual, &mut got, &mut scratch, threads).unwrap();
            let tol = eps * ((c_in * 9) as f32 + 2.0);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                proptest::prop_assert!((g - w).abs() <= tol, "{} {tile:?} element {i}: {g} vs {w}", kernel.name());
            }
        }
    }
}
