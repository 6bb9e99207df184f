//! Int8 NCHW convolution (ONNX `QLinearConv` semantics): pointwise convs straight on the GEMM,
//! other convs by implicit im2col on u8 (padding reads as the input zero point), groups as
//! one GEMM per group, depthwise 3x3/5x5 stride 1/2 by a direct kernel.

use super::depthwise::{DwWeights, depthwise_supported, run_depthwise};
use super::driver::i8_gemm_with_residual;
use super::epilogue::{QuantEpilogue, QuantOut, invalid};
use super::microkernel::I8GemmMicrokernel;
#[cfg(test)]
use super::pack::I8PanelSource;
use super::pack::{I8Input, PackedI8Weights, U8MatRef};
use crate::KernelError;
use channel_lanes::ChannelLanesWeights;
use im2col::{PaddedIm2col, padded_len, with_padded_buffer};

#[path = "channel_lanes.rs"]
mod channel_lanes;
#[path = "im2col.rs"]
mod im2col;

/// Convolution geometry (NCHW, 2-D).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QConvGeometry {
    /// Strides `[sh, sw]` (nonzero).
    pub strides: [usize; 2],
    /// Pads `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Dilations `[dh, dw]` (nonzero).
    pub dilations: [usize; 2],
    /// Groups (divides both channel counts).
    pub groups: usize,
}

impl Default for QConvGeometry {
    fn default() -> Self {
        QConvGeometry { strides: [1, 1], pads: [0; 4], dilations: [1, 1], groups: 1 }
    }
}

impl QConvGeometry {
    /// The geometry of a 2-D conv with IR attributes `attrs` on an input of spatial size
    /// `x_hw` with kernel `k_hw` (auto padding resolved); fails on a malformed geometry.
    pub fn resolve(
        attrs: &lithe_ir::op::ConvAttrs,
        x_hw: [usize; 2],
        k_hw: [usize; 2],
    ) -> Result<QConvGeometry, KernelError> {
        let w = lithe_ir::op::resolve_windows(
            &x_hw,
            &k_hw,
            &attrs.strides,
            &attrs.dilations,
            &attrs.pads,
            attrs.auto_pad,
            false,
        )
        .map_err(|e| invalid(format!("conv geometry: {e}")))?;
        let [a, b] = w.as_slice() else { return Err(invalid("conv geometry: not 2-D".into())) };
        Ok(QConvGeometry {
            strides: [a.stride, b.stride],
            pads: [a.pad_begin, b.pad_begin, a.pad_end, b.pad_end],
            dilations: [a.dilation, b.dilation],
            groups: attrs.group,
        })
    }

    /// Output `(oh, ow)` for input `[n, c, h, w]` and kernel `[kh, kw]`; fails when a stride or
    /// dilation is zero or the dilated window does not fit the padded input.
    pub fn output_hw(&self, x_shape: [usize; 4], kernel_hw: [usize; 2]) -> Result<(usize, usize), KernelError> {
        if self.strides.contains(&0) || self.dilations.contains(&0) || kernel_hw.contains(&0) {
            return Err(invalid(format!(
                "conv geometry {self:?}, kernel {kernel_hw:?}: zero stride, dilation or kernel"
            )));
        }
        let dim = |i: usize, p0: usize, p1: usize| -> Option<usize> {
            let padded = x_shape[2 + i].checked_add(p0)?.checked_add(p1)?;
            let win = (kernel_hw[i] - 1).checked_mul(self.dilations[i])? + 1;
            padded.checked_sub(win).map(|d| d / self.strides[i] + 1)
        };
        match (dim(0, self.pads[0], self.pads[2]), dim(1, self.pads[1], self.pads[3])) {
            (Some(oh), Some(ow)) => Ok((oh, ow)),
            _ => Err(invalid(format!(
                "conv window {kernel_hw:?} (dilations {:?}) larger than the padded input {x_shape:?} (pads {:?})",
                self.dilations, self.pads
            ))),
        }
    }
}

/// Flip the sign bit of s8 activations so they become u8 with zero point `zp + 128`
/// ([`u8_zero_point_from_s8`]): `(x_s8 - zp_s8) == (x_u8 - zp_u8)` exactly. Fails when the
/// lengths differ.
pub fn s8_to_u8_activations(src: &[i8], dst: &mut [u8]) -> Result<(), KernelError> {
    if src.len() != dst.len() {
        return Err(invalid(format!("s8 -> u8: {} values into {}", src.len(), dst.len())));
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = (s as u8) ^ 0x80;
    }
    Ok(())
}

