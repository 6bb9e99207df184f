//! Plain int8 reference kernels: exact i64 sums, then the shared scalar epilogue. The oracle
//! of every int8 kernel (with the portable microkernel).

use super::conv::QConvGeometry;
use super::epilogue::{OutputKind, QuantEpilogue, dequant, dequant_residual, invalid};
use crate::KernelError;

/// The values an int8 kernel produced, by output kind.
#[derive(Clone, Debug, PartialEq)]
pub enum QuantValues {
    /// Raw accumulators.
    I32(Vec<i32>),
    /// Dequantized values.
    F32(Vec<f32>),
    /// Requantized u8.
    U8(Vec<u8>),
    /// Requantized s8.
    S8(Vec<i8>),
}

impl QuantValues {
    /// `len` zeros of `kind`.
    pub fn zeros(kind: OutputKind, len: usize) -> Self {
        match kind {
            OutputKind::I32 => QuantValues::I32(vec![0; len]),
            OutputKind::F32 => QuantValues::F32(vec![0.0; len]),
            OutputKind::U8 { .. } => QuantValues::U8(vec![0; len]),
            OutputKind::S8 { .. } => QuantValues::S8(vec![0; len]),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            QuantValues::I32(v) => v.len(),
            QuantValues::F32(v) => v.len(),
            QuantValues::U8(v) => v.len(),
            QuantValues::S8(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A [`QuantOut`](super::QuantOut) over these values with `kind`'s parameters (the kind
    /// must match the variant, as from [`zeros`](Self::zeros)).
    pub fn as_out(&mut self, kind: OutputKind) -> super::QuantOut<'_> {
        match (self, kind) {
            (QuantValues::I32(v), _) => super::QuantOut::I32(v),
            (QuantValues::F32(v), _) => super::QuantOut::F32(v),
            (QuantValues::U8(v), OutputKind::U8 { scale, zero_point }) => {
                super::QuantOut::U8 { data: v, scale, zero_point }
            }
            (QuantValues::S8(v), OutputKind::S8 { scale, zero_point }) => {
                super::QuantOut::S8 { data: v, scale, zero_point }
            }
            (QuantValues::U8(v), _) => super::QuantOut::U8 { data: v, scale: 1.0, zero_point: 0 },
            (QuantValues::S8(v), _) => super::QuantOut::S8 { data: v, scale: 1.0, zero_point: 0 },
        }
    }

    /// Element `i` as f64 (for error messages).
    pub fn get(&self, i: usize) -> f64 {
        match self {
            QuantValues::I32(v) => v[i] as f64,
            QuantValues::F32(v) => v[i] as f64,
            QuantValues::U8(v) => v[i] as f64,
            QuantValues::S8(v) => v[i] as f64,
        }
    }

    /// Write the output of accumulator `acc` (already exact, bias_i32 included) at `i`, with
    /// the residual value `r` added before the clamp when there is one.
    #[allow(clippy::too_many_arguments)]
    fn set(
        &mut self,
        i: usize,
        acc: i32,
        scale: f32,
        bias: f32,
        r: Option<f32>,
        clamp: Option<(f32, f32)>,
        kind: OutputKind,
    ) {
        let y = || match r {
            Some(r) => dequant_residual(acc, scale, bias, r, clamp),
            None => dequant(acc, scale, bias, clamp),
        };
        match self {
            QuantValues::I32(v) => v[i] = acc,
            QuantValues::F32(v) => v[i] = y(),
            QuantValues::U8(v) => v[i] = kind.requant().expect("u8 kind").apply(y()) as u8,
            QuantValues::S8(v) => v[i] = kind.requant().expect("s8 kind").apply(y()) as i8,
        }
    }
}

/// Check a dense residual of `len` values; it needs a non-i32 output.
fn check_residual(residual: Option<&[f32]>, len: usize, kind: OutputKind) -> Result<(), KernelError> {
    match residual {
        Some(_) if kind == OutputKind::I32 => Err(invalid("a residual needs an f32, u8 or s8 output".into())),
        Some(r) if r.len() != len => Err(invalid(format!("residual has {} values, the output {len}", r.len()))),
        _ => Ok(()),
    }
}

/// Per-row f32 scale, f32 bias and int32 bias.
type RowParams = (Vec<f32>, Vec<f32>, Vec<i64>);

/// The f32 scale and bias per output row, and int32 bias, validated.
fn row_params(m: usize, w_scale: &[f32], ep: &QuantEpilogue<'_>) -> Result<RowParams, KernelError> {
    let ws: Vec<f32> = match w_scale.len() {
        1 => vec![w_scale[0]; m],
        l if l == m => w_scale.to_vec(),
        l => return Err(invalid(format!("{l} weight scales for {m} rows"))),
    };
    let scale = ws.iter().map(|&s| ep.x_scale * s).collect();
    let bias = match ep.bias {
        Some(b) if b.len() != m => return Err(invalid(format!("bias has {} values for {m} rows", b.len()))),
        Some(b) => b.to_vec(),
        None => vec![0.0; m],
    };
    let bias_i = match ep.bias_i32 {
        Some(b) if b.len() != m => return Err(invalid(format!("int32 bias has {} values for {m} rows", b.len()))),
        Some(b) => b.iter().map(|&v| v as i64).collect(),
        None => vec![0; m],
    };
    Ok((scale, bias, bias_i))
}

/// `out[i][j] = epilogue(Σ_k (x[k][j] - x_zp)·w[i][k])` for row-major `w` (`m x k`) and `x`
/// (`k x n`); the accumulator is an exact i64 sum wrapped to i32 (as the kernels' i32 sums).
#[allow(clippy::too_many_arguments)]
pub fn i8_gemm_reference(
    m: usize,
    n: usize,
    k: usize,
    w: &[i8],
    x: &[u8],
    x_zero_point: u8,
    w_scale: &[f32],
    ep: &QuantEpilogue<'_>,
    kind: OutputKind,
) -> Result<QuantValues, KernelError> {
    i8_gemm_reference_with_residual(m, n, k, w, x, x_zero_point, w_scale, ep, None, kind)
}

/// [`i8_gemm_reference`] with an optional dense `m x n` f32 residual added before the clamp
/// ([`dequant_residual`]).
#[allow(clippy::too_many_arguments)]
pub fn i8_gemm_reference_with_residual(
    m: usize,
    n: usize,
    k: usize,
    w: &[i8],
    x: &[u8],
    x_zero_point: u8,
    w_scale: &[f32],
    ep: &QuantEpilogue<'_>,
    residual: Option<&[f32]>,
    kind: OutputKind,
) -> Result<QuantValues, KernelError> {
    if w.len() != m * k || x.len() != k * n {
        return Err(invalid(format!("reference GEMM {m} x {n} x {k}: w has {}, x has {}", w.len(), x.len())));
    }
    check_residual(residual, m * n, kind)?;
    let (scale, bias, bias_i) = row_params(m, w_scale, ep)?;
    let clamp = ep.activation.bounds();
    let mut out = QuantValues::zeros(kind, m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = bias_i[i];
            for kk in 0..k {
                acc += (x[kk * n + j] as i64 - x_zero_point as i64) * w[i * k + kk] as i64;
            }
            let r = residual.map(|r| r[i * n + j]);
            out.set(i * n + j, acc as i32, scale[i], bias[i], r, clamp, kind);
        }
    }
    Ok(out)
}

/// Direct NCHW int8 convolution (any groups, strides, dilations, pads; padding reads as
/// `x_zero_point`): `x` is `[n, c_in, h, w]`, `w` `[c_out, c_in / groups, kh, kw]`. Returns the
/// output values and shape `[n, c_out, oh, ow]`.
#[allow(clippy::too_many_arguments)]
pub fn qlinear_conv2d_reference(
    x: &[u8],
    x_shape: [usize; 4],
    x_zero_point: u8,
    w: &[i8],
    w_shape: [usize; 4],
    w_scale: &[f32],
    geom: &QConvGeometry,
    ep: &QuantEpilogue<'_>,
    kind: OutputKind,
) -> Result<(QuantValues, [usize; 4]), KernelError> {
    qlinear_conv2d_reference_with_residual(x, x_shape, x_zero_point, w, w_shape, w_scale, geom, ep, None, kind)
}

/// [`qlinear_conv2d_reference`] with an optional f32 residual shaped as the output
/// (`[n, c_out, oh, ow]`) added before the clamp ([`dequant_residual`]).
#[allow(clippy::too_many_arguments)]
pub fn qlinear_conv2d_reference_with_residual(
    x: &[u8],
    x_shape: [usize; 4],
    x_zero_point: u8,
    w: &[i8],
    w_shape: [usize; 4],
    w_scale: &[f32],
    geom: &QConvGeometry,
    ep: &QuantEpilogue<'_>,
    residual: Option<&[f32]>,
    kind: OutputKind,
) -> Result<(QuantValues, [usize; 4]), KernelError> {
    let [n, c, h, wd] = x_shape;
    let [co, cig, kh, kw] = w_shape;
    let (oh, ow) = geom.output_hw(x_shape, [kh, kw])?;
    let g = geom.groups;
    if g == 0 || c != cig * g || co % g != 0 || x.len() != n * c * h * wd || w.len() != co * cig * kh * kw {
        return Err(invalid(format!("reference conv: x {x_shape:?}, w {w_shape:?}, groups {g}")));
    }
    let (scale, bias, bias_i) = row_params(co, w_scale, ep)?;
    let clamp = ep.activation.bounds();
    let cog = co / g;
    check_residual(residual, n * co * oh * ow, kind)?;
    let mut out = QuantValues::zeros(kind, n * co * oh * ow);
    for b in 0..n {
        for o in 0..co {
            let gi = o / cog;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias_i[o];
                    for ci in 0..cig {
                        let cin = gi * cig + ci;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy =
                                    (oy * geom.strides[0] + ky * geom.dilations[0]) as isize - geom.pads[0] as isize;
                                let ix =
                                    (ox * geom.strides[1] + kx * geom.dilations[1]) as isize - geom.pads[1] as isize;
                                let xv = if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    x[((b * c + cin) * h + iy as usize) * wd + ix as usize]
                                } else {
                                    x_zero_point
                                };
                                acc +=
                                    (xv as i64 - x_zero_point as i64) * w[((o * cig + ci) * kh + ky) * kw + kx] as i64;
                            }
                        }
                    }
                    let at = ((b * co + o) * oh + oy) * ow + ox;
                    out.set(at, acc as i32, scale[o], bias[o], residual.map(|r| r[at]), clamp, kind);
                }
            }
        }
    }
    Ok((out, [n, co, oh, ow]))
}
