use super::*;
use proptest::prelude::*;

fn run(obs: &mut dyn Observer, batches: &[&[f32]]) {
    loop {
        for b in batches {
            obs.observe(b);
        }
        if !obs.needs_second_pass() {
            break;
        }
        obs.begin_second_pass();
    }
}

fn opts(bins: usize, two_pass: bool, kl_start_bin: usize) -> CalibOptions {
    CalibOptions { bins, two_pass, kl_start_bin }
}

// ---- quantize helpers ----

#[test]
fn levels_of_specs() {
    assert_eq!(QuantSpec::INT8.max_level(), 127);
    assert_eq!(QuantSpec::INT8.min_level(), -127);
    assert_eq!(QuantSpec::UINT8.max_level(), 255);
    assert_eq!(QuantSpec::UINT8.min_level(), 0);
    assert_eq!(QuantSpec::new(4, false).unwrap().max_level(), 7);
    assert_eq!(QuantSpec::new(16, true).unwrap().max_level(), 65535);
    assert!(matches!(QuantSpec::new(1, false), Err(QuantError::Setting { field: "bits", .. })));
    assert!(QuantSpec::new(17, true).is_err());
    assert_eq!(QuantSpec::default(), QuantSpec::INT8);
}

#[test]
fn quantize_rounds_half_to_even_and_clamps() {
    let s = scale_from_threshold(127.0, QuantSpec::INT8);
    assert_eq!(s, 1.0);
    assert_eq!(quantize(2.5, s, QuantSpec::INT8), 2);
    assert_eq!(quantize(3.5, s, QuantSpec::INT8), 4);
    assert_eq!(quantize(-2.5, s, QuantSpec::INT8), -2);
    assert_eq!(quantize(-3.5, s, QuantSpec::INT8), -4);
    assert_eq!(quantize(2.4, s, QuantSpec::INT8), 2);
    assert_eq!(quantize(500.0, s, QuantSpec::INT8), 127);
    assert_eq!(quantize(-500.0, s, QuantSpec::INT8), -127);
    assert_eq!(quantize(-3.0, s, QuantSpec::UINT8), 0);
    assert_eq!(quantize(300.0, s, QuantSpec::UINT8), 255);
    assert_eq!(quantize(f32::NAN, s, QuantSpec::INT8), 0);
    assert_eq!(quantize(1.0, 0.0, QuantSpec::INT8), 0);
    assert_eq!(dequantize(-7, 0.5), -3.5);
    // threshold 2.54 -> scale 0.02; 1.01 / 0.02 = 50.5 -> 50 (even) -> 1.0.
    let s = scale_from_threshold(2.54, QuantSpec::INT8);
    assert!((fake_quant(1.03, s, QuantSpec::INT8) - 1.04).abs() < 1e-6);
    assert!((fake_quant(9.0, s, QuantSpec::INT8) - 2.54).abs() < 1e-6);
}

// ---- algorithm names ----

#[test]
fn algo_names_parse_and_print() {
    assert_eq!("abs_max".parse::<CalibAlgo>().unwrap(), CalibAlgo::AbsMax);
    assert_eq!("avg".parse::<CalibAlgo>().unwrap(), CalibAlgo::Avg);
    assert_eq!("kl".parse::<CalibAlgo>().unwrap(), CalibAlgo::Kl);
    assert_eq!("mse".parse::<CalibAlgo>().unwrap(), CalibAlgo::Mse);
    assert_eq!("hist".parse::<CalibAlgo>().unwrap(), CalibAlgo::Hist { percent: DEFAULT_HIST_PERCENT });
    assert_eq!("hist:0.999".parse::<CalibAlgo>().unwrap(), CalibAlgo::Hist { percent: 0.999 });
    for bad in ["", "KL", "max", "hist:", "hist:1.5", "hist:0", "hist:x"] {
        assert!(matches!(bad.parse::<CalibAlgo>(), Err(QuantError::Setting { .. })), "{bad}");
    }
    for a in [CalibAlgo::AbsMax, CalibAlgo::Avg, CalibAlgo::Kl, CalibAlgo::Mse, CalibAlgo::Hist { percent: 0.99 }] {
        assert_eq!(a.to_string().parse::<CalibAlgo>().unwrap(), a);
        let o = a.observer(&CalibOptions::default()).unwrap();
        assert_eq!(o.name(), a.name());
    }
    assert_eq!(CalibAlgo::Hist { percent: DEFAULT_HIST_PERCENT }.to_string(), "hist");
}

