//! Resize (opsets 10, 11, 13, 18, 19) and Upsample (opsets 7, 9), both imported as
//! [`Op::Resize`].

use crate::OnnxError;
use crate::context::NodeCtx;
use crate::registry::Registry;
use lithe_ir::op::{CoordTransform, NearestMode, ResizeAttrs, ResizeMode};
use lithe_ir::{Op, Outlet, Tensor};

pub(crate) fn register(r: &mut Registry) {
    r.add("Resize", resize);
    r.add("Upsample", upsample);
}

fn parse_mode(ctx: &NodeCtx<'_>, legacy: bool) -> Result<ResizeMode, OnnxError> {
    let m = ctx.string_or("mode", "nearest")?;
    match m.as_str() {
        "nearest" => Ok(ResizeMode::Nearest),
        "linear" => Ok(ResizeMode::Linear),
        "bilinear" if legacy => Ok(ResizeMode::Linear),
        "cubic" if !legacy => Ok(ResizeMode::Cubic),
        _ => Err(ctx.err(format!("unsupported mode '{m}'"))),
    }
}

fn legacy_attrs(mode: ResizeMode, nearest: NearestMode) -> ResizeAttrs {
    ResizeAttrs {
        mode,
        coord: CoordTransform::Asymmetric,
        nearest,
        cubic_coeff_a: -0.75,
        extrapolation_value: 0.0,
        exclude_outside: false,
    }
}

/// Rounding of Upsample and Resize-10 in nearest mode, as onnxruntime does it: floor on axes
/// that upsample, ceil on axes that downsample.
fn legacy_nearest(ctx: &NodeCtx<'_>, scales: Option<&Tensor>) -> Result<NearestMode, OnnxError> {
    let Some(s) = scales else {
        tracing::warn!(node = %ctx.name, "scales are not constant; assuming upsampling (floor rounding)");
        return Ok(NearestMode::Floor);
    };
    let v = s.to_f32_vec();
    let up = v.iter().any(|&x| x > 1.0);
    let down = v.iter().any(|&x| x < 1.0);
    match (up, down) {
        (true, true) => Err(ctx.err(format!(
            "nearest resize that upsamples some axes and downsamples others (scales {v:?}) is not supported"
        ))),
        (false, true) => Ok(NearestMode::Ceil),
        _ => Ok(NearestMode::Floor),
    }
}

fn emit_legacy(ctx: &mut NodeCtx<'_>, legacy_mode: bool, scales: Outlet) -> Result<(), OnnxError> {
    let mode = parse_mode(ctx, legacy_mode)?;
    let nearest = legacy_nearest(ctx, ctx.b.graph.const_value(scales))?;
    let x = ctx.input(0)?;
    ctx.emit(Op::Resize(legacy_attrs(mode, nearest)), &[Some(x), None, Some(scales), None])
}

/// Upsample: scales as an attribute (opset 7) or input (opset 9), asymmetric coordinates.
fn upsample(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    if ctx.opset < 7 {
        return Err(ctx.err("Upsample before opset 7 (height_scale/width_scale) is not supported"));
    }
    let scales = if ctx.opset < 9 {
        let s = ctx.floats("scales")?.ok_or_else(|| ctx.err("attribute 'scales' is required"))?;
        let t = Tensor::from_vec(&[s.len()], s)?;
        ctx.constant("scales", t)
    } else {
        ctx.input(1)?
    };
    emit_legacy(ctx, true, scales)
}

fn parse_coord(ctx: &NodeCtx<'_>) -> Result<CoordTransform, OnnxError> {
    let c = ctx.string_or("coordinate_transformation_mode", "half_pixel")?;
    match c.as_str() {
        "half_pixel" => Ok(CoordTransform::HalfPixel),
        "pytorch_half_pixel" => Ok(CoordTransform::PytorchHalfPixel),
        "align_corners" => Ok(CoordTransform::AlignCorners),
        "asymmetric" => Ok(CoordTransform::Asymmetric),
        "tf_crop_and_resize" => Ok(CoordTransform::TfCropAndResize),
        "half_pixel_symmetric" => Ok(CoordTransform::HalfPixelSymmetric),
        _ => Err(ctx.err(format!("unsupported coordinate_transformation_mode '{c}'"))),
    }
}

fn parse_nearest(ctx: &NodeCtx<'_>) -> Result<NearestMode, OnnxError> {
    let n = ctx.string_or("nearest_mode", "round_prefer_floor")?;
    match n.as_str() {
        "round_prefer_floor" => Ok(NearestMode::RoundPreferFloor),
        "round_prefer_ceil" => Ok(NearestMode::RoundPreferCeil),
        "floor" => Ok(NearestMode::Floor),
        "ceil" => Ok(NearestMode::Ceil),
        _ => Err(ctx.err(format!("unknown nearest_mode '{n}'"))),
    }
}

