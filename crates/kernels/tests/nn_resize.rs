//! Reference Resize: hand-computed values for each coordinate transformation and nearest mode,
//! N-D linear, cubic, tf_crop_and_resize extrapolation, every dtype in nearest mode, errors.
//! Values marked "onnxruntime 1.32" were computed by onnxruntime 1.32 (CPU provider).

use lithe_ir::op::{CoordTransform, NearestMode, ResizeAttrs, ResizeMode};
use lithe_ir::{DType, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::reference::resize::resize;

fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape, data).unwrap()
}

fn scales(v: &[f32]) -> Tensor {
    t(&[v.len()], v.to_vec())
}

fn sizes(v: &[i64]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
}

fn attrs(mode: ResizeMode, coord: CoordTransform) -> ResizeAttrs {
    ResizeAttrs {
        mode,
        coord,
        nearest: NearestMode::RoundPreferFloor,
        cubic_coeff_a: -0.75,
        extrapolation_value: 0.0,
        exclude_outside: false,
    }
}

fn close(got: &Tensor, shape: &[usize], want: &[f32]) {
    assert_eq!(got.shape(), shape);
    let g = got.to_f32_vec();
    assert_eq!(g.len(), want.len(), "{g:?}");
    for (i, (a, e)) in g.iter().zip(want).enumerate() {
        assert!((a - e).abs() <= 2e-6 * e.abs().max(1.0), "element {i}: got {a}, expected {e} (all: {g:?})");
    }
}

/// [1, 2, 4] and [1, 2, 4, 8] as 1x1x1xN.
fn row(v: &[f32]) -> Tensor {
    t(&[1, 1, 1, v.len()], v.to_vec())
}

fn by_size(a: &ResizeAttrs, x: &Tensor, s: &[i64]) -> Tensor {
    resize(a, x, None, None, Some(&sizes(s))).unwrap()
}

fn by_scale(a: &ResizeAttrs, x: &Tensor, s: &[f32]) -> Tensor {
    resize(a, x, None, Some(&scales(s)), None).unwrap()
}

#[test]
fn nearest_upsample_2x() {
    let x = t(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = by_scale(&attrs(ResizeMode::Nearest, CoordTransform::HalfPixel), &x, &[1.0, 1.0, 2.0, 2.0]);
    close(&y, &[1, 1, 4, 4], &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]);
    // Asymmetric 2x (the usual Upsample): x / 2 floors to the same pattern.
    let y = by_scale(&attrs(ResizeMode::Nearest, CoordTransform::Asymmetric), &x, &[1.0, 1.0, 2.0, 2.0]);
    close(&y, &[1, 1, 4, 4], &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]);
}

#[test]
fn nearest_modes_onnxruntime() {
    // onnxruntime 1.32 on [1, 2, 4, 8]: half_pixel to 8, asymmetric to 6, align_corners to 7.
    let x = row(&[1.0, 2.0, 4.0, 8.0]);
    type Case = (NearestMode, [f32; 8], [f32; 6], [f32; 7]);
    let cases: [Case; 4] = [
        (
            NearestMode::RoundPreferFloor,
            [1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0],
            [1.0, 2.0, 2.0, 4.0, 8.0, 8.0],
            [1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0],
        ),
        (
            NearestMode::RoundPreferCeil,
            [1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0],
            [1.0, 2.0, 2.0, 4.0, 8.0, 8.0],
            [1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0],
        ),
        (
            NearestMode::Floor,
            [1.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0],
            [1.0, 1.0, 2.0, 4.0, 4.0, 8.0],
            [1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0],
        ),
        (
            NearestMode::Ceil,
            [1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0, 8.0],
            [1.0, 2.0, 4.0, 4.0, 8.0, 8.0],
            [1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0],
        ),
    ];
    for (mode, half, asym, align) in cases {
        let mut a = attrs(ResizeMode::Nearest, CoordTransform::HalfPixel);
        a.nearest = mode;
        close(&by_size(&a, &x, &[1, 1, 1, 8]), &[1, 1, 1, 8], &half);
        a.coord = CoordTransform::Asymmetric;
        close(&by_size(&a, &x, &[1, 1, 1, 6]), &[1, 1, 1, 6], &asym);
        a.coord = CoordTransform::AlignCorners;
        close(&by_size(&a, &x, &[1, 1, 1, 7]), &[1, 1, 1, 7], &align);
    }
}

