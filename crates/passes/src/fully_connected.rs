//! The `matmul_to_fc` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Turn MatMul (+ Add) and Gemm with a constant weight into FullyConnected.
#[derive(Debug, Default)]
pub struct MatMulToFc;

impl Pass for MatMulToFc {
    fn name(&self) -> &'static str {
        "matmul_to_fc"
    }
    fn description(&self) -> &'static str {
        "turn MatMul (+ Add) and Gemm with a constant weight into FullyConnected"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
