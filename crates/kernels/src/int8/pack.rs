//! Packing for the int8 GEMM: weights once (with their row sums for the zero-point
//! compensation), activations per call, both into depth-grouped micro-panels.

use super::epilogue::invalid;
use super::microkernel::I8GemmMicrokernel;
use crate::KernelError;

/// The largest depth `k` the int8 kernels accept: `k · 255 · 128 < 2³¹`, so the raw i32
/// accumulators of every kernel stay exact.
pub const MAX_DEPTH: usize = 65536;

/// Weights `w[m][k]` (s8, row-major) packed once for one [`I8GemmMicrokernel`], with the
/// per-row sums `Σ_k w[row][k]` (for the activation zero-point compensation) and per-row scales.
///
/// Layout: `ceil(m / MR)` panels of `kg · MR · KR` bytes (`kg = ceil(k / KR)`), panel `p`
/// holding `w[p·MR + i][g·KR + r]` at `g·MR·KR + i·KR + r`, zero past the matrix.
/// Every s8 value (including -128) is accepted: all kernels compute exactly.
#[derive(Clone, Debug)]
pub struct PackedI8Weights {
    data: Vec<i8>,
    row_sums: Vec<i32>,
    w_scale: Vec<f32>,
    m: usize,
    k: usize,
    mr: usize,
    kr: usize,
    kernel: &'static str,
}

/// Packed weight panels, their row sums and one scale per row ([`pack_s8_rows`]).
pub(crate) type PackedRows = (Vec<i8>, Vec<i32>, Vec<f32>);

/// Check row-major `m x k` s8 weights `w` with `w_scale` (one per row, or one) and pack them
/// into panels of `rows` rows by depth groups of `kr`: panel `p` holds `w[p·rows + i][g·kr + r]`
/// at `g·rows·kr + i·kr + r`, zero past the matrix. Returns the panels, the row sums and one
/// scale per row. Fails on length mismatches, `k >` [`MAX_DEPTH`], non-finite scales or sizes
/// that overflow.
pub(crate) fn pack_s8_rows(
    m: usize,
    k: usize,
    w: &[i8],
    w_scale: &[f32],
    rows: usize,
    kr: usize,
) -> Result<PackedRows, KernelError> {
    if k > MAX_DEPTH {
        return Err(invalid(format!("depth {k} exceeds the int8 limit of {MAX_DEPTH}")));
    }
    let len = m.checked_mul(k).ok_or_else(|| invalid(format!("weights {m} x {k} overflow")))?;
    if w.len() != len {
        return Err(invalid(format!("weights have {} values, expected {m} x {k}", w.len())));
    }
    let w_scale = match w_scale.len() {
        1 => vec![w_scale[0]; m],
        l if l == m => w_scale.to_vec(),
        l => return Err(invalid(format!("{l} weight scales for {m} rows (expected 1 or {m})"))),
    };
    if let Some(s) = w_scale.iter().find(|s| !s.is_finite()) {
        return Err(invalid(format!("weight scale {s} is not finite")));
    }
    let panel = k.div_ceil(kr) * rows * kr;
    let total =
        m.div_ceil(rows).checked_mul(panel).ok_or_else(|| invalid(format!("packed weights {m} x {k} overflow")))?;
    let mut data: Vec<i8> = Vec::new();
    data.try_reserve_exact(total).map_err(|e| invalid(format!("cannot allocate packed weights: {e}")))?;
    data.resize(total, 0);
    let mut row_sums = vec![0i32; m];
    for (row, (wr, sum)) in w.chunks_exact(k.max(1)).zip(row_sums.iter_mut()).enumerate().take(m) {
        let (p, i) = (row / rows, row % rows);
        let dst = &mut data[p * panel..][..panel];
        for (kk, &v) in wr.iter().enumerate().take(k) {
            dst[(kk / kr) * rows * kr + i * kr + kk % kr] = v;
        }
        *sum = wr.iter().take(k).map(|&v| v as i32).sum();
    }
    Ok((data, row_sums, w_scale))
}

