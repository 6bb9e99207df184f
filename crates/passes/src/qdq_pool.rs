//! The `quantize_before_max_pool` pass: `QuantizeLinear(MaxPool(x))` becomes
//! `MaxPool(QuantizeLinear(x))`; and `quantize_before_reshape`: the same for Reshape, Flatten,
//! Squeeze and Unsqueeze, which only relabel elements, so per-tensor quantization commutes with
//! them exactly. That brings a classifier's `GlobalAveragePool -> Flatten -> QuantizeLinear`
//! to `QuantizeLinear(GlobalAveragePool)`, which `fuse_qdq_global_average_pool` fuses.
//!
//! Quantization is monotonic (non-decreasing), so the maximum of quantized values equals the
//! quantized maximum, and a window entirely in the padding (-inf in f32) gives the type's
//! minimum either way: the rewrite is exact. It moves the quantization next to the producer of
//! `x`, where `fuse_qdq_conv` folds it into an int8 conv's requantizing epilogue, and the pool
//! then reads and writes 8-bit values (ResNet's stem conv and max pool). Applies to per-tensor
//! `QuantizeLinear` to u8 or s8 reading a `MaxPool`'s only output that nothing else reads.

use crate::util::{absorb, const_input, fresh_name, input_at, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Outlet};

/// Move per-tensor 8-bit quantization in front of max pooling.
#[derive(Debug, Default)]
pub struct QuantizeBeforeMaxPool;

impl Pass for QuantizeBeforeMaxPool {
    fn name(&self) -> &'static str {
        "quantize_before_max_pool"
    }
    fn description(&self) -> &'static str {
        "QuantizeLinear(MaxPool(x)) -> MaxPool(QuantizeLinear(x)), exact, so the pool runs on 8-bit values"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, |g, q| swap(g, q, |op| matches!(op, Op::MaxPool(_))))
    }
}

/// Move per-tensor 8-bit quantization in front of shape-only ops.
#[derive(Debug, Default)]
pub struct QuantizeBeforeReshape;

impl Pass for QuantizeBeforeReshape {
    fn name(&self) -> &'static str {
        "quantize_before_reshape"
    }
    fn description(&self) -> &'static str {
        "QuantizeLinear(Reshape(x)) -> Reshape(QuantizeLinear(x)) (also Flatten, Squeeze, Unsqueeze), exact"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, |g, q| {
            swap(g, q, |op| matches!(op, Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze))
        })
    }
}

/// Rewrite the pair ending at QuantizeLinear `q` when its input comes from an op `movable`
/// accepts (its data input at slot 0, its other inputs kept).
fn swap(g: &mut Graph, q: NodeId, movable: impl Fn(&Op) -> bool) -> Result<bool, IrError> {
    let Some(node) = g.get_node(q) else { return Ok(false) };
    let quantize = node.op.clone();
    if !matches!(quantize, Op::QuantizeLinear { to: DType::U8 | DType::I8, .. }) {
        return Ok(false);
    }
    if node.outputs.len() != 1 {
        return Ok(false);
    }
    let per_tensor = |slot| const_input(g, q, slot).is_some_and(|t| t.len() == 1);
    if !per_tensor(1) || input_at(g, q, 2).is_some_and(|_| !per_tensor(2)) {
        return Ok(false);
    }
    let Some(mid_out) = input_at(g, q, 0) else { return Ok(false) };
    let mid = mid_out.node;
    let op = g.node(mid).op.clone();
    if !movable(&op) {
        return Ok(false);
    }
    // The indices output (if declared) must be unread, and the quantizer the only reader.
    let indices_read = (1..g.node(mid).outputs.len()).any(|s| {
        let o = Outlet::new(mid, s);
        !g.consumers(o).is_empty() || g.outputs().contains(&o)
    });
    if mid_out.slot != 0 || indices_read || single_consumer(g, mid_out) != Some((q, 0)) {
        return Ok(false);
    }
    let Some(x) = input_at(g, mid, 0) else { return Ok(false) };
    if g.value(x).ty.dtype != DType::F32 {
        return Ok(false);
    }
    let inputs: Vec<Option<Outlet>> =
        g.node_inputs(q).iter().copied().enumerate().map(|(i, o)| if i == 0 { Some(x) } else { o }).collect();
    let (q_name, mid_name) = (g.node(q).name.clone(), g.node(mid).name.clone());
    // Named as quantization names its values (`X.quantize`), so tools pairing values by name
    // (`lite-cli diff`) still find the input of the moved op.
    let name = fresh_name(g, &format!("{}.quantize", g.value(x).name));
    let qx = g.add_node_inferred(name, quantize, &inputs, 1)?[0];
    let moved: Vec<Option<Outlet>> =
        g.node_inputs(mid).iter().copied().enumerate().map(|(i, o)| if i == 0 { Some(qx) } else { o }).collect();
    let y = g.add_node_inferred(mid_name.clone(), op, &moved, 1)?[0];
    absorb(g, y, Outlet::new(q, 0))?;
    g.remove_node(q);
    g.remove_node(mid);
    tracing::debug!(node = %mid_name, quantize = %q_name, "quantization moved in front of it");
    Ok(true)
}
