//! Fast NCHW pooling against the reference pools: 2x2s2 and 3x3s2, every padding combination,
//! awkward sizes, count_include_pad both ways; global average; errors.

use lithe_ir::Tensor;
use lithe_ir::op::{AvgPoolAttrs, PoolAttrs};
use lithe_kernels::KernelError;
use lithe_kernels::fast::{DwPads, PoolParams, f32_avgpool2d, f32_global_avgpool, f32_maxpool2d};
use lithe_kernels::gemm::conformance::seeded_values as values;
use lithe_kernels::reference::pool::{average_pool, global_average_pool, max_pool};
use proptest::prelude::*;

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-6 * (1.0 + w.abs());
        assert!(ok, "{what}: element {i}: got {g}, want {w}");
    }
}

fn check(n: usize, c: usize, h: usize, w: usize, k: usize, pads: [usize; 4], seed: u64) {
    let params = PoolParams {
        kernel: k,
        stride: 2,
        pads: DwPads { top: pads[0], left: pads[1], bottom: pads[2], right: pads[3] },
    };
    let Ok((oh, ow)) = params.output_size(h, w) else { return };
    let x = values(n * c * h * w, seed);
    let xt = Tensor::from_vec(&[n, c, h, w], x.clone()).unwrap();
    let pool = PoolAttrs { kernel_shape: vec![k, k], strides: vec![2, 2], pads: pads.to_vec(), ..PoolAttrs::default() };
    let what = format!("{n}x{c}x{h}x{w} k{k} pads {pads:?}");
    let mut got = vec![0.0; n * c * oh * ow];
    f32_maxpool2d(&x, n, c, h, w, &params, &mut got).unwrap();
    close(&got, &max_pool(&pool, &xt).unwrap().to_f32_vec(), &format!("max {what}"));
    for cip in [false, true] {
        f32_avgpool2d(&x, n, c, h, w, &params, cip, &mut got).unwrap();
        let attrs = AvgPoolAttrs { pool: pool.clone(), count_include_pad: cip };
        close(&got, &average_pool(&attrs, &xt).unwrap().to_f32_vec(), &format!("avg cip={cip} {what}"));
    }
}

#[test]
fn all_pads_awkward_sizes() {
    for k in [2, 3] {
        for i in 0..k * k * k * k {
            let pads = [i % k, i / k % k, i / (k * k) % k, i / (k * k * k)];
            for (h, w) in [(1, 1), (2, 3), (7, 7), (13, 6)] {
                check(1, 2, h, w, k, pads, i as u64);
            }
        }
    }
}

proptest! {
    #[test]
    fn matches_reference(n in 1usize..=2, c in 1usize..=5, h in 1usize..=20, w in 1usize..=23,
                         k in 2usize..=3, pads in proptest::array::uniform4(0usize..3), seed in any::<u64>()) {
        check(n, c, h, w, k, pads.map(|p| p % k), seed);
    }

    #[test]
    fn global_average_matches_reference(planes in 1usize..=6, hw in 1usize..=70, seed in any::<u64>()) {
        let x = values(planes * hw, seed);
        let mut got = vec![0.0; planes];
        f32_global_avgpool(&x, planes, hw, &mut got).unwrap();
        let want = global_average_pool(&Tensor::from_vec(&[1, planes, hw], x).unwrap()).unwrap().to_f32_vec();
        close(&got, &want, "global average");
    }
}

#[test]
fn nan_propagates_through_max() {
    let params = PoolParams { kernel: 2, stride: 2, pads: DwPads::default() };
    let mut out = [0.0; 1];
    f32_maxpool2d(&[1.0, f32::NAN, 3.0, 2.0], 1, 1, 2, 2, &params, &mut out).unwrap();
    assert!(out[0].is_nan());
}

#[test]
fn errors() {
    let ok = PoolParams { kernel: 3, stride: 2, pads: DwPads { top: 1, left: 1, bottom: 1, right: 1 } };
    let invalid = |e: Result<(), KernelError>| matches!(e, Err(KernelError::Invalid { .. }));
    let mut out = vec![0.0; 9];
    assert!(invalid(f32_maxpool2d(&[0.0; 35], 1, 1, 6, 6, &ok, &mut out)), "short input");
    assert!(invalid(f32_avgpool2d(&[0.0; 36], 1, 1, 6, 6, &ok, true, &mut out[..8])), "short output");
    let bad = PoolParams { kernel: 3, stride: 1, ..ok };
    assert!(matches!(f32_maxpool2d(&[0.0; 36], 1, 1, 6, 6, &bad, &mut out), Err(KernelError::Unsupported { .. })));
    let bad = PoolParams { pads: DwPads { top: 3, ..ok.pads }, ..ok };
    assert!(matches!(f32_maxpool2d(&[0.0; 36], 1, 1, 6, 6, &bad, &mut out), Err(KernelError::Unsupported { .. })));
    assert!(invalid(f32_global_avgpool(&[0.0; 5], 2, 3, &mut [0.0; 2])));
    assert!(invalid(f32_global_avgpool(&[0.0; 6], 2, 3, &mut [0.0; 3])));
    assert!(invalid(f32_global_avgpool(&[], usize::MAX, 2, &mut [])));
    assert_eq!(f32_maxpool2d(&[], 0, 3, 6, 6, &ok, &mut []), Ok(()));
}
