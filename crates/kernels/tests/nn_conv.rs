//! Reference Conv and ConvTranspose: hand-computed cases for every attribute, error cases, and
//! property tests against independent naive formulas (direct sum for Conv, scatter for
//! ConvTranspose).

use lithe_ir::Tensor;
use lithe_ir::op::{AutoPad, ConvAttrs, ConvTransposeAttrs};
use lithe_kernels::KernelError;
use lithe_kernels::reference::conv::conv;
use lithe_kernels::reference::conv_transpose::conv_transpose;
use ndarray::{ArrayD, Dimension, IxDyn};
use proptest::prelude::*;

fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape, data).unwrap()
}

fn seq(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t(shape, (1..=n).map(|v| v as f32).collect())
}

fn attrs(strides: &[usize], dilations: &[usize], pads: &[usize], group: usize) -> ConvAttrs {
    ConvAttrs {
        kernel_shape: None,
        strides: strides.to_vec(),
        dilations: dilations.to_vec(),
        pads: pads.to_vec(),
        auto_pad: AutoPad::NotSet,
        group,
        epilogue: Default::default(),
    }
}

fn check(y: &Tensor, shape: &[usize], expected: &[f32]) {
    assert_eq!(y.shape(), shape);
    let got = y.to_f32_vec();
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "element {i}: got {g}, expected {e} (all: {got:?})");
    }
}

#[test]
fn conv_2d_basic_kernel() {
    // y[i, j] = x[i, j] - x[i + 1, j + 1] = -5 everywhere for x = 1..16 row-major 4x4.
    let w = t(&[1, 1, 2, 2], vec![1.0, 0.0, 0.0, -1.0]);
    let y = conv(&attrs(&[], &[], &[], 1), &seq(&[1, 1, 4, 4]), &w, None).unwrap();
    check(&y, &[1, 1, 3, 3], &[-5.0; 9]);
}

#[test]
fn conv_2d_stride_and_pads() {
    // 3x3 box sums of the 4x4 input padded by 1, stride 2.
    let w = t(&[1, 1, 3, 3], vec![1.0; 9]);
    let y = conv(&attrs(&[2, 2], &[], &[1, 1, 1, 1], 1), &seq(&[1, 1, 4, 4]), &w, None).unwrap();
    check(&y, &[1, 1, 2, 2], &[14.0, 30.0, 57.0, 99.0]);
}

#[test]
fn conv_2d_asymmetric_pads() {
    // Pad only the end of each axis: windows start at 0 and 2, the last one reads the pad.
    let w = t(&[1, 1, 2, 2], vec![1.0; 4]);
    let y = conv(&attrs(&[2, 2], &[], &[0, 0, 1, 1], 1), &seq(&[1, 1, 3, 3]), &w, None).unwrap();
    check(&y, &[1, 1, 2, 2], &[1.0 + 2.0 + 4.0 + 5.0, 3.0 + 6.0, 7.0 + 8.0, 9.0]);
}

#[test]
fn conv_2d_dilation() {
    // x[i][j] + x[i][j+2] + x[i+2][j] + x[i+2][j+2].
    let w = t(&[1, 1, 2, 2], vec![1.0; 4]);
    let y = conv(&attrs(&[], &[2, 2], &[], 1), &seq(&[1, 1, 4, 4]), &w, None).unwrap();
    check(&y, &[1, 1, 2, 2], &[24.0, 28.0, 40.0, 44.0]);
}

#[test]
fn conv_groups_and_bias() {
    // Two groups of two input channels, one output channel each.
    let x = t(&[1, 4, 1, 1], vec![1.0, 2.0, 3.0, 4.0]);
    let w = t(&[2, 2, 1, 1], vec![1.0, 10.0, 100.0, 1000.0]);
    let b = t(&[2], vec![0.5, -0.5]);
    let y = conv(&attrs(&[], &[], &[], 2), &x, &w, Some(&b)).unwrap();
    check(&y, &[1, 2, 1, 1], &[21.5, 4299.5]);
}