/// The u8 zero point matching an s8 zero point after [`s8_to_u8_activations`].
pub fn u8_zero_point_from_s8(zp: i8) -> u8 {
    (zp as u8) ^ 0x80
}

/// How a prepared conv runs.
#[derive(Clone, Debug)]
enum Path {
    /// One packed weight matrix per group.
    Gemm(Vec<PackedI8Weights>),
    /// The direct depthwise kernel.
    Depthwise(DwWeights),
    /// Output channels along the vector lanes (one group; few output positions).
    ChannelLanes(ChannelLanesWeights),
}

/// An int8 convolution with its weights prepared once: s8 weights
/// `[c_out, c_in / groups, kh, kw]` with per-output-channel (or per-tensor) scales, u8
/// activations with a zero point, the fused [`QuantEpilogue`].
#[derive(Clone)]
pub struct QLinearConv2d {
    kernel: &'static dyn I8GemmMicrokernel,
    w_shape: [usize; 4],
    geom: QConvGeometry,
    path: Path,
}

impl std::fmt::Debug for QLinearConv2d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QLinearConv2d")
            .field("kernel", &self.kernel.name())
            .field("w_shape", &self.w_shape)
            .field("geom", &self.geom)
            .field("depthwise", &self.is_depthwise())
            .field("channel_lanes", &self.uses_channel_lanes())
            .finish()
    }
}

impl QLinearConv2d {
    /// Prepare weights `w` (`w_shape = [c_out, c_in / groups, kh, kw]`, s8 row-major) with
    /// `w_scale` (one per output channel, or one) for `kernel`. Depthwise convs (`groups =
    /// c_in = c_out`, 3x3 or 5x5, equal strides 1 or 2, no dilation, pads below the window) take
    /// the direct kernel; the others the GEMM. Fails on inconsistent shapes or scales.
    pub fn prepare(
        kernel: &'static dyn I8GemmMicrokernel,
        w: &[i8],
        w_shape: [usize; 4],
        w_scale: &[f32],
        geom: QConvGeometry,
    ) -> Result<Self, KernelError> {
        Self::prepare_with(kernel, w, w_shape, w_scale, geom, true)
    }

    /// [`prepare`](Self::prepare), with the depthwise kernel allowed or not (`false` runs
    /// depthwise convs as per-group GEMMs; for tests and comparisons).
    pub fn prepare_with(
        kernel: &'static dyn I8GemmMicrokernel,
        w: &[i8],
        w_shape: [usize; 4],
        w_scale: &[f32],
        geom: QConvGeometry,
        allow_depthwise: bool,
    ) -> Result<Self, KernelError> {
        let [co, cig, kh, kw] = w_shape;
        let g = geom.groups;
        if g == 0 || co % g != 0 || co == 0 || cig == 0 || kh == 0 || kw == 0 {
            return Err(invalid(format!("conv weights {w_shape:?} with {g} groups")));
        }
        if geom.strides.contains(&0) || geom.dilations.contains(&0) {
            return Err(invalid(format!("conv geometry {geom:?}: zero stride or dilation")));
        }
        let k = cig
            .checked_mul(kh)
            .and_then(|v| v.checked_mul(kw))
            .ok_or_else(|| invalid("conv depth overflows".into()))?;
        let len = co.checked_mul(k).ok_or_else(|| invalid("conv weights overflow".into()))?;
        if w.len() != len {
            return Err(invalid(format!("conv weights have {} values, shape {w_shape:?} needs {len}", w.len())));
        }
        if w_scale.len() != 1 && w_scale.len() != co {
            return Err(invalid(format!("{} weight scales for {co} output channels", w_scale.len())));
        }
        if allow_depthwise && depthwise_supported(w_shape, &geom) {
            let dw = DwWeights::new(w, w_shape, w_scale)?;
            return Ok(QLinearConv2d { kernel, w_shape, geom, path: Path::Depthwise(dw) });
        }
        let cog = co / g;
        let mut packed = Vec::with_capacity(g);
        for gi in 0..g {
            let ws = if w_scale.len() == 1 { w_scale } else { &w_scale[gi * cog..][..cog] };
            packed.push(PackedI8Weights::pack(kernel, cog, k, &w[gi * cog * k..][..cog * k], ws)?);
        }
        Ok(QLinearConv2d { kernel, w_shape, geom, path: Path::Gemm(packed) })
    }

