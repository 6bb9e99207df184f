//! Activations applied to a row of outputs in place, written so LLVM vectorizes every variant
//! (no libm calls: `exp` is a branch-free polynomial).
//!
//! Semantics match `reference::activation` (NaN in, NaN out); Sigmoid and Tanh agree with the
//! libm-based reference to a few ulp-scaled units (absolute error below 1e-6).

use crate::KernelError;
use lithe_ir::op::Activation;

/// An activation ready to run over output rows, built from [`Activation`].
///
/// `PRelu` borrows its slope: one value for every element, or one value per channel when used
/// through [`FastActivation::channel`] (depthwise/NCHW), or one value per element of the row
/// when the slope is as long as the row (a row of channels, as in a GEMM epilogue).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum FastActivation<'a> {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, min), max)`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `x` if `x >= 0` else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `x` if `x >= 0` else `slope * x`, the slope borrowed (never empty).
    PRelu {
        /// The slope values.
        slope: &'a [f32],
    },
    /// `x * max(0, min(1, x / 6 + 1 / 2))`.
    HardSwish,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
}

impl<'a> FastActivation<'a> {
    /// Convert an IR activation; `slope` is required for (and only used by) `PRelu`.
    pub fn from_ir(act: &Activation, slope: Option<&'a [f32]>) -> Result<Self, KernelError> {
        Ok(match *act {
            Activation::None => FastActivation::None,
            Activation::Relu => FastActivation::Relu,
            Activation::Clip { min, max } => FastActivation::Clip { min, max },
            Activation::LeakyRelu { alpha } => FastActivation::LeakyRelu { alpha },
            Activation::PRelu => match slope {
                Some(s) if !s.is_empty() => FastActivation::PRelu { slope: s },
                _ => {
                    return Err(KernelError::Invalid {
                        op: "PRelu",
                        detail: "a fused PRelu needs a non-empty slope".to_string(),
                    });
                }
            },
            Activation::HardSwish => FastActivation::HardSwish,
            Activation::HardSigmoid { alpha, beta } => FastActivation::HardSigmoid { alpha, beta },
            Activation::Sigmoid => FastActivation::Sigmoid,
            Activation::Tanh => FastActivation::Tanh,
        })
    }

    /// The activation of channel `c` of an NCHW tensor: a per-channel `PRelu` becomes the
    /// `LeakyRelu` with that channel's slope (a one-value slope applies to every channel).
    /// Other variants are returned unchanged. `c` past the slope's end uses its last value.
    pub fn channel(self, c: usize) -> FastActivation<'static> {
        match self {
            FastActivation::None => FastActivation::None,
            FastActivation::Relu => FastActivation::Relu,
            FastActivation::Clip { min, max } => FastActivation::Clip { min, max },
            FastActivation::LeakyRelu { alpha } => FastActivation::LeakyRelu { alpha },
            FastActivation::PRelu { slope } => {
                let alpha = slope.get(c).or(slope.last()).copied().unwrap_or(0.0);
                FastActivation::LeakyRelu { alpha }
            }
            FastActivation::HardSwish => FastActivation::HardSwish,
            FastActivation::HardSigmoid { alpha, beta } => FastActivation::HardSigmoid { alpha, beta },
            FastActivation::Sigmoid => FastActivation::Sigmoid,
            FastActivation::Tanh => FastActivation::Tanh,
        }
    }

    /// True for [`FastActivation::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, FastActivation::None)
    }

    /// Apply the activation to every element of `row` in place.
    ///
    /// `PRelu`: element `i` uses `slope[i % slope.len()]` (so a one-value slope is a scalar and
    /// a row-long slope is per element).
    pub fn apply_row(&self, row: &mut [f32]) {
        apply_row_inline(self, row);
    }
}

