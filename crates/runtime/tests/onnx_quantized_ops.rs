//! onnxruntime's operator-format int8 models of the committed MNIST nets (`testdata/mnist/ort_qop`,
//! made by `cargo xtask quant-data --steps qop`; no Python needed here):
//!
//! - `*_qlinear.onnx`: `quantize_static(QuantFormat.QOperator)`, QuantizeLinear ->
//!   QLinearConv/QLinearMatMul -> DequantizeLinear, per-channel int8 weights, int32 biases;
//! - `*_dynamic.onnx`: `quantize_dynamic`, DynamicQuantizeLinear -> ConvInteger/MatMulInteger ->
//!   Cast -> Mul by the scales.
//!
//! Lithe imports them (the QLinear and Integer ops become DequantizeLinear -> f32 op ->
//! QuantizeLinear/Cast), runs them as imported and after the default optimizer through a `.nb`,
//! and compares with onnxruntime's logits on the first 16 test rows:
//!
//! - QLinear models: the logits are `DequantizeLinear(u8) + bias`, so every element must be
//!   within one output quantization step (the last QuantizeLinear's scale) of onnxruntime's:
//!   Lithe accumulates in f32 where onnxruntime accumulates in int32, which can move a value
//!   next to a rounding boundary by one level;
//! - dynamic models: f32 logits; `|lithe - ort| <= 1e-4 + 1e-4 * max|ort|` (the integer
//!   products are exact in both; only the order of the f32 scale multiplications differs).
//!
//! Then top-1 agreement with the fp32 model (run by Lithe) on the 1,000 test rows must be at
//! least 0.98 (onnxruntime's own agreement is 0.987 to 0.999, `ort_qop.json`).

use lithe_ir::{Graph, Op, Tensor};
use lithe_runtime::Predictor;
use std::collections::HashMap;
use std::path::PathBuf;

const GOLDEN_ROWS: usize = 16;
const BATCH: usize = 250;

fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

/// The test images as `N x 1 x 28 x 28` f32 in `[0, 1]`.
fn test_images() -> (Vec<f32>, usize) {
    let images = std::fs::read(mnist_dir().join("t10k-images-idx3-ubyte")).unwrap();
    let be = |i: usize| u32::from_be_bytes([images[4 * i], images[4 * i + 1], images[4 * i + 2], images[4 * i + 3]]);
    assert_eq!(be(0), 0x0803, "IDX image magic");
    let n = be(1) as usize;
    let pixels: Vec<f32> = images[16..16 + n * 784].iter().map(|&p| f32::from(p) / 255.0).collect();
    (pixels, n)
}

fn batch(pixels: &[f32], from: usize, rows: usize) -> Tensor {
    Tensor::from_vec(&[rows, 1, 28, 28], pixels[from * 784..(from + rows) * 784].to_vec()).unwrap()
}

