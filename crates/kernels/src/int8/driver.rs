//! The int8 GEMM driver: activation packing by column blocks, the microkernel over whole
//! depth, the fused epilogue, threads.

use super::epilogue::{I8TileEpilogue, I8TileOut, QuantEpilogue, QuantOut, check_scale, invalid};
use super::microkernel::I8GemmMicrokernel;
use super::pack::{I8Input, PackScratch, PackedI8Weights, pack_b_block};
use crate::KernelError;
use rayon::prelude::*;
use std::ops::Range;

/// Bytes of packed activations per column block (about half of a 1 MiB L2: the block is
/// re-read once per weight panel).
const B_BLOCK_BYTES: usize = 512 * 1024;

std::thread_local! {
    /// Each thread's packing scratch, kept between calls.
    static SCRATCH: std::cell::RefCell<PackScratch> = std::cell::RefCell::default();
}

/// Output base pointer shared by the workers of one [`i8_gemm`].
#[derive(Clone, Copy)]
struct OutPtr(*mut u8);
// SAFETY: workers write disjoint row or column ranges of the output, which `i8_gemm` borrows
// exclusively for the duration of the parallel section.
unsafe impl Send for OutPtr {}
// SAFETY: as above; the pointer is only copied.
unsafe impl Sync for OutPtr {}

/// The per-row epilogue vectors of one call.
pub(crate) struct RowParams {
    pub(crate) comp: Vec<i32>,
    pub(crate) scale: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

impl RowParams {
    /// `comp = (x_zp - b_offset)·Σw - bias_i32` (wrapping), `scale = x_scale·w_scale`,
    /// `bias` (zeros when absent); lengths checked against `m`.
    pub(crate) fn new(
        w: &PackedI8Weights,
        x_zero_point: u8,
        b_offset: u8,
        ep: &QuantEpilogue<'_>,
    ) -> Result<Self, KernelError> {
        Self::from_parts(w.row_sums(), w.w_scale(), x_zero_point, b_offset, ep)
    }

    /// [`new`](Self::new) from the weights' row sums and per-row scales (`m` rows).
    pub(crate) fn from_parts(
        row_sums: &[i32],
        w_scale: &[f32],
        x_zero_point: u8,
        b_offset: u8,
        ep: &QuantEpilogue<'_>,
    ) -> Result<Self, KernelError> {
        let m = row_sums.len();
        check_scale("x_scale", ep.x_scale, false)?;
        if let Some(b) = ep.bias
            && b.len() != m
        {
            return Err(invalid(format!("bias has {} values for {m} rows", b.len())));
        }
        if let Some(b) = ep.bias_i32
            && b.len() != m
        {
            return Err(invalid(format!("int32 bias has {} values for {m} rows", b.len())));
        }
        let zp = x_zero_point as i32 - b_offset as i32;
        let comp = (0..m).map(|i| zp.wrapping_mul(row_sums[i]).wrapping_sub(ep.bias_i32.map_or(0, |b| b[i]))).collect();
        let scale = w_scale.iter().map(|&s| ep.x_scale * s).collect();
        let bias = ep.bias.map_or_else(|| vec![0.0; m], <[f32]>::to_vec);
        Ok(RowParams { comp, scale, bias })
    }
}

/// `out = epilogue(W · (X - x_zp))`: `W` is the packed `m x k` s8 weights, `X` the `k x n` u8
/// activations with zero point `x_zero_point`, `out` `m x n` with row stride `ldc`.
///
/// Exact i32 accumulation (`acc = Σ (x - x_zp)·w + bias_i32`), then the fused epilogue of
/// [`QuantEpilogue`] into the kind of `out`. Shapes, lengths, scales and the kernel the weights
/// were packed for are checked ([`KernelError::Invalid`]). With `threads > 1` column blocks
/// (or row panels when `out` is tall and narrow) run on the rayon pool; results are identical
/// for every thread count.
#[allow(clippy::too_many_arguments)]
pub fn i8_gemm(
    kernel: &dyn I8GemmMicrokernel,
    w: &PackedI8Weights,
    x: I8Input<'_>,
    x_zero_point: u8,
    ep: &QuantEpilogue<'_>,
    out: QuantOut<'_>,
    ldc: usize,
    threads: usize,
) -> Result<(), KernelError> {
    i8_gemm_with_residual(kernel, w, x, x_zero_point, ep, None, out, ldc, threads)
}

/// [`i8_gemm`] with an optional f32 `residual` laid out as the output (`m x n` at row stride
/// `ldc`) added before the activation: `y = act((acc·scale + bias) + residual)` with ONNX
/// `Clip` comparisons ([`dequant_residual`](super::dequant_residual)), then written as f32 or
/// requantized. A residual needs an f32, u8 or s8 output.
#[allow(clippy::too_many_arguments)]
pub fn i8_gemm_with_residual(
    kernel: &dyn I8GemmMicrokernel,
    w: &PackedI8Weights,
    x: I8Input<'_>,
    x_zero_point: u8,
    ep: &QuantEpilogue<'_>,
    residual: Option<&[f32]>,
    mut out: QuantOut<'_>,
    ldc: usize,
    threads: usize,
) -> Result<(), KernelError> {
    if !w.packed_for(kernel) {
        return Err(invalid(format!("weights packed for {}, used with {}", w.kernel_name(), kernel.name())));
    }
    let (m, k) = (w.rows(), w.depth());
    let (n, kind) = check_gemm_io(m, k, &x, &out, ldc, residual)?;
    let rows = RowParams::new(w, x_zero_point, kernel.b_offset(), ep)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let ctx = Ctx {
        kernel,
        w,
        x,
        rows: &rows,
        clamp: ep.activation.bounds(),
        kind,
        residual,
        out: OutPtr(out.as_mut_ptr()),
        ldc,
    };
    let (mr, nr) = (kernel.mr(), kernel.nr());
    let (m_panels, n_panels) = (m.div_ceil(mr), n.div_ceil(nr));
    let work = (m as f64) * (n as f64) * (k.max(1) as f64);
    if threads <= 1 || work < 65536.0 {
        return ctx.run(0..m, 0..n);
    }
    let split_n = n_panels >= threads && (n >= m || m_panels < threads);
    let (panels, w_) = if split_n { (n_panels, nr) } else { (m_panels, mr) };
    if panels < 2 {
        return ctx.run(0..m, 0..n);
    }
    let per = panels.div_ceil(threads.min(panels));
    let len = if split_n { n } else { m };
    let ranges: Vec<Range<usize>> = (0..panels).step_by(per).map(|p| p * w_..((p + per) * w_).min(len)).collect();
    ranges.into_par_iter().try_for_each(|r| if split_n { ctx.run(0..m, r) } else { ctx.run(r, 0..n) })
}

/// The checks every int8 GEMM entry makes on its operands (`m x k` weights): the activations'
/// depth, an output of `m x n` at row stride `ldc`, a residual laid out as the output (not with
/// an i32 output) and the output scale. Returns `n` and the output kind.
pub(crate) fn check_gemm_io(
    m: usize,
    k: usize,
    x: &I8Input<'_>,
    out: &QuantOut<'_>,
    ldc: usize,
    residual: Option<&[f32]>,
) -> Result<(usize, super::OutputKind), KernelError> {
    let (xk, n) = x.shape();
    if xk != k {
        return Err(invalid(format!("activations have {xk} rows, the weights' depth is {k}")));
    }
    let need = if m == 0 || n == 0 {
        0
    } else {
        (m - 1).checked_mul(ldc).and_then(|v| v.checked_add(n)).ok_or_else(|| invalid("output overflows".into()))?
    };
    if need > out.len() || (m > 1 && n > 0 && ldc < n) {
        return Err(invalid(format!("output {m} x {n} with ldc {ldc} needs {need} elements, has {}", out.len())));
    }
    let kind = out.kind();
    if let Some(r) = residual {
        if kind == super::OutputKind::I32 {
            return Err(invalid("a residual needs an f32, u8 or s8 output, not i32".into()));
        }
        if r.len() < need {
            return Err(invalid(format!("residual {m} x {n} with ldc {ldc} needs {need} elements, has {}", r.len())));
        }
    }
    if let Some(rq) = kind.requant() {
        check_scale("y_scale", rq.scale, true)?;
    }
    Ok((n, kind))
}

/// Everything a worker needs, validated.
struct Ctx<'a> {
    kernel: &'a dyn I8GemmMicrokernel,
    w: &'a PackedI8Weights,
    x: I8Input<'a>,
    rows: &'a RowParams,
    clamp: Option<(f32, f32)>,
    kind: super::OutputKind,
    residual: Option<&'a [f32]>,
    out: OutPtr,
    ldc: usize,
}

