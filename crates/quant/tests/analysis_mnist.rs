//! Quantization analysis on the committed MNIST nets: the skip search reaches its target when
//! its suggestion is applied, and the model diff agrees with the per-layer analysis.

mod common;

use common::{Idx, optimized};
use lithe_quant::analysis::{SkipRanking, SkipSearch, compare_values, diff_models, quantized_values, suggest_skips};
use lithe_quant::calib::CalibAlgo;
use lithe_quant::eval::compare;
use lithe_quant::ptq::{PtqConfig, calibrate_graph, quantize_static};
use std::collections::BTreeSet;
use std::time::Instant;

/// Samples of the test split the searches evaluate on.
const EVAL: usize = 300;

#[test]
fn suggested_skips_reach_the_target_when_applied() {
    let (train, test) = (Idx::train(), Idx::test());
    for model in ["lenet_bn.onnx", "dwsep.onnx"] {
        search_reaches_the_target(model, &train, &test);
    }
}

fn search_reaches_the_target(model: &str, train: &Idx, test: &Idx) {
    let fp32 = optimized(model);
    // KL clips most of these nets' ranges (docs/calibration.md): a model far from fp32.
    let config = PtqConfig { algo: CalibAlgo::Kl, batch_size: 100, max_samples: Some(200), ..PtqConfig::default() };
    let calibration = calibrate_graph(&fp32, train, &config, &mut |_, _| {}).unwrap();
    for ranking in [SkipRanking::Cosine, SkipRanking::Agreement, SkipRanking::Analysis] {
        let t = Instant::now();
        let search =
            SkipSearch { target: 0.99, max_steps: 10, ranking, batch_size: 100, max_samples: Some(EVAL), threads: 1 };
        let mut events = 0;
        let s = suggest_skips(&fp32, &calibration, test, &search, &mut |_| events += 1).unwrap();
        eprintln!(
            "{model} {ranking}: {:?} in {:?}",
            (s.baseline_agreement, &s.skips, s.agreement, s.steps.len()),
            t.elapsed()
        );
        assert!(s.baseline_agreement < 0.99, "{s:?}");
        assert!(s.reached && s.agreement >= 0.99 - 1e-12, "{s:?}");
        assert!(!s.skips.is_empty() && s.skips.len() < calibration.nodes.len(), "{s:?}");
        assert_eq!(s.samples, EVAL);
        assert!(events >= s.steps.len() + 2);
        if ranking != SkipRanking::Analysis {
            assert_eq!(s.ranking.len(), calibration.nodes.len());
        }
        // Quantizing again from scratch with the suggestion as skip patterns gives the same
        // agreement on the same data.
        let mut g = fp32.clone();
        let again = PtqConfig { skip: s.skips.clone(), ..config.clone() };
        let report = quantize_static(&mut g, train, &again, &mut |_, _| {}).unwrap();
        assert_eq!(report.skipped.len(), s.skips.len());
        let a = compare(&fp32, &g, test, 100, Some(EVAL), 1).unwrap();
        assert!((a.top1_agreement - s.agreement).abs() < 1e-12, "{} vs {}", a.top1_agreement, s.agreement);
        assert!(a.top1_agreement >= 0.99 - 1e-12);
    }

    // A target the fully quantized model already meets needs no skips and no ranking.
    let search = SkipSearch { target: 0.0, max_samples: Some(100), batch_size: 100, ..SkipSearch::default() };
    let s = suggest_skips(&fp32, &calibration, test, &search, &mut |_| {}).unwrap();
    assert!(s.reached && s.skips.is_empty() && s.ranking.is_empty() && s.steps.is_empty(), "{s:?}");
    // Not reachable in two steps: the best prefix of the nodes tried is suggested.
    let search =
        SkipSearch { target: 1.0, max_steps: 2, max_samples: Some(EVAL), batch_size: 100, ..SkipSearch::default() };
    let s = suggest_skips(&fp32, &calibration, test, &search, &mut |_| {}).unwrap();
    let best = s.steps.iter().map(|t| t.agreement).fold(s.baseline_agreement, f64::max);
    assert!(!s.reached && s.agreement == best && s.skips.len() <= 2, "{s:?}");
    assert!(s.agreement < 1.0 && s.agreement > s.baseline_agreement, "{s:?}");
    // No steps allowed: not reached, nothing suggested.
    let search =
        SkipSearch { target: 1.0, max_steps: 0, max_samples: Some(100), batch_size: 100, ..SkipSearch::default() };
    let s = suggest_skips(&fp32, &calibration, test, &search, &mut |_| {}).unwrap();
    assert!(!s.reached && s.skips.is_empty(), "{s:?}");
    let bad = SkipSearch { target: 1.5, ..SkipSearch::default() };
    assert!(suggest_skips(&fp32, &calibration, test, &bad, &mut |_| {}).is_err());
}

