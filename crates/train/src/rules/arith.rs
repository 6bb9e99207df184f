//! Add, Sub, Mul, Div with numpy broadcasting: each operand's gradient is summed back over
//! the axes it was broadcast along.

use super::{BackwardArgs, InputGrads, unbroadcast};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::Op;
use ndarray::{ArrayD, ArrayViewD, Zip};

fn full<'a>(
    a: &BackwardArgs<'_>,
    v: &'a ArrayViewD<'a, f32>,
    shape: &[usize],
) -> Result<ArrayViewD<'a, f32>, TrainError> {
    v.broadcast(shape).ok_or_else(|| invalid(a.node, format!("{:?} does not broadcast to {shape:?}", v.shape())))
}

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let g = a.gy(0)?;
    let (x, y) = (a.x(0)?, a.x(1)?);
    let shape = g.shape().to_vec();
    let (gx, gy): (Option<ArrayD<f32>>, Option<ArrayD<f32>>) = match a.op {
        Op::Add => (a.need(0).then(|| g.clone()), a.need(1).then(|| g.clone())),
        Op::Sub => (a.need(0).then(|| g.clone()), a.need(1).then(|| -&g)),
        Op::Mul => {
            let (xb, yb) = (full(a, &x, &shape)?, full(a, &y, &shape)?);
            (a.need(0).then(|| &g * &yb), a.need(1).then(|| &g * &xb))
        }
        Op::Div => {
            let (xb, yb) = (full(a, &x, &shape)?, full(a, &y, &shape)?);
            let gx = a.need(0).then(|| &g / &yb);
            let gy = a.need(1).then(|| {
                let mut t = g.clone();
                Zip::from(&mut t).and(&xb).and(&yb).for_each(|t, &x, &y| *t = -*t * x / (y * y));
                t
            });
            (gx, gy)
        }
        _ => return Err(a.no_rule("")),
    };
    Ok(vec![gx.map(|g| unbroadcast(g, x.shape())), gy.map(|g| unbroadcast(g, y.shape()))])
}
