//! The fused requantize epilogue: `acc_i32` → f32 → activation clamp → f32, u8 or s8 (or the
//! raw `acc_i32`), with one scalar definition every SIMD kernel reproduces bit for bit.

use crate::KernelError;
use std::marker::PhantomData;

pub(crate) fn invalid(detail: String) -> KernelError {
    KernelError::Invalid { op: "Int8Gemm", detail }
}

/// The activation fused into the epilogue, applied to the f32 value `y` before the output
/// conversion.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum QActivation {
    /// No clamp.
    #[default]
    None,
    /// `max(y, 0)`.
    Relu,
    /// `min(max(y, min), max)` (ReLU6 is `Clamp { min: 0.0, max: 6.0 }`).
    Clamp {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
}

impl QActivation {
    /// The `(min, max)` bounds, or `None` without a clamp.
    pub fn bounds(self) -> Option<(f32, f32)> {
        match self {
            QActivation::None => None,
            QActivation::Relu => Some((0.0, f32::INFINITY)),
            QActivation::Clamp { min, max } => Some((min, max)),
        }
    }
}

impl QActivation {
    /// The same clamp on values measured in steps of `y_scale` (`y / y_scale`): bounds divided
    /// by `y_scale`; `Relu` stays as it is (exact for `y_scale > 0`).
    pub fn in_steps_of(self, y_scale: f32) -> QActivation {
        match self {
            QActivation::Clamp { min, max } => QActivation::Clamp { min: min / y_scale, max: max / y_scale },
            other => other,
        }
    }
}

/// The per-channel multipliers of integer requantization, the arithmetic of onnxruntime's
/// `QLinearConv` and of most int8 engines when the bias is int32 at scale `x_scale·w_scale`:
/// `q = saturate(round_half_even(f32(acc + bias_i32) · mult[m]) + y_zp)` with
/// `mult[m] = (x_scale · w_scale[m]) / y_scale` (a product then a quotient, in f32). Run it on
/// the int8 kernels as `x_scale = 1`, `w_scale = mult`, `bias_i32`, no f32 bias, and a u8
/// output of scale 1 (its reciprocal is exactly 1, so the requantization adds no rounding).
pub fn integer_requant_multipliers(x_scale: f32, w_scale: &[f32], y_scale: f32) -> Vec<f32> {
    w_scale.iter().map(|&s| x_scale * s / y_scale).collect()
}

/// The element type written by an int8 kernel and, for quantized outputs, its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OutputKind {
    /// The exact accumulator `Σ (x - x_zp)·w + bias_i32` (like ONNX `ConvInteger` /
    /// `MatMulInteger`); scales, f32 bias and activation are ignored.
    I32,
    /// `y = act(acc·scale + bias)` as f32.
    F32,
    /// `clamp(round_half_even(y · (1 / scale)) + zero_point, 0, 255)`.
    U8 {
        /// Output scale (`y_scale`).
        scale: f32,
        /// Output zero point.
        zero_point: u8,
    },
    /// `clamp(round_half_even(y · (1 / scale)) + zero_point, -128, 127)`.
    S8 {
        /// Output scale (`y_scale`).
        scale: f32,
        /// Output zero point.
        zero_point: i8,
    },
}

impl OutputKind {
    /// Bytes per output element.
    pub fn elem_size(self) -> usize {
        match self {
            OutputKind::I32 | OutputKind::F32 => 4,
            OutputKind::U8 { .. } | OutputKind::S8 { .. } => 1,
        }
    }

    /// For quantized outputs, the conversion of `y` (multiplier `1 / scale`, clamp bounds of
    /// the scaled value, zero point); `None` for I32 and F32.
    pub fn requant(self) -> Option<Requant> {
        match self {
            OutputKind::U8 { scale, zero_point } => {
                let zp = zero_point as i32;
                Some(Requant::new(scale, (-zp) as f32, (255 - zp) as f32, zp))
            }
            OutputKind::S8 { scale, zero_point } => {
                let zp = zero_point as i32;
                Some(Requant::new(scale, (-128 - zp) as f32, (127 - zp) as f32, zp))
            }
            OutputKind::I32 | OutputKind::F32 => None,
        }
    }
}

