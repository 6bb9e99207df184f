//! FullyConnected (`activation(X · W + B)`, f32) as packed GEMM with the weight packed once.

use crate::KernelError;
use crate::fast::{FastActivation, Isa, NATIVE_FMA, madd};
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
            return self.gemv_rows(x, rows, y, threads);
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
    /// `NR`-wide multiply-add per depth step, accumulated in registers. The weight is streamed
    /// once per row, so this is bound by memory bandwidth; `threads > 1` splits the panels.
    fn gemv_rows(&self, x: &[f32], rows: usize, y: &mut [f32], threads: usize) -> Result<(), KernelError> {
        let (k, n, nr) = (self.k, self.n, self.packed.nr());
        let activation = FastActivation::from_ir(&self.activation, self.slope.as_deref())?;
        let panels = self.packed.as_slice();
        let isa = Isa::detect();
        for r in 0..rows {
            let xr = &x[r * k..(r + 1) * k];
            let yr = &mut y[r * n..(r + 1) * n];
            let run = |first_panel: usize, out: &mut [f32]| {
                let w = &panels[first_panel * nr * k..];
                gemv_panels(isa, xr, w, nr, self.bias.as_deref().map(|b| &b[first_panel * nr..]), out);
            };
            crate::parallel::for_unit_runs(yr, n.div_ceil(nr), nr, 1, threads, run);
            activation.apply_row(yr);
        }
        Ok(())
    }
}

/// `out = bias + x · W` over consecutive packed panels (`nr` columns each, K-major: depth step
/// `p` of panel `q` at `w[(q * k + p) * nr..]`, `k = x.len()`); `out` may end inside a panel.
fn gemv_panels(isa: Isa, x: &[f32], w: &[f32], nr: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // SAFETY: `Isa::Avx512` is only produced by `Isa::detect` after
            // `is_x86_feature_detected!` confirmed avx512f, avx2 and fma on this CPU; the function
            // body is safe code, so enabling the features is the only obligation.
            unsafe { gemv_panels_avx512(x, w, nr, bias, out) }
        }
        Isa::Generic => gemv_panels_by_width::<NATIVE_FMA>(x, w, nr, bias, out),
    }
}

/// [`gemv_panels_by_width`] compiled with AVX-512F and FMA.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn gemv_panels_avx512(x: &[f32], w: &[f32], nr: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    gemv_panels_by_width::<true>(x, w, nr, bias, out);
}

/// Dispatch on the panel width, so the common widths keep their accumulators in registers.
#[inline(always)]
fn gemv_panels_by_width<const FMA: bool>(x: &[f32], w: &[f32], nr: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    match nr {
        32 => gemv_fixed::<32, FMA>(x, w, bias, out),
        16 => gemv_fixed::<16, FMA>(x, w, bias, out),
        8 => gemv_fixed::<8, FMA>(x, w, bias, out),
        _ => gemv_any::<FMA>(x, w, nr, bias, out),
    }
}

/// [`gemv_panels`] for panels `NR` wide: two interleaved accumulator sets (even and odd depth
/// steps) so consecutive multiply-adds do not wait on each other.
#[inline(always)]
fn gemv_fixed<const NR: usize, const FMA: bool>(x: &[f32], w: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let k = x.len();
    for (q, o) in out.chunks_mut(NR).enumerate() {
        let panel = &w[q * k * NR..(q + 1) * k * NR];
        let mut even = [0f32; NR];
        let mut odd = [0f32; NR];
        let mut steps = panel.chunks_exact(2 * NR).zip(x.chunks_exact(2));
        for (wp, xp) in &mut steps {
            let (w0, w1) = wp.split_at(NR);
            for l in 0..NR {
                even[l] = madd::<FMA>(even[l], xp[0], w0[l]);
                odd[l] = madd::<FMA>(odd[l], xp[1], w1[l]);
            }
        }
        if k % 2 == 1 {
            let wl = &panel[(k - 1) * NR..];
            for l in 0..NR {
                even[l] = madd::<FMA>(even[l], x[k - 1], wl[l]);
            }
        }
        let b = bias.map(|b| &b[q * NR..]);
        for (j, v) in o.iter_mut().enumerate() {
            *v = even[j] + odd[j] + b.map_or(0.0, |b| b[j]);
        }
    }
}

/// [`gemv_panels`] for any panel width.
#[inline(always)]
fn gemv_any<const FMA: bool>(x: &[f32], w: &[f32], nr: usize, bias: Option<&[f32]>, out: &mut [f32]) {
    let k = x.len();
    let mut acc = vec![0f32; nr];
    for (q, o) in out.chunks_mut(nr).enumerate() {
        let panel = &w[q * k * nr..(q + 1) * k * nr];
        acc.fill(0.0);
        for (&xv, wr) in x.iter().zip(panel.chunks_exact(nr)) {
            for (a, &wv) in acc.iter_mut().zip(wr) {
                *a = madd::<FMA>(*a, xv, wv);
            }
        }
        let b = bias.map(|b| &b[q * nr..]);
        for (j, v) in o.iter_mut().enumerate() {
            *v = acc[j] + b.map_or(0.0, |b| b[j]);
        }
    }
}

fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: OP, detail }
}

fn unsupported(detail: String) -> KernelError {
    KernelError::Unsupported { op: OP, detail }
}
