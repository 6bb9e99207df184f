//! Shared by the export tests: running a graph, comparing outputs, reading test inputs.
#![allow(dead_code)]

use lithe_ir::{Graph, Op, Tensor, TensorView};
use lithe_onnx::{ExportOptions, ImportOptions, export_model, load_model_bytes};
use lithe_runtime::Predictor;
use std::path::{Path, PathBuf};

/// The workspace's `testdata`.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Run `graph` on `inputs` with the predictor.
pub fn run(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    let mut p = Predictor::new(graph.clone()).map_err(|e| format!("predictor: {e}"))?;
    p.run_with(inputs.to_vec()).map_err(|e| format!("run: {e}"))
}

/// Run `graph` on `inputs` with the reference kernels, node by node in topological order.
pub fn run_reference(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
    use std::collections::HashMap;
    let mut values: HashMap<lithe_ir::Outlet, Tensor> = HashMap::new();
    for (&id, t) in graph.inputs().iter().zip(inputs) {
        values.insert(lithe_ir::Outlet::new(id, 0), t.clone());
    }
    for id in graph.topo_order().map_err(|e| e.to_string())? {
        let node = graph.node(id);
        if matches!(node.op, Op::Input) {
            continue;
        }
        let ins = graph.node_inputs(id);
        let args: Vec<Option<&Tensor>> = ins.iter().map(|o| o.and_then(|o| values.get(&o))).collect();
        let outs = lithe_kernels::reference::eval(&node.op, &args, node.outputs.len())
            .map_err(|e| format!("node '{}': {e}", node.name))?;
        for (slot, t) in outs.into_iter().enumerate() {
            values.insert(lithe_ir::Outlet::new(id, slot), t);
        }
    }
    graph.outputs().iter().map(|o| values.get(o).cloned().ok_or_else(|| "output not computed".to_string())).collect()
}

/// Export `graph` and import the bytes again (without constant folding, so the exported
/// nodes stay as written).
pub fn round_trip(graph: &Graph) -> Result<Graph, String> {
    let bytes = export_model(graph, &ExportOptions::default()).map_err(|e| format!("export: {e}"))?;
    let opts = ImportOptions { fold_constants: false, ..Default::default() };
    load_model_bytes(&bytes, None, &opts).map_err(|e| format!("re-import: {e}"))
}

/// Every element as bits (floats by their bit patterns, so NaNs compare), with dtype and shape.
fn bits(t: &Tensor) -> Vec<u64> {
    match t.data_view() {
        TensorView::F32(a) => a.iter().map(|x| u64::from(x.to_bits())).collect(),
        TensorView::F16(a) => a.iter().map(|x| u64::from(x.to_bits())).collect(),
        _ => t.to_i64_vec().into_iter().map(|x| x as u64).collect(),
    }
}

/// `Ok` when `got` equals `want` bit for bit (dtype, shape and elements).
pub fn same_bits(what: &str, got: &[Tensor], want: &[Tensor]) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} outputs, expected {}", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g.dtype() != w.dtype() || g.shape() != w.shape() {
            return Err(format!(
                "{what}: output {i} is {}{:?}, expected {}{:?}",
                g.dtype(),
                g.shape(),
                w.dtype(),
                w.shape()
            ));
        }
        let (gb, wb) = (bits(g), bits(w));
        if let Some(k) = gb.iter().zip(&wb).position(|(a, b)| a != b) {
            let n = gb.iter().zip(&wb).filter(|(a, b)| a != b).count();
            return Err(format!("{what}: output {i}: {n} elements differ, first at flat index {k}"));
        }
    }
    Ok(())
}

/// The largest absolute difference between float outputs (integer outputs must be equal:
/// any difference is infinite).
pub fn max_abs_diff(got: &[Tensor], want: &[Tensor]) -> f64 {
    let mut m = 0.0f64;
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    for (g, w) in got.iter().zip(want) {
        if g.shape() != w.shape() || g.dtype() != w.dtype() {
            return f64::INFINITY;
        }
        if w.dtype().is_float() {
            for (a, b) in g.to_f32_vec().iter().zip(w.to_f32_vec()) {
                let d = if a.is_nan() && b.is_nan() { 0.0 } else { (f64::from(*a) - f64::from(b)).abs() };
                m = m.max(if d.is_nan() { f64::INFINITY } else { d });
            }
        } else if g.to_i64_vec() != w.to_i64_vec() {
            return f64::INFINITY;
        }
    }
    m
}

/// `input_0.npy`, `input_1.npy`, ... of a golden case.
pub fn numbered_npy(dir: &Path, prefix: &str) -> Vec<Tensor> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.npy")))
        .take_while(|p| p.is_file())
        .map(|p| lithe_ir::npy::read_npy(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// The first `n` MNIST test images as an `n x 1 x 28 x 28` f32 tensor (pixel / 255).
pub fn mnist_images(n: usize) -> Tensor {
    let path = testdata().join("mnist/t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pixels = &bytes[16..16 + n * 784];
    let data: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    Tensor::from_vec(&[n, 1, 28, 28], data).expect("mnist tensor")
}

/// Node counts of the fused forms: (Conv with an epilogue, FullyConnected).
pub fn fused_counts(g: &Graph) -> (usize, usize) {
    let mut c = (0, 0);
    for id in g.node_ids() {
        match &g.node(id).op {
            Op::Conv(a) if !a.epilogue.is_empty() => c.0 += 1,
            Op::FullyConnected(_) => c.1 += 1,
            _ => {}
        }
    }
    c
}
