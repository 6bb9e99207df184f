//! Per-channel affine rewrites: `fold_batch_norm`, `batch_norm_to_affine` and `fold_conv_affine`.
//!
//! A BatchNormalization in inference mode is the per-channel map `y -> s[c] * y + t[c]` with
//! `s = scale / sqrt(var + eps)` and `t = bias - mean * s`. After an op with constant weights
//! (Conv, ConvTranspose, Gemm, FullyConnected) that map folds into new weight and bias
//! constants; elsewhere it becomes a Mul and an Add. A constant per-channel Mul/Add/Sub/Div
//! after such an op folds the same way. Folded parameters are computed in f64 and always go
//! into new constants: the old ones may be shared with other nodes.

use crate::util::{absorb, const_input, fresh_name, input_at, single_consumer};
use crate::{Pass, PassError};
use lithe_ir::{DType, Dim, Graph, IrError, NodeId, Op, Outlet, Tensor};

/// A per-channel map `y -> scale[c] * y + shift[c]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChannelAffine {
    /// Multiplier per channel.
    pub scale: Vec<f64>,
    /// Offset per channel (added after the multiplier).
    pub shift: Vec<f64>,
}

impl ChannelAffine {
    /// The map, when every coefficient is finite.
    fn new(scale: Vec<f64>, shift: Vec<f64>) -> Option<ChannelAffine> {
        let finite = scale.iter().chain(&shift).all(|v| v.is_finite());
        (finite && scale.len() == shift.len()).then_some(ChannelAffine { scale, shift })
    }

    fn channels(&self) -> usize {
        self.scale.len()
    }
}

/// The elements of an unquantized f32 tensor as f64, in row-major order.
pub(crate) fn f64_values(t: &Tensor) -> Option<Vec<f64>> {
    if t.quant.is_some() {
        return None;
    }
    Some(t.as_f32()?.iter().map(|&v| f64::from(v)).collect())
}

/// An f32 tensor from f64 values; `None` when a value does not fit f32 or the shape is wrong.
pub(crate) fn f32_tensor(shape: &[usize], values: Vec<f64>) -> Option<Tensor> {
    let v: Vec<f32> = values.into_iter().map(|x| x as f32).collect();
    if v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    Tensor::from_vec(shape, v).ok()
}

/// The per-channel values of a constant `t` broadcast against an output of rank `rank` whose
/// channel axis is `axis` with `channels` entries: `t` must not raise the rank and must be 1
/// along every axis but `axis` (so broadcasting leaves the output shape unchanged). A
/// one-element `t` gives the same value for every channel.
pub(crate) fn channel_values(t: &Tensor, rank: usize, axis: usize, channels: usize) -> Option<Vec<f64>> {
    let shape = t.shape();
    if shape.len() > rank || axis >= rank || channels == 0 {
        return None;
    }
    let offset = rank - shape.len();
    let fits = shape.iter().enumerate().all(|(i, &d)| d == 1 || (offset + i == axis && d == channels));
    if !fits {
        return None;
    }
    let v = f64_values(t)?;
    match v.len() {
        1 => Some(vec![v[0]; channels]),
        n if n == channels => Some(v),
        _ => None,
    }
}

/// The rank of the value at `o` when known.
pub(crate) fn known_rank(g: &Graph, o: Outlet) -> Option<usize> {
    g.value(o).ty.shape.as_ref().map(|s| s.rank())
}

/// The per-channel map of a BatchNormalization with constant f32 `[C]` parameters.
fn batch_norm_affine(g: &Graph, bn: NodeId, epsilon: f32) -> Option<ChannelAffine> {
    let param = |slot: usize| -> Option<Vec<f64>> {
        let t = const_input(g, bn, slot)?;
        if t.shape().len() != 1 {
            return None;
        }
        f64_values(t)
    };
    let (scale, bias, mean, var) = (param(1)?, param(2)?, param(3)?, param(4)?);
    let c = scale.len();
    if c == 0 || bias.len() != c || mean.len() != c || var.len() != c {
        return None;
    }
    let eps = f64::from(epsilon);
    let s: Vec<f64> = scale.iter().zip(&var).map(|(&k, &v)| k / (v + eps).sqrt()).collect();
    let t: Vec<f64> = bias.iter().zip(&mean).zip(&s).map(|((&b, &m), &k)| b - m * k).collect();
    ChannelAffine::new(s, t)
}

