//! Elementwise math: Neg (`-dy`), Abs (`dy·sign(x)`, 0 at 0), Exp (`dy·y`), Log (`dy / x`),
//! Sqrt (`dy / (2y)`), Erf (`dy·2/√π·e^(−x²)`).

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
        Op::Erf => Zip::from(&mut g).and(&a.x(0)?).for_each(|g, &x| {
            *g = (f64::from(*g) * std::f64::consts::FRAC_2_SQRT_PI * (-f64::from(x).powi(2)).exp()) as f32
        }),
        _ => return Err(a.no_rule("")),
    }
    Ok(vec![Some(g)])
}
