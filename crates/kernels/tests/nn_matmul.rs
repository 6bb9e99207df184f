//! Reference Gemm and MatMul: hand-computed products, every Gemm attribute and C broadcast,
//! numpy MatMul promotion and batch broadcasting, integer and f16 operands, errors.

use half::f16;
use lithe_ir::Tensor;
use lithe_ir::op::GemmAttrs;
use lithe_kernels::KernelError;
use lithe_kernels::reference::matmul::{gemm, matmul};
use ndarray::{ArrayD, IxDyn};

fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::from_vec(shape, data).unwrap()
}

fn seq(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t(shape, (1..=n).map(|v| v as f32).collect())
}

#[test]
fn matmul_2d() {
    // [[1,2,3],[4,5,6]] x [[1,2],[3,4],[5,6]].
    let y = matmul(&seq(&[2, 3]), &seq(&[3, 2])).unwrap();
    assert_eq!(y.shape(), &[2, 2]);
    assert_eq!(y.to_f32_vec(), vec![22.0, 28.0, 49.0, 64.0]);
}

#[test]
fn matmul_1d_promotion() {
    let v = t(&[3], vec![1.0, 2.0, 3.0]);
    let y = matmul(&v, &v).unwrap();
    assert_eq!(y.shape(), &[] as &[usize]);
    assert_eq!(y.to_f32_vec(), vec![14.0]);
    // Vector times matrix: a row; matrix times vector: a column, both squeezed.
    let y = matmul(&v, &seq(&[3, 2])).unwrap();
    assert_eq!((y.shape(), y.to_f32_vec()), (&[2usize][..], vec![22.0, 28.0]));
    let y = matmul(&seq(&[2, 3]), &v).unwrap();
    assert_eq!((y.shape(), y.to_f32_vec()), (&[2usize][..], vec![14.0, 32.0]));
    // A vector against a batch of matrices.
    let y = matmul(&v, &seq(&[2, 3, 1])).unwrap();
    assert_eq!((y.shape(), y.to_f32_vec()), (&[2usize, 1][..], vec![14.0, 32.0]));
}

/// Batched product by explicit indexing, broadcasting batch axes of size 1.
fn naive_batched(a: &ArrayD<f32>, b: &ArrayD<f32>, batch: &[usize]) -> Vec<f32> {
    let (ar, br) = (a.ndim(), b.ndim());
    let (m, k, n) = (a.shape()[ar - 2], a.shape()[ar - 1], b.shape()[br - 1]);
    let mut out = Vec::new();
    for bi in ndarray::indices(IxDyn(batch)) {
        let pick = |arr: &ArrayD<f32>, i: usize, j: usize| {
            let r = arr.ndim();
            let lead = batch.len() + 2 - r;
            let mut idx: Vec<usize> = (0..r - 2).map(|d| if arr.shape()[d] == 1 { 0 } else { bi[lead + d] }).collect();
            idx.extend([i, j]);
            arr[IxDyn(&idx)]
        };
        for i in 0..m {
            for j in 0..n {
                out.push((0..k).map(|p| pick(a, i, p) * pick(b, p, j)).sum());
            }
        }
    }
    out
}

#[test]
fn matmul_batch_broadcast() {
    let a = seq(&[2, 1, 2, 3]);
    let b = t(&[3, 3, 2], (0..18).map(|v| (v as f32) * 0.5 - 3.0).collect());
    let y = matmul(&a, &b).unwrap();
    assert_eq!(y.shape(), &[2, 3, 2, 2]);
    assert_eq!(y.to_f32_vec(), naive_batched(a.as_f32().unwrap(), b.as_f32().unwrap(), &[2, 3]));
    let y = matmul(&b.reshaped(&[1, 3, 3, 2]).unwrap(), &seq(&[2, 1, 2, 4])).unwrap();
    assert_eq!(y.shape(), &[2, 3, 3, 4]);
}

