//! Shape rules of data-movement, generator and reduction operators.

mod common;
use common::*;
use lithe_ir::op::{ArgAttrs, ReduceAttrs};
use lithe_ir::{DType, Op, Tensor};

fn reshape() -> Op {
    Op::Reshape { allowzero: false }
}

#[test]
fn reshape_zero_and_minus_one() {
    assert_eq!(out(&reshape(), &[f32s("2,3,4"), i64c(&[0, -1])]), "f32[2,12]");
    assert_eq!(out(&reshape(), &[f32s("2,3,4"), i64c(&[-1])]), "f32[24]");
    assert_eq!(out(&reshape(), &[f32s("2,3,4"), i64c(&[4, 0, -1])]), "f32[4,3,2]");
    assert_eq!(out(&reshape(), &[f32s("0,3,4"), i64c(&[-1, 4])]), "f32[0,4]");
    // Symbolic: copied dims cancel, a lone remaining symbol is what -1 stands for.
    assert_eq!(out(&reshape(), &[f32s("N,512,1,1"), i64c(&[0, -1])]), "f32[N,512]");
    assert_eq!(out(&reshape(), &[f32s("N,S,768"), i64c(&[0, 0, 12, 64])]), "f32[N,S,12,64]");
    assert_eq!(out(&reshape(), &[f32s("N,S,768"), i64c(&[0, -1, 12, 64])]), "f32[N,S,12,64]");
    assert_eq!(out(&reshape(), &[f32s("N,S,768"), i64c(&[-1, 768])]), "f32[?,768]");
    // allowzero: 0 is a real size.
    assert_eq!(out(&Op::Reshape { allowzero: true }, &[f32s("0,4"), i64c(&[4, 0])]), "f32[4,0]");
    // Shape not constant: rank from the shape input's length.
    assert_eq!(out(&reshape(), &[f32s("2,3,4"), typed(DType::I64, "3")]), "f32[?,?,?]");
    assert_eq!(out(&reshape(), &[f32s("2,3,4"), typed(DType::I64, "?")]), "f32[*]");
}

#[test]
fn reshape_errors() {
    let e = err(&reshape(), &[f32s("2,3,4"), i64c(&[5, -1])]);
    assert!(e.contains("[2,3,4]") && e.contains("[5, -1]"), "{e}");
    assert!(err(&reshape(), &[f32s("2,3,4"), i64c(&[5, 5])]).contains("24 elements"));
    assert!(run(&reshape(), &[f32s("2,3,4"), i64c(&[-1, -1])]).is_err());
    assert!(run(&reshape(), &[f32s("2,3,4"), i64c(&[-2, 12])]).is_err());
    assert!(run(&reshape(), &[f32s("2,3"), i64c(&[0, 0, 0])]).is_err());
    assert!(run(&Op::Reshape { allowzero: true }, &[f32s("2,3"), i64c(&[0, -1])]).is_err());
    assert!(run(&reshape(), &[f32s("2,3"), f32c(&[6.0])]).is_err());
    assert!(run(&reshape(), &[f32s("0,3"), i64c(&[0, -1])]).is_err());
    assert!(run(&reshape(), &[f32s(&format!("{},{}", usize::MAX, 4)), i64c(&[-1])]).is_err());
}

#[test]
fn flatten_transpose() {
    assert_eq!(out(&Op::Flatten { axis: 1 }, &[f32s("N,512,1,1")]), "f32[N,512]");
    assert_eq!(out(&Op::Flatten { axis: 0 }, &[f32s("2,3,4")]), "f32[1,24]");
    assert_eq!(out(&Op::Flatten { axis: 3 }, &[f32s("2,3,4")]), "f32[24,1]");
    assert_eq!(out(&Op::Flatten { axis: -1 }, &[f32s("N,3,4")]), "f32[?,4]");
    assert!(run(&Op::Flatten { axis: 4 }, &[f32s("2,3,4")]).is_err());
    assert_eq!(out(&Op::Transpose { perm: None }, &[f32s("N,3,4")]), "f32[4,3,N]");
    assert_eq!(out(&Op::Transpose { perm: Some(vec![0, 2, 3, 1]) }, &[f32s("N,C,H,W")]), "f32[N,H,W,C]");
    for perm in [vec![0, 1], vec![0, 0, 1], vec![0, 1, 5], vec![0, 1, 2, 3]] {
        let e = err(&Op::Transpose { perm: Some(perm.clone()) }, &[f32s("2,3,4")]);
        assert!(e.contains("perm") && e.contains("[2,3,4]"), "{e}");
    }
}

