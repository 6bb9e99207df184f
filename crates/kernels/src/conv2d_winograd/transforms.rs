//! Hand-written Winograd input and output transforms, [`L`] tiles per step (one vector lane per
//! tile: an AVX-512 register of f32 in the AVX-512 build).
//!
//! The matrices are the ones [`WinogradTile::matrices`] derives, written out as constants (a
//! test checks them). Their structure is exploited: the rows of `Bᵀ` for a point pair `±p`
//! share their even-column and odd-column halves (`e ± o`), and so do the columns of `Aᵀ`
//! (`p^i (M₊ ± M₋)`, the sign chosen by the parity of `i`); zero coefficients fold away at
//! compile time.

use super::WinogradTile;
use crate::fast::madd;

/// Lanes: tiles transformed together.
pub(super) const L: usize = 16;

/// One value of [`L`] tiles (f32 values, or the tiles' window offsets).
pub(super) type Lanes<T = f32> = [T; L];

/// `Bᵀ` of F(2,3) (points 0, ±1, ∞).
const BT2: [[f32; 4]; 4] = [[1.0, 0.0, -1.0, 0.0], [0.0, 0.5, 0.5, 0.0], [0.0, -0.5, 0.5, 0.0], [0.0, -1.0, 0.0, 1.0]];
/// `Aᵀ` of F(2,3).
const AT2: [[f32; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 1.0]];

/// `Bᵀ` of F(4,3) (points 0, ±1, ±2, ∞).
const BT4: [[f32; 6]; 6] = [
    [1.0, 0.0, -5.0 / 4.0, 0.0, 1.0 / 4.0, 0.0],
    [0.0, 2.0 / 3.0, 2.0 / 3.0, -1.0 / 6.0, -1.0 / 6.0, 0.0],
    [0.0, -2.0 / 3.0, 2.0 / 3.0, 1.0 / 6.0, -1.0 / 6.0, 0.0],
    [0.0, -1.0 / 12.0, -1.0 / 24.0, 1.0 / 12.0, 1.0 / 24.0, 0.0],
    [0.0, 1.0 / 12.0, -1.0 / 24.0, -1.0 / 12.0, 1.0 / 24.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];
/// `Aᵀ` of F(4,3).
const AT4: [[f32; 6]; 4] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];

/// `Bᵀ` of F(6,3) (points 0, ±1, ±1/2, ±2, ∞).
const BT6: [[f32; 8]; 8] = [
    [1.0, 0.0, -21.0 / 4.0, 0.0, 21.0 / 4.0, 0.0, -1.0, 0.0],
    [0.0, -2.0 / 9.0, -2.0 / 9.0, 17.0 / 18.0, 17.0 / 18.0, -2.0 / 9.0, -2.0 / 9.0, 0.0],
    [0.0, 2.0 / 9.0, -2.0 / 9.0, -17.0 / 18.0, 17.0 / 18.0, 2.0 / 9.0, -2.0 / 9.0, 0.0],
    [0.0, 64.0 / 45.0, 128.0 / 45.0, -16.0 / 9.0, -32.0 / 9.0, 16.0 / 45.0, 32.0 / 45.0, 0.0],
    [0.0, -64.0 / 45.0, 128.0 / 45.0, 16.0 / 9.0, -32.0 / 9.0, -16.0 / 45.0, 32.0 / 45.0, 0.0],
    [0.0, 1.0 / 180.0, 1.0 / 360.0, -1.0 / 36.0, -1.0 / 72.0, 1.0 / 45.0, 1.0 / 90.0, 0.0],
    [0.0, -1.0 / 180.0, 1.0 / 360.0, 1.0 / 36.0, -1.0 / 72.0, -1.0 / 45.0, 1.0 / 90.0, 0.0],
    [0.0, -1.0, 0.0, 21.0 / 4.0, 0.0, -21.0 / 4.0, 0.0, 1.0],
];
/// `Aᵀ` of F(6,3).
const AT6: [[f32; 8]; 6] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 0.25, 0.25, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 0.125, -0.125, 8.0, -8.0, 0.0],
    [0.0, 1.0, 1.0, 0.0625, 0.0625, 16.0, 16.0, 0.0],
    [0.0, 1.0, -1.0, 0.03125, -0.03125, 32.0, -32.0, 1.0],
];

