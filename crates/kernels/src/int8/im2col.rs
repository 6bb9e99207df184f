//! Implicit im2col for the int8 conv, packed straight into the GEMM's `B` panels.
//!
//! The input of one image and group is copied once per call into zero-point padded planes
//! (`c x hp x wp`, then [`SLACK`] bytes), so every im2col element is
//! `xp[base(k) + off(col)]` with `base(k) = ci·hp·wp + ky·dh·wp + kx·dw` and
//! `off(col) = oy·sh·wp + ox·sw`: no bounds logic, no fills per output row. Panels are then
//! packed directly from `xp`:
//! - AVX-512 VBMI (`nr = 32`, `kr = 4`): the 32 columns of a panel split into segments whose
//!   offsets span at most 64 bytes (one segment for a panel inside an output row at stride 1
//!   or 2, a few across rows of small planes); per segment and pair of depth rows, two 64-byte
//!   loads and one `vpermt2b` gather both rows, and two more `vpermt2b` interleave the four
//!   rows into the 128-byte `c4` group.
//! - Portable (any `nr <= 32`, `kr` 1, 2 or 4): per run of columns inside one output row, a
//!   fixed 32-byte copy (stride 1) or a strided gather into four row buffers, then the shared
//!   interleave.

use super::QConvGeometry;
use crate::KernelError;
use crate::int8::epilogue::invalid;
use crate::int8::pack::{I8PanelSource, interleave_rows};

/// Bytes readable past the last padded plane (a 64-byte load may start at any element).
const SLACK: usize = 64;
/// The widest panel the direct packing handles.
const MAX_NR: usize = 32;

std::thread_local! {
    /// Each thread's padded-input buffer, kept between calls.
    static PADDED: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::default();
}

/// Run `f` with a scratch buffer of at least `len` bytes (the thread's cached one when it is
/// free, else a fresh one); fails when it cannot be allocated.
pub(crate) fn with_padded_buffer<R>(
    len: usize,
    f: impl FnOnce(&mut [u8]) -> Result<R, KernelError>,
) -> Result<R, KernelError> {
    let grow = |v: &mut Vec<u8>| -> Result<(), KernelError> {
        if v.len() < len {
            v.try_reserve(len - v.len()).map_err(|e| invalid(format!("cannot allocate the padded input: {e}")))?;
            v.resize(len, 0);
        }
        Ok(())
    };
    PADDED.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            grow(&mut v)?;
            f(&mut v[..len])
        }
        Err(_) => {
            let mut v = Vec::new();
            grow(&mut v)?;
            f(&mut v[..len])
        }
    })
}

/// The im2col operand `[c·kh·kw, oh·ow]` of one image and group, read from a padded copy.
pub(crate) struct PaddedIm2col<'a> {
    xp: &'a [u8],
    wp: usize,
    sh: usize,
    sw: usize,
    oh: usize,
    ow: usize,
    /// `base(k)` per depth row.
    base: Vec<usize>,
}

/// Padded plane sizes `(hp, wp)` and the buffer length for `c` planes.
pub(crate) fn padded_len(c: usize, h: usize, w: usize, pads: [usize; 4]) -> Result<(usize, usize, usize), KernelError> {
    let hp = h.checked_add(pads[0]).and_then(|v| v.checked_add(pads[2]));
    let wp = w.checked_add(pads[1]).and_then(|v| v.checked_add(pads[3]));
    let len = hp.zip(wp).and_then(|(a, b)| a.checked_mul(b)?.checked_mul(c)?.checked_add(SLACK));
    match (hp, wp, len) {
        (Some(hp), Some(wp), Some(len)) => Ok((hp, wp, len)),
        _ => Err(invalid(format!("padded input of {c} x {h} x {w} (pads {pads:?}) overflows"))),
    }
}

