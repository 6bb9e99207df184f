//! Int8 fully connected layer (a 1x1 conv on 1x1 maps, e.g. a classifier) as matrix-vector
//! products: `acc[m] = Σ_k x[k]·w[m][k] - x_zp·Σ_k w[m][k]` exactly (wrapping i32), then
//! [`dequant`] and, for u8 outputs, [`Requant::apply`] per output.
//!
//! The weights stream once per call (per block of images), so the kernel is bound by where
//! they live (L3 for a 2 MB classifier). Two builds, chosen once per process:
//! - portable: rows zero-padded to a multiple of 64 bytes, one auto-vectorized dot product
//!   (16 lanes of i16 products summed in i32) per row and image;
//! - AVX-512 VNNI (`avx512f`, `avx512bw`, `avx512vnni`; not with `LITHE_KERNELS=generic`):
//!   blocks of 8 rows interleaved by 64-byte depth steps (one sequential stream), one
//!   `vpdpbusd` per row and step into 8 zmm accumulators, then horizontal sums.
//!
//! Both give the same i32 sums (integer additions, wrapping), so the same bits.
//! `threads > 1` splits blocks of rows over the rayon pool.

use super::epilogue::{Requant, dequant, invalid};
use super::pack::MAX_DEPTH;
use crate::KernelError;

/// Depth step: bytes of one zmm register.
const KB: usize = 64;
/// Rows per block of the VNNI layout (and per thread granule).
const RB: usize = 8;

/// The implementation a [`QGemv`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GemvIsa {
    /// Auto-vectorized portable code over row-major rows.
    Portable,
    /// AVX-512 VNNI over blocks of `RB` interleaved rows.
    #[cfg(target_arch = "x86_64")]
    Vnni,
}

impl GemvIsa {
    /// The best build for this CPU, detected once.
    fn detect() -> GemvIsa {
        static ISA: std::sync::OnceLock<GemvIsa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            if crate::force_generic() {
                return GemvIsa::Portable;
            }
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                return GemvIsa::Vnni;
            }
            GemvIsa::Portable
        })
    }
}

/// The output of [`QGemv::run`]: `[n, m]` f32 values or u8 values requantized by `requant`.
#[derive(Debug)]
pub enum QGemvOut<'a> {
    /// `dequant(acc, scale, bias, clamp)`.
    F32(&'a mut [f32]),
    /// `requant.apply(dequant(..)) as u8`.
    U8 {
        /// Output values.
        data: &'a mut [u8],
        /// The requantization (its range must be u8's).
        requant: Requant,
    },
}

/// s8 weights `[m, k]` prepared for matrix-vector products with u8 activations.
#[derive(Clone, Debug)]
pub struct QGemv {
    m: usize,
    k: usize,
    /// `k` rounded up to a positive multiple of [`KB`].
    kp: usize,
    /// The weights in `isa`'s layout, zero-padded.
    w: Vec<i8>,
    /// `Σ_k w[m][k]` per row.
    row_sums: Vec<i32>,
    /// `x_scale · w_scale[m]` per row.
    scale: Vec<f32>,
    isa: GemvIsa,
}

impl QGemv {
    /// Prepare row-major weights `w` (`m x k`) with one weight scale or one per row and the
    /// activation scale `x_scale`, for the detected CPU. Fails on inconsistent lengths or a
    /// depth above [`MAX_DEPTH`].
    pub fn prepare(w: &[i8], m: usize, k: usize, w_scale: &[f32], x_scale: f32) -> Result<QGemv, KernelError> {
        QGemv::prepare_with(w, m, k, w_scale, x_scale, true)
    }

    /// [`QGemv::prepare`]; `simd = false` forces the portable build (for tests and A/B runs).
    pub fn prepare_with(
        w: &[i8],
        m: usize,
        k: usize,
        w_scale: &[f32],
        x_scale: f32,
        simd: bool,
    ) -> Result<QGemv, KernelError> {
        if m.checked_mul(k) != Some(w.len()) || (w_scale.len() != 1 && w_scale.len() != m) || k > MAX_DEPTH {
            return Err(invalid(format!(
                "QGemv: {} weights for {m} x {k} (at most {MAX_DEPTH} deep), {} weight scales",
                w.len(),
                w_scale.len()
            )));
        }
        let isa = if simd { GemvIsa::detect() } else { GemvIsa::Portable };
        let kp = k.div_ceil(KB).max(1) * KB;
        let rows = || w.chunks_exact(k.max(1)).take(m);
        let row_sums: Vec<i32> =
            if k == 0 { vec![0; m] } else { rows().map(|r| r.iter().map(|&v| i32::from(v)).sum()).collect() };
        let scale = (0..m).map(|i| x_scale * w_scale[if w_scale.len() == 1 { 0 } else { i }]).collect();
        let w = match isa {
            GemvIsa::Portable => {
                let mut p = vec![0i8; m * kp];
                if k > 0 {
                    for (d, r) in p.chunks_exact_mut(kp).zip(rows()) {
                        d[..k].copy_from_slice(r);
                    }
                }
                p
            }
            #[cfg(target_arch = "x86_64")]
            GemvIsa::Vnni => {
                // Block b, step s, row r: 64 bytes at ((b·steps + s)·RB + r)·KB.
                let (blocks, steps) = (m.div_ceil(RB), kp / KB);
                let mut p = vec![0i8; blocks * RB * kp];
                for (i, row) in rows().enumerate() {
                    let (b, r) = (i / RB, i % RB);
                    for (s, chunk) in row.chunks(KB).enumerate() {
                        let at = ((b * steps + s) * RB + r) * KB;
                        p[at..at + chunk.len()].copy_from_slice(chunk);
                    }
                }
                p
            }
        };
        Ok(QGemv { m, k, kp, w, row_sums, scale, isa })
    }