#[test]
fn nearest_downsample_onnxruntime() {
    // onnxruntime 1.32: 4x4 input scaled by 0.7 (output floor(2.8) = 2), round_prefer_ceil.
    let x = t(&[1, 1, 4, 4], X16.to_vec());
    let mut a = attrs(ResizeMode::Nearest, CoordTransform::HalfPixel);
    a.nearest = NearestMode::RoundPreferCeil;
    close(&by_scale(&a, &x, &[1.0, 1.0, 0.7, 0.7]), &[1, 1, 2, 2], &[0.0, 2.828427, 22.627417, 31.622776]);
}

#[test]
fn nearest_every_dtype() {
    let a = attrs(ResizeMode::Nearest, CoordTransform::Asymmetric);
    let x = Tensor::from_vec(&[1, 3], vec![7i64, -8, 9]).unwrap();
    let y = resize(&a, &x, None, Some(&scales(&[1.0, 2.0])), None).unwrap();
    assert_eq!(y.view::<i64>().unwrap().iter().copied().collect::<Vec<_>>(), vec![7, 7, -8, -8, 9, 9]);
    let x = Tensor::from_vec(&[2, 1], vec![200u8, 3]).unwrap();
    let y = resize(&a, &x, None, None, Some(&sizes(&[4, 2]))).unwrap();
    assert_eq!(y.dtype(), DType::U8);
    assert_eq!(y.view::<u8>().unwrap().iter().copied().collect::<Vec<_>>(), vec![200, 200, 200, 200, 3, 3, 3, 3]);
    let x = Tensor::from_vec(&[2], vec![true, false]).unwrap();
    let y = resize(&a, &x, None, None, Some(&sizes(&[4]))).unwrap();
    assert_eq!(y.view::<bool>().unwrap().iter().copied().collect::<Vec<_>>(), vec![true, true, false, false]);
}

