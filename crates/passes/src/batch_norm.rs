//! The `fold_batch_norm` passes.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Fold BatchNormalization into the preceding Conv, ConvTranspose, Gemm or FullyConnected.
#[derive(Debug, Default)]
pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold_batch_norm"
    }
    fn description(&self) -> &'static str {
        "fold BatchNormalization into the preceding Conv, ConvTranspose, Gemm or FullyConnected"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}

/// Turn a remaining BatchNormalization into a per-channel multiply-add.
#[derive(Debug, Default)]
pub struct BatchNormToAffine;

impl Pass for BatchNormToAffine {
    fn name(&self) -> &'static str {
        "batch_norm_to_affine"
    }
    fn description(&self) -> &'static str {
        "turn a remaining BatchNormalization into a per-channel multiply-add"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
