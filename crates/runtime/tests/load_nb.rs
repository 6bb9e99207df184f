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
fn file_weights_stay_in_place_and_checksums_are_optional() {
    // Weights large enough to go to the weights section (not inline).
    let mut b = GraphBuilder::new("wide");
    let x = b.input("x", DType::F32, &[Dim::Known(1), Dim::Known(64)]);
    let w = Tensor::from_vec(&[64, 64], (0..4096).map(|i| (i % 7) as f32 - 3.0).collect()).unwrap();
    let y = b.linear(x, w, None).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let input = Tensor::from_vec(&[1, 64], (0..64).map(|i| i as f32 / 64.0).collect()).unwrap();
    let want = Predictor::new(g.clone()).unwrap().run_with(vec![input.clone()]).unwrap();
    let mut bytes = lithe_nbformat::write(&g, &meta()).unwrap();
    let path = tmp("wide.nb");
    std::fs::write(&path, &bytes).unwrap();
    let p = Predictor::from_file(&path, PredictorOptions::default()).unwrap();
    let weights: Vec<&Tensor> = p
        .graph()
        .node_ids()
        .into_iter()
        .filter_map(|id| match &p.graph().node(id).op {
            lithe_ir::Op::Const(t) if t.len() == 4096 => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(weights.len(), 1);
    assert!(weights[0].is_in_place(), "the weights were copied at load");
    let mut p = p;
    assert_eq!(p.run_with(vec![input.clone()]).unwrap(), want);
    std::fs::remove_file(&path).unwrap();

    // A flipped weight byte: caught with verify_weights, loaded (one changed value) without.
    let info = lithe_nbformat::inspect(&bytes).unwrap();
    let s = info.sections.iter().find(|s| s.kind == lithe_nbformat::SectionKind::Weights).unwrap();
    bytes[s.offset as usize + 8] ^= 0x01;
    let e = Predictor::from_bytes(&bytes, PredictorOptions::default().with_verify_weights(true)).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    assert!(Predictor::from_bytes(&bytes, PredictorOptions::default()).is_ok());
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
    assert_eq!(PredictorOptions::default(), PredictorOptions { threads: 1, target: None, verify_weights: false });
    assert_eq!(Predictor::new(mlp()).unwrap().threads(), 1);
    let mut p = Predictor::with_options(mlp(), PredictorOptions::default().with_threads(0)).unwrap();
    let before = p.threads();
    p.run_with(vec![x()]).unwrap();
    assert!(before >= 1);
    assert_eq!(p.threads(), before);
}
