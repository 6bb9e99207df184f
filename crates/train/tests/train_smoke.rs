//! The training loop end to end on small data (debug build, well under 30 s).

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{ConvAttrs, PoolAttrs};
use lithe_ir::{DType, Dim, Graph, Op, Tensor};
use lithe_train::data::{Augment, Batches, Dataset};
use lithe_train::init::{fan_in_uniform, filled, kaiming_normal};
use lithe_train::optim::OptimizerKind;
use lithe_train::rng::Rng;
use lithe_train::schedule::Schedule;
use lithe_train::{Trainer, TrainerConfig};
use std::path::Path;

/// conv3x3(4)-BN-ReLU-maxpool2 -> flatten -> fc(10) on `1 x 12 x 12` inputs.
fn tiny_net(seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let mut b = GraphBuilder::new("tiny");
    let x = b.input("input", DType::F32, &[Dim::Sym("batch".into()), 1.into(), 12.into(), 12.into()]);
    let c = b.conv2d(x, kaiming_normal(&[4, 1, 3, 3], 9, &mut rng), None, ConvAttrs::default()).unwrap();
    let c = b.batch_norm(c, filled(&[4], 1.0), filled(&[4], 0.0), filled(&[4], 0.0), filled(&[4], 1.0), 1e-5).unwrap();
    let c = b.relu(c).unwrap();
    let p = b.max_pool(c, PoolAttrs { kernel_shape: vec![2, 2], strides: vec![2, 2], ..Default::default() }).unwrap();
    let f = b.node(Op::Flatten { axis: 1 }, &[p]).unwrap();
    let y = b.linear(f, fan_in_uniform(&[10, 100], 100, &mut rng), Some(fan_in_uniform(&[10], 100, &mut rng))).unwrap();
    b.output(y);
    b.finish().unwrap()
}

/// A 12x12 centre crop of the first MNIST training rows.
fn mnist_crop(n: usize) -> Dataset {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist");
    let d =
        Dataset::from_idx(&dir.join("train-images-idx3-ubyte"), &dir.join("train-labels-idx1-ubyte")).unwrap().take(n);
    let mut x = Vec::with_capacity(n * 144);
    for i in 0..d.len() {
        for r in 8..20 {
            x.extend_from_slice(&d.x[i * 784 + r * 28 + 8..i * 784 + r * 28 + 20]);
        }
    }
    Dataset::new(x, vec![1, 12, 12], d.labels).unwrap()
}

#[test]
fn loss_drops_on_a_fixed_batch() {
    let data = mnist_crop(64);
    let (x, labels) = data.gather(&(0..64).collect::<Vec<_>>());
    let config = TrainerConfig { schedule: Schedule::constant(0.01), ..TrainerConfig::default() };
    let mut t = Trainer::new(tiny_net(1), config).unwrap();
    assert_eq!(t.params().names().len(), 5, "{:?}", t.params().names());
    let first = t.step(x.clone(), &labels).unwrap().loss;
    let mut last = first;
    for _ in 0..40 {
        last = t.step(x.clone(), &labels).unwrap().loss;
    }
    assert!(first > 1.5 && last < 0.5 * first, "loss {first} -> {last}");
    // The running statistics moved off their initial values and the weights were written back.
    let g = t.graph();
    let var = g.find_value("BatchNormalization_1.var").and_then(|o| g.const_value(o)).unwrap().to_f32_vec();
    assert!(var.iter().all(|&v| v != 1.0), "{var:?}");
}

#[test]
fn sgd_nesterov_with_clipping_and_frozen_conv_learns_and_freezes() {
    let data = mnist_crop(256);
    let config = TrainerConfig {
        freeze: vec!["Conv_*".into()],
        optimizer: OptimizerKind::Sgd { momentum: 0.9, nesterov: true, weight_decay: 1e-4 },
        schedule: Schedule::cosine(0.05, 40).with_warmup(4),
        clip_norm: Some(5.0),
        label_smoothing: 0.1,
        ..TrainerConfig::default()
    };
    let net = tiny_net(2);
    let w0: Tensor = net.const_value(net.find_value("Conv_0.weight").unwrap()).unwrap().clone();
    let mut t = Trainer::new(net, config).unwrap();
    assert!(t.params().names().iter().all(|n| !n.starts_with("Conv_")), "{:?}", t.params().names());
    let before = t.eval_loss(&data, 128).unwrap();
    for epoch in 0..5 {
        for (x, labels) in Batches::new(&data, 32, Some(epoch), Augment::Shift { max: 1 }) {
            let s = t.step(x, &labels).unwrap();
            assert!(s.loss.is_finite() && s.grad_norm.is_finite());
        }
    }
    let after = t.eval_loss(&data, 128).unwrap();
    assert!(after < 0.8 * before, "eval loss {before} -> {after}");
    let g = t.graph();
    assert_eq!(g.const_value(g.find_value("Conv_0.weight").unwrap()).unwrap(), &w0, "frozen weights moved");
}