/// The constant `(Aᵀ, Bᵀ)` of `tile` as flat row-major slices (for tests and checks).
#[cfg(test)]
pub(super) fn constants(tile: WinogradTile) -> (Vec<f32>, Vec<f32>) {
    fn flat<const R: usize, const C: usize>(m: &[[f32; C]; R]) -> Vec<f32> {
        m.iter().flatten().copied().collect()
    }
    match tile {
        WinogradTile::F2x3 => (flat(&AT2), flat(&BT2)),
        WinogradTile::F4x3 => (flat(&AT4), flat(&BT4)),
        WinogradTile::F6x3 => (flat(&AT6), flat(&BT6)),
    }
}

#[inline(always)]
fn axpy<const FMA: bool>(acc: &mut Lanes, c: f32, x: &Lanes) {
    for l in 0..L {
        acc[l] = madd::<FMA>(acc[l], c, x[l]);
    }
}

/// `Σ_j row[j] · d[j]` over the nonzero coefficients of `row` whose column is in `cols`.
#[inline(always)]
fn dot<const N: usize, const FMA: bool>(row: &[f32; N], d: &[Lanes; N], cols: impl Iterator<Item = usize>) -> Lanes {
    let mut acc = [0f32; L];
    let mut first = true;
    for j in cols {
        let c = row[j];
        if c == 0.0 {
            continue;
        }
        if first && c == 1.0 {
            acc = d[j];
        } else if first && c == -1.0 {
            acc = d[j].map(|v| -v);
        } else {
            axpy::<FMA>(&mut acc, c, &d[j]);
        }
        first = false;
    }
    acc
}

/// One 1-D input transform `Bᵀ d` of [`L`] tiles: rows `0` and `N-1` directly, each pair of
/// rows `2k-1, 2k` (points `±p`) as `e ± o` from the even and odd columns of row `2k-1`.
#[inline(always)]
fn bt_1d<const N: usize, const FMA: bool>(bt: &[[f32; N]; N], d: &[Lanes; N]) -> [Lanes; N] {
    let mut out = [[0f32; L]; N];
    out[0] = dot::<N, FMA>(&bt[0], d, 0..N);
    for k in 1..=(N - 2) / 2 {
        let e = dot::<N, FMA>(&bt[2 * k - 1], d, (2..N).step_by(2));
        let o = dot::<N, FMA>(&bt[2 * k - 1], d, (1..N).step_by(2));
        for l in 0..L {
            out[2 * k - 1][l] = e[l] + o[l];
            out[2 * k][l] = e[l] - o[l];
        }
    }
    out[N - 1] = dot::<N, FMA>(&bt[N - 1], d, 0..N);
    out
}

/// One 1-D output transform `Aᵀ m` of [`L`] tiles: the pair columns `2k-1, 2k` (points `±p`)
/// enter as `M₊ + M₋` in even rows and `M₊ - M₋` in odd rows, scaled by row `i`'s `p^i`.
#[inline(always)]
fn at_1d<const N: usize, const M: usize, const FMA: bool>(at: &[[f32; N]; M], m: &[Lanes; N]) -> [Lanes; M] {
    let mut sum = [[0f32; L]; N];
    let mut diff = [[0f32; L]; N];
    for k in 1..=(N - 2) / 2 {
        for l in 0..L {
            sum[k][l] = m[2 * k - 1][l] + m[2 * k][l];
            diff[k][l] = m[2 * k - 1][l] - m[2 * k][l];
        }
    }
    let mut out = [[0f32; L]; M];
    for (i, (o, row)) in out.iter_mut().zip(at).enumerate() {
        let mut acc = if row[0] != 0.0 { m[0] } else { [0f32; L] };
        for k in 1..=(N - 2) / 2 {
            let src = if i % 2 == 0 { &sum[k] } else { &diff[k] };
            let c = row[2 * k - 1];
            if c == 1.0 {
                for l in 0..L {
                    acc[l] += src[l];
                }
            } else {
                axpy::<FMA>(&mut acc, c, src);
            }
        }
        if row[N - 1] != 0.0 {
            for l in 0..L {
                acc[l] += m[N - 1][l];
            }
        }
        *o = acc;
    }
    out
}

