//! QuantizeLinear and DequantizeLinear, per tensor or per slice along an axis, and
//! DynamicQuantizeLinear (u8, per tensor, range from the data).
//!
//! Quantize: `q = saturate(round_half_even(x / scale) + zero_point)` with the division in f32
//! (onnxruntime's order of operations); NaN becomes the zero point. Dequantize:
//! `x = (q - zero_point) * scale` with the difference exact in i64 and one f32 product.

use super::util::{axis_index, invalid};
use crate::KernelError;
use lithe_ir::{DType, Tensor};
use ndarray::ArrayD;

/// Per-element scale and zero point lookup for one tensor.
struct Params {
    scale: Vec<f32>,
    zero_point: Vec<i64>,
    /// Elements per slice below the axis (1 for per-tensor).
    inner: usize,
    /// Size of the axis (1 for per-tensor).
    channels: usize,
}

impl Params {
    fn new(
        op: &'static str,
        shape: &[usize],
        scale: &Tensor,
        zero_point: Option<&Tensor>,
        axis: i64,
    ) -> Result<Params, KernelError> {
        if scale.dtype() != DType::F32 {
            return Err(invalid(op, format!("scale must be f32, got {}", scale.dtype())));
        }
        if scale.shape().len() > 1 {
            return Err(invalid(op, format!("scale must be a scalar or 1-D, got shape {:?}", scale.shape())));
        }
        let scale_v = scale.to_f32_vec();
        let zero_point_v = match zero_point {
            Some(z) if !z.dtype().is_integer() => {
                return Err(invalid(op, format!("zero point must be an integer tensor, got {}", z.dtype())));
            }
            Some(z) => z.to_i64_vec(),
            None => vec![0; scale_v.len()],
        };
        if zero_point_v.len() != scale_v.len() {
            return Err(invalid(
                op,
                format!("zero point has {} elements, scale has {}", zero_point_v.len(), scale_v.len()),
            ));
        }
        // A one-element scale is per tensor whatever its rank (onnxruntime's reading).
        let (inner, channels) = if scale.shape().len() == 1 && scale_v.len() != 1 {
            let ax = axis_index(op, axis, shape.len())?;
            let channels = shape[ax];
            if scale_v.len() != channels {
                return Err(invalid(
                    op,
                    format!("{} scales for axis {ax} of size {channels} (shape {shape:?})", scale_v.len()),
                ));
            }
            (shape[ax + 1..].iter().product::<usize>().max(1), channels)
        } else {
            if scale_v.len() != 1 {
                return Err(invalid(op, "a 0-D scale must hold one element"));
            }
            (1, 1)
        };
        Ok(Params { scale: scale_v, zero_point: zero_point_v, inner, channels })
    }

    /// The channel of element `i` (row-major order).
    fn channel(&self, i: usize) -> usize {
        if self.channels == 1 { 0 } else { (i / self.inner) % self.channels }
    }
}

/// Quantize f32 `x` to `to` (u8, i8 or i16) with `scale` and `zero_point` (dtype `to`).
pub fn quantize_linear(
    x: &Tensor,
    scale: &Tensor,
    zero_point: Option<&Tensor>,
    axis: i64,
    to: DType,
) -> Result<Tensor, KernelError> {
    const OP: &str = "QuantizeLinear";
    let xs = x.expect_view::<f32>("QuantizeLinear input").map_err(|e| invalid(OP, e.to_string()))?;
    if let Some(z) = zero_point
        && z.dtype() != to
    {
        return Err(invalid(OP, format!("zero point has dtype {}, the output is {to}", z.dtype())));
    }
    let p = Params::new(OP, x.shape(), scale, zero_point, axis)?;
    let (lo, hi) = match to {
        DType::U8 => (0i64, 255i64),
        DType::I8 => (-128, 127),
        DType::I16 => (-32768, 32767),
        other => return Err(invalid(OP, format!("output dtype must be u8, i8 or i16, got {other}"))),
    };
    let q: Vec<i64> = xs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = p.channel(i);
            quantize_value(v, p.scale[c], p.zero_point[c], lo, hi)
        })
        .collect();
    let shape = x.shape().to_vec();
    let build = |e: ndarray::ShapeError| invalid(OP, e.to_string());
    Ok(match to {
        DType::U8 => Tensor::from(ArrayD::from_shape_vec(shape, q.iter().map(|&v| v as u8).collect()).map_err(build)?),
        DType::I8 => Tensor::from(ArrayD::from_shape_vec(shape, q.iter().map(|&v| v as i8).collect()).map_err(build)?),
        _ => Tensor::from(ArrayD::from_shape_vec(shape, q.iter().map(|&v| v as i16).collect()).map_err(build)?),
    })
}

/// One quantized value clamped to `[lo, hi]`.
pub fn quantize_value(x: f32, scale: f32, zero_point: i64, lo: i64, hi: i64) -> i64 {
    let r = (x / scale).round_ties_even();
    // `as` saturates and maps NaN to 0; the clamp keeps the sum in range.
    (r as i64).saturating_add(zero_point).clamp(lo, hi)
}

