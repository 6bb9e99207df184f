//! Int8 execution kernels (ONNX `QLinearConv` / `QLinearMatMul` semantics): u8 activations
//! with a zero point, s8 weights with per-output-channel scales (zero point 0), exact i32
//! accumulation and a fused requantize epilogue.
//!
//! `acc[co][p] = Σ_k (x[k][p] - x_zp)·w[co][k] + bias_i32[co]` exactly (wrapping i32, i.e. exact
//! whenever the true value fits), then `y = acc·(x_scale·w_scale[co]) + bias[co]` (multiply then
//! add, in f32), an optional clamp, and the output as i32 (the raw `acc`), f32, or u8/s8
//! requantized as `clamp(round_half_even(y / y_scale) + y_zp)`. Every kernel produces the same
//! bits as the [`reference`] kernels.
//!
//! The pieces, mirroring the f32 [`gemm`](crate::gemm) frame:
//! - [`I8GemmMicrokernel`]: one trait for the family; [`I8Gemm4x8c4Generic`] is the portable
//!   member, SIMD members live in `lithe-kernels-x86` (AVX-512 VNNI, AVX2) and
//!   `lithe-kernels-arm` (NEON `sdot`, `smlal`).
//! - [`PackedI8Weights`]: weights packed once into depth-grouped panels with their row sums;
//!   the activation zero point becomes a per-row compensation `x_zp·Σw` subtracted in the
//!   epilogue. Activations ([`I8Input`]) are packed per call by column blocks.
//! - [`i8_gemm`]: the driver (blocking, packing, edge tiles, epilogue, threads).
//! - [`QLinearConv2d`]: NCHW convolution on it (pointwise, implicit im2col padding with the
//!   zero point, groups) and a direct depthwise 3x3/5x5 stride 1/2 kernel.
//! - [`QGemv`]: fully connected layers (1x1 convs on 1x1 maps) as matrix-vector products.
//! - [`quantize`]: `QuantizeLinear` / `DequantizeLinear` over slices, per tensor or per channel.
//! - [`qadd_u8`]: the int8 add of QDQ residual connections, as onnxruntime's x86 `QLinearAdd`.
//! - [`qglobal_average_pool_u8`]: the int8 global average pool, as its `QLinearGlobalAveragePool`.

pub mod conformance;
mod conv;
mod depthwise;
mod driver;
mod epilogue;
mod gemv;
mod microkernel;
mod pack;
mod qadd;
mod qgap;
pub mod quantize;
pub mod reference;

pub use conv::{QConvGeometry, QLinearConv2d, s8_to_u8_activations, u8_zero_point_from_s8};
pub use driver::{i8_gemm, i8_gemm_with_residual};
pub use epilogue::{
    I8TileEpilogue, I8TileOut, OutputKind, QActivation, QuantEpilogue, QuantOut, Requant, dequant, dequant_residual,
    integer_requant_multipliers,
};
pub use gemv::{QGemv, QGemvOut};
pub use microkernel::{I8Gemm4x8c4Generic, I8GemmMicrokernel, check_i8_microkernel_args, check_i8_panels_args};
pub use pack::{I8Input, I8PanelSource, MAX_DEPTH, PackedI8Weights, U8MatRef};
pub use qadd::{QAddParams, qadd_u8};
pub use qgap::{QGapParams, qglobal_average_pool_u8};
pub use quantize::{
    QuantElem, dequantize_linear, dequantize_linear_per_channel, quantize_linear, quantize_linear_per_channel,
};
