//! 3x3 stride-1 dilation-1 convolution over NCHW f32 tensors with Winograd F(m,3).
//!
//! For output tiles of `m x m` (`n = m + 2` input tiles): `U_ξ = (G g Gᵀ)_ξ` per weight pair
//! (computed once, packed as `[C_out x C_in]`), `V_ξ = (Bᵀ d B)_ξ` per input tile and channel,
//! `n²` GEMMs `M_ξ = U_ξ · V_ξ`, then `Y = Aᵀ M A` with bias, residual and activation fused into
//! the write of each output tile. Tiles are processed in blocks so the scratch stays near L2.
//!
//! Per image the input planes are staged once with their zero padding; per block each
//! channel's tiles are transformed 16 at a time by the hand-written transforms of
//! `transforms.rs` (an AVX-512 build chosen at run time) and written straight into the GEMM's
//! packed `B` panels, so the products run on prepacked operands on both sides.
//!
//! The transforms are derived at run time (in f64) from interpolation points by the
//! Toom-Cook construction: with `E` (`n x m`) and `V` (`n x n`) the Vandermonde matrices of
//! the finite points plus the point at infinity, linear convolution is
//! `w = V⁻¹ [(G g) ⊙ (E u)]`; its transpose is correlation, so `Aᵀ = Eᵀ`, `Bᵀ = V⁻ᵀ`.

use crate::KernelError;
use crate::conv2d_gemm::{Conv2dShape, per_channel_slope};
use crate::fast::activation::FastActivation;
use crate::gemm::{F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, PackedB, Residual, sgemm};
use lithe_ir::Tensor;
use lithe_ir::op::{Activation, ConvAttrs};
use rayon::prelude::*;
use transforms::{InputJob, L, OutputJob, Panels};

