//! The int8 GEMM microkernel family and its portable member.

use super::epilogue::{I8TileEpilogue, I8TileOut};

/// An int8 GEMM microkernel: `tile = epilogue(Σ_k a[i][k] · b'[k][j])` with `a` the s8
/// weights and `b'` the packed activations, accumulated exactly in i32 over the whole depth.
///
/// Packed panels group the depth by [`kr`](Self::kr) (`kg = ceil(k / kr)` groups, zero-padded):
/// - the `A` panel (weights, s8) holds `a[g * mr * kr + i * kr + r] = w[i][g * kr + r]`
///   (`kg * mr * kr` bytes);
/// - the `B` panel (activations) holds `b[g * nr * kr + j * kr + r] = x[g * kr + r][j] - b_offset`
///   as a wrapping byte (`kg * nr * kr` bytes): plain u8 when [`b_offset`](Self::b_offset) is 0,
///   the s8 value `x - 128` (sign bit flipped) when it is 128, for signed dot products.
///
/// The raw sum `Σ b'·w` differs from the wanted `Σ (x - x_zp)·w` by `(x_zp - b_offset)·Σ_k w`
/// per row; the driver folds that into the epilogue's per-row compensation.
pub trait I8GemmMicrokernel: Send + Sync {
    /// XNNPACK-style name, e.g. `qu8s8_gemm_8x32c4__avx512vnni`.
    fn name(&self) -> &'static str;
    /// Rows of the register tile (`MR`, output channels).
    fn mr(&self) -> usize;
    /// Columns of the register tile (`NR`, output positions).
    fn nr(&self) -> usize;
    /// Depth values per group in the packed panels (`KR`: 4 for 4-way dot products).
    fn kr(&self) -> usize;
    /// Subtracted from every activation byte when `B` is packed (0 or 128).
    fn b_offset(&self) -> u8 {
        0
    }
    /// Multiply `kg` depth groups of the panels and finish the tile with `ep`.
    ///
    /// Panics when a panel is shorter than `kg * mr * kr` / `kg * nr * kr` bytes, the tile
    /// exceeds `mr x nr`, or `ep` does not [`fit`](I8TileEpilogue::fits) the tile.
    fn run(&self, kg: usize, a_panel: &[i8], b_panel: &[u8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>);

    /// One row panel against consecutive `B` panels: `c` is up to `mr` rows by any number of
    /// columns, `b_block` holds `ceil(cols / nr)` panels of `kg * nr * kr` bytes back to back.
    /// The same as [`run`](Self::run) on each `nr`-column slice of `c` (with
    /// [`I8TileEpilogue::from_col`]); kernels override it to set the epilogue up once.
    ///
    /// Panics as [`run`](Self::run) does, or when `b_block` holds too few panels.
    fn run_panels(&self, kg: usize, a_panel: &[i8], b_block: &[u8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
        let nr = self.nr().max(1);
        let plen = kg * nr * self.kr();
        for q in 0..c.cols().div_ceil(nr) {
            let j0 = q * nr;
            let w = nr.min(c.cols() - j0);
            self.run(kg, a_panel, &b_block[q * plen..][..plen], &mut c.cols_range(j0, w), &ep.from_col(j0));
        }
    }
}

/// Panics unless the panels and tile fit an `mr x nr` kernel grouping `kr` at `kg` groups and
/// `ep` fits the tile; implementations call it before touching memory.
#[allow(clippy::too_many_arguments)]
pub fn check_i8_microkernel_args(
    mr: usize,
    nr: usize,
    kr: usize,
    kg: usize,
    a_panel: &[i8],
    b_panel: &[u8],
    c: &I8TileOut<'_>,
    ep: &I8TileEpilogue<'_>,
) {
    let fits = |len: usize, w: usize| kg.checked_mul(w * kr).is_some_and(|need| need <= len);
    assert!(fits(a_panel.len(), mr), "A panel of {} bytes is too short for {kg} groups, mr = {mr}", a_panel.len());
    assert!(fits(b_panel.len(), nr), "B panel of {} bytes is too short for {kg} groups, nr = {nr}", b_panel.len());
    assert!(c.rows() <= mr && c.cols() <= nr, "tile {} x {} exceeds {mr} x {nr}", c.rows(), c.cols());
    assert!(ep.fits(c), "the epilogue does not fit the tile");
}

/// [`check_i8_microkernel_args`] for [`I8GemmMicrokernel::run_panels`]: the tile may be any
/// number of columns wide and `b_block` must hold `ceil(cols / nr)` panels.
#[allow(clippy::too_many_arguments)]
pub fn check_i8_panels_args(
    mr: usize,
    nr: usize,
    kr: usize,
    kg: usize,
    a_panel: &[i8],
    b_block: &[u8],
    c: &I8TileOut<'_>,
    ep: &I8TileEpilogue<'_>,
) {
    let fits = |len: usize, w: usize| kg.checked_mul(w).and_then(|v| v.checked_mul(kr)).is_some_and(|need| need <= len);
    assert!(fits(a_panel.len(), mr), "A panel of {} bytes is too short for {kg} groups, mr = {mr}", a_panel.len());
    let panels = c.cols().div_ceil(nr.max(1));
    assert!(
        panels.checked_mul(nr).is_some_and(|w| fits(b_block.len(), w)),
        "B block of {} bytes is too short for {panels} panels of {kg} groups, nr = {nr}",
        b_block.len()
    );
    assert!(c.rows() <= mr, "tile of {} rows exceeds {mr}", c.rows());
    assert!(ep.fits(c), "the epilogue does not fit the tile");
}

/// `qu8s8_gemm_4x8c4__generic`: plain Rust, always available; the portable oracle next to the
/// reference.
#[derive(Clone, Copy, Debug, Default)]
pub struct I8Gemm4x8c4Generic;

impl I8Gemm4x8c4Generic {
    const MR: usize = 4;
    const NR: usize = 8;
    const KR: usize = 4;
}

impl I8GemmMicrokernel for I8Gemm4x8c4Generic {
    fn name(&self) -> &'static str {
        "qu8s8_gemm_4x8c4__generic"
    }

    fn mr(&self) -> usize {
        Self::MR
    }

    fn nr(&self) -> usize {
        Self::NR
    }

    fn kr(&self) -> usize {
        Self::KR
    }

    fn run(&self, kg: usize, a_panel: &[i8], b_panel: &[u8], c: &mut I8TileOut<'_>, ep: &I8TileEpilogue<'_>) {
        const MR: usize = I8Gemm4x8c4Generic::MR;
        const NR: usize = I8Gemm4x8c4Generic::NR;
        const KR: usize = I8Gemm4x8c4Generic::KR;
        check_i8_microkernel_args(MR, NR, KR, kg, a_panel, b_panel, c, ep);
        let mut acc = [[0i32; NR]; MR];
        for (a, b) in a_panel[..kg * MR * KR].chunks_exact(MR * KR).zip(b_panel[..kg * NR * KR].chunks_exact(NR * KR)) {
            for (row, aw) in acc.iter_mut().zip(a.chunks_exact(KR)) {
                for (x, bx) in row.iter_mut().zip(b.chunks_exact(KR)) {
                    let mut s = 0i32;
                    for r in 0..KR {
                        s += aw[r] as i32 * bx[r] as i32;
                    }
                    *x = x.wrapping_add(s);
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
