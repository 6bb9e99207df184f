//! Reference pooling kernels: hand-computed cases for every attribute and, for the 5x5 edge
//! cases, literal expected values that came from onnxruntime 1.32.

use lithe_ir::Tensor;
use lithe_ir::op::{AutoPad, AvgPoolAttrs, PoolAttrs};
use lithe_kernels::KernelError;
use lithe_kernels::reference::pool::{average_pool, global_average_pool, global_max_pool, max_pool};

fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape, data).unwrap()
}

/// 1..=n in row-major order.
fn seq(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t(shape, (1..=n).map(|v| v as f32).collect())
}

fn pa(kernel: &[usize], strides: &[usize], pads: &[usize]) -> PoolAttrs {
    PoolAttrs { kernel_shape: kernel.to_vec(), strides: strides.to_vec(), pads: pads.to_vec(), ..Default::default() }
}

fn avg(pool: PoolAttrs, count_include_pad: bool) -> AvgPoolAttrs {
    AvgPoolAttrs { pool, count_include_pad }
}

fn check(y: &Tensor, shape: &[usize], expected: &[f32]) {
    assert_eq!(y.shape(), shape);
    let got = y.to_f32_vec();
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() <= 1e-5 * e.abs().max(1.0), "element {i}: got {g}, expected {e} (all: {got:?})");
    }
}

#[test]
fn max_pool_4x4() {
    let x = seq(&[1, 1, 4, 4]);
    check(&max_pool(&pa(&[2, 2], &[2, 2], &[]), &x).unwrap(), &[1, 1, 2, 2], &[6.0, 8.0, 14.0, 16.0]);
    // 3x3 neighbourhood max with one pad on each side, stride 1.
    check(
        &max_pool(&pa(&[3, 3], &[], &[1, 1, 1, 1]), &x).unwrap(),
        &[1, 1, 4, 4],
        &[6.0, 7.0, 8.0, 8.0, 10.0, 11.0, 12.0, 12.0, 14.0, 15.0, 16.0, 16.0, 14.0, 15.0, 16.0, 16.0],
    );
}

#[test]
fn max_pool_ceil_mode() {
    // 4x4, k3 s2: floor gives 1x1, ceil gives 2x2 (the second window starts at 2, inside the input).
    let x = seq(&[1, 1, 4, 4]);
    check(&max_pool(&pa(&[3, 3], &[2, 2], &[]), &x).unwrap(), &[1, 1, 1, 1], &[11.0]);
    let mut a = pa(&[3, 3], &[2, 2], &[]);
    a.ceil_mode = true;
    check(&max_pool(&a, &x).unwrap(), &[1, 1, 2, 2], &[11.0, 12.0, 15.0, 16.0]);
    // From onnxruntime 1.32: 5x5 (1..25), k2 s2 ceil.
    let x = seq(&[1, 1, 5, 5]);
    let mut a = pa(&[2, 2], &[2, 2], &[]);
    a.ceil_mode = true;
    check(&max_pool(&a, &x).unwrap(), &[1, 1, 3, 3], &[7.0, 9.0, 10.0, 17.0, 19.0, 20.0, 22.0, 24.0, 25.0]);
}

#[test]
fn max_pool_auto_pad_and_dilation() {
    // From onnxruntime 1.32, 5x5 input 1..25.
    let x = seq(&[1, 1, 5, 5]);
    let mut a = pa(&[3, 3], &[2, 2], &[]);
    a.auto_pad = AutoPad::SameUpper;
    check(&max_pool(&a, &x).unwrap(), &[1, 1, 3, 3], &[7.0, 9.0, 10.0, 17.0, 19.0, 20.0, 22.0, 24.0, 25.0]);
    let mut a = pa(&[2, 2], &[2, 2], &[]);
    a.auto_pad = AutoPad::SameLower;
    check(&max_pool(&a, &x).unwrap(), &[1, 1, 3, 3], &[1.0, 3.0, 5.0, 11.0, 13.0, 15.0, 21.0, 23.0, 25.0]);
    let mut a = pa(&[2, 2], &[], &[1, 1, 1, 1]);
    a.dilations = vec![2, 2];
    check(
        &max_pool(&a, &x).unwrap(),
        &[1, 1, 5, 5],
        &[
            7.0, 8.0, 9.0, 10.0, 9.0, 12.0, 13.0, 14.0, 15.0, 14.0, 17.0, 18.0, 19.0, 20.0, 19.0, 22.0, 23.0, 24.0,
            25.0, 24.0, 17.0, 18.0, 19.0, 20.0, 19.0,
        ],
    );
}

#[test]
fn max_pool_1d_3d_channels_and_nan() {
    let x = t(&[1, 2, 5], vec![1.0, 3.0, 2.0, 5.0, 4.0, -1.0, -3.0, -2.0, -5.0, -4.0]);
    check(&max_pool(&pa(&[2], &[], &[]), &x).unwrap(), &[1, 2, 4], &[3.0, 3.0, 5.0, 5.0, -1.0, -2.0, -2.0, -4.0]);
    let x = seq(&[1, 1, 2, 2, 2]);
    check(&max_pool(&pa(&[2, 2, 2], &[], &[]), &x).unwrap(), &[1, 1, 1, 1, 1], &[8.0]);
    let x = t(&[1, 1, 4], vec![1.0, f32::NAN, 2.0, 3.0]);
    let y = max_pool(&pa(&[2], &[2], &[]), &x).unwrap().to_f32_vec();
    assert!(y[0].is_nan());
    assert_eq!(y[1], 3.0);
}