/// Quantized output conversion: `q = round_half_even(min(max(y · inv_scale, lo), hi)) + zp`
/// with `inv_scale = 1 / scale` computed once.
///
/// Multiplying by the reciprocal instead of dividing (as ONNX `QuantizeLinear` does) keeps the
/// division out of every output element; the two differ only when `y / scale` lies within an
/// ulp of a rounding boundary, by one quantization step (the int32 accumulation before it
/// already differs from a float conv by more). `lo`/`hi` are the integer range minus the zero
/// point, so clamping before rounding equals clamping after; a NaN scaled value becomes `lo`
/// (`f32::max` semantics, which `maxps`, `vmaxnmq` reproduce with the value as first operand).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Requant {
    /// The output scale (`y_scale`).
    pub scale: f32,
    /// `1 / scale`, the multiplier every kernel applies.
    pub inv_scale: f32,
    /// Lower clamp of `y · inv_scale`.
    pub lo: f32,
    /// Upper clamp of `y · inv_scale`.
    pub hi: f32,
    /// Zero point added after rounding.
    pub zp: i32,
}

impl Requant {
    /// The conversion for output scale `scale`, clamp bounds `lo..=hi` of the scaled value and
    /// zero point `zp`.
    pub fn new(scale: f32, lo: f32, hi: f32, zp: i32) -> Requant {
        Requant { scale, inv_scale: 1.0 / scale, lo, hi, zp }
    }

    /// Bounds `(l, h)` that replace both the activation clamp `clamp` and this conversion's
    /// `lo..=hi`: for every f32 `y`, NaN and ±inf included,
    /// `min(max(act(y) · inv_scale, lo), hi)` and `min(max(y · inv_scale, l), h)` round to the
    /// same integer (with `act` as in [`dequant`]). `None` when that is not proven: a negative
    /// scale, or a NaN or inverted (`min > max`) activation bound.
    ///
    /// Why: `f(v) = v · inv_scale` rounded is non-decreasing for `inv_scale > 0`, and so is
    /// `g(v) = min(max(v, lo), hi)`; a non-decreasing map commutes with a clamp to `[a, b]`
    /// (`a <= b`) as a clamp to `[map(a), map(b)]`, so `g(f(clamp(y, a, b)))` is
    /// `clamp(y · inv_scale, g(f(a)), g(f(b)))` (the inner clamp to `[lo, hi]` is absorbed since
    /// `[l, h]` lies inside it). A NaN `y` becomes `a`, hence `l`, on both sides. Values may
    /// differ only in the sign of a zero, which the rounding to an integer erases.
    pub fn merged_bounds(&self, clamp: Option<(f32, f32)>) -> Option<(f32, f32)> {
        match clamp {
            None => Some((self.lo, self.hi)),
            Some((a, b)) if self.inv_scale > 0.0 && a <= b => {
                let g = |v: f32| (v * self.inv_scale).max(self.lo).min(self.hi);
                Some((g(a), g(b)))
            }
            Some(_) => None,
        }
    }

    /// [`apply`](Self::apply) with the clamp bounds `(l, h)` of
    /// [`merged_bounds`](Self::merged_bounds) applied to the unclamped `y`.
    #[inline(always)]
    pub fn apply_merged(&self, y: f32, (l, h): (f32, f32)) -> i32 {
        Requant { lo: l, hi: h, ..*self }.apply(y)
    }

