//! Conformance checks every [`F32GemmMicrokernel`] must pass through [`sgemm`], shared by the
//! tests of this crate and of the SIMD kernel crates: results are compared with an
//! f64-accumulated triple loop, with a tolerance relative to `sum |a||b|` of each element.

use super::{F32GemmMicrokernel, GemmEpilogue, GemmInput, MatRef, PackedA, PackedB, PerAxis, Residual, sgemm};
use lithe_ir::op::Activation;

/// Where a bias (or PRelu slope) vector runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Absent.
    None,
    /// One per row of `C`.
    Row,
    /// One per column of `C`.
    Col,
}

/// The residual source of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResidualKind {
    /// No residual.
    None,
    /// A separate matrix laid out like `C`.
    Separate,
    /// Held in `C` on entry.
    InOutput,
}

/// One GEMM problem and how it is presented to [`sgemm`].
#[derive(Clone, Debug)]
pub struct GemmCase {
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// Depth.
    pub k: usize,
    /// Store `A` transposed (column-major view).
    pub a_trans: bool,
    /// Store `B` transposed.
    pub b_trans: bool,
    /// Extra elements added to every leading dimension (of `A`, `B` and `C`).
    pub pad: usize,
    /// Pass `A` prepacked.
    pub pack_a: bool,
    /// Pass `B` prepacked.
    pub pack_b: bool,
    /// Bias axis.
    pub bias: Axis,
    /// Residual source.
    pub residual: ResidualKind,
    /// Activation (a PRelu slope runs per row).
    pub activation: Activation,
    /// Threads handed to [`sgemm`].
    pub threads: usize,
    /// Data seed.
    pub seed: u64,
}

impl GemmCase {
    /// A plain row-major `m x k` by `k x n` case with no epilogue, one thread.
    pub fn plain(m: usize, n: usize, k: usize) -> Self {
        GemmCase {
            m,
            n,
            k,
            a_trans: false,
            b_trans: false,
            pad: 0,
            pack_a: false,
            pack_b: false,
            bias: Axis::None,
            residual: ResidualKind::None,
            activation: Activation::None,
            threads: 1,
            seed: 1,
        }
    }
}

/// Sizes that hit every remainder path: 1, tile - 1, tile, tile + 1 for both tile sides,
/// primes, and one past the kernel's `kc`.
pub fn edge_sizes(kernel: &dyn F32GemmMicrokernel) -> Vec<usize> {
    let (mr, nr, kc) = (kernel.mr(), kernel.nr(), kernel.blocking().kc);
    let mut v = vec![1, 2, 3, 13, 31, 127, mr.saturating_sub(1), mr, mr + 1, nr.saturating_sub(1), nr, nr + 1, kc + 1];
    v.retain(|&x| x > 0);
    v.sort_unstable();
    v.dedup();
    v
}

/// Every activation with representative parameters.
pub fn all_activations() -> Vec<Activation> {
    vec![
        Activation::None,
        Activation::Relu,
        Activation::Clip { min: -0.5, max: 0.75 },
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::PRelu,
        Activation::HardSwish,
        Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
        Activation::Sigmoid,
        Activation::Tanh,
    ]
}

/// `n` deterministic values in [-1, 1) from `seed` (xorshift): test data that every kernel
/// test derives the same way.
pub fn seeded_values(n: usize, seed: u64) -> Vec<f32> {
    Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).vec(n)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn act_f64(act: &Activation, x: f64, slope: f64) -> f64 {
    match *act {
        Activation::None => x,
        Activation::Relu => x.max(0.0),
        Activation::Clip { min, max } => x.max(f64::from(min)).min(f64::from(max)),
        Activation::LeakyRelu { alpha } => {
            if x < 0.0 {
                x * f64::from(alpha)
            } else {
                x
            }
        }
        Activation::PRelu => {
            if x < 0.0 {
                x * slope
            } else {
                x
            }
        }
        Activation::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        Activation::HardSigmoid { alpha, beta } => (f64::from(alpha) * x + f64::from(beta)).clamp(0.0, 1.0),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
    }
}

