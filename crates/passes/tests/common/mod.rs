//! Shared by the pass tests: evaluating a graph with the reference kernels.

use lithe_ir::{Graph, Op, Outlet, Tensor};
use lithe_kernels::reference;
use std::collections::HashMap;

/// Evaluate `g` node by node in topological order with the reference kernels, `inputs` given
/// in graph-input order; returns the graph outputs in order.
pub fn eval(g: &Graph, inputs: &[Tensor]) -> Vec<Tensor> {
    assert_eq!(g.inputs().len(), inputs.len(), "one value per graph input");
    let mut values: HashMap<Outlet, Tensor> = HashMap::new();
    for (&id, t) in g.inputs().iter().zip(inputs) {
        values.insert(Outlet::new(id, 0), t.clone());
    }
    for id in g.topo_order().unwrap() {
        let node = g.node(id);
        if matches!(node.op, Op::Input) {
            continue;
        }
        let outs = {
            let ins: Vec<Option<&Tensor>> = g.node_inputs(id).into_iter().map(|o| o.map(|o| &values[&o])).collect();
            reference::eval(&node.op, &ins, node.outputs.len())
                .unwrap_or_else(|e| panic!("node '{}' ({}): {e}", node.name, node.op.name()))
        };
        for (slot, t) in outs.into_iter().enumerate() {
            values.insert(Outlet::new(id, slot), t);
        }
    }
    g.outputs().iter().map(|o| values[o].clone()).collect()
}