    /// The quantized value (in the output type's range) as i32.
    #[inline(always)]
    pub fn apply(&self, y: f32) -> i32 {
        // Round half to even by the 1.5·2²³ trick: for |t| < 2²² (t is within ±383 here)
        // `t + MAGIC` has ulp 1, so its bits are MAGIC's plus `round_half_even(t)`. Identical to
        // `t.round_ties_even() as i32`, and it vectorizes (no SSE4.1 rounding, no saturating
        // float-to-int conversion).
        const MAGIC: f32 = 12_582_912.0;
        let t = (y * self.inv_scale).max(self.lo).min(self.hi);
        ((t + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32) + self.zp
    }
}

/// `y = acc·scale + bias` (a multiply then an add: two roundings, never fused), then the
/// clamp. Every kernel computes exactly this.
#[inline(always)]
pub fn dequant(acc: i32, scale: f32, bias: f32, clamp: Option<(f32, f32)>) -> f32 {
    let y = acc as f32 * scale + bias;
    match clamp {
        Some((lo, hi)) => y.max(lo).min(hi),
        None => y,
    }
}

/// `y = (acc·scale + bias) + residual` (three roundings, never fused), then the clamp with
/// ONNX `Clip`'s comparisons (`if y < lo { lo }`, then `if y > hi { hi }`: NaN and `-0.0` are
/// kept): exactly an f32 conv followed by the residual `Add` and `Relu`/`Clip`. The epilogue of
/// kernels given a residual.
#[inline(always)]
pub fn dequant_residual(acc: i32, scale: f32, bias: f32, residual: f32, clamp: Option<(f32, f32)>) -> f32 {
    let y = (acc as f32 * scale + bias) + residual;
    match clamp {
        Some((lo, hi)) => {
            let y = if y < lo { lo } else { y };
            if y > hi { hi } else { y }
        }
        None => y,
    }
}

/// One `rows x cols` tile of an int8 kernel's output, element `(i, j)` at `i * ldc + j`
/// elements from the start; the element type is the [`OutputKind`] of the epilogue it is
/// used with.
///
/// Invariant: every element of the tile is valid for reads and writes during `'a` and no
/// other reference aliases it.
#[derive(Debug)]
pub struct I8TileOut<'a> {
    ptr: *mut u8,
    elem: usize,
    ldc: usize,
    rows: usize,
    cols: usize,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl I8TileOut<'_> {
    /// # Safety
    /// `ptr` must satisfy the type invariant for `rows`, `cols`, `ldc` (in elements of `elem`
    /// bytes) during `'a`.
    pub(crate) unsafe fn from_raw(ptr: *mut u8, elem: usize, ldc: usize, rows: usize, cols: usize) -> Self {
        I8TileOut { ptr, elem, ldc, rows, cols, _borrow: PhantomData }
    }

    /// Rows in the tile (at most the kernel's `MR`).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns in the tile (at most the kernel's `NR`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row stride in elements.
    pub fn ldc(&self) -> usize {
        self.ldc
    }

    /// Bytes per element.
    pub fn elem_size(&self) -> usize {
        self.elem
    }

    /// Pointer to element `(0, 0)`; see the type invariant for what may be accessed.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    /// Columns `j0 .. j0 + w` of the tile as a tile (all rows). Panics unless they are inside.
    pub fn cols_range(&mut self, j0: usize, w: usize) -> I8TileOut<'_> {
        assert!(j0.checked_add(w).is_some_and(|e| e <= self.cols), "columns {j0}+{w} outside {}", self.cols);
        // SAFETY: the columns are inside this tile, which `self` borrows mutably for the result.
        unsafe { I8TileOut::from_raw(self.ptr.add(j0 * self.elem), self.elem, self.ldc, self.rows, w) }
    }
}

/// The per-tile view of the epilogue: per-row compensation, scale and bias starting at the
/// tile's first row, the clamp, the output kind and an optional f32 residual tile.
///
/// The kernel's raw accumulator `raw` (`Σ x'·w` over its packed operands) becomes
/// `acc = raw - comp[i]` (wrapping i32 arithmetic: exact whenever the true accumulator fits
/// in i32), then `y = dequant(acc, scale[i], bias[i], clamp)` (with a residual
/// `y = dequant_residual(acc, scale[i], bias[i], residual[i * ld + j], clamp)`), then the
/// output conversion.
#[derive(Clone, Copy, Debug)]
pub struct I8TileEpilogue<'a> {
    comp: &'a [i32],
    scale: &'a [f32],
    bias: &'a [f32],
    clamp: Option<(f32, f32)>,
    kind: OutputKind,
    residual: Option<(&'a [f32], usize)>,
}