#[test]
fn bad_options_are_setting_errors() {
    assert!(CalibAlgo::Kl.observer(&opts(1, true, 1)).is_err());
    assert!(CalibAlgo::Kl.observer(&opts(64, true, 65)).is_err());
    assert!(CalibAlgo::Mse.observer(&opts(64, true, 0)).is_err());
    assert!(CalibAlgo::Hist { percent: 1.5 }.observer(&CalibOptions::default()).is_err());
}

// ---- hand-computed values ----

#[test]
fn abs_max_hand() {
    let mut o = AbsMaxObserver::new();
    assert_eq!(o.threshold(QuantSpec::INT8), None);
    run(&mut o, &[&[1.0, -3.0, 2.0], &[0.5, f32::NEG_INFINITY, f32::NAN], &[]]);
    assert_eq!(o.threshold(QuantSpec::INT8), Some(3.0));
    assert_eq!(o.threshold(QuantSpec::UINT8), Some(3.0));
}

#[test]
fn avg_hand() {
    let mut o = AvgObserver::new();
    assert_eq!(o.threshold(QuantSpec::INT8), None);
    run(&mut o, &[&[1.0, -3.0, 2.0], &[], &[f32::NAN], &[0.5, -1.0]]);
    assert_eq!(o.threshold(QuantSpec::INT8), Some(2.0));
}

#[test]
fn channel_abs_max_hand() {
    let w = ndarray::arr2(&[[1.0f32, -3.0, 2.0], [0.5, 6.0, f32::NAN]]).into_dyn();
    assert_eq!(channel_abs_max(w.view(), 0).unwrap(), vec![3.0, 6.0]);
    assert_eq!(channel_abs_max(w.view(), 1).unwrap(), vec![1.0, 6.0, 2.0]);
    assert!(matches!(channel_abs_max(w.view(), 2), Err(QuantError::Setting { .. })));
}

#[test]
fn hist_hand() {
    // |x| = 1..=100 over 100 bins of width 1: bin k holds k (100 joins 99). The median's
    // cumulative count (50) is reached at bin 50, whose upper edge is 51.
    let data: Vec<f32> = (1..=100).map(|k| if k % 2 == 0 { k as f32 } else { -(k as f32) }).collect();
    let mut o = HistObserver::new(0.5, &opts(100, true, 1)).unwrap();
    o.observe(&data);
    assert!(o.needs_second_pass());
    assert_eq!(o.threshold(QuantSpec::INT8), None);
    o.begin_second_pass();
    assert!(!o.needs_second_pass());
    o.observe(&data[..30]);
    o.observe(&data[30..]);
    assert_eq!(o.threshold(QuantSpec::INT8), Some(51.0));
    // The 100th percentile is the max, not past it.
    let mut o = HistObserver::new(1.0, &opts(100, true, 1)).unwrap();
    run(&mut o, &[&data]);
    assert_eq!(o.threshold(QuantSpec::INT8), Some(100.0));
}

