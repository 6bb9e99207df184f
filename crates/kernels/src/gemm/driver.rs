//! The BLIS-style driver: cache blocking, packing, edge tiles, epilogue and threads.

use super::epilogue::{
    GemmEpilogue, PerAxis, PostActivation, Residual, TileBias, TileEpilogue, TileOut, invalid, span, split_activation,
};
use super::microkernel::F32GemmMicrokernel;
use super::pack::{AlignedBuf, MatRef, PackedA, PackedB, PanelSource, pack_panels, packed_len};
use crate::KernelError;
use rayon::prelude::*;
use std::ops::Range;

/// Cache blocking: `C` is computed in `mc x nc` blocks, `K` consumed `kc` at a time.
///
/// The loop nest is `jc` (`nc` columns) → `pc` (`kc` deep: pack a `kc x nc` block of `B`,
/// sized past L2) → `ic` (`mc` rows: pack an `mc x kc` block of `A`, sized for L3) → `ir` (one
/// `MR x kc` panel of `A`, the broadcast operand, kept in L1) → `jr` (`kc x NR` panels of `B`,
/// the vector operand, streamed from L2) → microkernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Rows of `A` packed per block (a multiple of `MR`).
    pub mc: usize,
    /// Depth per block.
    pub kc: usize,
    /// Columns of `B` packed per block (a multiple of `NR`).
    pub nc: usize,
}

/// Bytes of L1 given to one `MR x kc` panel of `A` (of 32–48 KiB L1d on current x86 cores).
const L1_PANEL_BYTES: usize = 12 * 1024;
/// Bytes given to the packed `kc x nc` block of `B`: an L2 (2 MiB here) plus a share of L3.
/// Measured with the 12x32 AVX-512 kernel on 1024³/2048³: 1, 1.5, 3 and 8 MiB blocks gave
/// roughly 85, 100, 110 and 110 GFLOP/s, so blocks larger than L2 win (the `B` panels
/// stream well from L3, and fewer `nc` blocks mean `A` is repacked less often).
const L2_BLOCK_BYTES: usize = 3 * 1024 * 1024;
/// Bytes of L3 given to the packed `mc x kc` block of `A`.
const L3_BLOCK_BYTES: usize = 4 * 1024 * 1024;

impl Blocking {
    /// Blocking derived from the register tile: `kc` so an `MR x kc` panel of `A` takes
    /// 12 KiB of L1 (clamped to 128..=512, a multiple of 8: 256 for `MR = 12`, 512 for
    /// `MR = 6`; kc = 384/512 measured slower than 256 for 12x32), `nc` so the `B` block
    /// takes 3 MiB, `mc` so the `A` block takes 4 MiB of L3.
    pub fn for_tile(mr: usize, nr: usize) -> Self {
        let (mr, nr) = (mr.max(1), nr.max(1));
        let kc = (L1_PANEL_BYTES / (4 * mr)).clamp(128, 512) / 8 * 8;
        let nc = (L2_BLOCK_BYTES / (4 * kc) / nr).max(1) * nr;
        let mc = (L3_BLOCK_BYTES / (4 * kc) / mr).max(1) * mr;
        Blocking { mc, kc, nc }
    }
}

/// An operand of [`sgemm`]: a strided view packed on the fly, prepacked, or a source that
/// packs itself.
pub enum GemmInput<'a, P> {
    /// A strided matrix (packed block by block during the product).
    Strided(MatRef<'a>),
    /// A matrix packed once for the same kernel ([`PackedA`] or [`PackedB`]).
    Packed(&'a P),
    /// An operand that packs its own blocks (`B` only; an error for `A`).
    Source(&'a dyn PanelSource),
}

impl<P> std::fmt::Debug for GemmInput<'_, P>
where
    P: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GemmInput::Strided(v) => f.debug_tuple("Strided").field(v).finish(),
            GemmInput::Packed(p) => f.debug_tuple("Packed").field(p).finish(),
            GemmInput::Source(s) => write!(f, "Source({} x {})", s.depth(), s.cols()),
        }
    }
}