impl<'a> I8TileEpilogue<'a> {
    /// An epilogue for tiles of up to `comp.len()` rows; `scale` and `bias` must be at least
    /// as long as `comp`.
    pub fn new(
        comp: &'a [i32],
        scale: &'a [f32],
        bias: &'a [f32],
        clamp: Option<(f32, f32)>,
        kind: OutputKind,
    ) -> Result<Self, KernelError> {
        if scale.len() < comp.len() || bias.len() < comp.len() {
            return Err(invalid(format!(
                "epilogue rows: comp {}, scale {}, bias {}",
                comp.len(),
                scale.len(),
                bias.len()
            )));
        }
        Ok(I8TileEpilogue { comp, scale, bias, clamp, kind, residual: None })
    }

    /// The same epilogue adding the f32 residual `residual[i * ld + j]` to element `(i, j)`
    /// of the tile before the clamp (see [`dequant_residual`]); not for [`OutputKind::I32`].
    pub fn with_residual(self, residual: &'a [f32], ld: usize) -> Self {
        I8TileEpilogue { residual: Some((residual, ld)), ..self }
    }

    /// The epilogue of the tile's columns from `j0` on (the residual shifted by `j0`; an
    /// empty residual, which fits no tile, when `j0` is past its end).
    pub fn from_col(self, j0: usize) -> Self {
        let residual = self.residual.map(|(r, ld)| (r.get(j0..).unwrap_or(&[]), ld));
        I8TileEpilogue { residual, ..self }
    }

    /// Whether this epilogue can finish `tile` (enough rows, matching element size, a residual
    /// covering the tile and an output kind that takes it).
    pub fn fits(&self, tile: &I8TileOut<'_>) -> bool {
        let residual_fits = self.residual.is_none_or(|(r, ld)| {
            let need = (tile.rows.max(1) - 1).checked_mul(ld).and_then(|v| v.checked_add(tile.cols));
            self.kind != OutputKind::I32 && (tile.rows == 0 || need.is_some_and(|need| need <= r.len()))
        });
        tile.rows <= self.comp.len() && tile.elem == self.kind.elem_size() && residual_fits
    }

    /// Per-row compensation (subtracted from the raw accumulator).
    pub fn comp(&self) -> &'a [i32] {
        self.comp
    }

    /// Per-row scale (`x_scale · w_scale[row]`).
    pub fn scale(&self) -> &'a [f32] {
        self.scale
    }

    /// Per-row f32 bias.
    pub fn bias(&self) -> &'a [f32] {
        self.bias
    }

    /// Activation bounds.
    pub fn clamp(&self) -> Option<(f32, f32)> {
        self.clamp
    }

    /// Output kind.
    pub fn kind(&self) -> OutputKind {
        self.kind
    }

    /// The residual and its row stride in elements, when there is one; [`fits`](Self::fits)
    /// guarantees it covers the tile.
    pub fn residual(&self) -> Option<(&'a [f32], usize)> {
        self.residual
    }

    /// `y` of element `(i, j)` from its exact accumulator: [`dequant`], or
    /// [`dequant_residual`] with a residual. Panics when the residual does not hold `(i, j)`.
    #[inline(always)]
    pub fn value(&self, i: usize, j: usize, acc: i32) -> f32 {
        match self.residual {
            None => dequant(acc, self.scale[i], self.bias[i], self.clamp),
            Some((r, ld)) => dequant_residual(acc, self.scale[i], self.bias[i], r[i * ld + j], self.clamp),
        }
    }

    /// Finish element `(i, j)` from the kernel's raw accumulator (the scalar path; SIMD kernels
    /// reproduce it exactly). Panics when `(i, j)` is outside the tile or the epilogue does not
    /// fit it.
    pub fn store(&self, tile: &mut I8TileOut<'_>, i: usize, j: usize, raw: i32) {
        assert!(i < tile.rows && j < tile.cols, "tile index ({i}, {j}) out of {} x {}", tile.rows, tile.cols);
        assert!(self.fits(tile), "the epilogue does not fit the tile");
        let acc = raw.wrapping_sub(self.comp[i]);
        let off = i * tile.ldc + j;
        // SAFETY: (i, j) is in the tile (checked) and the element size matches the kind
        // (checked by `fits`), so the element is valid for writes by the type invariant.
        unsafe {
            match self.kind {
                OutputKind::I32 => (tile.ptr as *mut i32).add(off).write_unaligned(acc),
                OutputKind::F32 => (tile.ptr as *mut f32).add(off).write_unaligned(self.value(i, j, acc)),
                k @ (OutputKind::U8 { .. } | OutputKind::S8 { .. }) => {
                    let rq = k.requant().expect("quantized kind");
                    let q = rq.apply(self.value(i, j, acc));
                    *tile.ptr.add(off) = q as u8;
                }
            }
        }
    }
}