#[test]
fn kl_hand() {
    // 8 bins of width 1 with counts [3, 1, 1, 0, 0, 0, 0, 1]; 2 levels (2-bit signed: n = 1).
    // Without the smoothing of Q (which moves these by about 1e-4):
    //   i = 2: P = [3, 3], Q = [3, 1]: KL = ln(4/3) / 2 = 0.1438
    //   i = 3: P = [3, 1, 2], Q = [3, 1, 1]: KL = (2/3) ln(5/6) + (1/3) ln(5/3) = 0.0487
    //   i = 4: P = [3, 1, 1, 1], Q = [2, 2, 0.5, 0.5]: KL = 0.1359 (likewise i = 5 with a 0 bin)
    //   i = 6, 7: the tail lands in a group without count: Q is only the smoothing there, large KL
    //   i = 8: P = H, Q = [5/3, 5/3, 5/3, 0, 0, 0, 0, 1]: KL = ln(1.8) / 2 + ln(0.6) / 3 = 0.1236
    // i = 3 wins: threshold 3.5.
    let counts = [3u64, 1, 1, 0, 0, 0, 0, 1];
    assert_eq!(kl_best_bins(&counts, 2, 2), Some(3));
    for (i, kl) in [(2, 0.143841), (3, 0.048727), (4, 0.135941), (5, 0.135941), (8, 0.123618)] {
        assert!((naive_kl(&counts, i, 2) - kl).abs() < 1e-3, "i = {i}: {} vs {kl}", naive_kl(&counts, i, 2));
    }
    assert!(naive_kl(&counts, 6, 2) > 1.0 && naive_kl(&counts, 7, 2) > 1.0);
    let mut o = KlObserver::new(&opts(8, true, 2)).unwrap();
    run(&mut o, &[&[0.5, -0.5, 0.5], &[1.5, -2.5, 8.0]]);
    assert_eq!(o.threshold(QuantSpec::new(2, false).unwrap()), Some(3.5));
    // Starting past 3 leaves only i = 8, capped at the max.
    let mut o = KlObserver::new(&opts(8, true, 4)).unwrap();
    run(&mut o, &[&[0.5, -0.5, 0.5], &[1.5, -2.5, 8.0]]);
    assert_eq!(o.threshold(QuantSpec::new(2, false).unwrap()), Some(8.0));
    // Fewer bins than levels: the max.
    assert_eq!(o.threshold(QuantSpec::INT8), Some(8.0));
}

#[test]
fn mse_hand() {
    // Every |x| is 1: clipping at 1.0 is exact, every smaller clip loses.
    let mut o = MseObserver::new(&CalibOptions::default()).unwrap();
    run(&mut o, &[&[1.0, -1.0, 1.0], &[-1.0]]);
    assert_eq!(o.threshold(QuantSpec::INT8), Some(1.0));
    assert_eq!(o.estimated_mse(1.0, QuantSpec::INT8), Some(0.0));
    // 0.5 clipped at 0.3 -> error 0.2 for two of four values.
    let mut o = MseObserver::new(&CalibOptions::default()).unwrap();
    run(&mut o, &[&[0.5, 1.0, -1.0, -0.5]]);
    let e = o.estimated_mse(0.3, QuantSpec::INT8).unwrap();
    let exact = exact_mse(&[0.5, 1.0, -1.0, -0.5], 0.3, QuantSpec::INT8);
    assert!((e - exact).abs() < 1e-9, "{e} vs {exact}");
}

#[test]
fn empty_and_zero_data() {
    for algo in [CalibAlgo::AbsMax, CalibAlgo::Avg, CalibAlgo::Kl, CalibAlgo::Mse, CalibAlgo::Hist { percent: 0.9 }] {
        for two_pass in [true, false] {
            let o = opts(2048, two_pass, 128);
            let mut obs = algo.observer(&o).unwrap();
            run(obs.as_mut(), &[&[], &[f32::NAN]]);
            assert_eq!(obs.threshold(QuantSpec::INT8), None, "{algo}");
            let mut obs = algo.observer(&o).unwrap();
            run(obs.as_mut(), &[&[0.0, -0.0], &[0.0]]);
            assert_eq!(obs.threshold(QuantSpec::INT8), Some(0.0), "{algo}");
            assert_eq!(obs.threshold(QuantSpec::UINT8), Some(0.0), "{algo}");
        }
    }
}

#[test]
fn one_pass_rebins_without_losing_counts() {
    // Zeros first, then a small range, then a much larger one.
    let mut h = histogram::AbsHistogram::new(&opts(16, false, 1), true);
    h.observe(&[0.0, 0.0]);
    h.observe(&[0.5, 1.0, -0.25]);
    h.observe(&[7.0, -3.0]);
    assert_eq!(h.counts().iter().sum::<u64>(), 7);
    assert_eq!(h.max(), Some(7.0));
    assert_eq!(h.bin_width(), 0.5); // range 1 -> 8
    // Before the last batch (range 1, width 1/16): 0, 0 and 0.25 in bins 0..8, 0.5 and 1.0 in
    // bins 8..16; merged by 8 into bins 0 and 1. Then 3 -> bin 6, 7 -> bin 14.
    let c = h.counts();
    assert_eq!((c[0], c[1], c[6], c[14]), (3, 2, 1, 1));
    let (sums, squares) = h.moments().unwrap();
    assert!((sums.iter().sum::<f64>() - 11.75).abs() < 1e-12);
    assert!((squares.iter().sum::<f64>() - (0.25 + 1.0 + 0.0625 + 49.0 + 9.0)).abs() < 1e-12);
}

