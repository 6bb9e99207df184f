//! Weight-only quantization, no calibration data (`lite-cli opt --quant weight-int8|weight-int16`).
//!
//! Every constant f32 weight of a Conv, ConvTranspose, Gemm, MatMul or FullyConnected is
//! replaced by a symmetric per-channel quantized constant (int8 or int16) and a
//! `DequantizeLinear` that restores it. The `.nb` stores the integers (a quarter or half of
//! the bytes); the predictor dequantizes them once when it loads, so execution stays fp32.
//! Channels run along the output axis: axis 0 of conv weights (`O x I/g x kH x kW`), axis 1
//! of conv-transpose weights (`I x O/g x kH x kW`), the `N` axis of matmul/gemm/FC weights.
//! Scales are `max|w_c| / n` with `n = 2^(b-1) - 1` (127 or 32767), so `-n..=n` is used
//! and every channel's largest weight is exact.
//!
//! Values round to the nearest level, then each channel's rounding is made sum-preserving
//! ([`Rounding::SumPreserving`]): `d = round(Σ (w/s - level))` levels are moved, one each, up
//! (or down) on the weights whose rounding had gone furthest the other way, so the channel's
//! level sum is the nearest integer to `Σ w/s`. Each weight stays within one step of its value
//! (its floor or ceiling level). Without data the inputs' means are unknown, but a filter's
//! taps mostly see inputs with similar means (all nine taps of a depthwise 3x3 read the same
//! channel), so the channel's output then keeps its mean instead of shifting by
//! `mean(x)·Σ Δw`: on the ImageNet MobileNetV2 this takes int8 top-1 agreement with fp32 on
//! the evaluation crops from 75.8% to 93.8% (docs/quantization.md).
//!
//! With int8 weights the biases of those ops are stored as int16 with one scale per bias
//! (`max|b| / 32767`): their rounding error, at most `1.5e-5` of the largest bias, is far
//! below the int8 weights' `3.9e-3`, and it keeps MobileNet-style models (one bias value per
//! 9 depthwise weights) near a quarter of their size. With int16 weights biases stay f32.

use crate::QuantError;
use lithe_ir::{DType, Graph, Op, Outlet, Tensor};
use ndarray::{ArrayD, Axis};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The integer width of weight-only quantization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightBits {
    /// 8-bit weights (about 25% of the fp32 size).
    Int8,
    /// 16-bit weights (about 50% of the fp32 size).
    Int16,
}

impl WeightBits {
    /// The largest quantized magnitude `2^(b-1) - 1`.
    pub fn max_level(self) -> f32 {
        match self {
            WeightBits::Int8 => 127.0,
            WeightBits::Int16 => 32767.0,
        }
    }

    /// The dtype the weights are stored in.
    pub fn dtype(self) -> DType {
        match self {
            WeightBits::Int8 => DType::I8,
            WeightBits::Int16 => DType::I16,
        }
    }
}

impl fmt::Display for WeightBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightBits::Int8 => "weight-int8",
            WeightBits::Int16 => "weight-int16",
        })
    }
}

impl FromStr for WeightBits {
    type Err = QuantError;
    fn from_str(s: &str) -> Result<WeightBits, QuantError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "weight-int8" | "int8" | "8" => Ok(WeightBits::Int8),
            "weight-int16" | "int16" | "16" => Ok(WeightBits::Int16),
            other => Err(QuantError::Setting {
                field: "quant",
                reason: format!("'{other}' is not a weight-only mode (weight-int8, weight-int16)"),
            }),
        }
    }
}

/// What [`quantize_weights`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightOnlyReport {
    /// Weights quantized.
    pub quantized: usize,
    /// Biases stored as int16 (int8 mode only).
    pub biases: usize,
    /// Bytes of those weights and biases before (f32).
    pub bytes_before: usize,
    /// Bytes of the quantized weights and biases and their scales.
    pub bytes_after: usize,
    /// Per weight, the largest absolute rounding error relative to its channel's max |w|
    /// (below `1 / n`: sum-preserving rounding moves some values to their farther level),
    /// largest first.
    pub worst_relative_error: Vec<(String, f32)>,
}

/// How one constant is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Storage {
    /// A weight, per channel along the axis, at the requested width.
    Weight { axis: usize },
    /// A bias, one int16 scale for the tensor.
    Bias,
}