    /// [`prepare`](Self::prepare) for a conv whose output is known to have `output_hw`
    /// positions per image: convs with few positions and enough channels (ungrouped, not
    /// depthwise, on an AVX-512 VNNI CPU with `kernel` the VNNI GEMM) take the GEMM with
    /// output channels along the vector lanes, which is faster there; the rest are prepared
    /// as by `prepare`. `LITHE_INT8_SMALLN=0` or `1` forces the choice off or on (where
    /// supported). The prepared conv runs any input size.
    pub fn prepare_for_output(
        kernel: &'static dyn I8GemmMicrokernel,
        w: &[i8],
        w_shape: [usize; 4],
        w_scale: &[f32],
        geom: QConvGeometry,
        output_hw: [usize; 2],
    ) -> Result<Self, KernelError> {
        let [co, cig, kh, kw] = w_shape;
        let depth = cig.saturating_mul(kh).saturating_mul(kw);
        let wanted = channel_lanes::forced()
            .unwrap_or_else(|| channel_lanes::preferred(co, depth, output_hw[0].saturating_mul(output_hw[1])));
        let vnni_gemm = kernel.name().ends_with("avx512vnni");
        if wanted
            && vnni_gemm
            && let Some(conv) = Self::prepare_channel_lanes(kernel, w, w_shape, w_scale, geom)?
        {
            return Ok(conv);
        }
        Self::prepare(kernel, w, w_shape, w_scale, geom)
    }

    /// Prepare the conv for the GEMM with output channels along the vector lanes whatever its
    /// size; `Ok(None)` when that kernel does not run it (grouped or depthwise convs, a CPU
    /// without AVX-512 VNNI). `kernel` is kept for [`microkernel`](Self::microkernel) only.
    pub fn prepare_channel_lanes(
        kernel: &'static dyn I8GemmMicrokernel,
        w: &[i8],
        w_shape: [usize; 4],
        w_scale: &[f32],
        geom: QConvGeometry,
    ) -> Result<Option<Self>, KernelError> {
        // Validate as `prepare` does (and fail as it would).
        let gemm = Self::prepare_with(kernel, w, w_shape, w_scale, geom, true)?;
        if geom.groups != 1 || gemm.is_depthwise() || !channel_lanes::available() {
            return Ok(None);
        }
        let [co, cig, kh, kw] = w_shape;
        let cl = ChannelLanesWeights::pack(co, cig * kh * kw, w, w_scale)?;
        Ok(Some(QLinearConv2d { kernel, w_shape, geom, path: Path::ChannelLanes(cl) }))
    }

    /// Whether the GEMM with output channels along the vector lanes runs this conv.
    pub fn uses_channel_lanes(&self) -> bool {
        matches!(self.path, Path::ChannelLanes(_))
    }

    /// Whether the direct depthwise kernel runs this conv.
    pub fn is_depthwise(&self) -> bool {
        matches!(self.path, Path::Depthwise(_))
    }

