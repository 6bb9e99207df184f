//! Rules of the sliding-window operators: Conv, ConvTranspose, MaxPool/AveragePool and the
//! global pools. Window arithmetic uses the helpers of `op::attrs` one axis at a time, so
//! that symbolic axes do not prevent known ones from being resolved.

use super::InferInput;
use super::common::{
    Args, MAX_WINDOW_VALUE, context, dim_at, merge_dim, not_single, one, same_dtype, show, want_dtype,
};
use crate::op::{AutoPad, ConvAttrs, ConvTransposeAttrs, PoolAttrs, resolve_windows};
use crate::{DType, Dim, IrError, Shape, TypeInfo};

/// Validated window parameters of one spatial axis.
#[derive(Clone, Copy, Debug)]
struct AxisParams {
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
}

/// Check attribute lengths and bounds and split them per axis.
fn axis_params(
    op: &str,
    n: usize,
    strides: &[usize],
    dilations: &[usize],
    pads: &[usize],
) -> Result<Vec<AxisParams>, IrError> {
    let check = |name: &str, v: &[usize], len: usize, positive: bool| -> Result<(), IrError> {
        if !v.is_empty() && v.len() != len {
            return Err(IrError::Attribute(format!("{op}: {name} {v:?} must have {len} entries")));
        }
        if v.iter().any(|&x| x > MAX_WINDOW_VALUE || (positive && x == 0)) {
            let need = if positive { "positive and " } else { "" };
            return Err(IrError::Attribute(format!("{op}: {name} {v:?} must be {need}at most {MAX_WINDOW_VALUE}")));
        }
        Ok(())
    };
    check("strides", strides, n, true)?;
    check("dilations", dilations, n, true)?;
    check("pads", pads, 2 * n, false)?;
    let pick = |v: &[usize], i: usize, d: usize| v.get(i).copied().unwrap_or(d);
    Ok((0..n)
        .map(|i| AxisParams {
            stride: pick(strides, i, 1),
            dilation: pick(dilations, i, 1),
            pad_begin: pick(pads, i, 0),
            pad_end: pick(pads, i + n, 0),
        })
        .collect())
}

/// The output size of one axis of a conv or pool.
fn window_axis(
    op: &str,
    input: &Dim,
    kernel: Option<usize>,
    p: AxisParams,
    auto_pad: AutoPad,
    ceil_mode: bool,
) -> Result<Dim, IrError> {
    let Some(k) = kernel else { return Ok(Dim::Unknown) };
    if let Dim::Known(v) = input {
        if *v > MAX_WINDOW_VALUE {
            return Err(IrError::Shape(format!("{op}: spatial size {v} is too large")));
        }
        let w =
            resolve_windows(&[*v], &[k], &[p.stride], &[p.dilation], &[p.pad_begin, p.pad_end], auto_pad, ceil_mode)?;
        return Ok(w.first().map_or(Dim::Unknown, |w| Dim::Known(w.output)));
    }
    // Symbolic or unknown size: keep it only when the output size provably equals it.
    let eff = (k - 1) * p.dilation + 1;
    let same = p.stride == 1
        && match auto_pad {
            AutoPad::SameUpper | AutoPad::SameLower => true,
            AutoPad::Valid => eff == 1,
            AutoPad::NotSet => p.pad_begin + p.pad_end + 1 == eff,
        };
    Ok(if same { input.clone() } else { Dim::Unknown })
}

/// Kernel size per spatial axis from the attribute and/or the weight, checking they agree.
fn kernel_sizes(
    op: &str,
    n: usize,
    attr: Option<&[usize]>,
    weight: Option<&Shape>,
) -> Result<Vec<Option<usize>>, IrError> {
    if let Some(k) = attr
        && k.len() != n
    {
        return Err(IrError::Attribute(format!("{op}: kernel_shape {k:?} must have {n} entries")));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let from_attr = attr.and_then(|k| k.get(i).copied());
        let from_w = dim_at(weight, 2 + i).known();
        if let (Some(x), Some(y)) = (from_attr, from_w)
            && x != y
        {
            return Err(IrError::Shape(format!(
                "{op}: kernel_shape {:?} does not match weight shape {}",
                attr.unwrap_or_default(),
                show(weight)
            )));
        }
        let k = from_attr.or(from_w);
        if let Some(k) = k
            && (k == 0 || k > MAX_WINDOW_VALUE)
        {
            return Err(IrError::Attribute(format!(
                "{op}: kernel size {k} must be positive and at most {MAX_WINDOW_VALUE}"
            )));
        }
        out.push(k);
    }
    Ok(out)
}