impl PackedI8Weights {
    /// Pack row-major `m x k` weights for `kernel`. `w_scale` holds one scale per row
    /// (per output channel) or one for all rows. Fails on length mismatches, `k >`
    /// [`MAX_DEPTH`], non-finite scales or sizes that overflow.
    pub fn pack(
        kernel: &dyn I8GemmMicrokernel,
        m: usize,
        k: usize,
        w: &[i8],
        w_scale: &[f32],
    ) -> Result<Self, KernelError> {
        let (mr, kr) = (kernel.mr(), kernel.kr());
        if mr == 0 || kernel.nr() == 0 || kr == 0 {
            return Err(invalid(format!("kernel {} has an empty tile", kernel.name())));
        }
        let (data, row_sums, w_scale) = pack_s8_rows(m, k, w, w_scale, mr, kr)?;
        Ok(PackedI8Weights { data, row_sums, w_scale, m, k, mr, kr, kernel: kernel.name() })
    }

    /// Rows (`m`, output channels).
    pub fn rows(&self) -> usize {
        self.m
    }

    /// Depth (`k`).
    pub fn depth(&self) -> usize {
        self.k
    }

    /// Name of the kernel the panels were packed for.
    pub fn kernel_name(&self) -> &'static str {
        self.kernel
    }

    /// `Σ_k w[row][k]` per row.
    pub fn row_sums(&self) -> &[i32] {
        &self.row_sums
    }

    /// The weight scale of each row.
    pub fn w_scale(&self) -> &[f32] {
        &self.w_scale
    }

    /// Whether these panels were packed for `kernel` (same name and panel geometry).
    pub fn packed_for(&self, kernel: &dyn I8GemmMicrokernel) -> bool {
        self.kernel == kernel.name() && self.mr == kernel.mr() && self.kr == kernel.kr()
    }

    /// Panel `p` (`MR` rows from `p · MR`).
    pub(crate) fn panel(&self, p: usize) -> &[i8] {
        let len = self.k.div_ceil(self.kr) * self.mr * self.kr;
        &self.data[p * len..][..len]
    }
}

/// A `B` operand (`depth x cols` activations, u8) that is read row segment by row segment,
/// for operands never materialized as a matrix (a convolution's unfolded input).
pub trait I8PanelSource: Sync {
    /// Rows (the GEMM depth `k`).
    fn depth(&self) -> usize;
    /// Columns (`n`).
    fn cols(&self) -> usize;
    /// Write row `k`, columns `c0 .. c0 + dst.len()`, into `dst`. The driver guarantees the
    /// range is inside the operand.
    fn row(&self, k: usize, c0: usize, dst: &mut [u8]);
    /// Optionally pack columns `c0 .. c0 + ncb` (all rows) straight into `dst` in the `B`
    /// panel layout of a kernel with `nr`, `kr` and `b_offset = off` (`ceil(ncb / nr)` panels
    /// of `ceil(depth / kr) · nr · kr` bytes, see [`I8GemmMicrokernel`]). Returns `false`
    /// (the default) to have the driver pack from [`row`](Self::row) instead.
    fn pack_panels(&self, c0: usize, ncb: usize, nr: usize, kr: usize, off: u8, dst: &mut [u8]) -> bool {
        let _ = (c0, ncb, nr, kr, off, dst);
        false
    }
}

/// A dense u8 matrix view: `rows x cols`, element `(r, c)` at `data[r * ld + c]`.
#[derive(Clone, Copy, Debug)]
pub struct U8MatRef<'a> {
    data: &'a [u8],
    rows: usize,
    cols: usize,
    ld: usize,
}

impl<'a> U8MatRef<'a> {
    /// A view with row stride `ld`; fails when an element would lie outside `data` or rows
    /// overlap (`ld < cols` with more than one row).
    pub fn new(data: &'a [u8], rows: usize, cols: usize, ld: usize) -> Result<Self, KernelError> {
        if rows > 0 && cols > 0 {
            let need = (rows - 1).checked_mul(ld).and_then(|r| r.checked_add(cols));
            match need {
                Some(n) if n <= data.len() && (rows == 1 || ld >= cols) => {}
                _ => {
                    return Err(invalid(format!(
                        "a {rows} x {cols} u8 view with row stride {ld} does not fit {} values",
                        data.len()
                    )));
                }
            }
        }
        Ok(U8MatRef { data, rows, cols, ld })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    fn row_slice(&self, k: usize, c0: usize, len: usize) -> &'a [u8] {
        &self.data[k * self.ld + c0..][..len]
    }
}