/// The per-call epilogue of an int8 GEMM or conv, ONNX `QLinearConv`/`QLinearMatMul` style.
///
/// `y[row] = act(acc[row]·(x_scale·w_scale[row]) + bias[row])` where
/// `acc = Σ (x - x_zp)·w + bias_i32[row]`; the output is then written as [`OutputKind`]
/// says. `bias_i32` is ONNX `QLinearConv`'s `B` input (scale `x_scale·w_scale`), added exactly.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuantEpilogue<'a> {
    /// Input (activation) scale.
    pub x_scale: f32,
    /// Optional f32 bias per output row/channel.
    pub bias: Option<&'a [f32]>,
    /// Optional int32 bias per output row/channel, added to the accumulator.
    pub bias_i32: Option<&'a [i32]>,
    /// The fused activation.
    pub activation: QActivation,
}

/// An int8 kernel's output buffer: row-major `rows x cols` with a row stride given next to it.
#[derive(Debug)]
pub enum QuantOut<'a> {
    /// Raw accumulators ([`OutputKind::I32`]).
    I32(&'a mut [i32]),
    /// Dequantized f32 ([`OutputKind::F32`]).
    F32(&'a mut [f32]),
    /// Requantized u8 with `y_scale` and `y_zero_point`.
    U8 {
        /// Output buffer.
        data: &'a mut [u8],
        /// `y_scale`.
        scale: f32,
        /// `y_zero_point`.
        zero_point: u8,
    },
    /// Requantized s8 with `y_scale` and `y_zero_point`.
    S8 {
        /// Output buffer.
        data: &'a mut [i8],
        /// `y_scale`.
        scale: f32,
        /// `y_zero_point`.
        zero_point: i8,
    },
}

impl QuantOut<'_> {
    /// The output kind.
    pub fn kind(&self) -> OutputKind {
        match self {
            QuantOut::I32(_) => OutputKind::I32,
            QuantOut::F32(_) => OutputKind::F32,
            QuantOut::U8 { scale, zero_point, .. } => OutputKind::U8 { scale: *scale, zero_point: *zero_point },
            QuantOut::S8 { scale, zero_point, .. } => OutputKind::S8 { scale: *scale, zero_point: *zero_point },
        }
    }

    /// Length in elements.
    pub fn len(&self) -> usize {
        match self {
            QuantOut::I32(d) => d.len(),
            QuantOut::F32(d) => d.len(),
            QuantOut::U8 { data, .. } => data.len(),
            QuantOut::S8 { data, .. } => data.len(),
        }
    }

    /// True when the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer as raw bytes pointer (element size [`OutputKind::elem_size`]).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            QuantOut::I32(d) => d.as_mut_ptr() as *mut u8,
            QuantOut::F32(d) => d.as_mut_ptr() as *mut u8,
            QuantOut::U8 { data, .. } => data.as_mut_ptr(),
            QuantOut::S8 { data, .. } => data.as_mut_ptr() as *mut u8,
        }
    }

    /// A reborrow of the elements from `offset` on (clamped to the end).
    pub fn slice_from(&mut self, offset: usize) -> QuantOut<'_> {
        match self {
            QuantOut::I32(d) => {
                let o = offset.min(d.len());
                QuantOut::I32(&mut d[o..])
            }
            QuantOut::F32(d) => {
                let o = offset.min(d.len());
                QuantOut::F32(&mut d[o..])
            }
            QuantOut::U8 { data, scale, zero_point } => {
                let o = offset.min(data.len());
                QuantOut::U8 { data: &mut data[o..], scale: *scale, zero_point: *zero_point }
            }
            QuantOut::S8 { data, scale, zero_point } => {
                let o = offset.min(data.len());
                QuantOut::S8 { data: &mut data[o..], scale: *scale, zero_point: *zero_point }
            }
        }
    }
}

