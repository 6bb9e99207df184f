//! QConv: int8 2-D convolution with an f32 epilogue and an optional requantized u8 output.
//!
//! The accumulation and `acc·(x_scale·w_scale) + B` are the int8 reference kernel's; the
//! residual and activation then run as the standalone f32 kernels (exactly the fused conv's
//! epilogue), and a u8 output is `QuantizeLinear` of that.

use super::util::invalid;
use super::{epilogue, quantize};
use crate::KernelError;
use crate::int8::reference::{QuantValues, qlinear_conv2d_reference};
use crate::int8::{OutputKind, QActivation, QConvGeometry, QuantEpilogue, integer_requant_multipliers};
use lithe_ir::op::{Activation, QConvAttrs};
use lithe_ir::{DType, Tensor};

const OP: &str = "QConv";

/// The inputs of a QConv, by slot (see [`lithe_ir::Op::QConv`]).
#[derive(Clone, Copy, Debug)]
pub struct QConvInputs<'a> {
    /// X (u8 NCHW).
    pub x: &'a Tensor,
    /// x_scale (one f32).
    pub x_scale: &'a Tensor,
    /// x_zero_point (one u8).
    pub x_zero_point: &'a Tensor,
    /// W (i8 `[M, C/group, kH, kW]`).
    pub w: &'a Tensor,
    /// w_scale (one f32, or one per output channel).
    pub w_scale: &'a Tensor,
    /// B (f32 `[M]`).
    pub bias: Option<&'a Tensor>,
    /// The fused residual (f32, output shape).
    pub residual: Option<&'a Tensor>,
    /// y_scale (one f32) for a u8 output.
    pub y_scale: Option<&'a Tensor>,
    /// y_zero_point (one u8) for a u8 output.
    pub y_zero_point: Option<&'a Tensor>,
}

/// The one value of a scalar parameter.
pub(crate) fn single<T: lithe_ir::Element + Copy>(t: &Tensor, what: &str) -> Result<T, KernelError> {
    let v = t.expect_view::<T>(what).map_err(|e| invalid(OP, e.to_string()))?;
    match v.len() {
        1 => v.iter().next().copied().ok_or_else(|| invalid(OP, format!("{what} is empty"))),
        n => Err(invalid(OP, format!("{what} must hold one value, found {n}"))),
    }
}

/// 4-D shape of `t`, or an error naming `what`.
fn shape4(t: &Tensor, what: &str) -> Result<[usize; 4], KernelError> {
    <[usize; 4]>::try_from(t.shape()).map_err(|_| invalid(OP, format!("{what} must be 4-D, found {:?}", t.shape())))
}

/// Run a QConv.
pub fn qconv(attrs: &QConvAttrs, i: QConvInputs<'_>) -> Result<Tensor, KernelError> {
    let x_shape = shape4(i.x, "X")?;
    let w_shape = shape4(i.w, "W")?;
    let x = i.x.expect_view::<u8>("QConv X").map_err(|e| invalid(OP, e.to_string()))?;
    let x: Vec<u8> = x.iter().copied().collect();
    let w = i.w.expect_view::<i8>("QConv W").map_err(|e| invalid(OP, e.to_string()))?;
    let w: Vec<i8> = w.iter().copied().collect();
    let x_scale: f32 = single(i.x_scale, "x_scale")?;
    let x_zp: u8 = single(i.x_zero_point, "x_zero_point")?;
    let w_scale = i.w_scale.expect_view::<f32>("QConv w_scale").map_err(|e| invalid(OP, e.to_string()))?;
    let w_scale: Vec<f32> = w_scale.iter().copied().collect();
    let geom = QConvGeometry::resolve(&attrs.conv, [x_shape[2], x_shape[3]], [w_shape[2], w_shape[3]])?;
    if let Some(b) = i.bias.filter(|b| b.dtype() == DType::I32) {
        let b: Vec<i32> =
            b.expect_view::<i32>("QConv B").map_err(|e| invalid(OP, e.to_string()))?.iter().copied().collect();
        return qconv_int_bias(attrs, i, (&x, x_shape, x_zp), (&w, w_shape), (x_scale, &w_scale), &geom, &b);
    }
    let bias: Option<Vec<f32>> = match i.bias {
        Some(b) => {
            Some(b.expect_view::<f32>("QConv B").map_err(|e| invalid(OP, e.to_string()))?.iter().copied().collect())
        }
        None => None,
    };
    let ep = QuantEpilogue { x_scale, bias: bias.as_deref(), bias_i32: None, activation: QActivation::None };
    let (values, out_shape) =
        qlinear_conv2d_reference(&x, x_shape, x_zp, &w, w_shape, &w_scale, &geom, &ep, OutputKind::F32)?;
    let QuantValues::F32(y) = values else { return Err(invalid(OP, "the reference conv did not return f32")) };
    let y = Tensor::from_vec(&out_shape, y).map_err(|e| invalid(OP, e.to_string()))?;
    let y = epilogue::apply_epilogue(&attrs.conv.epilogue, y, i.residual, None)?;
    match (attrs.to, i.y_scale, i.y_zero_point) {
        (DType::F32, None, None) => Ok(y),
        (DType::U8, Some(s), Some(z)) => quantize::quantize_linear(&y, s, Some(z), 1, DType::U8),
        (to, s, z) => Err(invalid(
            OP,
            format!(
                "output {to} with y_scale {} and y_zero_point {}",
                if s.is_some() { "set" } else { "absent" },
                if z.is_some() { "set" } else { "absent" }
            ),
        )),
    }
}

