//! Lithe-internal fused ops expanded to standard ONNX:
//! - `Conv` with an [`Epilogue`]: `Conv(X, W, B) [-> Add(residual)] [-> activation]`;
//! - `FullyConnected`: `MatMul(X, W) [-> Add(B)] [-> activation]` (X may have any rank >= 1,
//!   so Gemm's 2-D form is not used; this is also the reference kernel's exact order).
//!
//! Activations: Relu, Clip (bounds as constant inputs of the output's dtype; ReLU6 is
//! `Clip(0, 6)`), LeakyRelu, PRelu (the slope input), HardSwish, HardSigmoid, Sigmoid, Tanh.

use super::NodeCx;
use super::attrs;
use crate::OnnxError;
use lithe_ir::op::{Activation, ConvAttrs, FcAttrs};
use lithe_ir::{DType, Tensor};

/// Names of a chain of nodes whose last one produces the IR node's output.
pub(super) struct Chain {
    out: String,
    remaining: usize,
}

impl Chain {
    /// A chain of `stages` nodes ending in `out`.
    pub(super) fn new(out: String, stages: usize) -> Self {
        Chain { out, remaining: stages }
    }

    /// The output name of the next stage: a fresh name, or the node's output for the last.
    pub(super) fn next(&mut self, cx: &mut NodeCx<'_, '_>, label: &str) -> String {
        self.remaining = self.remaining.saturating_sub(1);
        if self.remaining == 0 { self.out.clone() } else { cx.fresh_value(&self.out, label) }
    }
}

/// The input at `slot` that must be present exactly when `wanted`.
pub(super) fn fused_input(
    cx: &NodeCx<'_, '_>,
    slot: usize,
    wanted: bool,
    what: &str,
) -> Result<Option<String>, OnnxError> {
    match (wanted, cx.opt(slot)) {
        (true, Some(n)) => Ok(Some(n)),
        (false, None) => Ok(None),
        (true, None) => Err(cx.err(format!("the fused {what} (input #{slot}) is missing"))),
        (false, Some(_)) => Err(cx.err(format!("input #{slot} is set but no {what} is fused"))),
    }
}

/// A Conv with a fused epilogue.
pub(super) fn conv(cx: &mut NodeCx<'_, '_>, a: &ConvAttrs) -> Result<(), OnnxError> {
    cx.at_most(5)?;
    let e = a.epilogue;
    let (x, w, b) = (cx.req(0, "X")?, cx.req(1, "W")?, cx.opt(2));
    let residual = fused_input(cx, 3, e.residual, "residual")?;
    let slope = fused_input(cx, 4, e.activation == Activation::PRelu, "PRelu slope")?;
    let out = cx.single_output()?;
    let dtype = cx.output_type(0).map_or(DType::F32, |t| t.dtype);
    let mut chain =
        Chain { out, remaining: 1 + usize::from(residual.is_some()) + usize::from(!e.activation.is_none()) };
    conv_then_epilogue(cx, &mut chain, a, "", [x, w], b, residual, slope, dtype)?;
    Ok(())
}

/// `Conv(x, w, b)` of `a` without its epilogue (node label `label`), then the epilogue's
/// residual Add and activation, each the next stage of `chain`; returns the last value's name.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv_then_epilogue(
    cx: &mut NodeCx<'_, '_>,
    chain: &mut Chain,
    a: &ConvAttrs,
    label: &str,
    [x, w]: [String; 2],
    b: Option<String>,
    residual: Option<String>,
    slope: Option<String>,
    dtype: DType,
) -> Result<String, OnnxError> {
    let mut plain = a.clone();
    plain.epilogue = Default::default();
    let mut cur = chain.next(cx, "conv");
    cx.push(label, "Conv", &[Some(x), Some(w), b], vec![cur.clone()], super::ops::conv_attrs(&plain));
    if let Some(r) = residual {
        let next = chain.next(cx, "residual");
        cx.push("residual", "Add", &[Some(cur), Some(r)], vec![next.clone()], vec![]);
        cur = next;
    }
    if !a.epilogue.activation.is_none() {
        let next = chain.next(cx, "act");
        activation(cx, &a.epilogue.activation, cur, next.clone(), slope, dtype)?;
        cur = next;
    }
    Ok(cur)
}

/// A FullyConnected op.
pub(super) fn fully_connected(cx: &mut NodeCx<'_, '_>, a: &FcAttrs) -> Result<(), OnnxError> {
    cx.at_most(4)?;
    let (x, w, b) = (cx.req(0, "X")?, cx.req(1, "W")?, cx.opt(2));
    let slope = fused_input(cx, 3, a.activation == Activation::PRelu, "PRelu slope")?;
    let out = cx.single_output()?;
    let dtype = cx.output_type(0).map_or(DType::F32, |t| t.dtype);
    let mut chain = Chain { out, remaining: 1 + usize::from(b.is_some()) + usize::from(!a.activation.is_none()) };
    let mut cur = chain.next(cx, "matmul");
    cx.push("matmul", "MatMul", &[Some(x), Some(w)], vec![cur.clone()], vec![]);
    if let Some(b) = b {
        let next = chain.next(cx, "bias");
        cx.push("bias", "Add", &[Some(cur), Some(b)], vec![next.clone()], vec![]);
        cur = next;
    }
    if !a.activation.is_none() {
        let next = chain.next(cx, "act");
        activation(cx, &a.activation, cur, next, slope, dtype)?;
    }
    Ok(())
}

/// The standalone node of a fused activation, reading `x` and writing `y`.
pub(super) fn activation(
    cx: &mut NodeCx<'_, '_>,
    act: &Activation,
    x: String,
    y: String,
    slope: Option<String>,
    dtype: DType,
) -> Result<(), OnnxError> {
    let label = act.name().to_ascii_lowercase();
    let (inputs, a) = match *act {
        Activation::None => return Ok(()),
        Activation::Relu | Activation::HardSwish | Activation::Sigmoid | Activation::Tanh => (vec![Some(x)], vec![]),
        Activation::Clip { min, max } => {
            let lo = cx.initializer("clip_min", &Tensor::scalar(min).cast(dtype));
            let hi = cx.initializer("clip_max", &Tensor::scalar(max).cast(dtype));
            (vec![Some(x), Some(lo), Some(hi)], vec![])
        }
        Activation::LeakyRelu { alpha } => (vec![Some(x)], vec![attrs::float("alpha", alpha)]),
        Activation::PRelu => {
            let s = slope.ok_or_else(|| cx.err("a fused PRelu needs its slope input"))?;
            (vec![Some(x), Some(s)], vec![])
        }
        Activation::HardSigmoid { alpha, beta } => {
            (vec![Some(x)], vec![attrs::float("alpha", alpha), attrs::float("beta", beta)])
        }
    };
    cx.push(&label, act.name(), &inputs, vec![y], a);
    Ok(())
}
