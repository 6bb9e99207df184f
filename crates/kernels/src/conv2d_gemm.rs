//! 2-D convolution over NCHW f32 tensors as packed GEMM.
//!
//! Per batch item and group: `Y_g [M x OH*OW] = W_g [M x C_g*KH*KW] · cols [C_g*KH*KW x OH*OW]`,
//! with bias, residual and activation fused into the GEMM epilogue. The weights are packed
//! once ([`Conv2dGemm::prepare`]); the input is used directly as `cols` for 1x1 stride-1
//! unpadded convs, and otherwise unfolded block by block straight into the GEMM's packed `B`
//! panels ([`Im2colPanels`], implicit im2col): the unfolded matrix, `KH*KW` times the input,
//! is never written out.

use crate::KernelError;
use crate::fast::FastActivation;
use crate::gemm::{
    F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, PackedB, PanelSource, PerAxis, Residual, sgemm,
};
use flat::{FlatLayout, FlatPanels};
use lithe_ir::Tensor;
use lithe_ir::op::{Activation, AxisWindow, ConvAttrs};
use rayon::prelude::*;
pub use spatial_major::spatial_major_pays;

mod flat;
mod spatial_major;

const OP: &str = "Conv";

/// A Conv node prepared for [`Conv2dGemm::run`]: weights packed for one microkernel.
pub struct Conv2dGemm {
    kernel: &'static dyn F32GemmMicrokernel,
    attrs: ConvAttrs,
    /// The packed weights, one matrix per group.
    weights: PackedWeights,
    bias: Option<Vec<f32>>,
    /// The PReLU slope per output channel, when the activation is PReLU.
    slope: Option<Vec<f32>>,
    c_in: usize,
    c_out: usize,
    kernel_hw: [usize; 2],
    unfold: ConvUnfold,
}

/// A conv's weights packed for one of the two GEMM forms.
enum PackedWeights {
    /// `W_g` as the GEMM's `A` (channel-major output).
    ChannelMajor(Vec<PackedA>),
    /// `W_gᵀ` as the GEMM's `B`, for pointwise convs run spatial-major ([`spatial_major`]).
    SpatialMajor(Vec<PackedB>),
}

/// How a non-pointwise conv unfolds its input into the GEMM's `B` operand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvUnfold {
    /// The flat layout unless its junk columns would cost more than 15% extra panels.
    #[default]
    Auto,
    /// Always the flat phase-plane layout (contiguous copies, junk columns dropped afterwards).
    Flat,
    /// Always implicit im2col ([`Im2colPanels`]).
    Implicit,
}

impl std::fmt::Debug for Conv2dGemm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conv2dGemm")
            .field("kernel", &self.kernel.name())
            .field("c_in", &self.c_in)
            .field("c_out", &self.c_out)
            .field("kernel_hw", &self.kernel_hw)
            .field("group", &self.attrs.group)
            .finish()
    }
}

/// The per-run geometry of one conv: input and output sizes and the two spatial windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Batch size.
    pub batch: usize,
    /// Input height and width.
    pub input_hw: [usize; 2],
    /// Output height and width.
    pub output_hw: [usize; 2],
    /// The windows along H and W.
    pub windows: [AxisWindow; 2],
}

