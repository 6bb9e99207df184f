//! Lithe graph rewrites: named passes run by a [`PassManager`] to a fixed point.
//!
//! Every pass keeps the graph's outputs (names, types and values, within f32 rounding)
//! unchanged; `tests/` check that on random graphs and on every golden model.
#![warn(missing_docs)]

pub mod check;
mod error;
mod manager;
pub mod util;

pub mod activation;
pub mod batch_norm;
pub mod cancel_pairs;
pub mod dead_code;
pub mod fold;
pub mod fold_pad;
pub mod fully_connected;
pub mod hard_swish;
pub mod identity;
pub mod qdq_add;
pub mod qdq_conv;
pub mod qdq_global_pool;
pub mod qdq_pool;
pub mod qdq_relu;
pub mod reshape_chain;
pub mod residual;

pub use error::PassError;
pub use manager::{Pass, PassManager, PassReport, PassStat, op_histogram};

/// Every pass, in pipeline order.
pub(crate) fn all_passes() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(fold::FoldConstants),
        Box::new(identity::RemoveIdentity),
        Box::new(reshape_chain::CanonicalizeShapes),
        Box::new(cancel_pairs::CancelTransposeReshape),
        Box::new(fold_pad::FoldPad),
        Box::new(batch_norm::FoldBatchNorm),
        Box::new(batch_norm::BatchNormToAffine),
        Box::new(batch_norm::FoldConvAffine),
        Box::new(hard_swish::FuseHardSwish),
        Box::new(fully_connected::MatMulToFc),
        Box::new(residual::FuseConvResidual),
        Box::new(activation::FuseActivation),
        Box::new(qdq_relu::QuantizeThroughClamp),
        Box::new(qdq_pool::QuantizeBeforeMaxPool),
        Box::new(qdq_pool::QuantizeBeforeReshape),
        Box::new(qdq_conv::FuseQdqConv),
        Box::new(qdq_add::FuseQdqAdd),
        Box::new(qdq_global_pool::FuseQdqGlobalAveragePool),
        Box::new(dead_code::DeadCode),
    ]
}
