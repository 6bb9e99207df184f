//! Weights stored quantized (`Const` int8/int16 -> `DequantizeLinear`, as `lite-cli opt --quant
//! weight-int8|weight-int16` writes them) are dequantized once when the predictor loads, so
//! the fp32 kernels pack them like any other weight and execution stays fp32.

use crate::RuntimeError;
use lithe_ir::{Graph, Op, Outlet};
use lithe_kernels::reference::quantize::dequantize_linear;

/// Replace every `DequantizeLinear` whose inputs are all constants by its f32 value, then
/// drop the quantized constants nothing reads any more. Returns how many were replaced.
pub(crate) fn dequantize_constant_weights(graph: &mut Graph) -> Result<usize, RuntimeError> {
    let mut replaced = 0;
    for id in graph.node_ids() {
        let node = graph.node(id);
        let Op::DequantizeLinear { axis } = node.op else { continue };
        let inputs = graph.node_inputs(id);
        // Absent inputs stay `None`; a present input that is not a constant stops the fold.
        let mut consts = Vec::with_capacity(inputs.len());
        for i in &inputs {
            match i {
                None => consts.push(None),
                Some(o) => match graph.const_value(*o) {
                    Some(t) => consts.push(Some(t)),
                    None => break,
                },
            }
        }
        if consts.len() != inputs.len() {
            continue;
        }
        let [Some(q), Some(scale), rest @ ..] = consts.as_slice() else { continue };
        let zero_point = rest.first().copied().flatten();
        let value = dequantize_linear(q, scale, zero_point, axis).map_err(|source| RuntimeError::Node {
            node: node.name.clone(),
            op: "DequantizeLinear",
            source,
        })?;
        let name = node.outputs[0].name.clone();
        // A temporary name: the replaced node holds the real one until it is removed.
        let c = graph.add_const(format!("{name}\u{0}dequantized"), value);
        graph.replace_uses(Outlet::new(id, 0), c).map_err(RuntimeError::Graph)?;
        graph.remove_node(id);
        graph.node_mut(c.node).name = name.clone();
        graph.value_mut(c).name = name;
        replaced += 1;
    }
    if replaced > 0 {
        graph.remove_unused();
        tracing::debug!(replaced, "dequantized constant weights at load");
    }
    Ok(replaced)
}