/// How input `slot` of `op` is stored when it is a constant of rank `rank`, if it is a
/// weight (slot 1) or a 1-D bias (slot 2) of a quantized op.
pub(crate) fn storage_of(op: &Op, slot: usize, rank: usize) -> Option<Storage> {
    let weight_axis = match op {
        Op::Conv(_) if rank >= 3 => Some(0),
        Op::ConvTranspose(_) if rank >= 3 => Some(1),
        Op::Gemm(g) if rank == 2 => Some(if g.trans_b { 0 } else { 1 }),
        Op::MatMul | Op::FullyConnected(_) if rank >= 2 => Some(rank - 1),
        _ => None,
    };
    let has_bias = matches!(op, Op::Conv(_) | Op::ConvTranspose(_) | Op::FullyConnected(_));
    match slot {
        1 => weight_axis.map(|axis| Storage::Weight { axis }),
        2 if has_bias && rank == 1 => Some(Storage::Bias),
        _ => None,
    }
}

/// Quantize every eligible constant weight of `graph` to `bits` (see the module docs).
///
/// A constant read by several nodes is quantized once when every reader uses it the same
/// way; a constant also read any other way stays f32, as do weights with fewer than
/// `min_elements` elements.
pub fn quantize_weights(
    graph: &mut Graph,
    bits: WeightBits,
    min_elements: usize,
) -> Result<WeightOnlyReport, QuantError> {
    // Constant outlet -> how every reader agrees to store it (None: left as it is).
    let mut plan: BTreeMap<Outlet, Option<Storage>> = BTreeMap::new();
    for id in graph.node_ids() {
        let inputs = graph.node_inputs(id);
        for (slot, input) in inputs.iter().enumerate() {
            let Some(o) = *input else { continue };
            let Some(t) = graph.const_value(o) else { continue };
            let wanted = storage_of(&graph.node(id).op, slot, t.shape().len())
                .filter(|_| t.dtype() == DType::F32 && t.len() >= min_elements.max(1))
                .filter(|s| *s != Storage::Bias || bits == WeightBits::Int8);
            let entry = plan.entry(o).or_insert(wanted);
            if *entry != wanted {
                *entry = None;
            }
        }
    }
    for o in graph.outputs() {
        plan.insert(*o, None);
    }
    let mut report = WeightOnlyReport::default();
    for (o, storage) in plan {
        let Some(storage) = storage else { continue };
        let Some(w) = graph.const_value(o) else { continue };
        let w = w.expect_view::<f32>("weight")?.to_owned();
        let name = graph.value(o).name.clone();
        let (q, axis) = match storage {
            Storage::Weight { axis } => {
                (quantize_per_channel(&w, Some(axis), bits, Rounding::SumPreserving), Some(axis))
            }
            Storage::Bias => (quantize_per_channel(&w, None, WeightBits::Int16, Rounding::Nearest), None),
        };
        report.bytes_before += w.len() * 4;
        report.bytes_after += q.values.size_bytes() + q.scales.len() * 4;
        match storage {
            Storage::Weight { .. } => {
                report.worst_relative_error.push((name.clone(), q.worst_relative_error));
                report.quantized += 1;
            }
            Storage::Bias => report.biases += 1,
        }
        replace_with_dequantize(graph, o, &name, q, axis)?;
    }
    report.worst_relative_error.sort_by(|a, b| b.1.total_cmp(&a.1));
    graph.infer_shapes()?;
    Ok(report)
}

/// A weight quantized per channel.
pub(crate) struct Quantized {
    pub(crate) values: Tensor,
    pub(crate) scales: Vec<f32>,
    pub(crate) worst_relative_error: f32,
}

/// How a channel's values are rounded to levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rounding {
    /// Each value to its nearest level, ties to even (what static int8 and QAT use).
    Nearest,
    /// Nearest, then levels moved so the channel's level sum is the nearest integer to the
    /// sum of its scaled values (see the module docs).
    SumPreserving,
}

