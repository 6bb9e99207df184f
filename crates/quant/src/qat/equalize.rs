//! Activation range equalization in front of depthwise convolutions.
//!
//! A depthwise convolution reads each input channel alone, so a channel whose values use a
//! small part of the activation's per-tensor range is quantized with few levels and nothing
//! averages that error out. When the channel comes from a convolution (optionally through a
//! `Relu`, which commutes with a positive scale), scaling that convolution's output channel
//! `c` by `k_c` and the depthwise filter `c` by `1 / k_c` leaves the fp32 function unchanged
//! and, with per-channel weight quantization, leaves both layers' weight quantization
//! unchanged too (each channel's scale follows its own maximum). Choosing
//! `k_c = max_j m_j / m_c` (`m_c` the channel's max|x| on calibration data) gives every
//! channel the full range of the per-tensor activation quantizer. This is the cross-layer
//! equalization of Nagel et al. (2019, "Data-free quantization through weight equalization
//! and bias correction") with the scales set from activation ranges rather than weight
//! ranges, which is the free choice once the weights are quantized per channel.

use crate::QuantError;
use crate::data::CalibSource;
use crate::ptq::ValueRunner;
use lithe_ir::{Graph, NodeId, Op, Outlet, Tensor};

/// One producer -> (Relu) -> depthwise chain that can be equalized.
struct Chain {
    /// The producing convolution.
    producer: NodeId,
    /// The depthwise convolution.
    depthwise: NodeId,
    /// The depthwise convolution's input (the activation equalized).
    value: Outlet,
    /// Channels.
    channels: usize,
}

/// The single consumer of `o`, when `o` is not a graph output.
fn single_consumer(g: &Graph, o: Outlet) -> Option<NodeId> {
    match g.consumers(o).as_slice() {
        [(id, 0)] if !g.outputs().contains(&o) => Some(*id),
        _ => None,
    }
}

/// A constant input of `id` used by that node only.
fn own_const(g: &Graph, id: NodeId, slot: usize) -> Option<(Outlet, &Tensor)> {
    let o = g.node_inputs(id).get(slot).copied().flatten()?;
    let t = g.const_value(o)?;
    (g.consumers(o).len() == 1).then_some((o, t))
}

/// The depthwise convolutions of `g` whose input channel `c` is output channel `c` of a
/// convolution with its own constant f32 weight and bias, directly or through a `Relu`.
fn chains(g: &Graph, depthwise: &[NodeId]) -> Vec<Chain> {
    let mut out = Vec::new();
    for &d in depthwise {
        let Op::Conv(attrs) = &g.node(d).op else { continue };
        let Some((_, w)) = own_const(g, d, 1) else { continue };
        let channels = w.shape().first().copied().unwrap_or(0);
        if w.shape().get(1) != Some(&1) || attrs.group != channels || channels < 2 {
            continue;
        }
        let Some(value) = g.node_inputs(d).first().copied().flatten() else { continue };
        if single_consumer(g, value) != Some(d) {
            continue;
        }
        let mut producer = value.node;
        if matches!(g.node(producer).op, Op::Relu) {
            let Some(x) = g.node_inputs(producer).first().copied().flatten() else { continue };
            if single_consumer(g, x) != Some(producer) || x.slot != 0 {
                continue;
            }
            producer = x.node;
        }
        let conv_ok = matches!(g.node(producer).op, Op::Conv(_))
            && own_const(g, producer, 1)
                .is_some_and(|(_, t)| t.shape().first() == Some(&channels) && t.view::<f32>().is_some())
            && g.node_inputs(producer).get(2).copied().flatten().is_none_or(|_| {
                own_const(g, producer, 2).is_some_and(|(_, t)| t.shape() == [channels] && t.view::<f32>().is_some())
            });
        if conv_ok && w.view::<f32>().is_some() {
            out.push(Chain { producer, depthwise: d, value, channels });
        }
    }
    out
}

/// Multiply slice `c` (along axis 0) of the constant at `o` by `k[c]`.
fn scale_rows(g: &mut Graph, o: Outlet, k: &[f32]) -> Result<(), QuantError> {
    let t = g.const_value(o).ok_or_else(|| QuantError::Run("equalization: weight is not a constant".into()))?;
    let shape = t.shape().to_vec();
    let mut v = t.to_f32_vec();
    let per = v.len() / k.len().max(1);
    for (c, row) in v.chunks_mut(per.max(1)).enumerate() {
        let s = k.get(c).copied().unwrap_or(1.0);
        row.iter_mut().for_each(|x| *x *= s);
    }
    g.node_mut(o.node).op = Op::Const(Tensor::from_vec(&shape, v)?);
    Ok(())
}

