//! Shape: a tensor's dimensions as an i64 vector.

use lithe_ir::Tensor;
use ndarray::Array1;

/// The dimensions of `x` from axis `start` up to `end` (`None`: the rank), as 1-D i64.
/// Negative bounds count from the end; both clamp to `0..=rank`; `start >= end` gives `[]`.
pub fn shape(x: &Tensor, start: i64, end: Option<i64>) -> Tensor {
    let dims = x.shape();
    let rank = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v.saturating_add(rank) } else { v }).clamp(0, rank) as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(rank)));
    let out: Vec<i64> = dims.get(s..e.max(s)).unwrap_or(&[]).iter().map(|&d| d as i64).collect();
    Tensor::from(Array1::from(out).into_dyn())
}
