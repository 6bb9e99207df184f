//! Elementwise Min and Max of any number of broadcast operands: `dy` goes to the operand that
//! gave each output element (the first of them on a tie), reduced back to its shape with
//! `unbroadcast`.

use super::{BackwardArgs, InputGrads, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use ndarray::{ArrayD, Zip};

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let y = a.y(0)?;
    let gy = a.gy(0)?;
    let mut taken = ArrayD::from_elem(y.raw_dim(), false);
    let mut out = Vec::with_capacity(a.inputs.len());
    for slot in 0..a.inputs.len() {
        let x = a.x(slot)?;
        let xb = x.broadcast(y.raw_dim()).ok_or_else(|| {
            invalid(a.node, format!("input {slot} {:?} does not broadcast to {:?}", x.shape(), y.shape()))
        })?;
        let mut g = gy.clone();
        Zip::from(&mut g).and(&xb).and(&y).and(&mut taken).for_each(|g, &x, &y, t| {
            if !*t && x == y {
                *t = true;
            } else {
                *g = 0.0;
            }
        });
        out.push(a.need(slot).then(|| unbroadcast(g, x.shape())));
    }
    Ok(out)
}
