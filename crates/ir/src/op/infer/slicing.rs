//! Rules of the operators whose output sizes come from parameter inputs: Slice, Pad and
//! Resize.

use super::common::{Args, axes_list, int_values, one, same_dtype, show, to_i64, to_size, unknown_dims, vector_len};
use crate::op::{CoordTransform, ResizeAttrs};
use crate::{DType, Dim, IrError, Shape, TypeInfo};

/// Slice bounds at or beyond this magnitude mean "to the end": symbolic dims are assumed
/// smaller, so a full-range slice keeps a symbolic dim.
const OPEN_BOUND: i64 = i32::MAX as i64;

/// The length of one sliced axis (ONNX clamping rules).
fn slice_dim(op: &str, d: &Dim, start: i64, end: i64, step: i64) -> Result<Dim, IrError> {
    if step == 0 {
        return Err(IrError::Attribute(format!("{op}: steps must be non-zero")));
    }
    let Dim::Known(n) = d else {
        let full = if step == 1 {
            (start == 0 || start <= -OPEN_BOUND) && end >= OPEN_BOUND
        } else if step == -1 {
            (start == -1 || start >= OPEN_BOUND) && end < -OPEN_BOUND
        } else {
            false
        };
        return Ok(if full { d.clone() } else { Dim::Unknown });
    };
    let n = to_i64(op, *n)?;
    let resolve = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
    let (s, e) = (resolve(start), resolve(end));
    let len = if step > 0 {
        let (s, e) = (s.clamp(0, n), e.clamp(0, n));
        if e > s { (e - s - 1) as u64 / step as u64 + 1 } else { 0 }
    } else {
        let (s, e) = (s.clamp(0, (n - 1).max(0)), e.clamp(-1, n - 1));
        if n > 0 && s > e { (s - e - 1) as u64 / step.unsigned_abs() + 1 } else { 0 }
    };
    Ok(Dim::Known(len as usize))
}