// ---- reference implementations ----

/// KL(P||Q) of candidate `i` built explicitly, Q smoothed with [`KL_SMOOTHING`].
fn naive_kl(counts: &[u64], i: usize, levels: usize) -> f64 {
    let mut p: Vec<f64> = counts[..i].iter().map(|&c| c as f64).collect();
    p[i - 1] += counts[i..].iter().sum::<u64>() as f64;
    let merged = i / levels;
    let mut q = vec![0.0; i];
    for l in 0..levels {
        let a = l * merged;
        let b = if l + 1 == levels { i } else { a + merged };
        let s: f64 = counts[a..b].iter().map(|&c| c as f64).sum();
        let nz = (a..b).filter(|&k| p[k] > 0.0).count();
        for k in a..b {
            if p[k] > 0.0 {
                q[k] = s / nz as f64;
            }
        }
    }
    let (ps, qs): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let q: Vec<f64> = if qs > 0.0 {
        q.iter().map(|&v| (1.0 - KL_SMOOTHING) * v / qs + KL_SMOOTHING / i as f64).collect()
    } else {
        vec![1.0 / i as f64; i]
    };
    let mut kl = 0.0;
    for k in 0..i {
        if p[k] > 0.0 {
            kl += p[k] / ps * ((p[k] / ps) / q[k]).ln();
        }
    }
    kl
}

fn exact_mse(data: &[f32], threshold: f32, spec: QuantSpec) -> f64 {
    let n = f64::from(spec.max_level());
    let step = f64::from(threshold) / n;
    data.iter()
        .map(|&x| {
            // In f64 (`fake_quant` is f32 and may round an exact tie the other way).
            let a = f64::from(x.abs());
            let v = (a / step).round_ties_even().min(n) * step;
            (a - v).powi(2)
        })
        .sum::<f64>()
        / data.len() as f64
}

/// The brute-force grid search on raw data: (threshold, mse).
fn brute_force_mse(data: &[f32], spec: QuantSpec) -> (f32, f64) {
    let max = data.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let mut best = (max, f64::INFINITY);
    for k in 0..36 {
        let t = (((30 + 2 * k) as f64 / 100.0 * f64::from(max)) as f32).min(max);
        let e = exact_mse(data, t, spec);
        if e < best.1 {
            best = (t, e);
        }
    }
    best
}

/// Deterministic samples of a distribution (splitmix64 + Box-Muller).
#[derive(Debug, Clone, Copy)]
enum Dist {
    Gaussian,
    Laplacian,
    Uniform,
    GaussianWithOutliers,
}

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gaussian(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

fn sample(dist: Dist, n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut r = Rng(seed);
    let mut v: Vec<f32> = (0..n)
        .map(|_| {
            let x = match dist {
                Dist::Gaussian | Dist::GaussianWithOutliers => r.gaussian(),
                Dist::Laplacian => {
                    let u = r.unit() - 0.5;
                    -u.signum() * (1.0 - 2.0 * u.abs()).ln()
                }
                Dist::Uniform => 2.0 * r.unit() - 1.0,
            };
            (x as f32) * scale
        })
        .collect();
    if let Dist::GaussianWithOutliers = dist {
        // A few: one in 10,000 values (at least 2). At a much larger mass (0.1% at 80 sigma),
        // keeping the outliers can legitimately cost less KL than clipping them with 256 levels.
        for k in 0..(n / 10_000).max(2) {
            let i = (r.next_u64() % n as u64) as usize;
            v[i] = scale * if k % 2 == 0 { 100.0 } else { -80.0 };
        }
    }
    v
}

fn dist_strategy() -> impl Strategy<Value = Dist> {
    prop_oneof![Just(Dist::Gaussian), Just(Dist::Laplacian), Just(Dist::Uniform), Just(Dist::GaussianWithOutliers)]
}

/// Split `data` at the given fractions.
fn split<'a>(data: &'a [f32], cuts: &[f64]) -> Vec<&'a [f32]> {
    let mut idx: Vec<usize> = cuts.iter().map(|c| ((c * data.len() as f64) as usize).min(data.len())).collect();
    idx.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for i in idx {
        out.push(&data[start..i]);
        start = i;
    }
    out.push(&data[start..]);
    out
}