impl Conv2dShape {
    /// Check the buffers of one conv run against this geometry: `x` holds `batch x c_in x H x W`
    /// values, `y` `batch x c_out x OH x OW`, and the residual agrees with the epilogue
    /// (`fused_residual`): a separate residual has `y`'s length, none is given unless fused.
    pub fn check_buffers(
        &self,
        c_in: usize,
        c_out: usize,
        fused_residual: bool,
        x: &[f32],
        residual: Residual<'_>,
        y: &[f32],
    ) -> Result<(), KernelError> {
        let [h, w] = self.input_hw;
        let in_len = self.batch * c_in * h * w;
        let out_len = self.batch * c_out * self.output_hw[0] * self.output_hw[1];
        if x.len() != in_len {
            return Err(invalid(format!(
                "input has {} elements, shape [{}, {c_in}, {h}, {w}] needs {in_len}",
                x.len(),
                self.batch
            )));
        }
        if y.len() != out_len {
            return Err(invalid(format!("output has {} elements, expected {out_len}", y.len())));
        }
        match (fused_residual, residual) {
            (true, Residual::Separate(r)) if r.len() != out_len => {
                Err(invalid(format!("residual has {} elements, expected {out_len}", r.len())))
            }
            (true, Residual::Separate(_) | Residual::InOutput) | (false, Residual::None) => Ok(()),
            (true, Residual::None) => Err(invalid("a fused residual needs input 3".into())),
            (false, _) => Err(invalid("input 3 is set but no residual is fused".into())),
        }
    }
}

impl Conv2dGemm {
    /// Pack `w` (`C_out x C_in/group x KH x KW`) for `kernel`. `b` is the optional bias
    /// (`C_out`), `slope` the PReLU slope when the epilogue's activation is PReLU (one value,
    /// or one per output channel shaped `[C_out, 1, 1]` or `[1, C_out, 1, 1]`).
    pub fn prepare(
        kernel: &'static dyn F32GemmMicrokernel,
        attrs: &ConvAttrs,
        w: &Tensor,
        b: Option<&Tensor>,
        slope: Option<&Tensor>,
    ) -> Result<Self, KernelError> {
        Self::prepare_as(kernel, attrs, w, b, slope, false)
    }

    /// Like [`prepare`](Self::prepare), for a pointwise conv (1x1 kernel, stride 1, no
    /// padding) to be run spatial-major: the output positions on the microkernel's `MR` side,
    /// for maps with few positions (see [`spatial_major_pays`]). Other convs are an error.
    pub fn prepare_spatial_major(
        kernel: &'static dyn F32GemmMicrokernel,
        attrs: &ConvAttrs,
        w: &Tensor,
        b: Option<&Tensor>,
        slope: Option<&Tensor>,
    ) -> Result<Self, KernelError> {
        Self::prepare_as(kernel, attrs, w, b, slope, true)
    }

    fn prepare_as(
        kernel: &'static dyn F32GemmMicrokernel,
        attrs: &ConvAttrs,
        w: &Tensor,
        b: Option<&Tensor>,
        slope: Option<&Tensor>,
        spatial_major: bool,
    ) -> Result<Self, KernelError> {
        let wv = w.view_in_place::<f32>().ok_or_else(|| unsupported(format!("weight has dtype {}", w.dtype())))?;
        let ws = wv.shape().to_vec();
        if ws.len() != 4 {
            return Err(unsupported(format!("weight shape {ws:?} is not 2-D (rank 4)")));
        }
        let group = attrs.group;
        let (c_out, cg) = (ws[0], ws[1]);
        if group == 0 || c_out % group != 0 {
            return Err(invalid(format!("{c_out} output channels are not divisible by group {group}")));
        }
        if let Some(k) = &attrs.kernel_shape
            && k.as_slice() != &ws[2..]
        {
            return Err(invalid(format!("kernel_shape {k:?} does not match weight shape {ws:?}")));
        }
        let w_data: Vec<f32> = match wv.as_slice() {
            Some(s) => s.to_vec(),
            None => wv.iter().copied().collect(),
        };
        let (mg, depth) = (c_out / group, cg * ws[2] * ws[3]);
        if spatial_major && !always_pointwise(attrs, &ws[2..]) {
            return Err(unsupported(format!(
                "spatial-major needs a 1x1 stride-1 unpadded conv, found kernel {:?}, strides {:?}, pads {:?}",
                &ws[2..],
                attrs.strides,
                attrs.pads
            )));
        }
        let groups = (0..group)
            .map(|g| w_data.get(g * mg * depth..(g + 1) * mg * depth).ok_or_else(|| invalid("weight is short".into())));
        let weights = if spatial_major {
            let packed = groups.map(|wg| PackedB::pack(kernel, MatRef::row_major(wg?, mg, depth)?.t()));
            PackedWeights::SpatialMajor(packed.collect::<Result<_, _>>()?)
        } else {
            let packed = groups.map(|wg| PackedA::pack(kernel, MatRef::row_major(wg?, mg, depth)?));
            PackedWeights::ChannelMajor(packed.collect::<Result<_, _>>()?)
        };
        let bias = crate::reference::conv::bias_values(OP, b, c_out)?;
        let slope = match (&attrs.epilogue.activation, slope) {
            (Activation::PRelu, Some(s)) => Some(per_channel_slope(s, c_out)?),
            (Activation::PRelu, None) => return Err(invalid("a fused PRelu needs its slope input".into())),
            _ => None,
        };
        Ok(Conv2dGemm {
            kernel,
            attrs: attrs.clone(),
            weights,
            bias,
            slope,
            c_in: cg * group,
            c_out,
            kernel_hw: [ws[2], ws[3]],
            unfold: ConvUnfold::Auto,
        })
    }