/// Move levels of one channel (`t`: finite scaled values, `levels`: their nearest levels in
/// `-n..=n`) by one step each so that `Σ levels == round_half_even(Σ t)`: the moved ones are
/// those whose rounding went furthest the other way (ties to the lower index).
fn preserve_sum(t: &[f64], levels: &mut [i32], n: i32) {
    let frac: Vec<f64> = t.iter().zip(levels.iter()).map(|(&t, &l)| t - f64::from(l)).collect();
    let d = frac.iter().sum::<f64>().round_ties_even();
    if d == 0.0 || !d.is_finite() {
        return;
    }
    let up = d > 0.0;
    // Candidates: rounded down (frac > 0) when levels must go up, rounded up otherwise.
    let mut order: Vec<usize> = (0..t.len())
        .filter(|&i| if up { frac[i] > 0.0 && levels[i] < n } else { frac[i] < 0.0 && levels[i] > -n })
        .collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = if up { (frac[b], frac[a]) } else { (frac[a], frac[b]) };
        fa.total_cmp(&fb).then(a.cmp(&b))
    });
    for &i in order.iter().take(d.abs() as usize) {
        levels[i] += if up { 1 } else { -1 };
    }
}

/// Symmetric quantization of `w`, per channel along `axis` or per tensor.
pub(crate) fn quantize_per_channel(
    w: &ArrayD<f32>,
    axis: Option<usize>,
    bits: WeightBits,
    rounding: Rounding,
) -> Quantized {
    let n = bits.max_level();
    let mut scales = Vec::new();
    let mut worst = 0.0f32;
    let mut levels = ArrayD::<i32>::zeros(w.shape());
    let mut quantize_lane = |lane: ndarray::ArrayViewD<'_, f32>, mut out: ndarray::ArrayViewMutD<'_, i32>| {
        let max = lane.iter().fold(0.0f32, |m, &v| if v.is_finite() { m.max(v.abs()) } else { m });
        // An all-zero channel keeps scale 1 (any scale represents it exactly).
        let scale = if max > 0.0 { max / n } else { 1.0 };
        scales.push(scale);
        let vals: Vec<f32> = lane.iter().copied().collect();
        let mut lv: Vec<i32> = vals.iter().map(|&v| (v / scale).round_ties_even().clamp(-n, n) as i32).collect();
        if rounding == Rounding::SumPreserving {
            // Non-finite weights (their levels fixed by the clamp) take no part.
            let finite: Vec<usize> = (0..vals.len()).filter(|&i| vals[i].is_finite()).collect();
            let t: Vec<f64> = finite.iter().map(|&i| f64::from(vals[i] / scale)).collect();
            let mut sub: Vec<i32> = finite.iter().map(|&i| lv[i]).collect();
            preserve_sum(&t, &mut sub, n as i32);
            for (&i, &l) in finite.iter().zip(&sub) {
                lv[i] = l;
            }
        }
        out.iter_mut().zip(&lv).for_each(|(q, &l)| *q = l);
        for (&q, &v) in out.iter().zip(lane.iter()) {
            if max > 0.0 && v.is_finite() {
                worst = worst.max((q as f32 * scale - v).abs() / max);
            }
        }
    };
    match axis {
        Some(axis) => {
            for (lane, out) in w.axis_iter(Axis(axis)).zip(levels.axis_iter_mut(Axis(axis))) {
                quantize_lane(lane, out);
            }
        }
        None => quantize_lane(w.view(), levels.view_mut()),
    }
    let values = match bits {
        WeightBits::Int8 => Tensor::from(levels.mapv(|v| v as i8)),
        WeightBits::Int16 => Tensor::from(levels.mapv(|v| v as i16)),
    };
    Quantized { values, scales, worst_relative_error: worst }
}

impl Quantized {
    /// The scales as `DequantizeLinear` takes them: 1-D per axis, or a scalar.
    pub(crate) fn scale_tensor(&self, per_axis: bool) -> Result<Tensor, QuantError> {
        Ok(if per_axis {
            Tensor::from_vec(&[self.scales.len()], self.scales.clone())?
        } else {
            Tensor::scalar(self.scales.first().copied().unwrap_or(1.0))
        })
    }
}

/// Add `Const(q) -> DequantizeLinear(axis)` for the weight `name` (per-axis scales along
/// `axis`, or one scalar scale); returns the dequantized value, named `{name}.dq`.
pub(crate) fn dequantize_node(
    graph: &mut Graph,
    name: &str,
    q: Quantized,
    axis: Option<usize>,
) -> Result<Outlet, QuantError> {
    let scale = q.scale_tensor(axis.is_some())?;
    let values = graph.add_const(format!("{name}.q"), q.values);
    let scales = graph.add_const(format!("{name}.scale"), scale);
    let axis = i64::try_from(axis.unwrap_or(0))
        .map_err(|_| QuantError::Setting { field: "axis", reason: "too large".into() })?;
    Ok(graph.add_node_inferred(
        format!("{name}.dq"),
        Op::DequantizeLinear { axis },
        &[Some(values), Some(scales)],
        1,
    )?[0])
}

