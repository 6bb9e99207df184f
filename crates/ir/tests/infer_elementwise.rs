//! Shape rules of elementwise, matrix and normalization operators.

mod common;
use common::*;
use lithe_ir::op::{GemmAttrs, SoftmaxAttrs};
use lithe_ir::{DType, IrError, Op, Tensor};

#[test]
fn broadcasting_known() {
    assert_eq!(out(&Op::Add, &[f32s("2,3,4"), f32s("4")]), "f32[2,3,4]");
    assert_eq!(out(&Op::Mul, &[f32s("2,1,4"), f32s("3,1")]), "f32[2,3,4]");
    assert_eq!(out(&Op::Sub, &[f32s(""), f32s("5,1")]), "f32[5,1]");
    assert_eq!(out(&Op::Div, &[f32s("0,3"), f32s("1,3")]), "f32[0,3]");
    let e = err(&Op::Add, &[f32s("2,3"), f32s("4")]);
    assert!(e.contains("[2,3]") && e.contains("[4]"), "{e}");
}

#[test]
fn broadcasting_symbolic() {
    // Sym vs 1 -> Sym; same Sym -> Sym; Sym vs n>1 -> n; different syms or unknown -> ?.
    assert_eq!(out(&Op::Add, &[f32s("N,1,4"), f32s("1,3,1")]), "f32[N,3,4]");
    assert_eq!(out(&Op::Add, &[f32s("N,S"), f32s("N,S")]), "f32[N,S]");
    assert_eq!(out(&Op::Add, &[f32s("N,S"), f32s("7,S")]), "f32[7,S]");
    assert_eq!(out(&Op::Add, &[f32s("N,S"), f32s("M,?")]), "f32[?,?]");
    assert_eq!(out(&Op::Add, &[f32s("?"), f32s("1")]), "f32[?]");
    assert_eq!(out(&Op::Add, &[f32s("?"), f32s("5")]), "f32[5]");
    assert_eq!(out(&Op::Add, &[unranked(DType::F32), f32s("5")]), "f32[*]");
}

#[test]
fn dtype_rules() {
    assert!(matches!(
        run(&Op::Add, &[f32s("2"), typed(DType::I64, "2")]),
        Err(IrError::DType { expected: DType::F32, found: DType::I64, .. })
    ));
    assert_eq!(out(&Op::Equal, &[typed(DType::I64, "N,1"), typed(DType::I64, "3")]), "bool[N,3]");
    assert_eq!(out(&Op::Pow, &[f32s("2,3"), typed(DType::I32, "")]), "f32[2,3]");
    assert_eq!(out(&Op::Cast { to: DType::F16 }, &[typed(DType::I8, "N,2")]), "f16[N,2]");
    assert_eq!(
        out(&Op::Where, &[typed(DType::Bool, "2,1"), typed(DType::I64, "3"), typed(DType::I64, "")]),
        "i64[2,3]"
    );
    assert!(run(&Op::Where, &[f32s("2"), f32s("2"), f32s("2")]).is_err());
    assert!(run(&Op::Where, &[typed(DType::Bool, "2"), f32s("2"), typed(DType::F16, "2")]).is_err());
    assert_eq!(out(&Op::Max, &[f32s("3,1"), f32s("4"), f32s("")]), "f32[3,4]");
    assert_eq!(out(&Op::Min, &[f32s("N")]), "f32[N]");
    assert!(run(&Op::Min, &[f32s("3"), typed(DType::I32, "3")]).is_err());
    assert!(matches!(run(&Op::Max, &[]), Err(IrError::MissingInput { slot: 0, .. })));
}