#[test]
fn average_pool_4x4() {
    let x = seq(&[1, 1, 4, 4]);
    check(&average_pool(&avg(pa(&[2, 2], &[2, 2], &[]), false), &x).unwrap(), &[1, 1, 2, 2], &[3.5, 5.5, 11.5, 13.5]);
    // k3 s1 pad 1: the corner window holds 1, 2, 5, 6 and five pads.
    let y = average_pool(&avg(pa(&[3, 3], &[], &[1, 1, 1, 1]), false), &x).unwrap().to_f32_vec();
    assert_eq!(y[0], 14.0 / 4.0);
    assert_eq!(y[1], (1.0 + 2.0 + 3.0 + 5.0 + 6.0 + 7.0) / 6.0);
    assert_eq!(y[5], (1..=11).filter(|v| ![4, 8].contains(v)).sum::<i32>() as f32 / 9.0);
    let y = average_pool(&avg(pa(&[3, 3], &[], &[1, 1, 1, 1]), true), &x).unwrap().to_f32_vec();
    assert_eq!(y[0], 14.0 / 9.0);
    assert_eq!(y[1], 24.0 / 9.0);
}

#[test]
fn average_pool_ceil_mode_never_counts_the_extra_positions() {
    // 4x4, k3 s2 ceil, no pads: the second window along each axis covers 2, 3 and one position
    // past the end that is not padding, so it is never counted.
    let x = seq(&[1, 1, 4, 4]);
    for include in [false, true] {
        let mut a = avg(pa(&[3, 3], &[2, 2], &[]), include);
        a.pool.ceil_mode = true;
        let y = average_pool(&a, &x).unwrap();
        check(&y, &[1, 1, 2, 2], &[6.0, 7.5, 12.0, 13.5]);
    }
}

#[test]
fn average_pool_onnxruntime_edge_cases() {
    // Expected values from onnxruntime 1.32 on the 5x5 input 1..25.
    let x = seq(&[1, 1, 5, 5]);
    let cases: [(PoolAttrs, bool, [f32; 9]); 8] = [
        (
            PoolAttrs { ceil_mode: true, ..pa(&[3, 3], &[2, 2], &[1, 1, 1, 1]) },
            false,
            [4.0, 5.5, 7.0, 11.5, 13.0, 14.5, 19.0, 20.5, 22.0],
        ),
        (
            PoolAttrs { ceil_mode: true, ..pa(&[3, 3], &[2, 2], &[1, 1, 1, 1]) },
            true,
            [1.7777778, 3.6666667, 3.1111112, 7.6666665, 13.0, 9.666667, 8.444445, 13.666667, 9.777778],
        ),
        (
            PoolAttrs { ceil_mode: true, ..pa(&[2, 2], &[2, 2], &[]) },
            false,
            [4.0, 6.0, 7.5, 14.0, 16.0, 17.5, 21.5, 23.5, 25.0],
        ),
        (
            PoolAttrs { ceil_mode: true, ..pa(&[2, 2], &[2, 2], &[]) },
            true,
            [4.0, 6.0, 7.5, 14.0, 16.0, 17.5, 21.5, 23.5, 25.0],
        ),
        (
            PoolAttrs { ceil_mode: true, ..pa(&[3, 3], &[2, 2], &[0, 0, 1, 1]) },
            false,
            [7.0, 9.0, 10.0, 17.0, 19.0, 20.0, 22.0, 24.0, 25.0],
        ),
        (
            PoolAttrs { ceil_mode: true, ..pa(&[3, 3], &[2, 2], &[0, 0, 1, 1]) },
            true,
            [7.0, 9.0, 5.0, 17.0, 19.0, 10.0, 11.0, 12.0, 6.25],
        ),
        (
            PoolAttrs { auto_pad: AutoPad::SameUpper, ..pa(&[2, 2], &[2, 2], &[]) },
            false,
            [4.0, 6.0, 7.5, 14.0, 16.0, 17.5, 21.5, 23.5, 25.0],
        ),
        (
            PoolAttrs { auto_pad: AutoPad::SameUpper, ..pa(&[2, 2], &[2, 2], &[]) },
            true,
            [4.0, 6.0, 3.75, 14.0, 16.0, 8.75, 10.75, 11.75, 6.25],
        ),
    ];
    for (pool, include, want) in cases {
        let y = average_pool(&avg(pool.clone(), include), &x).unwrap();
        assert_eq!(y.shape(), &[1, 1, 3, 3], "{pool:?}");
        for (g, e) in y.to_f32_vec().iter().zip(want) {
            assert!((g - e).abs() < 1e-5, "{pool:?} count_include_pad {include}: got {g}, expected {e}");
        }
    }
}

