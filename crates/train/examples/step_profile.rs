//! Where a training step's time goes, per op type: each node of the MNIST models run forward
//! (train mode) and backward through `lithe_train::rules` one at a time, timed, batch 64.
//!
//! ```sh
//! cargo run --release -p lithe-train --example step_profile [-- lenet_bn|dwsep] [repeats=N]
//! ```
//!
//! Prints per op type (convs split into depthwise, pointwise and other) the mean forward and
//! backward milliseconds per step and their share of the step. The backward of a node gets
//! the gradient of its output as all ones scaled by `1/64` (the shapes and the work are what
//! matter here, not the values).

use lithe_ir::{Graph, NodeId, Op, Outlet, Tensor};
use lithe_train::models::{self, Init};
use lithe_train::rng::Rng;
use lithe_train::rules::{self, BackwardArgs, ForwardArgs};
use lithe_train::{Mode, Params};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// The row a node is counted under.
fn kind(g: &Graph, id: NodeId) -> String {
    match &g.node(id).op {
        Op::Conv(a) => {
            let w = g.node_inputs(id).get(1).copied().flatten().and_then(|o| g.const_value(o));
            let shape = w.map(|t| t.shape().to_vec()).unwrap_or_default();
            if a.group > 1 && shape.get(1) == Some(&1) {
                "Conv (depthwise)".into()
            } else if shape.get(2..) == Some(&[1, 1][..]) {
                "Conv (1x1)".into()
            } else {
                "Conv".into()
            }
        }
        op => op.name().into(),
    }
}

fn profile(name: &str, g: &Graph, repeats: usize) -> Result<(), Box<dyn std::error::Error>> {
    const BATCH: usize = 64;
    let mut rng = Rng::new(1);
    let x = Tensor::from_vec(&[BATCH, 1, 28, 28], (0..BATCH * 784).map(|_| rng.uniform() as f32).collect())?;
    let order = g.topo_order()?;
    let targets: HashSet<Outlet> = Params::select(g, &[]).outlets().into_iter().collect();
    let mut times: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut total = 0f64;
    for rep in 0..repeats + 2 {
        let mut values: HashMap<Outlet, Tensor> = HashMap::new();
        values.insert(Outlet::new(g.inputs()[0], 0), x.clone());
        let value = |values: &HashMap<Outlet, Tensor>, o: Outlet| -> Option<Tensor> {
            match &g.node(o.node).op {
                Op::Const(t) => Some(t.clone()),
                _ => values.get(&o).cloned(),
            }
        };
        let step = Instant::now();
        for &id in &order {
            let node = g.node(id);
            if matches!(node.op, Op::Input | Op::Const(_)) {
                continue;
            }
            let ins: Vec<Option<Tensor>> =
                g.node_inputs(id).iter().map(|o| o.and_then(|o| value(&values, o))).collect();
            let refs: Vec<Option<&Tensor>> = ins.iter().map(Option::as_ref).collect();
            let args = ForwardArgs {
                node: &node.name,
                op: &node.op,
                inputs: &refs,
                num_outputs: node.outputs.len(),
                mode: Mode::Train,
                seed: 0,
            };
            let t0 = Instant::now();
            let outs = rules::forward(&args)?.outputs;
            let dt = t0.elapsed().as_secs_f64();
            if rep >= 2 {
                times.entry(kind(g, id)).or_default().0 += dt;
            }
            for (slot, t) in outs.into_iter().enumerate() {
                values.insert(Outlet::new(id, slot), t);
            }
        }
        for &id in order.iter().rev() {
            let node = g.node(id);
            if matches!(node.op, Op::Input | Op::Const(_)) {
                continue;
            }
            let ins_o = g.node_inputs(id);
            let ins: Vec<Option<Tensor>> = ins_o.iter().map(|o| o.and_then(|o| value(&values, o))).collect();
            let refs: Vec<Option<&Tensor>> = ins.iter().map(Option::as_ref).collect();
            let out = values.get(&Outlet::new(id, 0)).ok_or("output not computed")?;
            let need: Vec<bool> = ins_o
                .iter()
                .enumerate()
                .map(|(slot, o)| {
                    rules::differentiable_slot(&node.op, slot)
                        && o.is_some_and(|o| targets.contains(&o) || !matches!(g.node(o.node).op, Op::Input))
                })
                .collect();
            let gy = ndarray::ArrayD::from_elem(out.shape(), 1.0 / BATCH as f32);
            let grads = [Some(gy)];
            let args = BackwardArgs {
                node: &node.name,
                op: &node.op,
                inputs: &refs,
                outputs: &[out],
                grads: &grads,
                need: &need,
                mode: Mode::Train,
                saved: None,
            };
            let t0 = Instant::now();
            rules::backward(&args)?;
            let dt = t0.elapsed().as_secs_f64();
            if rep >= 2 {
                times.entry(kind(g, id)).or_default().1 += dt;
            }
        }
        if rep >= 2 {
            total += step.elapsed().as_secs_f64();
        }
    }
    let per = |s: f64| 1e3 * s / repeats as f64;
    println!(
        "{name}: {:.2} ms per step of {BATCH} ({:.0} images/s, {} threads)",
        per(total),
        BATCH as f64 * repeats as f64 / total,
        rayon::current_num_threads()
    );
    let mut rows: Vec<_> = times.into_iter().collect();
    rows.sort_by(|a, b| (b.1.0 + b.1.1).total_cmp(&(a.1.0 + a.1.1)));
    println!("  {:<18} {:>9} {:>9} {:>7}", "op", "fwd ms", "bwd ms", "share");
    for (k, (f, b)) in rows {
        println!("  {k:<18} {:>9.3} {:>9.3} {:>6.1}%", per(f), per(b), 100.0 * (f + b) / total);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut which = vec!["lenet_bn", "dwsep"];
    let mut repeats = 20usize;
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("repeats", v)) => repeats = v.parse()?,
            None if arg == "lenet_bn" || arg == "dwsep" => {
                which = vec![if arg == "dwsep" { "dwsep" } else { "lenet_bn" }]
            }
            _ => return Err(format!("unknown option {arg} (lenet_bn, dwsep, repeats=N)").into()),
        }
    }
    for name in which {
        let g = if name == "lenet_bn" {
            models::lenet_bn(1, Init::TorchDefault)?
        } else {
            models::dwsep(1, Init::TorchDefault)?
        };
        profile(name, &g, repeats.max(1))?;
    }
    Ok(())
}