/// The rank of a conv-like op from X, W and the kernel_shape length (`None` if unknown).
fn conv_rank(
    op: &str,
    xs: Option<&Shape>,
    ws: Option<&Shape>,
    kernel_len: Option<usize>,
) -> Result<Option<usize>, IrError> {
    let rank = match (xs, ws) {
        (Some(x), Some(w)) => {
            if x.rank() != w.rank() {
                return Err(IrError::Shape(format!("{op}: X {x} and W {w} have different ranks")));
            }
            x.rank()
        }
        (Some(s), None) | (None, Some(s)) => s.rank(),
        (None, None) => match kernel_len {
            Some(k) => k + 2,
            None => return Ok(None),
        },
    };
    if rank < 3 {
        return Err(IrError::Shape(format!(
            "{op}: X {} and W {} must have rank >= 3 (N, C, spatial...)",
            show(xs),
            show(ws)
        )));
    }
    Ok(Some(rank))
}

/// Check an optional bias against the number of output channels.
fn check_bias(op: &str, b: Option<&Shape>, m: &Dim) -> Result<(), IrError> {
    if let Some(b) = b {
        let ok = b.rank() == 1 && merge_dim(&b.0[0], m).is_ok();
        if !ok {
            return Err(IrError::Shape(format!("{op}: bias {b} must have shape [{m}] (output channels)")));
        }
    }
    Ok(())
}

/// Conv: X `[N, C, s...]`, W `[M, C/group, k...]`, B? `[M]` -> `[N, M, o...]`.
pub(super) fn conv(a: &Args, c: &ConvAttrs) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let w = a.req(1, "W")?;
    let b = a.opt(2);
    same_dtype(a.op, "X", &x, "W", &w)?;
    if let Some(b) = &b {
        same_dtype(a.op, "X", &x, "B", b)?;
    }
    let dtype = x.info.dtype;
    let (xs, ws) = (x.info.shape.as_ref(), w.info.shape.as_ref());
    let ctx = format!("X {}, W {}", show(xs), show(ws));
    if c.group == 0 {
        return Err(IrError::Attribute(format!("Conv: group must be at least 1 ({ctx})")));
    }
    let Some(rank) = conv_rank(a.op, xs, ws, c.kernel_shape.as_ref().map(Vec::len))? else {
        return Ok(one(dtype, None));
    };
    let n = rank - 2;
    let params = axis_params(a.op, n, &c.strides, &c.dilations, &c.pads).map_err(|e| context(e, &ctx))?;
    let kernel = kernel_sizes(a.op, n, c.kernel_shape.as_deref(), ws)?;
    let g = c.group;
    let (c_in, w_c, m) = (dim_at(xs, 1), dim_at(ws, 1), dim_at(ws, 0));
    if let Dim::Known(ci) = c_in {
        if ci % g != 0 {
            return Err(IrError::Shape(format!("Conv: {ci} input channels do not divide into {g} groups ({ctx})")));
        }
        if let Dim::Known(wc) = w_c
            && wc.checked_mul(g) != Some(ci)
        {
            return Err(IrError::Shape(format!(
                "Conv: X has {ci} channels but W expects {wc} per group x {g} groups ({ctx})"
            )));
        }
    }
    if let Dim::Known(mv) = m
        && mv % g != 0
    {
        return Err(IrError::Shape(format!("Conv: {mv} output channels do not divide into {g} groups ({ctx})")));
    }
    check_bias(a.op, b.as_ref().and_then(|b| b.info.shape.as_ref()), &m)?;
    let mut dims = vec![dim_at(xs, 0), m];
    for (i, p) in params.iter().enumerate() {
        let k = kernel.get(i).copied().flatten();
        dims.push(window_axis(a.op, &dim_at(xs, 2 + i), k, *p, c.auto_pad, false).map_err(|e| context(e, &ctx))?);
    }
    let out = Shape(dims);
    check_epilogue(a, &c.epilogue, dtype, &out)?;
    Ok(one(dtype, Some(out)))
}