/// Run `case` with `kernel` and compare with the f64 reference; `Err` describes the first
/// mismatch (or an unexpected error from [`sgemm`]). Also checks that `C`'s padding columns
/// are left untouched.
pub fn check_case(kernel: &dyn F32GemmMicrokernel, case: &GemmCase) -> Result<(), String> {
    let GemmCase { m, n, k, pad, .. } = *case;
    let mut rng = Rng(case.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // A is m x k: stored row-major with ld k + pad, or transposed (k x m, ld m + pad).
    let (a_rows, a_ld) = if case.a_trans { (k, m + pad) } else { (m, k + pad) };
    let a_data = rng.vec(a_rows.max(1) * a_ld);
    let a_at = |i: usize, p: usize| if case.a_trans { a_data[p * a_ld + i] } else { a_data[i * a_ld + p] };
    let (b_rows, b_ld) = if case.b_trans { (n, k + pad) } else { (k, n + pad) };
    let b_data = rng.vec(b_rows.max(1) * b_ld);
    let b_at = |p: usize, j: usize| if case.b_trans { b_data[j * b_ld + p] } else { b_data[p * b_ld + j] };
    let ldc = n + pad;
    let c_len = m * ldc;
    let res_data = rng.vec(c_len);
    let bias_data = rng.vec(match case.bias {
        Axis::None => 0,
        Axis::Row => m,
        Axis::Col => n,
    });
    let slope_data: Vec<f32> = (0..m).map(|i| 0.05 * (i % 7) as f32 - 0.1).collect();
    const SENTINEL: f32 = 12345.0;
    let mut c: Vec<f32> = match case.residual {
        ResidualKind::InOutput => res_data.clone(),
        _ => rng.vec(c_len),
    };
    for i in 0..m {
        for j in n..ldc {
            c[i * ldc + j] = SENTINEL;
        }
    }
    let view_err = |e| format!("view: {e}");
    let a_view = if case.a_trans {
        MatRef::new(&a_data, m, k, 1, a_ld).map_err(view_err)?
    } else {
        MatRef::new(&a_data, m, k, a_ld, 1).map_err(view_err)?
    };
    let b_view = if case.b_trans {
        MatRef::new(&b_data, k, n, 1, b_ld).map_err(view_err)?
    } else {
        MatRef::new(&b_data, k, n, b_ld, 1).map_err(view_err)?
    };
    let pa = if case.pack_a { Some(PackedA::pack(kernel, a_view).map_err(|e| e.to_string())?) } else { None };
    let pb = if case.pack_b { Some(PackedB::pack(kernel, b_view).map_err(|e| e.to_string())?) } else { None };
    let a_in = pa.as_ref().map_or(GemmInput::Strided(a_view), GemmInput::Packed);
    let b_in = pb.as_ref().map_or(GemmInput::Strided(b_view), GemmInput::Packed);
    let ep = GemmEpilogue {
        bias: match case.bias {
            Axis::None => None,
            Axis::Row => Some(PerAxis::Row(&bias_data)),
            Axis::Col => Some(PerAxis::Col(&bias_data)),
        },
        residual: match case.residual {
            ResidualKind::None => Residual::None,
            ResidualKind::Separate => Residual::Separate(&res_data),
            ResidualKind::InOutput => Residual::InOutput,
        },
        activation: case.activation,
        prelu_slope: Some(PerAxis::Row(&slope_data)),
    };
    sgemm(kernel, m, n, k, a_in, b_in, &mut c, ldc, &ep, case.threads).map_err(|e| format!("sgemm failed: {e}"))?;
    for i in 0..m {
        for j in 0..ldc {
            let got = c[i * ldc + j];
            if j >= n {
                if got.to_bits() != SENTINEL.to_bits() {
                    return Err(format!("{}: padding C[{i}][{j}] overwritten with {got}", kernel.name()));
                }
                continue;
            }
            let (mut acc, mut scale) = (0f64, 0f64);
            for p in 0..k {
                let prod = f64::from(a_at(i, p)) * f64::from(b_at(p, j));
                acc += prod;
                scale += prod.abs();
            }
            let mut add = |v: f32| {
                acc += f64::from(v);
                scale += f64::from(v).abs();
            };
            match case.bias {
                Axis::None => {}
                Axis::Row => add(bias_data[i]),
                Axis::Col => add(bias_data[j]),
            }
            if case.residual != ResidualKind::None {
                add(res_data[i * ldc + j]);
            }
            let want = act_f64(&case.activation, acc, f64::from(slope_data[i]));
            let eps = f64::from(f32::EPSILON);
            let tol = 2.0 * (k as f64 + 4.0) * eps * scale + 8.0 * eps * want.abs().max(1.0);
            if (f64::from(got) - want).abs() > tol || got.is_nan() {
                return Err(format!(
                    "{}: {case:?}: C[{i}][{j}] = {got}, expected {want} (tolerance {tol:e})",
                    kernel.name()
                ));
            }
        }
    }
    Ok(())
}

/// The fixed suite: every size combination from [`edge_sizes`] up to 31 (plus a few large
/// ones past `kc`), every storage / packing layout, every epilogue, `k = 0`, and two threads.
pub fn run_suite(kernel: &dyn F32GemmMicrokernel) -> Result<(), String> {
    let sizes = edge_sizes(kernel);
    let small: Vec<usize> = sizes.iter().copied().filter(|&s| s <= 33).collect();
    let (mr, nr, kc) = (kernel.mr(), kernel.nr(), kernel.blocking().kc);
    for &m in &small {
        for &n in &small {
            for &k in &small {
                check_case(kernel, &GemmCase::plain(m, n, k))?;
            }
        }
    }
    for &(m, n, k) in &[(127, 127, kc + 1), (kc + 1, 13, 127), (13, kc + 1, 2 * kc + 3), (1, 1, kc + 1)] {
        check_case(kernel, &GemmCase::plain(m, n, k))?;
    }
    for layout in 0..32u32 {
        for &(m, n, k) in &[(mr + 1, nr + 1, 13), (2 * mr + 3, 3 * nr - 1, kc + 5)] {
            let mut case = GemmCase::plain(m, n, k);
            case.a_trans = layout & 1 != 0;
            case.b_trans = layout & 2 != 0;
            case.pad = if layout & 4 != 0 { 3 } else { 0 };
            case.pack_a = layout & 8 != 0;
            case.pack_b = layout & 16 != 0;
            case.seed = u64::from(layout) + 7;
            check_case(kernel, &case)?;
        }
    }
    for act in all_activations() {
        for bias in [Axis::None, Axis::Row, Axis::Col] {
            for residual in [ResidualKind::None, ResidualKind::Separate, ResidualKind::InOutput] {
                for &(m, n, k) in &[(2 * mr + 1, nr + 3, 19), (mr, nr, kc + 1), (3, 5, 0)] {
                    let mut case = GemmCase::plain(m, n, k);
                    case.bias = bias;
                    case.residual = residual;
                    case.activation = act;
                    case.pad = 2;
                    check_case(kernel, &case)?;
                }
            }
        }
    }
    for &(m, n, k) in &[(127, 127, 31), (1, 200, 50), (200, 1, 50), (64, 300, 70), (3 * mr + 1, 5 * nr + 2, kc + 1)] {
        for (t, act) in all_activations().into_iter().enumerate() {
            let mut case = GemmCase::plain(m, n, k);
            case.threads = 2;
            case.activation = act;
            case.bias = if t % 2 == 0 { Axis::Row } else { Axis::Col };
            case.residual = if t % 3 == 0 { ResidualKind::Separate } else { ResidualKind::None };
            case.pack_a = t % 4 == 1;
            case.pack_b = t % 4 == 2;
            case.pad = t % 3;
            check_case(kernel, &case)?;
        }
    }
    Ok(())
}
