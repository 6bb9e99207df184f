//! The `fuse_activation` pass: an activation right after a Conv or FullyConnected moves into
//! that op's epilogue.
//!
//! The producer's output must be f32 and read only by the activation, and the producer must
//! not have an activation yet (a conv may already have a fused residual). Clip needs constant
//! scalar bounds (absent ones are infinite); PRelu needs a constant slope that broadcasts to
//! the output, which becomes an input of the fused op (conv slot 4, FullyConnected slot 3):
//! the fused kernel broadcasts it against the same output shape the PRelu saw.

use crate::util::{absorb, const_input, input_at, scalar_f32, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::op::Activation;
use lithe_ir::{DType, Dim, Graph, IrError, NodeId, Op, Outlet};

/// The activation of node `act` (reading `x`), with the PRelu slope outlet when it has one.
fn activation_of(g: &Graph, act: NodeId, x: Outlet) -> Option<(Activation, Option<Outlet>)> {
    let node = g.get_node(act)?;
    let a = match node.op {
        Op::Relu => Activation::Relu,
        Op::LeakyRelu { alpha } => Activation::LeakyRelu { alpha },
        Op::HardSwish => Activation::HardSwish,
        Op::HardSigmoid { alpha, beta } => Activation::HardSigmoid { alpha, beta },
        Op::Sigmoid => Activation::Sigmoid,
        Op::Tanh => Activation::Tanh,
        Op::Clip => {
            let bound = |slot: usize, absent: f32| -> Option<f32> {
                match input_at(g, act, slot) {
                    None => Some(absent),
                    Some(_) => {
                        let t = const_input(g, act, slot)?;
                        (t.dtype() == DType::F32 && t.quant.is_none()).then_some(())?;
                        scalar_f32(t)
                    }
                }
            };
            let min = bound(1, f32::NEG_INFINITY)?;
            let max = bound(2, f32::INFINITY)?;
            if min.is_nan() || max.is_nan() || node.num_inputs > 3 {
                return None;
            }
            Activation::Clip { min, max }
        }
        Op::PRelu => {
            let slope = input_at(g, act, 1)?;
            let t = g.const_value(slope)?;
            if t.dtype() != DType::F32 || t.quant.is_some() || !broadcasts_to(t.shape(), g, x) {
                return None;
            }
            return Some((Activation::PRelu, Some(slope)));
        }
        _ => return None,
    };
    // Only PRelu has a second input among these ops (Clip's bounds are handled above).
    let extra_inputs = node.num_inputs > 1 && !matches!(node.op, Op::Clip);
    (!extra_inputs).then_some((a, None))
}

/// True when `slope` broadcasts (unidirectionally) to the value at `x`, whose dims must be
/// known wherever the slope is not 1.
fn broadcasts_to(slope: &[usize], g: &Graph, x: Outlet) -> bool {
    let Some(shape) = g.value(x).ty.shape.as_ref() else { return false };
    let dims = shape.dims();
    if slope.len() > dims.len() {
        return false;
    }
    let offset = dims.len() - slope.len();
    slope.iter().enumerate().all(|(i, &s)| s == 1 || dims[offset + i] == Dim::Known(s))
}

/// The producer of `x` when it can take an activation: `(node, slope slot)`.
fn fusable_producer(g: &Graph, x: Outlet, act: NodeId) -> Option<(NodeId, usize)> {
    if x.slot != 0 || single_consumer(g, x) != Some((act, 0)) || g.value(x).ty.dtype != DType::F32 {
        return None;
    }
    match &g.get_node(x.node)?.op {
        Op::Conv(c) if c.epilogue.activation.is_none() => Some((x.node, 4)),
        Op::FullyConnected(f) if f.activation.is_none() => Some((x.node, 3)),
        _ => None,
    }
}

/// Fuse Relu, Clip, LeakyRelu, PRelu, HardSwish, HardSigmoid, Sigmoid, Tanh into the preceding Conv or FullyConnected.
#[derive(Debug, Default)]
pub struct FuseActivation;

impl FuseActivation {
    fn try_fuse(g: &mut Graph, act: NodeId) -> Result<bool, IrError> {
        let Some(node) = g.get_node(act) else { return Ok(false) };
        if node.outputs.len() != 1 {
            return Ok(false);
        }
        let Some(x) = input_at(g, act, 0) else { return Ok(false) };
        let Some((prod, slope_slot)) = fusable_producer(g, x, act) else { return Ok(false) };
        let Some((activation, slope)) = activation_of(g, act, x) else { return Ok(false) };
        tracing::debug!(activation = activation.name(), into = %g.node(prod).name, "fused activation");
        if let Some(s) = slope {
            g.set_input(prod, slope_slot, Some(s))?;
        }
        match &mut g.node_mut(prod).op {
            Op::Conv(c) => c.epilogue.activation = activation,
            Op::FullyConnected(f) => f.activation = activation,
            _ => {}
        }
        absorb(g, x, Outlet::new(act, 0))?;
        g.remove_node(act);
        Ok(true)
    }
}

impl Pass for FuseActivation {
    fn name(&self) -> &'static str {
        "fuse_activation"
    }
    fn description(&self) -> &'static str {
        "fuse Relu, Clip, LeakyRelu, PRelu, HardSwish, HardSigmoid, Sigmoid, Tanh into the preceding Conv or FullyConnected"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, Self::try_fuse)
    }
}
