//! Shape rules of Slice, Pad and Resize.

mod common;
use common::*;
use lithe_ir::op::{CoordTransform, PadMode, ResizeAttrs};
use lithe_ir::{DType, Op, Tensor};

#[test]
fn slice_basic_and_clamped() {
    let x = || f32s("2,10,7");
    assert_eq!(out(&Op::Slice, &[x(), i64c(&[1]), i64c(&[5]), i64c(&[1])]), "f32[2,4,7]");
    // Out-of-range starts/ends clamp to the dim (values checked against onnxruntime).
    assert_eq!(out(&Op::Slice, &[x(), i64c(&[-100, 3]), i64c(&[100, 1000]), i64c(&[0, 1])]), "f32[2,7,7]");
    // Negative indices count from the end; without axes, slices the leading axes.
    assert_eq!(out(&Op::Slice, &[x(), i64c(&[0, -3]), i64c(&[1, -1])]), "f32[1,2,7]");
    // Steps: ceil((end - start) / step).
    assert_eq!(out(&Op::Slice, &[x(), i64c(&[0]), i64c(&[10]), i64c(&[1]), i64c(&[3])]), "f32[2,4,7]");
    // Empty result when start >= end.
    assert_eq!(out(&Op::Slice, &[x(), i64c(&[5]), i64c(&[2]), i64c(&[1])]), "f32[2,0,7]");
    // i32 parameters are accepted too.
    let i32c = |v: i32| Arg::C(Tensor::from_vec(&[1], vec![v]).unwrap());
    assert_eq!(out(&Op::Slice, &[x(), i32c(2), i32c(4), i32c(-1)]), "f32[2,10,2]");
}

#[test]
fn slice_negative_steps() {
    let x = || f32s("2,10,7");
    // axis 2: 6 down to -1 (exclusive) by 2 -> 6,4,2,0; axis 1: 9 down to 2 by 3 -> 9,6,3.
    assert_eq!(
        out(&Op::Slice, &[x(), i64c(&[-1, 9]), i64c(&[-100, -8]), i64c(&[2, 1]), i64c(&[-2, -3])]),
        "f32[2,3,4]"
    );
    // Full reversal with clamped bounds.
    assert_eq!(out(&Op::Slice, &[x(), i64c(&[20]), i64c(&[-20]), i64c(&[1]), i64c(&[-1])]), "f32[2,10,7]");
    assert_eq!(out(&Op::Slice, &[x(), i64c(&[1]), i64c(&[5]), i64c(&[1]), i64c(&[-1])]), "f32[2,0,7]");
    assert_eq!(
        out(&Op::Slice, &[x(), i64c(&[i64::MAX]), i64c(&[i64::MIN]), i64c(&[0]), i64c(&[i64::MIN])]),
        "f32[1,10,7]"
    );
}

#[test]
fn slice_symbolic_and_partial() {
    // Full-range slices keep symbols; others lose them.
    assert_eq!(out(&Op::Slice, &[f32s("N,S"), i64c(&[0]), i64c(&[i64::MAX]), i64c(&[1])]), "f32[N,S]");
    assert_eq!(out(&Op::Slice, &[f32s("N,S"), i64c(&[-1]), i64c(&[i64::MIN]), i64c(&[1]), i64c(&[-1])]), "f32[N,S]");
    assert_eq!(out(&Op::Slice, &[f32s("N,S"), i64c(&[1]), i64c(&[i64::MAX]), i64c(&[1])]), "f32[N,?]");
    // Non-constant ends: the sliced axes lose their size, the others keep it.
    assert_eq!(out(&Op::Slice, &[f32s("N,8,4"), i64c(&[0]), typed(DType::I64, "1"), i64c(&[1])]), "f32[N,?,4]");
    assert_eq!(out(&Op::Slice, &[f32s("N,8,4"), i64c(&[0]), typed(DType::I64, "1")]), "f32[?,8,4]");
    assert_eq!(out(&Op::Slice, &[f32s("N,8"), i64c(&[0]), i64c(&[1]), typed(DType::I64, "1")]), "f32[?,?]");
}

#[test]
fn slice_errors() {
    let x = || f32s("2,10,7");
    assert!(err(&Op::Slice, &[x(), i64c(&[0]), i64c(&[1]), i64c(&[1]), i64c(&[0])]).contains("non-zero"));
    assert!(err(&Op::Slice, &[x(), i64c(&[0, 1]), i64c(&[1])]).contains("different lengths"));
    assert!(run(&Op::Slice, &[x(), i64c(&[0]), i64c(&[1]), i64c(&[3])]).is_err());
    assert!(run(&Op::Slice, &[x(), i64c(&[0, 0]), i64c(&[1, 1]), i64c(&[1, -2])]).is_err());
    assert!(run(&Op::Slice, &[x(), i64c(&[0]), f32c(&[1.0])]).is_err());
    assert!(run(&Op::Slice, &[x(), i64c(&[0, 0, 0, 0]), i64c(&[1, 1, 1, 1])]).is_err());
}

