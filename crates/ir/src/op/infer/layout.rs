//! Rules of the operators that rearrange or generate data without arithmetic on it:
//! Concat, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Split, Gather, Shape, Expand,
//! ConstantOfShape and Range.

use super::common::{
    Args, axes_list, axis, broadcast_shapes, checked_count, dim_at, dim_product, int_values, is_empty_input, merge_dim,
    not_single, one, same_dtype, show, to_i64, to_size, unknown_dims, vector_len,
};
use crate::{DType, Dim, IrError, Shape, Tensor, TypeInfo};

/// Concat along `axis`: other dims must agree; the axis dims add up.
pub(super) fn concat(a: &Args, ax: i64) -> Result<Vec<TypeInfo>, IrError> {
    let first = a.req(0, "inputs")?;
    let mut known: Vec<&Shape> = Vec::new();
    for slot in 0..a.inputs.len() {
        let i = a.req(slot, "inputs")?;
        same_dtype(a.op, "0", &first, &slot.to_string(), &i)?;
        if let Some(s) = &i.info.shape {
            known.push(s);
        }
    }
    let dtype = first.info.dtype;
    let Some(rank) = known.first().map(|s| s.rank()) else { return Ok(one(dtype, None)) };
    let shapes = || known.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
    if known.iter().any(|s| s.rank() != rank) {
        return Err(IrError::Shape(format!("Concat: inputs {} have different ranks", shapes())));
    }
    let ax = axis(a.op, ax, rank)?;
    let all_known = known.len() == a.inputs.len();
    let mut dims = Vec::with_capacity(rank);
    for i in 0..rank {
        if i == ax {
            let parts: Vec<Dim> = known.iter().map(|s| s.0[i].clone()).collect();
            let d = match (all_known, parts.as_slice()) {
                (true, [single]) => single.clone(),
                (true, _) if parts.iter().all(|d| d.known().is_some()) => {
                    let mut sum: usize = 0;
                    for d in &parts {
                        sum = sum.checked_add(d.known().unwrap_or(0)).ok_or_else(|| {
                            IrError::Shape(format!("Concat: size along axis overflows for {}", shapes()))
                        })?;
                    }
                    Dim::Known(sum)
                }
                _ => Dim::Unknown,
            };
            dims.push(d);
        } else {
            let mut d = Dim::Unknown;
            for s in &known {
                d = merge_dim(&d, &s.0[i]).map_err(|()| {
                    IrError::Shape(format!("Concat on axis {ax}: inputs {} differ on axis {i}", shapes()))
                })?;
            }
            dims.push(d);
        }
    }
    Ok(one(dtype, Some(Shape(dims))))
}

/// Reshape: data, shape (0 copies unless `allowzero`, -1 infers).
pub(super) fn reshape(a: &Args, allowzero: bool) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let si = a.req(1, "shape")?;
    let dtype = x.info.dtype;
    let Some(spec) = int_values(a.op, "shape", &si)? else {
        return Ok(one(dtype, vector_len(&si).map(unknown_dims)));
    };
    let xs = x.info.shape.as_ref();
    let bad = |why: &str| IrError::Shape(format!("Reshape of {} to {spec:?}: {why}", show(xs)));
    if spec.iter().filter(|&&v| v == -1).count() > 1 {
        return Err(bad("more than one -1"));
    }
    if spec.iter().any(|&v| v < -1) {
        return Err(bad("sizes must be >= -1"));
    }
    if allowzero && spec.contains(&0) && spec.contains(&-1) {
        return Err(bad("-1 cannot be combined with 0 when allowzero is set"));
    }
    // Output dims; `None` marks the -1 slot. `copied[i]` is the input index a 0 copies.
    let mut out: Vec<Option<Dim>> = Vec::with_capacity(spec.len());
    let mut copied: Vec<usize> = Vec::new();
    for (i, &v) in spec.iter().enumerate() {
        out.push(match v {
            -1 => None,
            0 if !allowzero => {
                let d = match xs {
                    Some(s) => s.0.get(i).cloned().ok_or_else(|| bad(&format!("0 at {i} copies a missing dim")))?,
                    None => Dim::Unknown,
                };
                copied.push(i);
                Some(d)
            }
            v => Some(Dim::Known(to_size(a.op, "shape entry", v)?)),
        });
    }
    let Some(xs) = xs else {
        return Ok(one(dtype, Some(Shape(out.into_iter().map(|d| d.unwrap_or(Dim::Unknown)).collect()))));
    };
    // Element count reasoning: input dims copied by 0 cancel with their copies.
    let mut in_rest: Vec<Dim> = Vec::new();
    let mut in_known: usize = 1;
    for (i, d) in xs.0.iter().enumerate() {
        match d {
            Dim::Known(n) => in_known = in_known.checked_mul(*n).ok_or_else(|| bad("element count overflows"))?,
            d if !copied.contains(&i) => in_rest.push(d.clone()),
            _ => {}
        }
    }
    // Output dims are known sizes or copies of input dims, so only known sizes remain.
    let mut out_known: usize = 1;
    for d in out.iter().flatten() {
        if let Dim::Known(n) = d {
            out_known = out_known.checked_mul(*n).ok_or_else(|| bad("element count overflows"))?;
        }
    }
    let infer_slot = out.iter().position(Option::is_none);
    if let Some(slot) = infer_slot {
        let d = if in_rest.is_empty() {
            if out_known == 0 {
                return Err(bad("-1 is ambiguous when the other sizes multiply to 0"));
            }
            if !in_known.is_multiple_of(out_known) {
                return Err(bad(&format!("{in_known} elements do not divide into {out_known}")));
            }
            Dim::Known(in_known / out_known)
        } else if in_rest.len() == 1 && in_known == out_known && out_known != 0 {
            in_rest.remove(0)
        } else {
            Dim::Unknown
        };
        if let Some(s) = out.get_mut(slot) {
            *s = Some(d);
        }
    } else if in_rest.is_empty() && in_known != out_known {
        return Err(bad(&format!("{in_known} elements cannot become {out_known}")));
    }
    Ok(one(dtype, Some(Shape(out.into_iter().map(|d| d.unwrap_or(Dim::Unknown)).collect()))))
}