/// Equalize the input channels of the depthwise convolutions among `nodes` (see the module
/// docs) from their per-channel max|x| over `source`; returns how many were equalized. The
/// fp32 function of `g` is unchanged (up to rounding).
pub(crate) fn equalize_depthwise_inputs(
    g: &mut Graph,
    nodes: &[NodeId],
    source: &dyn CalibSource,
    batch_size: usize,
    max_samples: Option<usize>,
) -> Result<usize, QuantError> {
    let chains = chains(g, nodes);
    if chains.is_empty() {
        return Ok(0);
    }
    let values: Vec<Outlet> = chains.iter().map(|c| c.value).collect();
    let mut maxima: Vec<Vec<f32>> = chains.iter().map(|c| vec![0.0; c.channels]).collect();
    let mut bad_shape = false;
    let mut runner = ValueRunner::new(g, &values, 1)?;
    runner.run_source(
        source,
        batch_size,
        max_samples,
        &mut |ts| {
            for (m, t) in maxima.iter_mut().zip(ts) {
                let shape = t.shape();
                if shape.get(1) != Some(&m.len()) {
                    bad_shape = true;
                    continue;
                }
                let inner: usize = shape.iter().skip(2).product::<usize>().max(1);
                for (i, x) in t.to_f32_vec().iter().enumerate() {
                    let c = (i / inner) % m.len();
                    if x.is_finite() {
                        m[c] = m[c].max(x.abs());
                    }
                }
            }
        },
        &mut |_| {},
    )?;
    if bad_shape {
        return Err(QuantError::Run("equalization: a depthwise input is not [N, C, ...]".into()));
    }
    let mut done = 0;
    for (chain, m) in chains.iter().zip(&maxima) {
        let top = m.iter().fold(0.0f32, |a, &b| a.max(b));
        if top <= 0.0 {
            continue;
        }
        // Channels that never fire (or nearly) keep their scale: nothing to gain.
        let k: Vec<f32> = m.iter().map(|&x| if x > 1e-6 * top { top / x } else { 1.0 }).collect();
        let inv: Vec<f32> = k.iter().map(|s| 1.0 / s).collect();
        let ins = g.node_inputs(chain.producer);
        if let Some(w) = ins.get(1).copied().flatten() {
            scale_rows(g, w, &k)?;
        }
        if let Some(b) = ins.get(2).copied().flatten() {
            scale_rows(g, b, &k)?;
        }
        if let Some(w) = g.node_inputs(chain.depthwise).get(1).copied().flatten() {
            scale_rows(g, w, &inv)?;
        }
        done += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qat::LabelledSource;
    use lithe_passes::PassManager;
    use lithe_train::data::Dataset;
    use std::path::PathBuf;

    #[test]
    fn equalizing_dwsep_keeps_its_fp32_outputs_and_equalizes_the_ranges() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mnist");
        let data = Dataset::from_idx(&dir.join("train-images-idx3-ubyte"), &dir.join("train-labels-idx1-ubyte"))
            .unwrap()
            .take(256);
        let source = LabelledSource::new(&data, "input");
        let opts = lithe_onnx::ImportOptions::default();
        let mut g = lithe_onnx::load_model(&dir.join("dwsep.onnx"), &opts).unwrap();
        let mut passes = PassManager::default_pipeline();
        for p in ["fuse_conv_residual", "fuse_activation", "fuse_qdq_conv"] {
            passes.disable(p).unwrap();
        }
        passes.run(&mut g).unwrap();
        let plain = g.clone();
        let nodes = g.node_ids();
        let n = equalize_depthwise_inputs(&mut g, &nodes, &source, 64, None).unwrap();
        assert!(n >= 1, "dwsep has a conv -> relu -> depthwise chain");
        let a = crate::eval::outputs(&plain, &source, 64, None, 1).unwrap();
        let b = crate::eval::outputs(&g, &source, 64, None, 1).unwrap();
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((x - y).abs() <= 1e-3 * x.abs().max(1.0), "{x} vs {y}");
        }
        // Every equalized input now has all its channels at the same maximum.
        for chain in chains(&g, &nodes) {
            let mut m = vec![0.0f32; chain.channels];
            let mut runner = ValueRunner::new(&g, &[chain.value], 1).unwrap();
            runner
                .run_source(
                    &source,
                    64,
                    None,
                    &mut |ts| {
                        let inner: usize = ts[0].shape().iter().skip(2).product();
                        for (i, x) in ts[0].to_f32_vec().iter().enumerate() {
                            let c = (i / inner) % m.len();
                            m[c] = m[c].max(x.abs());
                        }
                    },
                    &mut |_| {},
                )
                .unwrap();
            let top = m.iter().fold(0.0f32, |a, &b| a.max(b));
            assert!(m.iter().all(|&x| x == 0.0 || x >= 0.999 * top), "{m:?}");
        }
    }
}