#[test]
fn pad_rules() {
    let pad = Op::Pad { mode: PadMode::Constant };
    assert_eq!(out(&pad, &[f32s("1,3,8,8"), i64c(&[0, 0, 1, 2, 0, 0, 3, 4])]), "f32[1,3,12,14]");
    // Negative pads crop.
    assert_eq!(out(&pad, &[f32s("2,10,7"), i64c(&[0, -2, 1, 1, -3, 0])]), "f32[3,5,8]");
    // Axes select which dims the pads apply to; symbolic dims without padding survive.
    assert_eq!(out(&pad, &[f32s("N,3,H,W"), i64c(&[1, 1, 1, 1]), Arg::None, i64c(&[2, -1])]), "f32[N,3,?,?]");
    assert_eq!(
        out(&pad, &[f32s("N,3,8,8"), i64c(&[1, 1, 1, 1]), Arg::C(Tensor::scalar(0.5f32)), i64c(&[2, -1])]),
        "f32[N,3,10,10]"
    );
    assert_eq!(out(&pad, &[f32s("N,3,8,8"), typed(DType::I64, "8")]), "f32[?,?,?,?]");
    assert!(err(&pad, &[f32s("2,3"), i64c(&[0, -3, 0, -1])]).contains("negative size"));
    assert!(err(&pad, &[f32s("2,3"), i64c(&[1, 1])]).contains("4 entries"));
    assert!(run(&pad, &[f32s("2,3"), i64c(&[1, 1, 1, 1]), Arg::C(Tensor::scalar(1i64))]).is_err());
    assert!(run(&pad, &[f32s("2,3"), i64c(&[i64::MAX, 1, i64::MAX, 1])]).is_err());
}

fn resize(coord: CoordTransform) -> Op {
    Op::Resize(ResizeAttrs { coord, ..Default::default() })
}

#[test]
fn resize_scales_and_sizes() {
    let op = resize(CoordTransform::HalfPixel);
    let none = || Arg::None;
    let empty = || f32c(&[]);
    // floor(in * scale), checked against onnxruntime.
    assert_eq!(out(&op, &[f32s("1,3,7,9"), empty(), f32c(&[1.0, 1.0, 1.5, 0.5])]), "f32[1,3,10,4]");
    assert_eq!(out(&op, &[f32s("1,3,10,10"), none(), f32c(&[1.0, 1.0, 1.0 / 3.0, 2.3])]), "f32[1,3,3,23]");
    // Sizes, with an empty scales tensor as older exporters write it.
    assert_eq!(out(&op, &[f32s("N,3,H,W"), empty(), empty(), i64c(&[1, 3, 64, 32])]), "f32[1,3,64,32]");
    assert_eq!(out(&op, &[f32s("N,3,H,W"), none(), none(), i64c(&[1, 3, 64, 32])]), "f32[1,3,64,32]");
    // Scale 1 keeps a symbol; other scales of symbols are unknown.
    assert_eq!(out(&op, &[f32s("N,3,H,W"), none(), f32c(&[1.0, 1.0, 2.0, 2.0])]), "f32[N,3,?,?]");
    // Non-constant sizes: the rank is known.
    assert_eq!(out(&op, &[f32s("N,3,H,W"), none(), none(), typed(DType::I64, "4")]), "f32[?,?,?,?]");
    // tf_crop_and_resize scales the roi extent.
    let crop = resize(CoordTransform::TfCropAndResize);
    let roi = f32c(&[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.5]);
    assert_eq!(out(&crop, &[f32s("1,3,8,8"), roi, f32c(&[1.0, 1.0, 2.0, 2.0])]), "f32[1,3,8,8]");
}

#[test]
fn resize_errors() {
    let op = resize(CoordTransform::HalfPixel);
    assert!(run(&op, &[f32s("1,3,8,8")]).is_err());
    assert!(run(&op, &[f32s("1,3,8,8"), Arg::None, f32c(&[1.0, 1.0, 2.0, 2.0]), i64c(&[1, 3, 16, 16])]).is_err());
    assert!(err(&op, &[f32s("1,3,8,8"), Arg::None, f32c(&[2.0, 2.0])]).contains("4 entries"));
    assert!(err(&op, &[f32s("1,3,8,8"), Arg::None, f32c(&[1.0, 1.0, -2.0, 2.0])]).contains("positive"));
    assert!(run(&op, &[f32s("1,3,8,8"), Arg::None, f32c(&[1.0, 1.0, f32::NAN, 2.0])]).is_err());
    assert!(run(&op, &[f32s("1,3,8,8"), Arg::None, f32c(&[1.0, 1.0, 1e30, 2.0])]).is_err());
    assert!(run(&op, &[f32s("1,3,8,8"), Arg::None, Arg::None, i64c(&[1, 3, -16, 16])]).is_err());
}