/// Flatten to `[prod(d[..axis]), prod(d[axis..])]`, `axis` in `[-r, r]`.
pub(super) fn flatten(a: &Args, ax: i64) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "input")?;
    let Some(s) = &x.info.shape else {
        return Ok(one(x.info.dtype, Some(unknown_dims(2))));
    };
    let r = s.rank();
    let split = if ax == to_i64(a.op, r)? { r } else { axis(a.op, ax, r)? };
    let (head, tail) = s.0.split_at(split);
    Ok(one(x.info.dtype, Some(Shape(vec![dim_product(head)?, dim_product(tail)?]))))
}

/// Transpose by `perm` (reversal when absent).
pub(super) fn transpose(a: &Args, perm: Option<&[usize]>) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let xs = x.info.shape.as_ref();
    let rank = match (xs, perm) {
        (Some(s), _) => s.rank(),
        (None, Some(p)) => p.len(),
        (None, None) => return Ok(one(x.info.dtype, None)),
    };
    let perm = crate::op::resolve_perm(perm, rank).map_err(|e| match e {
        IrError::Attribute(m) => IrError::Attribute(format!("Transpose: {m} of {}", show(xs))),
        e => e,
    })?;
    let dims = perm.iter().map(|&p| dim_at(xs, p)).collect();
    Ok(one(x.info.dtype, Some(Shape(dims))))
}

/// Squeeze: data, axes? (absent or empty removes every size-1 axis).
pub(super) fn squeeze(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let dtype = x.info.dtype;
    let axes_in = a.opt(1).filter(|i| !is_empty_input(i));
    let Some(s) = &x.info.shape else { return Ok(one(dtype, None)) };
    let Some(axes_in) = axes_in else {
        // Without axes, a non-fixed dim may or may not be 1: the rank is unknown then.
        if s.0.iter().any(|d| d.known().is_none()) {
            return Ok(one(dtype, None));
        }
        let dims = s.0.iter().filter(|d| **d != Dim::Known(1)).cloned().collect();
        return Ok(one(dtype, Some(Shape(dims))));
    };
    let Some(axes) = int_values(a.op, "axes", &axes_in)? else {
        let shape = vector_len(&axes_in).and_then(|k| s.rank().checked_sub(k)).map(unknown_dims);
        return Ok(one(dtype, shape));
    };
    let axes = axes_list(a.op, &axes, s.rank())?;
    for &ax in &axes {
        if let Dim::Known(n) = s.0[ax]
            && n != 1
        {
            return Err(IrError::Shape(format!("Squeeze: axis {ax} of {s} has size {n}, not 1")));
        }
    }
    let dims = s.0.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| d.clone()).collect();
    Ok(one(dtype, Some(Shape(dims))))
}

