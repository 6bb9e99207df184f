//! Winograd F(2,3) / F(4,3) / F(6,3) 3x3 stride-1 convs against the reference conv, on random
//! shapes (tiny, odd, non-multiples of the tile), every padding 0..=2 and every fused epilogue.
//!
//! Tolerance: `|got - want| <= eps(tile) * S + 1e-6 * |want|` with `S = C_in * 9 + 2` the bound
//! on `Σ |x·w| + |bias| + |residual|` for values in [-1, 1). `eps` grows with the transforms'
//! magnitudes (entries of Bᵀ, G, Aᵀ reach 1, 4, 32 for F(6,3)): 1e-5 for F(2,3) (as im2col),
//! 5e-5 for F(4,3), 5e-4 for F(6,3) (a few thousand ulp of the worst-case sum).

use lithe_ir::Tensor;
use lithe_ir::op::{Activation, AutoPad, ConvAttrs, Epilogue, Op};
use lithe_kernels::KernelError;
use lithe_kernels::conv2d_winograd::{Conv2dWinograd, WinogradTile, choose_tile, tile_by_tiles_per_thread};
use lithe_kernels::gemm::conformance::{all_activations, seeded_values as values};
use lithe_kernels::gemm::{F32Gemm4x8Generic, F32GemmMicrokernel, Residual};
use lithe_kernels::reference;
use proptest::prelude::*;

static GENERIC: F32Gemm4x8Generic = F32Gemm4x8Generic;

fn kernel() -> &'static dyn F32GemmMicrokernel {
    &GENERIC
}

const TILES: [WinogradTile; 3] = [WinogradTile::F2x3, WinogradTile::F4x3, WinogradTile::F6x3];

fn eps(tile: WinogradTile) -> f32 {
    match tile {
        WinogradTile::F2x3 => 1e-5,
        WinogradTile::F4x3 => 5e-5,
        WinogradTile::F6x3 => 5e-4,
    }
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(shape, values(shape.iter().product(), seed)).unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol + 1e-6 * w.abs(), "{what}: element {i}: got {g}, want {w}");
    }
}

#[derive(Clone, Debug)]
struct Case {
    tile: usize,
    batch: usize,
    c_in: usize,
    c_out: usize,
    hw: [usize; 2],
    pads: [usize; 4],
    bias: bool,
    residual: bool,
    activation: usize,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (0usize..3, 1usize..=2, 1usize..=9, 1usize..=9),
        ([1usize..=20, 1usize..=20], [0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2]),
        (any::<bool>(), any::<bool>(), 0usize..9, any::<u64>()),
    )
        .prop_map(|((tile, batch, c_in, c_out), (hw, pads), (bias, residual, activation, seed))| Case {
            tile,
            batch,
            c_in,
            c_out,
            hw,
            pads,
            bias,
            residual,
            activation,
            seed,
        })
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    if (0..2).any(|i| c.hw[i] + c.pads[i] + c.pads[i + 2] < 3) {
        return Ok(()); // no output position
    }
    let tile = TILES[c.tile];
    let attrs = ConvAttrs {
        kernel_shape: None,
        strides: vec![1, 1],
        dilations: vec![1, 1],
        pads: c.pads.to_vec(),
        auto_pad: AutoPad::NotSet,
        group: 1,
        epilogue: Epilogue { residual: c.residual, activation: all_activations()[c.activation] },
    };
    let x = tensor(&[c.batch, c.c_in, c.hw[0], c.hw[1]], c.seed);
    let w = tensor(&[c.c_out, c.c_in, 3, 3], c.seed ^ 1);
    let b = c.bias.then(|| tensor(&[c.c_out], c.seed ^ 2));
    let slope = matches!(attrs.epilogue.activation, Activation::PRelu).then(|| tensor(&[c.c_out, 1, 1], c.seed ^ 3));
    let plain = reference::conv::conv(&ConvAttrs { epilogue: Epilogue::default(), ..attrs.clone() }, &x, &w, None)?;
    let r = c.residual.then(|| tensor(plain.shape(), c.seed ^ 4));
    let want =
        reference::eval(&Op::Conv(attrs.clone()), &[Some(&x), Some(&w), b.as_ref(), r.as_ref(), slope.as_ref()], 1)?;
    let prepared = Conv2dWinograd::prepare(kernel(), &attrs, &w, b.as_ref(), slope.as_ref(), tile)?;
    let mut y = vec![f32::NAN; want[0].len()];
    let mut scratch = Vec::new();
    let x_data = x.to_f32_vec();
    let r_data = r.as_ref().map(Tensor::to_f32_vec);
    let residual = r_data.as_deref().map_or(Residual::None, Residual::Separate);
    prepared.run(&x_data, x.shape(), residual, &mut y, &mut scratch, 1)?;
    let tol = eps(tile) * ((c.c_in * 9) as f32 + 2.0);
    assert_close(&y, &want[0].to_f32_vec(), tol, &format!("{c:?}"));
    let (mut y2, residual) = match &r_data {
        Some(r) => (r.clone(), Residual::InOutput),
        None => (vec![f32::NAN; y.len()], Residual::None),
    };
    prepared.run(&x_data, x.shape(), residual, &mut y2, &mut scratch, 2)?;
    assert_close(&y2, &y, tol, "2 threads, residual in the output");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn winograd_matches_the_reference(c in case()) {
        check(&c)?;
    }
}

