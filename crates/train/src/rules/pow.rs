//! Pow with broadcasting: `dA = dy·b·a^(b−1)`, `dB = dy·y·ln a` (taken as 0 where `a ≤ 0`,
//! where the real logarithm does not exist), each reduced to its operand's shape with
//! `unbroadcast`.

use super::{BackwardArgs, InputGrads, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use ndarray::Zip;

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let (base, exp, y) = (a.x(0)?, a.x(1)?, a.y(0)?);
    let gy = a.gy(0)?;
    let bcast = |v: &ndarray::ArrayViewD<'_, f32>, what: &str| {
        v.broadcast(gy.raw_dim())
            .map(|b| b.to_owned())
            .ok_or_else(|| invalid(a.node, format!("{what} {:?} does not broadcast to {:?}", v.shape(), gy.shape())))
    };
    let (ab, bb) = (bcast(&base, "base")?, bcast(&exp, "exponent")?);
    let mut out = vec![None, None];
    if a.need(0) {
        let mut g = gy.clone();
        Zip::from(&mut g).and(&ab).and(&bb).for_each(|g, &x, &e| *g *= e * x.powf(e - 1.0));
        out[0] = Some(unbroadcast(g, base.shape()));
    }
    if a.need(1) {
        let mut g = gy.clone();
        Zip::from(&mut g).and(&ab).and(&y).for_each(|g, &x, &y| *g = if x > 0.0 { *g * y * x.ln() } else { 0.0 });
        out[1] = Some(unbroadcast(g, exp.shape()));
    }
    Ok(out)
}
