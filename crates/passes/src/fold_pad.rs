//! The `fold_pad` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Fold an explicit constant Pad into the following Conv, AveragePool or MaxPool.
#[derive(Debug, Default)]
pub struct FoldPad;

impl Pass for FoldPad {
    fn name(&self) -> &'static str {
        "fold_pad"
    }
    fn description(&self) -> &'static str {
        "fold an explicit constant Pad into the following Conv, AveragePool or MaxPool"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
