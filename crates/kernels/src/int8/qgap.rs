//! `QGlobalAveragePool`: the int8 global average pool with onnxruntime's x86
//! `QLinearGlobalAveragePool` arithmetic (see [`lithe_ir::Op::QGlobalAveragePool`]): per plane
//! of `n` u8 values, `y = saturate(round_half_even(f32(Σx - x_zp·n) · s) + y_zp)` with
//! `s = x_scale / (y_scale · n)` (f32: a product, then a quotient). The sum is exact in i64 and
//! wraps to i32 as onnxruntime's does (it only can past 2²³ values a plane); saturation follows
//! `cvtps2dq` then saturating packs (2³¹ or more, or NaN, becomes 0).

use super::epilogue::invalid;
use crate::KernelError;

/// The scales and zero points of a [`qglobal_average_pool_u8`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QGapParams {
    /// The input's scale.
    pub x_scale: f32,
    /// The input's zero point.
    pub x_zero_point: u8,
    /// The output's scale.
    pub y_scale: f32,
    /// The output's zero point.
    pub y_zero_point: u8,
}

/// One output value from a plane's integer sum.
#[inline]
fn requantize(sum: i64, n: usize, p: &QGapParams, scale: f32) -> u8 {
    let acc = sum.wrapping_sub(i64::from(p.x_zero_point) * n as i64) as i32;
    let zp = f32::from(p.y_zero_point);
    let v = acc as f32 * scale;
    if v.is_nan() || v.abs() >= 2_147_483_648.0 {
        return 0;
    }
    // Clamping to the integer bounds first equals saturating after rounding.
    (v.clamp(-zp, 255.0 - zp).round_ties_even() + zp) as u8
}

/// Average each of the `planes` contiguous planes of `x` (`x.len() / planes` values each) into
/// one byte of `y` (`planes` long).
pub fn qglobal_average_pool_u8(x: &[u8], planes: usize, p: &QGapParams, y: &mut [u8]) -> Result<(), KernelError> {
    if y.len() != planes || (planes == 0 && !x.is_empty()) || (planes > 0 && !x.len().is_multiple_of(planes)) {
        return Err(invalid(format!(
            "QGlobalAveragePool: {} values into {} planes, {} outputs",
            x.len(),
            planes,
            y.len()
        )));
    }
    let n = x.len().checked_div(planes).unwrap_or(0);
    let scale = p.x_scale / (p.y_scale * n as f32);
    for (out, plane) in y.iter_mut().zip(x.chunks(n.max(1))) {
        let sum: i64 = plane.iter().map(|&v| i64::from(v)).sum();
        *out = requantize(sum, n, p, scale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formula_and_rejects_bad_lengths() {
        let p = QGapParams { x_scale: 0.0231, x_zero_point: 3, y_scale: 0.0117, y_zero_point: 9 };
        let x: Vec<u8> = (0..3 * 49).map(|i| (i * 97 % 256) as u8).collect();
        let mut y = [0u8; 3];
        qglobal_average_pool_u8(&x, 3, &p, &mut y).unwrap();
        for (c, &got) in y.iter().enumerate() {
            let sum: i32 = x[c * 49..(c + 1) * 49].iter().map(|&v| i32::from(v)).sum::<i32>() - 3 * 49;
            let s = 0.0231f32 / (0.0117f32 * 49.0);
            let want = ((sum as f32 * s).round_ties_even() + 9.0).clamp(0.0, 255.0) as u8;
            assert_eq!(got, want, "channel {c}");
        }
        let nan = QGapParams { y_scale: f32::NAN, ..p };
        qglobal_average_pool_u8(&x, 3, &nan, &mut y).unwrap();
        assert_eq!(y, [0, 0, 0]);
        assert!(qglobal_average_pool_u8(&x[..10], 3, &p, &mut y).is_err());
        assert!(qglobal_average_pool_u8(&x, 3, &p, &mut y[..2]).is_err());
    }
}