    /// The GEMM microkernel used (not used by depthwise convs).
    pub fn microkernel(&self) -> &'static dyn I8GemmMicrokernel {
        self.kernel
    }

    /// Output shape `[n, c_out, oh, ow]` for input `x_shape`; fails when the channel count or
    /// the window does not fit.
    pub fn output_shape(&self, x_shape: [usize; 4]) -> Result<[usize; 4], KernelError> {
        let [co, cig, kh, kw] = self.w_shape;
        if x_shape[1] != cig * self.geom.groups {
            return Err(invalid(format!(
                "input {x_shape:?} has {} channels, the conv expects {}",
                x_shape[1],
                cig * self.geom.groups
            )));
        }
        let (oh, ow) = self.geom.output_hw(x_shape, [kh, kw])?;
        Ok([x_shape[0], co, oh, ow])
    }

    /// Run on `x` (`x_shape = [n, c_in, h, w]`, u8 with `x_zero_point`) into `out` (NCHW, the
    /// [`output_shape`](Self::output_shape), dense). Bias vectors in `ep` have `c_out` values.
    /// `threads > 1` splits each GEMM (or the depthwise channels) over the rayon pool; results
    /// are identical for every thread count.
    pub fn run(
        &self,
        x: &[u8],
        x_shape: [usize; 4],
        x_zero_point: u8,
        ep: &QuantEpilogue<'_>,
        out: QuantOut<'_>,
        threads: usize,
    ) -> Result<(), KernelError> {
        self.run_with_residual(x, x_shape, x_zero_point, ep, None, out, threads)
    }

    /// [`run`](Self::run) with an optional f32 `residual` shaped as the output, added before
    /// the activation in the GEMM epilogue ([`i8_gemm_with_residual`]); not for depthwise convs.
    #[allow(clippy::too_many_arguments)]
    pub fn run_with_residual(
        &self,
        x: &[u8],
        x_shape: [usize; 4],
        x_zero_point: u8,
        ep: &QuantEpilogue<'_>,
        residual: Option<&[f32]>,
        mut out: QuantOut<'_>,
        threads: usize,
    ) -> Result<(), KernelError> {
        let [n, co, oh, ow] = self.output_shape(x_shape)?;
        let [_, c, h, wd] = x_shape;
        let x_len = n.checked_mul(c).and_then(|v| v.checked_mul(h)).and_then(|v| v.checked_mul(wd));
        if x_len != Some(x.len()) {
            return Err(invalid(format!("input has {} values, shape {x_shape:?}", x.len())));
        }
        let out_len = n * co * oh * ow;
        if out.len() != out_len {
            return Err(invalid(format!(
                "output has {} values, shape [{n}, {co}, {oh}, {ow}] needs {out_len}",
                out.len()
            )));
        }
        for (what, l) in [("bias", ep.bias.map(<[f32]>::len)), ("int32 bias", ep.bias_i32.map(<[i32]>::len))] {
            if let Some(l) = l
                && l != co
            {
                return Err(invalid(format!("{what} has {l} values for {co} output channels")));
            }
        }
        if let Some(r) = residual
            && r.len() != out_len
        {
            return Err(invalid(format!("residual has {} values, the output {out_len}", r.len())));
        }
        if out_len == 0 {
            return Ok(());
        }
        let groups = match &self.path {
            Path::Depthwise(_) if residual.is_some() => {
                return Err(invalid("the direct depthwise kernel takes no residual".into()));
            }
            Path::Depthwise(dw) => {
                return run_depthwise(dw, &self.geom, x, x_shape, x_zero_point, ep, out, [oh, ow], threads);
            }
            Path::Gemm(p) => p.len(),
            Path::ChannelLanes(_) => 1,
        };
        let [_, cig, kh, kw] = self.w_shape;
        let g = self.geom.groups;
        let cog = co / g;
        let (hw, ohw) = (h * wd, oh * ow);
        let pointwise = kh == 1 && kw == 1 && self.geom.strides == [1, 1] && self.geom.pads == [0; 4];
        let pad_len = if pointwise { 0 } else { padded_len(cig, h, wd, self.geom.pads)?.2 };
        for b in 0..n {
            for gi in 0..groups {
                let xg = &x[(b * c + gi * cig) * hw..][..cig * hw];
                let ep_g = QuantEpilogue {
                    x_scale: ep.x_scale,
                    bias: ep.bias.map(|v| &v[gi * cog..][..cog]),
                    bias_i32: ep.bias_i32.map(|v| &v[gi * cog..][..cog]),
                    activation: ep.activation,
                };
                let off = (b * co + gi * cog) * ohw;
                let (o, r) = (out.slice_from(off), residual.map(|r| &r[off..]));
                if pointwise {
                    let input = I8Input::Dense(U8MatRef::new(xg, cig, hw, hw)?);
                    self.gemm(gi, input, x_zero_point, &ep_g, r, o, ohw, threads)?;
                } else {
                    with_padded_buffer(pad_len, |buf| {
                        let src =
                            PaddedIm2col::new(xg, cig, [h, wd], [kh, kw], &self.geom, [oh, ow], x_zero_point, buf)?;
                        self.gemm(gi, I8Input::Source(&src), x_zero_point, &ep_g, r, o, ohw, threads)
                    })?;
                }
            }
        }
        Ok(())
    }

    /// The GEMM of group `gi` on `input` by this conv's path.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        gi: usize,
        input: I8Input<'_>,
        x_zero_point: u8,
        ep: &QuantEpilogue<'_>,
        residual: Option<&[f32]>,
        out: QuantOut<'_>,
        ldc: usize,
        threads: usize,
    ) -> Result<(), KernelError> {
        match &self.path {
            Path::Gemm(p) => {
                let pw = p.get(gi).ok_or_else(|| invalid(format!("no packed weights for group {gi}")))?;
                i8_gemm_with_residual(self.kernel, pw, input, x_zero_point, ep, residual, out, ldc, threads)
            }
            Path::ChannelLanes(cl) if gi == 0 && cl.rows() > 0 => {
                cl.run(input, x_zero_point, ep, residual, out, ldc, threads)
            }
            _ => Err(invalid(format!("no GEMM for group {gi} on this conv's path"))),
        }
    }
}

