//! From the trained fake-quantized graph to the int8 graph.

use super::QatModel;
use crate::QuantError;
use lithe_ir::{DType, Graph, Op};
use lithe_kernels::reference::quantize::quantize_linear;
use lithe_passes::PassManager;

impl QatModel {
    /// The QDQ graph of the trained model: the shape [`crate::ptq::quantize_static`] gives,
    /// with each activation's stored scale (see [`QatModel::thresholds`]) and each weight
    /// quantized to int8 with the abs-max scales of its final values (the weights the
    /// fake-quantized graph computed with). Below 8 bits each activation keeps its Clip.
    pub fn convert(&self) -> Result<Graph, QuantError> {
        let mut g = self.graph.clone();
        self.fake.write_eval_scales(&mut g)?;
        self.remove_pact(&mut g)?;
        for w in &self.fake.weights {
            let ins = g.node_inputs(w.q_node);
            let (Some(Some(wo)), Some(Some(so))) = (ins.first().copied(), ins.get(1).copied()) else {
                return Err(QuantError::Run(format!("the fake quantizer of weight '{}' lost an input", w.name)));
            };
            let (Some(values), Some(scale)) = (g.const_value(wo), g.const_value(so)) else {
                return Err(QuantError::Run(format!("weight '{}' or its scale is not a constant", w.name)));
            };
            let axis = match &g.node(w.q_node).op {
                Op::QuantizeLinear { axis, .. } => *axis,
                _ => 0,
            };
            let q = quantize_linear(values, scale, None, axis, DType::I8)
                .map_err(|e| QuantError::Run(format!("weight '{}': {e}", w.name)))?;
            let name = format!("{}.q", w.name);
            let name = if g.find_value(&name).is_none() { name } else { format!("{}.q.int8", w.name) };
            let c = g.add_const(name, q);
            g.set_input(w.dq_node, 0, Some(c))?;
        }
        g.remove_unused();
        g.infer_shapes()?;
        g.validate()?;
        Ok(g)
    }

    /// Drop each PACT clip whose `a` is at least the activation's threshold: the quantizer
    /// saturates there already (up to one level below zero point 128 when the threshold is
    /// within 1/128 of `a`). A clip below the threshold stays, so the converted graph computes
    /// what the trained one does.
    fn remove_pact(&self, g: &mut Graph) -> Result<(), QuantError> {
        for (i, a) in self.fake.acts.iter().enumerate() {
            let Some(p) = a.pact else { continue };
            let alpha = g.const_value(p.alpha).and_then(|t| t.to_f32_vec().first().copied()).unwrap_or(0.0);
            if self.fake.eval_threshold(i, None) > alpha {
                continue;
            }
            for (reader, slot) in g.consumers(p.output) {
                g.set_input(reader, slot, Some(p.x))?;
            }
        }
        Ok(())
    }

    /// [`QatModel::convert`] followed by the optimizer (`lite-cli opt`'s pipeline): every
    /// quantized conv and fully connected layer becomes a `QConv` run by the int8 kernels.
    pub fn convert_int8(&self) -> Result<Graph, QuantError> {
        let mut g = self.convert()?;
        PassManager::default_pipeline().run(&mut g)?;
        Ok(g)
    }
}
