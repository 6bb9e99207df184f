//! The `dead_code` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Remove nodes no graph output depends on.
#[derive(Debug, Default)]
pub struct DeadCode;

impl Pass for DeadCode {
    fn name(&self) -> &'static str {
        "dead_code"
    }
    fn description(&self) -> &'static str {
        "remove nodes no graph output depends on"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