    /// Force how non-pointwise inputs are unfolded (for tests and benchmarks; the default,
    /// [`ConvUnfold::Auto`], picks by shape).
    pub fn set_unfold(&mut self, unfold: ConvUnfold) {
        self.unfold = unfold;
    }

    /// Whether the weights were packed for the spatial-major form
    /// ([`prepare_spatial_major`](Self::prepare_spatial_major)).
    pub fn is_spatial_major(&self) -> bool {
        matches!(self.weights, PackedWeights::SpatialMajor(_))
    }

    /// The microkernel the weights were packed for.
    pub fn microkernel(&self) -> &'static dyn F32GemmMicrokernel {
        self.kernel
    }

    /// The geometry for an input of shape `x_shape` (`N x C_in x H x W`).
    pub fn shape_for(&self, x_shape: &[usize]) -> Result<Conv2dShape, KernelError> {
        let &[batch, c, h, w] = x_shape else {
            return Err(invalid(format!("input shape {x_shape:?} is not N x C x H x W")));
        };
        if c != self.c_in {
            return Err(invalid(format!("input has {c} channels, the weight expects {}", self.c_in)));
        }
        let wins = self.attrs.windows(&[h, w], &self.kernel_hw).map_err(|e| invalid(e.to_string()))?;
        let [wh, ww] = wins.as_slice() else {
            return Err(invalid(format!("{} windows for a 2-D conv", wins.len())));
        };
        Ok(Conv2dShape { batch, input_hw: [h, w], output_hw: [wh.output, ww.output], windows: [*wh, *ww] })
    }

    /// Elements of scratch buffer [`run`](Self::run) needs for `shape`: the flat input and
    /// output of one group when the flat layout is used, else none (the input is used directly
    /// or unfolded into the GEMM's own packed blocks).
    pub fn scratch_len(&self, shape: &Conv2dShape) -> usize {
        if let PackedWeights::SpatialMajor(_) = self.weights {
            return shape.output_hw[0] * shape.output_hw[1] * (self.c_out / self.attrs.group);
        }
        match self.unfold_for(shape) {
            Unfold::Flat(l) => l.len(self.c_in / self.attrs.group) + self.c_out / self.attrs.group * l.cols,
            _ => 0,
        }
    }

    fn depth(&self) -> usize {
        self.c_in / self.attrs.group * self.kernel_hw[0] * self.kernel_hw[1]
    }

    fn is_pointwise(&self, s: &Conv2dShape) -> bool {
        s.windows.iter().all(|w| w.kernel == 1 && w.stride == 1 && w.pad_begin == 0 && w.output == w.input)
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
        let out_size = s.output_hw[0] * s.output_hw[1];
        s.check_buffers(self.c_in, self.c_out, self.attrs.epilogue.residual, x, residual, y)?;
        let group = self.attrs.group;
        let (cg, mg, depth) = (self.c_in / group, self.c_out / group, self.depth());
        let packed_a = match &self.weights {
            PackedWeights::ChannelMajor(p) => p,
            PackedWeights::SpatialMajor(p) => return self.run_spatial_major(p, x, &s, residual, y, scratch, threads),
        };
        let unfold = self.unfold_for(&s);
        if let Unfold::Flat(layout) = unfold {
            let need = layout.len(cg) + mg * layout.cols;
            if scratch.len() < need {
                scratch.resize(need, 0.0);
            }
        }
        let act = FastActivation::from_ir(&self.attrs.epilogue.activation, self.slope.as_deref())?;
        for n in 0..s.batch {
            for g in 0..group {
                let x_g = &x[(n * self.c_in + g * cg) * h * w..][..cg * h * w];
                let first = (n * self.c_out + g * mg) * out_size;
                let y_g = &mut y[first..first + mg * out_size];
                let group_residual = match residual {
                    Residual::Separate(r) => Residual::Separate(&r[first..first + mg * out_size]),
                    other => other,
                };
                let bias = self.bias.as_ref().map(|b| PerAxis::Row(&b[g * mg..(g + 1) * mg]));
                let packed = GemmInput::Packed(&packed_a[g]);
                if let Unfold::Flat(layout) = unfold {
                    // GEMM into the flat output (bias only), then compact with residual and
                    // activation.
                    let (buf, flat_y) = scratch.split_at_mut(layout.len(cg));
                    let flat_y = &mut flat_y[..mg * layout.cols];
                    layout.fill(x_g, cg, buf, threads);
                    let panels = FlatPanels::new(buf, layout, cg);
                    let ep = GemmEpilogue { bias, ..GemmEpilogue::default() };
                    let b_in = GemmInput::Source(&panels);
                    sgemm(self.kernel, mg, layout.cols, depth, packed, b_in, flat_y, layout.cols, &ep, threads)?;
                    let ow = s.output_hw[1];
                    let compact_channel = |m: usize, flat: &[f32], y_m: &mut [f32]| {
                        let (res, in_y) = match group_residual {
                            Residual::Separate(r) => (Some(&r[m * out_size..(m + 1) * out_size]), false),
                            Residual::InOutput => (None, true),
                            Residual::None => (None, false),
                        };
                        flat::compact(flat, layout.rs, ow, res, in_y, &act.channel(g * mg + m), y_m);
                    };
                    let rows = flat_y.chunks_exact(layout.cols).zip(y_g.chunks_exact_mut(out_size));
                    if threads > 1 {
                        let rows: Vec<_> = rows.enumerate().collect();
                        rows.into_par_iter()
                            .with_min_len(mg.div_ceil(threads))
                            .for_each(|(m, (flat, y_m))| compact_channel(m, flat, y_m));
                    } else {
                        rows.enumerate().for_each(|(m, (flat, y_m))| compact_channel(m, flat, y_m));
                    }
                    continue;
                }
                let implicit;
                let b_in = match unfold {
                    Unfold::Direct => GemmInput::Strided(MatRef::row_major(x_g, depth, out_size)?),
                    _ => {
                        implicit = Im2colPanels::new(x_g, cg, &s, self.kernel_hw)?;
                        GemmInput::Source(&implicit)
                    }
                };
                let ep = GemmEpilogue {
                    bias,
                    residual: group_residual,
                    activation: self.attrs.epilogue.activation,
                    prelu_slope: self.slope.as_ref().map(|sl| PerAxis::Row(&sl[g * mg..(g + 1) * mg])),
                };
                sgemm(self.kernel, mg, out_size, depth, packed, b_in, y_g, out_size, &ep, threads)?;
            }
        }
        Ok(())
    }

    /// [`run`](Self::run) for weights packed spatial-major: per batch item and group,
    /// `Yᵀ = Xᵀ · Wᵀ` into `scratch` (bias fused, and the activation too unless a residual
    /// must come first), then scattered channel-major into `y`.
    #[allow(clippy::too_many_arguments)]
    fn run_spatial_major(
        &self,
        packed_b: &[PackedB],
        x: &[f32],
        s: &Conv2dShape,
        residual: Residual<'_>,
        y: &mut [f32],
        scratch: &mut Vec<f32>,
        threads: usize,
    ) -> Result<(), KernelError> {
        if !self.is_pointwise(s) {
            return Err(invalid(format!("a spatial-major conv got a non-pointwise geometry {:?}", s.windows)));
        }
        let group = self.attrs.group;
        let (cg, mg) = (self.c_in / group, self.c_out / group);
        let positions = s.output_hw[0] * s.output_hw[1];
        if scratch.len() < positions * mg {
            scratch.resize(positions * mg, 0.0);
        }
        let ct = &mut scratch[..positions * mg];
        let act = FastActivation::from_ir(&self.attrs.epilogue.activation, self.slope.as_deref())?;
        for n in 0..s.batch {
            for g in 0..group {
                let x_g = &x[(n * self.c_in + g * cg) * positions..][..cg * positions];
                let first = (n * self.c_out + g * mg) * positions;
                let y_g = &mut y[first..first + mg * positions];
                let channels = g * mg..(g + 1) * mg;
                let separate = match residual {
                    Residual::Separate(r) => Some(&r[first..first + mg * positions]),
                    _ => None,
                };
                let has_residual = !matches!(residual, Residual::None);
                let ep = GemmEpilogue {
                    bias: self.bias.as_ref().map(|b| PerAxis::Col(&b[channels.clone()])),
                    residual: Residual::None,
                    activation: if has_residual { Activation::None } else { self.attrs.epilogue.activation },
                    prelu_slope: match (&self.slope, has_residual) {
                        (Some(sl), false) => Some(PerAxis::Col(&sl[channels.clone()])),
                        _ => None,
                    },
                };
                // Xᵀ: row `i` (a position) reads column `i` of the channel-major `x_g`.
                let a = GemmInput::Strided(MatRef::new(x_g, positions, cg, 1, positions)?);
                let b = GemmInput::Packed(&packed_b[g]);
                sgemm(self.kernel, positions, mg, cg, a, b, ct, mg, &ep, threads)?;
                let finish = has_residual.then_some(spatial_major::Finish {
                    residual: separate,
                    residual_in_y: matches!(residual, Residual::InOutput),
                    act: &act,
                    first_channel: g * mg,
                });
                spatial_major::scatter(ct, positions, mg, finish.as_ref(), y_g, threads);
            }
        }
        Ok(())
    }

    /// How the input becomes the GEMM's `B` for `s`: directly (1x1 stride-1 unpadded), through
    /// the flat phase-plane layout (when its junk columns cost at most 15% more panels), or by
    /// implicit im2col.
    fn unfold_for(&self, s: &Conv2dShape) -> Unfold {
        if self.is_pointwise(s) {
            return Unfold::Direct;
        }
        let layout = FlatLayout::new(s, self.kernel_hw);
        match self.unfold {
            ConvUnfold::Flat => return Unfold::Flat(layout),
            ConvUnfold::Implicit => return Unfold::Implicit,
            ConvUnfold::Auto => {}
        }
        let nr = self.kernel.nr().max(1);
        let (flat_panels, panels) = (layout.cols.div_ceil(nr), (s.output_hw[0] * s.output_hw[1]).div_ceil(nr));
        if flat_panels * 100 <= panels * 115 { Unfold::Flat(layout) } else { Unfold::Implicit }
    }
}

