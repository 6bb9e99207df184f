//! Quantization levels and the quantize / dequantize helpers.

use crate::QuantError;

/// Bit width and signedness of a quantized tensor.
///
/// Signed tensors use the symmetric levels `-n..=n` with `n = 2^(bits-1) - 1` (the level
/// `-2^(bits-1)` is never produced); unsigned tensors, for values known to be non-negative,
/// use `0..=n` with `n = 2^bits - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantSpec {
    bits: u32,
    unsigned: bool,
}

impl Default for QuantSpec {
    /// [`QuantSpec::INT8`].
    fn default() -> Self {
        QuantSpec::INT8
    }
}

impl QuantSpec {
    /// Signed 8 bits: levels -127..=127.
    pub const INT8: QuantSpec = QuantSpec { bits: 8, unsigned: false };
    /// Unsigned 8 bits: levels 0..=255.
    pub const UINT8: QuantSpec = QuantSpec { bits: 8, unsigned: true };

    /// `bits` in 2..=16, signed or unsigned.
    pub fn new(bits: u32, unsigned: bool) -> Result<QuantSpec, QuantError> {
        if !(2..=16).contains(&bits) {
            return Err(QuantError::Setting { field: "bits", reason: format!("{bits} (expected 2 to 16)") });
        }
        Ok(QuantSpec { bits, unsigned })
    }

    /// The bit width.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Whether the levels are `0..=n` rather than `-n..=n`.
    pub fn is_unsigned(&self) -> bool {
        self.unsigned
    }

    /// `n`, the largest level: `2^(bits-1) - 1` signed, `2^bits - 1` unsigned.
    pub fn max_level(&self) -> i32 {
        if self.unsigned { (1 << self.bits) - 1 } else { (1 << (self.bits - 1)) - 1 }
    }

    /// The smallest level: `-n` signed, 0 unsigned.
    pub fn min_level(&self) -> i32 {
        if self.unsigned { 0 } else { -self.max_level() }
    }
}

/// The scale of a threshold: `threshold / n`, so that `threshold` maps to level `n`.
pub fn scale_from_threshold(threshold: f32, spec: QuantSpec) -> f32 {
    threshold / spec.max_level() as f32
}

/// The level of `x`: `x / scale` rounded half to even (as onnxruntime's QuantizeLinear does),
/// clamped to the levels of `spec`. A zero, negative or non-finite scale, or a NaN `x`, gives 0.
pub fn quantize(x: f32, scale: f32, spec: QuantSpec) -> i32 {
    if !(scale > 0.0 && scale.is_finite()) || x.is_nan() {
        return 0;
    }
    let q = (x / scale).round_ties_even();
    q.clamp(spec.min_level() as f32, spec.max_level() as f32) as i32
}

/// The real value of level `q`: `q * scale`.
pub fn dequantize(q: i32, scale: f32) -> f32 {
    q as f32 * scale
}

/// Quantize then dequantize: the value the quantized tensor stands for.
pub fn fake_quant(x: f32, scale: f32, spec: QuantSpec) -> f32 {
    dequantize(quantize(x, scale, spec), scale)
}