/// The input transform `V = Bᵀ d B` of [`L`] tiles of one channel: tile `l`'s `N x N` window
/// starts at `plane[offs[l]]` and has row stride `pw`; `out[i][s]` is `V_{i N + s}`.
///
/// The caller guarantees every window lies inside `plane`: `offs[l] + (N-1)·pw + N <=
/// plane.len()` (checked here).
#[inline(always)]
fn input_tiles<const N: usize, const FMA: bool>(
    bt: &[[f32; N]; N],
    plane: &[f32],
    pw: usize,
    offs: &Lanes<usize>,
    out: &mut [[Lanes; N]; N],
) {
    let reach = (N - 1) * pw + N;
    assert!(offs.iter().all(|&o| o + reach <= plane.len()), "Winograd window outside the staged plane");
    let mut tmp = [[[0f32; L]; N]; N];
    for j in 0..N {
        let mut col = [[0f32; L]; N];
        for (i, c) in col.iter_mut().enumerate() {
            for l in 0..L {
                // SAFETY: `offs[l] + i * pw + j < offs[l] + reach <= plane.len()` (asserted above).
                c[l] = unsafe { *plane.get_unchecked(offs[l] + i * pw + j) };
            }
        }
        let t = bt_1d::<N, FMA>(bt, &col);
        for (row, v) in tmp.iter_mut().zip(t) {
            row[j] = v;
        }
    }
    for (o, row) in out.iter_mut().zip(&tmp) {
        *o = bt_1d::<N, FMA>(bt, row);
    }
}

/// The output transform `Y = Aᵀ M A + bias` of [`L`] tiles of one channel: `M_ξ` for the
/// tiles at `m[ξ * stride..][..L]`; `out[r][s]` is output `(r, s)` of each tile.
#[inline(always)]
fn output_tiles<const N: usize, const M: usize, const FMA: bool>(
    at: &[[f32; N]; M],
    m: &[f32],
    stride: usize,
    bias: f32,
    out: &mut [[Lanes; M]; M],
) {
    let mut tmp = [[[0f32; L]; N]; M];
    for j in 0..N {
        let mut col = [[0f32; L]; N];
        for (i, c) in col.iter_mut().enumerate() {
            c.copy_from_slice(&m[(i * N + j) * stride..][..L]);
        }
        let t = at_1d::<N, M, FMA>(at, &col);
        for r in 0..M {
            tmp[r][j] = t[r];
        }
    }
    for (o, row) in out.iter_mut().zip(&tmp) {
        *o = at_1d::<N, M, FMA>(at, row);
        for v in o.iter_mut() {
            for x in v.iter_mut() {
                *x += bias;
            }
        }
    }
}

/// `n²` packed `B` operands (`V_ξ`, `C_in x cols` in `nr`-column panels) written in place by
/// the input transform, possibly from several threads.
pub(super) struct Panels<'a> {
    ptrs: Vec<*mut f32>,
    /// The operands, borrowed exclusively while the pointers are in use.
    _ops: std::marker::PhantomData<&'a mut [crate::gemm::PackedB]>,
    len: usize,
    c_in: usize,
    nr: usize,
    /// Columns written: the tiles rounded up to whole panels.
    cols: usize,
}

// SAFETY: the pointers are only written through by `store`, at indices derived from distinct
// (channel, tile) pairs, so threads working on different channels never touch the same
// element; `Panels` borrows the operands exclusively for its lifetime (see `Panels::new`).
unsafe impl Send for Panels<'_> {}
// SAFETY: as above.
unsafe impl Sync for Panels<'_> {}

impl<'a> Panels<'a> {
    /// Views of `ops`, each already reshaped to `c_in x tiles` for panels of `nr` columns.
    pub(super) fn new(ops: &'a mut [crate::gemm::PackedB], c_in: usize, tiles: usize, nr: usize) -> Self {
        let cols = tiles.div_ceil(nr) * nr;
        let len = cols * c_in;
        let ptrs = ops
            .iter_mut()
            .map(|p| {
                let s = p.as_mut_slice();
                assert!(s.len() >= len, "packed V operand too short");
                s.as_mut_ptr()
            })
            .collect();
        Panels { ptrs, _ops: std::marker::PhantomData, len, c_in, nr, cols }
    }

    /// Lane groups the input transform writes per channel (all panel columns, dead tiles
    /// included).
    pub(super) fn groups(&self) -> usize {
        self.cols.div_ceil(L)
    }

