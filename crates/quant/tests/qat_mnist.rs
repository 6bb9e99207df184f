//! Quantization-aware training of the committed MNIST nets (`testdata/mnist`): a short
//! fine-tuning run through fake quantization, converted to the int8 graph and measured on the
//! 1,000 test digits as the int8 kernels run it.

#[allow(dead_code)] // the IDX reader of the other tests
mod common;

use common::{mnist_dir, optimized};
use lithe_ir::{Graph, Op};
use lithe_quant::eval::{compare, outputs};
use lithe_quant::ptq::{PtqConfig, quantize_static};
use lithe_quant::qat::{ActStrategy, LabelledSource, QatConfig, QatModel, QatTrainOptions};
use lithe_train::data::Dataset;
use std::collections::HashMap;

fn imported(model: &str) -> Graph {
    let opts = lithe_onnx::ImportOptions { input_shapes: HashMap::new(), ..Default::default() };
    lithe_onnx::load_model(&mnist_dir().join(model), &opts).unwrap()
}

fn split(images: &str, labels: &str) -> Dataset {
    Dataset::from_idx(&mnist_dir().join(images), &mnist_dir().join(labels)).unwrap()
}

/// Op names in topological order, constants aside (their ids, hence their place in the
/// order, depend on when they were created), then the number of constants.
fn ops(g: &Graph) -> (Vec<String>, usize) {
    let order = g.topo_order().unwrap();
    let consts = order.iter().filter(|&&id| matches!(g.node(id).op, Op::Const(_))).count();
    let ops = order.into_iter().map(|id| g.node(id).op.name().to_string()).filter(|o| o != "Const").collect();
    (ops, consts)
}

#[test]
fn qat_converts_to_the_post_training_int8_graph_and_keeps_fp32_accuracy() {
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte");
    let test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
    let test_source = LabelledSource::new(&test, "input");
    for model in ["lenet_bn.onnx", "dwsep.onnx"] {
        let fp32 = imported(model);
        let subset = train.take(512);
        let calib = LabelledSource::new(&subset, "input");
        let mut qat = QatModel::prepare(&fp32, &calib, &QatConfig::default(), &mut |_| {}).unwrap();
        let options =
            QatTrainOptions { epochs: 1, batch_size: 32, lr: 1e-4, max_steps: Some(12), ..Default::default() };
        let epochs = qat.train(&subset, &options, &mut |_, _, _, _| {}).unwrap();
        assert_eq!(epochs[0].steps, 12);
        assert!(epochs[0].loss.is_finite() && epochs[0].loss < 0.5, "{model}: loss {}", epochs[0].loss);
        for (value, t) in qat.thresholds() {
            assert!(t.is_some_and(|t| t > 0.0), "{model}: {value} has no stored threshold");
        }
        let int8 = qat.convert_int8().unwrap();

        // The same int8 graph post-training quantization writes.
        let mut ptq = optimized(model);
        quantize_static(
            &mut ptq,
            &calib,
            // QAT quantizes convs and dense layers only, not adds and pools.
            &PtqConfig { max_samples: Some(256), quantize_adds: false, ..PtqConfig::default() },
            &mut |_, _| {},
        )
        .unwrap();
        lithe_passes::PassManager::default_pipeline().run(&mut ptq).unwrap();
        assert_eq!(ops(&int8), ops(&ptq), "{model}: QAT and PTQ int8 graphs differ");
        let qconvs = ops(&int8).0.iter().filter(|o| *o == "QConv").count();
        assert_eq!(qconvs, qat.quantized().len(), "{model}: every quantized node runs int8");

        let reference = optimized(model);
        let a = compare(&reference, &int8, &test_source, 250, None, 1).unwrap();
        let (acc32, acc8) = a.accuracy(test_source.labels());
        assert!(acc32 > 0.96, "{model}: fp32 accuracy {acc32}");
        assert!(acc8 >= acc32 - 0.005, "{model}: QAT int8 {acc8} vs fp32 {acc32}");

        // The converted QDQ graph (reference kernels) computes what the fake-quantized graph
        // computes in eval mode; the int8 kernels agree with it on the classes.
        let x = test.take(200);
        let (xb, _) = x.gather(&(0..200).collect::<Vec<_>>());
        let fake = qat.predict(vec![xb]).unwrap();
        let qdq = outputs(&qat.convert().unwrap(), &LabelledSource::new(&x, "input"), 200, None, 1).unwrap();
        let max_diff = fake.iter().zip(qdq.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max_diff < 1e-3, "{model}: fake-quantized vs converted QDQ max diff {max_diff}");
        let top1 = |v: &[f32]| v.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap();
        let int8_out = outputs(&int8, &LabelledSource::new(&x, "input"), 200, None, 1).unwrap();
        let same = fake.outer_iter().zip(&int8_out).filter(|(f, q)| top1(f.as_slice().unwrap()) == top1(q)).count();
        assert!(same >= 198, "{model}: int8 kernels agree with fake quantization on {same} of 200");
    }
}