impl<'a> PaddedIm2col<'a> {
    /// Copy `x` (`c` planes of `h x w`) into `buf` (of [`padded_len`]) with the pads of `geom`
    /// filled with `zp`, and describe the im2col matrix of a `kh x kw` window producing
    /// `oh x ow` outputs. The caller checked that the geometry fits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        x: &[u8],
        c: usize,
        [h, w]: [usize; 2],
        [kh, kw]: [usize; 2],
        geom: &QConvGeometry,
        [oh, ow]: [usize; 2],
        zp: u8,
        buf: &'a mut [u8],
    ) -> Result<Self, KernelError> {
        let [pt, pl, ..] = geom.pads;
        let (hp, wp, len) = padded_len(c, h, w, geom.pads)?;
        if buf.len() != len || x.len() != c * h * w {
            return Err(invalid(format!("padded im2col: buffer {} for {c} x {h} x {w}", buf.len())));
        }
        // One fill of the whole buffer (pads and slack), then the rows: no small fills per row.
        buf.fill(zp);
        if h * w > 0 {
            for (plane, xs) in buf.chunks_exact_mut(hp * wp).zip(x.chunks_exact(h * w)) {
                for (row, xr) in plane[pt * wp..].chunks_exact_mut(wp).zip(xs.chunks_exact(w)) {
                    row[pl..pl + w].copy_from_slice(xr);
                }
            }
        }
        let [dh, dw] = geom.dilations;
        let mut base = Vec::new();
        base.try_reserve_exact(c * kh * kw).map_err(|e| invalid(format!("cannot allocate im2col offsets: {e}")))?;
        for ci in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    base.push(ci * hp * wp + ky * dh * wp + kx * dw);
                }
            }
        }
        let [sh, sw] = geom.strides;
        Ok(PaddedIm2col { xp: buf, wp, sh, sw, oh, ow, base })
    }

    /// `off(col)` for column `j`.
    #[inline(always)]
    fn col_offset(&self, j: usize) -> usize {
        (j / self.ow) * self.sh * self.wp + (j % self.ow) * self.sw
    }

    /// Pack with the AVX-512 VBMI path when `simd` and the CPU allows it, else portably;
    /// `false` when neither handles `nr`/`kr` or `dst` is too short.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pack_with(
        &self,
        c0: usize,
        ncb: usize,
        nr: usize,
        kr: usize,
        off: u8,
        dst: &mut [u8],
        simd: bool,
    ) -> bool {
        let k = self.base.len();
        let need = ncb.div_ceil(nr.max(1)).checked_mul(k.div_ceil(kr.max(1)) * nr * kr);
        if nr == 0 || nr > MAX_NR || !matches!(kr, 1 | 2 | 4) || need.is_none_or(|n| n > dst.len()) {
            return false;
        }
        if c0.checked_add(ncb).is_none_or(|e| e > self.oh * self.ow) {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        if simd
            && nr == 32
            && kr == 4
            && k > 0
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vbmi")
        {
            // SAFETY: the features were detected above; `dst` holds the `ceil(ncb / 32)`
            // panels of `kg · 128` bytes (checked above) and columns `c0 .. c0 + ncb` exist.
            unsafe { self.pack_c4x32_vbmi(c0, ncb, off, dst) };
            return true;
        }
        let _ = simd;
        self.pack_portable(c0, ncb, nr, kr, off, dst);
        true
    }

    /// Portable packing (see the module docs); `dst` and the columns were checked.
    fn pack_portable(&self, c0: usize, ncb: usize, nr: usize, kr: usize, off: u8, dst: &mut [u8]) {
        let k = self.base.len();
        let kg = k.div_ceil(kr);
        let panel_len = kg * nr * kr;
        // Runs of columns inside one output row: (first lane, length, offset).
        let mut runs = [(0usize, 0usize, 0usize); MAX_NR];
        let mut rows = [[0u8; 2 * MAX_NR]; 4];
        for (q, panel) in dst[..ncb.div_ceil(nr) * panel_len].chunks_exact_mut(panel_len).enumerate() {
            let j0 = c0 + q * nr;
            let w = nr.min(c0 + ncb - j0);
            let mut nruns = 0;
            let mut t = 0;
            while t < w {
                let len = (self.ow - (j0 + t) % self.ow).min(w - t);
                runs[nruns] = (t, len, self.col_offset(j0 + t));
                nruns += 1;
                t += len;
            }
            for (g, d) in panel.chunks_exact_mut(nr * kr).enumerate() {
                for (r, row) in rows.iter_mut().enumerate().take(kr) {
                    let kk = g * kr + r;
                    if kk >= k {
                        row[..w].fill(off);
                        continue;
                    }
                    let b = self.base[kk];
                    for &(t, len, o) in &runs[..nruns] {
                        let s = &self.xp[b + o..];
                        if self.sw == 1 {
                            // A fixed-size copy (the slack and the row buffer's second half
                            // absorb the excess; later runs overwrite it).
                            row[t..t + MAX_NR].copy_from_slice(&s[..MAX_NR]);
                        } else {
                            for (v, &x) in row[t..t + len].iter_mut().zip(s.iter().step_by(self.sw)) {
                                *v = x;
                            }
                        }
                    }
                }
                let slices: [&[u8]; 4] = std::array::from_fn(|r| &rows[r][..]);
                interleave_rows(&slices, kr, w, off, d);
                d[w * kr..].fill(0);
            }
        }
    }

    /// The AVX-512 VBMI packing for `nr = 32`, `kr = 4` (see the module docs).
    ///
    /// # Safety
    /// The CPU has AVX-512F, BW and VBMI; `dst` holds `ceil(ncb / 32)` panels of
    /// `ceil(k / 4) · 128` bytes; columns `c0 .. c0 + ncb` exist; `k > 0`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    unsafe fn pack_c4x32_vbmi(&self, c0: usize, ncb: usize, off: u8, dst: &mut [u8]) {
        use std::arch::x86_64::*;
        let k = self.base.len();
        let kg = k.div_ceil(4);
        let panel_len = kg * 128;
        // Interleave: lane 4j + r of the output takes row r's column j; rows 0, 1 are lanes
        // 0..32 and 32..64 of the first table, rows 2, 3 the same of the second.
        let ilv: [[u8; 64]; 2] =
            std::array::from_fn(|h| std::array::from_fn(|l| (32 * (l % 4) + 16 * h + l / 4) as u8));
        // SAFETY: each reads 64 bytes of a 64-byte array.
        let (ilv0, ilv1) = unsafe {
            (_mm512_loadu_si512(ilv[0].as_ptr() as *const _), _mm512_loadu_si512(ilv[1].as_ptr() as *const _))
        };
        let offv = _mm512_set1_epi8(off as i8);
        // Lanes of the last group whose depth row is real (`4g + r < k`).
        let tail_rows = k - (kg - 1) * 4;
        let row_lanes: u64 = (0..64).filter(|l| l % 4 < tail_rows).fold(0, |m, l| m | 1 << l);
        let xp = self.xp.as_ptr();
        // Segments of up to PB panels at a time, so that for each depth group the panels'
        // loads walk along the same input rows (L1 hits) instead of the whole depth per panel.
        const PB: usize = 4;
        let mut seg_o = [0usize; PB * MAX_NR];
        let mut seg_m = [0u64; PB * MAX_NR];
        let mut seg_i = [[0u8; 64]; PB * MAX_NR];
        let panels = ncb.div_ceil(32);
        for q0 in (0..panels).step_by(PB) {
            let np = PB.min(panels - q0);
            // Panel p's segments are `seg_end[p - 1] .. seg_end[p]`; `lanes[p]` its real columns.
            let mut seg_end = [0usize; PB];
            let mut lanes = [(0u64, 0u64); PB];
            let mut nseg = 0;
            for p in 0..np {
                let j0 = c0 + (q0 + p) * 32;
                let w = 32.min(c0 + ncb - j0);
                // Segments: columns whose offsets lie within 64 bytes of the segment's first.
                let mut j = 0;
                let (mut oy, mut ox) = (j0 / self.ow, j0 % self.ow);
                while j < w {
                    let o = oy * self.sh * self.wp + ox * self.sw;
                    let idx = &mut seg_i[nseg];
                    let mut mask = 0u64;
                    while j < w {
                        let oj = oy * self.sh * self.wp + ox * self.sw;
                        if oj - o >= 64 {
                            break;
                        }
                        idx[j] = (oj - o) as u8;
                        idx[32 + j] = (64 + oj - o) as u8;
                        mask |= (1 << j) | (1 << (32 + j));
                        j += 1;
                        ox += 1;
                        if ox == self.ow {
                            (oy, ox) = (oy + 1, 0);
                        }
                    }
                    seg_o[nseg] = o;
                    seg_m[nseg] = mask;
                    nseg += 1;
                }
                seg_end[p] = nseg;
                // Output lanes of real columns (lanes 4j + r: j < w).
                let col_lanes = |half: usize| -> u64 {
                    let n = (w.saturating_sub(16 * half)).min(16) * 4;
                    if n == 64 { u64::MAX } else { (1u64 << n) - 1 }
                };
                lanes[p] = (col_lanes(0), col_lanes(1));
            }
            let block = dst[q0 * panel_len..][..np * panel_len].as_mut_ptr();
            for g in 0..kg {
                let b = |r: usize| self.base[(4 * g + r).min(k - 1)];
                let (b0, b1, b2, b3) = (b(0), b(1), b(2), b(3));
                let rl = if g + 1 == kg { row_lanes } else { u64::MAX };
                // SAFETY (every `ld!`): a load starts at `base(k) + off(col)` for a real row and
                // column, an element of `xp`, and the SLACK bytes after the planes cover the 64
                // bytes read; index loads read 64-byte arrays.
                macro_rules! ld {
                    ($p:expr) => {
                        unsafe { _mm512_loadu_si512(xp.add($p) as *const _) }
                    };
                }
                macro_rules! idx {
                    ($s:expr) => {
                        unsafe { _mm512_loadu_si512(seg_i[$s].as_ptr() as *const _) }
                    };
                }
                let mut s0 = 0;
                for (p, (&s1, &(cl0, cl1))) in seg_end.iter().zip(&lanes).enumerate().take(np) {
                    let (a, bb) = if s1 - s0 == 1 {
                        let (o, i) = (seg_o[s0], idx!(s0));
                        (
                            _mm512_permutex2var_epi8(ld!(b0 + o), i, ld!(b1 + o)),
                            _mm512_permutex2var_epi8(ld!(b2 + o), i, ld!(b3 + o)),
                        )
                    } else {
                        let (mut a, mut bb) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                        for s in s0..s1 {
                            let (o, m, i) = (seg_o[s], seg_m[s], idx!(s));
                            a = _mm512_or_si512(a, _mm512_maskz_permutex2var_epi8(m, ld!(b0 + o), i, ld!(b1 + o)));
                            bb = _mm512_or_si512(bb, _mm512_maskz_permutex2var_epi8(m, ld!(b2 + o), i, ld!(b3 + o)));
                        }
                        (a, bb)
                    };
                    s0 = s1;
                    let out0 = _mm512_maskz_sub_epi8(cl0 & rl, _mm512_permutex2var_epi8(a, ilv0, bb), offv);
                    let out1 = _mm512_maskz_sub_epi8(cl1 & rl, _mm512_permutex2var_epi8(a, ilv1, bb), offv);
                    // SAFETY: group `g` of panel `p` of this run of panels is the 128 bytes at
                    // `p · panel_len + g · 128 < np · panel_len`.
                    unsafe {
                        let d = block.add(p * panel_len + g * 128);
                        _mm512_storeu_si512(d as *mut _, out0);
                        _mm512_storeu_si512(d.add(64) as *mut _, out1);
                    }
                }
            }
        }
    }
}