/// The fused inputs of a conv epilogue: the residual (slot 3) must be present exactly when
/// fused and match the output; the PReLU slope (slot 4) exactly when the activation is PReLU.
fn check_epilogue(a: &Args, e: &crate::op::Epilogue, dtype: DType, out: &Shape) -> Result<(), IrError> {
    match (e.residual, a.opt(3)) {
        (true, None) => return Err(IrError::Shape(format!("{}: a fused residual needs input 3", a.op))),
        (false, Some(_)) => return Err(IrError::Shape(format!("{}: input 3 is set but no residual is fused", a.op))),
        (true, Some(r)) => {
            if r.info.dtype != dtype {
                return Err(IrError::Shape(format!("{}: residual is {}, expected {dtype}", a.op, r.info.dtype)));
            }
            if let Some(rs) = &r.info.shape {
                let same = rs.rank() == out.rank() && rs.0.iter().zip(&out.0).all(|(x, y)| merge_dim(x, y).is_ok());
                if !same {
                    return Err(IrError::Shape(format!("{}: residual {rs} must have the output shape {out}", a.op)));
                }
            }
        }
        (false, None) => {}
    }
    check_slope(a, 4, &e.activation, dtype)
}

/// The PReLU slope input at `slot`: present exactly when the activation is PReLU.
pub(super) fn check_slope(a: &Args, slot: usize, act: &crate::op::Activation, dtype: DType) -> Result<(), IrError> {
    let prelu = matches!(act, crate::op::Activation::PRelu);
    match (prelu, a.opt(slot)) {
        (true, None) => Err(IrError::Shape(format!("{}: a fused PRelu needs its slope at input {slot}", a.op))),
        (false, Some(_)) => Err(IrError::Shape(format!("{}: input {slot} is set but no PRelu is fused", a.op))),
        (true, Some(s)) if s.info.dtype != dtype => {
            Err(IrError::Shape(format!("{}: PRelu slope is {}, expected {dtype}", a.op, s.info.dtype)))
        }
        _ => Ok(()),
    }
}

/// ConvTranspose: X `[N, C, s...]`, W `[C, M/group, k...]`, B? `[M]` -> `[N, M, o...]`.
pub(super) fn conv_transpose(a: &Args, t: &ConvTransposeAttrs) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let w = a.req(1, "W")?;
    let b = a.opt(2);
    same_dtype(a.op, "X", &x, "W", &w)?;
    if let Some(b) = &b {
        same_dtype(a.op, "X", &x, "B", b)?;
    }
    let c = &t.conv;
    if !c.epilogue.is_empty() {
        return Err(IrError::Attribute("ConvTranspose: fused epilogues are not supported".into()));
    }
    let dtype = x.info.dtype;
    let (xs, ws) = (x.info.shape.as_ref(), w.info.shape.as_ref());
    let ctx = format!("X {}, W {}", show(xs), show(ws));
    if c.group == 0 {
        return Err(IrError::Attribute(format!("ConvTranspose: group must be at least 1 ({ctx})")));
    }
    let kernel_len = c.kernel_shape.as_ref().map(Vec::len).or(t.output_shape.as_ref().map(Vec::len));
    let Some(rank) = conv_rank(a.op, xs, ws, kernel_len)? else {
        return Ok(one(dtype, None));
    };
    let n = rank - 2;
    let params = axis_params(a.op, n, &c.strides, &c.dilations, &c.pads).map_err(|e| context(e, &ctx))?;
    let kernel = kernel_sizes(a.op, n, c.kernel_shape.as_deref(), ws)?;
    if !t.output_padding.is_empty() && t.output_padding.len() != n {
        return Err(IrError::Attribute(format!(
            "ConvTranspose: output_padding {:?} must have {n} entries",
            t.output_padding
        )));
    }
    if t.output_padding.iter().any(|&v| v > MAX_WINDOW_VALUE) {
        return Err(IrError::Attribute(format!("ConvTranspose: output_padding {:?} too large", t.output_padding)));
    }
    if let Some(os) = &t.output_shape
        && os.len() != n
    {
        return Err(IrError::Attribute(format!("ConvTranspose: output_shape {os:?} must have {n} entries")));
    }
    let g = c.group;
    let (c_in, w_c, w_m) = (dim_at(xs, 1), dim_at(ws, 0), dim_at(ws, 1));
    if merge_dim(&c_in, &w_c).is_err() {
        return Err(IrError::Shape(format!(
            "ConvTranspose: X has {c_in} channels but W has {w_c} input channels ({ctx})"
        )));
    }
    if let Dim::Known(ci) = c_in
        && ci % g != 0
    {
        return Err(IrError::Shape(format!(
            "ConvTranspose: {ci} input channels do not divide into {g} groups ({ctx})"
        )));
    }
    let m = match w_m {
        Dim::Known(v) => Dim::Known(
            v.checked_mul(g)
                .ok_or_else(|| IrError::Shape(format!("ConvTranspose: output channels overflow ({ctx})")))?,
        ),
        d if g == 1 => d,
        _ => Dim::Unknown,
    };
    check_bias(a.op, b.as_ref().and_then(|b| b.info.shape.as_ref()), &m)?;
    let mut dims = vec![dim_at(xs, 0), m];
    for (i, p) in params.iter().enumerate() {
        let k = kernel.get(i).copied().flatten();
        let opad = t.output_padding.get(i).copied().unwrap_or(0);
        let target = t.output_shape.as_ref().and_then(|o| o.get(i).copied());
        let d = transpose_axis(&dim_at(xs, 2 + i), k, *p, opad, target, c.auto_pad).map_err(|e| context(e, &ctx))?;
        dims.push(d);
    }
    Ok(one(dtype, Some(Shape(dims))))
}

