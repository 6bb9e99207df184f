//! Shape and data-movement reference kernels: Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
//! Concat, Split, Slice, Gather, Shape, Expand, ConstantOfShape, Range.

use lithe_ir::{DType, Element, Op, QuantParams, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::reference::{MAX_ELEMENTS, eval};

fn t<T: Element>(shape: &[usize], v: Vec<T>) -> Tensor {
    Tensor::from_vec(shape, v).unwrap()
}

fn v1<T: Element>(v: Vec<T>) -> Tensor {
    let n = v.len();
    t(&[n], v)
}

/// 0, 1, 2, ... as i64 in `shape`.
fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t(shape, (0..n as i64).collect())
}

fn run(op: Op, inputs: &[&Tensor]) -> Tensor {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
    eval(&op, &ins, 1).unwrap().remove(0)
}

fn run_opt(op: Op, inputs: &[Option<&Tensor>]) -> Result<Tensor, KernelError> {
    eval(&op, inputs, 1).map(|mut v| v.remove(0))
}

fn err(op: Op, inputs: &[&Tensor]) -> String {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
    match eval(&op, &ins, 1) {
        Err(e @ KernelError::Invalid { .. }) => e.to_string(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn vals<T: Element>(x: &Tensor) -> Vec<T> {
    x.view::<T>().unwrap_or_else(|| panic!("dtype {}", x.dtype())).iter().copied().collect()
}

#[test]
fn reshape_rules() {
    let x = iota(&[2, 3, 4]);
    let r = |shape: Vec<i64>| run(Op::Reshape { allowzero: false }, &[&x, &v1(shape)]);
    assert_eq!(r(vec![0, -1]).shape(), &[2, 12]);
    assert_eq!(r(vec![-1]).shape(), &[24]);
    assert_eq!(r(vec![4, 0, -1]).shape(), &[4, 3, 2]);
    assert_eq!(r(vec![2, 3, 4]).shape(), &[2, 3, 4]);
    let y = r(vec![3, 8]);
    assert_eq!(vals::<i64>(&y), (0..24).collect::<Vec<i64>>());
    // i32 shape tensors work too.
    let y = run(Op::Reshape { allowzero: false }, &[&x, &v1(vec![-1i32, 6])]);
    assert_eq!(y.shape(), &[4, 6]);
    let bad = |shape: Vec<i64>| err(Op::Reshape { allowzero: false }, &[&x, &v1(shape)]);
    assert!(bad(vec![-1, -1]).contains("more than one -1"));
    assert!(bad(vec![5, -1]).contains("cannot infer"));
    assert!(bad(vec![7]).contains("cannot reshape"));
    assert!(bad(vec![-2, 12]).contains("invalid value -2"));
    assert!(bad(vec![2, 3, 4, 0]).contains("copies axis 3"));
    assert!(err(Op::Reshape { allowzero: false }, &[&x, &v1(vec![2f32, 12.])]).contains("i64"));
    // A zero that copies a zero size makes -1 ambiguous.
    let e = iota(&[0, 3]);
    assert!(err(Op::Reshape { allowzero: false }, &[&e, &v1(vec![0i64, -1])]).contains("cannot infer"));
    // allowzero: 0 is an empty axis.
    let y = run(Op::Reshape { allowzero: true }, &[&e, &v1(vec![3i64, 0])]);
    assert_eq!(y.shape(), &[3, 0]);
    assert!(err(Op::Reshape { allowzero: true }, &[&e, &v1(vec![0i64, -1])]).contains("allowzero"));
    assert!(err(Op::Reshape { allowzero: true }, &[&x, &v1(vec![0i64, 24])]).contains("cannot reshape"));
    // Absurd sizes are refused, not allocated.
    let e = err(Op::Reshape { allowzero: false }, &[&x, &v1(vec![1i64 << 40, 1 << 40])]);
    assert!(e.contains("limit"), "{e}");
}

#[test]
fn reshape_keeps_per_tensor_quant() {
    let mut x = iota(&[2, 2]);
    x.quant = Some(QuantParams { scale: vec![0.5], zero_point: vec![3], axis: None });
    let y = run(Op::Reshape { allowzero: false }, &[&x, &v1(vec![4i64])]);
    assert_eq!(y.quant, x.quant);
    x.quant = Some(QuantParams { scale: vec![0.5, 1.], zero_point: vec![3, 0], axis: Some(0) });
    let y = run(Op::Reshape { allowzero: false }, &[&x, &v1(vec![4i64])]);
    assert_eq!(y.quant, None);
}

#[test]
fn flatten_axes() {
    let x = iota(&[2, 3, 4]);
    let f = |axis| run(Op::Flatten { axis }, &[&x]).shape().to_vec();
    assert_eq!(f(1), vec![2, 12]);
    assert_eq!(f(0), vec![1, 24]);
    assert_eq!(f(3), vec![24, 1]);
    assert_eq!(f(-1), vec![6, 4]);
    assert_eq!(f(-3), vec![1, 24]);
    assert!(err(Op::Flatten { axis: 4 }, &[&x]).contains("out of range"));
    assert!(err(Op::Flatten { axis: -4 }, &[&x]).contains("out of range"));
    assert_eq!(vals::<i64>(&run(Op::Flatten { axis: 2 }, &[&x])), (0..24).collect::<Vec<i64>>());
}

#[test]
fn transpose_permutes() {
    let x = iota(&[2, 3]);
    let y = run(Op::Transpose { perm: None }, &[&x]);
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(vals::<i64>(&y), vec![0, 3, 1, 4, 2, 5]);
    let x = iota(&[2, 3, 4]);
    let y = run(Op::Transpose { perm: Some(vec![1, 0, 2]) }, &[&x]);
    assert_eq!(y.shape(), &[3, 2, 4]);
    // y[j, i, k] = x[i, j, k] = 12 i + 4 j + k.
    let yv = vals::<i64>(&y);
    assert_eq!(yv[(2 * 2 + 1) * 4 + 3], 12 + 4 * 2 + 3);
    let y = run(Op::Transpose { perm: Some(vec![2, 0, 1]) }, &[&x]);
    assert_eq!(y.shape(), &[4, 2, 3]);
    assert_eq!(vals::<i64>(&y)[..6], [0, 4, 8, 12, 16, 20]);
    assert!(err(Op::Transpose { perm: Some(vec![0, 0, 1]) }, &[&x]).contains("permutation"));
    assert!(err(Op::Transpose { perm: Some(vec![1, 0]) }, &[&x]).contains("permutation"));
    assert!(err(Op::Transpose { perm: Some(vec![0, 1, 3]) }, &[&x]).contains("permutation"));
    let s = Tensor::scalar(5f32);
    assert_eq!(run(Op::Transpose { perm: None }, &[&s]), s);
}

#[test]
fn squeeze_axes() {
    let x = iota(&[1, 3, 1, 2]);
    assert_eq!(run_opt(Op::Squeeze, &[Some(&x)]).unwrap().shape(), &[3, 2]);
    assert_eq!(run_opt(Op::Squeeze, &[Some(&x), None]).unwrap().shape(), &[3, 2]);
    assert_eq!(run(Op::Squeeze, &[&x, &v1(vec![-2i64])]).shape(), &[1, 3, 2]);
    assert_eq!(run(Op::Squeeze, &[&x, &v1(vec![2i64, 0])]).shape(), &[3, 2]);
    assert!(err(Op::Squeeze, &[&x, &v1(vec![1i64])]).contains("is not 1"));
    assert!(err(Op::Squeeze, &[&x, &v1(vec![0i64, 0])]).contains("repeated"));
    assert!(err(Op::Squeeze, &[&x, &v1(vec![4i64])]).contains("out of range"));
    let y = run_opt(Op::Squeeze, &[Some(&iota(&[1, 1]))]).unwrap();
    assert_eq!(y.shape(), &[] as &[usize]);
}

#[test]
fn unsqueeze_axes() {
    let x = iota(&[3, 4]);
    let u = |axes: Vec<i64>| run(Op::Unsqueeze, &[&x, &v1(axes)]).shape().to_vec();
    assert_eq!(u(vec![0]), vec![1, 3, 4]);
    assert_eq!(u(vec![-1]), vec![3, 4, 1]);
    assert_eq!(u(vec![3, 0]), vec![1, 3, 4, 1]);
    assert_eq!(u(vec![1, -1]), vec![3, 1, 4, 1]);
    assert_eq!(u(vec![]), vec![3, 4]);
    assert!(err(Op::Unsqueeze, &[&x, &v1(vec![1i64, 1])]).contains("repeated"));
    assert!(err(Op::Unsqueeze, &[&x, &v1(vec![3i64])]).contains("out of range"));
    let e = run_opt(Op::Unsqueeze, &[Some(&x)]).unwrap_err();
    assert!(e.to_string().contains("missing required input 1 (axes)"), "{e}");
    let s = run(Op::Unsqueeze, &[&Tensor::scalar(7i32), &v1(vec![0i64])]);
    assert_eq!((s.shape(), vals::<i32>(&s)), (&[1usize][..], vec![7]));
}

#[test]
fn concat_joins() {
    let a = t(&[2, 1], vec![1f32, 2.]);
    let b = t(&[2, 2], vec![3f32, 4., 5., 6.]);
    let y = run(Op::Concat { axis: -1 }, &[&a, &b]);
    assert_eq!(y.shape(), &[2, 3]);
    assert_eq!(vals::<f32>(&y), vec![1., 3., 4., 2., 5., 6.]);
    let e = t::<f32>(&[2, 0], vec![]);
    let y = run(Op::Concat { axis: 1 }, &[&e, &a, &e]);
    assert_eq!(y.shape(), &[2, 1]);
    let y = run(Op::Concat { axis: 0 }, &[&v1(vec![true]), &v1(vec![false, true])]);
    assert_eq!(vals::<bool>(&y), vec![true, false, true]);
    let y = run(Op::Concat { axis: 0 }, &[&iota(&[1, 2]), &iota(&[2, 2])]);
    assert_eq!(vals::<i64>(&y), vec![0, 1, 0, 1, 2, 3]);
    assert!(err(Op::Concat { axis: 0 }, &[&a, &b]).contains("differ"));
    assert!(err(Op::Concat { axis: 2 }, &[&a, &b]).contains("out of range"));
    assert!(err(Op::Concat { axis: 1 }, &[&a, &iota(&[2, 1])]).contains("dtype"));
    assert!(err(Op::Concat { axis: 0 }, &[&a, &v1(vec![1f32])]).contains("differ"));
}

fn split(x: &Tensor, sizes: Option<&Tensor>, axis: i64, n: usize) -> Result<Vec<Tensor>, KernelError> {
    eval(&Op::Split { axis, num_outputs: n }, &[Some(x), sizes], n)
}

#[test]
fn split_pieces() {
    let x = iota(&[5]);
    let p = split(&x, None, 0, 2).unwrap();
    assert_eq!((vals::<i64>(&p[0]), vals::<i64>(&p[1])), (vec![0, 1, 2], vec![3, 4]));
    let p = split(&iota(&[6]), None, 0, 3).unwrap();
    assert_eq!(p.iter().map(|t| t.shape()[0]).collect::<Vec<_>>(), vec![2, 2, 2]);
    let p = split(&iota(&[4]), None, 0, 3).unwrap();
    assert_eq!(p.iter().map(|t| t.shape()[0]).collect::<Vec<_>>(), vec![2, 2, 0]);
    let p = split(&x, Some(&v1(vec![1i64, 4])), 0, 2).unwrap();
    assert_eq!((vals::<i64>(&p[0]), vals::<i64>(&p[1])), (vec![0], vec![1, 2, 3, 4]));
    let p = split(&iota(&[2, 4]), None, -1, 2).unwrap();
    assert_eq!(p[0].shape(), &[2, 2]);
    assert_eq!(vals::<i64>(&p[1]), vec![2, 3, 6, 7]);
    let p = split(&x, Some(&v1(vec![0i64, 5])), 0, 2).unwrap();
    assert_eq!(p[0].shape(), &[0]);
    assert!(split(&x, Some(&v1(vec![1i64, 3])), 0, 2).unwrap_err().to_string().contains("sum"));
    assert!(split(&x, Some(&v1(vec![6i64, -1])), 0, 2).unwrap_err().to_string().contains("negative"));
    assert!(split(&x, Some(&v1(vec![5i64])), 0, 2).unwrap_err().to_string().contains("entries"));
    assert!(split(&x, None, 0, 4).is_err()); // 2, 2, 2, -1
    assert!(split(&x, None, 0, 0).is_err());
    assert!(split(&x, None, 1, 2).is_err());
    // The node's num_outputs must match the requested outputs.
    assert!(eval(&Op::Split { axis: 0, num_outputs: 2 }, &[Some(&x)], 3).is_err());
}

fn slice(data: &Tensor, starts: &[i64], ends: &[i64], axes: Option<&[i64]>, steps: Option<&[i64]>) -> Tensor {
    let (s, e) = (v1(starts.to_vec()), v1(ends.to_vec()));
    let a = axes.map(|a| v1(a.to_vec()));
    let st = steps.map(|a| v1(a.to_vec()));
    run_opt(Op::Slice, &[Some(data), Some(&s), Some(&e), a.as_ref(), st.as_ref()]).unwrap()
}

#[test]
fn slice_semantics() {
    let x = iota(&[10]);
    let s = |st: i64, en: i64, step: i64| vals::<i64>(&slice(&x, &[st], &[en], None, Some(&[step])));
    assert_eq!(s(2, 8, 1), vec![2, 3, 4, 5, 6, 7]);
    assert_eq!(s(2, 8, 3), vec![2, 5]);
    assert_eq!(s(-3, i64::MAX, 1), vec![7, 8, 9]);
    assert_eq!(s(-1, i64::MIN, -1), vec![9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(s(8, 2, -2), vec![8, 6, 4]);
    assert_eq!(s(100, 200, 1), Vec::<i64>::new());
    assert_eq!(s(100, -200, -4), vec![9, 5, 1]);
    assert_eq!(s(-100, 3, 1), vec![0, 1, 2]);
    assert_eq!(s(5, 5, 1), Vec::<i64>::new());
    assert_eq!(s(3, 5, -1), Vec::<i64>::new());
    assert_eq!(s(0, 10, i64::MAX), vec![0]);
    assert_eq!(s(9, -11, i64::MIN), vec![9]);
    // Default steps; i32 index tensors with INT32_MAX.
    let y = run(Op::Slice, &[&x, &v1(vec![4i32]), &v1(vec![i32::MAX])]);
    assert_eq!(vals::<i64>(&y), vec![4, 5, 6, 7, 8, 9]);
    // 2-D with axes, negative axis.
    let m = iota(&[3, 4]);
    let y = slice(&m, &[1], &[3], Some(&[-1]), None);
    assert_eq!(y.shape(), &[3, 2]);
    assert_eq!(vals::<i64>(&y), vec![1, 2, 5, 6, 9, 10]);
    let y = slice(&m, &[-1, 0], &[i64::MIN, 4], Some(&[0, 1]), Some(&[-2, 3]));
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(vals::<i64>(&y), vec![8, 11, 0, 3]);
    // Empty axis with a negative step stays empty.
    let e = iota(&[0]);
    assert_eq!(slice(&e, &[-1], &[i64::MIN], None, Some(&[-1])).shape(), &[0]);
}

#[test]
fn slice_errors() {
    let x = iota(&[3, 4]);
    let (a, b) = (v1(vec![0i64]), v1(vec![2i64]));
    let run = |ins: &[Option<&Tensor>]| match run_opt(Op::Slice, ins) {
        Err(e @ KernelError::Invalid { .. }) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(run(&[Some(&x), Some(&a), Some(&b), Some(&v1(vec![0i64])), Some(&v1(vec![0i64]))]).contains("step"));
    assert!(run(&[Some(&x), Some(&v1(vec![0i64, 0])), Some(&b)]).contains("length"));
    assert!(
        run(&[Some(&x), Some(&v1(vec![0i64, 0])), Some(&v1(vec![1i64, 1])), Some(&v1(vec![1i64, -1]))])
            .contains("repeated")
    );
    assert!(run(&[Some(&x), Some(&a), Some(&b), Some(&v1(vec![2i64]))]).contains("out of range"));
    assert!(run(&[Some(&x), Some(&a), None]).contains("missing required input 2 (ends)"));
    assert!(run(&[Some(&x), Some(&v1(vec![0f32])), Some(&b)]).contains("i64 or i32"));
}

#[test]
fn gather_rules() {
    let data = t(&[3, 2], vec![1f32, 2., 3., 4., 5., 6.]);
    let y = run(Op::Gather { axis: 0 }, &[&data, &t(&[2, 2], vec![0i64, 1, 1, 2])]);
    assert_eq!(y.shape(), &[2, 2, 2]);
    assert_eq!(vals::<f32>(&y), vec![1., 2., 3., 4., 3., 4., 5., 6.]);
    let y = run(Op::Gather { axis: 1 }, &[&data, &v1(vec![-1i32])]);
    assert_eq!(y.shape(), &[3, 1]);
    assert_eq!(vals::<f32>(&y), vec![2., 4., 6.]);
    let y = run(Op::Gather { axis: -2 }, &[&data, &Tensor::scalar(1i64)]);
    assert_eq!(y.shape(), &[2]);
    assert_eq!(vals::<f32>(&y), vec![3., 4.]);
    let y = run(Op::Gather { axis: 0 }, &[&data, &v1(Vec::<i64>::new())]);
    assert_eq!(y.shape(), &[0, 2]);
    let y = run(Op::Gather { axis: 0 }, &[&v1(vec![true, false]), &v1(vec![1i64, 1, 0])]);
    assert_eq!(vals::<bool>(&y), vec![false, false, true]);
    assert!(err(Op::Gather { axis: 0 }, &[&data, &v1(vec![3i64])]).contains("index 3 out of range"));
    assert!(err(Op::Gather { axis: 0 }, &[&data, &v1(vec![-4i64])]).contains("index -4 out of range"));
    assert!(err(Op::Gather { axis: 0 }, &[&data, &v1(vec![i64::MIN])]).contains("out of range"));
    assert!(err(Op::Gather { axis: 2 }, &[&data, &v1(vec![0i64])]).contains("axis 2"));
    assert!(err(Op::Gather { axis: 0 }, &[&data, &v1(vec![0f32])]).contains("i64 or i32"));
}

#[test]
fn shape_op() {
    let x = iota(&[2, 3, 4]);
    let s = |start, end| vals::<i64>(&run(Op::Shape { start, end }, &[&x]));
    assert_eq!(s(0, None), vec![2, 3, 4]);
    assert_eq!(s(1, None), vec![3, 4]);
    assert_eq!(s(-1, None), vec![4]);
    assert_eq!(s(0, Some(-1)), vec![2, 3]);
    assert_eq!(s(10, None), Vec::<i64>::new());
    assert_eq!(s(-10, Some(10)), vec![2, 3, 4]);
    assert_eq!(s(2, Some(1)), Vec::<i64>::new());
    let y = run(Op::Shape { start: 0, end: None }, &[&Tensor::scalar(1f32)]);
    assert_eq!((y.dtype(), y.shape()), (DType::I64, &[0usize][..]));
}

#[test]
fn expand_bidirectional() {
    let x = t(&[3, 1], vec![1i32, 2, 3]);
    let y = run(Op::Expand, &[&x, &v1(vec![2i64, 1, 4])]);
    assert_eq!(y.shape(), &[2, 3, 4]);
    let yv = vals::<i32>(&y);
    assert_eq!(&yv[..8], &[1, 1, 1, 1, 2, 2, 2, 2]);
    assert_eq!(&yv[12..16], &[1, 1, 1, 1]);
    let y = run(Op::Expand, &[&v1(vec![1f32, 2., 3.]), &v1(vec![1i64])]);
    assert_eq!(y.shape(), &[3]);
    let y = run(Op::Expand, &[&Tensor::scalar(true), &v1(vec![2i64, 2])]);
    assert_eq!(vals::<bool>(&y), vec![true; 4]);
    assert!(err(Op::Expand, &[&x, &v1(vec![4i64, 2])]).contains("broadcast"));
    assert_eq!(run(Op::Expand, &[&x, &v1(vec![2i64])]).shape(), &[3, 2]);
    assert!(err(Op::Expand, &[&x, &v1(vec![-1i64])]).contains("negative"));
    assert!(err(Op::Expand, &[&x, &v1(vec![1i64 << 40, 1 << 40, 1, 1])]).contains("limit"));
}

#[test]
fn constant_of_shape() {
    let op = |value: Tensor| Op::ConstantOfShape { value };
    let y = run(op(v1(vec![7i64])), &[&v1(vec![2i64, 3])]);
    assert_eq!((y.dtype(), y.shape()), (DType::I64, &[2usize, 3][..]));
    assert_eq!(vals::<i64>(&y), vec![7; 6]);
    let y = run(op(v1(vec![0f32])), &[&v1(Vec::<i64>::new())]);
    assert_eq!((y.shape(), vals::<f32>(&y)), (&[] as &[usize], vec![0.]));
    let y = run(op(Tensor::scalar(true)), &[&v1(vec![2i64, 0])]);
    assert_eq!(y.shape(), &[2, 0]);
    assert!(err(op(v1(vec![0f32])), &[&v1(vec![-1i64])]).contains("negative"));
    let e = err(op(v1(vec![0f32])), &[&v1(vec![1i64 << 40, 1 << 40])]);
    assert!(e.contains(&MAX_ELEMENTS.to_string()), "{e}");
    assert!(err(op(v1(vec![0f32, 1.])), &[&v1(vec![2i64])]).contains("one element"));
}

#[test]
fn range_sequences() {
    let r = |s: Tensor, l: Tensor, d: Tensor| run(Op::Range, &[&s, &l, &d]);
    let y = r(Tensor::scalar(0f32), Tensor::scalar(1f32), Tensor::scalar(0.25f32));
    assert_eq!(vals::<f32>(&y), vec![0., 0.25, 0.5, 0.75]);
    let y = r(Tensor::scalar(1f32), Tensor::scalar(2f32), Tensor::scalar(0.3f32));
    assert_eq!(vals::<f32>(&y).len(), 4);
    let y = r(Tensor::scalar(10i64), Tensor::scalar(1i64), Tensor::scalar(-3i64));
    assert_eq!(vals::<i64>(&y), vec![10, 7, 4]);
    let y = r(Tensor::scalar(0i32), Tensor::scalar(0i32), Tensor::scalar(1i32));
    assert_eq!(y.shape(), &[0]);
    let y = r(Tensor::scalar(5i32), Tensor::scalar(1i32), Tensor::scalar(1i32));
    assert_eq!(y.shape(), &[0]);
    let y = r(Tensor::scalar(-3i16), Tensor::scalar(3i16), Tensor::scalar(2i16));
    assert_eq!(vals::<i16>(&y), vec![-3, -1, 1]);
    let y = r(v1(vec![i64::MAX - 2]), Tensor::scalar(i64::MAX), Tensor::scalar(1i64));
    assert_eq!(vals::<i64>(&y), vec![i64::MAX - 2, i64::MAX - 1]);
    let bad = |s: Tensor, l: Tensor, d: Tensor| err(Op::Range, &[&s, &l, &d]);
    assert!(bad(Tensor::scalar(0i64), Tensor::scalar(5i64), Tensor::scalar(0i64)).contains("delta"));
    assert!(bad(Tensor::scalar(0f32), Tensor::scalar(5f32), Tensor::scalar(0f32)).contains("delta"));
    assert!(bad(Tensor::scalar(0f32), Tensor::scalar(5i64), Tensor::scalar(1f32)).contains("dtype"));
    assert!(bad(Tensor::scalar(0i64), Tensor::scalar(i64::MAX), Tensor::scalar(1i64)).contains("limit"));
    assert!(bad(Tensor::scalar(0f32), Tensor::scalar(f32::INFINITY), Tensor::scalar(1f32)).contains("finite"));
    assert!(bad(v1(vec![0i64, 1]), Tensor::scalar(5i64), Tensor::scalar(1i64)).contains("scalar"));
}
