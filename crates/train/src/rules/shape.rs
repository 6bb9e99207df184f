//! Data-movement ops and softmax: Reshape/Flatten/Squeeze/Unsqueeze (the gradient takes the
//! input's shape back), Transpose (the inverse permutation), Concat (the gradient cut into
//! the inputs' pieces) and Softmax (`dx = y·(dy - Σ dy·y)` along the axis).

use super::{BackwardArgs, InputGrads};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::op::{SoftmaxAttrs, normalize_axis, resolve_perm};
use ndarray::{ArrayD, Axis, Ix3, IxDyn, Slice};

pub(super) fn reshape_backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let shape = a.x(0)?.shape().to_vec();
    let g = a.gy(0)?.as_standard_layout().into_owned();
    let g = g.into_shape_with_order(IxDyn(&shape)).map_err(|e| invalid(a.node, e.to_string()))?;
    let mut out = vec![None; a.inputs.len()];
    out[0] = Some(g);
    Ok(out)
}

pub(super) fn transpose_backward(a: &BackwardArgs<'_>, perm: Option<&[usize]>) -> Result<InputGrads, TrainError> {
    let g = a.gy(0)?;
    let perm = resolve_perm(perm, g.ndim())?;
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    Ok(vec![Some(g.permuted_axes(IxDyn(&inv)).as_standard_layout().into_owned())])
}

pub(super) fn concat_backward(a: &BackwardArgs<'_>, axis: i64) -> Result<InputGrads, TrainError> {
    let g = a.gy(0)?;
    let ax = normalize_axis(axis, g.ndim())?;
    let mut start = 0usize;
    let mut out = Vec::with_capacity(a.inputs.len());
    for (slot, t) in a.inputs.iter().enumerate() {
        let len = t.map(|t| t.shape().get(ax).copied().unwrap_or(0)).unwrap_or(0);
        let piece = g.slice_axis(Axis(ax), Slice::from(start..start + len));
        out.push(a.need(slot).then(|| piece.to_owned()));
        start += len;
    }
    if start != g.shape()[ax] {
        return Err(invalid(a.node, format!("inputs cover {start} of the {} positions on axis {ax}", g.shape()[ax])));
    }
    Ok(out)
}

pub(super) fn softmax_backward(a: &BackwardArgs<'_>, attrs: &SoftmaxAttrs) -> Result<InputGrads, TrainError> {
    let y = a.y(0)?.as_standard_layout().into_owned();
    let g = a.gy(0)?.as_standard_layout().into_owned();
    let shape = y.shape().to_vec();
    let ax = normalize_axis(attrs.axis, shape.len())?;
    let outer: usize = shape[..ax].iter().product();
    let (len, inner) = if attrs.coerce_2d {
        (shape[ax..].iter().product::<usize>(), 1)
    } else {
        (shape[ax], shape[ax + 1..].iter().product::<usize>())
    };
    let to3 = |v: ArrayD<f32>| {
        v.into_shape_with_order(IxDyn(&[outer, len, inner]))
            .map_err(|e| invalid(a.node, e.to_string()))
            .map(|v| v.into_dimensionality::<Ix3>().expect("rank 3"))
    };
    let (y3, g3) = (to3(y)?, to3(g)?);
    let s = (&g3 * &y3).sum_axis(Axis(1)).insert_axis(Axis(1));
    let gx = &y3 * &(&g3 - &s);
    Ok(vec![Some(gx.into_shape_with_order(IxDyn(&shape)).map_err(|e| invalid(a.node, e.to_string()))?)])
}
