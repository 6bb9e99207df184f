//! The `quantize_through_clamp` pass: `QuantizeLinear(Relu(x))` becomes `QuantizeLinear(x)`
//! when the quantized type's own saturation already does the Relu's work.
//!
//! Quantization `q = saturate(round(x / scale) + zero_point)` is monotonic, so a clamp
//! `Clip(x, lo, hi)` before it changes nothing when `lo` quantizes to the type's minimum (or
//! below) and `hi` to its maximum (or above): every value the clamp moves ends at the saturated
//! end either way. A Relu (`lo = 0`, no `hi`) before a u8 quantization of zero point 0 is the
//! common case: quantized models' `Add -> Relu -> QuantizeLinear` (ResNet's residual adds),
//! which then fuses into one `QAdd`. onnxruntime's quantizer drops such activations for the same
//! reason. Applies to per-tensor u8/s8 `QuantizeLinear` with constant scalar parameters, and
//! `Clip` bounds that are constant scalars; the clamp stays when something else reads it.

use crate::util::{const_input, input_at};
use crate::{Pass, PassError};
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Tensor};

/// Drop Relu/Clip in front of a quantization whose saturation makes them redundant.
#[derive(Debug, Default)]
pub struct QuantizeThroughClamp;

impl Pass for QuantizeThroughClamp {
    fn name(&self) -> &'static str {
        "quantize_through_clamp"
    }
    fn description(&self) -> &'static str {
        "QuantizeLinear(Relu(x)) -> QuantizeLinear(x) (and Clip) when the quantized type saturates at the same bounds, exact"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, bypass)
    }
}

/// The single value of a one-element f32 constant.
fn scalar(t: &Tensor) -> Option<f32> {
    (t.len() == 1).then(|| t.to_f32_vec().first().copied()).flatten()
}

