//! The `fuse_qdq_global_average_pool` pass:
//! `QuantizeLinear(GlobalAveragePool(DequantizeLinear(X)))` on a u8 NCHW value becomes one
//! [`Op::QGlobalAveragePool`], the pooled classifier input of QDQ models.
//!
//! Matched: a `GlobalAveragePool` of a rank-4 `DequantizeLinear` of a u8 value with a constant
//! scalar scale and zero point (absent means 0), whose readers are all `QuantizeLinear` to u8
//! with one constant scalar scale and zero point. The op computes with onnxruntime's
//! `QLinearGlobalAveragePool` arithmetic (an integer sum, then one multiply), so it gives
//! onnxruntime's bytes; against the float graph it differs only where a value sits on a
//! rounding boundary (one step).

use crate::qdq_add::dequantized_u8;
use crate::util::{common_u8_quantize, input_at, replace_readers};
use crate::{Pass, PassError};
use lithe_ir::{Graph, IrError, NodeId, Op, Outlet, Tensor};

/// Fuse dequantize-pool-quantize on u8 values into `QGlobalAveragePool`.
#[derive(Debug, Default)]
pub struct FuseQdqGlobalAveragePool;

impl Pass for FuseQdqGlobalAveragePool {
    fn name(&self) -> &'static str {
        "fuse_qdq_global_average_pool"
    }
    fn description(&self) -> &'static str {
        "QuantizeLinear(GlobalAveragePool(DequantizeLinear(X))) on u8 values -> QGlobalAveragePool (onnxruntime's QLinearGlobalAveragePool arithmetic)"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, fuse)
    }
}

/// Fuse the pattern around `GlobalAveragePool` node `pool`, if it matches.
fn fuse(g: &mut Graph, pool: NodeId) -> Result<bool, IrError> {
    let Some(node) = g.get_node(pool) else { return Ok(false) };
    if !matches!(node.op, Op::GlobalAveragePool) || node.outputs.len() != 1 {
        return Ok(false);
    }
    let Some(x) = input_at(g, pool, 0) else { return Ok(false) };
    let Some((q, s, z)) = dequantized_u8(g, x) else { return Ok(false) };
    if g.value(q).ty.shape.as_ref().is_none_or(|s| s.rank() != 4) {
        return Ok(false);
    }
    let Some((y_s, y_z, readers)) = common_u8_quantize(g, Outlet::new(pool, 0)) else { return Ok(false) };
    let name = g.node(pool).name.clone();
    let z = match z {
        Some(z) => z,
        None => g.add_const(format!("{name}.x_zero_point"), Tensor::scalar(0u8)),
    };
    let inputs = [Some(q), Some(s), Some(z), Some(y_s), Some(y_z)];
    let out = g.add_node_inferred(format!("{name}.int8"), Op::QGlobalAveragePool, &inputs, 1)?[0];
    replace_readers(g, out, readers)?;
    g.remove_node(pool);
    g.node_mut(out.node).name = name.clone();
    tracing::debug!(pool = %name, "GlobalAveragePool of dequantized u8 values became QGlobalAveragePool");
    Ok(true)
}
