//! Elementwise math: Neg (`-dy`), Abs (`dy·sign(x)`, 0 at 0), Exp (`dy·y`), Log (`dy / x`),
//! Sqrt (`dy / (2y)`).

use super::{BackwardArgs, InputGrads};
use crate::TrainError;
use lithe_ir::Op;
use ndarray::Zip;

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let mut g = a.gy(0)?;
    match a.op {
        Op::Neg => g.mapv_inplace(|v| -v),
        Op::Abs => Zip::from(&mut g).and(&a.x(0)?).for_each(|g, &x| {
            *g = if x > 0.0 {
                *g
            } else if x < 0.0 {
                -*g
            } else {
                0.0
            }
        }),
        Op::Exp => Zip::from(&mut g).and(&a.y(0)?).for_each(|g, &y| *g *= y),
        Op::Log => Zip::from(&mut g).and(&a.x(0)?).for_each(|g, &x| *g /= x),
        Op::Sqrt => Zip::from(&mut g).and(&a.y(0)?).for_each(|g, &y| *g /= 2.0 * y),
        _ => return Err(a.no_rule("")),
    }
    Ok(vec![Some(g)])
}
