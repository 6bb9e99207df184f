//! Checkpoints and ONNX export of trained models: the exported ONNX and the checkpoint `.nb`
//! compute the trainer's own eval outputs (through the importer and the predictor), a
//! checkpoint holds everything a resumed run needs, and the committed Lithe-trained MNIST nets
//! (`testdata/mnist/trained`, written by `cargo xtask train-export-check --write-golden`) give
//! onnxruntime's logits in Lithe.

use lithe_ir::{Graph, Op, Tensor};
use lithe_runtime::Predictor;
use lithe_train::checkpoint::{self, TrainState};
use lithe_train::data::{Augment, Batches, Dataset};
use lithe_train::models::{self, Init};
use lithe_train::optim::OptimizerKind;
use lithe_train::schedule::Schedule;
use lithe_train::{Trainer, TrainerConfig};
use std::path::{Path, PathBuf};

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist")
}

fn mnist_train(n: usize) -> Dataset {
    let d = mnist_dir();
    Dataset::from_idx(&d.join("train-images-idx3-ubyte"), &d.join("train-labels-idx1-ubyte")).unwrap().take(n)
}

/// The first `n` test images as one `n x 1 x 28 x 28` tensor.
fn test_images(n: usize) -> Tensor {
    let d = mnist_dir();
    let t = Dataset::from_idx(&d.join("t10k-images-idx3-ubyte"), &d.join("t10k-labels-idx1-ubyte")).unwrap().take(n);
    t.gather(&(0..n).collect::<Vec<_>>()).0
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn argmax_rows(v: &[f32], classes: usize) -> Vec<usize> {
    v.chunks(classes)
        .map(|r| r.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (j, &x)| if x > b.1 { (j, x) } else { b }).0)
        .collect()
}

fn predictor_logits(g: Graph, x: &Tensor) -> Vec<f32> {
    Predictor::new(g).unwrap().run_with(vec![x.clone()]).unwrap()[0].to_f32_vec()
}

/// `steps` Adam steps of batch 32 on the first 256 training images (shuffled with `seed`).
fn trained(graph: Graph, steps: usize, seed: u64) -> Trainer {
    let data = mnist_train(256);
    let config = TrainerConfig {
        optimizer: OptimizerKind::adam(1e-4),
        schedule: Schedule::constant(2e-3),
        ..Default::default()
    };
    let mut t = Trainer::new(graph, config).unwrap();
    let mut epoch = 0;
    while t.steps() < steps {
        for (x, labels) in Batches::new(&data, 32, Some(seed + epoch), Augment::None) {
            if t.steps() < steps {
                t.step(x, &labels).unwrap();
            }
        }
        epoch += 1;
    }
    t
}