#[test]
fn squeeze_unsqueeze() {
    assert_eq!(out(&Op::Squeeze, &[f32s("1,3,1,4")]), "f32[3,4]");
    assert_eq!(out(&Op::Squeeze, &[f32s("1,3,1,4"), i64c(&[])]), "f32[3,4]");
    // Without axes a symbolic dim might be 1: the rank is unknown.
    assert_eq!(out(&Op::Squeeze, &[f32s("1,N,4")]), "f32[*]");
    assert_eq!(out(&Op::Squeeze, &[f32s("1,N,1,4"), i64c(&[-2])]), "f32[1,N,4]");
    assert_eq!(out(&Op::Squeeze, &[f32s("1,N,1,4"), typed(DType::I64, "2")]), "f32[?,?]");
    assert!(err(&Op::Squeeze, &[f32s("1,3"), i64c(&[1])]).contains("size 3"));
    assert!(run(&Op::Squeeze, &[f32s("1,3"), i64c(&[2])]).is_err());
    assert!(run(&Op::Squeeze, &[f32s("1,1"), i64c(&[0, -2])]).is_err());

    assert_eq!(out(&Op::Unsqueeze, &[f32s("3,4"), i64c(&[0, 3])]), "f32[1,3,4,1]");
    assert_eq!(out(&Op::Unsqueeze, &[f32s("N"), i64c(&[-1, 0])]), "f32[1,N,1]");
    assert_eq!(out(&Op::Unsqueeze, &[f32s(""), i64c(&[0])]), "f32[1]");
    assert_eq!(out(&Op::Unsqueeze, &[f32s("3"), typed(DType::I64, "2")]), "f32[?,?,?]");
    assert!(run(&Op::Unsqueeze, &[f32s("3,4"), i64c(&[3])]).is_err());
    assert!(run(&Op::Unsqueeze, &[f32s("3,4")]).is_err());
}

#[test]
fn concat_split_gather() {
    let c = Op::Concat { axis: 1 };
    assert_eq!(out(&c, &[f32s("N,16,H,W"), f32s("N,32,H,W")]), "f32[N,48,H,W]");
    assert_eq!(out(&c, &[f32s("N,16"), f32s("?,S")]), "f32[N,?]");
    assert_eq!(out(&Op::Concat { axis: -1 }, &[f32s("2,3"), f32s("2,4"), f32s("2,0")]), "f32[2,7]");
    let e = err(&c, &[f32s("1,16,8,8"), f32s("1,16,4,4")]);
    assert!(e.contains("[1,16,8,8]") && e.contains("[1,16,4,4]"), "{e}");
    assert!(run(&c, &[f32s("1,16"), f32s("1,16,1")]).is_err());
    assert!(run(&c, &[f32s("1,16"), typed(DType::I64, "1,16")]).is_err());

    let split = |n| Op::Split { axis: 1, num_outputs: n };
    let v = run_n(&split(3), &[f32s("2,7")], 3).unwrap();
    let s: Vec<String> = v.iter().map(|t| t.to_string()).collect();
    assert_eq!(s, ["f32[2,3]", "f32[2,3]", "f32[2,1]"]);
    let v = run_n(&split(2), &[f32s("2,10"), i64c(&[3, 7])], 2).unwrap();
    assert_eq!((v[0].to_string(), v[1].to_string()), ("f32[2,3]".into(), "f32[2,7]".into()));
    assert!(run_n(&split(2), &[f32s("2,10"), i64c(&[3, 6])], 2).unwrap_err().to_string().contains("sums to 9"));
    assert!(run_n(&split(2), &[f32s("2,10")], 3).is_err());
    assert!(run_n(&split(4), &[f32s("2,5")], 4).is_err());
    assert_eq!(run_n(&split(2), &[f32s("2,S")], 2).unwrap()[1].to_string(), "f32[2,?]");

    let g = Op::Gather { axis: 0 };
    assert_eq!(out(&g, &[f32s("1000,64"), typed(DType::I64, "N,S")]), "f32[N,S,64]");
    assert_eq!(out(&Op::Gather { axis: 1 }, &[f32s("2,3,4"), Arg::C(Tensor::scalar(-1i64))]), "f32[2,4]");
    assert!(err(&Op::Gather { axis: 1 }, &[f32s("2,3,4"), i64c(&[3])]).contains("index 3"));
    assert!(run(&g, &[f32s("2,3"), f32s("1")]).is_err());
}

