//! Fast Concat, Transpose, Add and Mul against the reference kernels on random shapes.

use lithe_ir::Tensor;
use lithe_ir::op::Op;
use lithe_kernels::fast::{BinaryOp, binary_layout, f32_binary, f32_concat, f32_slice_box, f32_transpose};
use lithe_kernels::reference;
use proptest::prelude::*;

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 100.0 - 5.0).collect();
    Tensor::from_vec(shape, data).unwrap()
}

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..=5, 1..=5)
}

proptest! {
    #[test]
    fn concat_matches_the_reference(shape in shape_strategy(), axis_seed: usize, sizes in prop::collection::vec(0usize..=4, 1..=4), seed: u64) {
        let axis = axis_seed % shape.len();
        let tensors: Vec<Tensor> = sizes.iter().enumerate().map(|(i, &d)| {
            let mut s = shape.clone();
            s[axis] = d;
            tensor(&s, seed + i as u64)
        }).collect();
        let refs: Vec<Option<&Tensor>> = tensors.iter().map(Some).collect();
        let want = reference::eval(&Op::Concat { axis: axis as i64 }, &refs, 1)?.remove(0);
        let datas: Vec<Vec<f32>> = tensors.iter().map(Tensor::to_f32_vec).collect();
        let inputs: Vec<(&[f32], &[usize])> = datas.iter().zip(&tensors).map(|(d, t)| (d.as_slice(), t.shape())).collect();
        let mut out = vec![f32::NAN; want.len()];
        f32_concat(&inputs, axis, &mut out)?;
        prop_assert_eq!(out, want.to_f32_vec());
    }

    #[test]
    fn transpose_matches_the_reference(shape in shape_strategy(), perm_seed: Vec<u32>, seed: u64) {
        let mut perm: Vec<usize> = (0..shape.len()).collect();
        for (i, s) in perm_seed.iter().enumerate().take(shape.len()) {
            let j = *s as usize % shape.len();
            perm.swap(i % shape.len(), j);
        }
        let x = tensor(&shape, seed);
        let want = reference::eval(&Op::Transpose { perm: Some(perm.clone()) }, &[Some(&x)], 1)?.remove(0);
        let mut out = vec![f32::NAN; x.len()];
        f32_transpose(&x.to_f32_vec(), &shape, &perm, &mut out)?;
        prop_assert_eq!(out, want.to_f32_vec());
    }

    #[test]
    fn slice_boxes_match_the_reference(shape in shape_strategy(), cuts: Vec<(usize, usize)>, seed: u64) {
        let x = tensor(&shape, seed);
        let (mut begin, mut size) = (Vec::new(), Vec::new());
        for (i, &d) in shape.iter().enumerate() {
            let (a, b) = cuts.get(i).copied().unwrap_or((0, 0));
            let b0 = a % (d + 1);
            begin.push(b0);
            size.push(b % (d - b0 + 1));
        }
        let i64s = |v: Vec<i64>| Tensor::from_vec(&[v.len()], v).unwrap();
        let starts = i64s(begin.iter().map(|&v| v as i64).collect());
        let ends = i64s(begin.iter().zip(&size).map(|(&b, &s)| (b + s) as i64).collect());
        let want = reference::eval(&Op::Slice, &[Some(&x), Some(&starts), Some(&ends)], 1)?.remove(0);
        let mut out = vec![f32::NAN; want.len()];
        f32_slice_box(&x.to_f32_vec(), &shape, &begin, &size, &mut out)?;
        prop_assert_eq!(out, want.to_f32_vec());
    }

    #[test]
    fn add_and_mul_match_the_reference(n in 1usize..=3, c in 1usize..=6, h in 1usize..=5, w in 1usize..=5, kind in 0usize..3, swap: bool, mul: bool, in_place: bool, seed: u64) {
        let full = vec![n, c, h, w];
        let small = match kind { 0 => full.clone(), 1 => vec![n, c, 1, 1], _ => vec![1, c, 1, 1] };
        let (sa, sb) = if swap { (small, full.clone()) } else { (full.clone(), small) };
        let (a, b) = (tensor(&sa, seed), tensor(&sb, seed ^ 7));
        let (op, bop) = if mul { (Op::Mul, BinaryOp::Mul) } else { (Op::Add, BinaryOp::Add) };
        let want = reference::eval(&op, &[Some(&a), Some(&b)], 1)?.remove(0).to_f32_vec();
        let layout = binary_layout(&sa, &sb, &full).unwrap();
        let (av, bv) = (a.to_f32_vec(), b.to_f32_vec());
        let mut y = vec![f32::NAN; want.len()];
        // In place: the full-shaped operand already sits in the output.
        if in_place && sa == full {
            y.copy_from_slice(&av);
            f32_binary(bop, layout, None, Some(&bv), &mut y)?;
        } else if in_place && sb == full {
            y.copy_from_slice(&bv);
            f32_binary(bop, layout, Some(&av), None, &mut y)?;
        } else {
            f32_binary(bop, layout, Some(&av), Some(&bv), &mut y)?;
        }
        prop_assert_eq!(y, want);
    }
}

#[test]
fn unsupported_layouts_and_bad_lengths() {
    assert!(binary_layout(&[2, 3, 4, 4], &[1, 1, 4, 4], &[2, 3, 4, 4]).is_none());
    assert!(binary_layout(&[2, 3, 4, 4], &[3, 1, 1], &[2, 3, 4, 4]).is_none());
    let layout = binary_layout(&[1, 2, 2, 2], &[1, 2, 1, 1], &[1, 2, 2, 2]).unwrap();
    let mut y = vec![0.0; 8];
    assert!(f32_binary(BinaryOp::Mul, layout, Some(&[0.0; 8]), Some(&[0.0; 3]), &mut y).is_err());
    assert!(f32_binary(BinaryOp::Mul, layout, Some(&[0.0; 8]), None, &mut y).is_err());
    assert!(f32_transpose(&[0.0; 6], &[2, 3], &[0, 0], &mut [0.0; 6]).is_err());
    assert!(f32_transpose(&[0.0; 5], &[2, 3], &[1, 0], &mut [0.0; 6]).is_err());
    assert!(f32_concat(&[(&[0.0; 4], &[2, 2]), (&[0.0; 3], &[3, 1])], 0, &mut [0.0; 7]).is_err());
    assert!(f32_concat(&[], 0, &mut []).is_err());
}