    /// Write lanes `v` of tiles `g·L..` of channel `c` into `V_ξ`.
    #[inline(always)]
    fn store(&self, xi: usize, c: usize, g: usize, v: &Lanes) {
        let (nr, t0) = (self.nr, g * L);
        assert!(c < self.c_in && xi < self.ptrs.len(), "V index out of range");
        let ptr = self.ptrs[xi];
        if nr % L == 0 {
            let at = (t0 / nr) * self.c_in * nr + c * nr + t0 % nr;
            assert!(at + L <= self.len, "V panel index out of range");
            // SAFETY: `at + L <= len`, the operand's length (checked in `new`); the L slots
            // belong to channel `c` only (see the `Send` impl).
            unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), ptr.add(at), L) };
        } else {
            for (l, &x) in v.iter().enumerate().take(self.cols.saturating_sub(t0)) {
                let t = t0 + l;
                let at = (t / nr) * self.c_in * nr + c * nr + t % nr;
                assert!(at < self.len, "V panel index out of range");
                // SAFETY: `at < len` (checked); the slot belongs to channel `c` and tile `t`.
                unsafe { *ptr.add(at) = x };
            }
        }
    }
}

/// One input channel's part of a block: its staged plane (row stride `pw`) and every lane
/// group's tile window offsets (`offs`, [`L`] per group of [`Panels::groups`]).
pub(super) struct InputJob<'a> {
    pub(super) plane: &'a [f32],
    pub(super) pw: usize,
    pub(super) offs: &'a [usize],
    pub(super) c: usize,
}

/// One output channel's part of a block: its `M` rows (`[ξ][tb]`), tiles `t0..t0 + nt` of
/// the image (`tiles_x` per row, output `oh x ow`), bias, residual plane and activation.
pub(super) struct OutputJob<'a> {
    pub(super) m: &'a [f32],
    pub(super) tb: usize,
    pub(super) t0: usize,
    pub(super) nt: usize,
    pub(super) tiles_x: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) bias: f32,
    pub(super) residual: Option<&'a [f32]>,
    pub(super) in_output: bool,
    pub(super) act: crate::fast::activation::FastActivation<'a>,
}

#[inline(always)]
fn input_channel_n<const N: usize, const FMA: bool>(bt: &[[f32; N]; N], job: &InputJob<'_>, dst: &Panels<'_>) {
    let mut out = [[[0f32; L]; N]; N];
    for g in 0..dst.groups() {
        let offs: &Lanes<usize> = job.offs[g * L..][..L].try_into().expect("L offsets");
        input_tiles::<N, FMA>(bt, job.plane, job.pw, offs, &mut out);
        for (i, row) in out.iter().enumerate() {
            for (s, v) in row.iter().enumerate() {
                dst.store(i * N + s, job.c, g, v);
            }
        }
    }
}

#[inline(always)]
fn output_channel_n<const N: usize, const M: usize, const FMA: bool>(
    at: &[[f32; N]; M],
    job: &OutputJob<'_>,
    y: &mut [f32],
) {
    let mut out = [[[0f32; L]; M]; M];
    let mut row = [0f32; L * 6];
    for g in 0..job.nt.div_ceil(L) {
        output_tiles::<N, M, FMA>(at, &job.m[g * L..], job.tb, job.bias, &mut out);
        let live = L.min(job.nt - g * L);
        let mut l = 0;
        while l < live {
            // A run of lanes on one row of tiles becomes contiguous output row segments.
            let t = job.t0 + g * L + l;
            let (ty, tx) = (t / job.tiles_x, t % job.tiles_x);
            let run = (job.tiles_x - tx).min(live - l);
            let (oy0, ox0) = (ty * M, tx * M);
            let width = (run * M).min(job.ow - ox0);
            for (r, out_r) in out.iter().enumerate().take(M.min(job.oh - oy0)) {
                let base = (oy0 + r) * job.ow + ox0;
                for q in 0..run {
                    for s in 0..M {
                        row[q * M + s] = out_r[s][l + q];
                    }
                }
                let seg = &mut row[..width];
                if let Some(rp) = job.residual {
                    for (v, &x) in seg.iter_mut().zip(&rp[base..base + width]) {
                        *v += x;
                    }
                } else if job.in_output {
                    for (v, &x) in seg.iter_mut().zip(&y[base..base + width]) {
                        *v += x;
                    }
                }
                crate::fast::activation::apply_row_inline(&job.act, seg);
                y[base..base + width].copy_from_slice(seg);
            }
            l += run;
        }
    }
}

#[inline(always)]
fn input_channel_any<const FMA: bool>(tile: WinogradTile, job: &InputJob<'_>, dst: &Panels<'_>) {
    match tile {
        WinogradTile::F2x3 => input_channel_n::<4, FMA>(&BT2, job, dst),
        WinogradTile::F4x3 => input_channel_n::<6, FMA>(&BT4, job, dst),
        WinogradTile::F6x3 => input_channel_n::<8, FMA>(&BT6, job, dst),
    }
}