mod transforms;

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
/// Measured on an AMD EPYC Zen 4 (AVX-512, 8x32 kernel, 1 thread, best of 15 batches, GFLOP/s
/// of direct-conv FLOPs, im2col+GEMM / F(2,3) / F(4,3) / F(6,3); example `wino_cycles` and
/// `cargo bench -p lithe-kernels-x86 --bench conv3x3`): 64->64 56x56 95/115/150/138,
/// 128->128 28x28 97/145/187/199, 256->256 14x14 96/151/127/52, 512->512 7x7 81/68/22/10,
/// 16->64 55x55 93/81/82/88, 32->128 27x27 95/102/110/125, 48->192 13x13 79/93/78/47,
/// 64->256 13x13 84/105/88/51. So: F(4,3) from 40x40 outputs up, F(6,3) from 24x24 (below
/// that its 6x6 tiles waste much of the plane, e.g. 24x24 computed for 20x20, and its larger
/// error, about 4e-5 relative, shows in the int8 QDQ tests' f32 reference at 20x20), F(2,3)
/// from 10x10, GEMM below (few tiles: the `U_ξ` stream and the tiles padded to whole `NR`
/// panels dominate), and GEMM when either channel count is under 64 (the transforms cost
/// `C_in + C_out` per tile, the products `C_in · C_out`): in SqueezeNet 1.1 (`lite-cli bench
/// --profile`) the 32->128 27x27 and 48->192 13x13 convs ran at 79-83 GFLOP/s by Winograd,
/// no faster than by GEMM in the model, and the whole model was 3% slower with them.
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
    if pixels >= 40 * 40 {
        Some(WinogradTile::F4x3)
    } else if pixels >= 24 * 24 {
        Some(WinogradTile::F6x3)
    } else if pixels >= 10 * 10 {
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

std::thread_local! {
    /// The calling thread's transformed-input operands (`V_ξ`, packed for the GEMM), kept
    /// between runs so a conv does not allocate them afresh.
    static V_PANELS: std::cell::RefCell<Vec<PackedB>> = std::cell::RefCell::default();
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
        if kernel.nr() == 0 || kernel.mr() == 0 {
            return Err(invalid(format!("kernel {} has an empty tile", kernel.name())));
        }
        let w_data: Vec<f32> = match wv.as_slice() {
            Some(s) => s.to_vec(),
            None => wv.iter().copied().collect(),
        };
        let n = tile.input();
        let (_, g, _) = tile.matrices();
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
        Ok(Conv2dWinograd { kernel, attrs: attrs.clone(), tile, packed, bias, slope, c_in, c_out })
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

    /// Tiles per block for `tiles` tiles in total: a multiple of both [`L`] and the
    /// microkernel's `NR`, so lane groups and `B` panels line up.
    fn block(&self, tiles: usize) -> usize {
        let n = self.tile.input();
        let nr = self.kernel.nr();
        let q = L / gcd(L, nr) * nr;
        let budget = (BLOCK_BUDGET / (n * n * (self.c_in + self.c_out))).clamp(q, 4096.max(q));
        budget.min(tiles.max(1).div_ceil(q) * q) / q * q
    }

    /// The staged (zero-padded) plane of an `oh x ow` output: `tiles · m + 2` rows and columns.
    fn staged_hw(&self, oh: usize, ow: usize) -> [usize; 2] {
        let m = self.tile.output();
        [oh.div_ceil(m) * m + 2, ow.div_ceil(m) * m + 2]
    }

    /// Elements of the scratch buffer [`run`](Self::run) needs for `shape`: the staged input
    /// planes and `M` of one block.
    pub fn scratch_len(&self, shape: &Conv2dShape) -> usize {
        let (m, n) = (self.tile.output(), self.tile.input());
        let [oh, ow] = shape.output_hw;
        let [ph, pw] = self.staged_hw(oh, ow);
        let tiles = oh.div_ceil(m) * ow.div_ceil(m);
        self.c_in * ph * pw + n * n * self.c_out * self.block(tiles)
    }

    /// Convolve `x` (shape `x_shape`) into `y` (`N x C_out x OH x OW`), adding `residual`
    /// (a separate tensor laid out like `y`, or `y` itself on entry) before the activation
    /// when the epilogue has one. `scratch` is grown as needed; `threads` splits each GEMM
    /// and the transforms' channels.
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
        let [oh, ow] = s.output_hw;
        s.check_buffers(self.c_in, self.c_out, self.attrs.epilogue.residual, x, residual, y)?;
        if oh * ow == 0 || s.batch == 0 {
            return Ok(());
        }
        let n2 = self.tile.input() * self.tile.input();
        V_PANELS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut v) => self.run_with(&s, x, residual, y, scratch, threads, &mut v),
            // Re-entered on this thread: fresh operands.
            Err(_) => self.run_with(&s, x, residual, y, scratch, threads, &mut Vec::with_capacity(n2)),
        })
    }

    /// [`run`](Self::run) on a checked geometry with the `V` operands given.
    #[allow(clippy::too_many_arguments)]
    fn run_with(
        &self,
        s: &Conv2dShape,
        x: &[f32],
        residual: Residual<'_>,
        y: &mut [f32],
        scratch: &mut Vec<f32>,
        threads: usize,
        vops: &mut Vec<PackedB>,
    ) -> Result<(), KernelError> {
        let [h, w] = s.input_hw;
        let [oh, ow] = s.output_hw;
        let out_size = oh * ow;
        let act = FastActivation::from_ir(&self.attrs.epilogue.activation, self.slope.as_deref())?;
        let (m, n) = (self.tile.output(), self.tile.input());
        let (tiles_y, tiles_x) = (oh.div_ceil(m), ow.div_ceil(m));
        let tiles = tiles_y * tiles_x;
        let tb = self.block(tiles);
        let (ci, co, nr) = (self.c_in, self.c_out, self.kernel.nr());
        let [ph, pw] = self.staged_hw(oh, ow);
        let pad = [s.windows[0].pad_begin, s.windows[1].pad_begin];
        scratch.resize(ci * ph * pw + n * n * co * tb, 0.0);
        let (staged, mbuf) = scratch.split_at_mut(ci * ph * pw);
        vops.resize_with(n * n, || PackedB::empty(nr));
        let in_output = self.attrs.epilogue.residual && !matches!(residual, Residual::Separate(_));
        let parallel = threads > 1;
        let mut offs = Vec::new();
        for b in 0..s.batch {
            let xb = &x[b * ci * h * w..][..ci * h * w];
            let stage = |(plane, src): (&mut [f32], &[f32])| stage_plane(src, [h, w], pad, pw, plane);
            if parallel {
                staged
                    .par_chunks_mut(ph * pw)
                    .zip(xb.par_chunks(h * w))
                    .with_min_len(ci.div_ceil(threads))
                    .for_each(stage);
            } else {
                staged.chunks_exact_mut(ph * pw).zip(xb.chunks_exact(h * w)).for_each(stage);
            }
            let first = b * co * out_size;
            let res = match residual {
                Residual::Separate(r) => Some(&r[first..first + co * out_size]),
                _ => None,
            };
            let yb = &mut y[first..first + co * out_size];
            let mut t0 = 0;
            while t0 < tiles {
                let nt = tb.min(tiles - t0);
                for v in vops.iter_mut() {
                    v.reshape(ci, nt, nr)?;
                }
                {
                    let panels = Panels::new(vops, ci, nt, nr);
                    // Each lane group's window offsets in the staged plane (dead lanes read the
                    // first window; their columns are never stored).
                    offs.clear();
                    offs.extend((0..panels.groups() * L).map(|t| {
                        let t = t0 + t;
                        if t < t0 + nt { (t / tiles_x * m) * pw + t % tiles_x * m } else { 0 }
                    }));
                    let job = |c: usize, plane: &[f32]| {
                        let job = InputJob { plane, pw, offs: &offs, c };
                        transforms::input_channel(self.tile, &job, &panels);
                    };
                    if parallel {
                        staged
                            .par_chunks(ph * pw)
                            .enumerate()
                            .with_min_len(ci.div_ceil(threads))
                            .for_each(|(c, p)| job(c, p));
                    } else {
                        staged.chunks_exact(ph * pw).enumerate().for_each(|(c, p)| job(c, p));
                    }
                }
                // `M` is channel-major (`[co][ξ][t]`): `M_ξ` has row stride `n² tb`.
                let stride = n * n * tb;
                for (xi, v) in vops.iter().enumerate() {
                    sgemm(
                        self.kernel,
                        co,
                        nt,
                        ci,
                        GemmInput::Packed(&self.packed[xi]),
                        GemmInput::Packed(v),
                        &mut mbuf[xi * tb..],
                        stride,
                        &GemmEpilogue::default(),
                        threads,
                    )?;
                }
                let out = |co: usize, m_c: &[f32], yp: &mut [f32]| {
                    let job = OutputJob {
                        m: m_c,
                        tb,
                        t0,
                        nt,
                        tiles_x,
                        oh,
                        ow,
                        bias: self.bias.as_ref().map_or(0.0, |b| b[co]),
                        residual: res.map(|r| &r[co * out_size..][..out_size]),
                        in_output,
                        act: act.channel(co),
                    };
                    transforms::output_channel(self.tile, &job, yp);
                };
                if parallel {
                    mbuf.par_chunks(stride)
                        .zip(yb.par_chunks_mut(out_size))
                        .enumerate()
                        .with_min_len(co.div_ceil(threads))
                        .for_each(|(c, (m_c, yp))| out(c, m_c, yp));
                } else {
                    for (c, (m_c, yp)) in mbuf.chunks_exact(stride).zip(yb.chunks_exact_mut(out_size)).enumerate() {
                        out(c, m_c, yp);
                    }
                }
                t0 += nt;
            }
        }
        Ok(())
    }
}

/// Copy one input plane (`hw`) into its staged form: `pw` columns, the plane at offset `pad`,
/// zeros around it (and for whatever the tiles reach past the input).
fn stage_plane(src: &[f32], [h, w]: [usize; 2], [pt, pl]: [usize; 2], pw: usize, dst: &mut [f32]) {
    for (py, row) in dst.chunks_exact_mut(pw).enumerate() {
        let iy = py.wrapping_sub(pt);
        if iy >= h {
            row.fill(0.0);
            continue;
        }
        let x0 = pl.min(pw);
        let cols = w.min(pw - x0);
        row[..x0].fill(0.0);
        row[x0..x0 + cols].copy_from_slice(&src[iy * w..][..cols]);
        row[x0 + cols..].fill(0.0);
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
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
