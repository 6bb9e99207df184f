//! Fast depthwise convolution against the reference Conv (group = C) plus its fused epilogue:
//! every kernel/stride, every padding combination, awkward sizes (1, 2, 3, primes), bias,
//! residual, each activation, 1 and 2 threads; and every validation error.

use lithe_ir::Tensor;
use lithe_ir::op::{Activation, AutoPad, ConvAttrs, Epilogue};
use lithe_kernels::KernelError;
use lithe_kernels::fast::{
    DwPads, DwParams, FastActivation, depthwise_conv2d_nchw, f32_dwconv_3x3s1, f32_dwconv_3x3s2, f32_dwconv_5x5s1,
    f32_dwconv_5x5s2, supports,
};
use lithe_kernels::gemm::conformance::{all_activations, seeded_values as values};
use lithe_kernels::reference::conv::conv;
use lithe_kernels::reference::epilogue::apply_epilogue;
use proptest::prelude::*;

/// One test case.
#[derive(Clone, Debug)]
struct Case {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    params: DwParams,
    bias: bool,
    residual: bool,
    act: Activation,
    /// PRelu: one slope per channel (else one shared).
    per_channel_slope: bool,
    threads: usize,
    seed: u64,
}

fn fits(c: &Case) -> bool {
    c.params.output_size(c.h, c.w).is_ok()
}

/// Run the fast kernel and the reference on `case`; assert they agree within a tolerance
/// relative to the sum of |x * w| terms of each output.
fn check(case: &Case) {
    let Case { n, c, h, w, params, .. } = *case;
    let k = params.kernel;
    let (oh, ow) = params.output_size(h, w).expect("case fits");
    let x = values(n * c * h * w, case.seed);
    let wt = values(c * k * k, case.seed ^ 1);
    let bias = case.bias.then(|| values(c, case.seed ^ 2));
    let residual = case.residual.then(|| values(n * c * oh * ow, case.seed ^ 3));
    let slope: Vec<f32> = if case.per_channel_slope { values(c, case.seed ^ 4) } else { vec![0.3] };
    let fast_act = FastActivation::from_ir(&case.act, Some(&slope)).unwrap();
    let mut got = vec![f32::NAN; n * c * oh * ow];
    depthwise_conv2d_nchw(
        &x,
        n,
        c,
        h,
        w,
        &wt,
        bias.as_deref(),
        &params,
        residual.as_deref(),
        &fast_act,
        &mut got,
        case.threads,
    )
    .unwrap();

    let p = params.pads;
    let attrs = ConvAttrs {
        kernel_shape: Some(vec![k, k]),
        strides: vec![params.stride; 2],
        dilations: vec![],
        pads: vec![p.top, p.left, p.bottom, p.right],
        auto_pad: AutoPad::NotSet,
        group: c,
        epilogue: Epilogue { residual: case.residual, activation: case.act },
    };
    let t = |shape: &[usize], v: Vec<f32>| Tensor::from_vec(shape, v).unwrap();
    let xt = t(&[n, c, h, w], x.clone());
    let wt_t = t(&[c, 1, k, k], wt.clone());
    let bt = bias.clone().map(|b| t(&[c], b));
    let y = conv(&attrs, &xt, &wt_t, bt.as_ref()).unwrap();
    let rt = residual.clone().map(|r| t(&[n, c, oh, ow], r));
    let st = if case.per_channel_slope { t(&[c, 1, 1], slope.clone()) } else { t(&[1], slope.clone()) };
    let slope_arg = matches!(case.act, Activation::PRelu).then_some(&st);
    let want = apply_epilogue(&attrs.epilogue, y, rt.as_ref(), slope_arg).unwrap().to_f32_vec();

    // Magnitude of each output's terms: conv(|x|, |w|) + |b| + |residual|.
    let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
    let mag_attrs = ConvAttrs { epilogue: Epilogue::default(), ..attrs.clone() };
    let mag = conv(
        &mag_attrs,
        &t(&[n, c, h, w], abs(&x)),
        &t(&[c, 1, k, k], abs(&wt)),
        bias.as_deref().map(|b| t(&[c], abs(b))).as_ref(),
    )
    .unwrap()
    .to_f32_vec();
    assert_eq!(got.len(), want.len());
    for i in 0..got.len() {
        let m = mag[i] + residual.as_ref().map_or(0.0, |r| r[i].abs());
        let tol = 2e-6 * m + 2e-6;
        assert!(
            (got[i] - want[i]).abs() <= tol,
            "{case:?}: output {i} (of {oh}x{ow} planes): got {}, want {} (tol {tol})",
            got[i],
            want[i]
        );
    }
}

fn params(k: usize, s: usize, pads: [usize; 4]) -> DwParams {
    DwParams { kernel: k, stride: s, pads: DwPads { top: pads[0], left: pads[1], bottom: pads[2], right: pads[3] } }
}