#[test]
fn conv_1d_depthwise() {
    let x = t(&[1, 2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let w = t(&[2, 1, 2], vec![1.0, 1.0, 1.0, -1.0]);
    let y = conv(&attrs(&[], &[], &[], 2), &x, &w, None).unwrap();
    check(&y, &[1, 2, 2], &[3.0, 5.0, -1.0, -1.0]);
}

#[test]
fn conv_depthwise_multiplier_two() {
    // group = C_in = 1 with two output channels per group.
    let x = t(&[1, 1, 3], vec![1.0, 2.0, 3.0]);
    let w = t(&[2, 1, 1], vec![2.0, -3.0]);
    let y = conv(&attrs(&[], &[], &[], 1), &x, &w, None).unwrap();
    check(&y, &[1, 2, 3], &[2.0, 4.0, 6.0, -3.0, -6.0, -9.0]);
}

#[test]
fn conv_3d_and_batch() {
    // Two batch items of 2x2x2 volumes; a 2x2x2 kernel of ones sums each.
    let x = seq(&[2, 1, 2, 2, 2]);
    let w = t(&[1, 1, 2, 2, 2], vec![1.0; 8]);
    let y = conv(&attrs(&[], &[], &[], 1), &x, &w, None).unwrap();
    check(&y, &[2, 1, 1, 1, 1], &[36.0, 100.0]);
}

#[test]
fn conv_auto_pad() {
    let x = t(&[1, 1, 5], vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    let w = t(&[1, 1, 2], vec![1.0, 1.0]);
    let mut a = attrs(&[2], &[], &[], 1);
    // Output ceil(5 / 2) = 3 needs one pad: at the end for SAME_UPPER, at the start for SAME_LOWER.
    a.auto_pad = AutoPad::SameUpper;
    check(&conv(&a, &x, &w, None).unwrap(), &[1, 1, 3], &[3.0, 7.0, 5.0]);
    a.auto_pad = AutoPad::SameLower;
    check(&conv(&a, &x, &w, None).unwrap(), &[1, 1, 3], &[1.0, 5.0, 9.0]);
    a.auto_pad = AutoPad::Valid;
    a.pads = vec![3, 3]; // ignored
    check(&conv(&a, &x, &w, None).unwrap(), &[1, 1, 2], &[3.0, 7.0]);
}

#[test]
fn conv_errors_are_clear() {
    let x = seq(&[1, 16, 3, 3]);
    let w = t(&[4, 3, 1, 1], vec![1.0; 12]);
    let e = conv(&attrs(&[], &[], &[], 1), &x, &w, None).unwrap_err();
    assert_eq!(e.to_string(), "Conv: input has 16 channels but weight expects 3 x group 1");
    let w = t(&[4, 16, 1, 1], vec![1.0; 64]);
    let bad_bias = t(&[3], vec![0.0; 3]);
    assert!(matches!(conv(&attrs(&[], &[], &[], 1), &x, &w, Some(&bad_bias)), Err(KernelError::Invalid { .. })));
    // Rank mismatch, rank too small, zero group, group not dividing C_out.
    let w3 = t(&[4, 16, 1], vec![1.0; 64]);
    assert!(matches!(conv(&attrs(&[], &[], &[], 1), &x, &w3, None), Err(KernelError::Invalid { .. })));
    let x2 = seq(&[1, 16]);
    assert!(matches!(conv(&attrs(&[], &[], &[], 1), &x2, &w, None), Err(KernelError::Invalid { .. })));
    assert!(matches!(conv(&attrs(&[], &[], &[], 0), &x, &w, None), Err(KernelError::Invalid { .. })));
    let wg = t(&[3, 8, 1, 1], vec![1.0; 24]);
    assert!(matches!(conv(&attrs(&[], &[], &[], 2), &x, &wg, None), Err(KernelError::Invalid { .. })));
    // Bad attribute lengths, kernel larger than the padded input, kernel_shape mismatch.
    assert!(matches!(conv(&attrs(&[1], &[], &[], 1), &x, &w, None), Err(KernelError::Invalid { .. })));
    let wbig = t(&[1, 16, 4, 4], vec![1.0; 256]);
    assert!(matches!(conv(&attrs(&[], &[], &[], 1), &x, &wbig, None), Err(KernelError::Invalid { .. })));
    let mut a = attrs(&[], &[], &[], 1);
    a.kernel_shape = Some(vec![3, 3]);
    assert!(matches!(conv(&a, &x, &w, None), Err(KernelError::Invalid { .. })));
    // Non-f32 data.
    let xi = Tensor::from_vec(&[1, 1, 1, 1], vec![1i32]).unwrap();
    let wi = t(&[1, 1, 1, 1], vec![1.0]);
    assert!(matches!(conv(&attrs(&[], &[], &[], 1), &xi, &wi, None), Err(KernelError::Unsupported { .. })));
}

#[test]
fn conv_transpose_basic() {
    // Stride 1, one channel: the full convolution [1, 2] * [1, 10, 100].
    let x = t(&[1, 1, 2], vec![1.0, 2.0]);
    let w = t(&[1, 1, 3], vec![1.0, 10.0, 100.0]);
    let y = conv_transpose(&ConvTransposeAttrs { conv: attrs(&[], &[], &[], 1), ..Default::default() }, &x, &w, None)
        .unwrap();
    check(&y, &[1, 1, 4], &[1.0, 12.0, 120.0, 200.0]);
}

fn ct(strides: &[usize], dilations: &[usize], pads: &[usize], output_padding: &[usize]) -> ConvTransposeAttrs {
    ConvTransposeAttrs {
        conv: attrs(strides, dilations, pads, 1),
        output_padding: output_padding.to_vec(),
        output_shape: None,
    }
}

// Expected values for x = [1..5], w = [1, 10, 100] came from onnxruntime 1.32.
const X5: [f32; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];
const W3: [f32; 3] = [1.0, 10.0, 100.0];

#[test]
fn conv_transpose_stride_pads_output_padding() {
    let (x, w) = (t(&[1, 1, 5], X5.to_vec()), t(&[1, 1, 3], W3.to_vec()));
    let y = conv_transpose(&ct(&[2], &[], &[1, 1], &[1]), &x, &w, None).unwrap();
    check(&y, &[1, 1, 10], &[10.0, 102.0, 20.0, 203.0, 30.0, 304.0, 40.0, 405.0, 50.0, 500.0]);
}

#[test]
fn conv_transpose_dilation() {
    let (x, w) = (t(&[1, 1, 5], X5.to_vec()), t(&[1, 1, 3], W3.to_vec()));
    let y = conv_transpose(&ct(&[3], &[2], &[], &[]), &x, &w, None).unwrap();
    check(
        &y,
        &[1, 1, 17],
        &[1.0, 0.0, 10.0, 2.0, 100.0, 20.0, 3.0, 200.0, 30.0, 4.0, 300.0, 40.0, 5.0, 400.0, 50.0, 0.0, 500.0],
    );
}

#[test]
fn conv_transpose_auto_pad_and_output_shape() {
    let (x, w) = (t(&[1, 1, 5], X5.to_vec()), t(&[1, 1, 3], W3.to_vec()));
    let upper = [1.0, 10.0, 102.0, 20.0, 203.0, 30.0, 304.0, 40.0, 405.0, 50.0];
    let lower = [10.0, 102.0, 20.0, 203.0, 30.0, 304.0, 40.0, 405.0, 50.0, 500.0];
    let mut a = ct(&[2], &[], &[], &[]);
    a.conv.auto_pad = AutoPad::SameUpper;
    check(&conv_transpose(&a, &x, &w, None).unwrap(), &[1, 1, 10], &upper);
    a.conv.auto_pad = AutoPad::SameLower;
    check(&conv_transpose(&a, &x, &w, None).unwrap(), &[1, 1, 10], &lower);
    a.output_shape = Some(vec![10]);
    check(&conv_transpose(&a, &x, &w, None).unwrap(), &[1, 1, 10], &lower);
    a.conv.auto_pad = AutoPad::SameUpper;
    check(&conv_transpose(&a, &x, &w, None).unwrap(), &[1, 1, 10], &upper);
}

#[test]
fn conv_transpose_output_shape_notset_odd_padding() {
    let (x, w) = (t(&[1, 1, 5], X5.to_vec()), t(&[1, 1, 3], W3.to_vec()));
    let mut a = ct(&[2], &[], &[], &[]);
    a.output_shape = Some(vec![10]);
    let y = conv_transpose(&a, &x, &w, None).unwrap();
    check(&y, &[1, 1, 10], &[10.0, 102.0, 20.0, 203.0, 30.0, 304.0, 40.0, 405.0, 50.0, 500.0]);
}

#[test]
fn conv_transpose_groups_channels_and_bias() {
    // Two groups, one input and one output channel each, 2x2 kernels.
    let x = t(&[1, 2, 1, 1], vec![1.0, 2.0]);
    let w = t(&[2, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let b = t(&[2], vec![0.5, 1.0]);
    let mut a = ct(&[], &[], &[], &[]);
    a.conv.group = 2;
    let y = conv_transpose(&a, &x, &w, Some(&b)).unwrap();
    check(&y, &[1, 2, 2, 2], &[1.5, 2.5, 3.5, 4.5, 11.0, 13.0, 15.0, 17.0]);
    // One group: both input channels add into each of two output channels.
    let w = t(&[2, 2, 1, 1], vec![3.0, 5.0, 4.0, 6.0]);
    let y = conv_transpose(&ct(&[], &[], &[], &[]), &x, &w, None).unwrap();
    check(&y, &[1, 2, 1, 1], &[11.0, 17.0]);
}

#[test]
fn conv_transpose_errors() {
    let x = seq(&[1, 3, 2, 2]);
    let w = t(&[2, 1, 1, 1], vec![1.0; 2]);
    let e = conv_transpose(&ct(&[], &[], &[], &[]), &x, &w, None).unwrap_err();
    assert!(matches!(e, KernelError::Invalid { op: "ConvTranspose", .. }), "{e}");
    let w = t(&[3, 1, 1, 1], vec![1.0; 3]);
    let mut a = ct(&[], &[], &[], &[]);
    a.conv.group = 2;
    assert!(matches!(conv_transpose(&a, &x, &w, None), Err(KernelError::Invalid { .. })));
    let b = t(&[2], vec![0.0; 2]);
    assert!(matches!(conv_transpose(&ct(&[], &[], &[], &[]), &x, &w, Some(&b)), Err(KernelError::Invalid { .. })));
    // Pads larger than the full output.
    assert!(matches!(
        conv_transpose(&ct(&[], &[], &[2, 2, 2, 2], &[]), &x, &w, None),
        Err(KernelError::Invalid { .. })
    ));
}

/// A deterministic pseudo-random f32 in [-1, 1) per (seed, index).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One spatial axis of a random case: input, kernel, stride, dilation, pad begin, pad end.
#[derive(Clone, Debug)]
struct Ax {
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pb: usize,
    pe: usize,
}

fn axis_strategy() -> impl Strategy<Value = Ax> {
    (1usize..7, 1usize..4, 1usize..4, 1usize..3, 0usize..3, 0usize..3)
        .prop_map(|(input, kernel, stride, dilation, pb, pe)| Ax { input, kernel, stride, dilation, pb, pe })
}

/// Direct convolution: every output element is a sum over channels of its group and kernel
/// taps, reading zero outside the input.
fn naive_conv(x: &ArrayD<f32>, w: &ArrayD<f32>, b: &[f32], axes: &[Ax], group: usize) -> ArrayD<f32> {
    let (n, c_in, c_out) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let (cg, mg) = (c_in / group, c_out / group);
    let out: Vec<usize> =
        axes.iter().map(|a| (a.input + a.pb + a.pe - (a.dilation * (a.kernel - 1) + 1)) / a.stride + 1).collect();
    let mut shape = vec![n, c_out];
    shape.extend(&out);
    let kshape: Vec<usize> = axes.iter().map(|a| a.kernel).collect();
    ArrayD::from_shape_fn(IxDyn(&shape), |idx| {
        let (bi, m) = (idx[0], idx[1]);
        let g = m / mg;
        let mut acc = f64::from(b[m]);
        for c in 0..cg {
            for k in ndarray::indices(IxDyn(&kshape)) {
                let mut xi = vec![bi, g * cg + c];
                let mut inside = true;
                for (d, a) in axes.iter().enumerate() {
                    let p = (idx[2 + d] * a.stride + k[d] * a.dilation) as i64 - a.pb as i64;
                    inside &= p >= 0 && p < a.input as i64;
                    xi.push(p.max(0) as usize);
                }
                if inside {
                    let mut wi = vec![m, c];
                    wi.extend(k.slice());
                    acc += f64::from(x[IxDyn(&xi)]) * f64::from(w[IxDyn(&wi)]);
                }
            }
        }
        acc as f32
    })
}

/// Transposed convolution by scattering: every input element times every kernel tap is added
/// at `i * stride + k * dilation - pad_begin` when that is inside the output.
fn naive_conv_transpose(x: &ArrayD<f32>, w: &ArrayD<f32>, axes: &[Ax], opad: &[usize], group: usize) -> ArrayD<f32> {
    let (n, c_in, mg) = (x.shape()[0], x.shape()[1], w.shape()[1]);
    let cg = c_in / group;
    let out: Vec<usize> = axes
        .iter()
        .zip(opad)
        .map(|(a, op)| a.stride * (a.input - 1) + op + (a.kernel - 1) * a.dilation + 1 - a.pb - a.pe)
        .collect();
    let mut shape = vec![n, mg * group];
    shape.extend(&out);
    let mut y = ArrayD::<f64>::zeros(IxDyn(&shape));
    let kshape: Vec<usize> = axes.iter().map(|a| a.kernel).collect();
    for (xi, &xv) in x.indexed_iter() {
        let (bi, ci) = (xi[0], xi[1]);
        let g = ci / cg;
        for m in 0..mg {
            for k in ndarray::indices(IxDyn(&kshape)) {
                let mut yi = vec![bi, g * mg + m];
                let mut inside = true;
                for (d, a) in axes.iter().enumerate() {
                    let p = (xi[2 + d] * a.stride + k[d] * a.dilation) as i64 - a.pb as i64;
                    inside &= p >= 0 && p < out[d] as i64;
                    yi.push(p.max(0) as usize);
                }
                if inside {
                    let mut wi = vec![ci, m];
                    wi.extend(k.slice());
                    y[IxDyn(&yi)] += f64::from(xv) * f64::from(w[IxDyn(&wi)]);
                }
            }
        }
    }
    y.mapv(|v| v as f32)
}

fn assert_all_close(got: &Tensor, want: &ArrayD<f32>) {
    assert_eq!(got.shape(), want.shape());
    for (g, e) in got.to_f32_vec().iter().zip(want.iter()) {
        assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "got {g}, expected {e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn conv_matches_naive(
        axes in prop::collection::vec(axis_strategy(), 1..4),
        batch in 1usize..3, group in 1usize..4, cg in 1usize..3, mg in 1usize..3,
        bias in any::<bool>(), seed in any::<u64>(),
    ) {
        prop_assume!(axes.iter().all(|a| a.input + a.pb + a.pe > a.dilation * (a.kernel - 1)));
        let (c_in, c_out) = (cg * group, mg * group);
        let mut xs = vec![batch, c_in];
        xs.extend(axes.iter().map(|a| a.input));
        let mut ws = vec![c_out, cg];
        ws.extend(axes.iter().map(|a| a.kernel));
        let xv = noise(seed, xs.iter().product());
        let wv = noise(seed ^ 1, ws.iter().product());
        let bv = if bias { noise(seed ^ 2, c_out) } else { vec![0.0; c_out] };
        let x = t(&xs, xv);
        let w = t(&ws, wv);
        let b = t(&[c_out], bv.clone());
        let mut pads: Vec<usize> = axes.iter().map(|a| a.pb).collect();
        pads.extend(axes.iter().map(|a| a.pe));
        let a = ConvAttrs {
            kernel_shape: None,
            strides: axes.iter().map(|a| a.stride).collect(),
            dilations: axes.iter().map(|a| a.dilation).collect(),
            pads,
            auto_pad: AutoPad::NotSet,
            group,
            epilogue: Default::default(),
        };
        let y = conv(&a, &x, &w, if bias { Some(&b) } else { None }).unwrap();
        let want = naive_conv(x.as_f32().unwrap(), w.as_f32().unwrap(), &bv, &axes, group);
        assert_all_close(&y, &want);
    }

    #[test]
    fn conv_transpose_matches_naive(
        axes in prop::collection::vec(axis_strategy(), 1..4),
        batch in 1usize..3, group in 1usize..3, cg in 1usize..3, mg in 1usize..3,
        opad_seed in any::<u64>(), seed in any::<u64>(),
    ) {
        // output_padding below the stride, as ONNX requires.
        let opad: Vec<usize> = axes.iter().enumerate().map(|(i, a)| ((opad_seed >> (8 * i)) as usize) % a.stride).collect();
        prop_assume!(axes.iter().zip(&opad).all(|(a, op)| {
            a.stride * (a.input - 1) + op + (a.kernel - 1) * a.dilation + 1 > a.pb + a.pe
        }));
        let c_in = cg * group;
        let mut xs = vec![batch, c_in];
        xs.extend(axes.iter().map(|a| a.input));
        let mut ws = vec![c_in, mg];
        ws.extend(axes.iter().map(|a| a.kernel));
        let x = t(&xs, noise(seed, xs.iter().product()));
        let w = t(&ws, noise(seed ^ 7, ws.iter().product()));
        let mut pads: Vec<usize> = axes.iter().map(|a| a.pb).collect();
        pads.extend(axes.iter().map(|a| a.pe));
        let a = ConvTransposeAttrs {
            conv: ConvAttrs {
                kernel_shape: None,
                strides: axes.iter().map(|a| a.stride).collect(),
                dilations: axes.iter().map(|a| a.dilation).collect(),
                pads,
                auto_pad: AutoPad::NotSet,
                group,
                epilogue: Default::default(),
            },
            output_padding: opad.clone(),
            output_shape: None,
        };
        let y = conv_transpose(&a, &x, &w, None).unwrap();
        let want = naive_conv_transpose(x.as_f32().unwrap(), w.as_f32().unwrap(), &axes, &opad, group);
        assert_all_close(&y, &want);
    }
}

#[test]
fn degenerate_shapes_do_not_panic() {
    let w = t(&[1, 1, 2, 2], vec![1.0; 4]);
    let y = conv(&attrs(&[], &[], &[], 1), &t(&[0, 1, 3, 3], vec![]), &w, None).unwrap();
    assert_eq!(y.shape(), &[0, 1, 2, 2]);
    // No input channels: the output is the bias.
    let y = conv(
        &attrs(&[], &[], &[], 1),
        &t(&[1, 0, 2, 2], vec![]),
        &t(&[2, 0, 1, 1], vec![]),
        Some(&t(&[2], vec![1.0, 2.0])),
    )
    .unwrap();
    check(&y, &[1, 2, 2, 2], &[1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
    // An empty spatial axis padded to a valid size reads only padding.
    let y = conv(&attrs(&[], &[], &[1, 0, 1, 0], 1), &t(&[1, 1, 0, 2], vec![]), &t(&[1, 1, 1, 1], vec![3.0]), None)
        .unwrap();
    check(&y, &[1, 1, 2, 2], &[0.0; 4]);
    // Absurd pads are an error, not an allocation.
    let huge = 1usize << 40;
    let r = conv(&attrs(&[], &[], &[huge, huge, huge, huge], 1), &seq(&[1, 1, 2, 2]), &w, None);
    assert!(matches!(r, Err(KernelError::Invalid { .. })), "{r:?}");
    let y =
        conv_transpose(&ct(&[], &[], &[], &[]), &t(&[0, 1, 2], vec![]), &t(&[1, 1, 2], vec![1.0, 1.0]), None).unwrap();
    assert_eq!(y.shape(), &[0, 1, 3]);
    let r = conv_transpose(&ct(&[huge], &[], &[], &[]), &seq(&[1, 1, 3]), &t(&[1, 1, 2], vec![1.0, 1.0]), None);
    assert!(r.is_err());
}
