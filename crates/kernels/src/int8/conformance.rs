//! Conformance checks every [`I8GemmMicrokernel`] must pass, through [`i8_gemm`] and
//! [`QLinearConv2d`], shared by the tests of this crate and of the SIMD kernel crates. Results
//! must equal the [`reference`](super::reference) kernels bit for bit (f32 outputs compared
//! with `==`).

use super::reference::{QuantValues, i8_gemm_reference_with_residual, qlinear_conv2d_reference_with_residual};
use super::{
    I8GemmMicrokernel, I8Input, I8PanelSource, OutputKind, PackedI8Weights, QActivation, QConvGeometry, QLinearConv2d,
    QuantEpilogue, U8MatRef, i8_gemm_with_residual,
};

/// Output element type of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutSel {
    /// Raw i32 accumulators.
    I32,
    /// f32.
    F32,
    /// Requantized u8.
    U8,
    /// Requantized s8.
    S8,
}

/// Every output type.
pub const ALL_OUTPUTS: [OutSel; 4] = [OutSel::I32, OutSel::F32, OutSel::U8, OutSel::S8];

/// The activations the suites cycle through.
pub fn all_activations() -> [QActivation; 4] {
    [
        QActivation::None,
        QActivation::Relu,
        QActivation::Clamp { min: 0.0, max: 6.0 },
        QActivation::Clamp { min: -1.5, max: 2.25 },
    ]
}

/// One int8 GEMM problem and how it is presented to [`i8_gemm`].
#[derive(Clone, Debug)]
pub struct I8GemmCase {
    /// Rows (output channels).
    pub m: usize,
    /// Columns (positions).
    pub n: usize,
    /// Depth.
    pub k: usize,
    /// Activation zero point.
    pub x_zp: u8,
    /// One weight scale per row (else one for all).
    pub per_channel: bool,
    /// f32 bias.
    pub bias: bool,
    /// int32 bias.
    pub bias_i32: bool,
    /// Activation.
    pub activation: QActivation,
    /// Output type.
    pub out: OutSel,
    /// Extra elements per row of the activations and of the output.
    pub pad: usize,
    /// Present the activations through an [`I8PanelSource`] instead of a dense view.
    pub source: bool,
    /// Threads handed to the driver.
    pub threads: usize,
    /// Add an f32 residual (laid out as the output) before the activation; ignored for i32
    /// outputs.
    pub residual: bool,
    /// Data seed.
    pub seed: u64,
}

impl I8GemmCase {
    /// A plain case: zero point 128, per-channel scales, f32 bias, u8 output, one thread.
    pub fn plain(m: usize, n: usize, k: usize) -> Self {
        I8GemmCase {
            m,
            n,
            k,
            x_zp: 128,
            per_channel: true,
            bias: true,
            bias_i32: false,
            activation: QActivation::None,
            out: OutSel::U8,
            pad: 0,
            source: false,
            threads: 1,
            residual: false,
            seed: 1,
        }
    }
}

/// A small deterministic generator (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }

    /// `n` s8 values over the whole range (-128 included).
    pub fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.next_u64() as i8).collect()
    }

    /// `n` u8 values.
    pub fn u8s(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Epilogue data of a case.
struct EpData {
    w_scale: Vec<f32>,
    x_scale: f32,
    bias: Option<Vec<f32>>,
    bias_i32: Option<Vec<i32>>,
}

fn ep_data(rng: &mut Rng, m: usize, k: usize, per_channel: bool, bias: bool, bias_i32: bool) -> EpData {
    let nscale = if per_channel { m } else { 1 };
    let x_scale = rng.f32(0.01, 0.05);
    // About unit-sized y for a k-deep sum of ±128·±64 products.
    let base = 1.0 / (64.0 * 96.0 * (k.max(1) as f32).sqrt() * x_scale);
    EpData {
        w_scale: (0..nscale).map(|_| base * rng.f32(0.5, 2.0)).collect(),
        x_scale,
        bias: bias.then(|| (0..m).map(|_| rng.f32(-2.0, 2.0)).collect()),
        bias_i32: bias_i32.then(|| (0..m).map(|_| (rng.next_u64() % 200_001) as i32 - 100_000).collect()),
    }
}

fn kind_for(sel: OutSel, rng: &mut Rng) -> OutputKind {
    match sel {
        OutSel::I32 => OutputKind::I32,
        OutSel::F32 => OutputKind::F32,
        OutSel::U8 => OutputKind::U8 { scale: rng.f32(0.01, 0.04), zero_point: (rng.next_u64() % 256) as u8 },
        OutSel::S8 => OutputKind::S8 { scale: rng.f32(0.01, 0.04), zero_point: (rng.next_u64() % 256) as u8 as i8 },
    }
}

/// A dense matrix served through [`I8PanelSource`].
struct RowSource<'a>(U8MatRef<'a>, &'a [u8], usize);

impl I8PanelSource for RowSource<'_> {
    fn depth(&self) -> usize {
        self.0.rows()
    }
    fn cols(&self) -> usize {
        self.0.cols()
    }
    fn row(&self, k: usize, c0: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self.1[k * self.2 + c0..][..dst.len()]);
    }
}