/// Slice: data, starts, ends, axes?, steps?.
pub(super) fn slice(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let starts = a.req(1, "starts")?;
    let ends = a.req(2, "ends")?;
    let axes = a.opt(3);
    let steps = a.opt(4);
    let dtype = x.info.dtype;
    same_dtype(a.op, "starts", &starts, "ends", &ends)?;
    for (i, what) in [(&axes, "axes"), (&steps, "steps")] {
        if let Some(i) = i {
            same_dtype(a.op, "starts", &starts, what, i)?;
        }
    }
    let sv = int_values(a.op, "starts", &starts)?;
    let ev = int_values(a.op, "ends", &ends)?;
    let av = match &axes {
        Some(i) => Some(int_values(a.op, "axes", i)?),
        None => None,
    };
    let pv = match &steps {
        Some(i) => Some(int_values(a.op, "steps", i)?),
        None => None,
    };
    let Some(s) = &x.info.shape else { return Ok(one(dtype, None)) };
    let rank = s.rank();
    // Number of sliced axes, when known.
    let count = [Some(&starts), Some(&ends), axes.as_ref(), steps.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(vector_len)
        .collect::<Vec<_>>();
    if count.windows(2).any(|w| w[0] != w[1]) {
        return Err(IrError::Shape(format!(
            "Slice of {s}: starts, ends, axes and steps have different lengths {count:?}"
        )));
    }
    let axes: Option<Vec<usize>> = match av {
        Some(None) => None,
        Some(Some(v)) => Some(axes_list(a.op, &v, rank)?),
        None => count.first().map(|&k| (0..k).collect()),
    };
    if let Some(ax) = &axes
        && (ax.len() > rank || ax.iter().any(|&i| i >= rank))
    {
        return Err(IrError::Shape(format!("Slice of {s}: {} axes for rank {rank}", ax.len())));
    }
    let (Some(axes), Some(sv), Some(ev), Some(pv)) = (
        axes,
        sv,
        ev,
        match pv {
            Some(p) => p,
            None => count.first().map(|&k| vec![1; k]),
        },
    ) else {
        // Something is not constant: sliced axes (all, if unknown) lose their sizes.
        let dims = match av_axes(a, rank)? {
            Some(ax) => {
                s.0.iter().enumerate().map(|(i, d)| if ax.contains(&i) { Dim::Unknown } else { d.clone() }).collect()
            }
            None => unknown_dims(rank).0,
        };
        return Ok(one(dtype, Some(Shape(dims))));
    };
    let mut dims = s.0.clone();
    for (k, &ax) in axes.iter().enumerate() {
        let (Some(&st), Some(&en), Some(&sp)) = (sv.get(k), ev.get(k), pv.get(k)) else {
            return Err(IrError::Shape(format!("Slice of {s}: starts, ends and steps are too short")));
        };
        dims[ax] = slice_dim(a.op, &s.0[ax], st, en, sp)?;
    }
    Ok(one(dtype, Some(Shape(dims))))
}

/// The sliced axes when they are known without the other parameters.
fn av_axes(a: &Args, rank: usize) -> Result<Option<Vec<usize>>, IrError> {
    match a.opt(3) {
        Some(i) => match int_values(a.op, "axes", &i)? {
            Some(v) => Ok(Some(axes_list(a.op, &v, rank)?)),
            None => Ok(None),
        },
        None => Ok([a.opt(1), a.opt(2)].into_iter().flatten().find_map(|i| vector_len(&i)).map(|k| (0..k).collect())),
    }
}

/// Pad: data, pads (begins then ends, may be negative), constant_value?, axes?.
pub(super) fn pad(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let pads = a.req(1, "pads")?;
    let dtype = x.info.dtype;
    if let Some(cv) = a.opt_nonempty(2) {
        same_dtype(a.op, "data", &x, "constant_value", &cv)?;
    }
    let pv = int_values(a.op, "pads", &pads)?;
    let Some(s) = &x.info.shape else { return Ok(one(dtype, None)) };
    let rank = s.rank();
    let axes: Option<Vec<usize>> = match a.opt(3) {
        Some(i) => int_values(a.op, "axes", &i)?.map(|v| axes_list(a.op, &v, rank)).transpose()?,
        None => Some((0..rank).collect()),
    };
    let Some(axes) = axes else { return Ok(one(dtype, Some(unknown_dims(rank)))) };
    let Some(pv) = pv else {
        let dims = s.0.iter().enumerate().map(|(i, d)| if axes.contains(&i) { Dim::Unknown } else { d.clone() });
        return Ok(one(dtype, Some(Shape(dims.collect()))));
    };
    let n = axes.len();
    if pv.len() != 2 * n {
        return Err(IrError::Shape(format!("Pad of {s}: pads {pv:?} must have {} entries", 2 * n)));
    }
    let mut dims = s.0.clone();
    for (k, &ax) in axes.iter().enumerate() {
        let (pb, pe) = (pv[k], pv[k + n]);
        dims[ax] = match &s.0[ax] {
            Dim::Known(d) => {
                let v =
                    to_i64(a.op, *d)?.checked_add(pb).and_then(|v| v.checked_add(pe)).filter(|v| *v >= 0).ok_or_else(
                        || IrError::Shape(format!("Pad of {s}: pads {pv:?} give a negative size on axis {ax}")),
                    )?;
                Dim::Known(to_size(a.op, "padded size", v)?)
            }
            d if pb == 0 && pe == 0 => d.clone(),
            _ => Dim::Unknown,
        };
    }
    Ok(one(dtype, Some(Shape(dims))))
}

/// Resize: X, roi?, scales?, sizes? (exactly one of scales and sizes).
pub(super) fn resize(a: &Args, r: &ResizeAttrs) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let dtype = x.info.dtype;
    let scales = a.opt_nonempty(2);
    let sizes = a.opt_nonempty(3);
    let xs = x.info.shape.as_ref();
    match (&scales, &sizes) {
        (Some(_), Some(_)) => {
            return Err(IrError::Attribute(format!("Resize of {}: give scales or sizes, not both", show(xs))));
        }
        (None, None) => {
            return Err(IrError::MissingInput { slot: 2, what: "scales or sizes" });
        }
        _ => {}
    }
    if let Some(si) = &sizes {
        let Some(v) = int_values(a.op, "sizes", si)? else {
            let rank = xs.map(Shape::rank).or_else(|| vector_len(si));
            return Ok(one(dtype, rank.map(unknown_dims)));
        };
        if let Some(s) = xs
            && v.len() != s.rank()
        {
            return Err(IrError::Shape(format!("Resize of {s}: sizes {v:?} must have {} entries", s.rank())));
        }
        let mut dims = Vec::with_capacity(v.len());
        for &d in &v {
            dims.push(Dim::Known(to_size(a.op, "size", d)?));
        }
        return Ok(one(dtype, Some(Shape(dims))));
    }
    let Some(s) = xs else { return Ok(one(dtype, None)) };
    let Some(sc) = scales else { return Ok(one(dtype, Some(unknown_dims(s.rank())))) };
    if !sc.info.dtype.is_float() {
        return Err(IrError::DType { what: "Resize input scales".into(), expected: DType::F32, found: sc.info.dtype });
    }
    let Some(sv) = sc.value.map(|t| t.to_f32_vec()) else {
        return Ok(one(dtype, Some(unknown_dims(s.rank()))));
    };
    if sv.len() != s.rank() {
        return Err(IrError::Shape(format!("Resize of {s}: scales {sv:?} must have {} entries", s.rank())));
    }
    if sv.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return Err(IrError::Shape(format!("Resize of {s}: scales {sv:?} must be positive")));
    }
    // tf_crop_and_resize scales the roi extent, not the whole input.
    let roi = match (r.coord, a.opt_nonempty(1).and_then(|i| i.value)) {
        (CoordTransform::TfCropAndResize, Some(t)) => {
            let v = t.to_f32_vec();
            if v.len() != 2 * s.rank() {
                return Err(IrError::Shape(format!("Resize of {s}: roi {v:?} must have {} entries", 2 * s.rank())));
            }
            Some(v)
        }
        _ => None,
    };
    let mut dims = Vec::with_capacity(s.rank());
    for (i, (d, &scale)) in s.0.iter().zip(&sv).enumerate() {
        let extent = roi.as_ref().map_or(1.0, |r| r[i + s.rank()] - r[i]);
        dims.push(match d {
            Dim::Known(n) => {
                let v = (*n as f32 * extent * scale).floor();
                if !v.is_finite() || v < 0.0 || v > i64::MAX as f32 {
                    return Err(IrError::Shape(format!("Resize of {s}: scale {scale} gives size {v} on axis {i}")));
                }
                Dim::Known(v as usize)
            }
            d if scale == 1.0 && extent == 1.0 => d.clone(),
            _ => Dim::Unknown,
        });
    }
    Ok(one(dtype, Some(Shape(dims))))
}
