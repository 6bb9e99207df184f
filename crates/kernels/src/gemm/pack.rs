//! Packing: operands rearranged into K-major micro-panels, zero-padded at the edges, in
//! 64-byte aligned buffers.

use super::epilogue::invalid;
use super::microkernel::F32GemmMicrokernel;
use crate::KernelError;

/// A read-only strided matrix view: element `(i, j)` at `data[i * rs + j * cs]`.
///
/// Any strides are accepted (a transposed matrix swaps them; a zero stride broadcasts) as
/// long as every element lies inside `data`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A `rows x cols` view with row stride `rs` and column stride `cs`; fails when an
    /// element would lie outside `data`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Result<Self, KernelError> {
        if rows > 0 && cols > 0 {
            let last =
                (rows - 1).checked_mul(rs).and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)));
            match last {
                Some(l) if l < data.len() => {}
                _ => {
                    return Err(invalid(format!(
                        "a {rows} x {cols} view with strides ({rs}, {cs}) does not fit {} elements",
                        data.len()
                    )));
                }
            }
        }
        Ok(MatRef { data, rows, cols, rs, cs })
    }

    /// A dense row-major `rows x cols` view.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self, KernelError> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// A `B` operand (`depth x cols`) that packs its own blocks, for operands that are never
/// materialized as a matrix: a convolution's unfolded input (implicit im2col) is the one here.
///
/// [`sgemm`](super::sgemm) calls [`pack`](Self::pack) for each `kc x nc` block it needs, so the
/// operand goes straight from its source into the cache-resident packed block.
pub trait PanelSource: Sync {
    /// Rows (the GEMM depth `k`).
    fn depth(&self) -> usize;
    /// Columns (`n`).
    fn cols(&self) -> usize;
    /// Pack rows `d0..d0 + depth` and columns `c0..c0 + cols` into `nr`-column panels, K-major:
    /// panel `q` starts at `q * depth * nr` and holds element `(d0 + p, c0 + q*nr + jj)` at
    /// `p * nr + jj`, zero where `q*nr + jj >= cols`. The driver guarantees the ranges are
    /// inside the operand and `dst` holds `ceil(cols / nr) * nr * depth` values.
    fn pack(&self, d0: usize, depth: usize, c0: usize, cols: usize, nr: usize, dst: &mut [f32]);
}

/// A zeroed f32 buffer whose first element is 64-byte aligned.
#[derive(Clone, Debug, Default)]
pub(crate) struct AlignedBuf {
    buf: Vec<f32>,
    off: usize,
    len: usize,
}

/// f32 elements in 64 bytes.
const ALIGN_ELEMS: usize = 16;

impl AlignedBuf {
    pub(crate) fn zeroed(len: usize) -> Result<Self, KernelError> {
        let mut b = AlignedBuf::default();
        b.resize(len)?;
        Ok(b)
    }

