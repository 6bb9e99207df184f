//! Weights read in place from shared bytes (a memory-mapped `.nb`): Conv, ConvTranspose, Gemm,
//! MatMul and FullyConnected give exactly the results of owned weights and leave the weights
//! uncopied (`Tensor::is_in_place` still true after the kernel ran).

use lithe_ir::op::{Activation, ConvAttrs, ConvTransposeAttrs, FcAttrs, GemmAttrs};
use lithe_ir::{DType, Op, Tensor, shared_aligned_copy};
use lithe_kernels::reference::eval;

/// `t` (f32) as an in-place tensor over its own aligned little-endian bytes.
fn in_place(t: &Tensor) -> Tensor {
    let bytes: Vec<u8> = t.to_f32_vec().iter().flat_map(|v| v.to_le_bytes()).collect();
    let out = Tensor::in_place(DType::F32, t.shape(), shared_aligned_copy(&bytes), 0).unwrap();
    assert!(out.is_in_place());
    out
}

fn data(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let v =
        (0..n as u32).map(|i| ((i.wrapping_mul(2654435761).wrapping_add(seed)) % 1000) as f32 / 500.0 - 1.0).collect();
    Tensor::from_vec(shape, v).unwrap()
}

/// Run `op` with input 0 owned and the rest (weights) owned, then in place; compare exactly.
fn check(op: Op, x: Tensor, weights: &[Tensor]) {
    let owned: Vec<Option<&Tensor>> = std::iter::once(Some(&x)).chain(weights.iter().map(Some)).collect();
    let want = eval(&op, &owned, 1).unwrap();
    let mapped: Vec<Tensor> = weights.iter().map(in_place).collect();
    let inputs: Vec<Option<&Tensor>> = std::iter::once(Some(&x)).chain(mapped.iter().map(Some)).collect();
    let got = eval(&op, &inputs, 1).unwrap();
    assert_eq!(got, want, "{}", op.name());
    // The big operand (the weight, input 1) was read without a copy.
    assert!(mapped[0].is_in_place(), "{}: the weight was copied", op.name());
}

#[test]
fn weight_heavy_ops_read_weights_in_place() {
    let conv = ConvAttrs { pads: vec![1; 4], ..Default::default() };
    check(Op::Conv(conv.clone()), data(&[1, 4, 6, 6], 1), &[data(&[8, 4, 3, 3], 2), data(&[8], 3)]);
    let dw = ConvAttrs { group: 4, ..conv.clone() };
    check(Op::Conv(dw), data(&[1, 4, 5, 5], 4), &[data(&[4, 1, 3, 3], 5)]);
    let ct = ConvTransposeAttrs { conv: ConvAttrs { strides: vec![2, 2], ..Default::default() }, ..Default::default() };
    check(Op::ConvTranspose(ct), data(&[1, 3, 4, 4], 6), &[data(&[3, 2, 2, 2], 7), data(&[2], 8)]);
    let gemm = GemmAttrs { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: true };
    check(Op::Gemm(gemm), data(&[2, 16], 9), &[data(&[10, 16], 10), data(&[10], 11)]);
    check(Op::MatMul, data(&[2, 3, 16], 12), &[data(&[16, 5], 13)]);
    let fc = FcAttrs { activation: Activation::Relu };
    check(Op::FullyConnected(fc), data(&[2, 16], 14), &[data(&[16, 7], 15), data(&[7], 16)]);
}