/// Replace the constant at `o` by `DequantizeLinear(q, scales)` whose output keeps `name`.
fn replace_with_dequantize(
    graph: &mut Graph,
    o: Outlet,
    name: &str,
    q: Quantized,
    axis: Option<usize>,
) -> Result<(), QuantError> {
    let dq_out = dequantize_node(graph, name, q, axis)?;
    graph.replace_uses(o, dq_out)?;
    remove_if_unread(graph, o);
    // The replaced constant is gone: the weight's name is free again.
    graph.value_mut(dq_out).name = name.to_string();
    Ok(())
}

/// Remove the node of `o` when nothing (no node, no graph output) reads it any more.
pub(crate) fn remove_if_unread(graph: &mut Graph, o: Outlet) {
    let outs = graph.node(o.node).outputs.len();
    let read = (0..outs).any(|s| {
        let v = Outlet::new(o.node, s);
        !graph.consumers(v).is_empty() || graph.outputs().contains(&v)
    });
    if !read {
        graph.remove_node(o.node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sum_preserving_rounding_keeps_the_channel_sum(
            t in prop::collection::vec(-127.0f64..=127.0, 1..80),
        ) {
            let n = 127;
            let nearest: Vec<i32> = t.iter().map(|v| v.round_ties_even() as i32).collect();
            let mut levels = nearest.clone();
            preserve_sum(&t, &mut levels, n);
            let want = t.iter().sum::<f64>().round_ties_even() as i64;
            prop_assert_eq!(levels.iter().map(|&l| i64::from(l)).sum::<i64>(), want);
            for ((&l, &v), &q) in levels.iter().zip(&t).zip(&nearest) {
                // Each level is its value's floor or ceiling, inside the range.
                prop_assert!((f64::from(l) - v).abs() < 1.0, "{} for {}", l, v);
                prop_assert!((-n..=n).contains(&l));
                prop_assert!((l - q).abs() <= 1);
            }
            // Only the values whose rounding went furthest the other way moved: every moved
            // one is at least as far from its nearest level as every unmoved candidate.
            let moved: Vec<f64> = (0..t.len()).filter(|&i| levels[i] != nearest[i]).map(|i| (t[i] - f64::from(nearest[i])).abs()).collect();
            let kept: Vec<f64> = (0..t.len())
                .filter(|&i| levels[i] == nearest[i] && (t[i] - f64::from(nearest[i])) * f64::from(levels.iter().sum::<i32>() - nearest.iter().sum::<i32>()) > 0.0)
                .map(|i| (t[i] - f64::from(nearest[i])).abs())
                .collect();
            if let (Some(lo), Some(hi)) = (moved.iter().copied().reduce(f64::min), kept.iter().copied().reduce(f64::max)) {
                prop_assert!(lo >= hi, "moved {:?} kept {:?}", moved, kept);
            }
        }
    }

    #[test]
    fn a_channel_rounded_all_one_way_is_corrected() {
        // Eight taps at x.4 all round down: the nearest levels lose 3.2 steps of sum, so
        // three of them (the first three, all tied) go up.
        let w =
            ArrayD::from_shape_vec(vec![1, 1, 3, 3], vec![127.0f32, 10.4, 10.4, 10.4, 10.4, 10.4, 10.4, 10.4, 10.4])
                .unwrap();
        let near = quantize_per_channel(&w, Some(0), WeightBits::Int8, Rounding::Nearest);
        assert_eq!(near.values.to_i64_vec(), vec![127, 10, 10, 10, 10, 10, 10, 10, 10]);
        let q = quantize_per_channel(&w, Some(0), WeightBits::Int8, Rounding::SumPreserving);
        assert_eq!(q.values.to_i64_vec(), vec![127, 11, 11, 11, 10, 10, 10, 10, 10]);
        assert_eq!(q.scales, vec![1.0]);
        // A NaN weight keeps its clamp level and takes no part.
        let w = ArrayD::from_shape_vec(vec![1, 3], vec![127.0f32, f32::NAN, 0.6]).unwrap();
        let q = quantize_per_channel(&w, Some(0), WeightBits::Int8, Rounding::SumPreserving);
        assert_eq!(q.values.to_i64_vec(), vec![127, 0, 1]);
    }
}