/// The output size of one axis of a transposed convolution.
fn transpose_axis(
    input: &Dim,
    kernel: Option<usize>,
    p: AxisParams,
    opad: usize,
    target: Option<usize>,
    auto_pad: AutoPad,
) -> Result<Dim, IrError> {
    let (Dim::Known(v), Some(k)) = (input, kernel) else {
        if let Some(t) = target {
            return Ok(Dim::Known(t));
        }
        // Output equals input when stride is 1 and the extra size is cancelled by padding.
        let keeps = p.stride == 1
            && match (kernel, auto_pad) {
                (_, AutoPad::SameUpper | AutoPad::SameLower) => true,
                (Some(k), AutoPad::NotSet) => opad + (k - 1) * p.dilation == p.pad_begin + p.pad_end,
                (Some(k), AutoPad::Valid) => opad + (k - 1) * p.dilation == 0,
                (None, _) => false,
            };
        return Ok(if keeps { input.clone() } else { Dim::Unknown });
    };
    if *v > MAX_WINDOW_VALUE {
        return Err(IrError::Shape(format!("ConvTranspose: spatial size {v} is too large")));
    }
    let one_axis = ConvTransposeAttrs {
        conv: ConvAttrs {
            kernel_shape: Some(vec![k]),
            strides: vec![p.stride],
            dilations: vec![p.dilation],
            pads: vec![p.pad_begin, p.pad_end],
            auto_pad,
            group: 1,
            epilogue: Default::default(),
        },
        output_padding: vec![opad],
        output_shape: target.map(|t| vec![t]),
    };
    let axes = one_axis.axes(&[*v], &[k])?;
    let mut out = axes.first().map_or(0, |a| a.output);
    if target.is_none() && matches!(auto_pad, AutoPad::SameUpper | AutoPad::SameLower) {
        // Padding cannot be negative: when the full output is smaller than `in * stride`,
        // the output is the full size (onnxruntime and ONNX shape inference agree).
        let full = p.stride * (v.max(&1) - 1) + opad + (k - 1) * p.dilation + 1;
        out = out.min(full);
    }
    Ok(Dim::Known(out))
}

/// MaxPool/AveragePool: X `[N, C, s...]` -> `[N, C, o...]`; MaxPool's optional second
/// output (indices) is i64 of the same shape.
pub(super) fn pool(a: &Args, p: &PoolAttrs, num_outputs: usize) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let xs = x.info.shape.as_ref();
    let n = p.kernel_shape.len();
    if n == 0 {
        return Err(IrError::Attribute(format!("{}: kernel_shape is required", a.op)));
    }
    if let Some(s) = xs
        && s.rank() != n + 2
    {
        return Err(IrError::Shape(format!(
            "{}: X {s} must have rank {} for kernel_shape {:?}",
            a.op,
            n + 2,
            p.kernel_shape
        )));
    }
    let ctx = format!("X {}", show(xs));
    let params = axis_params(a.op, n, &p.strides, &p.dilations, &p.pads).map_err(|e| context(e, &ctx))?;
    if p.kernel_shape.iter().any(|&k| k == 0 || k > MAX_WINDOW_VALUE) {
        return Err(IrError::Attribute(format!("{}: kernel_shape {:?} must be positive", a.op, p.kernel_shape)));
    }
    let mut dims = vec![dim_at(xs, 0), dim_at(xs, 1)];
    for (i, ap) in params.iter().enumerate() {
        let k = p.kernel_shape.get(i).copied();
        dims.push(
            window_axis(a.op, &dim_at(xs, 2 + i), k, *ap, p.auto_pad, p.ceil_mode).map_err(|e| context(e, &ctx))?,
        );
    }
    let shape = Some(Shape(dims));
    let mut out = one(x.info.dtype, shape.clone());
    if num_outputs == 2 {
        out.push(TypeInfo { dtype: DType::I64, shape });
    }
    Ok(out)
}

