//! ONNX export of quantized graphs (lithe-onnx's exporter; the test lives here because
//! lithe-quant depends on lithe-onnx): the MNIST nets after weight-only int8
//! (`Const(i8) -> DequantizeLinear` per channel) and after static int8 PTQ (QDQ: u8
//! activations per tensor, i8 weights per channel or per layer), exported and imported
//! again, reproduce the quantized graph's outputs.

use lithe_ir::{DType, Graph, Op, Tensor};
use lithe_onnx::{ExportOptions, ImportOptions, export_model, load_model_bytes};
use lithe_quant::QuantError;
use lithe_quant::data::{Batch, CalibSource, InputSpec};
use lithe_quant::ptq::{PtqConfig, quantize_static};
use lithe_quant::weight_only::{WeightBits, quantize_weights};
use lithe_runtime::Predictor;
use std::path::PathBuf;

fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

/// The first `n` images of an IDX file as `n x 1 x 28 x 28` f32 in `[0, 1]`.
fn images(file: &str, n: usize) -> Tensor {
    let b = std::fs::read(mnist_dir().join(file)).unwrap();
    let px = b[16..16 + n * 784].iter().map(|&p| f32::from(p) / 255.0).collect();
    Tensor::from_vec(&[n, 1, 28, 28], px).unwrap()
}

/// Calibration data: the first training images.
#[derive(Debug)]
struct Calib {
    spec: [InputSpec; 1],
    x: Tensor,
}

impl CalibSource for Calib {
    fn inputs(&self) -> &[InputSpec] {
        &self.spec
    }
    fn len(&self) -> usize {
        self.x.shape()[0]
    }
    fn load(&self, start: usize, count: usize) -> Result<Batch, QuantError> {
        let v = self.x.to_f32_vec()[start * 784..(start + count) * 784].to_vec();
        Ok(Batch { inputs: vec![("input".into(), Tensor::from_vec(&[count, 1, 28, 28], v)?)] })
    }
}

fn optimized(model: &str) -> Graph {
    let mut g = lithe_onnx::load_model(&mnist_dir().join(model), &ImportOptions::default()).unwrap();
    lithe_passes::PassManager::default_pipeline().run(&mut g).unwrap();
    g
}

fn run(g: &Graph, x: &Tensor) -> Vec<f32> {
    let mut p = Predictor::new(g.clone()).unwrap();
    p.run_with(vec![x.clone()]).unwrap().remove(0).to_f32_vec()
}

fn count(g: &Graph, f: impl Fn(&Op) -> bool) -> usize {
    g.node_ids().into_iter().filter(|&id| f(&g.node(id).op)).count()
}

/// Export and re-import `g`; returns the re-imported graph and the max abs output difference.
fn export_check(g: &Graph, x: &Tensor) -> (Graph, f32) {
    let bytes = export_model(g, &ExportOptions::default()).unwrap();
    let back = load_model_bytes(&bytes, None, &ImportOptions::default()).unwrap();
    let (want, got) = (run(g, x), run(&back, x));
    assert_eq!(want.len(), got.len());
    let err = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    (back, err)
}

#[test]
fn weight_only_int8_graphs_export() {
    let x = images("t10k-images-idx3-ubyte", 32);
    for model in ["lenet_bn.onnx", "dwsep.onnx"] {
        let mut g = optimized(model);
        let report = quantize_weights(&mut g, WeightBits::Int8, 0).unwrap();
        let dq = count(&g, |op| matches!(op, Op::DequantizeLinear { .. }));
        assert!(dq >= 3, "{model}: {dq} DequantizeLinear nodes ({report:?})");
        let (back, err) = export_check(&g, &x);
        println!("{model} weight-only int8: max abs diff {err:e}");
        assert!(err <= 1e-5, "{model}: {err}");
        // The integer weights stay integers in the exported file.
        let int_consts = |g: &Graph| count(g, |op| matches!(op, Op::Const(t) if t.dtype() == DType::I8));
        assert_eq!(int_consts(&back), int_consts(&g), "{model}");
    }
}

#[test]
fn static_int8_qdq_graphs_export() {
    let calib = Calib {
        spec: [InputSpec::new("input", &[None, Some(1), Some(28), Some(28)])],
        x: images("train-images-idx3-ubyte", 200),
    };
    let x = images("t10k-images-idx3-ubyte", 32);
    for model in ["lenet_bn.onnx", "dwsep.onnx"] {
        for per_channel in [true, false] {
            let mut g = optimized(model);
            let config = PtqConfig { per_channel, batch_size: 100, max_samples: Some(200), ..PtqConfig::default() };
            quantize_static(&mut g, &calib, &config, &mut |_, _| {}).unwrap();
            let q = count(&g, |op| matches!(op, Op::QuantizeLinear { .. }));
            assert!(q >= 3, "{model}: {q} QuantizeLinear nodes");
            let (back, err) = export_check(&g, &x);
            println!("{model} QDQ per_channel={per_channel}: max abs diff {err:e}");
            // Q/DQ are exact, the float parts are the same ops: any difference is from fused
            // vs. standalone epilogue rounding, far below one quantization step.
            assert!(err <= 1e-4, "{model} per_channel={per_channel}: {err}");
            let qdq = |g: &Graph| count(g, |op| matches!(op, Op::QuantizeLinear { .. } | Op::DequantizeLinear { .. }));
            assert_eq!(qdq(&back), qdq(&g), "{model}");
        }
    }
}

/// A graph read from `.nb` bytes holds its weights in place (no copy); its export equals the
/// export of the graph that was written, byte for byte.
#[test]
fn in_place_weights_export_like_owned_ones() {
    let mut g = optimized("dwsep.onnx");
    quantize_weights(&mut g, WeightBits::Int8, 0).unwrap();
    let nb = lithe_nbformat::write(&g, &Default::default()).unwrap();
    let (mapped, _) = lithe_nbformat::read_shared(lithe_nbformat::shared_copy(&nb), &Default::default()).unwrap();
    let in_place = mapped
        .node_ids()
        .into_iter()
        .filter(|&id| matches!(&mapped.node(id).op, Op::Const(t) if t.is_in_place()))
        .count();
    assert!(in_place >= 5, "{in_place} in-place constants");
    let proto = |g: &Graph| lithe_onnx::export_model_proto(g, &ExportOptions::default()).unwrap();
    let (a, b) = (proto(&g), proto(&mapped));
    let (ga, gb) = (a.graph.unwrap(), b.graph.unwrap());
    let by_name = |g: &lithe_onnx::proto::GraphProto| {
        let mut v: Vec<_> =
            g.initializer.iter().map(|t| (t.name.clone(), t.data_type, t.dims.clone(), t.raw_data.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(by_name(&gb), by_name(&ga));
    assert_eq!(gb.node.len(), ga.node.len());
    let x = images("t10k-images-idx3-ubyte", 8);
    let (_, err) = export_check(&mapped, &x);
    assert!(err <= 1e-5, "{err}");
}