#[test]
fn trained_models_export_to_onnx_and_nb_with_the_trainers_outputs() {
    let work = tempfile::tempdir().unwrap();
    let x = test_images(16);
    for (name, graph) in
        [("lenet_bn", models::lenet_bn(3, Init::TorchDefault)), ("dwsep", models::dwsep(3, Init::TorchDefault))]
    {
        let t = trained(graph.unwrap(), 10, 5);
        let want = t.predict(x.clone()).unwrap().iter().copied().collect::<Vec<f32>>();
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let tol = 1e-4 + 1e-5 * scale;

        // ONNX: imported by lithe-onnx, run by the predictor.
        let onnx = work.path().join(format!("{name}.onnx"));
        checkpoint::save_onnx(t.graph(), &onnx).unwrap();
        let imported = lithe_onnx::load_model(&onnx, &Default::default()).unwrap();
        let bn =
            imported.node_ids().into_iter().filter(|&id| imported.node(id).op.name() == "BatchNormalization").count();
        assert!(bn > 0, "{name}: the export keeps batch norm");
        let got = predictor_logits(imported, &x);
        assert!(max_abs_diff(&got, &want) < tol, "{name} ONNX: {}", max_abs_diff(&got, &want));

        // The same file loaded for training: the eval tape gives the same logits.
        let again = Trainer::new(checkpoint::load_model(&onnx).unwrap(), TrainerConfig::default()).unwrap();
        let got = again.predict(x.clone()).unwrap().iter().copied().collect::<Vec<f32>>();
        assert!(max_abs_diff(&got, &want) < tol, "{name} ONNX reloaded: {}", max_abs_diff(&got, &want));
        assert_eq!(again.params().num_scalars(again.graph()), t.params().num_scalars(t.graph()));

        // .nb: the predictor runs the checkpoint; reloading gives every constant bit for bit.
        let nb = work.path().join(format!("{name}.nb"));
        checkpoint::save_nb(t.graph(), &nb, name).unwrap();
        let got =
            Predictor::from_file(&nb, Default::default()).unwrap().run_with(vec![x.clone()]).unwrap()[0].to_f32_vec();
        assert!(max_abs_diff(&got, &want) < tol, "{name} .nb: {}", max_abs_diff(&got, &want));
        let back = checkpoint::load_model(&nb).unwrap();
        let consts = |g: &Graph| -> Vec<(String, Vec<f32>)> {
            let mut v: Vec<_> = g
                .node_ids()
                .into_iter()
                .filter_map(|id| match &g.node(id).op {
                    Op::Const(c) if c.dtype() == lithe_ir::DType::F32 => {
                        Some((g.node(id).name.clone(), c.to_f32_vec()))
                    }
                    _ => None,
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        assert_eq!(consts(&back), consts(t.graph()), "{name}: weights and running statistics survive the .nb");
    }
}

/// A run resumed from a checkpoint (weights, running statistics, the schedule's step, Adam's
/// moments) is the uninterrupted run; without the moments or the step count it is not.
#[test]
fn a_resumed_run_continues_the_uninterrupted_one() {
    let work = tempfile::tempdir().unwrap();
    let data = mnist_train(128);
    let config = || TrainerConfig {
        optimizer: OptimizerKind::adamw(1e-2),
        schedule: Schedule::cosine(3e-3, 16),
        ..TrainerConfig::default()
    };
    let run_epoch = |t: &mut Trainer, epoch: u64| {
        for (x, labels) in Batches::new(&data, 16, Some(epoch), Augment::None) {
            t.step(x, &labels).unwrap();
        }
    };
    let mut full = Trainer::new(models::lenet_bn(1, Init::TorchDefault).unwrap(), config()).unwrap();
    run_epoch(&mut full, 0);
    let ckpt = work.path().join("epoch-001.nb");
    checkpoint::save_nb(full.graph(), &ckpt, "lenet_bn").unwrap();
    TrainState { epoch: 1, steps: full.steps() }.save(&ckpt).unwrap();
    checkpoint::save_optimizer(&full, &ckpt).unwrap();
    run_epoch(&mut full, 1);

    let state = TrainState::load(&ckpt).unwrap().unwrap();
    assert_eq!(state, TrainState { epoch: 1, steps: 8 });
    let resume = |steps: Option<usize>, moments: bool| {
        let mut t = Trainer::new(checkpoint::load_model(&ckpt).unwrap(), config()).unwrap();
        if let Some(s) = steps {
            t.resume_at(s);
        }
        if moments {
            assert!(checkpoint::load_optimizer(&mut t, &ckpt).unwrap());
            assert_eq!(t.optimizer().steps(), 8);
        }
        run_epoch(&mut t, 1);
        t.predict(test_images(32)).unwrap().iter().copied().collect::<Vec<f32>>()
    };
    let want = full.predict(test_images(32)).unwrap().iter().copied().collect::<Vec<f32>>();
    let resumed = resume(Some(state.steps), true);
    assert!(max_abs_diff(&resumed, &want) < 1e-5, "resumed: {}", max_abs_diff(&resumed, &want));
    for (what, steps, moments) in [("fresh moments", Some(state.steps), false), ("restarted schedule", None, true)] {
        let other = resume(steps, moments);
        assert!(max_abs_diff(&other, &want) > 1e-3, "{what}: {}", max_abs_diff(&other, &want));
    }

    // An SGD trainer refuses Adam's state; a corrupted file is an error naming it.
    let sgd = TrainerConfig { optimizer: OptimizerKind::sgd(0.9, 0.0), ..config() };
    let mut t = Trainer::new(checkpoint::load_model(&ckpt).unwrap(), sgd).unwrap();
    let err = checkpoint::load_optimizer(&mut t, &ckpt).unwrap_err().to_string();
    assert!(err.contains("epoch-001.optim") && err.contains("sgd"), "{err}");
    let optim = checkpoint::optimizer_path(&ckpt);
    let bytes = std::fs::read(&optim).unwrap();
    std::fs::write(&optim, &bytes[..bytes.len() - 3]).unwrap();
    let mut t = Trainer::new(checkpoint::load_model(&ckpt).unwrap(), config()).unwrap();
    let err = checkpoint::load_optimizer(&mut t, &ckpt).unwrap_err().to_string();
    assert!(err.contains("epoch-001.optim") && err.contains("truncated"), "{err}");
}

/// The Lithe-trained nets in `testdata/mnist/trained`, imported from ONNX and run by Lithe (the
/// predictor, and the training tape in eval mode), against onnxruntime's logits on the first
/// 64 test images.
#[test]
fn lithe_trained_onnx_matches_onnxruntime() {
    let dir = mnist_dir().join("trained");
    let x = test_images(64);
    for name in ["lenet_bn", "dwsep"] {
        let model = dir.join(format!("{name}.onnx"));
        let ort = lithe_ir::npy::read_npy(&dir.join(format!("{name}_ort_logits.npy"))).unwrap();
        assert_eq!(ort.shape(), &[64, 10]);
        let ort = ort.to_f32_vec();
        let scale = ort.iter().fold(0f32, |m, v| m.max(v.abs()));
        let tol = 1e-4 + 1e-5 * scale;
        let g = lithe_onnx::load_model(&model, &Default::default()).unwrap();
        let got = predictor_logits(g, &x);
        assert!(max_abs_diff(&got, &ort) < tol, "{name} predictor: {}", max_abs_diff(&got, &ort));
        assert_eq!(argmax_rows(&got, 10), argmax_rows(&ort, 10), "{name}");
        let t = Trainer::new(checkpoint::load_model(&model).unwrap(), TrainerConfig::default()).unwrap();
        let got = t.predict(x.clone()).unwrap().iter().copied().collect::<Vec<f32>>();
        assert!(max_abs_diff(&got, &ort) < tol, "{name} eval tape: {}", max_abs_diff(&got, &ort));
        // Trained, not random: most of the 64 digits are classified right.
        let labels =
            Dataset::from_idx(&mnist_dir().join("t10k-images-idx3-ubyte"), &mnist_dir().join("t10k-labels-idx1-ubyte"))
                .unwrap()
                .take(64)
                .labels;
        let right = argmax_rows(&ort, 10).iter().zip(&labels).filter(|(a, b)| a == b).count();
        assert!(right >= 56, "{name}: {right}/64 right");
    }
}