impl<P> Clone for GemmInput<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for GemmInput<'_, P> {}

std::thread_local! {
    /// Each thread's packing buffers (`A` block, `B` block), kept between calls so a GEMM does
    /// not allocate (and page-fault) its blocks afresh every time.
    static PACK_BUFFERS: std::cell::RefCell<(AlignedBuf, AlignedBuf)> = std::cell::RefCell::default();
}

/// `*mut f32` to `C` shared by the workers of one [`sgemm`].
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: workers derive tiles from the pointer over disjoint row or column ranges of `C`,
// which `sgemm` borrows exclusively for the duration of the parallel section.
unsafe impl Send for CPtr {}
// SAFETY: as above; the pointer itself is only copied, never written through concurrently
// at the same element.
unsafe impl Sync for CPtr {}

/// Everything a worker needs, validated.
struct Ctx<'a> {
    kernel: &'a dyn F32GemmMicrokernel,
    k: usize,
    a: GemmInput<'a, PackedA>,
    b: GemmInput<'a, PackedB>,
    c: CPtr,
    ldc: usize,
    bias: Option<PerAxis<'a>>,
    residual: Option<&'a [f32]>,
    residual_in_output: bool,
    fused: super::FusedActivation,
    post: Option<PostActivation<'a>>,
    blocking: Blocking,
}

