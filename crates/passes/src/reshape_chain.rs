//! The `canonicalize_shapes` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Merge Flatten/Squeeze/Unsqueeze/Reshape chains into one Reshape.
#[derive(Debug, Default)]
pub struct CanonicalizeShapes;

impl Pass for CanonicalizeShapes {
    fn name(&self) -> &'static str {
        "canonicalize_shapes"
    }
    fn description(&self) -> &'static str {
        "merge Flatten/Squeeze/Unsqueeze/Reshape chains into one Reshape"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