#[inline(always)]
fn output_channel_any<const FMA: bool>(tile: WinogradTile, job: &OutputJob<'_>, y: &mut [f32]) {
    match tile {
        WinogradTile::F2x3 => output_channel_n::<4, 2, FMA>(&AT2, job, y),
        WinogradTile::F4x3 => output_channel_n::<6, 4, FMA>(&AT4, job, y),
        WinogradTile::F6x3 => output_channel_n::<8, 6, FMA>(&AT6, job, y),
    }
}

/// [`input_channel_any`] compiled with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn input_channel_avx512(tile: WinogradTile, job: &InputJob<'_>, dst: &Panels<'_>) {
    input_channel_any::<true>(tile, job, dst)
}

/// [`output_channel_any`] compiled with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn output_channel_avx512(tile: WinogradTile, job: &OutputJob<'_>, y: &mut [f32]) {
    output_channel_any::<true>(tile, job, y)
}

/// `V_ξ = (Bᵀ d B)_ξ` of one input channel for every tile of the block, straight into the
/// packed `B` panels, in the build for the instruction set chosen at run time.
pub(super) fn input_channel(tile: WinogradTile, job: &InputJob<'_>, dst: &Panels<'_>) {
    match crate::fast::Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only returned after detecting AVX-512F, AVX2 and FMA.
        crate::fast::Isa::Avx512 => unsafe { input_channel_avx512(tile, job, dst) },
        crate::fast::Isa::Generic => input_channel_any::<{ crate::fast::NATIVE_FMA }>(tile, job, dst),
    }
}

