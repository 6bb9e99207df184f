//! 3x3 stride-1 dilation-1 convolution over NCHW f32 tensors with Winograd F(m,3).
//!
//! For output tiles of `m x m` (`n = m + 2` input tiles): `U_ξ = (G g Gᵀ)_ξ` per weight pair
//! (computed once, packed as `[C_out x C_in]`), `V_ξ = (Bᵀ d B)_ξ` per input tile and channel,
//! `n²` GEMMs `M_ξ = U_ξ · V_ξ`, then `Y = Aᵀ M A` with bias, residual and activation fused into
//! the write of each output tile. Tiles are processed in blocks so the scratch stays near L2.
//!
//! The transforms are derived at run time (in f64) from interpolation points by the
//! Toom-Cook construction: with `E` (`n x m`) and `V` (`n x n`) the Vandermonde matrices of
//! the finite points plus the point at infinity, linear convolution is
//! `w = V⁻¹ [(G g) ⊙ (E u)]`; its transpose is correlation, so `Aᵀ = Eᵀ`, `Bᵀ = V⁻ᵀ`.

use crate::KernelError;
use crate::conv2d_gemm::{Conv2dShape, per_channel_slope};
use crate::fast::Isa;
use crate::fast::activation::FastActivation;
use crate::gemm::{F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, Residual, sgemm};
use lithe_ir::Tensor;
use lithe_ir::op::{Activation, ConvAttrs};
use rayon::prelude::*;

const OP: &str = "Conv";

/// Scratch budget per tile block, in f32 elements (about 1 MiB: V and M of one block).
const BLOCK_BUDGET: usize = 1024 * 1024;

/// The Winograd output tile size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WinogradTile {
    /// F(2x2, 3x3): 4x4 input tiles, points 0, ±1, ∞.
    F2x3,
    /// F(4x4, 3x3): 6x6 input tiles, points 0, ±1, ±2, ∞.
    F4x3,
    /// F(6x6, 3x3): 8x8 input tiles, points 0, ±1, ±1/2, ±2, ∞.
    F6x3,
}

impl WinogradTile {
    /// Output tile side `m`.
    pub fn output(self) -> usize {
        match self {
            WinogradTile::F2x3 => 2,
            WinogradTile::F4x3 => 4,
            WinogradTile::F6x3 => 6,
        }
    }

    /// Input tile side `n = m + 2`.
    pub fn input(self) -> usize {
        self.output() + 2
    }

    /// The finite interpolation points (`n - 1` of them; the last point is ∞).
    fn points(self) -> &'static [f64] {
        match self {
            WinogradTile::F2x3 => &[0.0, 1.0, -1.0],
            WinogradTile::F4x3 => &[0.0, 1.0, -1.0, 2.0, -2.0],
            WinogradTile::F6x3 => &[0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0],
        }
    }

    /// The transform matrices `(Aᵀ [m x n], G [n x 3], Bᵀ [n x n])`, row-major, in f64.
    pub fn matrices(self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (m, n) = (self.output(), self.input());
        let pts = self.points();
        // Aᵀ[i][j] = p_j^i; the ∞ column picks the leading coefficient.
        let mut at = vec![0.0; m * n];
        for i in 0..m {
            for (j, &p) in pts.iter().enumerate() {
                at[i * n + j] = p.powi(i as i32);
            }
        }
        at[(m - 1) * n + n - 1] = 1.0;
        let mut g = vec![0.0; n * 3];
        for (j, &p) in pts.iter().enumerate() {
            g[j * 3..j * 3 + 3].copy_from_slice(&[1.0, p, p * p]);
        }
        g[(n - 1) * 3 + 2] = 1.0;
        // V[i][k] = p_i^k, ∞ row = e_{n-1}; Bᵀ = V⁻ᵀ.
        let mut v = vec![0.0; n * n];
        for (i, &p) in pts.iter().enumerate() {
            for k in 0..n {
                v[i * n + k] = p.powi(k as i32);
            }
        }
        v[(n - 1) * n + n - 1] = 1.0;
        let vinv = invert(&v, n);
        let mut bt = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                bt[i * n + j] = vinv[j * n + i];
            }
        }
        (at, g, bt)
    }
}

