//! The `fuse_conv_residual` pass.

use crate::{Pass, PassError};
use lithe_ir::Graph;

/// Fuse an elementwise Add of a same-shape tensor into the preceding Conv.
#[derive(Debug, Default)]
pub struct FuseConvResidual;

impl Pass for FuseConvResidual {
    fn name(&self) -> &'static str {
        "fuse_conv_residual"
    }
    fn description(&self) -> &'static str {
        "fuse an elementwise Add of a same-shape tensor into the preceding Conv"
    }
    fn run(&self, _graph: &mut Graph) -> Result<usize, PassError> {
        Ok(0) // placeholder until the pass lands
    }
}