/// Where a foldable producer keeps its output channels: `(axis, channels)` of its output.
fn channel_layout(g: &Graph, prod: NodeId) -> Option<(usize, usize)> {
    let node = g.get_node(prod)?;
    let w = const_input(g, prod, 1)?.shape();
    match &node.op {
        Op::Conv(_) => Some((1, *w.first()?)),
        Op::ConvTranspose(t) => {
            let per_group = *w.get(1)?;
            Some((1, per_group.checked_mul(t.conv.group)?))
        }
        Op::Gemm(a) => {
            let n = if a.trans_b { *w.first()? } else { *w.get(1)? };
            Some((1, n))
        }
        Op::FullyConnected(_) => {
            let rank = known_rank(g, Outlet::new(prod, 0))?;
            Some((rank.checked_sub(1)?, *w.get(1)?))
        }
        _ => None,
    }
}

/// New weight, bias and op of a producer whose output gets a per-channel map applied.
struct Refolded {
    weight: Tensor,
    bias: Tensor,
    op: Op,
}

/// A constant's shape and its values as f64.
type ShapedValues = (Vec<usize>, Vec<f64>);

/// The optional f32 constant at `slot` of `node`: `Some(None)` when absent, `None` when
/// present but not an f32 constant.
fn optional_const(g: &Graph, node: NodeId, slot: usize) -> Option<Option<ShapedValues>> {
    match input_at(g, node, slot) {
        None => Some(None),
        Some(o) => {
            let t = g.const_value(o)?;
            Some(Some((t.shape().to_vec(), f64_values(t)?)))
        }
    }
}

/// `scale * b + shift` for a `[C]` bias (or zeros when absent).
fn affine_bias(bias: Option<ShapedValues>, aff: &ChannelAffine) -> Option<Tensor> {
    let c = aff.channels();
    let b = match bias {
        None => vec![0.0; c],
        Some((shape, v)) if shape == [c] => v,
        Some(_) => return None,
    };
    let out = b.iter().zip(&aff.scale).zip(&aff.shift).map(|((&b, &s), &t)| s * b + t).collect();
    f32_tensor(&[c], out)
}

/// The producer's parameters with `aff` folded in, when the producer allows it.
fn refold(g: &Graph, prod: NodeId, aff: &ChannelAffine) -> Option<Refolded> {
    let node = g.get_node(prod)?;
    if node.outputs.len() != 1 || node.outputs[0].ty.dtype != DType::F32 {
        return None;
    }
    let wt = const_input(g, prod, 1)?;
    let ws = wt.shape().to_vec();
    let mut w = f64_values(wt)?;
    let c = aff.channels();
    let bias = optional_const(g, prod, 2)?;
    match &node.op {
        Op::Conv(a) if a.epilogue.is_empty() => {
            if ws.first() != Some(&c) {
                return None;
            }
            let inner = w.len() / c;
            for (i, v) in w.iter_mut().enumerate() {
                *v *= aff.scale[i / inner.max(1)];
            }
            Some(Refolded { weight: f32_tensor(&ws, w)?, bias: affine_bias(bias, aff)?, op: node.op.clone() })
        }
        Op::ConvTranspose(t) if t.conv.epilogue.is_empty() => {
            let groups = t.conv.group;
            let (c_in, per_group) = (*ws.first()?, *ws.get(1)?);
            if groups == 0 || c_in % groups != 0 || per_group.checked_mul(groups) != Some(c) {
                return None;
            }
            let in_per_group = c_in / groups;
            let inner: usize = ws[2..].iter().product();
            for (i, v) in w.iter_mut().enumerate() {
                let block = i / inner.max(1);
                let (ci, j) = (block / per_group, block % per_group);
                *v *= aff.scale[(ci / in_per_group) * per_group + j];
            }
            Some(Refolded { weight: f32_tensor(&ws, w)?, bias: affine_bias(bias, aff)?, op: node.op.clone() })
        }
        Op::FullyConnected(f) if f.activation.is_none() => {
            if ws.len() != 2 || ws[1] != c {
                return None;
            }
            for (i, v) in w.iter_mut().enumerate() {
                *v *= aff.scale[i % c];
            }
            Some(Refolded { weight: f32_tensor(&ws, w)?, bias: affine_bias(bias, aff)?, op: node.op.clone() })
        }
        Op::Gemm(a) => {
            if ws.len() != 2 {
                return None;
            }
            let n = if a.trans_b { ws[0] } else { ws[1] };
            if n != c {
                return None;
            }
            let cols = ws[1];
            for (i, v) in w.iter_mut().enumerate() {
                let ch = if a.trans_b { i / cols } else { i % cols };
                *v *= aff.scale[ch];
            }
            let bias = gemm_bias(bias, f64::from(a.beta), aff)?;
            let op = Op::Gemm(lithe_ir::op::GemmAttrs { beta: 1.0, ..a.clone() });
            Some(Refolded { weight: f32_tensor(&ws, w)?, bias, op })
        }
        _ => None,
    }
}

