//! The pass manager: an ordered list of named passes, each enabled or not, run in rounds
//! until a round changes nothing.

use crate::PassError;
use lithe_ir::{Graph, IrError, NodeId, Op};
use std::collections::BTreeMap;

/// Run `rewrite` on every node in one topological order (taken before any rewrite) and count
/// the nodes it rewrote; the loop most passes share. Errors are reported as pass `name`'s.
pub(crate) fn rewrite_each_node(
    name: &'static str,
    graph: &mut Graph,
    mut rewrite: impl FnMut(&mut Graph, NodeId) -> Result<bool, IrError>,
) -> Result<usize, PassError> {
    let mut n = 0;
    for id in graph.topo_order().map_err(|e| PassError::graph(name, e))? {
        if rewrite(graph, id).map_err(|e| PassError::graph(name, e))? {
            n += 1;
        }
    }
    Ok(n)
}

/// A graph rewrite.
pub trait Pass: Send + Sync {
    /// Unique snake_case name (`fold_batch_norm`), used by `--passes` / `--disable-pass`.
    fn name(&self) -> &'static str;
    /// One line saying what the pass does.
    fn description(&self) -> &'static str;
    /// Apply the rewrite once over the whole graph; return how many rewrites were made.
    /// Must leave a valid graph whose outputs keep their names, types and values.
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError>;
}

/// What one pass did over a whole [`PassManager::run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassStat {
    /// The pass name.
    pub name: String,
    /// Rewrites made, all rounds together.
    pub changes: usize,
}

/// What a [`PassManager::run`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassReport {
    /// Rounds run (the last one changed nothing).
    pub rounds: usize,
    /// One entry per enabled pass, in pipeline order.
    pub stats: Vec<PassStat>,
    /// Node count per op type before (Input and Const excluded).
    pub ops_before: BTreeMap<String, usize>,
    /// Node count per op type after.
    pub ops_after: BTreeMap<String, usize>,
}

impl PassReport {
    /// Names of the passes that changed something.
    pub fn applied(&self) -> Vec<String> {
        self.stats.iter().filter(|s| s.changes > 0).map(|s| s.name.clone()).collect()
    }
}

/// Node count per op type (Input and Const excluded).
pub fn op_histogram(graph: &Graph) -> BTreeMap<String, usize> {
    let mut h = BTreeMap::new();
    for id in graph.node_ids() {
        let op = &graph.node(id).op;
        if !matches!(op, Op::Input | Op::Const(_)) {
            *h.entry(op.name().to_string()).or_insert(0) += 1;
        }
    }
    h
}

/// An ordered pipeline of passes.
pub struct PassManager {
    passes: Vec<(Box<dyn Pass>, bool)>,
    max_rounds: usize,
}

impl std::fmt::Debug for PassManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.passes.iter().map(|(p, on)| (p.name(), *on))).finish()
    }
}

impl Default for PassManager {
    fn default() -> Self {
        PassManager::default_pipeline()
    }
}

impl PassManager {
    /// An empty pipeline.
    pub fn empty() -> PassManager {
        PassManager { passes: Vec::new(), max_rounds: 16 }
    }

    /// Every pass, in the order `lite-cli opt` runs them, all enabled.
    pub fn default_pipeline() -> PassManager {
        let mut m = PassManager::empty();
        for p in crate::all_passes() {
            m.push(p);
        }
        m
    }

    /// Append a pass, enabled.
    pub fn push(&mut self, pass: Box<dyn Pass>) {
        self.passes.push((pass, true));
    }

    /// `(name, description, enabled)` of every pass, in order.
    pub fn list(&self) -> Vec<(&'static str, &'static str, bool)> {
        self.passes.iter().map(|(p, on)| (p.name(), p.description(), *on)).collect()
    }

    fn position(&self, name: &str) -> Result<usize, PassError> {
        self.passes.iter().position(|(p, _)| p.name() == name).ok_or_else(|| PassError::UnknownPass {
            name: name.to_string(),
            known: self.passes.iter().map(|(p, _)| p.name()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Enable exactly the named passes (pipeline order is kept).
    pub fn enable_only(&mut self, names: &[&str]) -> Result<(), PassError> {
        let idx: Vec<usize> = names.iter().map(|n| self.position(n)).collect::<Result<_, _>>()?;
        for (i, (_, on)) in self.passes.iter_mut().enumerate() {
            *on = idx.contains(&i);
        }
        Ok(())
    }

    /// Disable one pass.
    pub fn disable(&mut self, name: &str) -> Result<(), PassError> {
        let i = self.position(name)?;
        if let Some(p) = self.passes.get_mut(i) {
            p.1 = false;
        }
        Ok(())
    }

    /// Names of the enabled passes, in order.
    pub fn enabled(&self) -> Vec<&'static str> {
        self.passes.iter().filter(|(_, on)| *on).map(|(p, _)| p.name()).collect()
    }

    /// Run the enabled passes in rounds until one round changes nothing. The graph is
    /// validated before and after; value types are re-inferred after every pass that changed
    /// something.
    pub fn run(&self, graph: &mut Graph) -> Result<PassReport, PassError> {
        graph.validate().map_err(|e| PassError::graph("input", e))?;
        let ops_before = op_histogram(graph);
        let mut stats: Vec<PassStat> =
            self.enabled().iter().map(|n| PassStat { name: n.to_string(), changes: 0 }).collect();
        let mut rounds = 0;
        loop {
            if rounds == self.max_rounds {
                return Err(PassError::NoFixedPoint { rounds });
            }
            rounds += 1;
            let mut changed = 0;
            for ((pass, _), stat) in self.passes.iter().filter(|(_, on)| *on).zip(stats.iter_mut()) {
                let n = pass.run(graph)?;
                if n > 0 {
                    tracing::info!(pass = pass.name(), rewrites = n, round = rounds, "pass changed the graph");
                    graph.infer_shapes().map_err(|e| PassError::graph(pass.name(), e))?;
                    changed += n;
                    stat.changes += n;
                }
            }
            if changed == 0 {
                break;
            }
        }
        graph.validate().map_err(|e| PassError::graph("output", e))?;
        Ok(PassReport { rounds, stats, ops_before, ops_after: op_histogram(graph) })
    }
}