#[test]
fn every_strategy_and_per_layer_weights_train_and_convert() {
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte").take(128);
    let calib = LabelledSource::new(&train, "input");
    let fp32 = imported("lenet_bn.onnx");
    for act_strategy in [
        ActStrategy::AbsMax,
        ActStrategy::MovingAverageAbsMax { moving_rate: 0.9 },
        ActStrategy::RangeAbsMax { window_size: 2 },
    ] {
        for per_channel in [true, false] {
            let config = QatConfig { act_strategy, per_channel, ..QatConfig::default() };
            let mut qat = QatModel::prepare(&fp32, &calib, &config, &mut |_| {}).unwrap();
            let options = QatTrainOptions { batch_size: 32, max_steps: Some(3), ..Default::default() };
            qat.train(&train, &options, &mut |_, _, _, _| {}).unwrap();
            let g = qat.convert().unwrap();
            // Weight scales: one per output channel, or one per layer.
            for id in g.node_ids() {
                if let Op::DequantizeLinear { .. } = g.node(id).op {
                    let ins = g.node_inputs(id);
                    if g.const_value(ins[0].unwrap()).is_some() {
                        let scale = g.const_value(ins[1].unwrap()).unwrap();
                        assert_eq!(scale.shape().len(), usize::from(per_channel), "{act_strategy} {per_channel}");
                    }
                }
            }
        }
    }
}

#[test]
fn skip_patterns_and_op_types_leave_nodes_in_fp32() {
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte").take(64);
    let calib = LabelledSource::new(&train, "input");
    let fp32 = imported("lenet_bn.onnx");
    let config = QatConfig { skip: vec!["/0/*".into()], ..QatConfig::default() };
    let qat = QatModel::prepare(&fp32, &calib, &config, &mut |_| {}).unwrap();
    assert_eq!(qat.skipped(), ["/0/Conv"]);
    assert_eq!(qat.quantized().len(), 3);
    let g = qat.convert_int8().unwrap();
    let convs: Vec<&str> = g
        .node_ids()
        .into_iter()
        .filter(|&id| g.node(id).op.name() == "Conv")
        .map(|id| g.node(id).name.as_str())
        .collect();
    assert_eq!(convs, ["/0/Conv"], "the skipped conv stays fp32");

    let config = QatConfig { op_types: vec!["linear".parse().unwrap()], ..QatConfig::default() };
    let qat = QatModel::prepare(&fp32, &calib, &config, &mut |_| {}).unwrap();
    assert_eq!(qat.quantized().len(), 2, "{:?}", qat.quantized());
    assert_eq!(qat.skipped().len(), 2);
}

#[test]
fn bits_are_checked_and_low_bits_clip() {
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte").take(64);
    let calib = LabelledSource::new(&train, "input");
    let fp32 = imported("lenet_bn.onnx");
    for bits in [0, 1, 12, 16, 17] {
        let err = QatModel::prepare(&fp32, &calib, &QatConfig { bits, ..QatConfig::default() }, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("'bits'"), "{bits}: {err}");
    }
    let mut qat =
        QatModel::prepare(&fp32, &calib, &QatConfig { bits: 4, ..QatConfig::default() }, &mut |_| {}).unwrap();
    qat.train(
        &train,
        &QatTrainOptions { batch_size: 32, max_steps: Some(2), ..Default::default() },
        &mut |_, _, _, _| {},
    )
    .unwrap();
    let g = qat.convert().unwrap();
    let clips = g.node_ids().into_iter().filter(|&id| matches!(g.node(id).op, Op::Clip)).count();
    assert_eq!(clips, 4, "one Clip per quantized activation");
    // 4-bit weights use levels -7..=7 only.
    for id in g.node_ids() {
        if let Op::DequantizeLinear { .. } = g.node(id).op
            && let Some(q) = g.const_value(g.node_inputs(id)[0].unwrap())
        {
            let levels = q.to_f32_vec();
            assert!(levels.iter().all(|v| v.abs() <= 7.0), "{}", g.node(id).name);
            assert!(levels.iter().any(|v| v.abs() == 7.0));
        }
    }
}

#[test]
fn convert_before_training_is_post_training_abs_max_exactly() {
    // Untrained, every activation keeps the max|x| of the zero-point pass and every weight the
    // abs-max scales of the fp32 weights: PTQ with `abs_max` on the same samples, bit for bit
    // (without the depthwise input equalization, which PTQ does not do).
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte").take(256);
    let test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte").take(200);
    let calib = LabelledSource::new(&train, "input");
    let test_source = LabelledSource::new(&test, "input");
    for model in ["lenet_bn.onnx", "dwsep.onnx"] {
        for per_channel in [true, false] {
            let config = QatConfig {
                per_channel,
                calib_batch_size: 64,
                calib_samples: None,
                equalize: false,
                ..QatConfig::default()
            };
            let qat = QatModel::prepare(&imported(model), &calib, &config, &mut |_| {}).unwrap();
            let int8 = qat.convert_int8().unwrap();
            let mut ptq = optimized(model);
            let ptq_config = PtqConfig {
                algo: lithe_quant::calib::CalibAlgo::AbsMax,
                per_channel,
                batch_size: 64,
                quantize_adds: false, // as QAT
                ..PtqConfig::default()
            };
            quantize_static(&mut ptq, &calib, &ptq_config, &mut |_, _| {}).unwrap();
            lithe_passes::PassManager::default_pipeline().run(&mut ptq).unwrap();
            let a = outputs(&int8, &test_source, 100, None, 1).unwrap();
            let b = outputs(&ptq, &test_source, 100, None, 1).unwrap();
            assert_eq!(a, b, "{model} per_channel={per_channel}");
        }
    }
}