/// A QConv with an int32 bias: `acc + B` exact, then with a u8 output the integer
/// requantization ([`integer_requant_multipliers`], the activation clamp in steps of
/// `y_scale`), with an f32 output `f32(acc + B)·(x_scale·w_scale)` and the activation.
fn qconv_int_bias(
    attrs: &QConvAttrs,
    i: QConvInputs<'_>,
    (x, x_shape, x_zp): (&[u8], [usize; 4], u8),
    (w, w_shape): (&[i8], [usize; 4]),
    (x_scale, w_scale): (f32, &[f32]),
    geom: &QConvGeometry,
    bias: &[i32],
) -> Result<Tensor, KernelError> {
    let e = &attrs.conv.epilogue;
    if e.residual || i.residual.is_some() {
        return Err(invalid(OP, "an int32 bias cannot be combined with a fused residual"));
    }
    let activation = match e.activation {
        Activation::None => QActivation::None,
        Activation::Relu => QActivation::Relu,
        Activation::Clip { min, max } => QActivation::Clamp { min, max },
        other => return Err(invalid(OP, format!("an int32 bias cannot be combined with a fused {other:?}"))),
    };
    let (values, out_shape) = match (attrs.to, i.y_scale, i.y_zero_point) {
        (DType::U8, Some(s), Some(z)) => {
            let y_scale: f32 = single(s, "y_scale")?;
            let zero_point: u8 = single(z, "y_zero_point")?;
            if !(y_scale > 0.0 && y_scale.is_finite()) {
                return Err(invalid(OP, format!("y_scale {y_scale} must be positive and finite")));
            }
            let per_channel = if w_scale.len() == 1 { vec![w_scale[0]; w_shape[0]] } else { w_scale.to_vec() };
            let mult = integer_requant_multipliers(x_scale, &per_channel, y_scale);
            let ep = QuantEpilogue {
                x_scale: 1.0,
                bias: None,
                bias_i32: Some(bias),
                activation: activation.in_steps_of(y_scale),
            };
            qlinear_conv2d_reference(
                x,
                x_shape,
                x_zp,
                w,
                w_shape,
                &mult,
                geom,
                &ep,
                OutputKind::U8 { scale: 1.0, zero_point },
            )?
        }
        (DType::F32, None, None) => {
            let ep = QuantEpilogue { x_scale, bias: None, bias_i32: Some(bias), activation };
            qlinear_conv2d_reference(x, x_shape, x_zp, w, w_shape, w_scale, geom, &ep, OutputKind::F32)?
        }
        (to, ..) => return Err(invalid(OP, format!("output {to} does not match y_scale/y_zero_point"))),
    };
    let t = match values {
        QuantValues::U8(v) => Tensor::from_vec(&out_shape, v),
        QuantValues::F32(v) => Tensor::from_vec(&out_shape, v),
        _ => return Err(invalid(OP, "the reference conv returned an unexpected kind")),
    };
    t.map_err(|e| invalid(OP, e.to_string()))
}