/// Validate an f32 scale used as a divisor or multiplier (finite; nonzero for `y_scale`).
pub(crate) fn check_scale(what: &str, s: f32, nonzero: bool) -> Result<(), KernelError> {
    if !s.is_finite() || (nonzero && s == 0.0) {
        return Err(invalid(format!("{what} must be finite{}, got {s}", if nonzero { " and nonzero" } else { "" })));
    }
    if nonzero && !(1.0 / s).is_finite() {
        return Err(invalid(format!("{what} {s} is too small: its reciprocal overflows f32")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// f32 values weighted towards the special cases: NaN, ±inf, ±0.0, the extremes, values
    /// near the clamp bounds and arbitrary bit patterns.
    fn special() -> impl Strategy<Value = f32> {
        prop_oneof![
            Just(f32::NAN),
            Just(f32::INFINITY),
            Just(f32::NEG_INFINITY),
            Just(0.0f32),
            Just(-0.0f32),
            Just(f32::MAX),
            Just(f32::MIN),
            Just(f32::MIN_POSITIVE),
            Just(6.0f32),
            -400.0f32..400.0,
            -10.0f32..10.0,
            any::<u32>().prop_map(f32::from_bits),
        ]
    }

    fn requant() -> impl Strategy<Value = Requant> {
        let scale = prop_oneof![
            Just(0.02f32),
            Just(1e-30f32),
            Just(1e30f32),
            Just(3e38f32),
            Just(-0.05f32),
            1e-4f32..10.0,
            any::<u32>().prop_map(f32::from_bits)
        ];
        (scale, any::<u8>(), any::<bool>())
            .prop_filter("a usable y_scale", |(s, _, _)| s.is_finite() && *s != 0.0 && (1.0 / s).is_finite())
            .prop_map(|(scale, zp, signed)| {
                let kind = if signed {
                    OutputKind::S8 { scale, zero_point: zp as i8 }
                } else {
                    OutputKind::U8 { scale, zero_point: zp }
                };
                kind.requant().expect("quantized")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        /// The merged clamp equals the activation clamp followed by the requantize clamp on
        /// every input, when `merged_bounds` offers it.
        #[test]
        fn merged_bounds_are_exact(y in special(), a in special(), b in special(), rq in requant(), relu: bool) {
            let clamp = if relu { Some((0.0, f32::INFINITY)) } else { Some((a, b)) };
            for clamp in [clamp, None] {
                if let Some(bounds) = rq.merged_bounds(clamp) {
                    let y_act = match clamp {
                        Some((lo, hi)) => y.max(lo).min(hi),
                        None => y,
                    };
                    prop_assert_eq!(rq.apply_merged(y, bounds), rq.apply(y_act), "y {} clamp {:?} rq {:?}", y, clamp, rq);
                }
            }
            // Offered exactly when provable: positive scale, ordered non-NaN bounds.
            prop_assert_eq!(rq.merged_bounds(Some((a, b))).is_some(), rq.inv_scale > 0.0 && a <= b);
        }
    }
}