#[test]
fn shape_expand_generators() {
    assert_eq!(out(&Op::Shape { start: 0, end: None }, &[f32s("N,3,H,W")]), "i64[4]");
    assert_eq!(out(&Op::Shape { start: -2, end: None }, &[f32s("N,3,H,W")]), "i64[2]");
    assert_eq!(out(&Op::Shape { start: 1, end: Some(-5) }, &[f32s("N,3,H,W")]), "i64[0]");
    assert_eq!(out(&Op::Shape { start: -100, end: Some(100) }, &[f32s("N,3")]), "i64[2]");
    assert_eq!(out(&Op::Shape { start: 0, end: None }, &[unranked(DType::F32)]), "i64[?]");

    assert_eq!(out(&Op::Expand, &[f32s("3,1"), i64c(&[2, 1, 6])]), "f32[2,3,6]");
    assert_eq!(out(&Op::Expand, &[f32s("N,1"), i64c(&[1, 5])]), "f32[N,5]");
    assert_eq!(out(&Op::Expand, &[f32s("3,1"), typed(DType::I64, "3")]), "f32[?,3,?]");
    assert!(run(&Op::Expand, &[f32s("3,2"), i64c(&[4])]).is_err());
    assert!(run(&Op::Expand, &[f32s("3,1"), i64c(&[-3, 1])]).is_err());

    let cos = Op::ConstantOfShape { value: Tensor::from_vec(&[1], vec![7i32]).unwrap() };
    assert_eq!(out(&cos, &[i64c(&[2, 3])]), "i32[2,3]");
    assert_eq!(out(&cos, &[i64c(&[])]), "i32[]");
    assert_eq!(out(&cos, &[typed(DType::I64, "3")]), "i32[?,?,?]");
    assert!(run(&cos, &[i64c(&[2, -3])]).is_err());
    assert!(run(&cos, &[i64c(&[1 << 40, 1 << 40])]).is_err());
    let bad = Op::ConstantOfShape { value: Tensor::zeros(DType::F32, &[2]) };
    assert!(run(&bad, &[i64c(&[2])]).is_err());

    let s = |v: f32| Arg::C(Tensor::scalar(v));
    let i = |v: i64| Arg::C(Tensor::scalar(v));
    assert_eq!(out(&Op::Range, &[s(1.0), s(2.05), s(0.1)]), "f32[11]");
    assert_eq!(out(&Op::Range, &[i(10), i(-3), i(-4)]), "i64[4]");
    assert_eq!(out(&Op::Range, &[i(0), i(5), i(-1)]), "i64[0]");
    assert_eq!(out(&Op::Range, &[i(0), typed(DType::I64, ""), i(1)]), "i64[?]");
    assert!(run(&Op::Range, &[i(0), i(5), i(0)]).is_err());
    assert!(run(&Op::Range, &[i(0), s(5.0), i(1)]).is_err());
    assert!(run(&Op::Range, &[i(i64::MIN), i(i64::MAX), i(1)]).is_ok());
}

#[test]
fn reductions() {
    let r = |keepdims| Op::ReduceMean(ReduceAttrs { keepdims, noop_with_empty_axes: false });
    assert_eq!(out(&r(true), &[f32s("N,C,H,W"), i64c(&[2, -1])]), "f32[N,C,1,1]");
    assert_eq!(out(&r(false), &[f32s("N,C,H,W"), i64c(&[2, -1])]), "f32[N,C]");
    assert_eq!(out(&r(false), &[f32s("N,C,H,W")]), "f32[]");
    assert_eq!(out(&r(true), &[f32s("N,C")]), "f32[1,1]");
    let noop = Op::ReduceSum(ReduceAttrs { keepdims: true, noop_with_empty_axes: true });
    assert_eq!(out(&noop, &[f32s("N,C"), i64c(&[])]), "f32[N,C]");
    assert_eq!(out(&r(true), &[f32s("N,C,H"), typed(DType::I64, "2")]), "f32[?,?,?]");
    assert_eq!(out(&r(false), &[f32s("N,C,H"), typed(DType::I64, "2")]), "f32[?]");
    assert!(err(&r(true), &[f32s("N,C"), i64c(&[2])]).contains("axis 2"));

    let am = Op::ArgMax(ArgAttrs { axis: 1, keepdims: false, select_last_index: false });
    assert_eq!(out(&am, &[f32s("N,1000")]), "i64[N]");
    let am = Op::ArgMax(ArgAttrs { axis: -1, keepdims: true, select_last_index: false });
    assert_eq!(out(&am, &[f32s("N,S,V")]), "i64[N,S,1]");
}

#[test]
fn errors_name_the_input_shapes() {
    let r = Op::ReduceSum(ReduceAttrs::default());
    let e = err(&r, &[f32s("N,C"), i64c(&[2])]);
    assert!(e.contains("axis 2") && e.contains("f32[N,C]"), "{e}");
    let e = err(&Op::Flatten { axis: 9 }, &[f32s("2,3")]);
    assert!(e.contains("[2,3]"), "{e}");
}