/// Input `i`, treating an empty constant (the opset 11-12 way to skip it) as absent.
fn non_empty_input(ctx: &NodeCtx<'_>, i: usize) -> Option<Outlet> {
    let o = ctx.opt_input(i)?;
    match ctx.const_input(i) {
        Some(t) if t.is_empty() => None,
        _ => Some(o),
    }
}

fn resize(ctx: &mut NodeCtx<'_>) -> Result<(), OnnxError> {
    if ctx.opset < 11 {
        let scales = ctx.input(1)?;
        return emit_legacy(ctx, false, scales);
    }
    let attrs = ResizeAttrs {
        mode: parse_mode(ctx, false)?,
        coord: parse_coord(ctx)?,
        nearest: parse_nearest(ctx)?,
        cubic_coeff_a: ctx.float_or("cubic_coeff_a", -0.75)?,
        extrapolation_value: ctx.float_or("extrapolation_value", 0.0)?,
        exclude_outside: ctx.flag("exclude_outside", false)?,
    };
    let x = ctx.input(0)?;
    let mut roi = non_empty_input(ctx, 1);
    let mut scales = non_empty_input(ctx, 2);
    let mut sizes = non_empty_input(ctx, 3);
    match (scales.is_some(), sizes.is_some()) {
        (true, true) => return Err(ctx.err("only one of 'scales' and 'sizes' may be given")),
        (false, false) => return Err(ctx.err("one of 'scales' and 'sizes' is required")),
        _ => {}
    }
    if attrs.coord != CoordTransform::TfCropAndResize {
        // The roi only matters for tf_crop_and_resize.
        roi = None;
    }
    if ctx.opset >= 18 {
        if ctx.flag("antialias", false)? {
            return Err(ctx.err("antialias=1 is not supported"));
        }
        let axes = expand_axes(ctx, x, &mut roi, &mut scales, &mut sizes)?;
        let policy = ctx.string_or("keep_aspect_ratio_policy", "stretch")?;
        if policy != "stretch"
            && let Some(s) = sizes
        {
            sizes = Some(keep_aspect_ratio(ctx, s, &policy, &axes)?);
        }
    }
    ctx.emit(Op::Resize(attrs), &[Some(x), roi, scales, sizes])
}

/// Opset 18 `axes`: widen roi/scales/sizes given for some axes to every axis. Returns the axes
/// the parameters were given for (every axis when `axes` is absent).
fn expand_axes(
    ctx: &mut NodeCtx<'_>,
    x: Outlet,
    roi: &mut Option<Outlet>,
    scales: &mut Option<Outlet>,
    sizes: &mut Option<Outlet>,
) -> Result<Vec<usize>, OnnxError> {
    let rank = ctx.input_rank(0);
    let Some(axes) = ctx.ints("axes")? else {
        return Ok((0..rank.unwrap_or(0)).collect());
    };
    let rank = rank.ok_or_else(|| ctx.err("'axes' needs the input's rank to be known"))?;
    let mut norm = Vec::with_capacity(axes.len());
    for &a in &axes {
        let n = lithe_ir::op::normalize_axis(a, rank).map_err(|e| ctx.err(e.to_string()))?;
        if norm.contains(&n) {
            return Err(ctx.err(format!("axes {axes:?} repeat an axis")));
        }
        norm.push(n);
    }
    if norm == (0..rank).collect::<Vec<_>>() {
        return Ok(norm);
    }
    let w = Widen { x, axes: &norm, rank };
    if let Some(s) = *scales {
        *scales = Some(w.apply(ctx, s, "scales", Fill::Values([1.0, 1.0]), 1)?);
    }
    if let Some(s) = *sizes {
        *sizes = Some(w.apply(ctx, s, "sizes", Fill::InputDims, 1)?);
    }
    if let Some(r) = *roi {
        *roi = Some(w.apply(ctx, r, "roi", Fill::Values([0.0, 1.0]), 2)?);
    }
    Ok(norm)
}

/// What an axis not listed in `axes` gets.
#[derive(Clone, Copy)]
enum Fill {
    /// A value per part (roi: 0 for starts, 1 for ends; scales: 1).
    Values([f32; 2]),
    /// The input's size on that axis (sizes).
    InputDims,
}

/// Widening of per-axis Resize parameters to every axis.
struct Widen<'a> {
    x: Outlet,
    axes: &'a [usize],
    rank: usize,
}

