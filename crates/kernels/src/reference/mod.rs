//! Reference kernels: one function per operator over [`Tensor`]s.

use crate::KernelError;
use lithe_ir::{Op, Tensor};

/// Evaluate `op` on `inputs` (`None` for absent optional inputs), producing `num_outputs` tensors.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], num_outputs: usize) -> Result<Vec<Tensor>, KernelError> {
    let _ = (inputs, num_outputs);
    Err(KernelError::Unsupported { op: op.name(), detail: "not written yet".into() })
}