/// [`FastActivation::apply_row`], inlined into the (possibly `target_feature`) caller so it is
/// vectorized with the caller's instruction set.
#[inline(always)]
pub(crate) fn apply_row_inline(act: &FastActivation<'_>, row: &mut [f32]) {
    match *act {
        FastActivation::None => {}
        FastActivation::Relu => row.iter_mut().for_each(|v| *v = relu(*v)),
        FastActivation::Clip { min, max } => row.iter_mut().for_each(|v| *v = clip(*v, min, max)),
        FastActivation::LeakyRelu { alpha } => row.iter_mut().for_each(|v| *v = leaky(*v, alpha)),
        FastActivation::PRelu { slope } => match slope {
            [] => {}
            [alpha] => row.iter_mut().for_each(|v| *v = leaky(*v, *alpha)),
            _ => {
                for chunk in row.chunks_mut(slope.len()) {
                    chunk.iter_mut().zip(slope).for_each(|(v, &a)| *v = leaky(*v, a));
                }
            }
        },
        FastActivation::HardSwish => row.iter_mut().for_each(|v| *v = hard_swish(*v)),
        FastActivation::HardSigmoid { alpha, beta } => row.iter_mut().for_each(|v| *v = clamp01(alpha * *v + beta)),
        FastActivation::Sigmoid => row.iter_mut().for_each(|v| *v = sigmoid(*v)),
        FastActivation::Tanh => row.iter_mut().for_each(|v| *v = tanh(*v)),
    }
}

/// An activation as a type, so a kernel's inner loop is compiled once per activation with no
/// branch on the variant inside it.
pub(crate) trait BlockAct: Copy {
    /// Apply to one value.
    fn f(self, v: f32) -> f32;
}

/// Something run with the activation as a type (see [`visit_act`]).
pub(crate) trait ActVisitor {
    /// The result.
    type Out;
    /// Run with `act`.
    fn visit<A: BlockAct>(self, act: A) -> Self::Out;
}

macro_rules! block_act {
    ($name:ident { $($field:ident),* } |$s:ident, $v:ident| $body:expr) => {
        #[derive(Clone, Copy)]
        pub(crate) struct $name { $($field: f32),* }
        impl BlockAct for $name {
            #[inline(always)]
            fn f(self, $v: f32) -> f32 {
                let $s = self;
                let _ = $s;
                $body
            }
        }
    };
}

block_act!(ActNone {} | s, v | v);
block_act!(ActRelu {} | s, v | relu(v));
block_act!(ActClip { min, max } | s, v | clip(v, s.min, s.max));
block_act!(ActLeaky { alpha } | s, v | leaky(v, s.alpha));
block_act!(ActHardSwish {} | s, v | hard_swish(v));
block_act!(ActHardSigmoid { alpha, beta } | s, v | clamp01(s.alpha * v + s.beta));
block_act!(ActSigmoid {} | s, v | sigmoid(v));
block_act!(ActTanh {} | s, v | tanh(v));

/// Call `v.visit` with `act` as a [`BlockAct`] type. A `PRelu` uses its first slope value
/// (callers resolve per-channel slopes with [`FastActivation::channel`] first).
#[inline(always)]
pub(crate) fn visit_act<V: ActVisitor>(act: &FastActivation<'_>, v: V) -> V::Out {
    match *act {
        FastActivation::None => v.visit(ActNone {}),
        FastActivation::Relu => v.visit(ActRelu {}),
        FastActivation::Clip { min, max } => v.visit(ActClip { min, max }),
        FastActivation::LeakyRelu { alpha } => v.visit(ActLeaky { alpha }),
        FastActivation::PRelu { slope } => v.visit(ActLeaky { alpha: slope.first().copied().unwrap_or(1.0) }),
        FastActivation::HardSwish => v.visit(ActHardSwish {}),
        FastActivation::HardSigmoid { alpha, beta } => v.visit(ActHardSigmoid { alpha, beta }),
        FastActivation::Sigmoid => v.visit(ActSigmoid {}),
        FastActivation::Tanh => v.visit(ActTanh {}),
    }
}

/// `max(v, 0)`, NaN kept (a select, so it vectorizes to a compare and blend).
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// `v` clamped to `[lo, hi]` as ONNX Clip does (`lo > hi` gives `hi`), NaN kept.
#[inline(always)]
fn clip(v: f32, lo: f32, hi: f32) -> f32 {
    let v = if v < lo { lo } else { v };
    if v > hi { hi } else { v }
}

/// `v` if `v >= 0` else `alpha * v`.
#[inline(always)]
fn leaky(v: f32, alpha: f32) -> f32 {
    if v >= 0.0 { v } else { alpha * v }
}

