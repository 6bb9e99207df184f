//! The `cancel_transpose_reshape` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Merge consecutive Transposes and remove Transpose/Reshape pairs that cancel.
#[derive(Debug, Default)]
pub struct CancelTransposeReshape;

impl Pass for CancelTransposeReshape {
    fn name(&self) -> &'static str {
        "cancel_transpose_reshape"
    }
    fn description(&self) -> &'static str {
        "merge consecutive Transposes and remove Transpose/Reshape pairs that cancel"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
