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
use crate::fast::activation::FastActivation;
use crate::gemm::{F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, Residual, sgemm};
use lithe_ir::Tensor;
use lithe_ir::op::{Activation, ConvAttrs};

const OP: &str = "Conv";

/// Scratch budget per tile block, in f32 elements (about 1 MiB: V and M of one block).
const BLOCK_BUDGET: usize = 256 * 1024;

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
/// Measured (benches/conv3x3.rs in lithe-kernels-x86, AVX-512, 1 thread): with the current
/// scalar transforms im2col + GEMM is faster on every ResNet/VGG shape tried (64ch 56x56 to
/// 512ch 7x7), so this returns `None` unless `LITHE_WINOGRAD=1` is set. Then the tile follows
/// Paddle Lite's rule on output tiles per thread (F(2,3) below 16, F(4,3) below 36, else
/// F(6,3)), with `None` below 8 channels where the transforms dominate.
pub fn choose_tile(out_h: usize, out_w: usize, c_in: usize, c_out: usize, threads: usize) -> Option<WinogradTile> {
    if std::env::var_os("LITHE_WINOGRAD").is_none_or(|v| v != "1") {
        return None;
    }
    tile_by_tiles_per_thread(out_h, out_w, c_in, c_out, threads)
}

/// Paddle Lite's tile rule (see [`choose_tile`]), without the measured gate.
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

    /// Tiles per block for `tiles` tiles in total.
    fn block(&self, tiles: usize) -> usize {
        let n = self.tile.input();
        (BLOCK_BUDGET / (n * n * (self.c_in + self.c_out))).clamp(8, 512).min(tiles.max(1))
    }

    /// Elements of the scratch buffer [`run`](Self::run) needs for `shape`.
    pub fn scratch_len(&self, shape: &Conv2dShape) -> usize {
        let (m, n) = (self.tile.output(), self.tile.input());
        let tiles = shape.output_hw[0].div_ceil(m) * shape.output_hw[1].div_ceil(m);
        n * n * (self.c_in + self.c_out) * self.block(tiles)
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
        scratch.resize(n * n * (ci + co) * tb, 0.0);
        let (vbuf, mbuf) = scratch.split_at_mut(n * n * ci * tb);
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
                self.input_transform(xb, &geo, t0, nt, tb, vbuf);
                for xi in 0..n * n {
                    sgemm(
                        self.kernel,
                        co,
                        nt,
                        ci,
                        GemmInput::Packed(&self.packed[xi]),
                        GemmInput::Strided(MatRef::new(&vbuf[xi * ci * tb..][..ci * tb], ci, nt, tb, 1)?),
                        &mut mbuf[xi * co * tb..][..co * tb],
                        tb,
                        &GemmEpilogue::default(),
                        threads,
                    )?;
                }
                self.output_transform(mbuf, &geo, t0, nt, tb, res, &act, yb);
                t0 += nt;
            }
        }
        Ok(())
    }

    /// `V[ξ][c][t] = (Bᵀ d B)[ξ]` for tiles `t0..t0 + nt` of one image.
    fn input_transform(&self, x: &[f32], g: &Geometry, t0: usize, nt: usize, tb: usize, v: &mut [f32]) {
        let (m, n) = (self.tile.output(), self.tile.input());
        let bt = &self.bt;
        let mut d = [0.0f32; 64];
        let mut tmp = [0.0f32; 64];
        for c in 0..self.c_in {
            let plane = &x[c * g.h * g.w..][..g.h * g.w];
            for t in 0..nt {
                let (ty, tx) = ((t0 + t) / g.tiles_x, (t0 + t) % g.tiles_x);
                let (y0, x0) = ((ty * m) as isize - g.pad[0] as isize, (tx * m) as isize - g.pad[1] as isize);
                for i in 0..n {
                    let iy = y0 + i as isize;
                    let row = &mut d[i * n..(i + 1) * n];
                    if iy < 0 || iy >= g.h as isize {
                        row.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..][..g.w];
                    for (j, r) in row.iter_mut().enumerate() {
                        let ix = x0 + j as isize;
                        *r = if ix >= 0 && ix < g.w as isize { src[ix as usize] } else { 0.0 };
                    }
                }
                // tmp = Bᵀ d
                for i in 0..n {
                    let out = &mut tmp[i * n..(i + 1) * n];
                    out.fill(0.0);
                    for k in 0..n {
                        let f = bt[i * n + k];
                        if f != 0.0 {
                            for (o, &dv) in out.iter_mut().zip(&d[k * n..(k + 1) * n]) {
                                *o += f * dv;
                            }
                        }
                    }
                }
                // V = tmp B: V[i][j] = Σ_k tmp[i][k] Bᵀ[j][k]
                for i in 0..n {
                    for j in 0..n {
                        let mut acc = 0.0;
                        for k in 0..n {
                            acc += tmp[i * n + k] * bt[j * n + k];
                        }
                        v[((i * n + j) * self.c_in + c) * tb + t] = acc;
                    }
                }
            }
        }
    }

    /// `Y = Aᵀ M A` for tiles `t0..t0 + nt`, with bias, residual and activation, into `y`.
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
    ) {
        let (m, n) = (self.tile.output(), self.tile.input());
        let at = &self.at;
        let in_output = self.attrs.epilogue.residual && res.is_none();
        let mut mt = [0.0f32; 64];
        let mut tmp = [0.0f32; 48];
        let mut row = [0.0f32; 6];
        let plane_len = g.oh * g.ow;
        for co in 0..self.c_out {
            let bias = self.bias.as_ref().map_or(0.0, |b| b[co]);
            let act_c = act.channel(co);
            let yp = &mut y[co * plane_len..][..plane_len];
            let rp = res.map(|r| &r[co * plane_len..][..plane_len]);
            for t in 0..nt {
                for (xi, v) in mt[..n * n].iter_mut().enumerate() {
                    *v = mb[(xi * self.c_out + co) * tb + t];
                }
                // tmp = Aᵀ M (m x n)
                for i in 0..m {
                    let out = &mut tmp[i * n..(i + 1) * n];
                    out.fill(0.0);
                    for k in 0..n {
                        let f = at[i * n + k];
                        if f != 0.0 {
                            for (o, &mv) in out.iter_mut().zip(&mt[k * n..(k + 1) * n]) {
                                *o += f * mv;
                            }
                        }
                    }
                }
                let (ty, tx) = ((t0 + t) / g.tiles_x, (t0 + t) % g.tiles_x);
                let (oy0, ox0) = (ty * m, tx * m);
                let cols = m.min(g.ow - ox0);
                for i in 0..m.min(g.oh - oy0) {
                    let base = (oy0 + i) * g.ow + ox0;
                    for (j, r) in row[..cols].iter_mut().enumerate() {
                        let mut acc = bias;
                        for k in 0..n {
                            acc += tmp[i * n + k] * at[j * n + k];
                        }
                        if let Some(rp) = rp {
                            acc += rp[base + j];
                        } else if in_output {
                            acc += yp[base + j];
                        }
                        *r = acc;
                    }
                    act_c.apply_row(&mut row[..cols]);
                    yp[base..base + cols].copy_from_slice(&row[..cols]);
                }
            }
        }
    }
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