/// Gauss-Jordan inverse with partial pivoting of a non-singular `n x n` matrix.
fn invert(a: &[f64], n: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    for col in 0..n {
        let piv = (col..n).max_by(|&x, &y| m[x * n + col].abs().total_cmp(&m[y * n + col].abs())).unwrap_or(col);
        for k in 0..n {
            m.swap(col * n + k, piv * n + k);
            inv.swap(col * n + k, piv * n + k);
        }
        let d = m[col * n + col];
        for k in 0..n {
            m[col * n + k] /= d;
            inv[col * n + k] /= d;
        }
        for r in 0..n {
            if r != col {
                let f = m[r * n + col];
                if f != 0.0 {
                    for k in 0..n {
                        m[r * n + k] -= f * m[col * n + k];
                        inv[r * n + k] -= f * inv[col * n + k];
                    }
                }
            }
        }
    }
    inv
}

/// Pick a Winograd tile for a 3x3 stride-1 conv of output `out_h x out_w`, or `None` when
/// im2col + GEMM is expected to be faster.
///
/// Measured (`cargo bench -p lithe-kernels-x86 --bench conv3x3`, AVX-512 12x32 kernel,
/// 1 thread, `C_in = C_out`, GFLOP/s of direct-conv FLOPs, im2col+GEMM / F(2,3) / F(4,3) /
/// F(6,3)): 64ch 56x56 82/64/96/88, 128ch 28x28 84/103/143/140, 256ch 14x14 91/122/110/57,
/// 512ch 7x7 76/69/28/16. So: F(4,3) from 28x28 outputs up, F(2,3) from 14x14, nothing
/// below. F(6,3) never led. Shallow convs lose: SqueezeNet's 16->64 (55x55, F(4,3)) and
/// 32->128 (27x27, F(2,3)) 3x3 convs took 1.06 and 0.90 ms against 0.62 and 0.58 by GEMM (the
/// transforms cost `C_in + C_out` per tile, the products `C_in · C_out`), so both channel
/// counts must be at least 64.
/// `LITHE_WINOGRAD=0` turns Winograd off; `2`, `4` or `6` forces that tile wherever it applies.
pub fn choose_tile(out_h: usize, out_w: usize, c_in: usize, c_out: usize) -> Option<WinogradTile> {
    match std::env::var("LITHE_WINOGRAD").as_deref() {
        Ok("0") => return None,
        Ok("2") => return Some(WinogradTile::F2x3),
        Ok("4") => return Some(WinogradTile::F4x3),
        Ok("6") => return Some(WinogradTile::F6x3),
        _ => {}
    }
    if c_in < 64 || c_out < 64 {
        return None;
    }
    let pixels = out_h * out_w;
    if pixels >= 28 * 28 {
        Some(WinogradTile::F4x3)
    } else if pixels >= 14 * 14 {
        Some(WinogradTile::F2x3)
    } else {
        None
    }
}

/// Paddle Lite's tile rule on output tiles per thread (F(2,3) below 16, F(4,3) below 36, else
/// F(6,3); `None` below 8 channels), kept for comparison: the runtime uses [`choose_tile`],
/// measured on our own kernels.
pub fn tile_by_tiles_per_thread(
    out_h: usize,
    out_w: usize,
    c_in: usize,
    c_out: usize,
    threads: usize,
) -> Option<WinogradTile> {
    if c_in < 8 || c_out < 8 || out_h < 2 || out_w < 2 {
        return None;
    }
    let per_thread = |m: usize| out_h.div_ceil(m) * out_w.div_ceil(m) / threads.max(1);
    if per_thread(6) >= 36 {
        Some(WinogradTile::F6x3)
    } else if per_thread(4) >= 16 {
        Some(WinogradTile::F4x3)
    } else {
        Some(WinogradTile::F2x3)
    }
}

/// A 3x3 stride-1 Conv node prepared for [`Conv2dWinograd::run`]: transformed weights packed
/// for one microkernel.
pub struct Conv2dWinograd {
    kernel: &'static dyn F32GemmMicrokernel,
    attrs: ConvAttrs,
    tile: WinogradTile,
    /// `n²` packed `[C_out x C_in]` matrices `U_ξ`.
    packed: Vec<PackedA>,
    bias: Option<Vec<f32>>,
    slope: Option<Vec<f32>>,
    c_in: usize,
    c_out: usize,
    at: Vec<f32>,
    bt: Vec<f32>,
}