#[test]
fn matmul_non_contiguous_input() {
    // A transposed (non-standard layout) operand gives the same result as its copy.
    let a = ArrayD::from_shape_vec(IxDyn(&[3, 2]), (1..=6).map(|v| v as f32).collect()).unwrap();
    let at = Tensor::from(a.clone().reversed_axes());
    let y = matmul(&at, &seq(&[3, 2])).unwrap();
    let copy = Tensor::from(a.reversed_axes().as_standard_layout().to_owned());
    assert_eq!(y, matmul(&copy, &seq(&[3, 2])).unwrap());
    // [[1,3,5],[2,4,6]] x [[1,2],[3,4],[5,6]]
    assert_eq!(y.to_f32_vec(), vec![35.0, 44.0, 44.0, 56.0]);
}

#[test]
fn matmul_integers_and_f16() {
    let a = Tensor::from_vec(&[2, 2], vec![1i64, 2, 3, 4]).unwrap();
    let b = Tensor::from_vec(&[2, 1], vec![5i64, -6]).unwrap();
    let y = matmul(&a, &b).unwrap();
    assert_eq!(y.view::<i64>().unwrap().iter().copied().collect::<Vec<_>>(), vec![-7, -9]);
    // i32 wraps on overflow instead of panicking.
    let a = Tensor::from_vec(&[1, 2], vec![i32::MAX, 1]).unwrap();
    let b = Tensor::from_vec(&[2], vec![2i32, 3]).unwrap();
    let y = matmul(&a, &b).unwrap();
    assert_eq!(
        y.view::<i32>().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![i32::MAX.wrapping_mul(2).wrapping_add(3)]
    );
    let h = |v: &[f32]| Tensor::from_vec(&[v.len()], v.iter().map(|&x| f16::from_f32(x)).collect()).unwrap();
    let y = matmul(&h(&[0.5, 1.5]), &h(&[2.0, 4.0])).unwrap();
    assert_eq!(y.view::<f16>().unwrap().iter().map(|v| v.to_f32()).collect::<Vec<_>>(), vec![7.0]);
}

#[test]
fn matmul_errors() {
    let e = matmul(&seq(&[2, 3]), &seq(&[2, 3])).unwrap_err();
    assert!(matches!(e, KernelError::Invalid { op: "MatMul", .. }), "{e}");
    assert!(matches!(matmul(&seq(&[2, 2, 3]), &seq(&[3, 3, 2])), Err(KernelError::Invalid { .. })));
    assert!(matches!(matmul(&Tensor::scalar(1.0f32), &seq(&[1])), Err(KernelError::Invalid { .. })));
    let i = Tensor::from_vec(&[1], vec![1i64]).unwrap();
    assert!(matches!(matmul(&seq(&[1]), &i), Err(KernelError::Invalid { .. })));
    let u = Tensor::from_vec(&[1], vec![1u8]).unwrap();
    assert!(matches!(matmul(&u, &u), Err(KernelError::Unsupported { .. })));
}

fn ga(alpha: f32, beta: f32, trans_a: bool, trans_b: bool) -> GemmAttrs {
    GemmAttrs { alpha, beta, trans_a, trans_b }
}