/// Unsqueeze: data, axes (positions in the output).
pub(super) fn unsqueeze(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let axes_in = a.req(1, "axes")?;
    let dtype = x.info.dtype;
    let Some(s) = &x.info.shape else { return Ok(one(dtype, None)) };
    let Some(axes) = int_values(a.op, "axes", &axes_in)? else {
        let shape = vector_len(&axes_in).and_then(|k| s.rank().checked_add(k)).map(unknown_dims);
        return Ok(one(dtype, shape));
    };
    let rank = s.rank().checked_add(axes.len()).ok_or_else(|| IrError::Shape("Unsqueeze: rank overflows".into()))?;
    let axes = axes_list(a.op, &axes, rank)?;
    let mut src = s.0.iter();
    let dims = (0..rank)
        .map(|i| if axes.contains(&i) { Dim::Known(1) } else { src.next().cloned().unwrap_or(Dim::Unknown) })
        .collect();
    Ok(one(dtype, Some(Shape(dims))))
}

/// Split along `axis` into `n` outputs, by the `split` sizes or evenly (the last chunk may be
/// smaller, as in opset 18).
pub(super) fn split(a: &Args, ax: i64, n: usize, num_outputs: usize) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "input")?;
    let dtype = x.info.dtype;
    if n == 0 || n != num_outputs {
        return Err(IrError::Attribute(format!(
            "Split: num_outputs {n} must be positive and match the node's {num_outputs} outputs"
        )));
    }
    let Some(s) = &x.info.shape else { return Ok(vec![TypeInfo::unranked(dtype); n]) };
    let ax = axis(a.op, ax, s.rank())?;
    let d = &s.0[ax];
    let sizes: Vec<Dim> = match a.opt_nonempty(1) {
        Some(si) => match int_values(a.op, "split", &si)? {
            Some(v) => {
                if v.len() != n {
                    return Err(IrError::Shape(format!("Split: split {v:?} must have {n} entries")));
                }
                let mut sizes = Vec::with_capacity(n);
                let mut total: usize = 0;
                for &p in &v {
                    let p = to_size(a.op, "split size", p)?;
                    total =
                        total.checked_add(p).ok_or_else(|| IrError::Shape(format!("Split: split {v:?} overflows")))?;
                    sizes.push(Dim::Known(p));
                }
                if let Dim::Known(dv) = d
                    && *dv != total
                {
                    return Err(IrError::Shape(format!(
                        "Split: split {v:?} sums to {total}, axis {ax} of {s} has size {dv}"
                    )));
                }
                sizes
            }
            None => vec![Dim::Unknown; n],
        },
        None => match d {
            Dim::Known(dv) => {
                let chunk = dv.div_ceil(n);
                let last = chunk.checked_mul(n - 1).and_then(|b| dv.checked_sub(b)).ok_or_else(|| {
                    IrError::Shape(format!("Split: axis {ax} of {s} (size {dv}) cannot split into {n} outputs"))
                })?;
                let mut v = vec![Dim::Known(chunk); n - 1];
                v.push(Dim::Known(last));
                v
            }
            d if n == 1 => vec![d.clone()],
            _ => vec![Dim::Unknown; n],
        },
    };
    Ok(sizes
        .into_iter()
        .map(|sz| {
            let mut dims = s.0.clone();
            dims[ax] = sz;
            TypeInfo { dtype, shape: Some(Shape(dims)) }
        })
        .collect())
}

/// Gather: `data[:axis] + indices.shape + data[axis+1:]`; constant indices are range-checked.
pub(super) fn gather(a: &Args, ax: i64) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let idx = a.req(1, "indices")?;
    let dtype = x.info.dtype;
    if !matches!(idx.info.dtype, DType::I32 | DType::I64) {
        return Err(IrError::DType {
            what: "Gather input indices".into(),
            expected: DType::I64,
            found: idx.info.dtype,
        });
    }
    let Some(s) = &x.info.shape else { return Ok(one(dtype, None)) };
    let ax = axis(a.op, ax, s.rank())?;
    if let (Some(v), Dim::Known(d)) = (idx.value, &s.0[ax]) {
        let d = to_i64(a.op, *d)?;
        if let Some(bad) = v.to_i64_vec().into_iter().find(|&i| i < -d || i >= d) {
            return Err(IrError::Shape(format!("Gather: index {bad} out of range for axis {ax} of {s}")));
        }
    }
    let Some(is) = &idx.info.shape else { return Ok(one(dtype, None)) };
    let mut dims = s.0[..ax].to_vec();
    dims.extend(is.0.iter().cloned());
    dims.extend(s.0[ax + 1..].iter().cloned());
    Ok(one(dtype, Some(Shape(dims))))
}

/// Shape: i64 vector of the input's dims from `start` to `end` (clamped).
pub(super) fn shape(a: &Args, start: i64, end: Option<i64>) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "data")?;
    let Some(s) = &x.info.shape else { return Ok(one(DType::I64, Some(unknown_dims(1)))) };
    let r = to_i64(a.op, s.rank())?;
    let clamp = |v: i64| if v < 0 { v.saturating_add(r).max(0) } else { v.min(r) };
    let (b, e) = (clamp(start), clamp(end.unwrap_or(r)));
    let len = usize::try_from(e.saturating_sub(b)).unwrap_or(0);
    Ok(one(DType::I64, Some(Shape::known(&[len]))))
}