/// `v` clamped to `[0, 1]`, NaN kept.
#[inline(always)]
fn clamp01(v: f32) -> f32 {
    clip(v, 0.0, 1.0)
}

/// `v * clamp01(v / 6 + 1/2)`.
#[inline(always)]
fn hard_swish(v: f32) -> f32 {
    v * clamp01(v * (1.0 / 6.0) + 0.5)
}

/// `exp(v)` for `v <= 0` (clamped below so the result is a normal number or 0), by
/// `2^n * p(r)` with `r = v - n ln 2`, `|r| <= ln2 / 2`. Relative error about 2e-7. NaN stays NaN.
#[inline(always)]
fn exp_nonpositive(v: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round-to-nearest by adding and subtracting 1.5 * 2^23 (vectorizes without SSE4.1).
    const ROUND: f32 = 12_582_912.0;
    // Below -87 the result would be subnormal; flush it to zero.
    let tiny = v < -87.0;
    let x = if v < -87.0 { -87.0 } else { v };
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor/minimax-style polynomial for exp(r) on [-ln2/2, ln2/2].
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // n is in [-126, 0]: 2^n is a normal float built from its exponent bits.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let e = p * scale;
    if tiny { 0.0 } else { e }
}

/// `1 / (1 + exp(-v))` without overflow: `e / (1 + e)` with `e = exp(-|v|)`, mirrored for v >= 0.
#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    let a = if v < 0.0 { v } else { -v };
    let e = exp_nonpositive(a);
    let s = e / (1.0 + e);
    let y = if v < 0.0 { s } else { 1.0 - s };
    if v.is_nan() { v } else { y }
}

/// `tanh(v) = sign(v) (1 - e) / (1 + e)` with `e = exp(-2|v|)`; odd polynomial near 0 where the
/// quotient loses relative precision.
#[inline(always)]
fn tanh(v: f32) -> f32 {
    let a = v.abs();
    let e = exp_nonpositive(-2.0 * a);
    let t = (1.0 - e) / (1.0 + e);
    let x2 = v * v;
    // tanh(x) = x - x^3/3 + 2x^5/15 - 17x^7/315 for |x| < 0.0625 (error < 1e-11).
    let small = v * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 - x2 * (17.0 / 315.0))));
    let big = if v < 0.0 { -t } else { t };
    if a < 0.0625 { small } else { big }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm() {
        let mut v = -100.0f32;
        while v <= 0.0 {
            let (got, want) = (exp_nonpositive(v), v.exp());
            assert!((got - want).abs() <= 4e-7 * want + 1e-37, "exp({v}) = {got}, want {want}");
            v += 0.013;
        }
    }

    #[test]
    fn sigmoid_tanh_match_libm() {
        let mut v = -30.0f32;
        while v <= 30.0 {
            let s = 1.0 / (1.0 + (-f64::from(v)).exp());
            assert!((f64::from(sigmoid(v)) - s).abs() < 1e-6, "sigmoid({v})");
            assert!((tanh(v) - v.tanh()).abs() < 1e-6, "tanh({v})");
            v += 0.0071;
        }
        assert!(sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn prelu_row_forms() {
        let mut row = [-1.0, 2.0, -3.0, 4.0];
        FastActivation::PRelu { slope: &[0.5] }.apply_row(&mut row);
        assert_eq!(row, [-0.5, 2.0, -1.5, 4.0]);
        let mut row = [-1.0, -2.0, -3.0, -4.0];
        FastActivation::PRelu { slope: &[1.0, 2.0] }.apply_row(&mut row);
        assert_eq!(row, [-1.0, -4.0, -3.0, -8.0]);
        assert_eq!(FastActivation::PRelu { slope: &[1.0, 2.0] }.channel(1), FastActivation::LeakyRelu { alpha: 2.0 });
        assert!(FastActivation::from_ir(&Activation::PRelu, None).is_err());
    }

    #[test]
    fn clip_inverted_bounds_gives_max() {
        let mut row = [-5.0, 0.0, 5.0];
        FastActivation::Clip { min: 3.0, max: 1.0 }.apply_row(&mut row);
        assert_eq!(row, [1.0, 1.0, 1.0]);
    }
}
