//! Weight-only quantization end to end on the committed MNIST models (trained on real data,
//! `testdata/mnist/`): import, optimize, quantize, write the `.nb`, load it in the predictor
//! (which dequantizes once) and classify the 1,000 test images.

use lithe_ir::{DType, Graph, Op, Tensor};
use lithe_quant::weight_only::{WeightBits, quantize_weights};
use lithe_runtime::{Predictor, PredictorOptions};
use std::collections::HashMap;
use std::path::PathBuf;

fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

/// The test images as `N x 1 x 28 x 28` f32 in `[0, 1]`, and their labels.
fn test_split() -> (Tensor, Vec<u8>) {
    let images = std::fs::read(mnist_dir().join("t10k-images-idx3-ubyte")).unwrap();
    let labels = std::fs::read(mnist_dir().join("t10k-labels-idx1-ubyte")).unwrap();
    let be = |b: &[u8], i: usize| u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]) as usize;
    assert_eq!(be(&images, 0), 0x0803, "IDX image magic");
    let (n, rows, cols) = (be(&images, 1), be(&images, 2), be(&images, 3));
    assert_eq!(be(&labels, 1), n);
    let pixels: Vec<f32> = images[16..16 + n * rows * cols].iter().map(|&p| f32::from(p) / 255.0).collect();
    (Tensor::from_vec(&[n, 1, rows, cols], pixels).unwrap(), labels[8..8 + n].to_vec())
}

fn optimized(model: &str, batch: usize) -> Graph {
    let opts = lithe_onnx::ImportOptions {
        input_shapes: HashMap::from([("input".to_string(), vec![batch, 1, 28, 28])]),
        ..Default::default()
    };
    let mut g = lithe_onnx::load_model(&mnist_dir().join(model), &opts).unwrap();
    lithe_passes::PassManager::default_pipeline().run(&mut g).unwrap();
    g
}

/// Write `g` as a `.nb`, load it back and return the predicted classes and the file size.
fn classify(g: &Graph, x: &Tensor) -> (Vec<usize>, usize) {
    let bytes = lithe_nbformat::write(g, &Default::default()).unwrap();
    let mut p = Predictor::from_bytes(&bytes, PredictorOptions::default()).unwrap();
    p.set_input(0, x.clone()).unwrap();
    p.run().unwrap();
    let logits = p.output(0).unwrap().to_f32_vec();
    let classes = logits
        .chunks(10)
        .map(|row| row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap())
        .collect();
    (classes, bytes.len())
}

fn accuracy(pred: &[usize], labels: &[u8]) -> f64 {
    pred.iter().zip(labels).filter(|(p, l)| **p == usize::from(**l)).count() as f64 / labels.len() as f64
}

#[test]
fn mnist_models_keep_their_accuracy_with_int8_and_int16_weights() {
    let (x, labels) = test_split();
    for model in ["lenet_bn.onnx", "dwsep.onnx"] {
        let fp32 = optimized(model, labels.len());
        let (p32, size32) = classify(&fp32, &x);
        let acc32 = accuracy(&p32, &labels);
        assert!(acc32 > 0.95, "{model}: fp32 accuracy {acc32}");
        for bits in [WeightBits::Int8, WeightBits::Int16] {
            let mut g = fp32.clone();
            let report = quantize_weights(&mut g, bits, 1).unwrap();
            assert!(report.quantized >= 3, "{model}: {report:?}");
            // Every conv/FC weight now comes from a DequantizeLinear of integers.
            for id in g.node_ids() {
                let node = g.node(id);
                if matches!(node.op, Op::Conv(_) | Op::FullyConnected(_)) {
                    let w = g.node_inputs(id)[1].unwrap();
                    assert!(
                        matches!(g.node(w.node).op, Op::DequantizeLinear { .. }),
                        "{}: weight not quantized",
                        node.name
                    );
                    let q = g.node_inputs(w.node)[0].unwrap();
                    assert_eq!(g.const_value(q).unwrap().dtype(), bits.dtype());
                }
            }
            let (pq, size_q) = classify(&g, &x);
            let accq = accuracy(&pq, &labels);
            let agree = p32.iter().zip(&pq).filter(|(a, b)| a == b).count() as f64 / labels.len() as f64;
            // Weight rounding is below 1/127 (int8) or 1/32767 (int16) of each channel's
            // largest weight, and keeps each channel's sum: the classifier must not notice.
            assert!((accq - acc32).abs() <= 0.003, "{model} {bits}: accuracy {accq} vs fp32 {acc32}");
            assert!(agree >= 0.99, "{model} {bits}: top-1 agreement {agree}");
            // The file shrinks by the weights' bytes less their integers and scales: at least
            // 70% (int8, ideally 75%) or 45% (int16, ideally 50%) of the f32 bytes replaced,
            // less the program's growth: each quantized tensor adds a DequantizeLinear node, a
            // scale and their names (at most 256 bytes). Whole models: see docs/quantization.md.
            let per_tensor = 256.0 * (report.quantized + report.biases) as f64;
            let saved = size32 as f64 - size_q as f64 + per_tensor;
            let least = match bits {
                WeightBits::Int8 => 0.70,
                WeightBits::Int16 => 0.45,
            };
            assert!(
                saved >= least * report.bytes_before as f64,
                "{model} {bits}: {size32} -> {size_q} bytes for {} bytes of f32 weights",
                report.bytes_before
            );
        }
    }
}