/// Read the clamp at the input of QuantizeLinear `q` from `x` directly, if that is exact.
fn bypass(g: &mut Graph, q: NodeId) -> Result<bool, IrError> {
    let Some(node) = g.get_node(q) else { return Ok(false) };
    let (qmin, qmax) = match node.op {
        Op::QuantizeLinear { to: DType::U8, .. } => (0.0f32, 255.0f32),
        Op::QuantizeLinear { to: DType::I8, .. } => (-128.0, 127.0),
        _ => return Ok(false),
    };
    let Some(scale) = const_input(g, q, 1).and_then(scalar) else { return Ok(false) };
    let zero_point = match input_at(g, q, 2) {
        None => 0.0,
        Some(_) => match const_input(g, q, 2) {
            Some(t) if t.len() == 1 => t.to_f32_vec()[0],
            _ => return Ok(false),
        },
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Ok(false);
    }
    let Some(clamped) = input_at(g, q, 0) else { return Ok(false) };
    let clamp = clamped.node;
    let (lo, hi) = match g.node(clamp).op {
        Op::Relu => (Some(0.0f32), None),
        Op::Clip => {
            let bound = |slot| match input_at(g, clamp, slot) {
                None => Ok(None),
                Some(_) => const_input(g, clamp, slot).and_then(scalar).map(Some).ok_or(()),
            };
            match (bound(1), bound(2)) {
                (Ok(lo), Ok(hi)) => (lo, hi),
                _ => return Ok(false),
            }
        }
        _ => return Ok(false),
    };
    // Where the bounds land on the quantized grid. A quarter step of slack keeps the test
    // exact under either rounding of `bound / scale` (division or multiplication by the
    // reciprocal): a bound within a quarter step of the saturation point is not trusted.
    let level = |b: f32| b / scale + zero_point;
    let low_saturates = lo.is_none_or(|lo| level(lo) <= qmin + 0.25);
    let high_saturates = hi.is_none_or(|hi| level(hi) >= qmax - 0.25);
    let Some(x) = input_at(g, clamp, 0) else { return Ok(false) };
    if !(low_saturates && high_saturates) || g.value(x).ty.dtype != DType::F32 {
        return Ok(false);
    }
    g.set_input(q, 0, Some(x))?;
    if g.consumers(clamped).is_empty() && !g.outputs().contains(&clamped) {
        g.remove_node(clamp);
    }
    tracing::debug!(quantize = %g.node(q).name, "clamp before QuantizeLinear made redundant by saturation");
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithe_ir::{Outlet, TypeInfo};

    /// `x -> clamp -> QuantizeLinear(scale, zp)` with the clamp made by `clamp`.
    fn graph(
        clamp: impl FnOnce(&mut Graph, Outlet) -> Outlet,
        scale: f32,
        zp: Option<u8>,
        extra_reader: bool,
    ) -> Graph {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TypeInfo::new(DType::F32, [2, 3]));
        let c = clamp(&mut g, x);
        let s = g.add_const("s", Tensor::scalar(scale));
        let z = zp.map(|z| g.add_const("z", Tensor::scalar(z)));
        let q = g
            .add_node_inferred("q", Op::QuantizeLinear { axis: 1, to: DType::U8 }, &[Some(c), Some(s), z], 1)
            .unwrap()[0];
        g.set_outputs(vec![q]);
        if extra_reader {
            let n = g.add_node_inferred("neg", Op::Neg, &[Some(c)], 1).unwrap()[0];
            g.set_outputs(vec![q, n]);
        }
        g
    }

    fn relu(g: &mut Graph, x: Outlet) -> Outlet {
        g.add_node_inferred("relu", Op::Relu, &[Some(x)], 1).unwrap()[0]
    }

    fn clip(lo: f32, hi: f32) -> impl FnOnce(&mut Graph, Outlet) -> Outlet {
        move |g: &mut Graph, x: Outlet| {
            let l = g.add_const("lo", Tensor::scalar(lo));
            let h = g.add_const("hi", Tensor::scalar(hi));
            g.add_node_inferred("clip", Op::Clip, &[Some(x), Some(l), Some(h)], 1).unwrap()[0]
        }
    }

    fn ops(g: &Graph) -> Vec<&'static str> {
        g.node_ids().into_iter().map(|id| g.node(id).op.name()).filter(|n| *n != "Input" && *n != "Const").collect()
    }

    #[test]
    fn relu_before_u8_zero_point_0_goes() {
        let mut g = graph(relu, 0.1, Some(0), false);
        assert_eq!(QuantizeThroughClamp.run(&mut g).unwrap(), 1);
        assert_eq!(ops(&g), ["QuantizeLinear"]);
        let mut g = graph(relu, 0.1, None, false);
        assert_eq!(QuantizeThroughClamp.run(&mut g).unwrap(), 1);
    }

    #[test]
    fn relu_stays_when_the_zero_point_is_not_the_minimum() {
        let mut g = graph(relu, 0.1, Some(3), false);
        assert_eq!(QuantizeThroughClamp.run(&mut g).unwrap(), 0);
        assert_eq!(ops(&g), ["Relu", "QuantizeLinear"]);
    }

    #[test]
    fn relu_with_another_reader_is_kept_for_it() {
        let mut g = graph(relu, 0.1, Some(0), true);
        assert_eq!(QuantizeThroughClamp.run(&mut g).unwrap(), 1);
        assert_eq!(ops(&g), ["Relu", "QuantizeLinear", "Neg"]);
    }

    #[test]
    fn clip_goes_only_when_both_bounds_saturate() {
        // 6 / (6/255) = 255: the top saturates.
        let mut g = graph(clip(0.0, 6.0), 6.0 / 255.0, Some(0), false);
        assert_eq!(QuantizeThroughClamp.run(&mut g).unwrap(), 1);
        // A range wider than the clip: the clip's top (level 127.5) is inside it.
        let mut g = graph(clip(0.0, 6.0), 12.0 / 255.0, Some(0), false);
        assert_eq!(QuantizeThroughClamp.run(&mut g).unwrap(), 0);
        // The bottom at level 1.
        let mut g = graph(clip(0.1, 6.0), 0.1, Some(0), false);
        assert_eq!(QuantizeThroughClamp.run(&mut g).unwrap(), 0);
    }
}
