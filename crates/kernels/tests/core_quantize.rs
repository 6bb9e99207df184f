//! QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear reference kernels: rounding,
//! saturation, per-axis scales, zero points, and rejected inputs.

use lithe_ir::{DType, Element, Op, Tensor};
use lithe_kernels::reference::eval;

fn t<T: Element>(shape: &[usize], v: Vec<T>) -> Tensor {
    Tensor::from_vec(shape, v).unwrap()
}

fn run(op: Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, lithe_kernels::KernelError> {
    eval(&op, inputs, 1).map(|mut v| v.remove(0))
}

fn vals<T: Element>(x: &Tensor) -> Vec<T> {
    x.view::<T>().unwrap().iter().copied().collect()
}

#[test]
fn quantize_rounds_half_to_even_and_saturates() {
    let x = t(&[8], vec![0.0f32, 1.0, 2.5, 3.5, -2.5, 1000.0, -1000.0, f32::NAN]);
    let scale = Tensor::scalar(1.0f32);
    let zp = Tensor::scalar(0i8);
    let q = run(Op::QuantizeLinear { axis: 1, to: DType::I8 }, &[Some(&x), Some(&scale), Some(&zp)]).unwrap();
    assert_eq!(vals::<i8>(&q), vec![0, 1, 2, 4, -2, 127, -128, 0]);

    // u8 with a zero point: x/scale = -0.5 rounds to -0 then +128.
    let x = t(&[5], vec![-1.0f32, 0.0, 0.5, 127.0, -300.0]);
    let scale = Tensor::scalar(2.0f32);
    let zp = Tensor::scalar(128u8);
    let q = run(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[Some(&x), Some(&scale), Some(&zp)]).unwrap();
    assert_eq!(vals::<u8>(&q), vec![128, 128, 128, 192, 0]);
}

#[test]
fn quantize_without_zero_point_gives_the_declared_dtype() {
    let x = t(&[3], vec![-1.0f32, 40000.0, 3.0]);
    let scale = Tensor::scalar(1.0f32);
    let q = run(Op::QuantizeLinear { axis: 1, to: DType::I16 }, &[Some(&x), Some(&scale)]).unwrap();
    assert_eq!(vals::<i16>(&q), vec![-1, 32767, 3]);
    let q = run(Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[Some(&x), Some(&scale)]).unwrap();
    assert_eq!(vals::<u8>(&q), vec![0, 255, 3]);
}

#[test]
fn per_axis_scales_follow_the_axis() {
    // Shape [2, 3]: axis 1 has 3 channels, axis 0 has 2.
    let x = t(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let s3 = t(&[3], vec![1.0f32, 2.0, 0.5]);
    let q = run(Op::QuantizeLinear { axis: 1, to: DType::I8 }, &[Some(&x), Some(&s3)]).unwrap();
    assert_eq!(vals::<i8>(&q), vec![1, 1, 6, 4, 2, 12]);
    let s2 = t(&[2], vec![1.0f32, 4.0]);
    let q = run(Op::QuantizeLinear { axis: 0, to: DType::I8 }, &[Some(&x), Some(&s2)]).unwrap();
    assert_eq!(vals::<i8>(&q), vec![1, 2, 3, 1, 1, 2]);
    let d = run(Op::DequantizeLinear { axis: -2 }, &[Some(&q), Some(&s2)]).unwrap();
    assert_eq!(vals::<f32>(&d), vec![1.0, 2.0, 3.0, 4.0, 4.0, 8.0]);
}

#[test]
fn dequantize_subtracts_the_zero_point_exactly() {
    let q = t(&[4], vec![0u8, 128, 255, 7]);
    let scale = Tensor::scalar(0.5f32);
    let zp = Tensor::scalar(128u8);
    let d = run(Op::DequantizeLinear { axis: 1 }, &[Some(&q), Some(&scale), Some(&zp)]).unwrap();
    assert_eq!(vals::<f32>(&d), vec![-64.0, 0.0, 63.5, -60.5]);
    let q = t(&[2], vec![i32::MAX, -5]);
    let d = run(Op::DequantizeLinear { axis: 1 }, &[Some(&q), Some(&Tensor::scalar(1.0f32))]).unwrap();
    assert_eq!(vals::<f32>(&d), vec![i32::MAX as f32, -5.0]);
}

#[test]
fn round_trip_error_is_at_most_half_a_step() {
    let x: Vec<f32> = (0..200).map(|i| ((i as f32) * 0.37).sin() * 3.0).collect();
    let x = t(&[200], x);
    let scale = Tensor::scalar(3.0f32 / 127.0);
    let q = run(Op::QuantizeLinear { axis: 1, to: DType::I8 }, &[Some(&x), Some(&scale)]).unwrap();
    let d = run(Op::DequantizeLinear { axis: 1 }, &[Some(&q), Some(&scale)]).unwrap();
    for (a, b) in vals::<f32>(&x).iter().zip(vals::<f32>(&d)) {
        assert!((a - b).abs() <= 0.5 * 3.0 / 127.0 + 1e-6, "{a} vs {b}");
    }
}

#[test]
fn malformed_parameters_are_errors_not_panics() {
    let x = t(&[2, 3], vec![1.0f32; 6]);
    let q = t(&[2, 3], vec![1i8; 6]);
    let s2 = t(&[2], vec![1.0f32, 1.0]);
    let qop = Op::QuantizeLinear { axis: 1, to: DType::I8 };
    let dop = Op::DequantizeLinear { axis: 1 };
    // Scale length does not match the axis.
    assert!(run(qop.clone(), &[Some(&x), Some(&s2)]).is_err());
    assert!(run(dop.clone(), &[Some(&q), Some(&s2)]).is_err());
    // Axis out of range.
    assert!(run(Op::DequantizeLinear { axis: 5 }, &[Some(&q), Some(&t(&[3], vec![1.0f32; 3]))]).is_err());
    // Zero point dtype differs from the output / input.
    let zp_u8 = Tensor::scalar(0u8);
    assert!(run(qop.clone(), &[Some(&x), Some(&Tensor::scalar(1.0f32)), Some(&zp_u8)]).is_err());
    assert!(run(dop.clone(), &[Some(&q), Some(&Tensor::scalar(1.0f32)), Some(&zp_u8)]).is_err());
    // Zero point and scale lengths differ.
    let zp2 = t(&[2], vec![0i8, 0]);
    assert!(run(dop.clone(), &[Some(&q), Some(&Tensor::scalar(1.0f32)), Some(&zp2)]).is_err());
    // Wrong dtypes.
    assert!(run(qop, &[Some(&q), Some(&Tensor::scalar(1.0f32))]).is_err());
    assert!(run(dop.clone(), &[Some(&x), Some(&Tensor::scalar(1.0f32))]).is_err());
    assert!(run(dop.clone(), &[Some(&q), Some(&Tensor::scalar(1i64))]).is_err());
    assert!(run(dop, &[Some(&q), Some(&t(&[1, 1], vec![1.0f32]))]).is_err());
}

#[test]
fn a_one_element_scale_is_per_tensor_whatever_the_axis() {
    // onnxruntime's QDQ models dequantize 1-D biases with axis 1 and a [1] scale.
    let q = t(&[3], vec![10i32, -20, 30]);
    let s = t(&[1], vec![0.5f32]);
    let z = t(&[1], vec![0i32]);
    let d = run(Op::DequantizeLinear { axis: 1 }, &[Some(&q), Some(&s), Some(&z)]).unwrap();
    assert_eq!(vals::<f32>(&d), vec![5.0, -10.0, 15.0]);
}

/// DynamicQuantizeLinear's three outputs.
fn dynamic(x: &Tensor) -> (Vec<u8>, f32, u8) {
    let out = eval(&Op::DynamicQuantizeLinear, &[Some(x)], 3).unwrap();
    assert_eq!(out[0].shape(), x.shape());
    assert!(out[1].shape().is_empty() && out[2].shape().is_empty(), "scale and zero point are scalars");
    (vals::<u8>(&out[0]), out[1].to_f32_vec()[0], vals::<u8>(&out[2])[0])
}

#[test]
fn dynamic_quantize_matches_the_onnx_examples() {
    // The three ONNX backend node tests (test_dynamicquantizelinear*).
    let (y, s, z) = dynamic(&t(&[6], vec![0.0f32, 2.0, -3.0, -2.5, 1.34, 0.5]));
    assert_eq!((y, s, z), (vec![153, 255, 0, 26, 221, 179], 5.0 / 255.0, 153));
    // All negative: the range is [min, 0], the zero point saturates at 255.
    let (y, s, z) = dynamic(&t(&[6], vec![-1.0f32, -2.1, -1.3, -2.5, -3.34, -4.0]));
    assert_eq!((y, s, z), (vec![191, 121, 172, 96, 42, 0], 4.0 / 255.0, 255));
    // All positive: the range is [0, max], zero point 0.
    let x = t(&[3, 4], vec![1.0f32, 2.1, 1.3, 2.5, 3.34, 4.0, 1.5, 2.6, 3.9, 4.0, 3.0, 2.345]);
    let (y, s, z) = dynamic(&x);
    assert_eq!((y, s, z), (vec![64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149], 4.0 / 255.0, 0));
}

#[test]
fn dynamic_quantize_edge_cases() {
    // An empty range (all zeros, or no elements) gives scale 1 and zero point 0, as onnxruntime.
    assert_eq!(dynamic(&t(&[4], vec![0.0f32; 4])), (vec![0; 4], 1.0, 0));
    assert_eq!(dynamic(&t(&[0], Vec::<f32>::new())), (vec![], 1.0, 0));
    // NaN stays out of the range and quantizes to the zero point (as QuantizeLinear);
    // -min / scale = 1 / (2 / 255) is 127.49999 in f32, so the zero point is 127.
    let (y, s, z) = dynamic(&t(&[3], vec![f32::NAN, -1.0, 1.0]));
    assert_eq!((s, z), (2.0 / 255.0, 127));
    assert_eq!(y, vec![127, 0, 254]);
    // Half-way cases round to even: zero point 2.5 -> 2, 0.5 -> 0, 1.5 -> 2, 252.5 -> 252
    // (onnxruntime 1.32 gives the same bytes).
    let (y, s, z) = dynamic(&t(&[4], vec![-2.5f32, 0.5, 1.5, 252.5]));
    assert_eq!((s, z), (1.0, 2));
    assert_eq!(y, vec![0, 2, 4, 254]);
    // Non-f32 input and a wrong output count are errors, not panics.
    assert!(eval(&Op::DynamicQuantizeLinear, &[Some(&t(&[2], vec![1u8, 2]))], 3).is_err());
    assert!(eval(&Op::DynamicQuantizeLinear, &[Some(&t(&[2], vec![1.0f32, 2.0]))], 1).is_err());
}