impl std::fmt::Debug for Conv2dWinograd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conv2dWinograd")
            .field("kernel", &self.kernel.name())
            .field("tile", &self.tile)
            .field("c_in", &self.c_in)
            .field("c_out", &self.c_out)
            .finish()
    }
}

impl Conv2dWinograd {
    /// Transform and pack `w` (`C_out x C_in x 3 x 3`) for `kernel`. `b` is the optional bias
    /// (`C_out`), `slope` the PReLU slope as for [`crate::conv2d_gemm::Conv2dGemm::prepare`].
    /// Anything but group 1, 3x3, stride 1 and dilation 1 is `KernelError::Unsupported`.
    pub fn prepare(
        kernel: &'static dyn F32GemmMicrokernel,
        attrs: &ConvAttrs,
        w: &Tensor,
        b: Option<&Tensor>,
        slope: Option<&Tensor>,
        tile: WinogradTile,
    ) -> Result<Self, KernelError> {
        let wv = w.view_in_place::<f32>().ok_or_else(|| unsupported(format!("weight has dtype {}", w.dtype())))?;
        let ws = wv.shape().to_vec();
        if ws.len() != 4 || ws[2] != 3 || ws[3] != 3 {
            return Err(unsupported(format!("Winograd needs a 3x3 2-D weight, got {ws:?}")));
        }
        if attrs.group != 1 {
            return Err(unsupported(format!("Winograd needs group 1, got {}", attrs.group)));
        }
        if let Some(k) = &attrs.kernel_shape
            && k.as_slice() != [3, 3]
        {
            return Err(unsupported(format!("kernel_shape {k:?} is not 3x3")));
        }
        if attrs.strides.iter().any(|&s| s != 1) {
            return Err(unsupported(format!("Winograd needs stride 1, got {:?}", attrs.strides)));
        }
        if attrs.dilations.iter().any(|&d| d != 1) {
            return Err(unsupported(format!("Winograd needs dilation 1, got {:?}", attrs.dilations)));
        }
        let (c_out, c_in) = (ws[0], ws[1]);
        if c_out == 0 || c_in == 0 {
            return Err(invalid(format!("weight shape {ws:?} is empty")));
        }
        let w_data: Vec<f32> = match wv.as_slice() {
            Some(s) => s.to_vec(),
            None => wv.iter().copied().collect(),
        };
        let n = tile.input();
        let (at, g, bt) = tile.matrices();
        // U[ξ][co][ci] = (G g Gᵀ)[ξ].
        let mut u = vec![0.0f32; n * n * c_out * c_in];
        let mut gg = vec![0.0f64; n * 3];
        for co in 0..c_out {
            for ci in 0..c_in {
                let k = &w_data[(co * c_in + ci) * 9..][..9];
                for i in 0..n {
                    for c in 0..3 {
                        gg[i * 3 + c] = (0..3).map(|r| g[i * 3 + r] * f64::from(k[r * 3 + c])).sum();
                    }
                }
                for i in 0..n {
                    for j in 0..n {
                        let v: f64 = (0..3).map(|c| gg[i * 3 + c] * g[j * 3 + c]).sum();
                        u[((i * n + j) * c_out + co) * c_in + ci] = v as f32;
                    }
                }
            }
        }
        let packed = u
            .chunks_exact(c_out * c_in)
            .map(|ux| PackedA::pack(kernel, MatRef::row_major(ux, c_out, c_in)?))
            .collect::<Result<Vec<_>, _>>()?;
        let bias = crate::reference::conv::bias_values(OP, b, c_out)?;
        let slope = match (&attrs.epilogue.activation, slope) {
            (Activation::PRelu, Some(s)) => Some(per_channel_slope(s, c_out)?),
            (Activation::PRelu, None) => return Err(invalid("a fused PRelu needs its slope input".into())),
            _ => None,
        };
        Ok(Conv2dWinograd {
            kernel,
            attrs: attrs.clone(),
            tile,
            packed,
            bias,
            slope,
            c_in,
            c_out,
            at: at.iter().map(|&v| v as f32).collect(),
            bt: bt.iter().map(|&v| v as f32).collect(),
        })
    }

