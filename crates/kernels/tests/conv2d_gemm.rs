//! Conv and FullyConnected through the packed GEMM frame against the reference kernels, on
//! random shapes (odd sizes, groups, padding, strides, dilations) and every fused epilogue.

use lithe_ir::Tensor;
use lithe_ir::op::{Activation, AutoPad, ConvAttrs, Epilogue, FcAttrs, Op};
use lithe_kernels::conv2d_gemm::{Conv2dGemm, Conv2dShape, ConvUnfold, Im2colPanels, im2col_nchw};
use lithe_kernels::fully_connected_gemm::FullyConnectedGemm;
use lithe_kernels::gemm::conformance::{all_activations, seeded_values as values};
use lithe_kernels::gemm::{F32Gemm4x8Generic, F32GemmMicrokernel, PanelSource, Residual};
use lithe_kernels::reference;
use proptest::prelude::*;

static GENERIC: F32Gemm4x8Generic = F32Gemm4x8Generic;

fn kernel() -> &'static dyn F32GemmMicrokernel {
    &GENERIC
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(shape, values(shape.iter().product(), seed)).unwrap()
}

fn assert_close(got: &[f32], want: &[f32], scale: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * scale + 1e-6 * w.abs(), "{what}: element {i}: got {g}, want {w}");
    }
}

#[derive(Clone, Debug)]
struct ConvCase {
    batch: usize,
    groups: usize,
    cg: usize,
    mg: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pads: [usize; 4],
    bias: bool,
    residual: bool,
    activation: usize,
    seed: u64,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=2, 1usize..=3, 1usize..=5, 1usize..=9),
        ([1usize..=13, 1usize..=13], [1usize..=5, 1usize..=5], [1usize..=3, 1usize..=3], [1usize..=2, 1usize..=2]),
        ([0usize..=4, 0usize..=4, 0usize..=4, 0usize..=4], any::<bool>(), any::<bool>(), 0usize..9, any::<u64>()),
    )
        .prop_map(
            |((batch, groups, cg, mg), (hw, k, stride, dilation), (pads, bias, residual, activation, seed))| ConvCase {
                batch,
                groups,
                cg,
                mg,
                hw,
                k,
                stride,
                dilation,
                pads,
                bias,
                residual,
                activation,
                seed,
            },
        )
}

