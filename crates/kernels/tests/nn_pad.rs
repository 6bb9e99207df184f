//! Reference Pad: every mode, negative pads (crop), axes subsets, every dtype, errors.
//! Negative-pad and large-pad expectations agree with onnxruntime 1.32 (wrap, edge, and reflect
//! within its limits) and numpy (reflect pads wider than the data).

use half::f16;
use lithe_ir::op::PadMode;
use lithe_ir::{DType, Tensor};
use lithe_kernels::KernelError;
use lithe_kernels::reference::pad::pad;

fn f(v: &[f32]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
}

fn pads(v: &[i64]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
}

fn run(mode: PadMode, x: &Tensor, p: &[i64]) -> Vec<f32> {
    pad(mode, x, &pads(p), None, None).unwrap().to_f32_vec()
}

#[test]
fn constant_mode() {
    let y = pad(PadMode::Constant, &f(&[1.0, 2.0, 3.0]), &pads(&[2, 1]), Some(&Tensor::scalar(9.0f32)), None).unwrap();
    assert_eq!(y.shape(), &[6]);
    assert_eq!(y.to_f32_vec(), vec![9.0, 9.0, 1.0, 2.0, 3.0, 9.0]);
    // No value: zero. A one-element 1-D value works too.
    assert_eq!(run(PadMode::Constant, &f(&[1.0]), &[1, 1]), vec![0.0, 1.0, 0.0]);
    let y = pad(PadMode::Constant, &f(&[1.0]), &pads(&[0, 2]), Some(&f(&[-1.5])), None).unwrap();
    assert_eq!(y.to_f32_vec(), vec![1.0, -1.5, -1.5]);
}