impl Widen<'_> {
    /// Widen `o` (`per_axis` groups of one value per listed axis): a constant when `o` and the
    /// fill are known now, else a Concat of slices of `o` and fill values (folded later when
    /// possible).
    fn apply(
        &self,
        ctx: &mut NodeCtx<'_>,
        o: Outlet,
        what: &str,
        fill: Fill,
        per_axis: usize,
    ) -> Result<Outlet, OnnxError> {
        let n = self.axes.len();
        let dtype = ctx.b.graph.value(o).ty.dtype;
        if let Some(t) = ctx.b.graph.const_value(o) {
            if t.len() != n * per_axis {
                return Err(ctx.err(format!("'{what}' has {} entries for {n} axes", t.len())));
            }
            if let Some(full) = self.constant(ctx, t, fill, per_axis) {
                let full = full?;
                return Ok(ctx.constant(what, full));
            }
        }
        let mut pieces = Vec::with_capacity(self.rank * per_axis);
        for part in 0..per_axis {
            for d in 0..self.rank {
                let piece = match self.axes.iter().position(|&a| a == d) {
                    Some(k) => {
                        let i = (part * n + k) as i64;
                        let starts = ctx.const_i64(&format!("{what}_start"), &[i])?;
                        let ends = ctx.const_i64(&format!("{what}_end"), &[i + 1])?;
                        ctx.intermediate(&format!("{what}_part"), Op::Slice, &[Some(o), Some(starts), Some(ends)])?
                    }
                    None => match fill {
                        Fill::Values(v) => {
                            let t = Tensor::from_vec(&[1], vec![v[part.min(1)]])?.cast(dtype);
                            ctx.constant(&format!("{what}_fill"), t)
                        }
                        Fill::InputDims => {
                            let shape = Op::Shape { start: d as i64, end: Some(d as i64 + 1) };
                            ctx.intermediate(&format!("{what}_dim"), shape, &[Some(self.x)])?
                        }
                    },
                };
                pieces.push(Some(piece));
            }
        }
        ctx.intermediate(what, Op::Concat { axis: 0 }, &pieces)
    }

    /// The widened constant, or `None` when a fill value (an input dim) is not known yet.
    fn constant(
        &self,
        ctx: &NodeCtx<'_>,
        t: &Tensor,
        fill: Fill,
        per_axis: usize,
    ) -> Option<Result<Tensor, OnnxError>> {
        let n = self.axes.len();
        let dims = ctx.input_type(0).and_then(|ty| ty.shape.clone());
        let v: Vec<f64> = if t.dtype().is_float() {
            t.to_f32_vec().into_iter().map(f64::from).collect()
        } else {
            t.to_i64_vec().into_iter().map(|x| x as f64).collect()
        };
        let mut full = Vec::with_capacity(self.rank * per_axis);
        for part in 0..per_axis {
            for d in 0..self.rank {
                full.push(match self.axes.iter().position(|&a| a == d) {
                    Some(k) => *v.get(part * n + k)?,
                    None => match fill {
                        Fill::Values(f) => f64::from(f[part.min(1)]),
                        Fill::InputDims => dims.as_ref()?.dims().get(d)?.known()? as f64,
                    },
                });
            }
        }
        let shape = [full.len()];
        let r = if t.dtype().is_float() {
            Tensor::from_vec(&shape, full.iter().map(|&x| x as f32).collect()).map(|f| f.cast(t.dtype()))
        } else {
            Tensor::from_vec(&shape, full.iter().map(|&x| x as i64).collect())
        };
        Some(r.map_err(OnnxError::from))
    }
}

/// Opset 18 `keep_aspect_ratio_policy`: one scale for the resized axes, from the constant sizes.
fn keep_aspect_ratio(ctx: &mut NodeCtx<'_>, sizes: Outlet, policy: &str, axes: &[usize]) -> Result<Outlet, OnnxError> {
    let not_larger = match policy {
        "not_larger" => true,
        "not_smaller" => false,
        _ => return Err(ctx.err(format!("unknown keep_aspect_ratio_policy '{policy}'"))),
    };
    let requested = ctx
        .b
        .graph
        .const_value(sizes)
        .map(Tensor::to_i64_vec)
        .ok_or_else(|| ctx.err("keep_aspect_ratio_policy with non-constant sizes is not supported"))?;
    let dims = ctx
        .input_type(0)
        .and_then(|t| t.shape.as_ref())
        .and_then(|s| s.as_known())
        .ok_or_else(|| ctx.err("keep_aspect_ratio_policy needs the input shape to be known"))?;
    if requested.len() != dims.len() {
        return Err(ctx.err(format!("sizes {requested:?} do not match input rank {}", dims.len())));
    }
    let mut scale: Option<f64> = None;
    for &a in axes {
        let (Some(&want), Some(&have)) = (requested.get(a), dims.get(a)) else { continue };
        if have == 0 {
            continue;
        }
        let s = want as f64 / have as f64;
        scale = Some(match scale {
            None => s,
            Some(c) if not_larger => c.min(s),
            Some(c) => c.max(s),
        });
    }
    let scale = scale.unwrap_or(1.0);
    let out: Vec<i64> = dims
        .iter()
        .enumerate()
        .map(|(d, &n)| if axes.contains(&d) { (scale * n as f64 + 0.5).floor() as i64 } else { n as i64 })
        .collect();
    let t = Tensor::from_vec(&[out.len()], out)?;
    Ok(ctx.constant("sizes", t))
}