/// The new C of a Gemm whose `[M, N]` output gets `aff` over its columns, to be used with
/// `beta = 1`: `scale * beta * C + shift`, shaped `[N]` or `[M, N]` as C's broadcast needs.
fn gemm_bias(c: Option<ShapedValues>, beta: f64, aff: &ChannelAffine) -> Option<Tensor> {
    let n = aff.channels();
    let Some((shape, v)) = c.filter(|_| beta != 0.0) else {
        return f32_tensor(&[n], aff.shift.clone());
    };
    let (rows, cols) = match shape.as_slice() {
        [] => (1, 1),
        [cn] => (1, *cn),
        [cm, cn] => (*cm, *cn),
        _ => return None,
    };
    if cols != 1 && cols != n {
        return None;
    }
    let mut out = Vec::with_capacity(rows * n);
    for r in 0..rows {
        for j in 0..n {
            let cv = v.get(r * cols + if cols == 1 { 0 } else { j })?;
            out.push(aff.scale[j] * beta * cv + aff.shift[j]);
        }
    }
    if rows == 1 { f32_tensor(&[n], out) } else { f32_tensor(&[rows, n], out) }
}

/// Put the refolded parameters into new constants and make `prod` use them.
fn apply_refold(g: &mut Graph, prod: NodeId, r: Refolded) -> Result<(), IrError> {
    let base = g.node(prod).name.clone();
    let w = g.add_const(fresh_name(g, &format!("{base}.folded_weight")), r.weight);
    let b = g.add_const(fresh_name(g, &format!("{base}.folded_bias")), r.bias);
    g.set_input(prod, 1, Some(w))?;
    g.set_input(prod, 2, Some(b))?;
    g.node_mut(prod).op = r.op;
    Ok(())
}

/// Fold `aff` (applied by node `gone` to the output of `prod`) into `prod`; `gone` disappears.
fn fold_into(g: &mut Graph, prod: NodeId, gone: NodeId, r: Refolded) -> Result<(), IrError> {
    apply_refold(g, prod, r)?;
    absorb(g, Outlet::new(prod, 0), Outlet::new(gone, 0))?;
    g.remove_node(gone);
    Ok(())
}

/// The producer of input 0 of `node` when `node` is its only reader, with that outlet.
fn sole_producer(g: &Graph, node: NodeId, slot: usize) -> Option<NodeId> {
    let x = input_at(g, node, slot)?;
    (x.slot == 0 && single_consumer(g, x).map(|(n, _)| n) == Some(node)).then_some(x.node)
}

/// Fold BatchNormalization into the preceding Conv, ConvTranspose, Gemm or FullyConnected.
#[derive(Debug, Default)]
pub struct FoldBatchNorm;

impl FoldBatchNorm {
    fn try_fold(g: &mut Graph, bn: NodeId) -> Result<bool, IrError> {
        let Some(node) = g.get_node(bn) else { return Ok(false) };
        let Op::BatchNormalization { epsilon } = node.op else { return Ok(false) };
        if node.outputs.len() != 1 {
            return Ok(false);
        }
        let Some(aff) = batch_norm_affine(g, bn, epsilon) else { return Ok(false) };
        let Some(prod) = sole_producer(g, bn, 0) else { return Ok(false) };
        if channel_layout(g, prod) != Some((1, aff.channels())) {
            return Ok(false);
        }
        let Some(r) = refold(g, prod, &aff) else { return Ok(false) };
        tracing::debug!(bn = %g.node(bn).name, into = %g.node(prod).name, "folded BatchNormalization");
        fold_into(g, prod, bn, r)?;
        Ok(true)
    }
}

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold_batch_norm"
    }
    fn description(&self) -> &'static str {
        "fold BatchNormalization into the preceding Conv, ConvTranspose, Gemm or FullyConnected"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, Self::try_fold)
    }
}

/// Turn a remaining BatchNormalization into a per-channel multiply-add.
#[derive(Debug, Default)]
pub struct BatchNormToAffine;

