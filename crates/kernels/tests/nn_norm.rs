//! Reference BatchNormalization, LayerNormalization and Softmax: hand-computed values, direct
//! formulas, accuracy on badly conditioned data, errors.

use lithe_ir::Tensor;
use lithe_ir::op::SoftmaxAttrs;
use lithe_kernels::KernelError;
use lithe_kernels::reference::norm::{batch_norm, layer_norm};
use lithe_kernels::reference::softmax::softmax;

fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape, data).unwrap()
}

fn close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, e)) in got.iter().zip(want).enumerate() {
        assert!((g - e).abs() <= tol * e.abs().max(1.0), "element {i}: got {g}, expected {e} (all: {got:?})");
    }
}

#[test]
fn batch_norm_per_channel() {
    // Channel 0: mean 1, var 4, scale 2, bias 0.5 -> (x - 1) / 2 * 2 + 0.5 = x - 0.5.
    // Channel 1: mean -1, var 0.25, scale 1, bias 0 -> (x + 1) * 2.
    let x = t(&[2, 2, 2], vec![1.0, 3.0, 0.0, 1.0, 5.0, -3.0, -1.0, 2.0]);
    let y = batch_norm(
        0.0,
        &x,
        &t(&[2], vec![2.0, 1.0]),
        &t(&[2], vec![0.5, 0.0]),
        &t(&[2], vec![1.0, -1.0]),
        &t(&[2], vec![4.0, 0.25]),
    )
    .unwrap();
    assert_eq!(y.shape(), &[2, 2, 2]);
    close(&y.to_f32_vec(), &[0.5, 2.5, 2.0, 4.0, 4.5, -3.5, 0.0, 6.0], 1e-6);
}

#[test]
fn batch_norm_epsilon_and_ranks() {
    // Rank 2 (N x C): var 0 plus epsilon 1 -> divide by 1.
    let one = |v: f32| t(&[1], vec![v]);
    let y = batch_norm(1.0, &t(&[3, 1], vec![1.0, 2.0, 3.0]), &one(1.0), &one(0.0), &one(2.0), &one(0.0)).unwrap();
    close(&y.to_f32_vec(), &[-1.0, 0.0, 1.0], 1e-6);
    // Rank 5.
    let x = t(&[1, 1, 2, 1, 2], vec![2.0, 4.0, 6.0, 8.0]);
    let y = batch_norm(0.0, &x, &one(3.0), &one(1.0), &one(0.0), &one(4.0)).unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 1, 2]);
    close(&y.to_f32_vec(), &[4.0, 7.0, 10.0, 13.0], 1e-6);
}

#[test]
fn batch_norm_errors() {
    let x = t(&[1, 2, 2], vec![0.0; 4]);
    let p2 = t(&[2], vec![1.0; 2]);
    let p3 = t(&[3], vec![1.0; 3]);
    let e = batch_norm(1e-5, &x, &p2, &p2, &p3, &p2).unwrap_err();
    assert!(matches!(e, KernelError::Invalid { op: "BatchNormalization", .. }));
    assert!(e.to_string().contains("mean"), "{e}");
    assert!(matches!(batch_norm(1e-5, &t(&[2], vec![0.0; 2]), &p2, &p2, &p2, &p2), Err(KernelError::Invalid { .. })));
    let xi = Tensor::from_vec(&[1, 2], vec![1i64, 2]).unwrap();
    assert!(matches!(batch_norm(1e-5, &xi, &p2, &p2, &p2, &p2), Err(KernelError::Unsupported { .. })));
}

/// Layer norm of one row by the textbook formula in f64.
fn direct_layer_norm(row: &[f64], scale: &[f64], bias: &[f64], eps: f64) -> Vec<f32> {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    row.iter().zip(scale.iter().zip(bias)).map(|(v, (s, b))| ((v - mean) / (var + eps).sqrt() * s + b) as f32).collect()
}