impl I8PanelSource for PaddedIm2col<'_> {
    fn depth(&self) -> usize {
        self.base.len()
    }

    fn cols(&self) -> usize {
        self.oh * self.ow
    }

    fn row(&self, k: usize, c0: usize, dst: &mut [u8]) {
        let b = self.base[k];
        for (j, v) in dst.iter_mut().enumerate() {
            *v = self.xp[b + self.col_offset(c0 + j)];
        }
    }

    fn pack_panels(&self, c0: usize, ncb: usize, nr: usize, kr: usize, off: u8, dst: &mut [u8]) -> bool {
        self.pack_with(c0, ncb, nr, kr, off, dst, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::conv::Im2colU8;
    use crate::int8::pack::{I8Input, PackScratch, pack_b_block};
    use proptest::prelude::*;

    /// A random im2col problem and a column block of it.
    #[derive(Clone, Debug)]
    struct Case {
        c: usize,
        hw: [usize; 2],
        k: [usize; 2],
        geom: QConvGeometry,
        zp: u8,
        /// (nr, kr, b_offset)
        tile: (usize, usize, u8),
        /// Block start and length as fractions of the columns (per mille).
        block: (usize, usize),
        seed: u64,
    }

    fn arb_case() -> impl Strategy<Value = Case> {
        let kernel = prop_oneof![Just(1usize), Just(2), Just(3), Just(5), Just(7)];
        let tile = prop_oneof![
            Just((32usize, 4usize, 0u8)),
            Just((32, 4, 128)),
            Just((16, 2, 0)),
            Just((8, 4, 0)),
            Just((12, 4, 128)),
            Just((8, 1, 128)),
            Just((24, 4, 7)),
        ];
        (
            (1usize..6, 1usize..40, 1usize..40, kernel.clone(), kernel),
            (1usize..4, 1usize..4, 1usize..3, 1usize..3, proptest::array::uniform4(0usize..4)),
            (any::<u8>(), tile, 0usize..1000, 0usize..1001, any::<u64>()),
        )
            .prop_filter_map(
                "window larger than the padded input",
                |((c, h, w, kh, kw), (sh, sw, dh, dw, pads), (zp, tile, b0, bl, seed))| {
                    let geom = QConvGeometry { strides: [sh, sw], pads, dilations: [dh, dw], groups: 1 };
                    geom.output_hw([1, c, h, w], [kh, kw]).ok()?;
                    Some(Case { c, hw: [h, w], k: [kh, kw], geom, zp, tile, block: (b0, bl), seed })
                },
            )
    }

    /// `(old rows-path block, new block packed with simd, portable block)`.
    fn pack_three(case: &Case) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let [h, w] = case.hw;
        let mut s = case.seed | 1;
        let x: Vec<u8> = (0..case.c * h * w)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect();
        let (oh, ow) = case.geom.output_hw([1, case.c, h, w], case.k).unwrap();
        let n = oh * ow;
        let c0 = case.block.0 * n / 1000;
        let ncb = ((n - c0) * case.block.1 / 1000).max(1).min(n - c0);
        let (nr, kr, off) = case.tile;
        let old = Im2colU8::new(&x, case.hw, case.k, case.geom, [oh, ow], case.zp);
        let depth = old.depth();
        let mut scratch = PackScratch::default();
        pack_b_block(I8Input::Source(&old), depth, c0, ncb, nr, kr, off, &mut scratch).unwrap();
        let total = ncb.div_ceil(nr) * depth.div_ceil(kr) * nr * kr;
        let want = scratch.block[..total].to_vec();
        let mut buf = vec![0u8; padded_len(case.c, h, w, case.geom.pads).unwrap().2];
        let src = PaddedIm2col::new(&x, case.c, case.hw, case.k, &case.geom, [oh, ow], case.zp, &mut buf).unwrap();
        assert_eq!((src.depth(), src.cols()), (depth, n));
        let mut fast = vec![0xA5u8; total];
        assert!(src.pack_with(c0, ncb, nr, kr, off, &mut fast, true));
        let mut portable = vec![0x5Au8; total];
        assert!(src.pack_with(c0, ncb, nr, kr, off, &mut portable, false));
        let mut rows = vec![0u8; ncb];
        for kk in 0..depth {
            let mut want_row = vec![0u8; ncb];
            old.row(kk, c0, &mut want_row);
            src.row(kk, c0, &mut rows);
            assert_eq!(rows, want_row, "row {kk}");
        }
        (want, fast, portable)
    }

    proptest! {
        /// The direct packing (SIMD when the CPU has it, and portable) equals packing the rows
        /// of the earlier implicit im2col: odd sizes, pads, strides 1-3, dilations, kernels 1
        /// to 7, column tails and blocks starting anywhere.
        #[test]
        fn direct_packing_matches_rows(case in arb_case()) {
            let (want, fast, portable) = pack_three(&case);
            prop_assert_eq!(&fast, &want);
            prop_assert_eq!(&portable, &want);
        }
    }

    /// ResNet-like shapes: deep blocks, the first convs' shallow depths, panels within and
    /// across output rows.
    #[test]
    fn direct_packing_matches_rows_on_model_shapes() {
        let g = |s: usize, p: usize| QConvGeometry { strides: [s, s], pads: [p; 4], dilations: [1, 1], groups: 1 };
        for (c, hw, k, geom) in [
            (3, 45, 7, g(2, 3)),
            (3, 37, 3, g(2, 1)),
            (64, 12, 3, g(1, 1)),
            (40, 7, 3, g(1, 1)),
            (20, 14, 3, g(1, 1)),
            (16, 23, 3, g(2, 1)),
            (9, 64, 3, g(1, 1)),
            (5, 70, 3, g(2, 0)),
        ] {
            for tile in [(32, 4, 0), (32, 4, 128), (8, 4, 0), (12, 4, 128)] {
                for block in [(0, 1000), (0, 371), (500, 1000)] {
                    let case = Case { c, hw: [hw, hw], k: [k, k], geom, zp: 77, tile, block, seed: 5 };
                    let (want, fast, portable) = pack_three(&case);
                    assert_eq!(fast, want, "{case:?}");
                    assert_eq!(portable, want, "{case:?}");
                }
            }
        }
    }
}