    /// The microkernel the weights were packed for.
    pub fn microkernel(&self) -> &'static dyn F32GemmMicrokernel {
        self.kernel
    }

    /// The Winograd tile.
    pub fn tile(&self) -> WinogradTile {
        self.tile
    }

    /// The geometry for an input of shape `x_shape` (`N x C_in x H x W`).
    pub fn shape_for(&self, x_shape: &[usize]) -> Result<Conv2dShape, KernelError> {
        let &[batch, c, h, w] = x_shape else {
            return Err(invalid(format!("input shape {x_shape:?} is not N x C x H x W")));
        };
        if c != self.c_in {
            return Err(invalid(format!("input has {c} channels, the weight expects {}", self.c_in)));
        }
        let wins = self.attrs.windows(&[h, w], &[3, 3]).map_err(|e| invalid(e.to_string()))?;
        let [wh, ww] = wins.as_slice() else {
            return Err(invalid(format!("{} windows for a 2-D conv", wins.len())));
        };
        if [wh, ww].iter().any(|w| w.kernel != 3 || w.stride != 1 || w.dilation != 1) {
            return Err(unsupported(format!("windows {wh:?}, {ww:?} are not 3x3 stride 1 dilation 1")));
        }
        Ok(Conv2dShape { batch, input_hw: [h, w], output_hw: [wh.output, ww.output], windows: [*wh, *ww] })
    }

    /// Tiles per block for `tiles` tiles in total: a multiple of [`L`].
    fn block(&self, tiles: usize) -> usize {
        let n = self.tile.input();
        let budget = (BLOCK_BUDGET / (n * n * (self.c_in + self.c_out))).clamp(L, 4096);
        budget.min(tiles.max(1).div_ceil(L) * L) / L * L
    }

    /// Scratch elements for blocks of `tb` tiles: `V`, `M` and one channel's staged tiles.
    fn scratch_elems(&self, tb: usize) -> usize {
        let n = self.tile.input();
        n * n * (self.c_in + self.c_out + 1) * tb
    }

    /// Elements of the scratch buffer [`run`](Self::run) needs for `shape`.
    pub fn scratch_len(&self, shape: &Conv2dShape) -> usize {
        let m = self.tile.output();
        let tiles = shape.output_hw[0].div_ceil(m) * shape.output_hw[1].div_ceil(m);
        self.scratch_elems(self.block(tiles))
    }

    /// Convolve `x` (shape `x_shape`) into `y` (`N x C_out x OH x OW`), adding `residual`
    /// (a separate tensor laid out like `y`, or `y` itself on entry) before the activation
    /// when the epilogue has one. `scratch` is grown as needed; `threads` splits each GEMM.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        x: &[f32],
        x_shape: &[usize],
        residual: Residual<'_>,
        y: &mut [f32],
        scratch: &mut Vec<f32>,
        threads: usize,
    ) -> Result<(), KernelError> {
        let s = self.shape_for(x_shape)?;
        let [h, w] = s.input_hw;
        let [oh, ow] = s.output_hw;
        let out_size = oh * ow;
        s.check_buffers(self.c_in, self.c_out, self.attrs.epilogue.residual, x, residual, y)?;
        if out_size == 0 || s.batch == 0 {
            return Ok(());
        }
        let act = FastActivation::from_ir(&self.attrs.epilogue.activation, self.slope.as_deref())?;
        let (m, n) = (self.tile.output(), self.tile.input());
        let (tiles_y, tiles_x) = (oh.div_ceil(m), ow.div_ceil(m));
        let tiles = tiles_y * tiles_x;
        let tb = self.block(tiles);
        let (ci, co) = (self.c_in, self.c_out);
        scratch.resize(self.scratch_elems(tb), 0.0);
        let (vbuf, rest) = scratch.split_at_mut(n * n * ci * tb);
        let (mbuf, stage) = rest.split_at_mut(n * n * co * tb);
        let geo = Geometry { h, w, oh, ow, pad: [s.windows[0].pad_begin, s.windows[1].pad_begin], tiles_x };
        for b in 0..s.batch {
            let xb = &x[b * ci * h * w..][..ci * h * w];
            let first = b * co * out_size;
            let res = match residual {
                Residual::Separate(r) => Some(&r[first..first + co * out_size]),
                _ => None,
            };
            let yb = &mut y[first..first + co * out_size];
            let mut t0 = 0;
            while t0 < tiles {
                let nt = tb.min(tiles - t0);
                self.input_transform(xb, &geo, t0, nt, tb, vbuf, stage, threads);
                // `V` and `M` are channel-major (`[c][ξ][t]`), so `V_ξ` and `M_ξ` are strided
                // views with row stride `n² tb`.
                let stride = n * n * tb;
                for xi in 0..n * n {
                    sgemm(
                        self.kernel,
                        co,
                        nt,
                        ci,
                        GemmInput::Packed(&self.packed[xi]),
                        GemmInput::Strided(MatRef::new(&vbuf[xi * tb..], ci, nt, stride, 1)?),
                        &mut mbuf[xi * tb..],
                        stride,
                        &GemmEpilogue::default(),
                        threads,
                    )?;
                }
                self.output_transform(mbuf, &geo, t0, nt, tb, res, &act, yb, stage, threads);
                t0 += nt;
            }
        }
        Ok(())
    }

    /// `V[c][ξ][t] = (Bᵀ d B)[ξ]` for tiles `t0..t0 + nt` of one image (each channel's `n²`
    /// rows of `tb` values, `tb` a multiple of [`L`] at least `nt` rounded up to [`L`]); `d` is
    /// staging space for one channel's tiles (`n² · tb`). `threads > 1` splits the channels.
    #[allow(clippy::too_many_arguments)]
    fn input_transform(
        &self,
        x: &[f32],
        g: &Geometry,
        t0: usize,
        nt: usize,
        tb: usize,
        v: &mut [f32],
        d: &mut [f32],
        threads: usize,
    ) {
        let n = self.tile.input();
        let plane_len = g.h * g.w;
        let one = |plane: &[f32], v_c: &mut [f32], d: &mut [f32]| {
            gather_tiles(plane, g, self.tile, t0, nt, tb, d);
            transform(self.tile, Side::Input, &self.bt, d, nt, tb, 0.0, v_c);
        };
        let chunks = v.par_chunks_mut(n * n * tb).zip(x.par_chunks(plane_len)).take(self.c_in);
        if threads > 1 && self.c_in > 1 {
            let per = self.c_in.div_ceil(threads);
            chunks.with_min_len(per).for_each_init(|| vec![0f32; n * n * tb], |d, (v_c, plane)| one(plane, v_c, d));
        } else {
            for (v_c, plane) in v.chunks_exact_mut(n * n * tb).zip(x.chunks_exact(plane_len)).take(self.c_in) {
                one(plane, v_c, d);
            }
        }
    }

    /// `Y = Aᵀ M A` for tiles `t0..t0 + nt` (`M` channel-major, `[co][ξ][t]`), with bias,
    /// residual and activation, into `y`; `o` is staging space for one channel's output tiles.
    /// `threads > 1` splits the channels.
    #[allow(clippy::too_many_arguments)]
    fn output_transform(
        &self,
        mb: &[f32],
        g: &Geometry,
        t0: usize,
        nt: usize,
        tb: usize,
        res: Option<&[f32]>,
        act: &FastActivation<'_>,
        y: &mut [f32],
        o: &mut [f32],
        threads: usize,
    ) {
        let (m, n) = (self.tile.output(), self.tile.input());
        let in_output = self.attrs.epilogue.residual && res.is_none();
        let plane_len = g.oh * g.ow;
        let one = |co: usize, m_c: &[f32], yp: &mut [f32], o: &mut [f32]| {
            let bias = self.bias.as_ref().map_or(0.0, |b| b[co]);
            transform(self.tile, Side::Output, &self.at, m_c, nt, tb, bias, o);
            // Scatter the tiles (`o[r][s][t]`) into the plane with residual and activation.
            let act_c = act.channel(co);
            let rp = res.map(|r| &r[co * plane_len..][..plane_len]);
            let mut row = [0.0f32; 6];
            for t in 0..nt {
                let (ty, tx) = ((t0 + t) / g.tiles_x, (t0 + t) % g.tiles_x);
                let (oy0, ox0) = (ty * m, tx * m);
                let cols = m.min(g.ow - ox0);
                for r in 0..m.min(g.oh - oy0) {
                    let base = (oy0 + r) * g.ow + ox0;
                    for (s, v) in row[..cols].iter_mut().enumerate() {
                        let mut acc = o[(r * m + s) * tb + t];
                        if let Some(rp) = rp {
                            acc += rp[base + s];
                        } else if in_output {
                            acc += yp[base + s];
                        }
                        *v = acc;
                    }
                    act_c.apply_row(&mut row[..cols]);
                    for (d, &v) in yp[base..base + cols].iter_mut().zip(&row[..cols]) {
                        *d = v;
                    }
                }
            }
        };
        if threads > 1 && self.c_out > 1 {
            let per = self.c_out.div_ceil(threads);
            mb.par_chunks(n * n * tb)
                .zip(y.par_chunks_mut(plane_len))
                .take(self.c_out)
                .enumerate()
                .with_min_len(per)
                .for_each_init(|| vec![0f32; m * m * tb], |o, (co, (m_c, yp))| one(co, m_c, yp, o));
        } else {
            for (co, (m_c, yp)) in
                mb.chunks_exact(n * n * tb).zip(y.chunks_exact_mut(plane_len)).take(self.c_out).enumerate()
            {
                one(co, m_c, yp, o);
            }
        }
    }
}