fn threshold_of(algo: CalibAlgo, o: &CalibOptions, batches: &[&[f32]], spec: QuantSpec) -> f32 {
    let mut obs = algo.observer(o).unwrap();
    run(obs.as_mut(), batches);
    obs.threshold(spec).unwrap()
}

fn abs_max_of(data: &[f32]) -> f32 {
    data.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold(
        dist in dist_strategy(),
        n in 1usize..4000,
        seed in any::<u64>(),
        scale in prop_oneof![Just(1e-3f32), Just(1.0f32), Just(300.0f32)],
        cuts_a in proptest::collection::vec(0.0f64..1.0, 0..6),
        cuts_b in proptest::collection::vec(0.0f64..1.0, 0..6),
        unsigned in any::<bool>(),
    ) {
        let data = sample(dist, n, seed, scale);
        let max = abs_max_of(&data);
        let (a, b) = (split(&data, &cuts_a), split(&data, &cuts_b));
        let spec = if unsigned { QuantSpec::UINT8 } else { QuantSpec::INT8 };
        let o = CalibOptions::default();
        let algos = [CalibAlgo::AbsMax, CalibAlgo::Avg, CalibAlgo::Kl, CalibAlgo::Mse, CalibAlgo::Hist { percent: 0.999 }];
        for algo in algos {
            let t = threshold_of(algo, &o, &a, spec);
            prop_assert!(t >= 0.0 && t <= max, "{algo}: {t} not in [0, {max}]");
            // Two passes: independent of the batching (avg depends on it by definition).
            if algo != CalibAlgo::Avg {
                prop_assert_eq!(t, threshold_of(algo, &o, &b, spec), "{} depends on the batching", algo);
            }
            // One pass still gives a threshold in range.
            let t1 = threshold_of(algo, &CalibOptions { two_pass: false, ..o.clone() }, &a, spec);
            prop_assert!(t1 >= 0.0 && t1 <= max, "{algo} one pass: {t1} not in [0, {max}]");
        }
        prop_assert_eq!(threshold_of(CalibAlgo::AbsMax, &o, &a, spec), max);
        let maxima: Vec<f64> = a.iter().filter(|b| !b.is_empty()).map(|b| f64::from(abs_max_of(b))).collect();
        let avg = (maxima.iter().sum::<f64>() / maxima.len() as f64) as f32;
        let t = threshold_of(CalibAlgo::Avg, &o, &a, spec);
        prop_assert!((t - avg).abs() <= 1e-6 * avg, "avg {t} vs {avg}");
    }

    #[test]
    fn hist_is_the_sorted_percentile_within_one_bin(
        dist in dist_strategy(),
        n in 1usize..5000,
        seed in any::<u64>(),
        percent in prop_oneof![Just(0.5f32), Just(0.9f32), Just(0.99f32), Just(0.9999f32), 0.01f32..1.0],
        bins in prop_oneof![Just(2048usize), 16usize..300],
        cuts in proptest::collection::vec(0.0f64..1.0, 0..6),
        two_pass in any::<bool>(),
    ) {
        let data = sample(dist, n, seed, 2.0);
        let mut sorted: Vec<f32> = data.iter().map(|x| x.abs()).collect();
        sorted.sort_by(f32::total_cmp);
        let rank = ((f64::from(percent) * n as f64).ceil() as usize).clamp(1, n);
        let exact = sorted[rank - 1];
        let max = sorted[n - 1];
        // One pass may end with a range up to twice max |x|.
        let width = if two_pass { max / bins as f32 } else { 2.0 * max / bins as f32 };
        let t = threshold_of(CalibAlgo::Hist { percent }, &CalibOptions { bins, two_pass, kl_start_bin: 1 }, &split(&data, &cuts), QuantSpec::INT8);
        let tol = width * 1.001 + max * 1e-6;
        prop_assert!(t >= exact - tol && t <= exact + tol, "hist {t} vs sorted percentile {exact} (bin {width})");
    }

    #[test]
    fn mse_matches_a_brute_force_search_on_raw_data(
        dist in dist_strategy(),
        n in 1usize..3000,
        seed in any::<u64>(),
        cuts in proptest::collection::vec(0.0f64..1.0, 0..6),
        unsigned in any::<bool>(),
        bits in prop_oneof![Just(8u32), Just(4u32)],
    ) {
        let data = sample(dist, n, seed, 1.0);
        // Unsigned quantization is for non-negative tensors.
        let data: Vec<f32> = if unsigned { data.iter().map(|x| x.abs()).collect() } else { data };
        let spec = QuantSpec::new(bits, unsigned).unwrap();
        let max = abs_max_of(&data);
        let (bt, be) = brute_force_mse(&data, spec);
        let mut obs = MseObserver::new(&CalibOptions::default()).unwrap();
        run(&mut obs, &split(&data, &cuts));
        let t = obs.threshold(spec).unwrap();
        let e = exact_mse(&data, t, spec);
        prop_assert!((t - bt).abs() <= 0.02 * max * 1.0001, "mse clip {t} vs brute force {bt} (max {max}; mse {e} vs {be})");
        // The histogram estimate of the error is close to the exact one.
        let est = obs.estimated_mse(t, spec).unwrap();
        prop_assert!((est - e).abs() <= 0.05 * e + 1e-12, "estimated mse {est} vs exact {e}");
    }

    #[test]
    fn kl_prefix_sums_match_the_naive_sweep(
        counts in proptest::collection::vec(prop_oneof![Just(0u64), 0u64..5, 0u64..100_000], 8..300),
        levels in 2usize..20,
        start in 1usize..40,
    ) {
        let fast = kl_best_bins(&counts, start, levels);
        let candidates: Vec<(usize, f64)> = (start.max(levels)..=counts.len())
            .map(|i| (i, naive_kl(&counts, i, levels)))
            .collect();
        match fast {
            None => prop_assert!(candidates.is_empty() || counts.iter().all(|&c| c == 0)),
            Some(i) => {
                let best = candidates.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
                let got = naive_kl(&counts, i, levels);
                prop_assert!(got <= best + 1e-9 * (1.0 + best.abs()), "picked {i} with KL {got}, best {best}");
            }
        }
    }

    #[test]
    fn kl_clips_outliers(seed in any::<u64>(), n in 20_000usize..40_000, sigma in prop_oneof![Just(0.01f32), Just(1.0f32), Just(50.0f32)]) {
        // A gaussian with a few values 100 sigma away.
        let data = sample(Dist::GaussianWithOutliers, n, seed, sigma);
        let inlier_max = data.iter().filter(|x| x.abs() < 10.0 * sigma).fold(0.0f32, |m, x| m.max(x.abs()));
        for spec in [QuantSpec::INT8, QuantSpec::UINT8] {
            let t = threshold_of(CalibAlgo::Kl, &CalibOptions::default(), &[&data], spec);
            prop_assert!(t <= 0.2 * 100.0 * sigma, "KL threshold {t} does not clip the outliers at {}", 100.0 * sigma);
            prop_assert!(t >= 0.5 * inlier_max, "KL threshold {t} clips the gaussian (max {inlier_max})");
        }
        // Without outliers, KL clips the tail but keeps most of the mass.
        let data = sample(Dist::Gaussian, n, seed, sigma);
        let t = threshold_of(CalibAlgo::Kl, &CalibOptions::default(), &[&data], QuantSpec::INT8);
        prop_assert!(t >= 2.0 * sigma && t <= abs_max_of(&data), "KL threshold {t} for sigma {sigma}");
    }
}
