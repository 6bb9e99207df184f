//! Which constants are trained.

use crate::rules::differentiable_slot;
use lithe_ir::{DType, Graph, NodeId, Op, Outlet};

/// The trainable constants of a graph.
///
/// By default every f32 `Const` that feeds a differentiable input slot of some node (conv and
/// gemm weights and biases, batch-norm scale and bias, PRelu slopes, operands of Add/Mul...) is
/// trainable; batch-norm running statistics, Clip bounds and shape tensors are not. Constants
/// whose name matches a freeze glob (`*` any run, `?` one character) are left out.
#[derive(Clone, Debug, Default)]
pub struct Params {
    nodes: Vec<NodeId>,
    names: Vec<String>,
}

impl Params {
    /// Every trainable f32 constant of `graph` except those whose name matches a glob of `freeze`.
    pub fn select(graph: &Graph, freeze: &[&str]) -> Params {
        let mut p = Params::default();
        let mut ids = graph.initializers();
        ids.sort();
        for id in ids {
            let node = graph.node(id);
            let Op::Const(t) = &node.op else { continue };
            if t.dtype() != DType::F32 {
                continue;
            }
            let feeds_weight = graph
                .consumers(Outlet::new(id, 0))
                .iter()
                .any(|&(c, slot)| differentiable_slot(&graph.node(c).op, slot));
            if !feeds_weight || freeze.iter().any(|g| glob_match(g, &node.name)) {
                continue;
            }
            p.nodes.push(id);
            p.names.push(node.name.clone());
        }
        p
    }

    /// The trainable constants' nodes, in node order.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Their names, in the same order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Their outlets (output 0 of each node).
    pub fn outlets(&self) -> Vec<Outlet> {
        self.nodes.iter().map(|&n| Outlet::new(n, 0)).collect()
    }

    /// Number of trainable constants.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when nothing is trainable.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Total number of trainable scalars.
    pub fn num_scalars(&self, graph: &Graph) -> usize {
        self.nodes.iter().filter_map(|&n| graph.const_value(Outlet::new(n, 0))).map(|t| t.len()).sum()
    }
}

/// Glob match over the whole name: `*` matches any run of characters, `?` exactly one.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("conv1.*", "conv1.weight"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*.bias", "fc.2.bias"));
        assert!(glob_match("c?nv*", "conv_7"));
        assert!(!glob_match("conv1.*", "conv10weight"));
        assert!(!glob_match("*.bias", "fc.bias.x"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }
}