/// `C = epilogue(A · B)`: `A` is `m x k`, `B` is `k x n`, `C` is `m x n` with row stride
/// `ldc` (`C[i * ldc + j]`).
///
/// Shapes are checked against the slices (views, packed operands built for `kernel`, `c`,
/// bias, residual and slope lengths), returning [`KernelError::Invalid`] on mismatch. With
/// `threads > 1` independent column blocks (or row blocks when `C` is tall and narrow) run on
/// the rayon pool; with `threads <= 1` the pool is never touched.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    kernel: &dyn F32GemmMicrokernel,
    m: usize,
    n: usize,
    k: usize,
    a: GemmInput<'_, PackedA>,
    b: GemmInput<'_, PackedB>,
    c: &mut [f32],
    ldc: usize,
    epilogue: &GemmEpilogue<'_>,
    threads: usize,
) -> Result<(), KernelError> {
    let (mr, nr) = (kernel.mr(), kernel.nr());
    if mr == 0 || nr == 0 {
        return Err(invalid(format!("kernel {} has an empty tile", kernel.name())));
    }
    match a {
        GemmInput::Strided(v) if (v.rows(), v.cols()) != (m, k) => {
            return Err(invalid(format!("A is {} x {}, expected {m} x {k}", v.rows(), v.cols())));
        }
        GemmInput::Packed(p) if (p.rows(), p.depth(), p.mr()) != (m, k, mr) => {
            return Err(invalid(format!(
                "packed A is {} x {} for MR {}, expected {m} x {k} for MR {mr} ({})",
                p.rows(),
                p.depth(),
                p.mr(),
                kernel.name()
            )));
        }
        GemmInput::Source(_) => return Err(invalid("a PanelSource can only be the B operand".into())),
        _ => {}
    }
    match b {
        GemmInput::Strided(v) if (v.rows(), v.cols()) != (k, n) => {
            return Err(invalid(format!("B is {} x {}, expected {k} x {n}", v.rows(), v.cols())));
        }
        GemmInput::Packed(p) if (p.depth(), p.cols(), p.nr()) != (k, n, nr) => {
            return Err(invalid(format!(
                "packed B is {} x {} for NR {}, expected {k} x {n} for NR {nr} ({})",
                p.depth(),
                p.cols(),
                p.nr(),
                kernel.name()
            )));
        }
        GemmInput::Source(p) if (p.depth(), p.cols()) != (k, n) => {
            return Err(invalid(format!("B source is {} x {}, expected {k} x {n}", p.depth(), p.cols())));
        }
        _ => {}
    }
    let need = span(m, n, ldc).ok_or_else(|| invalid(format!("C {m} x {n} with ldc {ldc} overflows")))?;
    if need > c.len() || (m > 1 && ldc < n) {
        return Err(invalid(format!("C {m} x {n} with ldc {ldc} needs {need} elements, has {}", c.len())));
    }
    let check_axis = |what: &str, v: Option<PerAxis<'_>>| -> Result<(), KernelError> {
        match v {
            Some(PerAxis::Row(b)) if b.len() != m => {
                Err(invalid(format!("{what} per row has {} values, m = {m}", b.len())))
            }
            Some(PerAxis::Col(b)) if b.len() != n => {
                Err(invalid(format!("{what} per column has {} values, n = {n}", b.len())))
            }
            _ => Ok(()),
        }
    };
    check_axis("bias", epilogue.bias)?;
    check_axis("PRelu slope", epilogue.prelu_slope)?;
    let (residual, residual_in_output) = match epilogue.residual {
        Residual::None => (None, false),
        Residual::InOutput => (None, true),
        Residual::Separate(r) if r.len() < need => {
            return Err(invalid(format!("residual has {} elements, C needs {need}", r.len())));
        }
        Residual::Separate(r) => (Some(r), false),
    };
    let (fused, post) = split_activation(&epilogue.activation, epilogue.prelu_slope)?;
    if m == 0 || n == 0 {
        return Ok(());
    }
    let mut blocking = kernel.blocking();
    blocking.kc = blocking.kc.max(1);
    blocking.mc = blocking.mc.max(mr) / mr * mr;
    blocking.nc = blocking.nc.max(nr) / nr * nr;
    let ctx = Ctx {
        kernel,
        k,
        a,
        b,
        c: CPtr(c.as_mut_ptr()),
        ldc,
        bias: epilogue.bias,
        residual,
        residual_in_output,
        fused,
        post,
        blocking,
    };
    let flops = (m as f64) * (n as f64) * (k.max(1) as f64);
    let (m_panels, n_panels) = (m.div_ceil(mr), n.div_ceil(nr));
    if threads <= 1 || flops < 65536.0 {
        return ctx.run(0..m, 0..n);
    }
    // Split the axis with more panels; ranges start on panel boundaries.
    let split_n = n_panels >= threads && (n >= m || m_panels < threads);
    let (panels, w) = if split_n { (n_panels, nr) } else { (m_panels, mr) };
    if panels < 2 {
        return ctx.run(0..m, 0..n);
    }
    let per = panels.div_ceil(threads.min(panels));
    let len = if split_n { n } else { m };
    let ranges: Vec<Range<usize>> = (0..panels).step_by(per).map(|p| p * w..((p + per) * w).min(len)).collect();
    ranges.into_par_iter().try_for_each(|r| if split_n { ctx.run(0..m, r) } else { ctx.run(r, 0..n) })
}

