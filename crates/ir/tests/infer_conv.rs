//! Shape rules of the sliding-window operators.

mod common;
use common::*;
use lithe_ir::op::{AutoPad, AvgPoolAttrs, ConvAttrs, ConvTransposeAttrs, PoolAttrs};
use lithe_ir::{DType, IrError, Op};

fn conv(strides: &[usize], pads: &[usize], group: usize) -> Op {
    Op::Conv(ConvAttrs { strides: strides.to_vec(), pads: pads.to_vec(), group, ..Default::default() })
}

#[test]
fn conv_stride2_pad1() {
    let op = conv(&[2, 2], &[1, 1, 1, 1], 1);
    assert_eq!(out(&op, &[f32s("1,3,224,224"), f32s("32,3,3,3")]), "f32[1,32,112,112]");
    assert_eq!(out(&op, &[f32s("1,3,224,224"), f32s("32,3,3,3"), f32s("32")]), "f32[1,32,112,112]");
}

#[test]
fn conv_depthwise_dilated_and_1d() {
    assert_eq!(out(&conv(&[], &[1, 1, 1, 1], 32), &[f32s("1,32,112,112"), f32s("32,1,3,3")]), "f32[1,32,112,112]");
    let dil = Op::Conv(ConvAttrs { dilations: vec![2, 2], group: 1, ..Default::default() });
    assert_eq!(out(&dil, &[f32s("1,1,10,10"), f32s("1,1,3,3")]), "f32[1,1,6,6]");
    assert_eq!(out(&conv(&[], &[], 1), &[f32s("1,2,10"), f32s("4,2,3")]), "f32[1,4,8]");
    // Non-square kernel and asymmetric pads: H = 10+1+0-5+1 = 7, W = (10+0+2-1)/2+1 = 6.
    let asym = Op::Conv(ConvAttrs { strides: vec![1, 2], pads: vec![1, 0, 0, 2], group: 1, ..Default::default() });
    assert_eq!(out(&asym, &[f32s("2,3,10,10"), f32s("8,3,5,1")]), "f32[2,8,7,6]");
}

#[test]
fn conv_auto_pad() {
    let same = |ap| Op::Conv(ConvAttrs { strides: vec![2, 2], auto_pad: ap, group: 1, ..Default::default() });
    for ap in [AutoPad::SameUpper, AutoPad::SameLower] {
        assert_eq!(out(&same(ap), &[f32s("1,3,224,224"), f32s("8,3,3,3")]), "f32[1,8,112,112]");
        assert_eq!(out(&same(ap), &[f32s("1,3,225,225"), f32s("8,3,3,3")]), "f32[1,8,113,113]");
    }
    assert_eq!(out(&same(AutoPad::Valid), &[f32s("1,3,225,225"), f32s("8,3,3,3")]), "f32[1,8,112,112]");
}

#[test]
fn conv_symbolic_dims() {
    // Stride 1 and pads covering the window keep the symbolic sizes.
    let op = conv(&[], &[1, 1, 1, 1], 1);
    assert_eq!(out(&op, &[f32s("N,3,H,W"), f32s("16,3,3,3")]), "f32[N,16,H,W]");
    // Stride 2: the size is not a symbol any more.
    let op = conv(&[2, 2], &[1, 1, 1, 1], 1);
    assert_eq!(out(&op, &[f32s("N,3,H,224"), f32s("16,3,3,3")]), "f32[N,16,?,112]");
    // SAME with stride 1 keeps them too; a 3x3 VALID conv does not.
    let same = Op::Conv(ConvAttrs { auto_pad: AutoPad::SameUpper, group: 1, ..Default::default() });
    assert_eq!(out(&same, &[f32s("N,3,H,W"), f32s("16,3,3,3")]), "f32[N,16,H,W]");
    assert_eq!(out(&conv(&[], &[], 1), &[f32s("N,3,H,W"), f32s("16,3,3,3")]), "f32[N,16,?,?]");
    // Unknown input rank: the weight gives the rank and output channels.
    assert_eq!(out(&conv(&[], &[], 1), &[unranked(DType::F32), f32s("16,3,3,3")]), "f32[?,16,?,?]");
}