/// Lanes: tiles transformed together (one AVX-512 register of f32).
const L: usize = 16;

/// Copy the `n x n` input window of tiles `t0..t0 + nt` of one channel plane into
/// `d[(i * n + j) * tb + t]` (zeros in the padding and for `t >= nt` up to the next multiple of
/// [`L`]).
#[allow(clippy::too_many_arguments)]
fn gather_tiles(plane: &[f32], g: &Geometry, tile: WinogradTile, t0: usize, nt: usize, tb: usize, d: &mut [f32]) {
    let (m, n) = (tile.output(), tile.input());
    let padded_nt = nt.div_ceil(L) * L;
    for t in 0..nt {
        let (ty, tx) = ((t0 + t) / g.tiles_x, (t0 + t) % g.tiles_x);
        let (y0, x0) = ((ty * m) as isize - g.pad[0] as isize, (tx * m) as isize - g.pad[1] as isize);
        let interior_x = x0 >= 0 && x0 + n as isize <= g.w as isize;
        for i in 0..n {
            let iy = y0 + i as isize;
            let dst = |j: usize| (i * n + j) * tb + t;
            if iy < 0 || iy >= g.h as isize {
                for j in 0..n {
                    d[dst(j)] = 0.0;
                }
                continue;
            }
            let src = &plane[iy as usize * g.w..][..g.w];
            if interior_x {
                for (j, &v) in src[x0 as usize..x0 as usize + n].iter().enumerate() {
                    d[dst(j)] = v;
                }
            } else {
                for j in 0..n {
                    let ix = x0 + j as isize;
                    d[dst(j)] = if ix >= 0 && ix < g.w as isize { src[ix as usize] } else { 0.0 };
                }
            }
        }
    }
    for row in d.chunks_exact_mut(tb).take(n * n) {
        row[nt..padded_nt].fill(0.0);
    }
}

