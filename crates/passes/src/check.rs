//! Checks of what an optimized graph should no longer contain, used by `lite-cli opt` tests
//! and the golden tests: a BatchNormalization, an activation that could have been fused into
//! the conv before it, or an explicit constant Pad before a Conv (reflect/edge padding has no
//! conv equivalent and may stay).

use lithe_ir::{Graph, Op};

/// One missed optimization, naming the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missed {
    /// The node left in the graph.
    pub node: String,
    /// Why it should not be there.
    pub reason: &'static str,
}

impl std::fmt::Display for Missed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}': {}", self.node, self.reason)
    }
}

/// True for an op that `fuse_activation` can move into a conv epilogue (given constant
/// parameters, which the check does not require: any such activation after a conv counts).
fn fusable_activation(op: &Op) -> bool {
    matches!(
        op,
        Op::Relu
            | Op::Clip
            | Op::LeakyRelu { .. }
            | Op::PRelu
            | Op::HardSwish
            | Op::HardSigmoid { .. }
            | Op::Sigmoid
            | Op::Tanh
    )
}

/// Every missed optimization in `g`.
pub fn missed_optimizations(g: &Graph) -> Vec<Missed> {
    let mut out = Vec::new();
    for id in g.node_ids() {
        let node = g.node(id);
        let first = g.node_inputs(id).first().copied().flatten();
        let producer = first.and_then(|o| g.get_node(o.node).map(|n| (o, n)));
        let reason = match &node.op {
            Op::BatchNormalization { .. } => Some("BatchNormalization left in the graph"),
            op if fusable_activation(op) => producer.and_then(|(o, p)| match &p.op {
                Op::Conv(c)
                    if c.epilogue.activation.is_none() && g.consumers(o).len() == 1 && !g.outputs().contains(&o) =>
                {
                    Some("activation after a conv it could be fused into")
                }
                _ => None,
            }),
            Op::Pad { mode: lithe_ir::op::PadMode::Constant } => {
                let feeds_conv = node.outputs.iter().enumerate().any(|(slot, _)| {
                    g.consumers(lithe_ir::Outlet::new(id, slot))
                        .iter()
                        .any(|&(c, _)| matches!(g.node(c).op, Op::Conv(_)))
                });
                feeds_conv.then_some("Pad before a Conv")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            out.push(Missed { node: node.name.clone(), reason });
        }
    }
    out
}