/// The unfolded input of one image and group (`[c * kh * kw, oh * ow]`), read row segment by
/// row segment; positions in the padding read as the zero point. The earlier implicit im2col,
/// kept as the tests' oracle of [`PaddedIm2col`].
#[cfg(test)]
pub(crate) struct Im2colU8<'a> {
    x: &'a [u8],
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    geom: QConvGeometry,
    oh: usize,
    ow: usize,
    zp: u8,
}

#[cfg(test)]
impl<'a> Im2colU8<'a> {
    /// The operand of `x` (`c` planes of `h x w`) for a `kh x kw` window with `oh x ow` outputs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        x: &'a [u8],
        [h, w]: [usize; 2],
        [kh, kw]: [usize; 2],
        geom: QConvGeometry,
        [oh, ow]: [usize; 2],
        zp: u8,
    ) -> Self {
        Im2colU8 { x, h, w, kh, kw, geom, oh, ow, zp }
    }
}

#[cfg(test)]
impl I8PanelSource for Im2colU8<'_> {
    fn depth(&self) -> usize {
        self.x.len() / (self.h * self.w).max(1) * self.kh * self.kw
    }

    fn cols(&self) -> usize {
        self.oh * self.ow
    }

    fn row(&self, k: usize, c0: usize, dst: &mut [u8]) {
        let (ci, ky, kx) = (k / (self.kh * self.kw), (k / self.kw) % self.kh, k % self.kw);
        let [sh, sw] = self.geom.strides;
        let [dh, dw] = self.geom.dilations;
        let (pt, pl) = (self.geom.pads[0], self.geom.pads[1]);
        let plane = &self.x[ci * self.h * self.w..][..self.h * self.w];
        // Valid output columns: 0 <= ox*sw + kx*dw - pl < w.
        let kxo = kx * dw;
        let ox_lo = if pl > kxo { (pl - kxo).div_ceil(sw) } else { 0 }.min(self.ow);
        let ox_hi = if self.w + pl > kxo { (self.w + pl - kxo).div_ceil(sw) } else { 0 }.clamp(ox_lo, self.ow);
        let mut j = c0;
        let mut d = 0;
        while d < dst.len() {
            let (oy, ox0) = (j / self.ow, j % self.ow);
            let seg = (self.ow - ox0).min(dst.len() - d);
            let out = &mut dst[d..d + seg];
            let iy = (oy * sh + ky * dh) as isize - pt as isize;
            if iy < 0 || iy as usize >= self.h {
                out.fill(self.zp);
            } else {
                let row = &plane[iy as usize * self.w..][..self.w];
                let (lo, hi) = (ox_lo.clamp(ox0, ox0 + seg), ox_hi.clamp(ox0, ox0 + seg));
                out[..lo - ox0].fill(self.zp);
                out[hi - ox0..].fill(self.zp);
                if hi > lo {
                    let ix0 = lo * sw + kxo - pl;
                    let o = &mut out[lo - ox0..hi - ox0];
                    if sw == 1 {
                        o.copy_from_slice(&row[ix0..ix0 + (hi - lo)]);
                    } else {
                        for (t, v) in o.iter_mut().enumerate() {
                            *v = row[ix0 + t * sw];
                        }
                    }
                }
            }
            j += seg;
            d += seg;
        }
    }
}
