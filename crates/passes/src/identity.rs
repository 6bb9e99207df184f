//! The `remove_identity` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Remove Identity, inference Dropout, no-op Cast/Reshape/Transpose/Pad/Slice/Expand.
#[derive(Debug, Default)]
pub struct RemoveIdentity;

impl Pass for RemoveIdentity {
    fn name(&self) -> &'static str {
        "remove_identity"
    }
    fn description(&self) -> &'static str {
        "remove Identity, inference Dropout, no-op Cast/Reshape/Transpose/Pad/Slice/Expand"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