/// Expand: the input broadcast (both ways) with the shape given as input.
pub(super) fn expand(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "input")?;
    let si = a.req(1, "shape")?;
    let dtype = x.info.dtype;
    let Some(xs) = &x.info.shape else { return Ok(one(dtype, None)) };
    match int_values(a.op, "shape", &si)? {
        Some(v) => {
            let mut dims = Vec::with_capacity(v.len());
            for &d in &v {
                dims.push(Dim::Known(to_size(a.op, "shape entry", d)?));
            }
            let target = Shape(dims);
            Ok(one(dtype, broadcast_shapes(a.op, &[Some(xs), Some(&target)])?))
        }
        None => {
            let Some(k) = vector_len(&si) else { return Ok(one(dtype, None)) };
            let rank = k.max(xs.rank());
            let off = rank - xs.rank();
            // Input dims other than 1 survive broadcasting unchanged.
            let dims = (0..rank)
                .map(|i| match i.checked_sub(off).map(|j| &xs.0[j]) {
                    Some(Dim::Known(n)) if *n != 1 => Dim::Known(*n),
                    _ => Dim::Unknown,
                })
                .collect();
            Ok(one(dtype, Some(Shape(dims))))
        }
    }
}

/// ConstantOfShape: the shape from the input, the dtype of `value`.
pub(super) fn constant_of_shape(a: &Args, value: &Tensor) -> Result<Vec<TypeInfo>, IrError> {
    let si = a.req(0, "input")?;
    if value.len() != 1 {
        return Err(IrError::Attribute(format!(
            "ConstantOfShape: value must have one element, has shape {}",
            value.ir_shape()
        )));
    }
    let dtype = value.dtype();
    match int_values(a.op, "input", &si)? {
        Some(v) => {
            let mut dims = Vec::with_capacity(v.len());
            for &d in &v {
                dims.push(to_size(a.op, "shape entry", d)?);
            }
            let s = Shape::known(&dims);
            checked_count(&s)?;
            Ok(one(dtype, Some(s)))
        }
        None => Ok(one(dtype, vector_len(&si).map(unknown_dims))),
    }
}

/// Range: `[max(0, ceil((limit - start) / delta))]` of the scalars' dtype.
pub(super) fn range(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let start = a.req(0, "start")?;
    let limit = a.req(1, "limit")?;
    let delta = a.req(2, "delta")?;
    same_dtype(a.op, "start", &start, "limit", &limit)?;
    same_dtype(a.op, "start", &start, "delta", &delta)?;
    let dtype = start.info.dtype;
    if dtype == DType::Bool {
        return Err(IrError::DType { what: "Range input start".into(), expected: DType::I64, found: dtype });
    }
    for (i, what) in [(&start, "start"), (&limit, "limit"), (&delta, "delta")] {
        if let Some(s) = &i.info.shape
            && (s.rank() > 1 || not_single(s))
        {
            return Err(IrError::Shape(format!("Range: {what} must be a scalar, got shape {s}")));
        }
    }
    let (Some(s), Some(l), Some(d)) = (start.value, limit.value, delta.value) else {
        return Ok(one(dtype, Some(unknown_dims(1))));
    };
    let count = if dtype.is_float() {
        let (s, l, d) = (first_f32(s), first_f32(l), first_f32(d));
        if d == 0.0 {
            return Err(IrError::Shape("Range: delta is 0".into()));
        }
        let c = (f64::from(l - s) / f64::from(d)).ceil();
        if !c.is_finite() || c > (i64::MAX as f64) {
            return Err(IrError::Shape(format!("Range: {s}..{l} step {d} has no finite length")));
        }
        if c <= 0.0 { 0 } else { c as u64 as u128 }
    } else {
        let (s, l, d) = (first_i64(s) as i128, first_i64(l) as i128, first_i64(d) as i128);
        if d == 0 {
            return Err(IrError::Shape("Range: delta is 0".into()));
        }
        let diff = l - s;
        let c = if (diff > 0) == (d > 0) && diff != 0 { (diff.abs() + d.abs() - 1) / d.abs() } else { 0 };
        c as u128
    };
    let n = usize::try_from(count).map_err(|_| IrError::Shape(format!("Range: length {count} is too large")))?;
    Ok(one(dtype, Some(Shape::known(&[n]))))
}

fn first_f32(t: &Tensor) -> f32 {
    t.to_f32_vec().first().copied().unwrap_or(0.0)
}

fn first_i64(t: &Tensor) -> i64 {
    t.to_i64_vec().first().copied().unwrap_or(0)
}
