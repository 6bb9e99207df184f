//! Predictors cloned from one loaded model share its weights and run concurrently, each
//! giving what a lone predictor gives; threads inside one predictor give the same outputs.

use lithe_ir::npy::read_npy;
use lithe_ir::{Graph, Tensor};
use lithe_runtime::{Predictor, PredictorOptions};
use std::path::Path;

fn optimized(case: &str) -> (Graph, Tensor) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden").join(case);
    let mut g = lithe_onnx::load_model(&dir.join("model.onnx"), &Default::default()).unwrap();
    lithe_passes::PassManager::default_pipeline().run(&mut g).unwrap();
    (g, read_npy(&dir.join("input_0.npy")).unwrap())
}

fn scaled(t: &Tensor, k: f32) -> Tensor {
    Tensor::from_vec(t.shape(), t.to_f32_vec().into_iter().map(|v| v * k).collect()).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.to_f32_vec().iter().zip(b.to_f32_vec()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn clones_share_the_model_and_run_concurrently() {
    let (g, x) = optimized("mobilenet_v2");
    let mut first = Predictor::new(g).unwrap();
    let inputs: Vec<Tensor> = (0..3).map(|i| scaled(&x, 1.0 - 0.25 * i as f32)).collect();
    let alone: Vec<Tensor> = inputs.iter().map(|t| first.run_with(vec![t.clone()]).unwrap().remove(0)).collect();
    let got: Vec<Tensor> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|t| {
                let mut p = first.clone();
                s.spawn(move || p.run_with(vec![t.clone()]).unwrap().remove(0))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (a, b) in alone.iter().zip(&got) {
        assert_eq!(a.to_f32_vec(), b.to_f32_vec(), "a clone gives exactly what the original gives");
    }
    assert!(max_abs_diff(&alone[0], &alone[1]) > 0.0, "different inputs give different outputs");
}

#[test]
fn two_threads_match_one() {
    for case in ["mobilenet_v2", "resnet18_w16", "squeezenet1_1", "shufflenet_v2_x0_5"] {
        let (g, x) = optimized(case);
        let mut one = Predictor::with_options(g.clone(), PredictorOptions::default().with_threads(1)).unwrap();
        let mut two = Predictor::with_options(g, PredictorOptions::default().with_threads(2)).unwrap();
        let a = one.run_with(vec![x.clone()]).unwrap().remove(0);
        let b = two.run_with(vec![x.clone()]).unwrap().remove(0);
        let scale = a.to_f32_vec().iter().fold(1f32, |m, v| m.max(v.abs()));
        assert!(max_abs_diff(&a, &b) <= 1e-4 * scale, "{case}: 2 threads differ from 1");
        one.set_threads(2);
        let c = one.run_with(vec![x]).unwrap().remove(0);
        assert_eq!(one.threads(), 2);
        assert!(max_abs_diff(&a, &c) <= 1e-4 * scale, "{case}: set_threads(2) differs from 1 thread");
    }
}

/// Depthwise convs, with and without bias, with and without PReLU, run on the direct kernels
/// and agree with the reference kernels.
#[test]
fn depthwise_convs_run_on_the_direct_kernels() {
    use lithe_ir::DType;
    use lithe_ir::builder::GraphBuilder;
    use lithe_ir::op::{Activation, ConvAttrs, Epilogue, Op};
    let c = 6;
    let x =
        Tensor::from_vec(&[1, c, 9, 11], (0..c * 99).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect()).unwrap();
    let w = Tensor::from_vec(&[c, 1, 3, 3], (0..c * 9).map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0).collect()).unwrap();
    for (bias, prelu) in [(false, false), (true, false), (false, true)] {
        let mut b = GraphBuilder::new("dw");
        let input = b.input("x", DType::F32, &[1, c, 9, 11]);
        let attrs = ConvAttrs {
            pads: vec![1, 1, 1, 1],
            group: c,
            epilogue: Epilogue {
                residual: false,
                activation: if prelu { Activation::PRelu } else { Activation::None },
            },
            ..ConvAttrs::default()
        };
        let wv = b.constant("w", w.clone());
        let bv =
            bias.then(|| b.constant("b", Tensor::from_vec(&[c], (0..c).map(|i| i as f32 / 4.0).collect()).unwrap()));
        let sv =
            prelu.then(|| b.constant("s", Tensor::from_vec(&[c, 1, 1], vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap()));
        let y = b.node_with(Op::Conv(attrs), &[Some(input), Some(wv), bv, None, sv], 1).unwrap()[0];
        b.output(y);
        let g = b.finish().unwrap();
        let mut fast = Predictor::new(g.clone()).unwrap();
        let kernels: Vec<String> = fast.node_kernels().into_iter().map(|(_, k)| k).collect();
        assert_eq!(kernels, ["f32_dwconv_3x3/direct"], "bias {bias}, prelu {prelu}");
        let got = fast.run_with(vec![x.clone()]).unwrap().remove(0);
        let ins: Vec<Option<&Tensor>> = vec![Some(&x), Some(&w)];
        let node = g.node(g.outputs()[0].node);
        let consts: Vec<Option<Tensor>> = g
            .node_inputs(g.outputs()[0].node)
            .into_iter()
            .skip(2)
            .map(|o| o.and_then(|o| g.const_value(o).cloned()))
            .collect();
        let mut all = ins;
        all.extend(consts.iter().map(Option::as_ref));
        let want = lithe_kernels::reference::eval(&node.op, &all, 1).unwrap().remove(0);
        assert!(max_abs_diff(&got, &want) < 1e-5, "bias {bias}, prelu {prelu}");
    }
}

/// A deep pointwise conv on a 7x7 map (49 positions: 64 columns of 32-wide panels channel-major)
/// runs spatial-major where the rule says so, with bias, residual and activation, and agrees
/// with the reference either way.
#[test]
fn pointwise_convs_on_small_maps_run_spatial_major() {
    use lithe_ir::DType;
    use lithe_ir::builder::GraphBuilder;
    use lithe_ir::op::{Activation, ConvAttrs, Epilogue, Op};
    let (c_in, c_out, hw) = (768, 64, 7);
    let values = |n: usize, k: usize| (0..n).map(|i| ((i * k % 29) as f32 - 14.0) / 15.0).collect::<Vec<_>>();
    let x = Tensor::from_vec(&[1, c_in, hw, hw], values(c_in * hw * hw, 37)).unwrap();
    let r = Tensor::from_vec(&[1, c_out, hw, hw], values(c_out * hw * hw, 11)).unwrap();
    let w = Tensor::from_vec(&[c_out, c_in, 1, 1], values(c_out * c_in, 13)).unwrap();
    let bias = Tensor::from_vec(&[c_out], values(c_out, 7)).unwrap();
    let mut b = GraphBuilder::new("pw");
    let input = b.input("x", DType::F32, &[1, c_in, hw, hw]);
    let residual = b.input("r", DType::F32, &[1, c_out, hw, hw]);
    let attrs =
        ConvAttrs { epilogue: Epilogue { residual: true, activation: Activation::Relu }, ..ConvAttrs::default() };
    let (wv, bv) = (b.constant("w", w.clone()), b.constant("b", bias.clone()));
    let y = b.node_with(Op::Conv(attrs.clone()), &[Some(input), Some(wv), Some(bv), Some(residual)], 1).unwrap()[0];
    b.output(y);
    let mut fast = Predictor::new(b.finish().unwrap()).unwrap();
    let kernels: Vec<String> = fast.node_kernels().into_iter().map(|(_, k)| k).collect();
    assert_eq!(kernels.len(), 1);
    // The form follows the rule for this CPU's tiles (with AVX-512's 32-wide panels it is
    // spatial-major; NEON's 8x12 pads 49 positions only to 60, so it stays channel-major).
    let set = lithe_runtime::kernel_set();
    let (cm, sm) = (set.f32_gemm_for_rows(c_out), set.f32_gemm_for_rows(hw * hw));
    let spatial = cm.nr() == sm.nr()
        && lithe_kernels::conv2d_gemm::spatial_major_pays(hw * hw, c_out, c_in, cm.mr(), sm.mr(), sm.nr());
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && !lithe_kernels::force_generic() {
        assert!(spatial, "the AVX-512 tiles should make this conv spatial-major");
    }
    assert_eq!(kernels[0].starts_with("conv2d_gemm_spatial/"), spatial, "{kernels:?}");
    let got = fast.run_with(vec![x.clone(), r.clone()]).unwrap().remove(0);
    let want = lithe_kernels::reference::eval(&Op::Conv(attrs), &[Some(&x), Some(&w), Some(&bias), Some(&r)], 1)
        .unwrap()
        .remove(0);
    assert!(max_abs_diff(&got, &want) < 1e-3, "{}", max_abs_diff(&got, &want));
}