impl BatchNormToAffine {
    fn try_lower(g: &mut Graph, bn: NodeId) -> Result<bool, IrError> {
        let Some(node) = g.get_node(bn) else { return Ok(false) };
        let Op::BatchNormalization { epsilon } = node.op else { return Ok(false) };
        if node.outputs.len() != 1 {
            return Ok(false);
        }
        let Some(x) = input_at(g, bn, 0) else { return Ok(false) };
        let ty = &g.value(x).ty;
        let Some(rank) = ty.shape.as_ref().map(|s| s.rank()) else { return Ok(false) };
        if ty.dtype != DType::F32 || rank < 2 {
            return Ok(false);
        }
        let Some(aff) = batch_norm_affine(g, bn, epsilon) else { return Ok(false) };
        let c = aff.channels();
        if let Some(Dim::Known(xc)) = ty.shape.as_ref().and_then(|s| s.dims().get(1))
            && *xc != c
        {
            return Ok(false);
        }
        let mut shape = vec![c];
        shape.resize(rank - 1, 1);
        let (Some(s), Some(t)) = (f32_tensor(&shape, aff.scale), f32_tensor(&shape, aff.shift)) else {
            return Ok(false);
        };
        let base = node.name.clone();
        let s = g.add_const(fresh_name(g, &format!("{base}.affine_scale")), s);
        let t = g.add_const(fresh_name(g, &format!("{base}.affine_shift")), t);
        let mul = g.add_node_inferred(fresh_name(g, &format!("{base}.mul")), Op::Mul, &[Some(x), Some(s)], 1)?;
        let add = g.add_node_inferred(fresh_name(g, &format!("{base}.add")), Op::Add, &[Some(mul[0]), Some(t)], 1)?;
        tracing::debug!(bn = %base, "BatchNormalization lowered to Mul + Add");
        absorb(g, add[0], Outlet::new(bn, 0))?;
        g.remove_node(bn);
        Ok(true)
    }
}

impl Pass for BatchNormToAffine {
    fn name(&self) -> &'static str {
        "batch_norm_to_affine"
    }
    fn description(&self) -> &'static str {
        "turn a remaining BatchNormalization into a per-channel multiply-add"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, Self::try_lower)
    }
}

/// Fold a constant per-channel (or scalar) Mul, Add, Sub or Div after a Conv, ConvTranspose,
/// Gemm or FullyConnected into its weights and bias.
#[derive(Debug, Default)]
pub struct FoldConvAffine;

impl FoldConvAffine {
    /// The affine map of elementwise node `e` reading the producer output at `slot`, and the
    /// producer.
    fn matched(g: &Graph, e: NodeId) -> Option<(NodeId, ChannelAffine)> {
        let node = g.get_node(e)?;
        if node.outputs.len() != 1 || node.num_inputs != 2 {
            return None;
        }
        let commutative = matches!(node.op, Op::Mul | Op::Add);
        if !commutative && !matches!(node.op, Op::Sub | Op::Div) {
            return None;
        }
        let slots: &[usize] = if commutative { &[0, 1] } else { &[0] };
        for &slot in slots {
            let Some(prod) = sole_producer(g, e, slot) else { continue };
            let Some(c) = const_input(g, e, 1 - slot) else { continue };
            let Some((axis, channels)) = channel_layout(g, prod) else { continue };
            let Some(rank) = known_rank(g, Outlet::new(prod, 0)) else { continue };
            let Some(v) = channel_values(c, rank, axis, channels) else { continue };
            let (scale, shift) = match node.op {
                Op::Mul => (v, vec![0.0; channels]),
                Op::Add => (vec![1.0; channels], v),
                Op::Sub => (vec![1.0; channels], v.iter().map(|x| -x).collect()),
                _ => {
                    if v.contains(&0.0) {
                        continue;
                    }
                    (v.iter().map(|x| 1.0 / x).collect(), vec![0.0; channels])
                }
            };
            if let Some(aff) = ChannelAffine::new(scale, shift) {
                return Some((prod, aff));
            }
        }
        None
    }

    fn try_fold(g: &mut Graph, e: NodeId) -> Result<bool, IrError> {
        let Some((prod, aff)) = Self::matched(g, e) else { return Ok(false) };
        let Some(r) = refold(g, prod, &aff) else { return Ok(false) };
        tracing::debug!(node = %g.node(e).name, into = %g.node(prod).name, "folded constant per-channel op");
        fold_into(g, prod, e, r)?;
        Ok(true)
    }
}

impl Pass for FoldConvAffine {
    fn name(&self) -> &'static str {
        "fold_conv_affine"
    }
    fn description(&self) -> &'static str {
        "fold a constant per-channel Mul/Add/Sub/Div after a Conv, ConvTranspose, Gemm or FC into its weights"
    }
    fn run(&self, graph: &mut Graph) -> Result<usize, PassError> {
        crate::manager::rewrite_each_node(self.name(), graph, Self::try_fold)
    }
}