#[test]
fn layer_norm_last_axis() {
    // [1, 2, 3, 4]: mean 2.5, variance 1.25.
    let x = t(&[1, 4], vec![1.0, 2.0, 3.0, 4.0]);
    let y = layer_norm(-1, 0.0, &x, &t(&[4], vec![1.0; 4]), None).unwrap();
    let s = 1.25f32.sqrt();
    close(&y.to_f32_vec(), &[-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], 1e-6);
    let y =
        layer_norm(1, 2.75, &x, &t(&[4], vec![2.0, 2.0, 1.0, 1.0]), Some(&t(&[4], vec![0.0, 1.0, 0.0, 1.0]))).unwrap();
    close(&y.to_f32_vec(), &[-1.5 * 2.0 / 2.0, -0.5 * 2.0 / 2.0 + 1.0, 0.5 / 2.0, 1.5 / 2.0 + 1.0], 1e-6);
}

#[test]
fn layer_norm_multiple_axes_and_broadcast_params() {
    // Normalize over the last two axes of 2 x 2 x 3; scale broadcasts from [3], bias from [2, 1].
    let vals: Vec<f32> = vec![1.0, 5.0, 2.0, 8.0, -1.0, 0.5, 3.0, 3.0, 3.0, 3.0, 3.0, 4.0];
    let x = t(&[2, 2, 3], vals.clone());
    let scale = [0.5f32, 1.0, 2.0];
    let bias = [10.0f32, -10.0];
    let y = layer_norm(1, 1e-5, &x, &t(&[3], scale.to_vec()), Some(&t(&[2, 1], bias.to_vec()))).unwrap();
    assert_eq!(y.shape(), &[2, 2, 3]);
    let s6: Vec<f64> = (0..6).map(|i| f64::from(scale[i % 3])).collect();
    let b6: Vec<f64> = (0..6).map(|i| f64::from(bias[i / 3])).collect();
    let mut want = Vec::new();
    for row in vals.chunks(6) {
        let r: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
        want.extend(direct_layer_norm(&r, &s6, &b6, 1e-5));
    }
    close(&y.to_f32_vec(), &want, 1e-5);
}

#[test]
fn layer_norm_is_accurate_on_large_offsets() {
    // A large common offset with small spread: a one-pass f32 variance would lose it all.
    let vals: Vec<f32> = (0..64).map(|i| 10000.0 + (i % 7) as f32 * 0.01).collect();
    let x = t(&[1, 64], vals.clone());
    let y = layer_norm(-1, 1e-9, &x, &t(&[1], vec![1.0]), None).unwrap();
    let r: Vec<f64> = vals.iter().map(|&v| f64::from(v)).collect();
    close(&y.to_f32_vec(), &direct_layer_norm(&r, &[1.0; 64], &[0.0; 64], 1e-9), 1e-5);
}

#[test]
fn layer_norm_errors() {
    let x = t(&[2, 3], vec![0.0; 6]);
    let e = layer_norm(-1, 1e-5, &x, &t(&[2], vec![1.0; 2]), None).unwrap_err();
    assert!(matches!(e, KernelError::Invalid { op: "LayerNormalization", .. }), "{e}");
    assert!(matches!(layer_norm(2, 1e-5, &x, &t(&[3], vec![1.0; 3]), None), Err(KernelError::Invalid { .. })));
    assert!(matches!(layer_norm(-3, 1e-5, &x, &t(&[3], vec![1.0; 3]), None), Err(KernelError::Invalid { .. })));
    assert!(matches!(
        layer_norm(-1, 1e-5, &x, &t(&[3], vec![1.0; 3]), Some(&t(&[4], vec![0.0; 4]))),
        Err(KernelError::Invalid { .. })
    ));
}

fn sm(axis: i64, coerce_2d: bool) -> SoftmaxAttrs {
    SoftmaxAttrs { axis, coerce_2d }
}

