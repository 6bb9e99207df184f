//! `QAdd`: the int8 elementwise add of two u8 tensors with onnxruntime's x86 `QLinearAdd`
//! arithmetic (see [`lithe_ir::Op::QAdd`]), so a QDQ model's residual adds give the bytes
//! onnxruntime gives.
//!
//! `c = saturate(round_half_even((k + a·ra) + b·rb))` with `ra = a_scale / c_scale`,
//! `rb = b_scale / c_scale` and `k = c_zp - (ra·a_zp + rb·b_zp)`, each step one f32 operation
//! in that order. Saturation follows `cvtps2dq` then saturating packs: a value whose
//! magnitude is 2³¹ or more, or NaN, becomes 0. The loop is plain element-wise code that
//! vectorizes; threads split the elements.

use super::epilogue::invalid;
use crate::KernelError;

/// Elements per thread below which a call stays on one thread.
const PAR_MIN: usize = 1 << 15;

/// The scales and zero points of a [`qadd_u8`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QAddParams {
    /// A's scale.
    pub a_scale: f32,
    /// A's zero point.
    pub a_zero_point: u8,
    /// B's scale.
    pub b_scale: f32,
    /// B's zero point.
    pub b_zero_point: u8,
    /// The output's scale.
    pub c_scale: f32,
    /// The output's zero point.
    pub c_zero_point: u8,
}

impl QAddParams {
    /// `(ra, rb, k)` of the formula.
    fn factors(&self) -> (f32, f32, f32) {
        let ra = self.a_scale / self.c_scale;
        let rb = self.b_scale / self.c_scale;
        let k = f32::from(self.c_zero_point) - (ra * f32::from(self.a_zero_point) + rb * f32::from(self.b_zero_point));
        (ra, rb, k)
    }
}

/// One output element (the definition every path reproduces).
#[inline(always)]
fn qadd_value(a: u8, b: u8, (ra, rb, k): (f32, f32, f32)) -> u8 {
    // Round half to even by 1.5·2²³ (exact for the clamped value); clamping to the integer
    // bounds first equals saturating after rounding.
    const MAGIC: f32 = 12_582_912.0;
    let v = (k + f32::from(a) * ra) + f32::from(b) * rb;
    // `v` is not NaN inside the branch, so `clamp` is safe.
    let t = if v.abs() < 2_147_483_648.0 { v.clamp(0.0, 255.0) } else { 0.0 };
    ((t + MAGIC).to_bits() - MAGIC.to_bits()) as u8
}

/// `c[i] = QAdd(a[i], b[i])` over slices of one length, on up to `threads` threads.
pub fn qadd_u8(a: &[u8], b: &[u8], p: &QAddParams, c: &mut [u8], threads: usize) -> Result<(), KernelError> {
    if a.len() != b.len() || a.len() != c.len() {
        return Err(invalid(format!("QAdd: A has {}, B {} and C {} elements", a.len(), b.len(), c.len())));
    }
    let f = p.factors();
    crate::parallel::for_unit_runs(c, a.len(), 1, PAR_MIN, threads, |first, part| {
        let n = part.len();
        for ((c, &a), &b) in part.iter_mut().zip(&a[first..first + n]).zip(&b[first..first + n]) {
            *c = qadd_value(a, b, f);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The formula in f64-free scalar steps, written out separately from the kernel.
    fn spelled_out(a: u8, b: u8, p: &QAddParams) -> u8 {
        let ra = p.a_scale / p.c_scale;
        let rb = p.b_scale / p.c_scale;
        let za = ra * p.a_zero_point as f32;
        let zb = rb * p.b_zero_point as f32;
        let k = p.c_zero_point as f32 - (za + zb);
        let s = k + a as f32 * ra;
        let v = s + b as f32 * rb;
        if v.is_nan() || v.abs() >= 2_147_483_648.0 {
            return 0;
        }
        v.round_ties_even().clamp(0.0, 255.0) as u8
    }

    fn params() -> impl Strategy<Value = QAddParams> {
        (1e-4f32..1.0, any::<u8>(), 1e-4f32..1.0, any::<u8>(), 1e-4f32..1.0, any::<u8>()).prop_map(
            |(a_scale, a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point)| QAddParams {
                a_scale,
                a_zero_point,
                b_scale,
                b_zero_point,
                c_scale,
                c_zero_point,
            },
        )
    }

    proptest! {
        #[test]
        fn kernel_matches_the_formula(p in params(), len in 0usize..300, seed in any::<u64>(), threads in 1usize..4) {
            let mut s = seed | 1;
            let mut next = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1); (s >> 56) as u8 };
            let a: Vec<u8> = (0..len).map(|_| next()).collect();
            let b: Vec<u8> = (0..len).map(|_| next()).collect();
            let mut c = vec![0u8; len];
            qadd_u8(&a, &b, &p, &mut c, threads).unwrap();
            for i in 0..len {
                prop_assert_eq!(c[i], spelled_out(a[i], b[i], &p), "element {}", i);
            }
        }
    }

    #[test]
    fn every_byte_pair_matches_and_edges_saturate() {
        // An onnxruntime-measured case: a = 78, b = 147 lands exactly on 98.5 and rounds to even.
        let p = QAddParams {
            a_scale: 0.025960246,
            a_zero_point: 121,
            b_scale: 0.018235594,
            b_zero_point: 128,
            c_scale: 0.02799325,
            c_zero_point: 126,
        };
        let mut c = [0u8];
        qadd_u8(&[78], &[147], &p, &mut c, 1).unwrap();
        assert_eq!(c[0], 98);
        let a: Vec<u8> = (0..=255u8).flat_map(|x| std::iter::repeat_n(x, 256)).collect();
        let b: Vec<u8> = (0..256 * 256).map(|i| i as u8).collect();
        let mut c = vec![0u8; a.len()];
        qadd_u8(&a, &b, &p, &mut c, 2).unwrap();
        for i in 0..a.len() {
            assert_eq!(c[i], spelled_out(a[i], b[i], &p));
        }
        // NaN and overflowing values become 0, as cvtps2dq's integer indefinite does.
        let nan = QAddParams { c_scale: f32::NAN, ..p };
        qadd_u8(&[1], &[1], &nan, &mut c[..1], 1).unwrap();
        assert_eq!(c[0], 0);
        let huge = QAddParams { c_scale: 1e-12, ..p };
        qadd_u8(&[255], &[255], &huge, &mut c[..1], 1).unwrap();
        assert_eq!(c[0], 0);
        assert!(qadd_u8(&[1, 2], &[1], &p, &mut c[..2], 1).is_err());
    }
}
