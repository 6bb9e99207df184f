//! Nodes prepared for a fast kernel when the predictor is built.

use super::KernelSet;
use crate::plan::{Plan, Source, Step};
use lithe_ir::{Graph, Op, Outlet, Tensor};
use lithe_kernels::conv2d_gemm::Conv2dGemm;
use lithe_kernels::fully_connected_gemm::FullyConnectedGemm;

/// A node whose constant operands are packed for a fast kernel.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// 2-D Conv as packed GEMM (im2col or pointwise).
    Conv(Conv2dGemm),
    /// FullyConnected as packed GEMM.
    FullyConnected(FullyConnectedGemm),
}

impl Prepared {
    /// Name of the kernel the node runs with (for profiles and logs).
    pub fn kernel_name(&self) -> String {
        match self {
            Prepared::Conv(c) => format!("conv2d_gemm/{}", c.microkernel().name()),
            Prepared::FullyConnected(f) => format!("fc_gemm/{}", f.microkernel().name()),
        }
    }
}

/// Prepare every step of `plan` that a fast kernel can run; `None` for the others.
pub(crate) fn prepare_steps(graph: &Graph, plan: &Plan, kernels: KernelSet) -> Vec<Option<Prepared>> {
    plan.steps.iter().map(|step| prepare_step(graph, step, kernels)).collect()
}

fn prepare_step(graph: &Graph, step: &Step, kernels: KernelSet) -> Option<Prepared> {
    let node = graph.node(step.node);
    let constant = |slot: usize| -> Option<Option<&Tensor>> {
        match step.inputs.get(slot).copied().flatten() {
            None => Some(None),
            Some(Source::Const(id)) => graph.const_value(Outlet::new(id, 0)).map(Some),
            Some(_) => None,
        }
    };
    let result = match &node.op {
        Op::Conv(attrs) => {
            let w = constant(1)??;
            if w.shape().len() != 4 {
                return None;
            }
            Conv2dGemm::prepare(kernels.f32_gemm, attrs, w, constant(2)?, constant(4)?).map(Prepared::Conv)
        }
        Op::FullyConnected(attrs) => {
            let w = constant(1)??;
            FullyConnectedGemm::prepare(kernels.f32_gemm, attrs, w, constant(2)?, constant(3)?)
                .map(Prepared::FullyConnected)
        }
        _ => return None,
    };
    match result {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::debug!(node = %node.name, error = %e, "no fast kernel; the reference kernel runs this node");
            None
        }
    }
}