fn import(path: &std::path::Path, rows: usize) -> Graph {
    let opts = lithe_onnx::ImportOptions {
        input_shapes: HashMap::from([("input".to_string(), vec![rows, 1, 28, 28])]),
        ..Default::default()
    };
    lithe_onnx::load_model(path, &opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The imported graph, and the default pipeline's result written to a `.nb` and read back.
fn predictors(path: &std::path::Path, rows: usize) -> [Predictor; 2] {
    let g = import(path, rows);
    let mut opt = g.clone();
    lithe_passes::PassManager::default_pipeline().run(&mut opt).unwrap();
    let ops: std::collections::BTreeSet<&str> = opt.node_ids().into_iter().map(|id| opt.node(id).op.name()).collect();
    eprintln!("{}: optimized ops {ops:?}", path.file_name().unwrap_or_default().to_string_lossy());
    let bytes = lithe_nbformat::write(&opt, &Default::default()).unwrap();
    [Predictor::new(g).unwrap(), Predictor::from_bytes(&bytes, Default::default()).unwrap()]
}

fn logits(p: &mut Predictor, x: Tensor) -> Vec<f32> {
    p.run_with(vec![x]).unwrap().remove(0).to_f32_vec()
}

fn top1(logits: &[f32]) -> Vec<usize> {
    logits.chunks(10).map(|r| r.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap()).collect()
}

/// Top-1 of the model at `path` on every test row, in batches of [`BATCH`].
fn classify(p: &mut Predictor, pixels: &[f32], n: usize) -> Vec<usize> {
    (0..n).step_by(BATCH).flat_map(|from| top1(&logits(p, batch(pixels, from, BATCH)))).collect()
}

/// The scale of the last QuantizeLinear (the logits' quantization step) of an imported graph.
fn output_step(g: &Graph) -> f32 {
    let order = g.topo_order().unwrap();
    let q = order.iter().rev().find(|&&id| matches!(g.node(id).op, Op::QuantizeLinear { .. })).unwrap();
    let scale = g.node_inputs(*q)[1].unwrap();
    g.const_value(scale).unwrap().to_f32_vec()[0]
}

#[test]
fn onnxruntime_qoperator_and_dynamic_mnist_models_match_onnxruntime() {
    let dir = mnist_dir().join("ort_qop");
    let (pixels, n) = test_images();
    assert_eq!(n, 1000);
    for net in ["lenet_bn", "dwsep"] {
        let mut fp32 = Predictor::new(import(&mnist_dir().join(format!("{net}.onnx")), BATCH)).unwrap();
        let fp32_top1 = classify(&mut fp32, &pixels, n);
        for kind in ["qlinear", "dynamic"] {
            let path = dir.join(format!("{net}_{kind}.onnx"));
            let golden = lithe_ir::npy::read_npy(&dir.join(format!("{net}_{kind}_golden.npy"))).unwrap();
            assert_eq!(golden.shape(), &[GOLDEN_ROWS, 10]);
            let want = golden.to_f32_vec();
            let g = import(&path, GOLDEN_ROWS);
            // No QLinear/Integer op survives import: they are Q/DQ around f32 ops.
            let ops: std::collections::BTreeSet<&str> =
                g.node_ids().into_iter().map(|id| g.node(id).op.name()).collect();
            let tol = if kind == "qlinear" {
                assert!(ops.contains("QuantizeLinear") && ops.contains("Conv"), "{ops:?}");
                output_step(&g) * 1.0001
            } else {
                assert!(ops.contains("DynamicQuantizeLinear"), "{ops:?}");
                1e-4 + 1e-4 * want.iter().fold(0f32, |m, v| m.max(v.abs()))
            };
            for (which, mut p) in ["imported", "optimized .nb"].into_iter().zip(predictors(&path, GOLDEN_ROWS)) {
                let got = logits(&mut p, batch(&pixels, 0, GOLDEN_ROWS));
                let max_err = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
                let exact = got.iter().zip(&want).filter(|(g, w)| g == w).count();
                eprintln!(
                    "{net}_{kind} ({which}): max |lithe - ort| {max_err:.3e} (tolerance {tol:.3e}), \
                     {exact}/{} logits equal",
                    want.len()
                );
                assert!(max_err <= tol, "{net}_{kind} ({which}): max error {max_err} over {tol}");
                assert_eq!(top1(&got), top1(&want), "{net}_{kind} ({which}): top-1 on the golden rows");
            }
            let [mut p, _] = predictors(&path, BATCH);
            let q_top1 = classify(&mut p, &pixels, n);
            let agree = q_top1.iter().zip(&fp32_top1).filter(|(a, b)| a == b).count() as f64 / n as f64;
            eprintln!("{net}_{kind}: top-1 agreement with fp32 on {n} test rows {agree:.3}");
            assert!(agree >= 0.98, "{net}_{kind}: top-1 agreement {agree}");
        }
    }
}
