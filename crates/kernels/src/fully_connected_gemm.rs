//! FullyConnected (`activation(X · W + B)`, f32) as packed GEMM with the weight packed once.

use crate::KernelError;
use crate::fast::FastActivation;
use crate::gemm::{F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedB, PerAxis, Residual, sgemm};
use lithe_ir::Tensor;
use lithe_ir::op::{Activation, FcAttrs};

const OP: &str = "FullyConnected";

/// A FullyConnected node prepared for [`FullyConnectedGemm::run`].
pub struct FullyConnectedGemm {
    kernel: &'static dyn F32GemmMicrokernel,
    packed: PackedB,
    bias: Option<Vec<f32>>,
    slope: Option<Vec<f32>>,
    activation: Activation,
    k: usize,
    n: usize,
}

impl std::fmt::Debug for FullyConnectedGemm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FullyConnectedGemm")
            .field("kernel", &self.kernel.name())
            .field("k", &self.k)
            .field("n", &self.n)
            .finish()
    }
}

impl FullyConnectedGemm {
    /// Pack `w` (`K x N`) for `kernel`; `b` is the optional bias (`N`), `slope` the PReLU
    /// slope (one value or `N`) when the activation is PReLU.
    pub fn prepare(
        kernel: &'static dyn F32GemmMicrokernel,
        attrs: &FcAttrs,
        w: &Tensor,
        b: Option<&Tensor>,
        slope: Option<&Tensor>,
    ) -> Result<Self, KernelError> {
        let wv = w.view_in_place::<f32>().ok_or_else(|| unsupported(format!("W has dtype {}", w.dtype())))?;
        let &[k, n] = wv.shape() else {
            return Err(invalid(format!("W must be 2-D, found shape {:?}", wv.shape())));
        };
        let data: Vec<f32> = match wv.as_slice() {
            Some(s) => s.to_vec(),
            None => wv.iter().copied().collect(),
        };
        let packed = PackedB::pack(kernel, MatRef::row_major(&data, k, n)?)?;
        let bias = match b {
            None => None,
            Some(t) => {
                let v = t.view_in_place::<f32>().ok_or_else(|| unsupported(format!("B has dtype {}", t.dtype())))?;
                if v.shape() != [n] {
                    return Err(invalid(format!("bias shape {:?} must be [{n}]", v.shape())));
                }
                Some(v.iter().copied().collect())
            }
        };
        let slope = match (&attrs.activation, slope) {
            (Activation::PRelu, Some(s)) => {
                let v: Vec<f32> = s
                    .view_in_place::<f32>()
                    .ok_or_else(|| unsupported(format!("PRelu slope has dtype {}", s.dtype())))?
                    .iter()
                    .copied()
                    .collect();
                match (v.len(), s.shape().last()) {
                    (1, _) => Some(vec![v[0]; n]),
                    (len, Some(&last)) if len == n && last == n => Some(v),
                    _ => return Err(unsupported(format!("PRelu slope of shape {:?} is not per feature", s.shape()))),
                }
            }
            (Activation::PRelu, None) => return Err(invalid("a fused PRelu needs its slope input".into())),
            _ => None,
        };
        Ok(FullyConnectedGemm { kernel, packed, bias, slope, activation: attrs.activation, k, n })
    }

    /// Output features (`N`).
    pub fn features(&self) -> usize {
        self.n
    }

    /// The microkernel the weight was packed for.
    pub fn microkernel(&self) -> &'static dyn F32GemmMicrokernel {
        self.kernel
    }

    /// `y = activation(x · W + B)` for `x` of shape `... x K` (`rows * K` elements) and `y`
    /// of `rows * N` elements.
    pub fn run(&self, x: &[f32], x_shape: &[usize], y: &mut [f32], threads: usize) -> Result<(), KernelError> {
        let Some((&k, lead)) = x_shape.split_last() else {
            return Err(invalid("X must have rank >= 1".into()));
        };
        if k != self.k {
            return Err(invalid(format!("X has {k} features, W expects {}", self.k)));
        }
        let rows =
            lead.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| invalid("X overflows".into()))?;
        if Some(x.len()) != rows.checked_mul(k) || Some(y.len()) != rows.checked_mul(self.n) {
            return Err(invalid(format!("X has {} and Y {} elements for {rows} rows", x.len(), y.len())));
        }
        if rows <= GEMV_MAX_ROWS {
            return self.gemv_rows(x, rows, y);
        }
        let ep = GemmEpilogue {
            bias: self.bias.as_deref().map(PerAxis::Col),
            residual: Residual::None,
            activation: self.activation,
            prelu_slope: self.slope.as_deref().map(PerAxis::Col),
        };
        sgemm(
            self.kernel,
            rows,
            self.n,
            k,
            GemmInput::Strided(MatRef::row_major(x, rows, k)?),
            GemmInput::Packed(&self.packed),
            y,
            self.n,
            &ep,
            threads,
        )
    }
}

/// Up to this many rows, each row is a matrix-vector product over the packed panels (the
/// GEMM tile would waste most of its rows).
const GEMV_MAX_ROWS: usize = 3;

impl FullyConnectedGemm {
    /// `y[r] = activation(x[r] · W + B)` row by row: per packed panel of `NR` columns, one
    /// `NR`-wide multiply-add per depth step (vectorizes for any `NR`).
    fn gemv_rows(&self, x: &[f32], rows: usize, y: &mut [f32]) -> Result<(), KernelError> {
        let (k, n, nr) = (self.k, self.n, self.packed.nr());
        let activation = FastActivation::from_ir(&self.activation, self.slope.as_deref())?;
        let panels = self.packed.as_slice();
        let mut acc = vec![0f32; nr];
        for r in 0..rows {
            let xr = &x[r * k..(r + 1) * k];
            let yr = &mut y[r * n..(r + 1) * n];
            for (q, out) in yr.chunks_mut(nr).enumerate() {
                let panel = &panels[q * nr * k..(q + 1) * nr * k];
                acc.fill(0.0);
                for (&xv, w) in xr.iter().zip(panel.chunks_exact(nr)) {
                    for (a, &wv) in acc.iter_mut().zip(w) {
                        *a += xv * wv;
                    }
                }
                out.copy_from_slice(&acc[..out.len()]);
            }
            if let Some(b) = &self.bias {
                for (o, &bv) in yr.iter_mut().zip(b) {
                    *o += bv;
                }
            }
            activation.apply_row(yr);
        }
        Ok(())
    }
}

fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: OP, detail }
}

fn unsupported(detail: String) -> KernelError {
    KernelError::Unsupported { op: OP, detail }
}
