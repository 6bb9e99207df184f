//! The converter registry: ONNX operator type (default domain) to the function that turns a
//! node of that type into IR nodes.

use crate::OnnxError;
use crate::context::NodeCtx;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Converts one ONNX node, adding IR nodes through the context.
pub(crate) type Converter = fn(&mut NodeCtx<'_>) -> Result<(), OnnxError>;

/// Converters by ONNX operator type.
#[derive(Default)]
pub(crate) struct Registry {
    map: BTreeMap<&'static str, Converter>,
}

impl Registry {
    /// The registry with every converter of the `ops` modules.
    pub(crate) fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            let mut r = Registry::default();
            crate::ops::register_all(&mut r);
            r
        })
    }

    /// Register `f` for `op_type`.
    pub(crate) fn add(&mut self, op_type: &'static str, f: Converter) {
        self.map.insert(op_type, f);
    }

    /// The converter for `op_type`.
    pub(crate) fn get(&self, op_type: &str) -> Option<Converter> {
        self.map.get(op_type).copied()
    }

    /// Every registered operator type, sorted.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.map.keys().copied().collect()
    }
}
