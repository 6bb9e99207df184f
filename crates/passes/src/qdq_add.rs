//! The `fuse_qdq_add` pass: `QuantizeLinear(DequantizeLinear(A) + DequantizeLinear(B))` on u8
//! values becomes one [`Op::QAdd`], the int8 add of QDQ models' residual connections.
//!
//! Matched: an `Add` of two values provably of one shape (equal sizes or symbols), each `DequantizeLinear` of a u8 value
//! with a constant scalar scale and zero point (absent means 0), whose readers are all
//! `QuantizeLinear` to u8 with one constant scalar scale and zero point. The `QAdd` computes
//! with onnxruntime's `QLinearAdd` arithmetic, so it gives the bytes onnxruntime gives for the
//! same QDQ model; against the float graph it differs only where a value sits on a rounding
//! boundary (one step). It reads and writes one byte per element instead of running three f32
//! passes.

use crate::util::{common_u8_quantize, input_at, replace_readers};
use crate::{Pass, PassError};
use lithe_ir::{DType, Graph, IrError, NodeId, Op, Outlet, Tensor};

/// Fuse dequantize-add-quantize on u8 values into `QAdd`.
#[derive(Debug, Default)]
pub struct FuseQdqAdd;

impl Pass for FuseQdqAdd {
    fn name(&self) -> &'static str {
        "fuse_qdq_add"
    }
    fn description(&self) -> &'static str {
        "QuantizeLinear(DequantizeLinear(A) + DequantizeLinear(B)) on u8 values -> QAdd (onnxruntime's QLinearAdd arithmetic)"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, fuse)
    }
}

/// A one-value constant at `o` of dtype `dtype`.
pub(crate) fn scalar_const(g: &Graph, o: Outlet, dtype: DType) -> bool {
    g.const_value(o).is_some_and(|t| t.dtype() == dtype && t.shape().iter().product::<usize>() == 1)
}

/// `(q, scale, zero point?)` when `o` is `DequantizeLinear` of a u8 value with constant
/// scalar parameters.
pub(crate) fn dequantized_u8(g: &Graph, o: Outlet) -> Option<(Outlet, Outlet, Option<Outlet>)> {
    let Op::DequantizeLinear { .. } = g.get_node(o.node)?.op else { return None };
    let q = input_at(g, o.node, 0)?;
    let s = input_at(g, o.node, 1)?;
    let z = input_at(g, o.node, 2);
    let ok = g.value(q).ty.dtype == DType::U8
        && scalar_const(g, s, DType::F32)
        && z.is_none_or(|z| scalar_const(g, z, DType::U8));
    ok.then_some((q, s, z))
}

/// Fuse the pattern ending at `Add` node `add`, if it matches.
fn fuse(g: &mut Graph, add: NodeId) -> Result<bool, IrError> {
    let Some(node) = g.get_node(add) else { return Ok(false) };
    if !matches!(node.op, Op::Add) || node.outputs.len() != 1 || node.num_inputs != 2 {
        return Ok(false);
    }
    let sum = Outlet::new(add, 0);
    let (Some(a), Some(b)) = (input_at(g, add, 0), input_at(g, add, 1)) else { return Ok(false) };
    let (Some((aq, a_s, a_z)), Some((bq, b_s, b_z))) = (dequantized_u8(g, a), dequantized_u8(g, b)) else {
        return Ok(false);
    };
    let (sa, sb) = (&g.value(aq).ty.shape, &g.value(bq).ty.shape);
    if !sa.as_ref().zip(sb.as_ref()).is_some_and(|(sa, sb)| sa.provably_equal(sb)) {
        return Ok(false);
    }
    let Some((c_s, c_z, readers)) = common_u8_quantize(g, sum) else { return Ok(false) };
    let name = g.node(add).name.clone();
    let zero = |g: &mut Graph, z: Option<Outlet>, label: &str| match z {
        Some(z) => z,
        None => g.add_const(format!("{name}.{label}"), Tensor::scalar(0u8)),
    };
    let a_z = zero(g, a_z, "a_zero_point");
    let b_z = zero(g, b_z, "b_zero_point");
    let inputs = [Some(aq), Some(a_s), Some(a_z), Some(bq), Some(b_s), Some(b_z), Some(c_s), Some(c_z)];
    let q = g.add_node_inferred(format!("{name}.int8"), Op::QAdd, &inputs, 1)?[0];
    replace_readers(g, q, readers)?;
    g.remove_node(add);
    g.node_mut(q.node).name = name.clone();
    tracing::debug!(add = %name, "Add of dequantized u8 values became QAdd");
    Ok(true)
}