#[test]
fn conv_errors_name_shapes() {
    let e = err(&conv(&[], &[], 1), &[f32s("1,4,8,8"), f32s("8,3,3,3")]);
    assert!(e.contains("4 channels") && e.contains("[8,3,3,3]"), "{e}");
    let e = err(&conv(&[], &[], 2), &[f32s("1,6,8,8"), f32s("3,3,3,3")]);
    assert!(e.contains("3 output channels") && e.contains("2 groups"), "{e}");
    let e = err(&conv(&[], &[], 1), &[f32s("1,3,8,8"), f32s("8,3,3,3"), f32s("4")]);
    assert!(e.contains("bias [4]"), "{e}");
    let e = err(&conv(&[], &[], 0), &[f32s("1,3,8,8"), f32s("8,3,3,3")]);
    assert!(e.contains("group"), "{e}");
    let e = err(&conv(&[], &[], 1), &[f32s("1,3,8,8"), f32s("8,3,3")]);
    assert!(e.contains("different ranks"), "{e}");
    let e = err(&conv(&[], &[], 1), &[f32s("1,3,2,2"), f32s("8,3,3,3")]);
    assert!(e.contains("does not fit") && e.contains("[1,3,2,2]"), "{e}");
    let e = err(&conv(&[1], &[], 1), &[f32s("1,3,8,8"), f32s("8,3,3,3")]);
    assert!(e.contains("strides"), "{e}");
    let e = err(&conv(&[], &[1, 1], 1), &[f32s("1,3,8,8"), f32s("8,3,3,3")]);
    assert!(e.contains("pads"), "{e}");
    let bad_k = Op::Conv(ConvAttrs { kernel_shape: Some(vec![5, 5]), group: 1, ..Default::default() });
    assert!(err(&bad_k, &[f32s("1,3,8,8"), f32s("8,3,3,3")]).contains("kernel_shape"));
    assert!(matches!(
        run(&conv(&[], &[], 1), &[f32s("1,3,8,8"), typed(DType::I64, "8,3,3,3")]),
        Err(IrError::DType { expected: DType::F32, found: DType::I64, .. })
    ));
    assert!(matches!(run(&conv(&[], &[], 1), &[f32s("1,3,8,8")]), Err(IrError::MissingInput { slot: 1, what: "W" })));
}

#[test]
fn conv_hostile_attributes_do_not_panic() {
    let huge = usize::MAX / 2;
    for op in [
        conv(&[huge, 1], &[], 1),
        conv(&[0, 1], &[], 1),
        conv(&[], &[huge, 0, 0, 0], 1),
        Op::Conv(ConvAttrs { dilations: vec![huge, huge], group: 1, ..Default::default() }),
        Op::Conv(ConvAttrs { kernel_shape: Some(vec![huge, 3]), group: 1, ..Default::default() }),
        conv(&[], &[], huge),
    ] {
        assert!(run(&op, &[f32s("1,3,8,8"), f32s("8,3,3,3")]).is_err());
    }
    assert!(run(&conv(&[], &[], 1), &[f32s(&format!("1,3,{huge},8")), f32s("8,3,3,3")]).is_err());
}

fn convt(attrs: ConvTransposeAttrs) -> Op {
    Op::ConvTranspose(attrs)
}

fn ct(strides: &[usize], pads: &[usize], group: usize) -> ConvTransposeAttrs {
    ConvTransposeAttrs {
        conv: ConvAttrs { strides: strides.to_vec(), pads: pads.to_vec(), group, ..Default::default() },
        ..Default::default()
    }
}

#[test]
fn conv_transpose_shapes() {
    // (14-1)*2 + 1 + 3 - 1 - 1 = 28
    let op = convt(ConvTransposeAttrs { output_padding: vec![1, 1], ..ct(&[2, 2], &[1, 1, 1, 1], 1) });
    assert_eq!(out(&op, &[f32s("1,16,14,14"), f32s("16,8,3,3")]), "f32[1,8,28,28]");
    // output_shape wins over pads.
    let op = convt(ConvTransposeAttrs { output_shape: Some(vec![28, 27]), ..ct(&[2, 2], &[], 1) });
    assert_eq!(out(&op, &[f32s("1,16,14,14"), f32s("16,8,3,3"), f32s("8")]), "f32[1,8,28,27]");
    // Groups multiply W's second dim; SAME gives in * stride.
    let mut a = ct(&[2, 2], &[], 2);
    a.conv.auto_pad = AutoPad::SameUpper;
    assert_eq!(out(&convt(a), &[f32s("1,16,14,14"), f32s("16,4,3,3")]), "f32[1,8,28,28]");
    // Unknown spatial sizes.
    assert_eq!(out(&convt(ct(&[2, 2], &[], 1)), &[f32s("N,16,H,7"), f32s("16,8,2,2")]), "f32[N,8,?,14]");
    assert_eq!(out(&convt(ct(&[1, 1], &[1, 1, 1, 1], 1)), &[f32s("N,16,H,W"), f32s("16,8,3,3")]), "f32[N,8,H,W]");
}

