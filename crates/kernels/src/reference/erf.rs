//! The Gauss error function in f64.
//!
//! - `|x| < 1`: the Maclaurin series `2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))`, which
//!   converges fast there with little cancellation.
//! - `1 <= |x| < 6`: `1 - erfc(x)` with Laplace's continued fraction
//!   `erfc(x) = exp(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))`,
//!   evaluated bottom-up with enough terms for full f64 precision; `exp(-x^2)` is computed
//!   with `x^2` split exactly into two parts.
//! - `|x| >= 6`: `erfc(x) < 2.2e-17`, so the result is `±1` exactly.
//!
//! Checked against 40-digit values over `[0, 6.5]`: absolute error below 5e-16, relative error
//! below 8e-16.

use std::f64::consts::{FRAC_2_SQRT_PI, PI};

/// Beyond this magnitude erf is ±1 in f64.
const SATURATION: f64 = 6.0;

/// The error function `erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt`.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let y = if a < 1.0 {
        maclaurin(a)
    } else if a < SATURATION {
        1.0 - erfc_continued_fraction(a)
    } else {
        1.0
    };
    y.copysign(x)
}

/// erf(a) for `0 <= a < 1` by its Maclaurin series.
fn maclaurin(a: f64) -> f64 {
    let a2 = a * a;
    let mut power = a; // (-1)^n a^(2n+1) / n!
    let mut sum = a;
    for n in 1..60u32 {
        power *= -a2 / f64::from(n);
        let term = power / f64::from(2 * n + 1);
        sum += term;
        if term.abs() <= sum.abs() * 1e-17 {
            break;
        }
    }
    FRAC_2_SQRT_PI * sum
}

/// erfc(a) for `1 <= a < 6` by Laplace's continued fraction.
fn erfc_continued_fraction(a: f64) -> f64 {
    // Terms needed for convergence to f64 precision (fewer as `a` grows).
    let terms: u32 = if a < 2.0 {
        200
    } else if a < 3.0 {
        100
    } else {
        50
    };
    let mut t = a;
    for k in (1..=terms).rev() {
        t = a + f64::from(k) / 2.0 / t;
    }
    exp_neg_square(a) / (PI.sqrt() * t)
}

/// `exp(-a^2)` without the rounding error of `a * a`: `a = hi + lo` with `hi` holding 26
/// significant bits, so `hi * hi` is exact and `a^2 = hi^2 + (2 hi + lo) lo`.
fn exp_neg_square(a: f64) -> f64 {
    let hi = f64::from_bits(a.to_bits() & !((1u64 << 27) - 1));
    let lo = a - hi;
    (-hi * hi).exp() * (-(2.0 * hi + lo) * lo).exp()
}