/// `len` residual values about the size of `y`, some of them cancelling it to around zero
/// (clamp boundaries).
fn residual_values(rng: &mut Rng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| match i % 7 {
            0 => 0.0,
            1 => -rng.f32(0.0, 0.01),
            _ => rng.f32(-3.0, 3.0),
        })
        .collect()
}

fn compare(got: &QuantValues, want: &QuantValues, rows: usize, cols: usize, ld: usize) -> Result<(), String> {
    for i in 0..rows {
        for j in 0..cols {
            let (g, w) = (got.get(i * ld + j), want.get(i * cols + j));
            if g != w {
                return Err(format!("({i}, {j}): got {g}, want {w}"));
            }
        }
    }
    Ok(())
}

/// Run `case` through [`i8_gemm`] with `kernel` and compare with the reference.
pub fn check_case(kernel: &dyn I8GemmMicrokernel, case: &I8GemmCase) -> Result<(), String> {
    let ctx = |e: String| format!("{} {case:?}: {e}", kernel.name());
    let I8GemmCase { m, n, k, .. } = *case;
    let mut rng = Rng::new(case.seed);
    let w = rng.i8s(m * k);
    let ldx = n + case.pad;
    let x = rng.u8s(k * ldx);
    let d = ep_data(&mut rng, m, k, case.per_channel, case.bias, case.bias_i32);
    let kind = kind_for(case.out, &mut rng);
    let ep = QuantEpilogue {
        x_scale: d.x_scale,
        bias: d.bias.as_deref(),
        bias_i32: d.bias_i32.as_deref(),
        activation: case.activation,
    };
    let dense_x: Vec<u8> = (0..k).flat_map(|r| x[r * ldx..][..n].to_vec()).collect();
    let ldc = n + case.pad;
    // The residual at the output's stride `ldc`, and its dense `m x n` copy for the reference.
    let residual = (case.residual && kind != OutputKind::I32).then(|| residual_values(&mut rng, m * ldc));
    let dense_r: Option<Vec<f32>> =
        residual.as_ref().map(|r| (0..m).flat_map(|i| r[i * ldc..][..n].to_vec()).collect());
    let want =
        i8_gemm_reference_with_residual(m, n, k, &w, &dense_x, case.x_zp, &d.w_scale, &ep, dense_r.as_deref(), kind)
            .map_err(|e| ctx(e.to_string()))?;
    let packed = PackedI8Weights::pack(kernel, m, k, &w, &d.w_scale).map_err(|e| ctx(e.to_string()))?;
    let mut got = QuantValues::zeros(kind, if m == 0 { 0 } else { (m - 1) * ldc + n });
    let view = U8MatRef::new(&x, k, n, ldx).map_err(|e| ctx(e.to_string()))?;
    let src = RowSource(view, &x, ldx);
    let input = if case.source { I8Input::Source(&src) } else { I8Input::Dense(view) };
    let r = residual.as_deref();
    i8_gemm_with_residual(kernel, &packed, input, case.x_zp, &ep, r, got.as_out(kind), ldc, case.threads)
        .map_err(|e| ctx(e.to_string()))?;
    compare(&got, &want, m, n, ldc).map_err(ctx)
}

