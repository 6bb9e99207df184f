//! The `fuse_hard_swish` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Turn x * HardSigmoid(x) (alpha 1/6, beta 1/2) into HardSwish.
#[derive(Debug, Default)]
pub struct FuseHardSwish;

impl Pass for FuseHardSwish {
    fn name(&self) -> &'static str {
        "fuse_hard_swish"
    }
    fn description(&self) -> &'static str {
        "turn x * HardSigmoid(x) (alpha 1/6, beta 1/2) into HardSwish"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
