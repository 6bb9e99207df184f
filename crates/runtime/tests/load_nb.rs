//! Loading `.nb` models: from bytes and from a file give the same predictor as the graph,
//! the metadata is kept, options apply, and broken input is a `Load` error, never a panic.

use lithe_ir::builder::GraphBuilder;
use lithe_ir::{DType, Dim, Graph, Tensor};
use lithe_nbformat::ModelMeta;
use lithe_runtime::{Predictor, PredictorOptions, RuntimeError};
use std::path::PathBuf;

/// y = relu(x @ wᵀ + b) with x: f32[batch, 3], w: [2, 3].
fn mlp() -> Graph {
    let mut b = GraphBuilder::new("mlp");
    let x = b.input("x", DType::F32, &[Dim::Sym("batch".into()), Dim::Known(3)]);
    let w = Tensor::from_vec(&[2, 3], vec![1.0f32, -1.0, 0.5, 2.0, -2.0, 0.25]).unwrap();
    let bias = Tensor::from_vec(&[2], vec![0.5f32, -0.5]).unwrap();
    let h = b.linear(x, w, Some(bias)).unwrap();
    let y = b.relu(h).unwrap();
    b.output(y);
    b.finish().unwrap()
}

fn meta() -> ModelMeta {
    ModelMeta {
        producer: "lithe test".into(),
        source: "mlp.onnx".into(),
        passes: vec!["fuse_activation".into(), "dead_code".into()],
        valid_targets: vec!["arm".into()],
    }
}

fn x() -> Tensor {
    Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, -1.0, 0.5, 4.0]).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{}-{name}", std::process::id()))
}

#[test]
fn nb_bytes_and_file_run_like_the_graph() {
    let want = Predictor::new(mlp()).unwrap().run_with(vec![x()]).unwrap();
    let bytes = lithe_nbformat::write(&mlp(), &meta()).unwrap();

    let mut p = Predictor::from_bytes(&bytes, PredictorOptions::default()).unwrap();
    assert_eq!(p.meta(), &meta());
    assert_eq!(p.input_names(), ["x"]);
    assert_eq!(p.run_with(vec![x()]).unwrap(), want);

    let path = tmp("mlp.nb");
    std::fs::write(&path, &bytes).unwrap();
    let mut p = Predictor::from_file(&path, PredictorOptions::default().with_threads(2)).unwrap();
    assert_eq!(p.meta(), &meta());
    assert_eq!(p.threads(), 2);
    assert_eq!(p.options().threads, 2);
    assert_eq!(p.run_with(vec![x()]).unwrap(), want);
    assert_eq!(p.threads(), 2);
    // A second run on the same predictor reuses the plan and the arena.
    assert_eq!(p.run_with(vec![x()]).unwrap(), want);
    std::fs::remove_file(&path).unwrap();

    // A predictor built from a graph has empty metadata.
    assert_eq!(Predictor::new(mlp()).unwrap().meta(), &ModelMeta::default());
}

#[test]
fn missing_and_broken_models_are_load_errors() {
    let path = tmp("does-not-exist.nb");
    let e = Predictor::from_file(&path, PredictorOptions::default()).unwrap_err();
    assert!(matches!(&e, RuntimeError::Load { path: Some(p), .. } if *p == path), "{e:?}");
    assert!(e.to_string().contains("does-not-exist.nb"), "{e}");

    let e = Predictor::from_bytes(b"not a model", PredictorOptions::default()).unwrap_err();
    assert!(matches!(&e, RuntimeError::Load { path: None, .. }), "{e:?}");
    assert!(e.to_string().starts_with("cannot load the model from memory: "), "{e}");

    // Every truncation and a flipped byte in every position fail cleanly or still load a
    // valid graph (a flip in padding changes nothing).
    let bytes = lithe_nbformat::write(&mlp(), &meta()).unwrap();
    for len in 0..bytes.len() {
        let r = Predictor::from_bytes(&bytes[..len], PredictorOptions::default());
        assert!(matches!(r, Err(RuntimeError::Load { .. })), "truncated to {len}: {r:?}");
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        if let Err(e) = Predictor::from_bytes(&b, PredictorOptions::default()) {
            assert!(matches!(e, RuntimeError::Load { .. } | RuntimeError::Graph(_)), "flip at {i}: {e:?}");
        }
    }
}

#[test]
fn target_option_is_checked() {
    let bytes = lithe_nbformat::write(&mlp(), &meta()).unwrap();
    let e = Predictor::from_bytes(&bytes, PredictorOptions::default().with_target("mips")).unwrap_err();
    assert!(matches!(e, RuntimeError::UnknownTarget(_)), "{e:?}");
    assert!(e.to_string().contains("unknown target 'mips'"), "{e}");
    // Every operator has a kernel on both targets; x86 is not among the model's checked
    // targets, which only warns.
    for target in ["arm", "x86"] {
        let mut p = Predictor::from_bytes(&bytes, PredictorOptions::default().with_target(target)).unwrap();
        assert_eq!(p.options().target.as_deref(), Some(target));
        p.run_with(vec![x()]).unwrap();
    }
}

#[test]
fn default_options_use_one_thread_and_zero_means_every_core() {
    assert_eq!(PredictorOptions::default(), PredictorOptions { threads: 1, target: None });
    assert_eq!(Predictor::new(mlp()).unwrap().threads(), 1);
    let mut p = Predictor::with_options(mlp(), PredictorOptions::default().with_threads(0)).unwrap();
    let before = p.threads();
    p.run_with(vec![x()]).unwrap();
    assert!(before >= 1);
    assert_eq!(p.threads(), before);
}