#[test]
fn unary_and_activation_ops() {
    for op in [Op::Relu, Op::Sigmoid, Op::Tanh, Op::HardSwish, Op::Erf, Op::Sqrt, Op::Identity, Op::Abs] {
        assert_eq!(out(&op, &[f32s("N,3,H,W")]), "f32[N,3,H,W]");
    }
    assert_eq!(out(&Op::Clip, &[f32s("1,8"), Arg::None, f32c(&[6.0])]), "f32[1,8]");
    assert!(run(&Op::Clip, &[f32s("1,8"), f32c(&[0.0, 1.0])]).is_err());
    assert!(run(&Op::Clip, &[f32s("1,8"), typed(DType::I64, "")]).is_err());
    assert_eq!(out(&Op::PRelu, &[f32s("N,16,H,W"), f32s("16,1,1")]), "f32[N,16,H,W]");
    let e = err(&Op::PRelu, &[f32s("1,16,8,8"), f32s("16")]);
    assert!(e.contains("[16]") && e.contains("[1,16,8,8]"), "{e}");
    let v = run_n(&Op::Dropout, &[f32s("N,10")], 2).unwrap();
    assert_eq!((v[0].to_string(), v[1].to_string()), ("f32[N,10]".into(), "bool[N,10]".into()));
    assert!(run_n(&Op::Relu, &[f32s("2")], 2).is_err());
    assert!(run(&Op::Relu, &[f32s("2"), f32s("2")]).is_err());
}

#[test]
fn matmul_rules() {
    assert_eq!(out(&Op::MatMul, &[f32s("2,3,4"), f32s("4,5")]), "f32[2,3,5]");
    assert_eq!(out(&Op::MatMul, &[f32s("N,1,S,64"), f32s("8,64,S")]), "f32[N,8,S,S]");
    assert_eq!(out(&Op::MatMul, &[f32s("4"), f32s("4,5")]), "f32[5]");
    assert_eq!(out(&Op::MatMul, &[f32s("3,4"), f32s("4")]), "f32[3]");
    assert_eq!(out(&Op::MatMul, &[f32s("4"), f32s("4")]), "f32[]");
    let e = err(&Op::MatMul, &[f32s("2,3"), f32s("4,5")]);
    assert!(e.contains("[2,3]") && e.contains("[4,5]"), "{e}");
    assert!(run(&Op::MatMul, &[f32s("2,3,4"), f32s("3,4,5")]).is_err());
    assert!(run(&Op::MatMul, &[f32s(""), f32s("4")]).is_err());
}

#[test]
fn gemm_rules() {
    let g = |ta, tb| Op::Gemm(GemmAttrs { trans_a: ta, trans_b: tb, ..Default::default() });
    assert_eq!(out(&g(false, true), &[f32s("N,512"), f32s("1000,512"), f32s("1000")]), "f32[N,1000]");
    assert_eq!(out(&g(true, false), &[f32s("512,N"), f32s("512,10")]), "f32[N,10]");
    let e = err(&g(false, false), &[f32s("2,512"), f32s("1000,512")]);
    assert!(e.contains("[2,512]") && e.contains("[1000,512]"), "{e}");
    assert!(run(&g(false, true), &[f32s("2,512"), f32s("10,512"), f32s("3")]).is_err());
    assert!(run(&g(false, false), &[f32s("2,3,4"), f32s("4,5")]).is_err());
}

#[test]
fn normalization_rules() {
    let bn = Op::BatchNormalization { epsilon: 1e-5 };
    let p = || f32s("32");
    assert_eq!(out(&bn, &[f32s("N,32,H,W"), p(), p(), p(), p()]), "f32[N,32,H,W]");
    let e = err(&bn, &[f32s("1,32,4,4"), p(), p(), f32s("16"), p()]);
    assert!(e.contains("input_mean [16]") && e.contains("[1,32,4,4]"), "{e}");
    assert!(matches!(run(&bn, &[f32s("1,32,4,4"), p(), p(), p()]), Err(IrError::MissingInput { slot: 4, .. })));

    let ln = Op::LayerNormalization { axis: -1, epsilon: 1e-5 };
    assert_eq!(out(&ln, &[f32s("N,S,768"), f32s("768"), f32s("768")]), "f32[N,S,768]");
    let v = run_n(&ln, &[f32s("N,S,768"), f32s("768")], 3).unwrap();
    assert_eq!(v[2].to_string(), "f32[N,S,1]");
    assert!(run(&ln, &[f32s("N,S,768"), f32s("512")]).is_err());

    let sm = Op::Softmax(SoftmaxAttrs { axis: -1, coerce_2d: false });
    assert_eq!(out(&sm, &[f32s("N,1000")]), "f32[N,1000]");
    let bad = Op::Softmax(SoftmaxAttrs { axis: 2, coerce_2d: false });
    assert!(err(&bad, &[f32s("N,1000")]).contains("axis 2"));
}