impl Ctx<'_> {
    fn run(&self, rows: Range<usize>, cols: Range<usize>) -> Result<(), KernelError> {
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => self.run_with(rows, cols, &mut s),
            Err(_) => self.run_with(rows, cols, &mut PackScratch::default()),
        })
    }

    /// `rows` and `cols` start on panel boundaries.
    fn run_with(&self, rows: Range<usize>, cols: Range<usize>, s: &mut PackScratch) -> Result<(), KernelError> {
        let (mr, nr, kr) = (self.kernel.mr(), self.kernel.nr(), self.kernel.kr());
        let k = self.w.depth();
        let kg = k.div_ceil(kr);
        let panel_len = kg * nr * kr;
        let nc = ((B_BLOCK_BYTES / panel_len.max(1)).max(1) * nr).max(nr);
        let elem = self.kind.elem_size();
        let off = self.kernel.b_offset();
        for jc in cols.clone().step_by(nc) {
            let ncb = nc.min(cols.end - jc);
            pack_b_block(self.x, k, jc, ncb, nr, kr, off, s)?;
            let block = &s.block[..ncb.div_ceil(nr) * panel_len];
            for i in rows.clone().step_by(mr) {
                let rows_t = mr.min(rows.end - i);
                let a_panel = self.w.panel(i / mr);
                let ep = I8TileEpilogue::new(
                    &self.rows.comp[i..],
                    &self.rows.scale[i..],
                    &self.rows.bias[i..],
                    self.clamp,
                    self.kind,
                )?;
                let ep = match self.residual {
                    Some(r) => ep.with_residual(&r[i * self.ldc + jc..], self.ldc),
                    None => ep,
                };
                // SAFETY: `i8_gemm` checked that the output spans `m x n` at `ldc` (`ldc >= n`
                // when m > 1) and borrows it exclusively; rows `i .. i + rows_t` and columns
                // `jc .. jc + ncb` are inside `m x n`, and workers own disjoint row or column
                // ranges.
                let mut tile = unsafe {
                    I8TileOut::from_raw(self.out.0.add((i * self.ldc + jc) * elem), elem, self.ldc, rows_t, ncb)
                };
                self.kernel.run_panels(kg, a_panel, block, &mut tile, &ep);
            }
        }
        Ok(())
    }
}