fn check_conv(c: &ConvCase) -> Result<(), TestCaseError> {
    let extent = |i: usize| c.hw[i] + c.pads[i] + c.pads[i + 2];
    let span = |i: usize| (c.k[i] - 1) * c.dilation[i] + 1;
    if (0..2).any(|i| extent(i) < span(i)) {
        return Ok(()); // no output position
    }
    let (c_in, c_out) = (c.groups * c.cg, c.groups * c.mg);
    let attrs = ConvAttrs {
        kernel_shape: None,
        strides: c.stride.to_vec(),
        dilations: c.dilation.to_vec(),
        pads: c.pads.to_vec(),
        auto_pad: AutoPad::NotSet,
        group: c.groups,
        epilogue: Epilogue { residual: c.residual, activation: all_activations()[c.activation] },
    };
    let x = tensor(&[c.batch, c_in, c.hw[0], c.hw[1]], c.seed);
    let w = tensor(&[c_out, c.cg, c.k[0], c.k[1]], c.seed ^ 1);
    let b = c.bias.then(|| tensor(&[c_out], c.seed ^ 2));
    let slope = matches!(attrs.epilogue.activation, Activation::PRelu).then(|| tensor(&[c_out, 1, 1], c.seed ^ 3));
    let plain = reference::conv::conv(&ConvAttrs { epilogue: Epilogue::default(), ..attrs.clone() }, &x, &w, None)?;
    let r = c.residual.then(|| tensor(plain.shape(), c.seed ^ 4));
    let want =
        reference::eval(&Op::Conv(attrs.clone()), &[Some(&x), Some(&w), b.as_ref(), r.as_ref(), slope.as_ref()], 1)?;
    let mut prepared = Conv2dGemm::prepare(kernel(), &attrs, &w, b.as_ref(), slope.as_ref())?;
    let x_data = x.to_f32_vec();
    let r_data = r.as_ref().map(Tensor::to_f32_vec);
    let scale = (c.cg * c.k[0] * c.k[1]) as f32 + 2.0;
    // Each way of unfolding the input, one scratch buffer reused across them.
    let mut scratch = Vec::new();
    for unfold in [ConvUnfold::Auto, ConvUnfold::Flat, ConvUnfold::Implicit] {
        prepared.set_unfold(unfold);
        let mut y = vec![f32::NAN; want[0].len()];
        let residual = r_data.as_deref().map_or(Residual::None, Residual::Separate);
        prepared.run(&x_data, x.shape(), residual, &mut y, &mut scratch, 1)?;
        assert_close(&y, &want[0].to_f32_vec(), scale, &format!("{unfold:?} {c:?}"));
        // Two threads, and the residual held in the output on entry (added in another order).
        let (mut y2, residual) = match &r_data {
            Some(r) => (r.clone(), Residual::InOutput),
            None => (vec![f32::NAN; y.len()], Residual::None),
        };
        prepared.run(&x_data, x.shape(), residual, &mut y2, &mut scratch, 2)?;
        assert_close(&y2, &y, scale, &format!("{unfold:?}: 2 threads, residual in the output"));
    }
    // Pointwise convs also run spatial-major; the others refuse it.
    let pointwise = c.k == [1, 1] && c.stride == [1, 1] && c.pads == [0; 4];
    match Conv2dGemm::prepare_spatial_major(kernel(), &attrs, &w, b.as_ref(), slope.as_ref()) {
        Err(e) => prop_assert!(!pointwise, "pointwise conv refused spatial-major: {e}"),
        Ok(sm) => {
            prop_assert!(pointwise, "spatial-major accepted a non-pointwise conv");
            for threads in [1, 2] {
                let mut y = vec![f32::NAN; want[0].len()];
                let residual = r_data.as_deref().map_or(Residual::None, Residual::Separate);
                sm.run(&x_data, x.shape(), residual, &mut y, &mut scratch, threads)?;
                assert_close(&y, &want[0].to_f32_vec(), scale, &format!("spatial-major, {threads} threads, {c:?}"));
                if let Some(r) = &r_data {
                    let mut y2 = r.clone();
                    sm.run(&x_data, x.shape(), Residual::InOutput, &mut y2, &mut scratch, threads)?;
                    assert_close(&y2, &y, scale, &format!("spatial-major, residual in the output, {c:?}"));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn conv_matches_the_reference(c in conv_case()) {
        check_conv(&c)?;
    }

    #[test]
    fn pointwise_conv_matches_the_reference_both_ways(c in conv_case(), hw in [1usize..=16, 1usize..=16], wide: bool) {
        // Pointwise geometry, with output channels past a 32-wide panel when `wide`.
        let mg = if wide { c.mg * 7 } else { c.mg };
        check_conv(&ConvCase { k: [1, 1], stride: [1, 1], pads: [0; 4], hw, mg, ..c })?;
    }

    #[test]
    fn fully_connected_matches_the_reference(
        rows in 1usize..=9, k in 1usize..=40, n in 1usize..=37, bias: bool, act in 0usize..9, seed: u64,
    ) {
        let attrs = FcAttrs { activation: all_activations()[act] };
        let x = tensor(&[rows, k], seed);
        let w = tensor(&[k, n], seed ^ 1);
        let b = bias.then(|| tensor(&[n], seed ^ 2));
        let slope = matches!(attrs.activation, Activation::PRelu).then(|| tensor(&[n], seed ^ 3));
        let want = reference::eval(&Op::FullyConnected(attrs), &[Some(&x), Some(&w), b.as_ref(), slope.as_ref()], 1)?;
        let prepared = FullyConnectedGemm::prepare(kernel(), &attrs, &w, b.as_ref(), slope.as_ref())?;
        let mut y = vec![f32::NAN; rows * n];
        let threads = 1 + (seed % 2) as usize;
        prepared.run(&x.to_f32_vec(), x.shape(), &mut y, threads)?;
        assert_close(&y, &want[0].to_f32_vec(), k as f32 + 2.0, &format!("fully connected, {threads} threads"));
    }
}

#[test]
fn pointwise_conv_reads_the_input_directly() {
    let attrs = ConvAttrs::default();
    let w = tensor(&[8, 5, 1, 1], 7);
    let prepared = Conv2dGemm::prepare(kernel(), &attrs, &w, None, None).unwrap();
    let shape = prepared.shape_for(&[1, 5, 6, 7]).unwrap();
    assert_eq!(prepared.scratch_len(&shape), 0);
    let x = tensor(&[1, 5, 6, 7], 8);
    let want = reference::conv::conv(&attrs, &x, &w, None).unwrap();
    let mut y = vec![0.0; 8 * 42];
    prepared.run(&x.to_f32_vec(), x.shape(), Residual::None, &mut y, &mut Vec::new(), 1).unwrap();
    assert_close(&y, &want.to_f32_vec(), 7.0, "pointwise");
}

#[test]
fn im2col_zero_fills_the_padding() {
    // One 2x2 channel, 2x2 kernel, pad 1 everywhere, stride 1: 3x3 outputs.
    let attrs = ConvAttrs { pads: vec![1, 1, 1, 1], ..ConvAttrs::default() };
    let w = tensor(&[1, 1, 2, 2], 1);
    let prepared = Conv2dGemm::prepare(kernel(), &attrs, &w, None, None).unwrap();
    let s = prepared.shape_for(&[1, 1, 2, 2]).unwrap();
    let mut cols = vec![f32::NAN; 4 * 9];
    im2col_nchw(&[1.0, 2.0, 3.0, 4.0], 1, &s, [2, 2], &mut cols);
    #[rustfmt::skip]
    let expected = [
        0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, // tap (0, 0)
        0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, // tap (0, 1)
        0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, // tap (1, 0)
        1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, // tap (1, 1)
    ];
    assert_eq!(cols, expected);
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let attrs = ConvAttrs::default();
    let w = tensor(&[2, 3, 3, 3], 1);
    let prepared = Conv2dGemm::prepare(kernel(), &attrs, &w, None, None).unwrap();
    let mut y = vec![0.0; 2 * 9];
    let mut scratch = Vec::new();
    assert!(prepared.run(&[0.0; 74], &[1, 3, 5, 5], Residual::None, &mut y, &mut scratch, 1).is_err());
    assert!(prepared.run(&[0.0; 75], &[1, 4, 5, 5], Residual::None, &mut y, &mut scratch, 1).is_err());
    assert!(prepared.run(&[0.0; 75], &[1, 3, 5, 5], Residual::Separate(&[0.0; 18]), &mut y, &mut scratch, 1).is_err());
    assert!(prepared.run(&[0.0; 75], &[1, 3, 5, 5], Residual::None, &mut y[..17], &mut scratch, 1).is_err());
    assert!(prepared.run(&[0.0; 75], &[1, 3, 5, 5], Residual::None, &mut y, &mut scratch, 1).is_ok());
    assert!(Conv2dGemm::prepare(kernel(), &ConvAttrs { group: 4, ..attrs }, &w, None, None).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Implicit im2col packs exactly what packing the materialized im2col matrix would, for
    /// any block (row and column offsets, partial panels).
    #[test]
    fn implicit_im2col_packs_like_im2col(
        c in 1usize..=4, h in 1usize..=12, w in 1usize..=12, k in 1usize..=3, stride in 1usize..=3,
        dilation in 1usize..=2, pads in proptest::array::uniform4(0usize..=2), nr in 1usize..=9,
        block in proptest::array::uniform4(0usize..1000), seed: u64,
    ) {
        let attrs = ConvAttrs {
            kernel_shape: None,
            strides: vec![stride, stride],
            dilations: vec![dilation, dilation],
            pads: pads.to_vec(),
            auto_pad: AutoPad::NotSet,
            group: 1,
            epilogue: Epilogue::default(),
        };
        let wins = attrs.windows(&[h, w], &[k, k]);
        prop_assume!(wins.is_ok());
        let wins = wins.unwrap();
        let shape = Conv2dShape {
            batch: 1,
            input_hw: [h, w],
            output_hw: [wins[0].output, wins[1].output],
            windows: [wins[0], wins[1]],
        };
        let x = values(c * h * w, seed);
        let (depth, n) = (c * k * k, shape.output_hw[0] * shape.output_hw[1]);
        prop_assume!(n > 0);
        let mut cols = vec![f32::NAN; depth * n];
        im2col_nchw(&x, c, &shape, [k, k], &mut cols);
        let d0 = block[0] % depth;
        let dd = 1 + block[1] % (depth - d0);
        let c0 = block[2] % n;
        let nn = 1 + block[3] % (n - c0);
        let panels = nn.div_ceil(nr);
        let mut got = vec![f32::NAN; panels * nr * dd];
        Im2colPanels::new(&x, c, &shape, [k, k])?.pack(d0, dd, c0, nn, nr, &mut got);
        for q in 0..panels {
            for p in 0..dd {
                for jj in 0..nr {
                    let j = q * nr + jj;
                    let want = if j < nn { cols[(d0 + p) * n + c0 + j] } else { 0.0 };
                    prop_assert_eq!(got[(q * dd + p) * nr + jj].to_bits(), want.to_bits(), "q {} p {} jj {}", q, p, jj);
                }
            }
        }
    }
}