#[test]
fn larger_channels_and_many_tile_blocks() {
    // Enough tiles for several blocks, with 64 input channels.
    for (i, tile) in TILES.into_iter().enumerate() {
        let c = Case {
            tile: i,
            batch: 1,
            c_in: 64,
            c_out: 16,
            hw: [57, 45],
            pads: [1, 1, 1, 1],
            bias: true,
            residual: true,
            activation: 1,
            seed: 11,
        };
        check(&c).unwrap_or_else(|e| panic!("{tile:?}: {e}"));
    }
}

#[test]
fn rejected_geometries_and_bad_lengths() {
    let w = tensor(&[4, 3, 3, 3], 1);
    let ok = ConvAttrs { pads: vec![1, 1, 1, 1], ..ConvAttrs::default() };
    let unsupported = |r: Result<Conv2dWinograd, KernelError>| matches!(r, Err(KernelError::Unsupported { .. }));
    for tile in TILES {
        let stride = ConvAttrs { strides: vec![2, 2], ..ok.clone() };
        assert!(unsupported(Conv2dWinograd::prepare(kernel(), &stride, &w, None, None, tile)));
        let dil = ConvAttrs { dilations: vec![1, 2], ..ok.clone() };
        assert!(unsupported(Conv2dWinograd::prepare(kernel(), &dil, &w, None, None, tile)));
        let w_grouped = tensor(&[4, 1, 3, 3], 2);
        let grouped = ConvAttrs { group: 3, ..ok.clone() };
        assert!(unsupported(Conv2dWinograd::prepare(kernel(), &grouped, &w_grouped, None, None, tile)));
        let w5 = tensor(&[4, 3, 5, 5], 3);
        assert!(unsupported(Conv2dWinograd::prepare(kernel(), &ok, &w5, None, None, tile)));
        let w1d = tensor(&[4, 3, 3], 3);
        assert!(unsupported(Conv2dWinograd::prepare(kernel(), &ok, &w1d, None, None, tile)));
        let prelu = ConvAttrs { epilogue: Epilogue { residual: false, activation: Activation::PRelu }, ..ok.clone() };
        assert!(Conv2dWinograd::prepare(kernel(), &prelu, &w, None, None, tile).is_err());

        let p = Conv2dWinograd::prepare(kernel(), &ok, &w, None, None, tile).unwrap();
        let x = values(3 * 5 * 5, 4);
        let mut s = Vec::new();
        let mut y = vec![0.0; 4 * 25];
        assert!(p.run(&x, &[1, 3, 5, 5], Residual::None, &mut y, &mut s, 1).is_ok());
        assert!(p.run(&x[1..], &[1, 3, 5, 5], Residual::None, &mut y, &mut s, 1).is_err());
        assert!(p.run(&x, &[1, 3, 5, 5], Residual::None, &mut y[1..], &mut s, 1).is_err());
        assert!(p.run(&x, &[1, 4, 5, 5], Residual::None, &mut y, &mut s, 1).is_err());
        assert!(p.run(&x, &[3, 5, 5], Residual::None, &mut y, &mut s, 1).is_err());
        assert!(p.run(&x, &[1, 3, 5, 5], Residual::InOutput, &mut y, &mut s, 1).is_err());
        let res = ConvAttrs { epilogue: Epilogue { residual: true, activation: Activation::None }, ..ok.clone() };
        let p = Conv2dWinograd::prepare(kernel(), &res, &w, None, None, tile).unwrap();
        assert!(p.run(&x, &[1, 3, 5, 5], Residual::Separate(&[0.0; 3]), &mut y, &mut s, 1).is_err());
        assert!(p.run(&x, &[1, 3, 5, 5], Residual::None, &mut y, &mut s, 1).is_err());
    }
}

#[test]
fn choose_tile_grows_with_the_output() {
    assert_eq!(tile_by_tiles_per_thread(56, 56, 64, 64, 1), Some(WinogradTile::F6x3));
    assert_eq!(tile_by_tiles_per_thread(14, 14, 64, 64, 1), Some(WinogradTile::F4x3));
    assert_eq!(tile_by_tiles_per_thread(5, 5, 64, 64, 1), Some(WinogradTile::F2x3));
    assert_eq!(tile_by_tiles_per_thread(56, 56, 3, 64, 1), None);
}

#[test]
fn measured_rule_picks_by_output_size() {
    if std::env::var_os("LITHE_WINOGRAD").is_some() {
        return; // forced by the environment
    }
    assert_eq!(choose_tile(56, 56, 64, 64), Some(WinogradTile::F4x3));
    assert_eq!(choose_tile(28, 28, 128, 128), Some(WinogradTile::F6x3));
    assert_eq!(choose_tile(27, 27, 32, 128), None);
    assert_eq!(choose_tile(20, 20, 64, 64), Some(WinogradTile::F2x3));
    assert_eq!(choose_tile(14, 14, 256, 256), Some(WinogradTile::F2x3));
    assert_eq!(choose_tile(13, 13, 64, 256), Some(WinogradTile::F2x3));
    assert_eq!(choose_tile(7, 7, 512, 512), None);
    assert_eq!(choose_tile(56, 56, 3, 64), None);
    assert_eq!(choose_tile(55, 55, 16, 64), None);
}