/// `out[(r * R + s) * tb + t] = add + (P X Pᵀ)[r][s]` for every tile `t < nt` of one channel,
/// [`L`] tiles per step: `P` is `R x N` (row-major), `X[i][j][t]` at `x[(i * N + j) * tb + t]`.
/// Zero coefficients of `P` are skipped (whole vector operations). The input transform is
/// `P = Bᵀ` on the staged tiles, the output transform `P = Aᵀ` on `M` plus the bias.
#[inline(always)]
fn sandwich<const N: usize, const R: usize>(p: &[f32], x: &[f32], nt: usize, tb: usize, add: f32, out: &mut [f32]) {
    for t in (0..nt).step_by(L) {
        // tmp[r][j] = Σ_i P[r][i] X[i][j]
        let mut tmp = [[[0f32; L]; N]; R];
        for (r, trow) in tmp.iter_mut().enumerate() {
            for i in 0..N {
                let f = p[r * N + i];
                if f == 0.0 {
                    continue;
                }
                for (j, acc) in trow.iter_mut().enumerate() {
                    let src: &[f32; L] = x[(i * N + j) * tb + t..][..L].try_into().expect("L lanes");
                    for l in 0..L {
                        acc[l] += f * src[l];
                    }
                }
            }
        }
        // out[r][s] = add + Σ_j tmp[r][j] P[s][j]
        for (r, trow) in tmp.iter().enumerate() {
            for s in 0..R {
                let mut acc = [add; L];
                for (j, tv) in trow.iter().enumerate() {
                    let f = p[s * N + j];
                    if f == 0.0 {
                        continue;
                    }
                    for l in 0..L {
                        acc[l] += f * tv[l];
                    }
                }
                out[(r * R + s) * tb + t..][..L].copy_from_slice(&acc);
            }
        }
    }
}

