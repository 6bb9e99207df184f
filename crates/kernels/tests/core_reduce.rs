//! Reductions: ReduceSum, ReduceMean, ReduceMax, ArgMax.

use half::f16;
use lithe_ir::op::{ArgAttrs, ReduceAttrs};
use lithe_ir::{DType, Element, Op, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::reference::eval;

fn t<T: Element>(shape: &[usize], v: Vec<T>) -> Tensor {
    Tensor::from_vec(shape, v).unwrap()
}

fn v1<T: Element>(v: Vec<T>) -> Tensor {
    let n = v.len();
    t(&[n], v)
}

fn vals<T: Element>(x: &Tensor) -> Vec<T> {
    x.view::<T>().unwrap_or_else(|| panic!("dtype {}", x.dtype())).iter().copied().collect()
}

const KEEP: ReduceAttrs = ReduceAttrs { keepdims: true, noop_with_empty_axes: false };
const DROP: ReduceAttrs = ReduceAttrs { keepdims: false, noop_with_empty_axes: false };

fn reduce(op: Op, x: &Tensor, axes: Option<Vec<i64>>) -> Result<Tensor, KernelError> {
    let axes = axes.map(v1);
    eval(&op, &[Some(x), axes.as_ref()], 1).map(|mut v| v.remove(0))
}

fn m23() -> Tensor {
    t(&[2, 3], vec![1f32, 2., 3., 4., 5., 6.])
}

#[test]
fn reduce_sum_axes_and_keepdims() {
    let x = m23();
    let y = reduce(Op::ReduceSum(KEEP), &x, Some(vec![1])).unwrap();
    assert_eq!((y.shape(), vals::<f32>(&y)), (&[2usize, 1][..], vec![6., 15.]));
    let y = reduce(Op::ReduceSum(DROP), &x, Some(vec![1])).unwrap();
    assert_eq!((y.shape(), vals::<f32>(&y)), (&[2usize][..], vec![6., 15.]));
    let y = reduce(Op::ReduceSum(DROP), &x, Some(vec![-2])).unwrap();
    assert_eq!(vals::<f32>(&y), vec![5., 7., 9.]);
    let y = reduce(Op::ReduceSum(KEEP), &x, None).unwrap();
    assert_eq!((y.shape(), vals::<f32>(&y)), (&[1usize, 1][..], vec![21.]));
    let y = reduce(Op::ReduceSum(DROP), &x, None).unwrap();
    assert_eq!((y.shape(), vals::<f32>(&y)), (&[] as &[usize], vec![21.]));
    // Empty axes: reduce everything, or nothing with noop_with_empty_axes.
    let y = reduce(Op::ReduceSum(DROP), &x, Some(vec![])).unwrap();
    assert_eq!(vals::<f32>(&y), vec![21.]);
    let noop = ReduceAttrs { keepdims: true, noop_with_empty_axes: true };
    assert_eq!(reduce(Op::ReduceSum(noop.clone()), &x, None).unwrap(), x);
    assert_eq!(reduce(Op::ReduceSum(noop), &x, Some(vec![])).unwrap(), x);
    // Several axes of a 3-D tensor.
    let x = t(&[2, 3, 2], (0..12).map(|v| v as f32).collect());
    let y = reduce(Op::ReduceSum(DROP), &x, Some(vec![0, 2])).unwrap();
    assert_eq!(vals::<f32>(&y), vec![14., 22., 30.]);
    let y = reduce(Op::ReduceSum(KEEP), &x, Some(vec![2, 0])).unwrap();
    assert_eq!(y.shape(), &[1, 3, 1]);
}

#[test]
fn reduce_sum_accumulates_in_f64_and_wraps_ints() {
    let y = reduce(Op::ReduceSum(DROP), &v1(vec![1e8f32, 1., -1e8]), None).unwrap();
    assert_eq!(vals::<f32>(&y), vec![1.]);
    let y = reduce(Op::ReduceSum(DROP), &v1(vec![100i8, 100]), None).unwrap();
    assert_eq!(vals::<i8>(&y), vec![-56]);
    let y = reduce(Op::ReduceSum(DROP), &t(&[2, 2], vec![1i64, 2, 3, 4]), Some(vec![0])).unwrap();
    assert_eq!(vals::<i64>(&y), vec![4, 6]);
    let y = reduce(Op::ReduceSum(DROP), &v1(vec![f16::from_f32(0.5), f16::from_f32(0.25)]), None).unwrap();
    assert_eq!(vals::<f16>(&y), vec![f16::from_f32(0.75)]);
}

#[test]
fn reduce_mean() {
    let y = reduce(Op::ReduceMean(DROP), &m23(), Some(vec![0])).unwrap();
    assert_eq!(vals::<f32>(&y), vec![2.5, 3.5, 4.5]);
    let y = reduce(Op::ReduceMean(KEEP), &m23(), None).unwrap();
    assert_eq!(vals::<f32>(&y), vec![3.5]);
    let y = reduce(Op::ReduceMean(DROP), &t(&[2, 2], vec![1i32, 2, -1, -2]), Some(vec![1])).unwrap();
    assert_eq!(vals::<i32>(&y), vec![1, -1]);
    let y = reduce(Op::ReduceMean(DROP), &t::<f32>(&[2, 0], vec![]), Some(vec![1])).unwrap();
    assert!(vals::<f32>(&y).iter().all(|v| v.is_nan()));
    let e = reduce(Op::ReduceMean(DROP), &t::<i32>(&[2, 0], vec![]), Some(vec![1])).unwrap_err();
    assert!(matches!(e, KernelError::Invalid { .. }), "{e}");
}

#[test]
fn reduce_max() {
    let y = reduce(Op::ReduceMax(DROP), &m23(), Some(vec![1])).unwrap();
    assert_eq!(vals::<f32>(&y), vec![3., 6.]);
    let y = reduce(Op::ReduceMax(DROP), &t(&[2, 2], vec![1f32, f32::NAN, 3., 2.]), Some(vec![1])).unwrap();
    let yv = vals::<f32>(&y);
    assert!(yv[0].is_nan());
    assert_eq!(yv[1], 3.);
    let y = reduce(Op::ReduceMax(KEEP), &v1(vec![-5i64, -2, -9]), None).unwrap();
    assert_eq!(vals::<i64>(&y), vec![-2]);
    let y = reduce(Op::ReduceMax(DROP), &t::<f32>(&[2, 0], vec![]), Some(vec![1])).unwrap();
    assert_eq!(vals::<f32>(&y), vec![f32::NEG_INFINITY; 2]);
    let y = reduce(Op::ReduceMax(DROP), &t::<i32>(&[2, 0], vec![]), Some(vec![1])).unwrap();
    assert_eq!(vals::<i32>(&y), vec![i32::MIN; 2]);
    let y = reduce(Op::ReduceSum(DROP), &t::<f32>(&[2, 0], vec![]), Some(vec![1])).unwrap();
    assert_eq!(vals::<f32>(&y), vec![0.; 2]);
    let y = reduce(Op::ReduceMax(DROP), &t(&[2, 2], vec![false, true, false, false]), Some(vec![1])).unwrap();
    assert_eq!(vals::<bool>(&y), vec![true, false]);
}

#[test]
fn reduce_errors() {
    let x = m23();
    let msg = |r: Result<Tensor, KernelError>| r.unwrap_err().to_string();
    assert!(msg(reduce(Op::ReduceSum(KEEP), &x, Some(vec![0, -2]))).contains("repeated"));
    assert!(msg(reduce(Op::ReduceSum(KEEP), &x, Some(vec![2]))).contains("out of range"));
    let axes = v1(vec![0f32]);
    assert!(eval(&Op::ReduceSum(KEEP), &[Some(&x), Some(&axes)], 1).unwrap_err().to_string().contains("i64"));
    assert!(msg(reduce(Op::ReduceSum(KEEP), &v1(vec![true]), None)).contains("bool"));
}

fn argmax(x: &Tensor, axis: i64, keepdims: bool, select_last_index: bool) -> Result<Tensor, KernelError> {
    let op = Op::ArgMax(ArgAttrs { axis, keepdims, select_last_index });
    eval(&op, &[Some(x)], 1).map(|mut v| v.remove(0))
}

#[test]
fn arg_max() {
    let x = t(&[2, 3], vec![1f32, 3., 3., 5., 2., 5.]);
    let y = argmax(&x, 1, true, false).unwrap();
    assert_eq!((y.dtype(), y.shape(), vals::<i64>(&y)), (DType::I64, &[2usize, 1][..], vec![1, 0]));
    let y = argmax(&x, -1, true, true).unwrap();
    assert_eq!(vals::<i64>(&y), vec![2, 2]);
    let y = argmax(&x, 0, false, false).unwrap();
    assert_eq!((y.shape(), vals::<i64>(&y)), (&[3usize][..], vec![1, 0, 1]));
    let y = argmax(&v1(vec![1f32, f32::NAN, 3., f32::NAN]), 0, false, false).unwrap();
    assert_eq!(vals::<i64>(&y), vec![1]);
    let y = argmax(&v1(vec![1f32, f32::NAN, 3., f32::NAN]), 0, false, true).unwrap();
    assert_eq!(vals::<i64>(&y), vec![3]);
    let y = argmax(&v1(vec![-3i32, 7, 7, 2]), 0, true, false).unwrap();
    assert_eq!((y.shape(), vals::<i64>(&y)), (&[1usize][..], vec![1]));
    let y = argmax(&v1(vec![f16::from_f32(0.5), f16::from_f32(1.5)]), 0, false, false).unwrap();
    assert_eq!(vals::<i64>(&y), vec![1]);
    assert!(argmax(&t::<f32>(&[2, 0], vec![]), 1, true, false).unwrap_err().to_string().contains("empty"));
    assert!(argmax(&x, 2, true, false).unwrap_err().to_string().contains("out of range"));
    // An empty non-reduced axis is fine.
    assert_eq!(argmax(&t::<f32>(&[0, 3], vec![]), 1, false, false).unwrap().shape(), &[0]);
}