/// `Y = Aᵀ M A + bias (+ residual)`, activated, of one output channel for every tile of the
/// block, written into its plane `y`, in the build for the instruction set chosen at run time.
pub(super) fn output_channel(tile: WinogradTile, job: &OutputJob<'_>, y: &mut [f32]) {
    match crate::fast::Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only returned after detecting AVX-512F, AVX2 and FMA.
        crate::fast::Isa::Avx512 => unsafe { output_channel_avx512(tile, job, y) },
        crate::fast::Isa::Generic => output_channel_any::<{ crate::fast::NATIVE_FMA }>(tile, job, y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fast::activation::FastActivation;
    use crate::gemm::PackedB;
    use proptest::prelude::*;

    const TILES: [WinogradTile; 3] = [WinogradTile::F2x3, WinogradTile::F4x3, WinogradTile::F6x3];

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn constants_are_the_derived_matrices() {
        for tile in TILES {
            let (at, _, bt) = tile.matrices();
            let (cat, cbt) = constants(tile);
            for (got, want) in cat.iter().zip(&at).chain(cbt.iter().zip(&bt)) {
                assert!((f64::from(*got) - want).abs() <= 1e-7 * want.abs().max(1.0), "{tile:?}: {got} vs {want}");
            }
            assert_eq!((cat.len(), cbt.len()), (at.len(), bt.len()));
        }
    }

    /// `P X Pᵀ` in f64 for a row-major `r x n` `P` and `n x n` `X`.
    fn sandwich(p: &[f64], r: usize, n: usize, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; r * r];
        for a in 0..r {
            for b in 0..r {
                out[a * r + b] = (0..n)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .map(|(i, j)| p[a * n + i] * x[i * n + j] * p[b * n + j])
                    .sum();
            }
        }
        out
    }

    /// Input transform of random windows of one channel, dense matrix form vs the structured
    /// one (portable and dispatched builds), for panel widths that split lane groups or not.
    fn check_input(tile: WinogradTile, c_in: usize, nt: usize, nr: usize, pw: usize, seed: u64) {
        let n = tile.input();
        let (_, _, bt) = tile.matrices();
        let rows = n + 3;
        let plane = values(rows * pw, seed);
        let mut ops: Vec<PackedB> = (0..n * n).map(|_| PackedB::empty(nr)).collect();
        for op in &mut ops {
            op.reshape(c_in, nt, nr).unwrap();
            op.as_mut_slice().fill(f32::NAN);
        }
        let c = (seed as usize) % c_in;
        for generic in [true, false] {
            let panels = Panels::new(&mut ops, c_in, nt, nr);
            let max_off = (rows - n) * pw + pw - n;
            let offs: Vec<usize> = (0..panels.groups() * L).map(|t| (t * 7 + seed as usize) % (max_off + 1)).collect();
            let job = InputJob { plane: &plane, pw, offs: &offs, c };
            if generic {
                input_channel_any::<false>(tile, &job, &panels);
            } else {
                input_channel(tile, &job, &panels);
            }
            drop(panels);
            for t in 0..nt {
                let win: Vec<f64> = (0..n * n).map(|k| f64::from(plane[offs[t] + k / n * pw + k % n])).collect();
                let want = sandwich(&bt, n, n, &win);
                for (xi, w) in want.iter().enumerate() {
                    let got = ops[xi].as_slice()[(t / nr) * c_in * nr + c * nr + t % nr];
                    let tol = 2e-5 * (1.0 + w.abs()) * (n * n) as f64;
                    assert!(
                        (f64::from(got) - w).abs() <= tol,
                        "{tile:?} tile {t} ξ {xi}: {got} vs {w} (generic {generic})"
                    );
                }
            }
        }
    }

    /// Output transform of random `M` for tiles `t0..t0 + nt` of an `oh x ow` plane, dense
    /// matrix form (+ bias, residual, Relu) vs the structured one.
    #[allow(clippy::too_many_arguments)]
    fn check_output(tile: WinogradTile, oh: usize, ow: usize, t0: usize, nt: usize, res: u8, relu: bool, seed: u64) {
        let (m, n) = (tile.output(), tile.input());
        let (at, _, _) = tile.matrices();
        let tiles_x = ow.div_ceil(m);
        let tb = nt.div_ceil(L) * L;
        let mbuf = values(n * n * tb, seed);
        let r = values(oh * ow, seed ^ 5);
        let bias = 0.25;
        for generic in [true, false] {
            let mut y = if res == 2 { r.clone() } else { vec![f32::NAN; oh * ow] };
            let job = OutputJob {
                m: &mbuf,
                tb,
                t0,
                nt,
                tiles_x,
                oh,
                ow,
                bias,
                residual: (res == 1).then_some(&r[..]),
                in_output: res == 2,
                act: if relu { FastActivation::Relu } else { FastActivation::None },
            };
            if generic {
                output_channel_any::<false>(tile, &job, &mut y);
            } else {
                output_channel(tile, &job, &mut y);
            }
            let mut written = vec![false; oh * ow];
            for t in 0..nt {
                let mt: Vec<f64> = (0..n * n).map(|xi| f64::from(mbuf[xi * tb + t])).collect();
                let want = sandwich(&at, m, n, &mt);
                let (ty, tx) = ((t0 + t) / tiles_x, (t0 + t) % tiles_x);
                for a in 0..m {
                    for b in 0..m {
                        let (oy, ox) = (ty * m + a, tx * m + b);
                        if oy >= oh || ox >= ow {
                            continue;
                        }
                        let mut w = want[a * m + b] + f64::from(bias);
                        if res > 0 {
                            w += f64::from(r[oy * ow + ox]);
                        }
                        if relu {
                            w = w.max(0.0);
                        }
                        let got = y[oy * ow + ox];
                        written[oy * ow + ox] = true;
                        let tol = 1e-5 * (1.0 + w.abs()) * (n * n * 32) as f64;
                        assert!((f64::from(got) - w).abs() <= tol, "{tile:?} tile {t} ({a}, {b}): {got} vs {w}");
                    }
                }
            }
            for (i, (&wr, &v)) in written.iter().zip(&y).enumerate() {
                if !wr {
                    let old = if res == 2 { r[i] } else { f32::NAN };
                    assert!(v.to_bits() == old.to_bits(), "element {i} outside the tiles was written");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn input_transform_matches_the_matrix_form(
            tile in 0usize..3, c_in in 1usize..5, nt in 1usize..70, nr in prop::sample::select(vec![4usize, 8, 12, 16, 32]),
            extra in 0usize..20, seed in any::<u64>(),
        ) {
            let tile = TILES[tile];
            check_input(tile, c_in, nt, nr, tile.input() + extra, seed);
        }

        #[test]
        fn output_transform_matches_the_matrix_form(
            tile in 0usize..3, oh in 1usize..30, ow in 1usize..30, start in 0usize..1000, len in 1usize..70,
            res in 0u8..3, relu in any::<bool>(), seed in any::<u64>(),
        ) {
            let tile = TILES[tile];
            let m = tile.output();
            let tiles = oh.div_ceil(m) * ow.div_ceil(m);
            let t0 = start % tiles;
            let nt = len.min(tiles - t0);
            check_output(tile, oh, ow, t0, nt, res, relu, seed);
        }
    }
}