#[test]
fn channel_scales_make_each_channel_max_exact() {
    let mut g = Graph::new("g");
    let x = g.add_input("x", lithe_ir::TypeInfo::new(DType::F32, [1, 2, 4, 4]));
    let w = Tensor::from_vec(&[3, 2, 1, 1], vec![1.0f32, -0.5, 0.0, 0.0, 100.0, 0.25]).unwrap();
    let b = Tensor::from_vec(&[3], vec![0.5f32, -2.0, 3.0]).unwrap();
    let wc = g.add_const("w", w);
    let bc = g.add_const("b", b.clone());
    let y = g.add_node_inferred("conv", Op::Conv(Default::default()), &[Some(x), Some(wc), Some(bc)], 1).unwrap()[0];
    g.set_outputs(vec![y]);
    let report = quantize_weights(&mut g, WeightBits::Int8, 1).unwrap();
    assert_eq!((report.quantized, report.biases), (1, 1));
    let conv = g.node_ids().into_iter().find(|&id| g.node(id).name == "conv").unwrap();
    let dq = g.node_inputs(conv)[1].unwrap();
    let q = g.const_value(g.node_inputs(dq.node)[0].unwrap()).unwrap();
    assert_eq!(q.to_i64_vec(), vec![127, -64, 0, 0, 127, 0]);
    let s = g.const_value(g.node_inputs(dq.node)[1].unwrap()).unwrap().to_f32_vec();
    assert_eq!(s, vec![1.0 / 127.0, 1.0, 100.0 / 127.0]);
    // The bias is int16 with one scale, and the graph keeps the value names.
    let bdq = g.node_inputs(conv)[2].unwrap();
    assert_eq!(g.value(bdq).name, "b");
    let bq = g.const_value(g.node_inputs(bdq.node)[0].unwrap()).unwrap();
    assert_eq!(bq.dtype(), DType::I16);
    assert_eq!(bq.to_i64_vec(), vec![5461, -21845, 32767]);
    g.validate().unwrap();
}

#[test]
fn constants_read_other_ways_stay_f32() {
    // `w` is a conv weight and also added to the output: it must not be quantized.
    let mut g = Graph::new("g");
    let x = g.add_input("x", lithe_ir::TypeInfo::new(DType::F32, [1, 1, 1, 1]));
    let wc = g.add_const("w", Tensor::from_vec(&[1, 1, 1, 1], vec![2.0f32]).unwrap());
    let y = g.add_node_inferred("conv", Op::Conv(Default::default()), &[Some(x), Some(wc)], 1).unwrap()[0];
    let z = g.add_node_inferred("add", Op::Add, &[Some(y), Some(wc)], 1).unwrap()[0];
    g.set_outputs(vec![z]);
    let report = quantize_weights(&mut g, WeightBits::Int8, 1).unwrap();
    assert_eq!(report.quantized, 0);
    // With int16 weights, biases stay f32.
    let mut g = Graph::new("g");
    let x = g.add_input("x", lithe_ir::TypeInfo::new(DType::F32, [1, 1, 2, 2]));
    let wc = g.add_const("w", Tensor::from_vec(&[2, 1, 1, 1], vec![2.0f32, 1.0]).unwrap());
    let bc = g.add_const("b", Tensor::from_vec(&[2], vec![2.0f32, 1.0]).unwrap());
    let y = g.add_node_inferred("conv", Op::Conv(Default::default()), &[Some(x), Some(wc), Some(bc)], 1).unwrap()[0];
    g.set_outputs(vec![y]);
    let report = quantize_weights(&mut g, WeightBits::Int16, 1).unwrap();
    assert_eq!((report.quantized, report.biases), (1, 0));
}