#[test]
fn pact_learns_its_clip_and_converts() {
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte").take(256);
    let test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte").take(100);
    let calib = LabelledSource::new(&train, "input");
    let fp32 = imported("lenet_bn.onnx");
    for bad in [0.0, -1.0, f32::NAN] {
        let err = QatModel::prepare(&fp32, &calib, &QatConfig { pact: Some(bad), ..QatConfig::default() }, &mut |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("'pact'"), "{err}");
    }
    // The default clip (20) is far above these activations: it never binds, and the converted
    // graph drops it (the quantizer saturates first), leaving PTQ's structure.
    let mut qat =
        QatModel::prepare(&fp32, &calib, &QatConfig { pact: Some(20.0), ..QatConfig::default() }, &mut |_| {}).unwrap();
    let options = QatTrainOptions { batch_size: 32, max_steps: Some(4), lr: 1e-2, ..Default::default() };
    qat.train(&train, &options, &mut |_, _, _, _| {}).unwrap();
    assert!(qat.pact_alphas().iter().all(|(_, a)| *a == 20.0), "{:?}", qat.pact_alphas());
    let g = qat.convert().unwrap();
    assert!(g.node_ids().into_iter().all(|id| !g.node(id).name.contains(".pact_")), "PACT removed");
    // A clip below the activations' range gets gradients and moves; where it still binds
    // after training the converted graph keeps it, so the converted model computes what
    // the fake-quantized one does.
    let mut qat =
        QatModel::prepare(&fp32, &calib, &QatConfig { pact: Some(0.5), ..QatConfig::default() }, &mut |_| {}).unwrap();
    qat.train(&train, &options, &mut |_, _, _, _| {}).unwrap();
    let alphas = qat.pact_alphas();
    assert_eq!(alphas.len(), 4);
    assert!(alphas.iter().any(|(_, a)| (a - 0.5).abs() > 1e-3), "{alphas:?}");
    let (x, _) = test.gather(&(0..100).collect::<Vec<_>>());
    let fake = qat.predict(vec![x]).unwrap();
    let conv = outputs(&qat.convert().unwrap(), &LabelledSource::new(&test, "input"), 100, None, 1).unwrap();
    let max_diff = fake.iter().zip(conv.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-3, "fake-quantized vs converted with PACT: {max_diff}");
}

#[test]
fn the_trained_graph_runs_in_the_predictor_as_in_eval_mode() {
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte").take(128);
    let test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte").take(50);
    let mut qat = QatModel::prepare(
        &imported("lenet_bn.onnx"),
        &LabelledSource::new(&train, "input"),
        &QatConfig::default(),
        &mut |_| {},
    )
    .unwrap();
    qat.train(
        &train,
        &QatTrainOptions { batch_size: 32, max_steps: Some(3), ..Default::default() },
        &mut |_, _, _, _| {},
    )
    .unwrap();
    let (x, _) = test.gather(&(0..50).collect::<Vec<_>>());
    let fake = qat.predict(vec![x]).unwrap();
    let run = outputs(qat.graph(), &LabelledSource::new(&test, "input"), 50, None, 1).unwrap();
    let max_diff = fake.iter().zip(run.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-3, "the graph's constants hold the trained state: {max_diff}");
}

#[test]
fn depthwise_equalization_brings_untrained_int8_closer_to_fp32() {
    // dwsep: the untrained int8 model with the depthwise inputs equalized agrees better with
    // fp32 than without (agreement measured on training digits the calibration did not see).
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte");
    let calib_set = train.take(512);
    let per: usize = train.sample_shape.iter().product();
    let held = Dataset::new(
        train.x[512 * per..1024 * per].to_vec(),
        train.sample_shape.clone(),
        train.labels[512..1024].to_vec(),
    )
    .unwrap();
    let calib = LabelledSource::new(&calib_set, "input");
    let held_source = LabelledSource::new(&held, "input");
    let fp32 = optimized("dwsep.onnx");
    let mut cosines = Vec::new();
    for equalize in [false, true] {
        let config = QatConfig { equalize, ..QatConfig::default() };
        let qat = QatModel::prepare(&imported("dwsep.onnx"), &calib, &config, &mut |_| {}).unwrap();
        let int8 = qat.convert_int8().unwrap();
        cosines.push(compare(&fp32, &int8, &held_source, 128, None, 1).unwrap().cosine);
    }
    assert!(cosines[1] > cosines[0], "equalized {} vs plain {}", cosines[1], cosines[0]);
}