/// The GEMM suite: sizes around the tile (1, tile-1, tile, tile+1, primes), depths around the
/// depth group (0, 1, kr-1, kr, kr+1, primes), every output type, activation, zero points 0,
/// 128 and others, both input forms, padded strides, 1 and 2 threads.
pub fn run_suite(kernel: &dyn I8GemmMicrokernel) -> Result<(), String> {
    let (mr, nr, kr) = (kernel.mr(), kernel.nr(), kernel.kr());
    let ms = [1, mr.saturating_sub(1).max(1), mr, mr + 1, 2 * mr + 3];
    let ns = [1, nr.saturating_sub(1).max(1), nr, nr + 1, 3 * nr + 5];
    let ks = [0, 1, kr.saturating_sub(1).max(1), kr, kr + 1, 13, 67, 131];
    let acts = all_activations();
    let zps = [0u8, 128, 255, 37];
    let mut i = 0usize;
    for &m in &ms {
        for &n in &ns {
            for &k in &ks {
                i += 1;
                let case = I8GemmCase {
                    m,
                    n,
                    k,
                    x_zp: zps[i % 4],
                    per_channel: !i.is_multiple_of(3),
                    bias: i.is_multiple_of(2),
                    bias_i32: i % 5 == 1,
                    activation: acts[(i / 4) % 4],
                    out: ALL_OUTPUTS[i % 4],
                    pad: i % 3,
                    source: i % 7 == 3,
                    threads: 1 + (i % 2),
                    residual: i % 3 == 1,
                    seed: i as u64,
                };
                check_case(kernel, &case)?;
            }
        }
    }
    // Larger problems: several column blocks and panels, every output at 1 and 2 threads, with
    // and without a residual.
    for (j, &(m, n, k)) in [(70, 300, 600), (33, 1000, 257), (129, 67, 1200)].iter().enumerate() {
        for out in ALL_OUTPUTS {
            for (threads, residual) in [(1, false), (2, false), (1, true), (2, true)] {
                let mut case = I8GemmCase::plain(m, n, k);
                case.out = out;
                case.threads = threads;
                case.residual = residual;
                case.pad = usize::from(residual);
                case.activation = acts[j % 4];
                case.bias_i32 = j == 1;
                case.seed = 1000 + j as u64;
                check_case(kernel, &case)?;
            }
        }
    }
    Ok(())
}

/// One int8 conv problem.
#[derive(Clone, Debug)]
pub struct QConvCase {
    /// Batch.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input `[h, w]`.
    pub hw: [usize; 2],
    /// Kernel `[kh, kw]`.
    pub kernel_hw: [usize; 2],
    /// Geometry.
    pub geom: QConvGeometry,
    /// Activation zero point.
    pub x_zp: u8,
    /// f32 bias.
    pub bias: bool,
    /// int32 bias.
    pub bias_i32: bool,
    /// Activation.
    pub activation: QActivation,
    /// Output type.
    pub out: OutSel,
    /// Let depthwise convs take the direct kernel.
    pub allow_depthwise: bool,
    /// Threads.
    pub threads: usize,
    /// Add an f32 residual shaped as the output before the activation; ignored for i32
    /// outputs and convs the direct depthwise kernel runs.
    pub residual: bool,
    /// Data seed.
    pub seed: u64,
}

/// Run `case` through [`QLinearConv2d`] with `kernel` and compare with the reference conv.
pub fn check_conv_case(kernel: &'static dyn I8GemmMicrokernel, case: &QConvCase) -> Result<(), String> {
    let ctx = |e: String| format!("{} {case:?}: {e}", kernel.name());
    let g = case.geom.groups;
    let [kh, kw] = case.kernel_hw;
    let x_shape = [case.n, case.c_in, case.hw[0], case.hw[1]];
    let w_shape = [case.c_out, case.c_in / g.max(1), kh, kw];
    let mut rng = Rng::new(case.seed);
    let x = rng.u8s(x_shape.iter().product());
    let w = rng.i8s(w_shape.iter().product());
    let d = ep_data(&mut rng, case.c_out, w_shape[1] * kh * kw, true, case.bias, case.bias_i32);
    let kind = kind_for(case.out, &mut rng);
    let ep = QuantEpilogue {
        x_scale: d.x_scale,
        bias: d.bias.as_deref(),
        bias_i32: d.bias_i32.as_deref(),
        activation: case.activation,
    };
    let conv = QLinearConv2d::prepare_with(kernel, &w, w_shape, &d.w_scale, case.geom, case.allow_depthwise)
        .map_err(|e| ctx(e.to_string()))?;
    let out_len = conv.output_shape(x_shape).map_or(0, |s| s.iter().product());
    let residual =
        (case.residual && kind != OutputKind::I32 && !conv.is_depthwise()).then(|| residual_values(&mut rng, out_len));
    let r = residual.as_deref();
    let (want, shape) = qlinear_conv2d_reference_with_residual(
        &x, x_shape, case.x_zp, &w, w_shape, &d.w_scale, &case.geom, &ep, r, kind,
    )
    .map_err(|e| ctx(e.to_string()))?;
    if conv.output_shape(x_shape).map_err(|e| ctx(e.to_string()))? != shape {
        return Err(ctx("output shape differs from the reference".into()));
    }
    let mut got = QuantValues::zeros(kind, want.len());
    conv.run_with_residual(&x, x_shape, case.x_zp, &ep, r, got.as_out(kind), case.threads)
        .map_err(|e| ctx(e.to_string()))?;
    compare(&got, &want, 1, want.len(), want.len()).map_err(ctx)
}

