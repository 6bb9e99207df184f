//! The `quantize_before_max_pool` pass: `QuantizeLinear(MaxPool(x))` becomes
//! `MaxPool(QuantizeLinear(x))`.
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
        crate::manager::rewrite_each_node(self.name(), graph, swap)
    }
}

/// Rewrite the pair ending at QuantizeLinear `q`, if it matches.
fn swap(g: &mut Graph, q: NodeId) -> Result<bool, IrError> {
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
    let Some(pooled) = input_at(g, q, 0) else { return Ok(false) };
    let pool = pooled.node;
    let Op::MaxPool(attrs) = g.node(pool).op.clone() else { return Ok(false) };
    // The indices output (if declared) must be unread, and the quantizer the only reader.
    let indices_read = (1..g.node(pool).outputs.len()).any(|s| {
        let o = Outlet::new(pool, s);
        !g.consumers(o).is_empty() || g.outputs().contains(&o)
    });
    if pooled.slot != 0 || indices_read || single_consumer(g, pooled) != Some((q, 0)) {
        return Ok(false);
    }
    let Some(x) = input_at(g, pool, 0) else { return Ok(false) };
    if g.value(x).ty.dtype != DType::F32 {
        return Ok(false);
    }
    let inputs: Vec<Option<Outlet>> =
        g.node_inputs(q).iter().copied().enumerate().map(|(i, o)| if i == 0 { Some(x) } else { o }).collect();
    let (q_name, pool_name) = (g.node(q).name.clone(), g.node(pool).name.clone());
    // Named as quantization names its values (`X.quantize`), so tools pairing values by name
    // (`lite-cli diff`) still find the pool's input.
    let name = fresh_name(g, &format!("{}.quantize", g.value(x).name));
    let qx = g.add_node_inferred(name, quantize, &inputs, 1)?[0];
    let y = g.add_node_inferred(pool_name.clone(), Op::MaxPool(attrs), &[Some(qx)], 1)?[0];
    absorb(g, y, Outlet::new(q, 0))?;
    g.remove_node(q);
    g.remove_node(pool);
    tracing::debug!(pool = %pool_name, quantize = %q_name, "quantization moved in front of MaxPool");
    Ok(true)
}
