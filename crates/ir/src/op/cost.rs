//! FLOPs per operator.
//!
//! Conventions (per node, for the given input and output types):
//! - Multiply-accumulate ops count 2 FLOPs per multiply-add:
//!   Conv `2 * out_elems * (C_in / group) * prod(kernel)`, ConvTranspose
//!   `2 * in_elems * (C_out / group) * prod(kernel)`, Gemm `2 * M * N * K`, MatMul
//!   `2 * out_elems * K`, FullyConnected `2 * out_elems * K`. A bias (or Gemm's C) adds 1 per
//!   output element; a fused residual adds 1 and a fused activation its own count per element.
//! - Elementwise ops and activations count 1 per output element (Add, Sub, Mul, Div, Pow,
//!   Sqrt, Relu, LeakyRelu, PRelu, Clip, Tanh, Erf, Exp, Log, Neg, Abs, Equal, Where,
//!   QuantizeLinear, DequantizeLinear), except
//!   DynamicQuantizeLinear, 3 per input element (min, max, quantize), and
//!   compound activations: HardSigmoid 3 (mul, add, clamp), Sigmoid 4 (neg, exp, add, div),
//!   HardSwish 4 (mul, add, clamp, mul). Min/Max count `inputs - 1` per output element.
//! - Pools count the window size per output element (MaxPool, AveragePool); global pools
//!   count 1 per input element.
//! - BatchNormalization counts 2 per element (a folded scale and shift); Softmax 5 per
//!   element (max, subtract, exp, sum, divide); LayerNormalization 7 per element (mean,
//!   subtract, square, variance, normalize, scale) plus 1 with a bias; Reduce* and ArgMax 1
//!   per input element, ReduceMean plus 1 per output element for the division.
//! - Resize: nearest is data movement (0); linear counts a multiply-add (2) per tap with
//!   `2^s` taps, cubic `4^s` taps, `s` being the number of axes whose size changes.
//! - Pure data movement and generation count 0: Input, Const, Reshape, Flatten, Transpose,
//!   Squeeze, Unsqueeze, Concat, Split, Gather, Slice, Pad, Shape, Identity, Dropout, Cast,
//!   Expand, ConstantOfShape, Range.
//!
//! Counts saturate at `u64::MAX` instead of overflowing. `None` means a needed shape (or
//! dim) is not fully known.

use super::{Op, ResizeMode};
use crate::{Dim, TypeInfo};

/// The dims of a type when all are known.
fn dims(t: &TypeInfo) -> Option<Vec<u64>> {
    t.shape.as_ref()?.0.iter().map(|d| d.known().map(|n| n as u64)).collect()
}

/// Product of sizes, saturating.
fn product(v: &[u64]) -> u64 {
    v.iter().fold(1u64, |acc, &x| acc.saturating_mul(x))
}

/// Number of elements of a type with a fully known shape.
fn elems(t: &TypeInfo) -> Option<u64> {
    dims(t).map(|d| product(&d))
}

/// Multiply-add helper: `a * b + c`, saturating.
fn mad(a: u64, b: u64, c: u64) -> u64 {
    a.saturating_mul(b).saturating_add(c)
}

