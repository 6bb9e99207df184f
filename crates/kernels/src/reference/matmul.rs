//! Matrix products: `Gemm` (2-D, transposes, alpha/beta, broadcast C) and `MatMul` (numpy
//! semantics: 1-D promotion and batch broadcasting; f32, f16, i32 and i64).
//!
//! Float products use `ndarray`'s matrix multiply; integer products wrap on overflow.

use super::conv::contiguous;
use crate::KernelError;
use half::f16;
use lithe_ir::op::GemmAttrs;
use lithe_ir::{Tensor, TensorView};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, Ix2, IxDyn};

/// `alpha * A' * B' + beta * C`, where `A'` is `A` (`M x K`, or `K x M` with `trans_a`), `B'`
/// is `B` (`K x N`, or `N x K` with `trans_b`) and `C` broadcasts to `M x N`. With `beta == 0`
/// C is not read. f32 only.
pub fn gemm(attrs: &GemmAttrs, a: &Tensor, b: &Tensor, c: Option<&Tensor>) -> Result<Tensor, KernelError> {
    const OP: &str = "Gemm";
    fn f32_of<'t>(t: &'t Tensor, what: &str) -> Result<ArrayViewD<'t, f32>, KernelError> {
        t.view_in_place::<f32>().ok_or_else(|| KernelError::Unsupported {
            op: OP,
            detail: format!("{what} has dtype {}, only f32 is supported", t.dtype()),
        })
    }
    fn two_d<'t>(t: ArrayViewD<'t, f32>, what: &str) -> Result<ArrayView2<'t, f32>, KernelError> {
        let shape = t.shape().to_vec();
        t.into_dimensionality::<Ix2>()
            .map_err(|_| KernelError::Invalid { op: OP, detail: format!("{what} must be 2-D, got shape {shape:?}") })
    }
    let a2 = two_d(f32_of(a, "A")?, "A")?;
    let b2 = two_d(f32_of(b, "B")?, "B")?;
    let a2 = if attrs.trans_a { a2.reversed_axes() } else { a2 };
    let b2 = if attrs.trans_b { b2.reversed_axes() } else { b2 };
    let ((m, k), (k2, n)) = (a2.dim(), b2.dim());
    if k != k2 {
        return Err(KernelError::Invalid {
            op: OP,
            detail: format!(
                "A' is {m} x {k} but B' is {k2} x {n} (trans_a {}, trans_b {})",
                attrs.trans_a, attrs.trans_b
            ),
        });
    }
    super::checked_num_elements(OP, &[m, n])?;
    let mut y = Array2::<f32>::zeros((m, n));
    if let Some(c) = c {
        let ca = f32_of(c, "C")?;
        let cb = ca.broadcast(IxDyn(&[m, n])).ok_or_else(|| KernelError::Invalid {
            op: OP,
            detail: format!("C shape {:?} does not broadcast to {m} x {n}", ca.shape()),
        })?;
        if attrs.beta != 0.0 {
            y.zip_mut_with(&cb, |yv, &cv| *yv = attrs.beta * cv);
        }
    }
    general_mat_mul(attrs.alpha, &a2, &b2, 1.0, &mut y);
    Ok(Tensor::from(y.into_dyn()))
}

/// Numpy `matmul`: 1-D operands are promoted to a matrix (a row for A, a column for B) and the
/// added axis is removed from the result; leading batch axes broadcast. Both operands must have
/// the same dtype: f32, f16 (computed in f32), i32 or i64 (wrapping on overflow).
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, KernelError> {
    if a.dtype() != b.dtype() {
        return Err(invalid(format!("A has dtype {} but B has dtype {}", a.dtype(), b.dtype())));
    }
    match (&a.data_view(), &b.data_view()) {
        (TensorView::F32(x), TensorView::F32(y)) => Ok(Tensor::from(batched(x, y, float_kernel)?)),
        (TensorView::F16(x), TensorView::F16(y)) => {
            let up = |t: &ArrayViewD<'_, f16>| t.mapv(f32::from);
            let r = batched(&up(x).view(), &up(y).view(), float_kernel)?;
            Ok(Tensor::from(r.mapv(f16::from_f32)))
        }
        (TensorView::I32(x), TensorView::I32(y)) => Ok(Tensor::from(batched(x, y, int_kernel)?)),
        (TensorView::I64(x), TensorView::I64(y)) => Ok(Tensor::from(batched(x, y, int_kernel)?)),
        _ => Err(KernelError::Unsupported { op: "MatMul", detail: format!("dtype {}", a.dtype()) }),
    }
}

/// A kernel computing `out = a (m x k) * b (k x n)` on row-major slices.
type Kernel<T> = fn(&[T], &[T], &mut [T], usize, usize, usize) -> Result<(), KernelError>;

fn float_kernel(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) -> Result<(), KernelError> {
    let shape_err = |e: ndarray::ShapeError| invalid(format!("internal shape error: {e}"));
    let av = ArrayView2::from_shape((m, k), a).map_err(shape_err)?;
    let bv = ArrayView2::from_shape((k, n), b).map_err(shape_err)?;
    let mut ov = ArrayViewMut2::from_shape((m, n), out).map_err(shape_err)?;
    general_mat_mul(1.0, &av, &bv, 0.0, &mut ov);
    Ok(())
}