#[test]
fn input_and_const_have_no_rule() {
    assert!(matches!(run(&Op::Input, &[]), Err(IrError::Attribute(_))));
    assert!(matches!(run(&Op::Const(Tensor::scalar(1.0f32)), &[]), Err(IrError::Attribute(_))));
}

#[test]
fn quantize_and_dequantize_linear_types() {
    use lithe_ir::op::{InferInput, infer};
    use lithe_ir::{Dim, Shape, TypeInfo};
    let ty = |d: DType, s: &[usize]| TypeInfo::new(d, Shape(s.iter().map(|&n| Dim::Known(n)).collect()));
    let x = ty(DType::F32, &[1, 4, 2, 2]);
    let s4 = ty(DType::F32, &[4]);
    let s3 = ty(DType::F32, &[3]);
    let scalar = ty(DType::F32, &[]);
    let zp_u8 = ty(DType::U8, &[]);
    fn inp(t: &TypeInfo) -> Option<InferInput<'_>> {
        Some(InferInput { info: t, value: None })
    }
    let q = infer(&Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[inp(&x), inp(&scalar), inp(&zp_u8)], 1).unwrap();
    assert_eq!(q[0], ty(DType::U8, &[1, 4, 2, 2]));
    let q = infer(&Op::QuantizeLinear { axis: 1, to: DType::I8 }, &[inp(&x), inp(&s4)], 1).unwrap();
    assert_eq!(q[0].dtype, DType::I8);
    // Scale length against the axis, zero point dtype against the output.
    assert!(infer(&Op::QuantizeLinear { axis: 1, to: DType::I8 }, &[inp(&x), inp(&s3)], 1).is_err());
    assert!(infer(&Op::QuantizeLinear { axis: 1, to: DType::I8 }, &[inp(&x), inp(&scalar), inp(&zp_u8)], 1).is_err());
    assert!(infer(&Op::QuantizeLinear { axis: 1, to: DType::F32 }, &[inp(&x), inp(&scalar)], 1).is_err());
    let qi = ty(DType::I8, &[1, 4, 2, 2]);
    let d = infer(&Op::DequantizeLinear { axis: 1 }, &[inp(&qi), inp(&s4)], 1).unwrap();
    assert_eq!(d[0], ty(DType::F32, &[1, 4, 2, 2]));
    assert!(infer(&Op::DequantizeLinear { axis: 1 }, &[inp(&x), inp(&s4)], 1).is_err());
    assert!(infer(&Op::DequantizeLinear { axis: 0 }, &[inp(&qi), inp(&s4)], 1).is_err());
    assert!(infer(&Op::DequantizeLinear { axis: 1 }, &[inp(&qi), inp(&scalar), inp(&zp_u8)], 1).is_err());
    let c = Tensor::scalar(1.0f32);
    let cv = Some(InferInput { info: &scalar, value: Some(&c) });
    assert!(infer(&Op::DequantizeLinear { axis: 1 }, &[inp(&qi), cv], 1).is_ok());
}

#[test]
fn dynamic_quantize_linear_types() {
    use lithe_ir::op::{InferInput, infer};
    use lithe_ir::{Dim, Shape, TypeInfo};
    let x = TypeInfo::new(DType::F32, Shape(vec![Dim::Sym("n".into()), Dim::Known(3)]));
    let x_in = Some(InferInput { info: &x, value: None });
    let out = infer(&Op::DynamicQuantizeLinear, &[x_in], 3).unwrap();
    assert_eq!(out[0], TypeInfo::new(DType::U8, Shape(vec![Dim::Sym("n".into()), Dim::Known(3)])));
    assert_eq!(out[1], TypeInfo::new(DType::F32, Shape(vec![])));
    assert_eq!(out[2], TypeInfo::new(DType::U8, Shape(vec![])));
    // Three outputs exactly, f32 input only.
    assert!(infer(&Op::DynamicQuantizeLinear, &[x_in], 1).is_err());
    let q = TypeInfo::new(DType::U8, [3]);
    assert!(infer(&Op::DynamicQuantizeLinear, &[Some(InferInput { info: &q, value: None })], 3).is_err());
    assert!(infer(&Op::DynamicQuantizeLinear, &[x_in, x_in], 3).is_err());
}