/// FLOPs of `op` for the given input and output types, `None` when a needed shape is unknown.
pub fn flops(op: &Op, inputs: &[Option<&TypeInfo>], outputs: &[&TypeInfo]) -> Option<u64> {
    let input = |i: usize| inputs.get(i).copied().flatten();
    let out_elems = || outputs.first().and_then(|t| elems(t));
    let in_elems = |i: usize| input(i).and_then(elems);
    let per_out = |k: u64| out_elems().map(|n| n.saturating_mul(k));
    match op {
        Op::Input
        | Op::Const(_)
        | Op::Reshape { .. }
        | Op::Flatten { .. }
        | Op::Transpose { .. }
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Concat { .. }
        | Op::Split { .. }
        | Op::Gather { .. }
        | Op::Slice
        | Op::Pad { .. }
        | Op::Shape { .. }
        | Op::Identity
        | Op::Dropout
        | Op::Cast { .. }
        | Op::Expand
        | Op::ConstantOfShape { .. }
        | Op::Range => Some(0),
        Op::Conv(c) => {
            let w = dims(input(1)?)?;
            let macs_per_out = product(w.get(1..)?);
            let out = out_elems()?;
            let bias = if input(2).is_some() { out } else { 0 };
            let fused = out.saturating_mul(u64::from(c.epilogue.residual) + c.epilogue.activation.flops_per_element());
            Some(mad(2, out.saturating_mul(macs_per_out), bias).saturating_add(fused))
        }
        Op::QConv(q) => {
            // Integer multiply-adds count like f32 ones (2 per MAC); the requantize is per output.
            let w = dims(input(3)?)?;
            let macs_per_out = product(w.get(1..)?);
            let out = out_elems()?;
            let e = &q.conv.epilogue;
            let per_elem = 2 + u64::from(e.residual) + e.activation.flops_per_element() + u64::from(input(7).is_some());
            Some(mad(2, out.saturating_mul(macs_per_out), out.saturating_mul(per_elem)))
        }
        Op::FullyConnected(f) => {
            let w = dims(input(1)?)?;
            let k = *w.first()?;
            let out = out_elems()?;
            let bias = if input(2).is_some() { out } else { 0 };
            let act = out.saturating_mul(f.activation.flops_per_element());
            Some(mad(2, out.saturating_mul(k), bias).saturating_add(act))
        }
        Op::ConvTranspose(_) => {
            let w = dims(input(1)?)?;
            let macs_per_in = product(w.get(1..)?);
            let x = in_elems(0)?;
            let bias = if input(2).is_some() { out_elems()? } else { 0 };
            Some(mad(2, x.saturating_mul(macs_per_in), bias))
        }
        Op::Gemm(g) => {
            let a = dims(input(0)?)?;
            let k = *a.get(if g.trans_a { 0 } else { 1 })?;
            let out = out_elems()?;
            let c = if input(2).is_some() { out } else { 0 };
            Some(mad(2, out.saturating_mul(k), c))
        }
        Op::MatMul => {
            let a = dims(input(0)?)?;
            let k = *a.last()?;
            Some(2u64.saturating_mul(out_elems()?).saturating_mul(k))
        }
        Op::Relu
        | Op::LeakyRelu { .. }
        | Op::PRelu
        | Op::Clip
        | Op::Tanh
        | Op::Sqrt
        | Op::Erf
        | Op::Exp
        | Op::Log
        | Op::Neg
        | Op::Abs
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Pow
        | Op::Equal
        | Op::Where
        | Op::QuantizeLinear { .. }
        | Op::DequantizeLinear { .. } => per_out(1),
        // Two multiplies and two adds per element.
        Op::QAdd => per_out(4),
        // One add per input element.
        Op::QGlobalAveragePool => in_elems(0),
        // A min/max pass, then the quantization.
        Op::DynamicQuantizeLinear => Some(in_elems(0)?.saturating_mul(3)),
        Op::HardSigmoid { .. } => per_out(3),
        Op::Sigmoid | Op::HardSwish => per_out(4),
        Op::Min | Op::Max => per_out(inputs.len().saturating_sub(1) as u64),
        Op::BatchNormalization { .. } => per_out(2),
        Op::Softmax(_) => per_out(5),
        Op::LayerNormalization { .. } => per_out(if input(2).is_some() { 8 } else { 7 }),
        Op::MaxPool(p) => per_out(product(&p.kernel_shape.iter().map(|&k| k as u64).collect::<Vec<_>>())),
        Op::AveragePool(p) => per_out(product(&p.pool.kernel_shape.iter().map(|&k| k as u64).collect::<Vec<_>>())),
        Op::GlobalAveragePool | Op::GlobalMaxPool => in_elems(0),
        Op::ReduceSum(_) | Op::ReduceMax(_) | Op::ArgMax(_) => in_elems(0),
        Op::ReduceMean(_) => Some(in_elems(0)?.saturating_add(out_elems()?)),
        Op::Resize(r) => {
            let taps_per_axis: u64 = match r.mode {
                ResizeMode::Nearest => return Some(0),
                ResizeMode::Linear => 2,
                ResizeMode::Cubic => 4,
            };
            let x = &input(0)?.shape.as_ref()?.0;
            let y = &outputs.first()?.shape.as_ref()?.0;
            if x.len() != y.len() || x.iter().chain(y).any(|d| !matches!(d, Dim::Known(_))) {
                return None;
            }
            let changed = x.iter().zip(y).filter(|(a, b)| a != b).count() as u32;
            per_out(2u64.saturating_mul(taps_per_axis.saturating_pow(changed)))
        }
    }
}
