//! Where (`cond ? x : y` with broadcasting): `dy` goes to `x` where the condition holds and to
//! `y` elsewhere, each reduced back to its operand's shape with `unbroadcast`. The condition
//! gets no gradient.

use super::{BackwardArgs, InputGrads, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use ndarray::Zip;

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let gy = a.gy(0)?;
    let cond = a
        .inputs
        .first()
        .copied()
        .flatten()
        .and_then(|t| t.view::<bool>())
        .ok_or_else(|| invalid(a.node, "input 0 (the condition) is missing or not bool"))?;
    let cond = cond.broadcast(gy.raw_dim()).ok_or_else(|| {
        invalid(a.node, format!("condition {:?} does not broadcast to {:?}", cond.shape(), gy.shape()))
    })?;
    let mut out = vec![None; a.inputs.len()];
    for (slot, take_true) in [(1, true), (2, false)] {
        if !a.need(slot) {
            continue;
        }
        let mut g = gy.clone();
        Zip::from(&mut g).and(&cond).for_each(|g, &c| {
            if c != take_true {
                *g = 0.0;
            }
        });
        out[slot] = Some(unbroadcast(g, a.x(slot)?.shape()));
    }
    Ok(out)
}