/// Integers that multiply-accumulate in i64 with wrapping and convert back by truncation
/// (the same result as wrapping arithmetic in the narrower type).
trait WrappingInt: Copy + Default {
    fn widen(self) -> i64;
    fn narrow(v: i64) -> Self;
}

impl WrappingInt for i32 {
    fn widen(self) -> i64 {
        i64::from(self)
    }
    fn narrow(v: i64) -> Self {
        v as i32
    }
}

impl WrappingInt for i64 {
    fn widen(self) -> i64 {
        self
    }
    fn narrow(v: i64) -> Self {
        v
    }
}

fn int_kernel<T: WrappingInt>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    m: usize,
    k: usize,
    n: usize,
) -> Result<(), KernelError> {
    let mut row = vec![0i64; n];
    for i in 0..m {
        row.fill(0);
        for p in 0..k {
            let av = a[i * k + p].widen();
            for (acc, bv) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *acc = acc.wrapping_add(av.wrapping_mul(bv.widen()));
            }
        }
        for (o, &v) in out[i * n..(i + 1) * n].iter_mut().zip(&row) {
            *o = T::narrow(v);
        }
    }
    Ok(())
}

/// Numpy matmul of `a` and `b` with `kernel` doing each 2-D product.
fn batched<T: lithe_ir::Element>(
    a: &ArrayViewD<'_, T>,
    b: &ArrayViewD<'_, T>,
    kernel: Kernel<T>,
) -> Result<ArrayD<T>, KernelError> {
    let (ash, bsh) = (a.shape(), b.shape());
    if ash.is_empty() || bsh.is_empty() {
        return Err(invalid(format!("operands must have rank >= 1, got shapes {ash:?} and {bsh:?}")));
    }
    // Promote 1-D operands to matrices.
    let a_mat: Vec<usize> = if ash.len() == 1 { vec![1, ash[0]] } else { ash.to_vec() };
    let b_mat: Vec<usize> = if bsh.len() == 1 { vec![bsh[0], 1] } else { bsh.to_vec() };
    let (ar, br) = (a_mat.len(), b_mat.len());
    let (m, k) = (a_mat[ar - 2], a_mat[ar - 1]);
    let (k2, n) = (b_mat[br - 2], b_mat[br - 1]);
    if k != k2 {
        return Err(invalid(format!("shapes {ash:?} and {bsh:?}: inner dimensions {k} and {k2} differ")));
    }
    let (a_batch, b_batch) = (&a_mat[..ar - 2], &b_mat[..br - 2]);
    let batch = broadcast_shapes(a_batch, b_batch)
        .ok_or_else(|| invalid(format!("batch dimensions of {ash:?} and {bsh:?} do not broadcast")))?;
    let a_data = contiguous(a);
    let b_data = contiguous(b);
    let mut shape = batch.clone();
    if ash.len() > 1 {
        shape.push(m);
    }
    if bsh.len() > 1 {
        shape.push(n);
    }
    super::checked_num_elements("MatMul", &shape)?;
    super::checked_num_elements("MatMul", &[m, n])?;
    let count: usize = batch.iter().product();
    if count == 0 || m == 0 || n == 0 {
        return ArrayD::from_shape_vec(IxDyn(&shape), Vec::new())
            .map_err(|e| invalid(format!("internal shape error: {e}")));
    }
    let a_off = batch_offsets(a_batch, &batch, m * k);
    let b_off = batch_offsets(b_batch, &batch, k * n);
    let mut out = vec![T::default(); count * m * n];
    for (i, chunk) in out.chunks_mut((m * n).max(1)).enumerate().take(count) {
        let (ao, bo) = (a_off[i], b_off[i]);
        kernel(&a_data[ao..ao + m * k], &b_data[bo..bo + k * n], chunk, m, k, n)?;
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| invalid(format!("internal shape error: {e}")))
}

/// Numpy broadcast of two shapes, `None` when incompatible.
fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
            let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
            match (da, db) {
                (x, y) if x == y => Some(x),
                (1, y) => Some(y),
                (x, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// For each batch position of `full` (row-major), the element offset of the matching matrix
/// in an operand whose batch shape `own` broadcasts to `full`; matrices have `mat` elements.
fn batch_offsets(own: &[usize], full: &[usize], mat: usize) -> Vec<usize> {
    let lead = full.len() - own.len();
    let mut strides = vec![0usize; own.len()];
    let mut s = mat;
    for i in (0..own.len()).rev() {
        strides[i] = if own[i] == 1 { 0 } else { s };
        s *= own[i];
    }
    ndarray::indices(IxDyn(full))
        .into_iter()
        .map(|idx| (0..own.len()).map(|i| idx[lead + i] * strides[i]).sum())
        .collect()
}

fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: "MatMul", detail }
}