    /// Make the buffer `len` long (contents unspecified); fails instead of aborting when
    /// the allocation is impossible.
    pub(crate) fn resize(&mut self, len: usize) -> Result<(), KernelError> {
        if len <= self.buf.len().saturating_sub(self.off) {
            self.len = len;
            return Ok(());
        }
        let total =
            len.checked_add(ALIGN_ELEMS).ok_or_else(|| invalid(format!("packed buffer of {len} values overflows")))?;
        let mut v: Vec<f32> = Vec::new();
        v.try_reserve_exact(total)
            .map_err(|e| invalid(format!("cannot allocate a packed buffer of {len} values: {e}")))?;
        v.resize(total, 0.0);
        let off = v.as_ptr().align_offset(64);
        self.off = if off < ALIGN_ELEMS { off } else { 0 };
        self.buf = v;
        self.len = len;
        Ok(())
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.buf[self.off..self.off + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

/// Values in `ceil(rows / w)` panels of `w x depth`, `None` on overflow.
pub(crate) fn packed_len(rows: usize, depth: usize, w: usize) -> Option<usize> {
    rows.div_ceil(w).checked_mul(w)?.checked_mul(depth)
}

/// Pack rows `r0..r0 + rows` and columns `d0..d0 + depth` of `src` into `w`-row panels,
/// K-major: panel `q` starts at `q * depth * w` and holds `src(r0 + q*w + ii, d0 + p)` at
/// `p * w + ii`, zero where `q*w + ii >= rows`. `A` blocks are packed as they are, `B` blocks
/// through their transpose. The caller guarantees the ranges are inside `src` and
/// `dst.len() >= packed_len(rows, depth, w)`.
pub(crate) fn pack_panels(
    src: &MatRef<'_>,
    r0: usize,
    rows: usize,
    d0: usize,
    depth: usize,
    w: usize,
    dst: &mut [f32],
) {
    let data = src.data;
    for (q, panel) in dst.chunks_exact_mut(w * depth.max(1)).take(rows.div_ceil(w)).enumerate() {
        let panel = &mut panel[..w * depth];
        let live = (rows - q * w).min(w);
        let first = r0 + q * w;
        if src.rs == 1 && live == w {
            // Panel rows are contiguous in the source (row-major B): copy `w` values per p.
            for (p, out) in panel.chunks_exact_mut(w).enumerate() {
                let s = first + (d0 + p) * src.cs;
                crate::short_rows::copy_short(out, &data[s..s + w]);
            }
            continue;
        }
        for ii in 0..w {
            if ii >= live {
                for p in 0..depth {
                    panel[p * w + ii] = 0.0;
                }
                continue;
            }
            let base = (first + ii) * src.rs + d0 * src.cs;
            if src.cs == 1 {
                for (p, &v) in data[base..base + depth].iter().enumerate() {
                    panel[p * w + ii] = v;
                }
            } else {
                for p in 0..depth {
                    panel[p * w + ii] = data[base + p * src.cs];
                }
            }
        }
    }
}

/// `A` (`m x k`) packed once into the kernel's `MR`-row panels over the full depth, e.g. conv
/// weights `[C_out, C_in*kh*kw]` at load time.
#[derive(Clone, Debug)]
pub struct PackedA {
    buf: AlignedBuf,
    mr: usize,
    m: usize,
    k: usize,
}

impl PackedA {
    /// Pack `a` (`m x k`) for `kernel`.
    pub fn pack(kernel: &dyn F32GemmMicrokernel, a: MatRef<'_>) -> Result<Self, KernelError> {
        let (m, k, mr) = (a.rows, a.cols, kernel.mr());
        let len = packed_len(m, k, mr).ok_or_else(|| invalid(format!("packing A {m} x {k} overflows")))?;
        let mut buf = AlignedBuf::zeroed(len)?;
        pack_panels(&a, 0, m, 0, k, mr, buf.as_mut_slice());
        Ok(PackedA { buf, mr, m, k })
    }

    /// Rows (`m`).
    pub fn rows(&self) -> usize {
        self.m
    }

    /// Depth (`k`).
    pub fn depth(&self) -> usize {
        self.k
    }

    /// The panel width it was packed for (`MR`).
    pub fn mr(&self) -> usize {
        self.mr
    }

    /// The packed values (panel-major, each panel `k * mr`).
    pub fn as_slice(&self) -> &[f32] {
        self.buf.as_slice()
    }
}

/// `B` (`k x n`) packed once into the kernel's `NR`-column panels over the full depth, e.g.
/// FullyConnected weights `[K, N]` at load time.
#[derive(Clone, Debug)]
pub struct PackedB {
    buf: AlignedBuf,
    nr: usize,
    n: usize,
    k: usize,
}

impl PackedB {
    /// Pack `b` (`k x n`) for `kernel`.
    pub fn pack(kernel: &dyn F32GemmMicrokernel, b: MatRef<'_>) -> Result<Self, KernelError> {
        let (k, n, nr) = (b.rows, b.cols, kernel.nr());
        let len = packed_len(n, k, nr).ok_or_else(|| invalid(format!("packing B {k} x {n} overflows")))?;
        let mut buf = AlignedBuf::zeroed(len)?;
        pack_panels(&b.t(), 0, n, 0, k, nr, buf.as_mut_slice());
        Ok(PackedB { buf, nr, n, k })
    }

    /// Columns (`n`).
    pub fn cols(&self) -> usize {
        self.n
    }

    /// Depth (`k`).
    pub fn depth(&self) -> usize {
        self.k
    }

    /// The panel width it was packed for (`NR`).
    pub fn nr(&self) -> usize {
        self.nr
    }

    /// The packed values (panel-major, each panel `k * nr`).
    pub fn as_slice(&self) -> &[f32] {
        self.buf.as_slice()
    }

    /// An empty operand that producers fill in place with [`reshape`](Self::reshape) and
    /// [`as_mut_slice`](Self::as_mut_slice) (Winograd's transformed input).
    pub(crate) fn empty(nr: usize) -> Self {
        PackedB { buf: AlignedBuf::default(), nr, n: 0, k: 0 }
    }

    /// Make the operand `k x n` for panels of `nr` columns, keeping the allocation when it is
    /// large enough; the contents are unspecified until written.
    pub(crate) fn reshape(&mut self, k: usize, n: usize, nr: usize) -> Result<(), KernelError> {
        let len = packed_len(n, k, nr).ok_or_else(|| invalid(format!("packing B {k} x {n} overflows")))?;
        self.buf.resize(len)?;
        (self.k, self.n, self.nr) = (k, n, nr);
        Ok(())
    }

    /// The packed values to write, laid out as [`as_slice`](Self::as_slice).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        self.buf.as_mut_slice()
    }
}
