//! The f32 GEMM microkernel family and its portable member.

use super::driver::Blocking;
use super::epilogue::{TileEpilogue, TileOut};

/// An f32 GEMM microkernel: `C tile = epilogue(A panel · B panel)`.
///
/// Packed panels (see [`PackedA`](super::PackedA) / [`PackedB`](super::PackedB)) are K-major:
/// the `A` panel holds `a[p * mr + i]` (`k * mr` values), the `B` panel `b[p * nr + j]`
/// (`k * nr` values), zero-padded past the matrix edge. The tile may be smaller than
/// `mr x nr` at the edges of `C`; only its `rows x cols` elements are read or written.
pub trait F32GemmMicrokernel: Send + Sync {
    /// XNNPACK-style name, e.g. `f32_gemm_4x8__generic`.
    fn name(&self) -> &'static str;
    /// Rows of the register tile (`MR`).
    fn mr(&self) -> usize;
    /// Columns of the register tile (`NR`).
    fn nr(&self) -> usize;
    /// Cache blocking the driver uses with this kernel (defaults to [`Blocking::for_tile`]).
    fn blocking(&self) -> Blocking {
        Blocking::for_tile(self.mr(), self.nr())
    }
    /// Multiply the `k`-deep panels and finish the tile with `ep`.
    ///
    /// Panics when a panel is shorter than `k * mr` / `k * nr`, the tile exceeds `mr x nr`, or
    /// `ep` does not [`fit`](TileEpilogue::fits) the tile.
    fn run(&self, k: usize, a_panel: &[f32], b_panel: &[f32], c: &mut TileOut<'_>, ep: &TileEpilogue<'_>);
}

/// Panics unless the panels and tile fit an `mr x nr` kernel at depth `k` and `ep` was built
/// for the tile; implementations call it before touching memory.
pub fn check_microkernel_args(
    mr: usize,
    nr: usize,
    k: usize,
    a_panel: &[f32],
    b_panel: &[f32],
    c: &TileOut<'_>,
    ep: &TileEpilogue<'_>,
) {
    let fits = |len: usize, w: usize| k.checked_mul(w).is_some_and(|need| need <= len);
    assert!(fits(a_panel.len(), mr), "A panel of {} values is too short for k = {k}, mr = {mr}", a_panel.len());
    assert!(fits(b_panel.len(), nr), "B panel of {} values is too short for k = {k}, nr = {nr}", b_panel.len());
    assert!(c.rows() <= mr && c.cols() <= nr, "tile {} x {} exceeds {mr} x {nr}", c.rows(), c.cols());
    assert!(ep.fits(c), "the epilogue was built for a different tile");
}

/// `f32_gemm_4x8__generic`: plain Rust written for autovectorization; always available.
#[derive(Clone, Copy, Debug, Default)]
pub struct F32Gemm4x8Generic;

impl F32Gemm4x8Generic {
    const MR: usize = 4;
    const NR: usize = 8;
}

impl F32GemmMicrokernel for F32Gemm4x8Generic {
    fn name(&self) -> &'static str {
        "f32_gemm_4x8__generic"
    }

    fn mr(&self) -> usize {
        Self::MR
    }

    fn nr(&self) -> usize {
        Self::NR
    }

    fn run(&self, k: usize, a_panel: &[f32], b_panel: &[f32], c: &mut TileOut<'_>, ep: &TileEpilogue<'_>) {
        const MR: usize = F32Gemm4x8Generic::MR;
        const NR: usize = F32Gemm4x8Generic::NR;
        check_microkernel_args(MR, NR, k, a_panel, b_panel, c, ep);
        let mut acc = [[0f32; NR]; MR];
        for (a, b) in a_panel[..k * MR].chunks_exact(MR).zip(b_panel[..k * NR].chunks_exact(NR)) {
            for (row, &av) in acc.iter_mut().zip(a) {
                for (x, &bv) in row.iter_mut().zip(b) {
                    *x += av * bv;
                }
            }
        }
        for (i, row) in acc.iter().enumerate().take(c.rows()) {
            for (j, &v) in row.iter().enumerate().take(c.cols()) {
                ep.store(c, i, j, v);
            }
        }
    }
}