/// Dequantize `q` (u8, i8, i16 or i32) to f32 with `scale` and `zero_point` (q's dtype).
pub fn dequantize_linear(
    q: &Tensor,
    scale: &Tensor,
    zero_point: Option<&Tensor>,
    axis: i64,
) -> Result<Tensor, KernelError> {
    const OP: &str = "DequantizeLinear";
    if !matches!(q.dtype(), DType::U8 | DType::I8 | DType::I16 | DType::I32) {
        return Err(invalid(OP, format!("input must be u8, i8, i16 or i32, got {}", q.dtype())));
    }
    if let Some(z) = zero_point
        && z.dtype() != q.dtype()
    {
        return Err(invalid(OP, format!("zero point has dtype {}, the input is {}", z.dtype(), q.dtype())));
    }
    let p = Params::new(OP, q.shape(), scale, zero_point, axis)?;
    let values = q.to_i64_vec();
    let out: Vec<f32> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = p.channel(i);
            (v - p.zero_point[c]) as f32 * p.scale[c]
        })
        .collect();
    let a = ArrayD::from_shape_vec(q.shape().to_vec(), out).map_err(|e| invalid(OP, e.to_string()))?;
    Ok(Tensor::from(a))
}

/// DynamicQuantizeLinear: `(y, y_scale, y_zero_point)` for f32 `x`, u8 output.
///
/// The range `[min(0, min x), max(0, max x)]` always holds 0 (NaN elements are left out of it);
/// `scale = (max - min) / 255` in f32, or 1 when the range is empty (all zeros, or no elements:
/// onnxruntime's choice; the ONNX formula divides 0 by 0 there);
/// `zero_point = round_half_even(clamp(0 - min / scale, 0, 255))`, so 0 is exactly
/// representable; `y = saturate(round_half_even(x / scale) + zero_point)` as QuantizeLinear
/// (NaN becomes the zero point).
pub fn dynamic_quantize_linear(x: &Tensor) -> Result<[Tensor; 3], KernelError> {
    const OP: &str = "DynamicQuantizeLinear";
    let xs = x.expect_view::<f32>("DynamicQuantizeLinear input").map_err(|e| invalid(OP, e.to_string()))?;
    // f32::min/max return the other operand for NaN, so NaN never widens the range.
    let (lo, hi) = xs.iter().fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let scale = if hi == lo { 1.0 } else { (hi - lo) / 255.0 };
    let zero_point = (0.0 - lo / scale).clamp(0.0, 255.0).round_ties_even() as i64;
    let q: Vec<u8> = xs.iter().map(|&v| quantize_value(v, scale, zero_point, 0, 255) as u8).collect();
    let y = ArrayD::from_shape_vec(x.shape().to_vec(), q).map_err(|e| invalid(OP, e.to_string()))?;
    Ok([Tensor::from(y), Tensor::scalar(scale), Tensor::scalar(zero_point as u8)])
}

/// QAdd: u8 `a + b` of one shape with onnxruntime's x86 `QLinearAdd` arithmetic (see
/// [`lithe_ir::Op::QAdd`]); `params` are the scalar inputs in slot order (a_scale,
/// a_zero_point, b_scale, b_zero_point, c_scale, c_zero_point).
pub fn qadd(a: &Tensor, b: &Tensor, params: [&Tensor; 6]) -> Result<Tensor, KernelError> {
    const OP: &str = "QAdd";
    if a.shape() != b.shape() {
        return Err(invalid(OP, format!("A {:?} and B {:?} must have one shape", a.shape(), b.shape())));
    }
    let av: Vec<u8> = a.expect_view::<u8>("QAdd A").map_err(|e| invalid(OP, e.to_string()))?.iter().copied().collect();
    let bv: Vec<u8> = b.expect_view::<u8>("QAdd B").map_err(|e| invalid(OP, e.to_string()))?.iter().copied().collect();
    let f = |i: usize, what: &str| super::qconv::single::<f32>(params[i], what);
    let z = |i: usize, what: &str| super::qconv::single::<u8>(params[i], what);
    let p = crate::int8::QAddParams {
        a_scale: f(0, "a_scale")?,
        a_zero_point: z(1, "a_zero_point")?,
        b_scale: f(2, "b_scale")?,
        b_zero_point: z(3, "b_zero_point")?,
        c_scale: f(4, "c_scale")?,
        c_zero_point: z(5, "c_zero_point")?,
    };
    let mut c = vec![0u8; av.len()];
    crate::int8::qadd_u8(&av, &bv, &p, &mut c, 1)?;
    Tensor::from_vec(a.shape(), c).map_err(|e| invalid(OP, e.to_string()))
}

/// QGlobalAveragePool: u8 NCHW `x` to `[N, C, 1, 1]` with onnxruntime's x86
/// `QLinearGlobalAveragePool` arithmetic (see [`lithe_ir::Op::QGlobalAveragePool`]); `params`
/// are the scalar inputs in slot order (x_scale, x_zero_point, y_scale, y_zero_point).
pub fn qglobal_average_pool(x: &Tensor, params: [&Tensor; 4]) -> Result<Tensor, KernelError> {
    const OP: &str = "QGlobalAveragePool";
    let &[n, c, _, _] = x.shape() else {
        return Err(invalid(OP, format!("X must be NCHW (rank 4), got {:?}", x.shape())));
    };
    let xv: Vec<u8> =
        x.expect_view::<u8>("QGlobalAveragePool X").map_err(|e| invalid(OP, e.to_string()))?.iter().copied().collect();
    let p = crate::int8::QGapParams {
        x_scale: super::qconv::single::<f32>(params[0], "x_scale")?,
        x_zero_point: super::qconv::single::<u8>(params[1], "x_zero_point")?,
        y_scale: super::qconv::single::<f32>(params[2], "y_scale")?,
        y_zero_point: super::qconv::single::<u8>(params[3], "y_zero_point")?,
    };
    let mut y = vec![0u8; n * c];
    crate::int8::qglobal_average_pool_u8(&xv, n * c, &p, &mut y)?;
    Tensor::from_vec(&[n, c, 1, 1], y).map_err(|e| invalid(OP, e.to_string()))
}