/// The conv suite: pointwise (also strided), 3x3 with pads and strides, 5x5, dilation,
/// rectangular kernels, asymmetric pads, groups, depthwise 3x3/5x5 stride 1/2 (direct and as
/// GEMMs), batches, every output type, zero points 0/128/other, 1 and 2 threads.
pub fn run_conv_suite(kernel: &'static dyn I8GemmMicrokernel) -> Result<(), String> {
    let geom = |s: usize, p: [usize; 4], d: usize, g: usize| QConvGeometry {
        strides: [s, s],
        pads: p,
        dilations: [d, d],
        groups: g,
    };
    // (c_in, c_out, [h, w], [kh, kw], geometry)
    type Conv = (usize, usize, [usize; 2], [usize; 2], QConvGeometry);
    let convs: Vec<Conv> = vec![
        (16, 24, [7, 9], [1, 1], geom(1, [0; 4], 1, 1)),
        (5, 3, [5, 5], [1, 1], geom(1, [0; 4], 1, 1)),
        (8, 12, [9, 8], [1, 1], geom(2, [0; 4], 1, 1)),
        (3, 10, [11, 13], [3, 3], geom(1, [1; 4], 1, 1)),
        (7, 9, [12, 10], [3, 3], geom(2, [1; 4], 1, 1)),
        (4, 6, [13, 11], [5, 5], geom(2, [2; 4], 1, 1)),
        (6, 5, [10, 10], [3, 3], geom(1, [2; 4], 2, 1)),
        (5, 7, [9, 12], [1, 7], geom(1, [0, 3, 0, 3], 1, 1)),
        (4, 4, [8, 9], [3, 3], geom(1, [0, 1, 2, 0], 1, 1)),
        (8, 6, [9, 9], [3, 3], geom(1, [1; 4], 1, 2)),
        (12, 12, [8, 7], [3, 3], geom(2, [1; 4], 1, 4)),
        (10, 10, [9, 11], [3, 3], geom(1, [1; 4], 1, 10)),
        (10, 10, [10, 13], [3, 3], geom(2, [1; 4], 1, 10)),
        (6, 6, [12, 9], [5, 5], geom(1, [2; 4], 1, 6)),
        (6, 6, [13, 12], [5, 5], geom(2, [2; 4], 1, 6)),
        (5, 5, [7, 7], [3, 3], geom(2, [0, 1, 1, 0], 1, 5)),
        (9, 9, [5, 6], [3, 3], geom(1, [0; 4], 1, 9)),
    ];
    let acts = all_activations();
    let zps = [0u8, 128, 77, 255];
    for (i, &(c_in, c_out, hw, kernel_hw, geom)) in convs.iter().enumerate() {
        for (j, out) in ALL_OUTPUTS.into_iter().enumerate() {
            let idx = i * 4 + j;
            let case = QConvCase {
                n: 1 + idx % 2,
                c_in,
                c_out,
                hw,
                kernel_hw,
                geom,
                x_zp: zps[idx % 4],
                bias: idx % 3 != 0,
                bias_i32: idx % 5 == 2,
                activation: acts[(idx / 2) % 4],
                out,
                allow_depthwise: idx % 4 != 3,
                threads: 1 + (idx / 3) % 2,
                residual: idx % 3 == 1,
                seed: idx as u64 + 77,
            };
            check_conv_case(kernel, &case)?;
        }
    }
    Ok(())
}

/// Outputs equal bit for bit, except that any NaN equals any NaN (payloads may differ) and
/// `0.0` equals `-0.0`: the scalar `f32::max`/`min` of [`dequant`](super::dequant) leave the
/// sign of a zero result to the platform (x86 `maxps` keeps its second operand, AArch64
/// `fmaxnm` orders `-0.0 < 0.0`), which only f32 outputs can show.
fn same_bits(g: f64, w: f64) -> bool {
    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()) || (g == 0.0 && w == 0.0)
}