/// GlobalAveragePool/GlobalMaxPool: `[N, C, s...]` -> `[N, C, 1...]`.
pub(super) fn global_pool(a: &Args) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    let shape = match &x.info.shape {
        None => None,
        Some(s) if s.rank() < 2 => {
            return Err(IrError::Shape(format!("{}: X {s} must have rank >= 2 (N, C, spatial...)", a.op)));
        }
        Some(s) => {
            let mut d = s.0.clone();
            for v in d.iter_mut().skip(2) {
                *v = Dim::Known(1);
            }
            Some(Shape(d))
        }
    };
    Ok(one(x.info.dtype, shape))
}

/// QConv: the Conv rule on X (u8), W (i8), B? (f32 or i32) and the residual (f32), with the scalar
/// quantization parameters checked; output `to` (u8 with `y_scale`/`y_zero_point`, or f32).
pub(super) fn qconv(a: &Args, q: &crate::op::QConvAttrs) -> Result<Vec<TypeInfo>, IrError> {
    let x = a.req(0, "X")?;
    want_dtype(a.op, "X", &x, DType::U8)?;
    let w = a.req(3, "W")?;
    want_dtype(a.op, "W", &w, DType::I8)?;
    let scalar = |slot: usize, what: &'static str, dtype: DType, required: bool| -> Result<(), IrError> {
        let Some(i) = (if required { Some(a.req(slot, what)?) } else { a.opt(slot) }) else { return Ok(()) };
        want_dtype(a.op, what, &i, dtype)?;
        if i.info.shape.as_ref().is_some_and(not_single) {
            return Err(IrError::Shape(format!(
                "{}: {what} must hold one value, got shape {}",
                a.op,
                show(i.info.shape.as_ref())
            )));
        }
        Ok(())
    };
    scalar(1, "x_scale", DType::F32, true)?;
    scalar(2, "x_zero_point", DType::U8, true)?;
    let w_scale = a.req(4, "w_scale")?;
    want_dtype(a.op, "w_scale", &w_scale, DType::F32)?;
    if let (Some(s), Some(m)) = (w_scale.info.shape.as_ref(), dim_at(w.info.shape.as_ref(), 0).known()) {
        let n = if s.rank() == 0 { Some(1) } else { s.as_known().filter(|d| d.len() == 1).map(|d| d[0]) };
        if n != Some(1) && n != Some(m) {
            return Err(IrError::Shape(format!("{}: w_scale {s} must hold 1 or {m} values (output channels)", a.op)));
        }
    }
    match q.to {
        DType::U8 => {
            scalar(7, "y_scale", DType::F32, true)?;
            scalar(8, "y_zero_point", DType::U8, true)?;
        }
        DType::F32 if a.opt(7).is_none() && a.opt(8).is_none() => {}
        DType::F32 => return Err(IrError::Shape(format!("{}: an f32 output takes no y_scale/y_zero_point", a.op))),
        other => return Err(IrError::Attribute(format!("{}: output dtype must be u8 or f32, got {other}", a.op))),
    }
    if matches!(q.conv.epilogue.activation, crate::op::Activation::PRelu) {
        return Err(IrError::Attribute(format!("{}: a fused PRelu is not supported", a.op)));
    }
    if let Some(b) = a.opt(5)
        && b.info.dtype == DType::I32
    {
        // An int32 bias: integer requantization, clamp-like activations only, no residual.
        use crate::op::Activation;
        let e = &q.conv.epilogue;
        if e.residual || !matches!(e.activation, Activation::None | Activation::Relu | Activation::Clip { .. }) {
            return Err(IrError::Attribute(format!(
                "{}: an int32 B allows no fused residual and only a Relu or Clip activation",
                a.op
            )));
        }
    } else if let Some(b) = a.opt(5) {
        want_dtype(a.op, "B", &b, DType::F32)?;
    }
    if let Some(r) = a.opt(6) {
        want_dtype(a.op, "residual", &r, DType::F32)?;
    }
    // The Conv rule on f32 stand-ins for X, W, B and the residual.
    let as_f32 = |i: InferInput<'_>| TypeInfo { dtype: DType::F32, shape: i.info.shape.clone() };
    let types: Vec<Option<TypeInfo>> =
        [Some(0), Some(3), Some(5), Some(6)].into_iter().map(|s| s.and_then(|s| a.opt(s)).map(as_f32)).collect();
    let inputs: Vec<Option<InferInput<'_>>> =
        types.iter().map(|t| t.as_ref().map(|info| InferInput { info, value: None })).collect();
    let out = conv(&Args { op: a.op, inputs: &inputs }, &q.conv)?;
    Ok(out.into_iter().map(|t| TypeInfo { dtype: q.to, shape: t.shape }).collect())
}