/// Which transform of a tile: the input one (`n x n` results) or the output one (`m x m`).
#[derive(Clone, Copy, Debug)]
enum Side {
    /// `Bᵀ d B` on the staged tiles.
    Input,
    /// `Aᵀ M A` plus the bias.
    Output,
}

/// [`sandwich`] for `tile` and `side`, in the build for the instruction set chosen at run time.
#[allow(clippy::too_many_arguments)]
fn transform(tile: WinogradTile, side: Side, p: &[f32], x: &[f32], nt: usize, tb: usize, add: f32, out: &mut [f32]) {
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` is only returned after detecting AVX-512F, AVX2 and FMA; the
        // function body is safe code.
        Isa::Avx512 => unsafe { transform_avx512(tile, side, p, x, nt, tb, add, out) },
        Isa::Generic => transform_portable(tile, side, p, x, nt, tb, add, out),
    }
}

/// [`sandwich`] instantiated for `tile` and `side`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn transform_portable(
    tile: WinogradTile,
    side: Side,
    p: &[f32],
    x: &[f32],
    nt: usize,
    tb: usize,
    add: f32,
    out: &mut [f32],
) {
    match (tile, side) {
        (WinogradTile::F2x3, Side::Input) => sandwich::<4, 4>(p, x, nt, tb, add, out),
        (WinogradTile::F2x3, Side::Output) => sandwich::<4, 2>(p, x, nt, tb, add, out),
        (WinogradTile::F4x3, Side::Input) => sandwich::<6, 6>(p, x, nt, tb, add, out),
        (WinogradTile::F4x3, Side::Output) => sandwich::<6, 4>(p, x, nt, tb, add, out),
        (WinogradTile::F6x3, Side::Input) => sandwich::<8, 8>(p, x, nt, tb, add, out),
        (WinogradTile::F6x3, Side::Output) => sandwich::<8, 6>(p, x, nt, tb, add, out),
    }
}

/// [`transform_portable`] compiled with AVX-512F.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn transform_avx512(
    tile: WinogradTile,
    side: Side,
    p: &[f32],
    x: &[f32],
    nt: usize,
    tb: usize,
    add: f32,
    out: &mut [f32],
) {
    transform_portable(tile, side, p, x, nt, tb, add, out)
}

/// Per-image geometry shared by the transforms.
struct Geometry {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    pad: [usize; 2],
    tiles_x: usize,
}

fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: OP, detail }
}

fn unsupported(detail: String) -> KernelError {
    KernelError::Unsupported { op: OP, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1-D F(m,3) against direct correlation, in f64.
    #[test]
    fn transforms_compute_correlation() {
        for tile in [WinogradTile::F2x3, WinogradTile::F4x3, WinogradTile::F6x3] {
            let (m, n) = (tile.output(), tile.input());
            let (at, g, bt) = tile.matrices();
            let d: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let k = [0.3, -1.1, 0.7];
            let gk: Vec<f64> = (0..n).map(|i| (0..3).map(|c| g[i * 3 + c] * k[c]).sum()).collect();
            let bd: Vec<f64> = (0..n).map(|i| (0..n).map(|j| bt[i * n + j] * d[j]).sum()).collect();
            for i in 0..m {
                let got: f64 = (0..n).map(|j| at[i * n + j] * gk[j] * bd[j]).sum();
                let want: f64 = (0..3).map(|c| d[i + c] * k[c]).sum();
                assert!((got - want).abs() < 1e-9, "{tile:?} row {i}: {got} vs {want}");
            }
        }
    }
}