/// Every padding combination of every kernel at a few awkward sizes (including 1x1 and 2x3).
#[test]
fn all_pads_awkward_sizes() {
    for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
        let mut seed = 0;
        for pads in (0..k * k * k * k).map(|i| [i % k, i / k % k, i / (k * k) % k, i / (k * k * k)]) {
            for (h, w) in [(1, 1), (2, 3), (7, 7), (5, 13), (17, 6)] {
                seed += 1;
                let case = Case {
                    n: 1,
                    c: 2,
                    h,
                    w,
                    params: params(k, s, pads),
                    bias: seed % 2 == 0,
                    residual: seed % 3 == 0,
                    act: all_activations()[seed as usize % all_activations().len()],
                    per_channel_slope: seed % 4 < 2,
                    threads: 1,
                    seed,
                };
                if fits(&case) {
                    check(&case);
                }
            }
        }
    }
}

/// Wider rows than the proptest, so the vectorized interior runs several full vectors.
#[test]
fn wide_rows_every_activation() {
    for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
        for (i, act) in all_activations().iter().enumerate() {
            let p = (i % k, (i + 1) % k, (i + 2) % k, (i + 3) % k);
            check(&Case {
                n: 2,
                c: 3,
                h: 9,
                w: 67 + i,
                params: params(k, s, [p.0, p.1, p.2, p.3]),
                bias: true,
                residual: i % 2 == 0,
                act: *act,
                per_channel_slope: true,
                threads: 1 + i % 2,
                seed: 100 + i as u64,
            });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn matches_reference(
        n in 1usize..=2,
        c in 1usize..=7,
        h in 1usize..=20,
        w in 1usize..=23,
        ks in 0usize..4,
        pads in proptest::array::uniform4(0usize..5),
        bias in any::<bool>(),
        residual in any::<bool>(),
        act in 0usize..all_activations().len(),
        per_channel_slope in any::<bool>(),
        threads in 1usize..=2,
        seed in any::<u64>(),
    ) {
        let (k, s) = [(3, 1), (3, 2), (5, 1), (5, 2)][ks];
        let case = Case {
            n, c, h, w,
            params: params(k, s, pads.map(|p| p % k)),
            bias, residual,
            act: all_activations()[act],
            per_channel_slope,
            threads,
            seed,
        };
        prop_assume!(fits(&case));
        check(&case);
    }
}

/// The per-plane kernels agree with the driver on one channel.
#[test]
fn plane_kernels_match_driver() {
    type Plane = fn(
        &[f32],
        usize,
        usize,
        &[f32],
        f32,
        DwPads,
        Option<&[f32]>,
        &FastActivation<'_>,
        &mut [f32],
    ) -> Result<(), KernelError>;
    let k3: [(Plane, usize, usize); 4] = [
        (|x, h, w, k, b, p, r, a, o| f32_dwconv_3x3s1(x, h, w, k.try_into().unwrap(), b, p, r, a, o), 3, 1),
        (|x, h, w, k, b, p, r, a, o| f32_dwconv_3x3s2(x, h, w, k.try_into().unwrap(), b, p, r, a, o), 3, 2),
        (|x, h, w, k, b, p, r, a, o| f32_dwconv_5x5s1(x, h, w, k.try_into().unwrap(), b, p, r, a, o), 5, 1),
        (|x, h, w, k, b, p, r, a, o| f32_dwconv_5x5s2(x, h, w, k.try_into().unwrap(), b, p, r, a, o), 5, 2),
    ];
    for (f, k, s) in k3 {
        for (h, w) in [(1, 1), (3, 2), (11, 29)] {
            let pr = params(k, s, [k - 1, k / 2, 1, k - 1]);
            let Ok((oh, ow)) = pr.output_size(h, w) else { continue };
            let x = values(h * w, 7);
            let wt = values(k * k, 8);
            let res = values(oh * ow, 9);
            let act = FastActivation::PRelu { slope: &[0.25] };
            let mut a = vec![0.0; oh * ow];
            let mut b = vec![1.0; oh * ow];
            f(&x, h, w, &wt, 0.5, pr.pads, Some(&res), &act, &mut a).unwrap();
            depthwise_conv2d_nchw(&x, 1, 1, h, w, &wt, Some(&[0.5]), &pr, Some(&res), &act, &mut b, 1).unwrap();
            assert_eq!(a, b, "k{k} s{s} {h}x{w}");
        }
    }
}

fn run(
    x_len: usize,
    w_len: usize,
    bias_len: Option<usize>,
    res_len: Option<usize>,
    out_len: usize,
    p: DwParams,
    slope: &[f32],
) -> Result<(), KernelError> {
    let (n, c, h, w) = (1, 3, 6, 6);
    let x = vec![1.0; x_len];
    let wt = vec![1.0; w_len];
    let bias = bias_len.map(|l| vec![0.0; l]);
    let res = res_len.map(|l| vec![0.0; l]);
    let mut out = vec![0.0; out_len];
    let act = FastActivation::PRelu { slope };
    depthwise_conv2d_nchw(&x, n, c, h, w, &wt, bias.as_deref(), &p, res.as_deref(), &act, &mut out, 2)
}

#[test]
fn errors_are_typed_never_panics() {
    let ok = params(3, 1, [1, 1, 1, 1]);
    let good = (108, 27, Some(3), Some(108), 108);
    let r = |x, w, b, res, o, p, s: &[f32]| run(x, w, b, res, o, p, s);
    assert_eq!(r(good.0, good.1, good.2, good.3, good.4, ok, &[0.1]), Ok(()));
    assert_eq!(r(good.0, good.1, good.2, good.3, good.4, ok, &[0.1, 0.2, 0.3]), Ok(()));
    let invalid = |e: Result<(), KernelError>| matches!(e, Err(KernelError::Invalid { .. }));
    let unsupported = |e: Result<(), KernelError>| matches!(e, Err(KernelError::Unsupported { .. }));
    assert!(invalid(r(107, 27, Some(3), Some(108), 108, ok, &[0.1])), "short input");
    assert!(invalid(r(108, 26, Some(3), Some(108), 108, ok, &[0.1])), "short weights");
    assert!(invalid(r(108, 27, Some(2), Some(108), 108, ok, &[0.1])), "short bias");
    assert!(invalid(r(108, 27, Some(3), Some(109), 108, ok, &[0.1])), "long residual");
    assert!(invalid(r(108, 27, Some(3), None, 107, ok, &[0.1])), "short output");
    assert!(invalid(r(108, 27, None, None, 108, ok, &[0.1, 0.2])), "slope of 2 for 3 channels");
    assert!(unsupported(r(108, 27, None, None, 108, params(3, 3, [0; 4]), &[0.1])), "stride 3");
    assert!(unsupported(r(108, 75, None, None, 108, params(7, 1, [0; 4]), &[0.1])), "7x7");
    assert!(unsupported(r(108, 27, None, None, 108, params(3, 1, [0, 3, 0, 0]), &[0.1])), "pad 3 on 3x3");
    // A 5x5 window over a 6x6 input with no padding gives 2x2; with a 1x1 input it cannot fit.
    let mut out = vec![0.0; 1];
    let e = depthwise_conv2d_nchw(
        &[1.0],
        1,
        1,
        1,
        1,
        &[0.0; 25],
        None,
        &params(5, 1, [0; 4]),
        None,
        &FastActivation::None,
        &mut out,
        1,
    );
    assert!(invalid(e), "window larger than the padded input");
    // Overflowing sizes are errors, not panics.
    let e = depthwise_conv2d_nchw(&[], usize::MAX, 2, 1, 1, &[], None, &ok, None, &FastActivation::None, &mut [], 1);
    assert!(invalid(e), "overflow");
    let e =
        depthwise_conv2d_nchw(&[], 1, 1, usize::MAX, 1, &[0.0; 9], None, &ok, None, &FastActivation::None, &mut [], 1);
    assert!(invalid(e), "padded height overflows");
    // Per-plane kernel: slope must be one value; lengths checked.
    let mut o = vec![0.0; 36];
    let x = vec![0.0; 36];
    let two = FastActivation::PRelu { slope: &[0.1, 0.2] };
    assert!(invalid(f32_dwconv_3x3s1(&x, 6, 6, &[0.0; 9], 0.0, ok.pads, None, &two, &mut o)));
    assert!(invalid(f32_dwconv_3x3s1(&x[1..], 6, 6, &[0.0; 9], 0.0, ok.pads, None, &FastActivation::None, &mut o)));
    assert!(invalid(f32_dwconv_3x3s1(&x, 6, 6, &[0.0; 9], 0.0, ok.pads, Some(&x[1..]), &FastActivation::None, &mut o)));
    assert!(unsupported(f32_dwconv_3x3s2(
        &x,
        6,
        6,
        &[0.0; 9],
        0.0,
        params(3, 2, [3, 0, 0, 0]).pads,
        None,
        &FastActivation::None,
        &mut o
    )));
    // Empty batch: nothing to do.
    assert_eq!(
        depthwise_conv2d_nchw(&[], 0, 3, 4, 4, &[0.0; 27], None, &ok, None, &FastActivation::None, &mut [], 2),
        Ok(())
    );
}

#[test]
fn supports_matches_the_contract() {
    assert!(supports([3, 3], [1, 1], [1, 1], [1, 1, 1, 1]));
    assert!(supports([5, 5], [2, 2], [1, 1], [4, 0, 2, 4]));
    assert!(!supports([3, 5], [1, 1], [1, 1], [0; 4]));
    assert!(!supports([3, 3], [1, 2], [1, 1], [0; 4]));
    assert!(!supports([3, 3], [1, 1], [2, 2], [0; 4]));
    assert!(!supports([3, 3], [1, 1], [1, 1], [0, 0, 3, 0]));
    assert!(!supports([1, 1], [1, 1], [1, 1], [0; 4]));
    let attrs = ConvAttrs { pads: vec![1, 2, 0, 1], strides: vec![2, 2], group: 4, ..ConvAttrs::default() };
    let win = attrs.windows(&[10, 11], &[3, 3]).unwrap();
    assert_eq!(DwParams::from_windows(&win), Some(params(3, 2, [1, 2, 0, 1])));
    let attrs = ConvAttrs { dilations: vec![2, 2], ..attrs };
    assert_eq!(DwParams::from_windows(&attrs.windows(&[10, 11], &[3, 3]).unwrap()), None);
}