/// The activation operand of [`i8_gemm`](super::i8_gemm): `k x n` u8 values.
#[derive(Clone, Copy)]
pub enum I8Input<'a> {
    /// A dense (row-strided) matrix.
    Dense(U8MatRef<'a>),
    /// An operand that produces its rows on demand (e.g. implicit im2col).
    Source(&'a dyn I8PanelSource),
}

impl std::fmt::Debug for I8Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            I8Input::Dense(v) => f.debug_tuple("Dense").field(v).finish(),
            I8Input::Source(s) => write!(f, "Source({} x {})", s.depth(), s.cols()),
        }
    }
}

impl I8Input<'_> {
    pub(crate) fn shape(&self) -> (usize, usize) {
        match self {
            I8Input::Dense(v) => (v.rows, v.cols),
            I8Input::Source(s) => (s.depth(), s.cols()),
        }
    }
}

/// Per-thread scratch of the B packing.
#[derive(Default)]
pub(crate) struct PackScratch {
    /// The packed block.
    pub(crate) block: Vec<u8>,
    /// Rows fetched from a source (`kr x ncb`).
    rows: Vec<u8>,
    /// A padding row (`b_offset` everywhere, packs to zeros).
    pad: Vec<u8>,
}

/// Pack columns `c0 .. c0 + ncb` of `b` (all `k` rows) for a kernel with `nr`, `kr` and
/// `b_offset` into `s.block`: `ceil(ncb / nr)` panels of `kg · nr · kr` bytes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_b_block(
    b: I8Input<'_>,
    k: usize,
    c0: usize,
    ncb: usize,
    nr: usize,
    kr: usize,
    off: u8,
    s: &mut PackScratch,
) -> Result<(), KernelError> {
    let kg = k.div_ceil(kr);
    let panels = ncb.div_ceil(nr);
    let panel_len = kg * nr * kr;
    let total = panels.checked_mul(panel_len).ok_or_else(|| invalid("B block overflows".into()))?;
    if s.block.len() < total {
        s.block.try_reserve(total - s.block.len()).map_err(|e| invalid(format!("cannot allocate B block: {e}")))?;
        s.block.resize(total, 0);
    }
    if let I8Input::Source(src) = b
        && src.pack_panels(c0, ncb, nr, kr, off, &mut s.block[..total])
    {
        return Ok(());
    }
    if s.pad.len() < ncb {
        s.pad.resize(ncb, 0);
    }
    s.pad[..ncb].fill(off);
    if let I8Input::Source(_) = b
        && s.rows.len() < kr * ncb
    {
        s.rows.resize(kr * ncb, 0);
    }
    let PackScratch { block, rows, pad } = s;
    let dst = &mut block[..total];
    for g in 0..kg {
        let mut slices: [&[u8]; 4] = [&[]; 4];
        match b {
            I8Input::Dense(v) => {
                for (r, sl) in slices.iter_mut().enumerate().take(kr) {
                    let kk = g * kr + r;
                    *sl = if kk < k { v.row_slice(kk, c0, ncb) } else { &pad[..ncb] };
                }
            }
            I8Input::Source(src) => {
                let mut chunks = rows[..kr * ncb].chunks_exact_mut(ncb);
                for r in 0..kr {
                    let kk = g * kr + r;
                    let row = chunks.next().expect("kr rows");
                    if kk < k {
                        src.row(kk, c0, row);
                    } else {
                        row.copy_from_slice(&pad[..ncb]);
                    }
                }
                for (r, sl) in slices.iter_mut().enumerate().take(kr) {
                    *sl = &rows[r * ncb..][..ncb];
                }
            }
        }
        for q in 0..panels {
            let d = &mut dst[q * panel_len + g * nr * kr..][..nr * kr];
            let j0 = q * nr;
            let w = nr.min(ncb - j0);
            match kr {
                1 => interleave::<1>(&slices, j0, w, off, d),
                2 => interleave::<2>(&slices, j0, w, off, d),
                4 => interleave::<4>(&slices, j0, w, off, d),
                _ => return Err(invalid(format!("unsupported depth group {kr} (1, 2 or 4)"))),
            }
            d[w * kr..].fill(0);
        }
    }
    Ok(())
}

