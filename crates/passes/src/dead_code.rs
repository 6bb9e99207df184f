//! The `dead_code` pass: remove every node no graph output depends on.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Remove nodes no graph output depends on (graph inputs stay, even when unused).
#[derive(Debug, Default)]
pub struct DeadCode;

impl Pass for DeadCode {
    fn name(&self) -> &'static str {
        "dead_code"
    }
    fn description(&self) -> &'static str {
        "remove nodes no graph output depends on"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        Ok(remove_dead_code(graph))
    }
}

/// Remove every node that no graph output depends on, graph inputs excepted; returns how many.
pub fn remove_dead_code(g: &mut Graph) -> usize {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let before: Vec<(lithe_ir::NodeId, String, &'static str)> =
            g.node_ids().into_iter().map(|id| (id, g.node(id).name.clone(), g.node(id).op.name())).collect();
        let removed = g.remove_unused();
        for (id, name, op) in before {
            if g.get_node(id).is_none() {
                tracing::debug!(node = %name, op, "removed a node no output depends on");
            }
        }
        removed
    } else {
        g.remove_unused()
    }
}
