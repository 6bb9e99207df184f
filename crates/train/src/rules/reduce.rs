//! Reductions over axes (the `axes` input, negative counting from the end; absent or empty
//! means every axis, or the identity with `noop_with_empty_axes`): ReduceSum spreads `dy` over
//! the reduced elements, ReduceMean also divides by their count, ReduceMax gives `dy` to the
//! maxima of each group (split evenly between tied maxima, as torch's `amax` does).

use super::{BackwardArgs, InputGrads};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::Op;
use lithe_ir::op::{ReduceAttrs, normalize_axis};
use ndarray::{ArrayD, Axis, IxDyn, Zip};

/// The reduced axes (sorted, distinct), or `None` for the identity.
fn reduced_axes(a: &BackwardArgs<'_>, attrs: &ReduceAttrs, rank: usize) -> Result<Option<Vec<usize>>, TrainError> {
    let given = a.inputs.get(1).copied().flatten().map(|t| t.to_i64_vec()).unwrap_or_default();
    if given.is_empty() {
        return Ok((!attrs.noop_with_empty_axes).then(|| (0..rank).collect()));
    }
    let mut axes = given
        .iter()
        .map(|&ax| normalize_axis(ax, rank).map_err(|e| invalid(a.node, format!("axes {given:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    axes.sort_unstable();
    axes.dedup();
    Ok(Some(axes))
}

pub(super) fn backward(a: &BackwardArgs<'_>, attrs: &ReduceAttrs) -> Result<InputGrads, TrainError> {
    let x = a.x(0)?;
    let gy = a.gy(0)?;
    let mut out = vec![None; a.inputs.len()];
    let Some(axes) = reduced_axes(a, attrs, x.ndim())? else {
        out[0] = Some(gy);
        return Ok(out);
    };
    // The output's shape with the reduced axes kept as size 1.
    let kept: Vec<usize> = x.shape().iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let to_kept = |v: ArrayD<f32>, what: &str| {
        v.as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&kept))
            .map_err(|e| invalid(a.node, format!("{what} {e}")))
    };
    let gk = to_kept(gy, "output gradient")?;
    let g = gk.broadcast(x.raw_dim()).ok_or_else(|| invalid(a.node, "output gradient does not broadcast"))?;
    let count: usize = axes.iter().map(|&ax| x.shape()[ax]).product();
    let dx = match a.op {
        Op::ReduceSum(_) => g.to_owned(),
        Op::ReduceMean(_) => g.mapv(|v| v / count.max(1) as f32),
        Op::ReduceMax(_) => {
            let yk = to_kept(a.y(0)?.to_owned(), "output")?;
            let y = yk.broadcast(x.raw_dim()).ok_or_else(|| invalid(a.node, "output does not broadcast"))?;
            let hit = Zip::from(&x).and(&y).map_collect(|&x, &y| if x == y { 1f32 } else { 0.0 });
            let mut ties = hit.clone();
            for &ax in &axes {
                ties = ties.sum_axis(Axis(ax)).insert_axis(Axis(ax));
            }
            let ties = ties.broadcast(x.raw_dim()).ok_or_else(|| invalid(a.node, "tie counts do not broadcast"))?;
            Zip::from(&hit).and(&g).and(&ties).map_collect(|&h, &g, &t| if h > 0.0 { g / t } else { 0.0 })
        }
        _ => return Err(a.no_rule("")),
    };
    out[0] = Some(dx);
    Ok(out)
}