#[test]
fn bilinear_half_pixel_and_align_corners() {
    let x = t(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = by_scale(&attrs(ResizeMode::Linear, CoordTransform::HalfPixel), &x, &[1.0, 1.0, 2.0, 2.0]);
    close(&y, &[1, 1, 4, 4], &[1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0]);
    let y = by_size(&attrs(ResizeMode::Linear, CoordTransform::AlignCorners), &x, &[1, 1, 3, 3]);
    close(&y, &[1, 1, 3, 3], &[1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]);
}

#[test]
fn linear_1d_asymmetric_and_size_one() {
    let x = t(&[3], vec![1.0, 2.0, 4.0]);
    // Coordinates 0, .5, 1, 1.5, 2, 2.5 (the last clamps to the edge).
    let y =
        resize(&attrs(ResizeMode::Linear, CoordTransform::Asymmetric), &x, None, Some(&scales(&[2.0])), None).unwrap();
    close(&y, &[6], &[1.0, 1.5, 2.0, 3.0, 4.0, 4.0]);
    // pytorch_half_pixel to a single element samples coordinate 0 (onnxruntime 1.32: 1.0).
    let y = by_size(
        &attrs(ResizeMode::Linear, CoordTransform::PytorchHalfPixel),
        &row(&[1.0, 2.0, 4.0, 8.0]),
        &[1, 1, 1, 1],
    );
    close(&y, &[1, 1, 1, 1], &[1.0]);
    // half_pixel to a single element samples the centre.
    let y = by_size(&attrs(ResizeMode::Linear, CoordTransform::HalfPixel), &row(&[1.0, 2.0, 4.0, 8.0]), &[1, 1, 1, 1]);
    close(&y, &[1, 1, 1, 1], &[3.0]);
}

#[test]
fn linear_coordinate_modes_onnxruntime() {
    let x3 = row(&[1.0, 2.0, 4.0]);
    let x4 = row(&[1.0, 2.0, 4.0, 8.0]);
    // Scale 1.5 on 3 elements: output floor(4.5) = 4; align_corners uses the integer length.
    let y = by_scale(&attrs(ResizeMode::Linear, CoordTransform::AlignCorners), &x3, &[1.0, 1.0, 1.0, 1.5]);
    close(&y, &[1, 1, 1, 4], &[1.0, 1.6666667, 2.6666667, 4.0]);
    let y = by_scale(&attrs(ResizeMode::Linear, CoordTransform::HalfPixelSymmetric), &x3, &[1.0, 1.0, 1.0, 1.5]);
    close(&y, &[1, 1, 1, 4], &[1.0, 1.6666666, 2.6666667, 4.0]);
    let y = by_scale(&attrs(ResizeMode::Linear, CoordTransform::HalfPixelSymmetric), &x4, &[1.0, 1.0, 1.0, 0.6]);
    close(&y, &[1, 1, 1, 2], &[1.6666667, 5.333333]);
}

/// The 4x4 input `i^1.5` for i in 0..16 (as numpy computed it for the onnxruntime runs).
const X16: [f32; 16] = [
    0.0, 1.0, 2.828427, 5.1961527, 8.0, 11.18034, 14.696939, 18.520258, 22.627417, 27.0, 31.622776, 36.482872,
    41.56922, 46.872166, 52.3832, 58.09475,
];

#[test]
fn bilinear_pytorch_half_pixel_onnxruntime() {
    let x = t(&[1, 1, 4, 4], X16.to_vec());
    let y = by_size(&attrs(ResizeMode::Linear, CoordTransform::PytorchHalfPixel), &x, &[1, 1, 3, 5]);
    close(
        &y,
        &[1, 1, 3, 5],
        &[
            1.3333335, 2.2877066, 3.7516181, 5.58961, 7.416837, 15.313708, 17.957232, 21.125013, 24.46237, 27.501566,
            38.41225, 42.01577, 46.241634, 50.594017, 54.492767,
        ],
    );
}

#[test]
fn cubic_onnxruntime() {
    let x4 = row(&[1.0, 2.0, 4.0, 8.0]);
    let y = by_size(&attrs(ResizeMode::Cubic, CoordTransform::HalfPixel), &x4, &[1, 1, 1, 3]);
    close(&y, &[1, 1, 1, 3], &[1.1087964, 2.71875, 7.4606495]);
    let mut a = attrs(ResizeMode::Cubic, CoordTransform::HalfPixel);
    a.exclude_outside = true;
    close(&by_size(&a, &x4, &[1, 1, 1, 3]), &[1, 1, 1, 3], &[1.1001064, 2.71875, 7.5037274]);
    let mut a = attrs(ResizeMode::Cubic, CoordTransform::Asymmetric);
    a.cubic_coeff_a = -0.5;
    close(
        &by_scale(&a, &x4, &[1.0, 1.0, 1.0, 1.5]),
        &[1, 1, 1, 6],
        &[1.0, 1.5555558, 2.5185218, 4.0, 6.8888903, 8.296298],
    );
    // pytorch_half_pixel to one element samples coordinate 0 exactly.
    close(
        &by_size(&attrs(ResizeMode::Cubic, CoordTransform::PytorchHalfPixel), &x4, &[1, 1, 1, 1]),
        &[1, 1, 1, 1],
        &[1.0],
    );
    // 2-D bicubic, 4x4 -> 3x5.
    let x = t(&[1, 1, 4, 4], X16.to_vec());
    close(
        &by_size(&attrs(ResizeMode::Cubic, CoordTransform::HalfPixel), &x, &[1, 1, 3, 5]),
        &[1, 1, 3, 5],
        &[
            0.81569684, 1.5997127, 3.0934467, 5.1779637, 6.951994, 14.051378, 16.638288, 20.206583, 24.010334,
            26.991783, 38.789383, 42.25111, 46.95706, 51.857666, 55.645554,
        ],
    );
}

#[test]
fn cubic_at_integer_coordinates_is_exact() {
    // Asymmetric 2x: even outputs land on input samples and reproduce them exactly.
    let x = t(&[5], vec![3.0, -1.0, 4.0, 1.0, -5.0]);
    let y =
        resize(&attrs(ResizeMode::Cubic, CoordTransform::Asymmetric), &x, None, Some(&scales(&[2.0])), None).unwrap();
    let v = y.to_f32_vec();
    assert_eq!([v[0], v[2], v[4], v[6], v[8]], [3.0, -1.0, 4.0, 1.0, -5.0]);
}

#[test]
fn tf_crop_and_resize_onnxruntime() {
    let x4 = row(&[1.0, 2.0, 4.0, 8.0]);
    let a = attrs(ResizeMode::Linear, CoordTransform::TfCropAndResize);
    // A full roi with scale 1.5 behaves like align_corners; the output size ignores the roi.
    let full = t(&[8], vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    let y = resize(&a, &row(&[1.0, 2.0, 4.0]), Some(&full), Some(&scales(&[1.0, 1.0, 1.0, 1.5])), None).unwrap();
    close(&y, &[1, 1, 1, 4], &[1.0, 1.6666667, 2.6666667, 4.0]);
    let roi = t(&[8], vec![0.0, 0.0, 0.0, 0.25, 1.0, 1.0, 1.0, 0.75]);
    let y = resize(&a, &x4, Some(&roi), Some(&scales(&[1.0, 1.0, 1.0, 2.0])), None).unwrap();
    close(&y, &[1, 1, 1, 8], &[1.75, 1.9642857, 2.357143, 2.7857141, 3.2142859, 3.642857, 4.1428566, 5.0]);
    // Outside the input: the extrapolation value.
    let mut a = a;
    a.extrapolation_value = -7.0;
    let roi = t(&[8], vec![0.0, 0.0, 0.0, -0.5, 1.0, 1.0, 1.0, 1.5]);
    let y = resize(&a, &x4, Some(&roi), None, Some(&sizes(&[1, 1, 1, 5]))).unwrap();
    close(&y, &[1, 1, 1, 5], &[-7.0, 1.0, 3.0, 8.0, -7.0]);
    // 2-D: a row or a column outside gives the extrapolation value.
    let mut a = attrs(ResizeMode::Linear, CoordTransform::TfCropAndResize);
    a.extrapolation_value = -1.0;
    let roi = t(&[8], vec![0.0, 0.0, -0.2, 0.1, 1.0, 1.0, 0.8, 1.3]);
    let y = resize(&a, &t(&[1, 1, 4, 4], X16.to_vec()), Some(&roi), None, Some(&sizes(&[1, 1, 3, 3]))).unwrap();
    close(&y, &[1, 1, 3, 3], &[-1.0, -1.0, -1.0, 8.088692, 13.877863, -1.0, 31.627556, 40.447018, -1.0]);
    // Nearest on integers: the extrapolation value converted to the dtype.
    let mut a = attrs(ResizeMode::Nearest, CoordTransform::TfCropAndResize);
    a.extrapolation_value = -3.0;
    let x = Tensor::from_vec(&[3], vec![10i32, 20, 30]).unwrap();
    let roi = t(&[2], vec![0.5, 1.5]);
    let y = resize(&a, &x, Some(&roi), None, Some(&sizes(&[3]))).unwrap();
    assert_eq!(y.view::<i32>().unwrap().iter().copied().collect::<Vec<_>>(), vec![20, 30, -3]);
}

#[test]
fn trilinear_3d() {
    let x = t(&[1, 1, 2, 2, 2], (1..=8).map(|v| v as f32).collect());
    let y = by_size(&attrs(ResizeMode::Linear, CoordTransform::AlignCorners), &x, &[1, 1, 3, 3, 3]);
    assert_eq!(y.shape(), &[1, 1, 3, 3, 3]);
    let v = y.to_f32_vec();
    // Corners keep their values, the centre is the mean, and edge midpoints average two corners.
    assert_eq!([v[0], v[2], v[6], v[8], v[18], v[20], v[24], v[26]], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    assert_eq!(v[13], 4.5);
    assert_eq!(v[1], 1.5);
    assert_eq!(v[9], 3.0);
}

#[test]
fn empty_scales_or_sizes_mean_absent() {
    let x = t(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let a = attrs(ResizeMode::Nearest, CoordTransform::Asymmetric);
    let empty = t(&[0], vec![]);
    let empty_roi = t(&[0], vec![]);
    let y = resize(&a, &x, Some(&empty_roi), Some(&empty), Some(&sizes(&[1, 1, 1, 1]))).unwrap();
    close(&y, &[1, 1, 1, 1], &[1.0]);
    let empty_sizes = Tensor::from_vec(&[0], Vec::<i64>::new()).unwrap();
    let y = resize(&a, &x, None, Some(&scales(&[1.0, 1.0, 0.5, 1.0])), Some(&empty_sizes)).unwrap();
    close(&y, &[1, 1, 1, 2], &[1.0, 2.0]);
}

#[test]
fn resize_errors() {
    let x = t(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let a = attrs(ResizeMode::Linear, CoordTransform::HalfPixel);
    let s = scales(&[1.0, 1.0, 2.0, 2.0]);
    let z = sizes(&[1, 1, 4, 4]);
    let invalid = |r: Result<Tensor, KernelError>| matches!(r, Err(KernelError::Invalid { op: "Resize", .. }));
    assert!(invalid(resize(&a, &x, None, Some(&s), Some(&z))));
    assert!(invalid(resize(&a, &x, None, None, None)));
    assert!(invalid(resize(&a, &x, None, Some(&scales(&[2.0, 2.0])), None)));
    assert!(invalid(resize(&a, &x, None, Some(&scales(&[1.0, 1.0, -2.0, 2.0])), None)));
    assert!(invalid(resize(&a, &x, None, Some(&scales(&[1.0, 1.0, f32::NAN, 2.0])), None)));
    assert!(invalid(resize(&a, &x, None, None, Some(&sizes(&[1, 1, -4, 4])))));
    assert!(invalid(resize(&a, &x, None, Some(&sizes(&[1, 1, 4, 4])), None)));
    assert!(invalid(resize(&a, &x, None, None, Some(&s))));
    assert!(invalid(resize(&a, &x, None, None, Some(&sizes(&[1, 1, 1 << 40, 1 << 40])))));
    let tf = attrs(ResizeMode::Linear, CoordTransform::TfCropAndResize);
    assert!(invalid(resize(&tf, &x, None, Some(&s), None)));
    assert!(invalid(resize(&tf, &x, Some(&t(&[4], vec![0.0, 0.0, 1.0, 1.0])), Some(&s), None)));
    assert!(invalid(resize(&a, &Tensor::scalar(1.0f32), None, None, None)));
    let xi = Tensor::from_vec(&[2], vec![1i64, 2]).unwrap();
    assert!(matches!(resize(&a, &xi, None, Some(&scales(&[2.0])), None), Err(KernelError::Unsupported { .. })));
    let empty_axis = t(&[1, 0], vec![]);
    assert!(invalid(resize(&a, &empty_axis, None, None, Some(&sizes(&[1, 2])))));
}

#[test]
fn degenerate_shapes_do_not_panic() {
    let x = t(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = by_size(&attrs(ResizeMode::Linear, CoordTransform::AlignCorners), &x, &[1, 1, 0, 3]);
    assert_eq!(y.shape(), &[1, 1, 0, 3]);
    // Scales that floor to zero.
    let y = by_scale(&attrs(ResizeMode::Cubic, CoordTransform::HalfPixel), &x, &[1.0, 1.0, 0.1, 1.0]);
    assert_eq!(y.shape(), &[1, 1, 0, 2]);
    let y = by_size(&attrs(ResizeMode::Nearest, CoordTransform::HalfPixel), &t(&[0, 2], vec![]), &[0, 4]);
    assert_eq!(y.shape(), &[0, 4]);
}
