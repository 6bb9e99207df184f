//! Random initialization of weights.

use crate::rng::Rng;
use lithe_ir::Tensor;

/// Kaiming (He) normal: `N(0, 2 / fan_in)`, for weights followed by ReLU.
pub fn kaiming_normal(shape: &[usize], fan_in: usize, rng: &mut Rng) -> Tensor {
    let std = (2.0 / fan_in.max(1) as f64).sqrt();
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| (rng.normal() * std) as f32).collect()).expect("sizes agree")
}

/// Uniform in `[-bound, bound]` with `bound = 1 / sqrt(fan_in)` (torch's default for linear
/// and conv layers, also used for their biases).
pub fn fan_in_uniform(shape: &[usize], fan_in: usize, rng: &mut Rng) -> Tensor {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32).collect())
        .expect("sizes agree")
}

/// A tensor filled with `v`.
pub fn filled(shape: &[usize], v: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, vec![v; n]).expect("sizes agree")
}
