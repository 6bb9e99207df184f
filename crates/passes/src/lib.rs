//! Lithe graph rewrites: named passes run by a [`PassManager`] to a fixed point.
//!
//! Every pass keeps the graph's outputs (names, types and values, within f32 rounding)
//! unchanged; `tests/` check that on random graphs and on every golden model.
#![warn(missing_docs)]

mod error;
mod manager;
pub mod util;

pub mod fold;

pub use error::PassError;
pub use manager::{Pass, PassManager, PassReport, PassStat};

/// Every pass, in pipeline order.
pub(crate) fn all_passes() -> Vec<Box<dyn Pass>> {
    vec![Box::new(fold::FoldConstants)]
}