/// How a conv's input is unfolded into the GEMM's `B` operand.
#[derive(Clone, Copy, Debug)]
enum Unfold {
    /// The input is `B` (1x1, stride 1, no padding).
    Direct,
    /// The flat phase-plane layout ([`flat`]).
    Flat(FlatLayout),
    /// Implicit im2col ([`Im2colPanels`]).
    Implicit,
}

/// One group's input (`C x H x W`) seen as its unfolded `C*KH*KW x OH*OW` matrix (the
/// [`im2col_nchw`] layout) without materializing it: [`PanelSource::pack`] writes the requested
/// block straight into the GEMM's packed panels.
pub struct Im2colPanels<'a> {
    x: &'a [f32],
    channels: usize,
    shape: Conv2dShape,
    kernel_hw: [usize; 2],
}

impl<'a> Im2colPanels<'a> {
    /// The unfolded view of `x` (`channels x H x W`, `H x W` from `shape`) for a
    /// `kernel_hw` window; `x` must hold exactly that many values.
    pub fn new(x: &'a [f32], channels: usize, shape: &Conv2dShape, kernel_hw: [usize; 2]) -> Result<Self, KernelError> {
        let [h, w] = shape.input_hw;
        let need = channels.checked_mul(h).and_then(|v| v.checked_mul(w));
        if need != Some(x.len()) {
            return Err(invalid(format!("input has {} values, {channels} x {h} x {w} expected", x.len())));
        }
        if shape.windows[0].kernel != kernel_hw[0] || shape.windows[1].kernel != kernel_hw[1] {
            return Err(invalid(format!("windows {:?} are not for a {kernel_hw:?} kernel", shape.windows)));
        }
        Ok(Im2colPanels { x, channels, shape: *shape, kernel_hw })
    }
}

