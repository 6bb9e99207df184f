//! The `fuse_activation` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Fuse Relu, Clip, LeakyRelu, PRelu, HardSwish, HardSigmoid, Sigmoid, Tanh into the preceding Conv or FullyConnected.
#[derive(Debug, Default)]
pub struct FuseActivation;

impl Pass for FuseActivation {
    fn name(&self) -> &'static str {
        "fuse_activation"
    }
    fn description(&self) -> &'static str {
        "fuse Relu, Clip, LeakyRelu, PRelu, HardSwish, HardSigmoid, Sigmoid, Tanh into the preceding Conv or FullyConnected"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