#[test]
fn average_pool_dilation() {
    // From onnxruntime 1.32: 5x5 input 1..25, k2 dilation 2, pads 1.
    let x = seq(&[1, 1, 5, 5]);
    let mut a = avg(pa(&[2, 2], &[], &[1, 1, 1, 1]), false);
    a.pool.dilations = vec![2, 2];
    check(
        &average_pool(&a, &x).unwrap(),
        &[1, 1, 5, 5],
        &[
            7.0, 7.0, 8.0, 9.0, 9.0, 7.0, 7.0, 8.0, 9.0, 9.0, 12.0, 12.0, 13.0, 14.0, 14.0, 17.0, 17.0, 18.0, 19.0,
            19.0, 17.0, 17.0, 18.0, 19.0, 19.0,
        ],
    );
    a.count_include_pad = true;
    check(
        &average_pool(&a, &x).unwrap(),
        &[1, 1, 5, 5],
        &[
            1.75, 3.5, 4.0, 4.5, 2.25, 3.5, 7.0, 8.0, 9.0, 4.5, 6.0, 12.0, 13.0, 14.0, 7.0, 8.5, 17.0, 18.0, 19.0, 9.5,
            4.25, 8.5, 9.0, 9.5, 4.75,
        ],
    );
}

#[test]
fn average_pool_1d_and_3d() {
    let x = t(&[1, 1, 5], vec![1.0, 2.0, 3.0, 4.0, 6.0]);
    check(&average_pool(&avg(pa(&[2], &[2], &[1, 0]), true), &x).unwrap(), &[1, 1, 3], &[0.5, 2.5, 5.0]);
    check(&average_pool(&avg(pa(&[2], &[2], &[1, 0]), false), &x).unwrap(), &[1, 1, 3], &[1.0, 2.5, 5.0]);
    let x = seq(&[2, 1, 2, 2, 2]);
    check(&average_pool(&avg(pa(&[2, 2, 2], &[], &[]), false), &x).unwrap(), &[2, 1, 1, 1, 1], &[4.5, 12.5]);
}

#[test]
fn global_pools() {
    let x = t(&[1, 2, 2, 2], vec![1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0]);
    check(&global_average_pool(&x).unwrap(), &[1, 2, 1, 1], &[2.5, -2.5]);
    check(&global_max_pool(&x).unwrap(), &[1, 2, 1, 1], &[4.0, -1.0]);
    let x = seq(&[2, 1, 3]);
    check(&global_average_pool(&x).unwrap(), &[2, 1, 1], &[2.0, 5.0]);
    check(&global_max_pool(&x).unwrap(), &[2, 1, 1], &[3.0, 6.0]);
    let x = seq(&[1, 1, 2, 1, 2]);
    check(&global_average_pool(&x).unwrap(), &[1, 1, 1, 1, 1], &[2.5]);
}

#[test]
fn pool_errors() {
    let x = seq(&[1, 4]);
    assert!(matches!(max_pool(&pa(&[2], &[], &[]), &x), Err(KernelError::Invalid { op: "MaxPool", .. })));
    let x = seq(&[1, 1, 4, 4]);
    // Kernel with the wrong number of axes, bad strides length, kernel larger than the input.
    assert!(matches!(max_pool(&pa(&[2], &[], &[]), &x), Err(KernelError::Invalid { .. })));
    assert!(matches!(average_pool(&avg(pa(&[2, 2], &[1], &[]), false), &x), Err(KernelError::Invalid { .. })));
    assert!(matches!(max_pool(&pa(&[5, 5], &[], &[]), &x), Err(KernelError::Invalid { .. })));
    assert!(matches!(max_pool(&pa(&[0, 1], &[], &[]), &x), Err(KernelError::Invalid { .. })));
    let xi = Tensor::from_vec(&[1, 1, 2, 2], vec![1i64, 2, 3, 4]).unwrap();
    assert!(matches!(max_pool(&pa(&[2, 2], &[], &[]), &xi), Err(KernelError::Unsupported { .. })));
    assert!(matches!(global_average_pool(&xi), Err(KernelError::Unsupported { .. })));
    assert!(matches!(global_max_pool(&t(&[3], vec![1.0; 3])), Err(KernelError::Invalid { .. })));
}

#[test]
fn degenerate_shapes_do_not_panic() {
    let y = max_pool(&pa(&[2, 2], &[], &[]), &t(&[0, 3, 2, 2], vec![])).unwrap();
    assert_eq!(y.shape(), &[0, 3, 1, 1]);
    let y = average_pool(&avg(pa(&[1, 1], &[], &[]), true), &t(&[1, 0, 2, 2], vec![])).unwrap();
    assert_eq!(y.shape(), &[1, 0, 2, 2]);
    let huge = 1usize << 40;
    let r = max_pool(&pa(&[1, 1], &[], &[huge, huge, huge, huge]), &seq(&[1, 1, 2, 2]));
    assert!(matches!(r, Err(KernelError::Invalid { .. })), "{r:?}");
    let y = global_average_pool(&t(&[2, 0, 3], vec![])).unwrap();
    assert_eq!(y.shape(), &[2, 0, 1]);
}
