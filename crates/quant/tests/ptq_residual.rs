//! Static quantization of a residual net whose adds are separate nodes (as `lite-cli quant`
//! optimizes it): adds and the classifier's pool are quantized too, and after the optimizer
//! the whole net runs integer (convs, `QAdd`, `QGlobalAveragePool`), with only the input
//! quantized in f32, and stays close to fp32.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::ConvAttrs;
use lithe_ir::{DType, Dim, Graph, Tensor};
use lithe_passes::PassManager;
use lithe_quant::QuantError;
use lithe_quant::data::{Batch, CalibSource, InputSpec};
use lithe_quant::eval::compare;
use lithe_quant::ptq::{PtqConfig, quantize_static};

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Smooth random images (sums of a few waves) so activations look like a real net's.
#[derive(Debug)]
struct Images {
    spec: [InputSpec; 1],
    data: Vec<f32>,
    n: usize,
}

const C: usize = 3;
const HW: usize = 12;

impl Images {
    fn new(n: usize, seed: u64) -> Images {
        let p = values(n * C * 4, seed);
        let mut data = Vec::with_capacity(n * C * HW * HW);
        for s in 0..n {
            for c in 0..C {
                let k = &p[(s * C + c) * 4..][..4];
                for y in 0..HW {
                    for x in 0..HW {
                        let (fy, fx) = (y as f32 * (1.0 + k[0]), x as f32 * (1.0 + k[1]));
                        data.push((0.5 * fy).sin() * k[2] + (0.3 * fx).cos() * k[3]);
                    }
                }
            }
        }
        Images { spec: [InputSpec::new("x", &[None, Some(C), Some(HW), Some(HW)])], data, n }
    }
}

impl CalibSource for Images {
    fn inputs(&self) -> &[InputSpec] {
        &self.spec
    }
    fn len(&self) -> usize {
        self.n
    }
    fn load(&self, start: usize, count: usize) -> Result<Batch, QuantError> {
        let count = count.min(self.n.saturating_sub(start));
        let row = C * HW * HW;
        let v = self.data[start * row..(start + count) * row].to_vec();
        Ok(Batch { inputs: vec![("x".into(), Tensor::from_vec(&[count, C, HW, HW], v)?)] })
    }
}

/// conv-relu stem, two residual blocks (the second ending in a Relu after the add, as ResNet;
/// the first without, as MobileNetV2), global average pool, flatten, dense classifier.
fn residual_net() -> Graph {
    let mut b = GraphBuilder::new("residual");
    let x = b.input("x", DType::F32, &[Dim::Sym("n".into()), Dim::Known(C), Dim::Known(HW), Dim::Known(HW)]);
    let ch = 16;
    let pad1 = ConvAttrs { pads: vec![1; 4], ..ConvAttrs::default() };
    let mut seed = 1;
    let mut weight = |shape: &[usize], scale: f32| {
        seed += 1;
        let n = shape.iter().product();
        Tensor::from_vec(shape, values(n, seed).into_iter().map(|v| v * scale).collect()).unwrap()
    };
    let stem = b.conv2d(x, weight(&[ch, C, 3, 3], 0.4), Some(weight(&[ch], 0.1)), pad1.clone()).unwrap();
    let mut h = b.relu(stem).unwrap();
    for block in 0..2 {
        let a = b.conv2d(h, weight(&[ch, ch, 3, 3], 0.15), Some(weight(&[ch], 0.1)), pad1.clone()).unwrap();
        let a = b.relu(a).unwrap();
        let a = b.conv2d(a, weight(&[ch, ch, 1, 1], 0.3), Some(weight(&[ch], 0.1)), ConvAttrs::default()).unwrap();
        let sum = b.add(h, a).unwrap();
        h = if block == 1 { b.relu(sum).unwrap() } else { sum };
    }
    let pooled = b.global_avg_pool(h).unwrap();
    let flat = b.reshape(pooled, &[0, -1]).unwrap();
    let logits = b.linear(flat, weight(&[10, ch], 0.5), Some(weight(&[10], 0.1))).unwrap();
    b.output(logits);
    b.finish().unwrap()
}

fn optimized_without_residual_fusion(g: &Graph) -> Graph {
    let mut g = g.clone();
    let mut m = PassManager::default_pipeline();
    m.disable("fuse_conv_residual").unwrap();
    m.run(&mut g).unwrap();
    g
}

fn count(g: &Graph, op: &str) -> usize {
    g.node_ids().into_iter().filter(|&id| g.node(id).op.name() == op).count()
}

#[test]
fn residual_adds_and_the_pool_run_int8_close_to_fp32() {
    let fp32 = optimized_without_residual_fusion(&residual_net());
    assert_eq!(count(&fp32, "Add"), 2, "the adds must stay separate for this test");
    let calib = Images::new(64, 7);
    let eval = Images::new(64, 8);
    let mut g = fp32.clone();
    let report = quantize_static(&mut g, &calib, &PtqConfig::default(), &mut |_, _| {}).unwrap();
    // 5 convs, the classifier, 2 adds, the pool.
    assert_eq!(report.quantized.len(), 9, "{:?}", report.quantized);
    PassManager::default_pipeline().run(&mut g).unwrap();
    assert_eq!(count(&g, "QConv"), 6, "{:?}", lithe_passes::op_histogram(&g));
    assert_eq!(count(&g, "QAdd"), 2, "{:?}", lithe_passes::op_histogram(&g));
    assert_eq!(count(&g, "QGlobalAveragePool"), 1, "{:?}", lithe_passes::op_histogram(&g));
    // Only the input is quantized in f32; nothing float but the classifier's output remains.
    assert_eq!(count(&g, "QuantizeLinear"), 1, "{:?}", lithe_passes::op_histogram(&g));
    for op in ["Add", "Relu", "DequantizeLinear", "Conv", "FullyConnected", "GlobalAveragePool"] {
        assert_eq!(count(&g, op), 0, "{op} left: {:?}", lithe_passes::op_histogram(&g));
    }
    let a = compare(&fp32, &g, &eval, 16, None, 1).unwrap();
    assert!(a.cosine > 0.995, "cosine {} (max abs error {})", a.cosine, a.max_abs_error);

    // Without adds: the adds stay f32 between dequantized values, no QAdd.
    let mut g = fp32.clone();
    let config = PtqConfig { quantize_adds: false, ..PtqConfig::default() };
    quantize_static(&mut g, &calib, &config, &mut |_, _| {}).unwrap();
    PassManager::default_pipeline().run(&mut g).unwrap();
    assert_eq!(count(&g, "QAdd") + count(&g, "QGlobalAveragePool"), 0, "{:?}", lithe_passes::op_histogram(&g));
}