#[test]
fn reflect_edge_wrap() {
    let x = f(&[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(run(PadMode::Reflect, &x, &[2, 2]), vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]);
    assert_eq!(run(PadMode::Edge, &x, &[2, 1]), vec![1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
    assert_eq!(run(PadMode::Wrap, &x, &[1, 2]), vec![4.0, 1.0, 2.0, 3.0, 4.0, 1.0, 2.0]);
}

#[test]
fn pads_wider_than_the_data_repeat() {
    let x = f(&[1.0, 2.0, 3.0]);
    // numpy.pad([1, 2, 3], (5, 0), "reflect") and onnxruntime 1.32 wrap.
    assert_eq!(run(PadMode::Reflect, &x, &[5, 0]), vec![2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0]);
    assert_eq!(run(PadMode::Wrap, &x, &[5, 0]), vec![2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    assert_eq!(run(PadMode::Wrap, &x, &[0, 6]), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    assert_eq!(run(PadMode::Reflect, &f(&[7.0]), &[2, 2]), vec![7.0; 5]);
}

#[test]
fn negative_pads_crop_first() {
    // onnxruntime 1.32: crop, then pad relative to the cropped data.
    let x = f(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(run(PadMode::Reflect, &x, &[-1, 2]), vec![2.0, 3.0, 4.0, 5.0, 4.0, 3.0]);
    assert_eq!(run(PadMode::Reflect, &x, &[2, -1]), vec![3.0, 2.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(run(PadMode::Edge, &x, &[-2, 3]), vec![3.0, 4.0, 5.0, 5.0, 5.0, 5.0]);
    assert_eq!(run(PadMode::Wrap, &x, &[-1, 2]), vec![2.0, 3.0, 4.0, 5.0, 2.0, 3.0]);
    assert_eq!(run(PadMode::Wrap, &x, &[2, -1]), vec![3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(run(PadMode::Wrap, &x, &[-2, 3]), vec![3.0, 4.0, 5.0, 3.0, 4.0, 5.0]);
    assert_eq!(run(PadMode::Constant, &x, &[-2, 3]), vec![3.0, 4.0, 5.0, 0.0, 0.0, 0.0]);
    assert_eq!(run(PadMode::Constant, &x, &[-5, 0]), Vec::<f32>::new());
}

#[test]
fn two_dimensional_and_axes() {
    let x = Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let y = pad(PadMode::Edge, &x, &pads(&[1, 0, 0, 1]), None, None).unwrap();
    assert_eq!(y.shape(), &[3, 3]);
    assert_eq!(y.to_f32_vec(), vec![1.0, 2.0, 2.0, 1.0, 2.0, 2.0, 3.0, 4.0, 4.0]);
    // Only the last axis, given as -1, with i32 pads and axes.
    let p = Tensor::from_vec(&[2], vec![1i32, 1]).unwrap();
    let ax = Tensor::from_vec(&[1], vec![-1i32]).unwrap();
    let y = pad(PadMode::Reflect, &x, &p, None, Some(&ax)).unwrap();
    assert_eq!(y.shape(), &[2, 4]);
    assert_eq!(y.to_f32_vec(), vec![2.0, 1.0, 2.0, 1.0, 4.0, 3.0, 4.0, 3.0]);
    // Axes out of order: pads follow the order of axes.
    let ax = Tensor::from_vec(&[2], vec![1i64, 0]).unwrap();
    let y = pad(PadMode::Constant, &x, &pads(&[1, 0, 0, 2]), Some(&Tensor::scalar(-1.0f32)), Some(&ax)).unwrap();
    assert_eq!(y.shape(), &[4, 3]);
    assert_eq!(y.to_f32_vec(), vec![-1.0, 1.0, 2.0, -1.0, 3.0, 4.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]);
}

#[test]
fn every_dtype() {
    let x = Tensor::from_vec(&[2], vec![5i64, -6]).unwrap();
    let y = pad(PadMode::Constant, &x, &pads(&[1, 1]), Some(&Tensor::scalar(7i64)), None).unwrap();
    assert_eq!(y.view::<i64>().unwrap().iter().copied().collect::<Vec<_>>(), vec![7, 5, -6, 7]);
    let x = Tensor::from_vec(&[2], vec![true, false]).unwrap();
    let y = pad(PadMode::Edge, &x, &pads(&[1, 1]), None, None).unwrap();
    assert_eq!(y.view::<bool>().unwrap().iter().copied().collect::<Vec<_>>(), vec![true, true, false, false]);
    let y = pad(PadMode::Constant, &x, &pads(&[1, 0]), None, None).unwrap();
    assert_eq!(y.view::<bool>().unwrap().iter().copied().collect::<Vec<_>>(), vec![false, true, false]);
    let x = Tensor::from_vec(&[1], vec![f16::from_f32(1.5)]).unwrap();
    let y = pad(PadMode::Constant, &x, &pads(&[0, 1]), Some(&Tensor::scalar(f16::from_f32(2.5))), None).unwrap();
    assert_eq!(y.dtype(), DType::F16);
    assert_eq!(y.to_f32_vec(), vec![1.5, 2.5]);
    let x = Tensor::from_vec(&[2], vec![1u8, 2]).unwrap();
    let y = pad(PadMode::Wrap, &x, &pads(&[1, 0]), None, None).unwrap();
    assert_eq!(y.view::<u8>().unwrap().iter().copied().collect::<Vec<_>>(), vec![2, 1, 2]);
    // An empty constant_value tensor counts as absent.
    let y = pad(PadMode::Constant, &f(&[1.0]), &pads(&[1, 0]), Some(&f(&[])), None).unwrap();
    assert_eq!(y.to_f32_vec(), vec![0.0, 1.0]);
}

#[test]
fn pad_errors() {
    let x = f(&[1.0, 2.0]);
    let invalid = |r: Result<Tensor, KernelError>| matches!(r, Err(KernelError::Invalid { op: "Pad", .. }));
    assert!(invalid(pad(PadMode::Constant, &x, &pads(&[1]), None, None)));
    assert!(invalid(pad(PadMode::Constant, &x, &pads(&[-2, -1]), None, None)));
    assert!(invalid(pad(PadMode::Constant, &x, &f(&[1.0, 1.0]), None, None)));
    assert!(invalid(pad(PadMode::Constant, &x, &pads(&[1, 1]), Some(&Tensor::scalar(1i64)), None)));
    assert!(invalid(pad(PadMode::Constant, &x, &pads(&[1, 1]), Some(&f(&[1.0, 2.0])), None)));
    assert!(invalid(pad(PadMode::Reflect, &x, &pads(&[-2, 1]), None, None)));
    assert!(invalid(pad(PadMode::Edge, &f(&[]), &pads(&[1, 0]), None, None)));
    assert!(invalid(pad(PadMode::Constant, &x, &pads(&[i64::MAX, 1]), None, None)));
    assert!(invalid(pad(PadMode::Constant, &x, &pads(&[i64::MIN, 1]), None, None)));
    let m = Tensor::from_vec(&[2, 2], vec![0.0f32; 4]).unwrap();
    assert!(invalid(pad(PadMode::Constant, &m, &pads(&[1 << 20, 1 << 20, 1 << 20, 1 << 20]), None, None)));
    let dup = Tensor::from_vec(&[2], vec![0i64, -2]).unwrap();
    assert!(invalid(pad(PadMode::Constant, &m, &pads(&[1, 1, 1, 1]), None, Some(&dup))));
    let out_of_range = Tensor::from_vec(&[1], vec![2i64]).unwrap();
    assert!(invalid(pad(PadMode::Constant, &m, &pads(&[1, 1]), None, Some(&out_of_range))));
}