#[test]
fn conv_transpose_errors() {
    let e = err(&convt(ct(&[], &[], 1)), &[f32s("1,8,4,4"), f32s("16,8,3,3")]);
    assert!(e.contains("8 channels") && e.contains("[16,8,3,3]"), "{e}");
    let op = convt(ConvTransposeAttrs { output_shape: Some(vec![40, 40]), ..ct(&[2, 2], &[], 1) });
    // Larger than the full output (29): accepted, the extra positions hold only the bias (as onnxruntime).
    assert_eq!(out(&op, &[f32s("1,16,14,14"), f32s("16,8,3,3")]), "f32[1,8,40,40]");
    let op = convt(ConvTransposeAttrs { output_shape: Some(vec![28]), ..ct(&[2, 2], &[], 1) });
    assert!(err(&op, &[f32s("1,16,14,14"), f32s("16,8,3,3")]).contains("output_shape"));
    let e = err(&convt(ct(&[], &[3, 3, 3, 3], 1)), &[f32s("1,16,2,2"), f32s("16,8,3,3")]);
    assert!(e.contains("exceed"), "{e}");
}

fn pool(k: usize, s: usize, pads: &[usize], ceil: bool) -> PoolAttrs {
    PoolAttrs {
        kernel_shape: vec![k, k],
        strides: vec![s, s],
        pads: pads.to_vec(),
        ceil_mode: ceil,
        ..Default::default()
    }
}

#[test]
fn pooling_shapes() {
    assert_eq!(out(&Op::MaxPool(pool(3, 2, &[], false)), &[f32s("1,64,112,112")]), "f32[1,64,55,55]");
    assert_eq!(out(&Op::MaxPool(pool(3, 2, &[], true)), &[f32s("1,64,112,112")]), "f32[1,64,56,56]");
    assert_eq!(out(&Op::MaxPool(pool(3, 2, &[1, 1, 1, 1], false)), &[f32s("1,64,112,112")]), "f32[1,64,56,56]");
    // Ceil mode drops a last window that would start in the end padding (onnxruntime agrees).
    assert_eq!(out(&Op::MaxPool(pool(2, 3, &[0, 0, 1, 1], true)), &[f32s("1,1,5,5")]), "f32[1,1,2,2]");
    let same = AvgPoolAttrs {
        pool: PoolAttrs { auto_pad: AutoPad::SameUpper, ..pool(3, 2, &[], false) },
        count_include_pad: false,
    };
    assert_eq!(out(&Op::AveragePool(same), &[f32s("1,3,7,7")]), "f32[1,3,4,4]");
    assert_eq!(out(&Op::MaxPool(pool(2, 2, &[], false)), &[f32s("N,C,H,8")]), "f32[N,C,?,4]");
    assert_eq!(out(&Op::MaxPool(pool(2, 2, &[], false)), &[unranked(DType::F32)]), "f32[?,?,?,?]");
    // MaxPool's optional indices output.
    let v = run_n(&Op::MaxPool(pool(2, 2, &[], false)), &[f32s("1,3,8,8")], 2).unwrap();
    assert_eq!(v[1].to_string(), "i64[1,3,4,4]");
    assert!(run_n(&Op::AveragePool(AvgPoolAttrs::default()), &[f32s("1,3,8,8")], 2).is_err());
}

#[test]
fn pooling_errors() {
    let e = err(&Op::MaxPool(pool(3, 2, &[], false)), &[f32s("1,3,8")]);
    assert!(e.contains("rank 4") && e.contains("[1,3,8]"), "{e}");
    assert!(err(&Op::MaxPool(pool(9, 1, &[], false)), &[f32s("1,3,8,8")]).contains("does not fit"));
    assert!(err(&Op::MaxPool(PoolAttrs::default()), &[f32s("1,3,8,8")]).contains("kernel_shape"));
    assert!(run(&Op::MaxPool(pool(0, 1, &[], false)), &[f32s("1,3,8,8")]).is_err());
}

#[test]
fn global_pools() {
    assert_eq!(out(&Op::GlobalAveragePool, &[f32s("N,512,7,7")]), "f32[N,512,1,1]");
    assert_eq!(out(&Op::GlobalMaxPool, &[f32s("2,8,H,W,3")]), "f32[2,8,1,1,1]");
    assert!(run(&Op::GlobalMaxPool, &[f32s("8")]).is_err());
}