/// Epilogues far from the suites' unit-sized values, through [`i8_gemm_with_residual`]
/// against the reference: scales that overflow to ±inf (so `acc·scale` is ±inf or NaN), NaN
/// and ±inf biases and residuals, `-0.0`, `y_scale`s whose reciprocal overflows the scaled
/// value or underflows it, a negative `y_scale`, and activation bounds that are infinite,
/// inverted or `±0.0`; every output kind, edge tiles of both tile halves, shallow depths.
/// (NaN activation bounds are left out: `f32::max(y, NaN)` is `y` while `maxps(y, NaN)` is
/// the NaN, so the SIMD kernels do not reproduce them.)
pub fn run_extreme_suite(kernel: &dyn I8GemmMicrokernel) -> Result<(), String> {
    let (mr, nr) = (kernel.mr(), kernel.nr());
    let acts = [
        QActivation::None,
        QActivation::Relu,
        QActivation::Clamp { min: 0.0, max: 6.0 },
        QActivation::Clamp { min: -1.5, max: 2.25 },
        QActivation::Clamp { min: f32::NEG_INFINITY, max: f32::INFINITY },
        QActivation::Clamp { min: 3.0, max: -3.0 },
        QActivation::Clamp { min: -0.0, max: 0.0 },
        QActivation::Clamp { min: 5.0, max: 5.0 },
    ];
    let y_scales = [0.02f32, 1e-30, 1e30, -0.05, 3e38, 0.7];
    let w_scales = [1e20f32, 1e-30, -1e18, 0.0, 1.0, 0.01, -0.03, 2e-4];
    let biases = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1e38, 0.7, -3.3, 1.25];
    let shapes = [(2 * mr + 3, 3 * nr + 5, 16), (mr + 1, nr / 2 + 1, 27), (mr, nr + 1, 1), (1, 2 * nr, 0)];
    let mut case = 0usize;
    for (ai, &activation) in acts.iter().enumerate() {
        for (si, &y_scale) in y_scales.iter().enumerate() {
            for out in ALL_OUTPUTS {
                for residual in [false, true] {
                    if residual && out == OutSel::I32 {
                        continue;
                    }
                    case += 1;
                    let (m, n, k) = shapes[case % shapes.len()];
                    let mut rng = Rng::new(case as u64 * 7919);
                    let (w, x) = (rng.i8s(m * k), rng.u8s(k * n));
                    let x_zp = [0u8, 128, 255, 37][case % 4];
                    let x_scale = [1e19f32, 1.0, 0.02][(ai + si) % 3];
                    let w_scale: Vec<f32> = (0..m).map(|i| w_scales[(i + case) % w_scales.len()]).collect();
                    let bias: Vec<f32> = (0..m).map(|i| biases[(i + 2 * case) % biases.len()]).collect();
                    let zp = (rng.next_u64() % 256) as u8;
                    let kind = match out {
                        OutSel::I32 => OutputKind::I32,
                        OutSel::F32 => OutputKind::F32,
                        OutSel::U8 => OutputKind::U8 { scale: y_scale, zero_point: zp },
                        OutSel::S8 => OutputKind::S8 { scale: y_scale, zero_point: zp as i8 },
                    };
                    let ep = QuantEpilogue { x_scale, bias: Some(&bias), bias_i32: None, activation };
                    let ldc = n + case % 3;
                    let res: Option<Vec<f32>> = residual.then(|| {
                        let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, 1e38, -1e38];
                        (0..m * ldc)
                            .map(|i| if i % 5 == 0 { special[i / 5 % special.len()] } else { rng.f32(-3.0, 3.0) })
                            .collect()
                    });
                    let dense_r: Option<Vec<f32>> =
                        res.as_ref().map(|r| (0..m).flat_map(|i| r[i * ldc..][..n].to_vec()).collect());
                    let ctx = |e: String| {
                        format!(
                            "{} extreme case {case} ({m}x{n}x{k}, {activation:?}, {kind:?}, residual {residual}): {e}",
                            kernel.name()
                        )
                    };
                    let want =
                        i8_gemm_reference_with_residual(m, n, k, &w, &x, x_zp, &w_scale, &ep, dense_r.as_deref(), kind)
                            .map_err(|e| ctx(e.to_string()))?;
                    let packed = PackedI8Weights::pack(kernel, m, k, &w, &w_scale).map_err(|e| ctx(e.to_string()))?;
                    let view = U8MatRef::new(&x, k, n, n).map_err(|e| ctx(e.to_string()))?;
                    let mut got = QuantValues::zeros(kind, (m - 1) * ldc + n);
                    i8_gemm_with_residual(
                        kernel,
                        &packed,
                        I8Input::Dense(view),
                        x_zp,
                        &ep,
                        res.as_deref(),
                        got.as_out(kind),
                        ldc,
                        1 + case % 2,
                    )
                    .map_err(|e| ctx(e.to_string()))?;
                    for i in 0..m {
                        for j in 0..n {
                            let (g, w) = (got.get(i * ldc + j), want.get(i * n + j));
                            if !same_bits(g, w) {
                                return Err(ctx(format!("({i}, {j}): got {g}, want {w}")));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