impl PanelSource for Im2colPanels<'_> {
    fn depth(&self) -> usize {
        self.channels * self.kernel_hw[0] * self.kernel_hw[1]
    }

    fn cols(&self) -> usize {
        self.shape.output_hw[0] * self.shape.output_hw[1]
    }

    fn pack(&self, d0: usize, depth: usize, c0: usize, cols: usize, nr: usize, dst: &mut [f32]) {
        let [h, w] = self.shape.input_hw;
        let ow = self.shape.output_hw[1];
        let [wh, ww] = self.shape.windows;
        let [kh, kw] = self.kernel_hw;
        for (q, panel) in dst.chunks_exact_mut(nr * depth.max(1)).take(cols.div_ceil(nr)).enumerate() {
            let j0 = c0 + q * nr;
            let live = nr.min(c0 + cols - j0);
            for (p, out) in panel.chunks_exact_mut(nr).take(depth).enumerate() {
                let r = d0 + p;
                let (c, ky, kx) = (r / (kh * kw), r / kw % kh, r % kw);
                let plane = &self.x[c * h * w..(c + 1) * h * w];
                // Output columns whose tap lands inside the input row: ox in [lo, hi).
                let off_x = kx * ww.dilation;
                let lo = ww.pad_begin.saturating_sub(off_x).div_ceil(ww.stride);
                let hi = (w + ww.pad_begin).saturating_sub(off_x).div_ceil(ww.stride).min(ow);
                out[live..].fill(0.0);
                let (mut j, mut o) = (j0, 0);
                while o < live {
                    let (oy, ox0) = (j / ow, j % ow);
                    let len = (ow - ox0).min(live - o);
                    let seg = &mut out[o..o + len];
                    let iy = (oy * wh.stride + ky * wh.dilation).checked_sub(wh.pad_begin).filter(|&i| i < h);
                    // Valid outputs of this segment: ox in [a, b), the rest is padding.
                    let (a, b) = (ox0.max(lo), (ox0 + len).min(hi));
                    match iy {
                        Some(iy) if a < b => {
                            seg[..a - ox0].fill(0.0);
                            seg[b - ox0..].fill(0.0);
                            let src = &plane[iy * w..(iy + 1) * w];
                            let first = a * ww.stride + off_x - ww.pad_begin;
                            let dst = &mut seg[a - ox0..b - ox0];
                            if ww.stride == 1 {
                                crate::gemm::copy_short(dst, &src[first..first + (b - a)]);
                            } else {
                                for (d, v) in dst.iter_mut().zip(src[first..].iter().step_by(ww.stride)) {
                                    *d = *v;
                                }
                            }
                        }
                        _ => seg.fill(0.0),
                    }
                    j += len;
                    o += len;
                }
            }
        }
    }
}