#[test]
fn softmax_known_values() {
    let y = softmax(&sm(-1, false), &t(&[3], vec![1.0, 2.0, 3.0])).unwrap();
    close(&y.to_f32_vec(), &[0.09003057, 0.24472847, 0.66524096], 1e-6);
    // Shifting the input does not change the result, and huge values do not overflow.
    let y = softmax(&sm(0, false), &t(&[3], vec![1001.0, 1002.0, 1003.0])).unwrap();
    close(&y.to_f32_vec(), &[0.09003057, 0.24472847, 0.66524096], 1e-6);
    let y = softmax(&sm(0, false), &t(&[2], vec![f32::NEG_INFINITY, 0.0])).unwrap();
    assert_eq!(y.to_f32_vec(), vec![0.0, 1.0]);
}

#[test]
fn softmax_along_middle_axis_matches_direct_formula() {
    let vals: Vec<f32> = (0..24).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.0).collect();
    let x = t(&[2, 3, 4], vals.clone());
    let y = softmax(&sm(1, false), &x).unwrap().to_f32_vec();
    for b in 0..2 {
        for k in 0..4 {
            let idx = |j: usize| b * 12 + j * 4 + k;
            let denom: f64 = (0..3).map(|j| f64::from(vals[idx(j)]).exp()).sum();
            let mut total = 0.0;
            for j in 0..3 {
                let want = (f64::from(vals[idx(j)]).exp() / denom) as f32;
                assert!((y[idx(j)] - want).abs() < 1e-6);
                total += y[idx(j)];
            }
            assert!((total - 1.0).abs() < 1e-6);
        }
    }
}

#[test]
fn softmax_coerce_2d_normalizes_trailing_block() {
    // axis 1 of 2 x 2 x 2 with coerce_2d: each batch row of 4 elements sums to 1.
    let x = t(&[2, 2, 2], vec![0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
    let y = softmax(&sm(1, true), &x).unwrap().to_f32_vec();
    let d: f32 = (0..4).map(|v| (v as f32).exp()).sum();
    close(&y[..4], &[1.0 / d, 1f32.exp() / d, 2f32.exp() / d, 3f32.exp() / d], 1e-6);
    close(&y[4..], &[0.25; 4], 1e-6);
    // The same input with opset-13 semantics normalizes pairs along axis 1 only.
    let y = softmax(&sm(1, false), &x).unwrap().to_f32_vec();
    close(&[y[0] + y[2], y[1] + y[3]], &[1.0, 1.0], 1e-6);
    let e2 = 1.0 / (1.0 + 2f32.exp());
    close(&y[..4], &[e2, e2, 1.0 - e2, 1.0 - e2], 1e-6);
}

#[test]
fn softmax_errors() {
    let x = t(&[2, 2], vec![0.0; 4]);
    assert!(matches!(softmax(&sm(2, false), &x), Err(KernelError::Invalid { op: "Softmax", .. })));
    assert!(matches!(softmax(&sm(0, false), &Tensor::scalar(1.0f32)), Err(KernelError::Invalid { .. })));
    let xi = Tensor::from_vec(&[2], vec![1i32, 2]).unwrap();
    assert!(matches!(softmax(&sm(0, false), &xi), Err(KernelError::Unsupported { .. })));
}

#[test]
fn degenerate_shapes_do_not_panic() {
    let y = softmax(&sm(1, false), &t(&[2, 0, 3], vec![])).unwrap();
    assert_eq!(y.shape(), &[2, 0, 3]);
    let y = softmax(&sm(0, true), &t(&[0, 3], vec![])).unwrap();
    assert_eq!(y.shape(), &[0, 3]);
    let y = layer_norm(1, 1e-5, &t(&[2, 0], vec![]), &t(&[0], vec![]), None).unwrap();
    assert_eq!(y.shape(), &[2, 0]);
    let e = t(&[0], vec![]);
    let y = batch_norm(1e-5, &t(&[3, 0, 2], vec![]), &e, &e, &e, &e).unwrap();
    assert_eq!(y.shape(), &[3, 0, 2]);
}
