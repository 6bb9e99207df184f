//! Elementwise reference kernels: broadcasting, arithmetic, comparisons, activations, math, Cast.

use half::f16;
use lithe_ir::{DType, Element, Op, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::reference::broadcast::broadcast_shapes;
use lithe_kernels::reference::erf::erf;
use lithe_kernels::reference::{cast, eval};

fn t<T: Element>(shape: &[usize], v: Vec<T>) -> Tensor {
    Tensor::from_vec(shape, v).unwrap()
}

fn v1<T: Element>(v: Vec<T>) -> Tensor {
    let n = v.len();
    t(&[n], v)
}

fn run(op: Op, inputs: &[&Tensor]) -> Tensor {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
    eval(&op, &ins, 1).unwrap().remove(0)
}

fn run_err(op: Op, inputs: &[Option<&Tensor>]) -> KernelError {
    eval(&op, inputs, 1).unwrap_err()
}

fn vals<T: Element>(x: &Tensor) -> Vec<T> {
    x.view::<T>().unwrap_or_else(|| panic!("dtype {}", x.dtype())).iter().copied().collect()
}

fn is_invalid(e: &KernelError) -> bool {
    matches!(e, KernelError::Invalid { .. })
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x.is_nan() && y.is_nan()) || (x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

#[test]
fn broadcast_shape_rules() {
    assert_eq!(broadcast_shapes("t", &[&[2, 3, 4], &[3, 1]]).unwrap(), vec![2, 3, 4]);
    assert_eq!(broadcast_shapes("t", &[&[1], &[]]).unwrap(), vec![1]);
    assert_eq!(broadcast_shapes("t", &[&[], &[]]).unwrap(), Vec::<usize>::new());
    assert_eq!(broadcast_shapes("t", &[&[0], &[1]]).unwrap(), vec![0]);
    assert_eq!(broadcast_shapes("t", &[&[5, 1, 2], &[1, 4, 1], &[2]]).unwrap(), vec![5, 4, 2]);
    assert!(broadcast_shapes("t", &[&[2, 3], &[3, 2]]).is_err());
    assert!(broadcast_shapes("t", &[&[0], &[3]]).is_err());
    // 2^40 elements from two tiny shapes: refused before allocating.
    let e = broadcast_shapes("t", &[&[1 << 20, 1], &[1, 1 << 20]]).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
}

#[test]
fn add_broadcasts_f32() {
    let a = t(&[2, 3], vec![1f32, 2., 3., 4., 5., 6.]);
    let b = v1(vec![10f32, 20., 30.]);
    let y = run(Op::Add, &[&a, &b]);
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(vals::<f32>(&y), vec![11., 22., 33., 14., 25., 36.]);
    // Broadcasting is symmetric: [2,1] + [3] -> [2,3].
    let c = t(&[2, 1], vec![100f32, 200.]);
    let y = run(Op::Add, &[&c, &b]);
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(vals::<f32>(&y), vec![110., 120., 130., 210., 220., 230.]);
    // Empty broadcast.
    let e = t::<f32>(&[0, 3], vec![]);
    assert_eq!(run(Op::Add, &[&e, &b]).shape(), &[0, 3]);
}

#[test]
fn sub_mul_div_f32() {
    let a = v1(vec![1f32, -2., 3.]);
    let b = Tensor::scalar(2f32);
    assert_eq!(vals::<f32>(&run(Op::Sub, &[&a, &b])), vec![-1., -4., 1.]);
    assert_eq!(vals::<f32>(&run(Op::Mul, &[&a, &b])), vec![2., -4., 6.]);
    assert_eq!(vals::<f32>(&run(Op::Div, &[&a, &b])), vec![0.5, -1., 1.5]);
    let z = v1(vec![0f32, 0., 0.]);
    let y = vals::<f32>(&run(Op::Div, &[&a, &z]));
    assert_eq!(y[0], f32::INFINITY);
    assert_eq!(y[1], f32::NEG_INFINITY);
}

#[test]
fn f16_arithmetic_rounds_once() {
    let a = v1(vec![f16::from_f32(1.5), f16::from_f32(2048.)]);
    let b = v1(vec![f16::from_f32(2.25), f16::from_f32(1.)]);
    let y = run(Op::Add, &[&a, &b]);
    assert_eq!(y.dtype(), DType::F16);
    // 2048 + 1 is a tie between 2048 and 2050 in f16: round to even gives 2048.
    assert_eq!(vals::<f16>(&y), vec![f16::from_f32(3.75), f16::from_f32(2048.)]);
    let y = run(Op::Div, &[&a, &b]);
    assert_eq!(vals::<f16>(&y), vec![f16::from_f32(1.5 / 2.25), f16::from_f32(2048.)]);
}

#[test]
fn integer_arithmetic_wraps_and_truncates() {
    let a = v1(vec![7i32, -7, 7, -7]);
    let b = v1(vec![2i32, 2, -2, -2]);
    assert_eq!(vals::<i32>(&run(Op::Div, &[&a, &b])), vec![3, -3, -3, 3]);
    let a = v1(vec![i32::MIN]);
    assert_eq!(vals::<i32>(&run(Op::Sub, &[&a, &Tensor::scalar(1i32)])), vec![i32::MAX]);
    let a = v1(vec![200u8, 3]);
    assert_eq!(vals::<u8>(&run(Op::Mul, &[&a, &Tensor::scalar(2u8)])), vec![144, 6]);
    let a = v1(vec![-128i8]);
    assert_eq!(vals::<i8>(&run(Op::Div, &[&a, &Tensor::scalar(-1i8)])), vec![-128]);
    let a = v1(vec![i64::MAX, 5]);
    assert_eq!(vals::<i64>(&run(Op::Add, &[&a, &Tensor::scalar(1i64)])), vec![i64::MIN, 6]);
    let a = v1(vec![300i16, -300]);
    assert_eq!(vals::<i16>(&run(Op::Div, &[&a, &Tensor::scalar(7i16)])), vec![42, -42]);
}

#[test]
fn integer_division_by_zero_is_an_error() {
    for (a, b) in [
        (v1(vec![1i32, 2]), v1(vec![1i32, 0])),
        (v1(vec![1i64]), Tensor::scalar(0i64)),
        (v1(vec![1u8]), Tensor::scalar(0u8)),
    ] {
        let e = run_err(Op::Div, &[Some(&a), Some(&b)]);
        assert!(is_invalid(&e) && e.to_string().contains("division by zero"), "{e}");
    }
}

#[test]
fn arithmetic_rejects_bad_dtypes_and_shapes() {
    let f = v1(vec![1f32]);
    let i = v1(vec![1i64]);
    let e = run_err(Op::Add, &[Some(&f), Some(&i)]);
    assert!(is_invalid(&e) && e.to_string().contains("f32") && e.to_string().contains("i64"), "{e}");
    let b = v1(vec![true]);
    assert!(matches!(run_err(Op::Mul, &[Some(&b), Some(&b)]), KernelError::Unsupported { .. }));
    let x = v1(vec![1f32, 2.]);
    let y = v1(vec![1f32, 2., 3.]);
    assert!(is_invalid(&run_err(Op::Sub, &[Some(&x), Some(&y)])));
}

#[test]
fn pow_mixed_dtypes() {
    let base = v1(vec![2f32, 4., -8.]);
    let e = v1(vec![3i64, -1, 2]);
    assert_eq!(vals::<f32>(&run(Op::Pow, &[&base, &e])), vec![8., 0.25, 64.]);
    let base = v1(vec![4f32, 9.]);
    let y = run(Op::Pow, &[&base, &Tensor::scalar(0.5f32)]);
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(vals::<f32>(&y), vec![2., 3.]);
    // Negative base with a fractional exponent is NaN.
    let y = run(Op::Pow, &[&v1(vec![-4f32]), &Tensor::scalar(0.5f32)]);
    assert!(vals::<f32>(&y)[0].is_nan());
    // f16 base, i32 exponent.
    let y = run(Op::Pow, &[&v1(vec![f16::from_f32(3.)]), &Tensor::scalar(2i32)]);
    assert_eq!(vals::<f16>(&y), vec![f16::from_f32(9.)]);
}

#[test]
fn pow_integer_base() {
    let base = v1(vec![2i32, 3, -2]);
    let e = v1(vec![10i32, 3, 3]);
    assert_eq!(vals::<i32>(&run(Op::Pow, &[&base, &e])), vec![1024, 27, -8]);
    let base = v1(vec![2i64, 1, -1, -1]);
    let e = v1(vec![-1i64, -5, -3, -2]);
    assert_eq!(vals::<i64>(&run(Op::Pow, &[&base, &e])), vec![0, 1, -1, 1]);
    let y = run(Op::Pow, &[&v1(vec![9i32]), &Tensor::scalar(0.5f32)]);
    assert_eq!(vals::<i32>(&y), vec![3]);
    let y = run(Op::Pow, &[&v1(vec![3i64]), &Tensor::scalar(40i64)]);
    assert_eq!(vals::<i64>(&y), vec![3i64.wrapping_pow(40)]);
    let e = run_err(Op::Pow, &[Some(&v1(vec![0i32])), Some(&Tensor::scalar(-1i64))]);
    assert!(is_invalid(&e), "{e}");
}

#[test]
fn equal_any_dtype() {
    let y = run(Op::Equal, &[&v1(vec![1i64, 2, 3]), &v1(vec![2i64])]);
    assert_eq!(y.dtype(), DType::Bool);
    assert_eq!(vals::<bool>(&y), vec![false, true, false]);
    let y = run(Op::Equal, &[&v1(vec![true, false]), &Tensor::scalar(false)]);
    assert_eq!(vals::<bool>(&y), vec![false, true]);
    let y = run(Op::Equal, &[&v1(vec![f32::NAN, -0.0, 1.0]), &v1(vec![f32::NAN, 0.0, 1.5])]);
    assert_eq!(vals::<bool>(&y), vec![false, true, false]);
    let y = run(Op::Equal, &[&v1(vec![f16::from_f32(0.5)]), &v1(vec![f16::from_f32(0.5)])]);
    assert_eq!(vals::<bool>(&y), vec![true]);
    let e = run_err(Op::Equal, &[Some(&v1(vec![1i32])), Some(&v1(vec![1i64]))]);
    assert!(is_invalid(&e));
}

#[test]
fn where_broadcasts_three_ways() {
    let c = v1(vec![true, false]);
    let x = t(&[2, 2], vec![1f32, 2., 3., 4.]);
    let y = Tensor::scalar(0f32);
    let out = run(Op::Where, &[&c, &x, &y]);
    assert_eq!(out.shape(), &[2, 2]);
    assert_eq!(vals::<f32>(&out), vec![1., 0., 3., 0.]);
    let c = t(&[2, 1], vec![true, false]);
    let x = t(&[1, 3], vec![1i64, 2, 3]);
    let y = Tensor::scalar(-1i64);
    let out = run(Op::Where, &[&c, &x, &y]);
    assert_eq!(out.shape(), &[2, 3]);
    assert_eq!(vals::<i64>(&out), vec![1, 2, 3, -1, -1, -1]);
    let e = run_err(Op::Where, &[Some(&v1(vec![1i32])), Some(&x), Some(&y)]);
    assert!(is_invalid(&e) && e.to_string().contains("bool"), "{e}");
    let e = run_err(Op::Where, &[Some(&c), Some(&x), Some(&Tensor::scalar(1f32))]);
    assert!(is_invalid(&e));
}

#[test]
fn min_max_variadic_and_nan() {
    let a = v1(vec![1f32, 5., 3.]);
    let b = t(&[2, 1], vec![2f32, 4.]);
    let c = Tensor::scalar(3f32);
    let y = run(Op::Max, &[&a, &b, &c]);
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(vals::<f32>(&y), vec![3., 5., 3., 4., 5., 4.]);
    let y = run(Op::Min, &[&a, &b, &c]);
    assert_eq!(vals::<f32>(&y), vec![1., 2., 2., 1., 3., 3.]);
    let p = v1(vec![f32::NAN, 1., 2.]);
    let q = v1(vec![0., f32::NAN, 1.]);
    for op in [Op::Min, Op::Max] {
        let y = vals::<f32>(&run(op.clone(), &[&p, &q]));
        assert!(y[0].is_nan() && y[1].is_nan(), "{op:?}: {y:?}");
    }
    assert_eq!(vals::<f32>(&run(Op::Max, &[&p, &q]))[2], 2.);
    assert_eq!(vals::<f32>(&run(Op::Min, &[&p, &q]))[2], 1.);
    // One input: a copy.
    assert_eq!(vals::<f32>(&run(Op::Max, &[&a])), vec![1., 5., 3.]);
    let y = run(Op::Min, &[&v1(vec![3i64, -9]), &v1(vec![-1i64, 7])]);
    assert_eq!(vals::<i64>(&y), vec![-1, -9]);
    let y = run(Op::Max, &[&v1(vec![200u8, 1]), &Tensor::scalar(100u8)]);
    assert_eq!(vals::<u8>(&y), vec![200, 100]);
    assert!(is_invalid(&run_err(Op::Max, &[Some(&a), Some(&v1(vec![1i32]))])));
    assert!(is_invalid(&run_err(Op::Max, &[])));
    assert!(is_invalid(&run_err(Op::Min, &[Some(&a), None])));
}

#[test]
fn prelu_slope_broadcasts_to_x() {
    let x = t(&[2, 3], vec![-1f32, 2., -3., 4., -5., 6.]);
    let s = v1(vec![0.1f32, 0.2, 0.3]);
    close(&vals::<f32>(&run(Op::PRelu, &[&x, &s])), &[-0.1, 2., -0.90000004, 4., -1.0, 6.], 0.0);
    let s = t(&[2, 1], vec![0.5f32, 2.]);
    assert_eq!(vals::<f32>(&run(Op::PRelu, &[&x, &s])), vec![-0.5, 2., -1.5, 4., -10., 6.]);
    // A slope that would grow X is rejected.
    let s = t(&[1, 1, 3], vec![0.1f32, 0.2, 0.3]);
    assert!(is_invalid(&run_err(Op::PRelu, &[Some(&x), Some(&s)])));
    let y = run(Op::PRelu, &[&v1(vec![-3i32, 3]), &Tensor::scalar(2i32)]);
    assert_eq!(vals::<i32>(&y), vec![-6, 3]);
}

#[test]
fn clip_bounds() {
    let x = v1(vec![-2f32, 0.5, 3., f32::NAN]);
    let lo = Tensor::scalar(-1f32);
    let hi = Tensor::scalar(1f32);
    let y = vals::<f32>(&run(Op::Clip, &[&x, &lo, &hi]));
    assert_eq!(&y[..3], &[-1., 0.5, 1.]);
    assert!(y[3].is_nan());
    let y = eval(&Op::Clip, &[Some(&x), Some(&lo), None], 1).unwrap().remove(0);
    assert_eq!(&vals::<f32>(&y)[..3], &[-1., 0.5, 3.]);
    let y = eval(&Op::Clip, &[Some(&x), None, Some(&hi)], 1).unwrap().remove(0);
    assert_eq!(&vals::<f32>(&y)[..3], &[-2., 0.5, 1.]);
    let y = eval(&Op::Clip, &[Some(&x)], 1).unwrap().remove(0);
    assert_eq!(&vals::<f32>(&y)[..3], &[-2., 0.5, 3.]);
    // min > max: everything becomes max.
    let y = run(Op::Clip, &[&v1(vec![-5i32, 0, 5]), &Tensor::scalar(3i32), &Tensor::scalar(1i32)]);
    assert_eq!(vals::<i32>(&y), vec![1, 1, 1]);
    let y = run(Op::Clip, &[&v1(vec![0u8, 100, 255]), &v1(vec![10u8]), &v1(vec![200u8])]);
    assert_eq!(vals::<u8>(&y), vec![10, 100, 200]);
    let e = run_err(Op::Clip, &[Some(&x), Some(&Tensor::scalar(0i32)), None]);
    assert!(is_invalid(&e) && e.to_string().contains("min"), "{e}");
    let e = run_err(Op::Clip, &[Some(&x), None, Some(&v1(vec![1f32, 2.]))]);
    assert!(is_invalid(&e) && e.to_string().contains("max"), "{e}");
}

#[test]
fn activations() {
    let x = v1(vec![-1f32, 0., 2.]);
    assert_eq!(vals::<f32>(&run(Op::Relu, &[&x])), vec![0., 0., 2.]);
    assert_eq!(vals::<i8>(&run(Op::Relu, &[&v1(vec![-5i8, 7])])), vec![0, 7]);
    let y = run(Op::Relu, &[&v1(vec![f16::from_f32(-1.), f16::from_f32(1.5)])]);
    assert_eq!(vals::<f16>(&y), vec![f16::ZERO, f16::from_f32(1.5)]);
    let y = run(Op::LeakyRelu { alpha: 0.1 }, &[&v1(vec![-2f32, 3.])]);
    assert_eq!(vals::<f32>(&y), vec![-0.2, 3.]);
    let y = vals::<f32>(&run(Op::Sigmoid, &[&v1(vec![0f32, 1., 100., -100., -1000., 1000.])]));
    assert_eq!(&y[..3], &[0.5, 0.7310586, 1.0]);
    assert!(y[3] > 0.0 && y[3] < 1e-40, "{y:?}");
    assert_eq!(&y[4..], &[0.0, 1.0]);
    let y = run(Op::HardSigmoid { alpha: 0.2, beta: 0.5 }, &[&v1(vec![-3f32, 0., 1., 3.])]);
    close(&vals::<f32>(&y), &[0., 0.5, 0.7, 1.], 1e-7);
    let y = run(Op::HardSwish, &[&v1(vec![-4f32, -1., 0., 1., 4.])]);
    close(&vals::<f32>(&y), &[0., -1. / 3., 0., 2. / 3., 4.], 1e-7);
    let y = run(Op::Tanh, &[&v1(vec![0f32, 1., -20.])]);
    assert_eq!(vals::<f32>(&y), vec![0., 0.7615942, -1.]);
    let y = run(Op::Sigmoid, &[&v1(vec![f16::ZERO])]);
    assert_eq!(vals::<f16>(&y), vec![f16::from_f32(0.5)]);
    assert!(matches!(run_err(Op::Sigmoid, &[Some(&v1(vec![1i32]))]), KernelError::Unsupported { .. }));
    assert!(matches!(run_err(Op::Relu, &[Some(&v1(vec![true]))]), KernelError::Unsupported { .. }));
}

#[test]
fn math_functions() {
    let y = vals::<f32>(&run(Op::Sqrt, &[&v1(vec![4f32, 2., -1.])]));
    assert_eq!(&y[..2], &[2., std::f32::consts::SQRT_2]);
    assert!(y[2].is_nan());
    close(&vals::<f32>(&run(Op::Exp, &[&v1(vec![0f32, 1., -1.])])), &[1., std::f32::consts::E, 0.36787945], 3e-7);
    let y = vals::<f32>(&run(Op::Log, &[&v1(vec![1f32, std::f32::consts::E, 0., -1.])]));
    close(&y[..2], &[0., 1.], 1.2e-7);
    assert_eq!(y[2], f32::NEG_INFINITY);
    assert!(y[3].is_nan());
    let y = run(Op::Neg, &[&v1(vec![3i32, -4, i32::MIN])]);
    assert_eq!(vals::<i32>(&y), vec![-3, 4, i32::MIN]);
    assert_eq!(vals::<f32>(&run(Op::Neg, &[&v1(vec![1.5f32])])), vec![-1.5]);
    assert!(matches!(run_err(Op::Neg, &[Some(&v1(vec![1u8]))]), KernelError::Unsupported { .. }));
    assert_eq!(vals::<i8>(&run(Op::Abs, &[&v1(vec![-128i8, -3, 3])])), vec![-128, 3, 3]);
    assert_eq!(vals::<u8>(&run(Op::Abs, &[&v1(vec![200u8])])), vec![200]);
    assert_eq!(vals::<i64>(&run(Op::Abs, &[&v1(vec![-7i64])])), vec![7]);
    assert_eq!(vals::<f32>(&run(Op::Abs, &[&v1(vec![-0.5f32])])), vec![0.5]);
    assert!(matches!(run_err(Op::Sqrt, &[Some(&v1(vec![4i32]))]), KernelError::Unsupported { .. }));
    let x = t(&[2], vec![true, false]);
    assert_eq!(run(Op::Identity, &[&x]), x);
}

#[test]
fn erf_matches_known_values() {
    // Reference values from a correctly rounded libm (Python's math.erf).
    let table = [
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (2.0, 0.9953222650189527),
        (3.0, 0.9999779095030014),
        (-0.5, -0.5204998778130465),
        (1e-3, 0.0011283787909692365),
        (0.1, 0.1124629160182849),
        (4.0, 0.9999999845827421),
        (5.0, 0.9999999999984626),
        (0.25, 0.2763263901682369),
        (1.5, 0.9661051464753108),
        (2.5, 0.999593047982555),
        (-1.75, -0.9866716712191824),
        (3.5, 0.9999992569016276),
        (5.5, 0.9999999999999927),
        (1e-8, 1.1283791670955126e-08),
    ];
    for (x, want) in table {
        let got = erf(x);
        assert!((got - want).abs() <= 1e-15 * want.abs(), "erf({x}) = {got}, want {want}");
    }
    assert_eq!(erf(0.0), 0.0);
    assert_eq!(erf(6.0), 1.0);
    assert_eq!(erf(-30.0), -1.0);
    assert_eq!(erf(f64::INFINITY), 1.0);
    assert!(erf(f64::NAN).is_nan());
    // Odd and monotone over a sweep.
    let mut prev = -1.0;
    for i in -700..=700 {
        let x = f64::from(i) / 100.0;
        let y = erf(x);
        assert!(y >= prev, "not monotone at {x}");
        assert_eq!(erf(-x), -y);
        prev = y;
    }
}

#[test]
fn erf_kernel_f32_and_f16() {
    let y = run(Op::Erf, &[&v1(vec![0.5f32, -1., 3., 10.])]);
    close(&vals::<f32>(&y), &[0.5204999, -0.8427008, 0.9999779, 1.0], 1e-7);
    let y = run(Op::Erf, &[&v1(vec![f16::from_f32(0.5)])]);
    assert_eq!(vals::<f16>(&y), vec![f16::from_f64(0.5204998778130465)]);
}

#[test]
fn cast_conversions() {
    let x = v1(vec![1.9f32, -1.9, 2.5, f32::NAN, -0.0]);
    assert_eq!(vals::<i32>(&cast::cast(&x, DType::I32)), vec![1, -1, 2, 0, 0]);
    assert_eq!(vals::<bool>(&cast::cast(&x, DType::Bool)), vec![true, true, true, true, false]);
    let x = v1(vec![(1i64 << 32) + 5, 300, -1, (1 << 53) + 1]);
    assert_eq!(vals::<i32>(&cast::cast(&x, DType::I32)), vec![5, 300, -1, 1]);
    assert_eq!(vals::<i8>(&cast::cast(&x, DType::I8)), vec![5, 44, -1, 1]);
    assert_eq!(vals::<u8>(&cast::cast(&x, DType::U8)), vec![5, 44, 255, 1]);
    assert_eq!(vals::<f32>(&cast::cast(&x, DType::F32))[3], 9007199254740992.0);
    // i64 -> f32 rounds once: this value is just above an f32 halfway point, but rounding to
    // f64 first would land exactly on it and then round (to even) down.
    let tricky = (1i64 << 60) + (1 << 36) + 1;
    let got = vals::<f32>(&cast::cast(&v1(vec![tricky]), DType::F32))[0];
    assert_eq!(got, tricky as f32);
    let x = v1(vec![true, false]);
    assert_eq!(vals::<f32>(&cast::cast(&x, DType::F32)), vec![1., 0.]);
    assert_eq!(vals::<i64>(&cast::cast(&x, DType::I64)), vec![1, 0]);
    assert_eq!(vals::<f16>(&cast::cast(&x, DType::F16)), vec![f16::ONE, f16::ZERO]);
    let x = v1(vec![65520f32, 1. / 3., 65504.]);
    assert_eq!(vals::<f16>(&cast::cast(&x, DType::F16)), vec![f16::INFINITY, f16::from_f32(1. / 3.), f16::MAX]);
    let x = v1(vec![f16::from_f32(-3.75), f16::from_f32(1000.)]);
    assert_eq!(vals::<i64>(&cast::cast(&x, DType::I64)), vec![-3, 1000]);
    assert_eq!(vals::<i8>(&cast::cast(&v1(vec![200u8]), DType::I8)), vec![-56]);
    assert_eq!(vals::<u8>(&cast::cast(&v1(vec![-1i32, 256]), DType::U8)), vec![255, 0]);
    assert_eq!(vals::<i16>(&cast::cast(&v1(vec![70000i32]), DType::I16)), vec![4464]);
    // Through eval, and same-dtype casts are copies.
    let y = run(Op::Cast { to: DType::I64 }, &[&v1(vec![7.9f32])]);
    assert_eq!(vals::<i64>(&y), vec![7]);
    let x = v1(vec![1i32, 2]);
    assert_eq!(cast::cast(&x, DType::I32), x);
}

#[test]
fn cast_every_pair_of_dtypes() {
    // 0 and 1 survive every conversion.
    for from in DType::ALL {
        let x = cast::cast(&t(&[2, 1], vec![0i64, 1]), from);
        for to in DType::ALL {
            let y = run(Op::Cast { to }, &[&x]);
            assert_eq!(y.dtype(), to);
            assert_eq!(y.shape(), &[2, 1]);
            assert_eq!(vals::<i64>(&cast::cast(&y, DType::I64)), vec![0, 1], "{from} -> {to}");
        }
    }
}