    /// Output rows `m`.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Depth `k` (values per image).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Name of the build (for profiles).
    pub fn name(&self) -> &'static str {
        match self.isa {
            GemvIsa::Portable => "qgemv__generic",
            #[cfg(target_arch = "x86_64")]
            GemvIsa::Vnni => "qgemv_8r__avx512vnni",
        }
    }

    /// `out[i][m] = epilogue(Σ_k (x[i][k] - x_zp)·w[m][k])` for the `n` images of `x`
    /// (`[n, k]`), with `bias` (`m` values or none) and the optional clamp of [`dequant`]; u8
    /// outputs go through `requant`. Rows are split over `threads`. Fails on wrong lengths.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        x: &[u8],
        n: usize,
        x_zp: u8,
        bias: Option<&[f32]>,
        clamp: Option<(f32, f32)>,
        out: QGemvOut<'_>,
        threads: usize,
    ) -> Result<(), KernelError> {
        let (m, k) = (self.m, self.k);
        let out_len = match &out {
            QGemvOut::F32(y) => y.len(),
            QGemvOut::U8 { data, .. } => data.len(),
        };
        if n.checked_mul(k) != Some(x.len()) || n.checked_mul(m) != Some(out_len) || bias.is_some_and(|b| b.len() != m)
        {
            return Err(invalid(format!(
                "QGemv {m} x {k}: {} inputs, {out_len} outputs, bias {:?} for {n} images",
                x.len(),
                bias.map(<[f32]>::len)
            )));
        }
        if n == 0 || m == 0 {
            return Ok(());
        }
        // Images padded with zeros to whole depth steps (the padded weights are zero too).
        let padded;
        let xs: &[u8] = if k == self.kp {
            x
        } else {
            let mut p = vec![0u8; n * self.kp];
            if k > 0 {
                for (d, s) in p.chunks_exact_mut(self.kp).zip(x.chunks_exact(k)) {
                    d[..k].copy_from_slice(s);
                }
            }
            padded = p;
            &padded
        };
        let zp = i32::from(x_zp);
        let y = |row: usize, dot: i32| -> f32 {
            let acc = dot.wrapping_sub(zp.wrapping_mul(self.row_sums[row]));
            dequant(acc, self.scale[row], bias.map_or(0.0, |b| b[row]), clamp)
        };
        match out {
            QGemvOut::F32(o) => self.rows_into(xs, n, o, threads, y),
            QGemvOut::U8 { data, requant } => {
                self.rows_into(xs, n, data, threads, |row, dot| requant.apply(y(row, dot)) as u8)
            }
        }
        Ok(())
    }

    /// Fill `out` (`[n, m]`) with `f(row, dot)`, rows split over the threads (through a
    /// `[m, n]` buffer when `n > 1`).
    fn rows_into<T: Copy + Default + Send>(
        &self,
        xs: &[u8],
        n: usize,
        out: &mut [T],
        threads: usize,
        f: impl Fn(usize, i32) -> T + Sync,
    ) {
        let m = self.m;
        let run = |first: usize, part: &mut [T]| {
            let rows = part.len() / n;
            self.dots(xs, n, first, rows, |row, img, dot| part[(row - first) * n + img] = f(row, dot));
        };
        if n == 1 {
            crate::parallel::for_unit_runs(out, m, 1, RB, threads, run);
        } else {
            let mut t = vec![T::default(); m * n];
            crate::parallel::for_unit_runs(&mut t, m, n, RB, threads, run);
            for (row, vals) in t.chunks_exact(n).enumerate() {
                for (img, &v) in vals.iter().enumerate() {
                    out[img * m + row] = v;
                }
            }
        }
    }

    /// Call `sink(row, image, dot)` with the raw dot product `Σ_k x[image][k]·w[row][k]` for
    /// rows `first..first + rows` (`first` a multiple of `RB`) and every image of `xs`
    /// (`n` images of `kp` bytes).
    fn dots(&self, xs: &[u8], n: usize, first: usize, rows: usize, mut sink: impl FnMut(usize, usize, i32)) {
        let kp = self.kp;
        match self.isa {
            GemvIsa::Portable => {
                for row in first..first + rows {
                    let w = &self.w[row * kp..(row + 1) * kp];
                    for (img, x) in xs.chunks_exact(kp).take(n).enumerate() {
                        sink(row, img, dot_s8_u8(w, x));
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            GemvIsa::Vnni => {
                let end = first + rows;
                for b in first / RB..end.div_ceil(RB) {
                    let block = &self.w[b * RB * kp..(b + 1) * RB * kp];
                    for (img, x) in xs.chunks_exact(kp).take(n).enumerate() {
                        let mut d = [0i32; RB];
                        // SAFETY: `GemvIsa::Vnni` is only chosen after detecting avx512f,
                        // avx512bw and avx512vnni; `block` holds `RB·kp` bytes and `x` `kp`.
                        unsafe { dots_vnni(block, x, &mut d) };
                        for (r, &dot) in d.iter().enumerate() {
                            let row = b * RB + r;
                            if row < end {
                                sink(row, img, dot);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `Σ w[k]·x[k]` exactly: 16 lanes of i16 products summed in i32, a form compilers turn into
/// multiply-add instructions on any SIMD level (no overflow for `k <= MAX_DEPTH`: every
/// product is at most 255·128 in magnitude).
fn dot_s8_u8(w: &[i8], x: &[u8]) -> i32 {
    const L: usize = 16;
    let mut lanes = [0i32; L];
    let (wc, xc) = (w.chunks_exact(L), x.chunks_exact(L));
    let tail: i32 = wc.remainder().iter().zip(xc.remainder()).map(|(&w, &x)| i32::from(w) * i32::from(x)).sum();
    for (w, x) in wc.zip(xc) {
        for j in 0..L {
            lanes[j] += i32::from(i16::from(w[j]) * i16::from(x[j]));
        }
    }
    lanes.iter().sum::<i32>() + tail
}

/// The `RB` dot products of one interleaved weight block (`RB·kp` bytes, depth step `s` of
/// row `r` at `(s·RB + r)·KB`) with `x` (`kp` bytes) into `out`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and AVX-512 VNNI; `block.len() == RB·x.len()` and
/// `x.len()` is a multiple of `KB`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dots_vnni(block: &[i8], x: &[u8], out: &mut [i32; RB]) {
    use std::arch::x86_64::*;
    debug_assert!(block.len() == RB * x.len() && x.len().is_multiple_of(KB));
    let steps = x.len() / KB;
    let mut acc = [_mm512_setzero_si512(); RB];
    for s in 0..steps {
        // SAFETY: `s·KB + KB <= x.len()` and `(s·RB + r)·KB + KB <= block.len()` for `r < RB`
        // by the caller's contract; unaligned loads.
        unsafe {
            let xv = _mm512_loadu_si512(x.as_ptr().add(s * KB).cast());
            let base = block.as_ptr().add(s * RB * KB);
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm512_dpbusd_epi32(*a, xv, _mm512_loadu_si512(base.add(r * KB).cast()));
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = _mm512_reduce_add_epi32(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_portable_builds_match_at_the_extremes() {
        // |x - zp| = 255 with weights -128 and 127, odd sizes, both outputs.
        for (m, k) in [(1, 1), (9, 63), (17, 65), (8, 128), (3, 0)] {
            let w: Vec<i8> = (0..m * k).map(|i| if i % 3 == 0 { -128 } else { 127 }).collect();
            let x: Vec<u8> = (0..2 * k).map(|i| if i % 2 == 0 { 255 } else { 0 }).collect();
            let bias: Vec<f32> = (0..m).map(|i| i as f32 * 0.25 - 1.0).collect();
            let mut outs = Vec::new();
            for simd in [false, true] {
                let g = QGemv::prepare_with(&w, m, k, &[0.01], 0.5, simd).unwrap();
                let mut f = vec![0f32; 2 * m];
                g.run(&x, 2, 0, Some(&bias), None, QGemvOut::F32(&mut f), 1).unwrap();
                let mut q = vec![0u8; 2 * m];
                let requant = Requant::new(0.7, -3.0, 252.0, 3);
                g.run(&x, 2, 255, None, Some((0.0, 6.0)), QGemvOut::U8 { data: &mut q, requant }, 2).unwrap();
                outs.push((f.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), q));
            }
            assert_eq!(outs[0], outs[1], "{m} x {k}");
        }
    }
}