/// Unfold one group's input `x` (`C x H x W`) into `cols` (`C*KH*KW x OH*OW`, row-major):
/// row `(c, ky, kx)` holds, for every output position, the input value that tap reads (zero
/// in the padding). `cols` must hold exactly that many elements.
pub fn im2col_nchw(x: &[f32], channels: usize, s: &Conv2dShape, kernel_hw: [usize; 2], cols: &mut [f32]) {
    let [h, w] = s.input_hw;
    let [oh, ow] = s.output_hw;
    let [wh, ww] = s.windows;
    let mut rows = cols.chunks_exact_mut(oh * ow);
    for c in 0..channels {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for ky in 0..kernel_hw[0] {
            for kx in 0..kernel_hw[1] {
                let Some(row) = rows.next() else { return };
                // Output columns whose tap lands inside the input: ox in [lo, hi).
                let off_x = kx * ww.dilation;
                let lo = ww.pad_begin.saturating_sub(off_x).div_ceil(ww.stride);
                let hi = (w + ww.pad_begin).saturating_sub(off_x).div_ceil(ww.stride).min(ow);
                for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
                    let iy = (oy * wh.stride + ky * wh.dilation).checked_sub(wh.pad_begin).filter(|&i| i < h);
                    let Some(iy) = iy else {
                        out.fill(0.0);
                        continue;
                    };
                    let src = &plane[iy * w..(iy + 1) * w];
                    if lo >= hi {
                        out.fill(0.0);
                        continue;
                    }
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    let first = lo * ww.stride + off_x - ww.pad_begin;
                    if ww.stride == 1 {
                        out[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
                    } else {
                        for (o, v) in out[lo..hi].iter_mut().zip(src[first..].iter().step_by(ww.stride)) {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// A Conv's PReLU slope as one value per output channel: one value for all, or `c_out` values
/// shaped `[c_out, 1, 1]` or `[1, c_out, 1, 1]`; any other shape is unsupported by the fast
/// conv paths.
pub fn per_channel_slope(s: &Tensor, c_out: usize) -> Result<Vec<f32>, KernelError> {
    let v = s.view_in_place::<f32>().ok_or_else(|| unsupported(format!("PRelu slope has dtype {}", s.dtype())))?;
    let values: Vec<f32> = v.iter().copied().collect();
    let shape = v.shape();
    let channel_shaped = matches!(shape, [c, 1, 1] | [1, c, 1, 1] if *c == c_out);
    match values.len() {
        1 => Ok(vec![values[0]; c_out]),
        n if n == c_out && channel_shaped => Ok(values),
        _ => Err(unsupported(format!("PRelu slope of shape {shape:?} is not per channel"))),
    }
}

/// Whether a conv with these attributes and kernel size is pointwise (1x1, stride 1, no
/// padding) for every input size.
fn always_pointwise(attrs: &ConvAttrs, kernel_hw: &[usize]) -> bool {
    use lithe_ir::op::AutoPad;
    kernel_hw.iter().all(|&k| k == 1)
        && attrs.strides.iter().all(|&s| s == 1)
        && (attrs.auto_pad != AutoPad::NotSet || attrs.pads.iter().all(|&p| p == 0))
}

fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: OP, detail }
}

fn unsupported(detail: String) -> KernelError {
    KernelError::Unsupported { op: OP, detail }
}