/// `d[jj * kr + r] = rows[r][jj] - off` for `jj < w` and `kr` of 1, 2 or 4 (others write
/// nothing; callers check).
#[inline]
pub(crate) fn interleave_rows(rows: &[&[u8]; 4], kr: usize, w: usize, off: u8, d: &mut [u8]) {
    match kr {
        1 => interleave::<1>(rows, 0, w, off, d),
        2 => interleave::<2>(rows, 0, w, off, d),
        4 => interleave::<4>(rows, 0, w, off, d),
        _ => {}
    }
}

/// `d[jj * KR + r] = rows[r][j0 + jj] - off` for `jj < w`.
#[inline(always)]
fn interleave<const KR: usize>(rows: &[&[u8]; 4], j0: usize, w: usize, off: u8, d: &mut [u8]) {
    let src: [&[u8]; KR] = std::array::from_fn(|r| &rows[r][j0..j0 + w]);
    let mut done = 0;
    if KR == 4 {
        done = interleave4_simd(&src[..], w, off, d);
    }
    for (jj, o) in d[..w * KR].chunks_exact_mut(KR).enumerate().skip(done) {
        for r in 0..KR {
            o[r] = src[r][jj].wrapping_sub(off);
        }
    }
}

/// The 4-row interleave with baseline SIMD (SSE2 on x86-64, 16 columns at a time; NEON's
/// `st4` on AArch64, 8 at a time to suit 12-column panels; both always present, so no
/// detection): returns the columns done, the caller finishes the rest.
#[inline(always)]
fn interleave4_simd(src: &[&[u8]], w: usize, off: u8, d: &mut [u8]) -> usize {
    const STEP: usize = if cfg!(target_arch = "aarch64") { 8 } else { 16 };
    let n = w / STEP * STEP;
    if src.len() != 4 || d.len() < 4 * n || src.iter().any(|s| s.len() < n) {
        return 0;
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 16 bytes at `j < n`
        // of a row of at least `n` bytes and every store writes 64 bytes at `4 j < 4 n <=
        // d.len()` (checked above).
        unsafe {
            let o = _mm_set1_epi8(off as i8);
            for j in (0..n).step_by(STEP) {
                let ld = |r: usize| _mm_sub_epi8(_mm_loadu_si128(src[r].as_ptr().add(j) as *const __m128i), o);
                let (r0, r1, r2, r3) = (ld(0), ld(1), ld(2), ld(3));
                let (a_lo, a_hi) = (_mm_unpacklo_epi8(r0, r1), _mm_unpackhi_epi8(r0, r1));
                let (b_lo, b_hi) = (_mm_unpacklo_epi8(r2, r3), _mm_unpackhi_epi8(r2, r3));
                let p = d.as_mut_ptr().add(4 * j) as *mut __m128i;
                _mm_storeu_si128(p, _mm_unpacklo_epi16(a_lo, b_lo));
                _mm_storeu_si128(p.add(1), _mm_unpackhi_epi16(a_lo, b_lo));
                _mm_storeu_si128(p.add(2), _mm_unpacklo_epi16(a_hi, b_hi));
                _mm_storeu_si128(p.add(3), _mm_unpackhi_epi16(a_hi, b_hi));
            }
        }
        n
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::aarch64::*;
        // SAFETY: NEON is part of the aarch64 baseline; every load reads 8 bytes at `j < n` of
        // a row of at least `n` bytes and every store writes 32 bytes at `4 j < 4 n <= d.len()`
        // (checked above).
        unsafe {
            let o = vdup_n_u8(off);
            for j in (0..n).step_by(STEP) {
                let ld = |r: usize| vsub_u8(vld1_u8(src[r].as_ptr().add(j)), o);
                vst4_u8(d.as_mut_ptr().add(4 * j), uint8x8x4_t(ld(0), ld(1), ld(2), ld(3)));
            }
        }
        n
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = off;
        0
    }
}