#[test]
fn diff_of_a_model_with_itself_is_exact() {
    let test = Idx::test();
    let g = optimized("dwsep.onnx");
    let d = diff_models(&g, &g, &test, 50, Some(100), 1, &mut |_| {}).unwrap();
    assert_eq!(d.samples, 100);
    assert!(d.matching.only_a.is_empty() && d.matching.only_b.is_empty() && d.matching.mismatched.is_empty());
    assert!(d.values.len() >= 5, "{d:?}");
    for v in &d.values {
        assert!(v.snr_db.is_infinite() && v.cosine == 1.0 && v.max_abs_error == 0.0, "{v:?}");
    }
    let [o] = &d.outputs[..] else { panic!("{d:?}") };
    assert_eq!(o.top1_agreement, Some(1.0));
    assert!(o.max_abs_error == 0.0 && o.mean_abs_error == 0.0 && o.snr_db.is_infinite());
}

#[test]
fn diff_of_fp32_and_int8_agrees_with_the_per_layer_analysis() {
    let train = Idx::train();
    let test = Idx::test();
    let fp32 = optimized("dwsep.onnx");
    let mut g = fp32.clone();
    let config = PtqConfig { algo: CalibAlgo::AbsMax, batch_size: 100, max_samples: Some(200), ..PtqConfig::default() };
    let report = quantize_static(&mut g, &train, &config, &mut |_, _| {}).unwrap();
    let rows = compare_values(&fp32, &g, &quantized_values(&fp32, &g), &test, 50, Some(200), 1).unwrap();
    assert_eq!(rows.len(), report.quantized.len());
    let d = diff_models(&fp32, &g, &test, 50, Some(200), 1, &mut |_| {}).unwrap();
    // Every fp32 value is still there; the Q/DQ pairs and int8 weights are B's own.
    assert!(d.matching.only_a.is_empty(), "{:?}", d.matching);
    assert!(d.matching.only_b.iter().any(|n| n.ends_with(".dq")), "{:?}", d.matching);
    // The u8 `.quantize` values are compared dequantized: the same numbers as `.dequantize`.
    assert_eq!(d.matching.dequantized.len(), report.ranges.len(), "{:?}", d.matching);
    for ob in d.matching.dequantized.keys() {
        let name = &g.value(*ob).name;
        let q = d.values.iter().find(|v| &v.value == name).unwrap();
        let base = name.strip_suffix(".quantize").unwrap();
        let dq = d.values.iter().find(|v| v.value == format!("{base}.dequantize")).unwrap();
        assert!((q.snr_db - dq.snr_db).abs() < 1e-6, "{q:?} vs {dq:?}");
    }
    // Each quantized activation after its Q/DQ pair is compared with the fp32 activation.
    let dq: Vec<_> = d.values.iter().filter(|v| v.value.ends_with(".dequantize")).collect();
    assert_eq!(dq.len(), report.ranges.len(), "{:?}", d.values);
    assert!(dq.iter().all(|v| v.op == "DequantizeLinear" && v.snr_db.is_finite() && v.snr_db > 20.0), "{dq:?}");
    assert!(d.values.len() > rows.len());
    // The analysis' rows are among the diff's, with the same numbers, and its worst layer is
    // the worst quantized-node output the diff finds.
    for r in &rows {
        let v = d.values.iter().find(|v| v.value == r.value).unwrap_or_else(|| panic!("{} missing", r.value));
        assert!((v.snr_db - r.snr_db).abs() < 1e-9 && (v.cosine - r.cosine).abs() < 1e-12, "{v:?} vs {r:?}");
        assert!(v.max_abs_error > 0.0 && v.snr_db.is_finite());
    }
    let names: BTreeSet<&str> = rows.iter().map(|r| r.value.as_str()).collect();
    let worst = d.values.iter().find(|v| names.contains(v.value.as_str())).unwrap();
    assert_eq!(worst.value, rows[0].value);
    for w in d.values.windows(2) {
        assert!(w[0].snr_db <= w[1].snr_db);
    }
    // After the optimizer fused Q/DQ pairs into integer convs, their u8 outputs (named after
    // the quantized activations) are dequantized and compared with fp32's activations.
    let mut fused = g.clone();
    lithe_passes::PassManager::default_pipeline().run(&mut fused).unwrap();
    let f = diff_models(&fp32, &fused, &test, 50, Some(200), 1, &mut |_| {}).unwrap();
    assert!(!f.matching.dequantized.is_empty(), "{:?}", f.matching);
    for ob in f.matching.dequantized.keys() {
        let name = &fused.value(*ob).name;
        let row = f.values.iter().find(|v| &v.value == name).unwrap();
        let base = name.strip_suffix(".quantize").unwrap_or(name);
        let dq = d.values.iter().find(|v| v.value == format!("{base}.dequantize")).unwrap_or_else(|| panic!("{name}"));
        assert!((row.snr_db - dq.snr_db).abs() < 0.05, "{row:?} vs {dq:?}");
    }
    let [o] = &d.outputs[..] else { panic!("{d:?}") };
    let a = compare(&fp32, &g, &test, 50, Some(200), 1).unwrap();
    assert_eq!(o.top1_agreement, Some(a.top1_agreement));
    assert!((o.max_abs_error - f64::from(a.max_abs_error)).abs() < 1e-6 && o.max_abs_error > 0.0);
}