#[test]
fn gemm_plain_and_transposed() {
    let a = seq(&[2, 3]);
    let b = seq(&[3, 2]);
    let y = gemm(&GemmAttrs::default(), &a, &b, None).unwrap();
    assert_eq!((y.shape(), y.to_f32_vec()), (&[2usize, 2][..], vec![22.0, 28.0, 49.0, 64.0]));
    // A stored transposed (3x2) and B stored transposed (2x3) give the same product.
    let at = t(&[3, 2], vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let bt = t(&[2, 3], vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    let y = gemm(&ga(1.0, 1.0, true, true), &at, &bt, None).unwrap();
    assert_eq!(y.to_f32_vec(), vec![22.0, 28.0, 49.0, 64.0]);
    let y = gemm(&ga(0.5, 1.0, true, false), &at, &b, None).unwrap();
    assert_eq!(y.to_f32_vec(), vec![11.0, 14.0, 24.5, 32.0]);
}

#[test]
fn gemm_c_broadcast_and_beta() {
    let (a, b) = (seq(&[2, 3]), seq(&[3, 2]));
    let base = [22.0, 28.0, 49.0, 64.0];
    let cases: [(Tensor, [f32; 4]); 5] = [
        (Tensor::scalar(1.0f32), [1.0, 1.0, 1.0, 1.0]),
        (t(&[2], vec![1.0, 2.0]), [1.0, 2.0, 1.0, 2.0]),
        (t(&[2, 1], vec![1.0, 2.0]), [1.0, 1.0, 2.0, 2.0]),
        (t(&[1, 1], vec![3.0]), [3.0, 3.0, 3.0, 3.0]),
        (t(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]), [1.0, 2.0, 3.0, 4.0]),
    ];
    for (c, add) in cases {
        let y = gemm(&ga(2.0, 0.5, false, false), &a, &b, Some(&c)).unwrap();
        let want: Vec<f32> = base.iter().zip(add).map(|(p, c)| 2.0 * p + 0.5 * c).collect();
        assert_eq!(y.to_f32_vec(), want, "C shape {:?}", c.shape());
    }
    // beta = 0: C is not read, so NaN in C does not leak into the result.
    let c = t(&[2, 2], vec![f32::NAN; 4]);
    assert_eq!(gemm(&ga(1.0, 0.0, false, false), &a, &b, Some(&c)).unwrap().to_f32_vec(), base.to_vec());
}

#[test]
fn gemm_errors() {
    let (a, b) = (seq(&[2, 3]), seq(&[3, 2]));
    assert!(matches!(gemm(&GemmAttrs::default(), &a, &a, None), Err(KernelError::Invalid { op: "Gemm", .. })));
    assert!(matches!(gemm(&GemmAttrs::default(), &seq(&[2, 3, 1]), &b, None), Err(KernelError::Invalid { .. })));
    assert!(matches!(gemm(&GemmAttrs::default(), &a, &b, Some(&seq(&[3]))), Err(KernelError::Invalid { .. })));
    assert!(matches!(gemm(&GemmAttrs::default(), &a, &b, Some(&seq(&[2, 2, 1]))), Err(KernelError::Invalid { .. })));
    let i = Tensor::from_vec(&[1, 1], vec![1i32]).unwrap();
    assert!(matches!(gemm(&GemmAttrs::default(), &i, &i, None), Err(KernelError::Unsupported { .. })));
}

#[test]
fn degenerate_shapes_do_not_panic() {
    // K = 0: a zero matrix.
    let y = matmul(&t(&[2, 0], vec![]), &t(&[0, 3], vec![])).unwrap();
    assert_eq!((y.shape(), y.to_f32_vec()), (&[2usize, 3][..], vec![0.0; 6]));
    let y = matmul(&t(&[0, 2], vec![]), &seq(&[2, 3])).unwrap();
    assert_eq!(y.shape(), &[0, 3]);
    let y = matmul(&t(&[4, 0, 2, 3], vec![]), &seq(&[1, 3, 1])).unwrap();
    assert_eq!(y.shape(), &[4, 0, 2, 1]);
    // Empty operands whose broadcast result would be enormous are refused.
    let r = matmul(&t(&[1 << 20, 1, 1, 0], vec![]), &t(&[1, 1 << 20, 0, 1 << 10], vec![]));
    assert!(matches!(r, Err(KernelError::Invalid { .. })), "{r:?}");
    let r = gemm(&GemmAttrs::default(), &t(&[1 << 20, 0], vec![]), &t(&[0, 1 << 20], vec![]), None);
    assert!(matches!(r, Err(KernelError::Invalid { .. })), "{r:?}");
    let y =
        gemm(&GemmAttrs::default(), &t(&[2, 0], vec![]), &t(&[0, 2], vec![]), Some(&Tensor::scalar(1.5f32))).unwrap();
    assert_eq!(y.to_f32_vec(), vec![1.5; 4]);
}