impl Ctx<'_> {
    /// Compute `C[rows, cols]` (both ranges start on panel boundaries).
    fn run(&self, rows: Range<usize>, cols: Range<usize>) -> Result<(), KernelError> {
        PACK_BUFFERS.with(|bufs| match bufs.try_borrow_mut() {
            Ok(mut b) => {
                let (abuf, bbuf) = &mut *b;
                self.run_with(rows, cols, abuf, bbuf)
            }
            // Re-entered on this thread (not done by the driver itself): use fresh buffers.
            Err(_) => self.run_with(rows, cols, &mut AlignedBuf::default(), &mut AlignedBuf::default()),
        })
    }

    /// [`run`](Self::run) with the packing buffers given.
    fn run_with(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
        abuf: &mut AlignedBuf,
        bbuf: &mut AlignedBuf,
    ) -> Result<(), KernelError> {
        let (mr, nr, k) = (self.kernel.mr(), self.kernel.nr(), self.k);
        let Blocking { mc, kc, nc } = self.blocking;
        let kblocks: Vec<(usize, usize)> =
            if k == 0 { vec![(0, 0)] } else { (0..k).step_by(kc).map(|p| (p, kc.min(k - p))).collect() };
        for jc in cols.clone().step_by(nc) {
            let ncb = nc.min(cols.end - jc);
            for &(pc, kcb) in &kblocks {
                let (first, last) = (pc == 0, pc + kcb == k);
                match self.b {
                    GemmInput::Strided(v) => {
                        bbuf.resize(packed_len(ncb, kcb, nr).ok_or_else(|| invalid("B block overflows".into()))?)?;
                        pack_panels(&v.t(), jc, ncb, pc, kcb, nr, bbuf.as_mut_slice());
                    }
                    GemmInput::Source(src) => {
                        bbuf.resize(packed_len(ncb, kcb, nr).ok_or_else(|| invalid("B block overflows".into()))?)?;
                        src.pack(pc, kcb, jc, ncb, nr, bbuf.as_mut_slice());
                    }
                    GemmInput::Packed(_) => {}
                }
                for ic in rows.clone().step_by(mc) {
                    let mcb = mc.min(rows.end - ic);
                    if let GemmInput::Strided(v) = self.a {
                        abuf.resize(packed_len(mcb, kcb, mr).ok_or_else(|| invalid("A block overflows".into()))?)?;
                        pack_panels(&v, ic, mcb, pc, kcb, mr, abuf.as_mut_slice());
                    }
                    for ir in 0..mcb.div_ceil(mr) {
                        let a_panel = match self.a {
                            GemmInput::Strided(_) | GemmInput::Source(_) => {
                                &abuf.as_slice()[ir * kcb * mr..][..kcb * mr]
                            }
                            GemmInput::Packed(p) => &p.as_slice()[(ic / mr + ir) * k * mr + pc * mr..][..kcb * mr],
                        };
                        let i = ic + ir * mr;
                        let rows_t = mr.min(ic + mcb - i);
                        for jr in 0..ncb.div_ceil(nr) {
                            let b_panel = match self.b {
                                GemmInput::Strided(_) | GemmInput::Source(_) => {
                                    &bbuf.as_slice()[jr * kcb * nr..][..kcb * nr]
                                }
                                GemmInput::Packed(p) => &p.as_slice()[(jc / nr + jr) * k * nr + pc * nr..][..kcb * nr],
                            };
                            let j = jc + jr * nr;
                            let cols_t = nr.min(jc + ncb - j);
                            // SAFETY: `sgemm` checked that `C` spans `m x n` at `ldc` (`ldc >= n`
                            // when m > 1) and borrows it exclusively; (i, j) + tile is inside
                            // `m x n`, and workers own disjoint row or column ranges.
                            let mut tile =
                                unsafe { TileOut::from_raw(self.c.0.add(i * self.ldc + j), self.ldc, rows_t, cols_t) };
                            let accumulate = !first || self.residual_in_output;
                            let ep = if last {
                                let bias = match self.bias {
                                    None => TileBias::None,
                                    Some(PerAxis::Row(b)) => TileBias::Row(&b[i..]),
                                    Some(PerAxis::Col(b)) => TileBias::Col(&b[j..]),
                                };
                                let res = self.residual.map(|r| &r[i * self.ldc + j..]);
                                TileEpilogue::new(&tile, accumulate, bias, res, self.fused)?
                            } else {
                                TileEpilogue::plain(accumulate)
                            };
                            self.kernel.run(kcb, a_panel, b_panel, &mut tile, &ep);
                            if let (true, Some(post)) = (last, self.post) {
                                for ti in 0..rows_t {
                                    for tj in 0..cols_t {
                                        let v = post.apply(tile.get(ti, tj), i + ti, j + tj);
                                        tile.set(ti, tj, v);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
