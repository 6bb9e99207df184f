//! Bias correction: after int8 rounding, each output channel's mean shifts by
//! `Σ_k ΔW[c, k] · E[x_k]` (ΔW the weights' rounding error, `E[x_k]` the mean of the input seen
//! at tap `k` over the calibration data, padding counted as zero). Subtracting that from the
//! bias removes the systematic error that otherwise accumulates through deep nets (it matters
//! most for depthwise convs, whose 9 weights per channel do not average rounding out).

use crate::QuantError;
use lithe_ir::op::AutoPad;
use lithe_ir::{Graph, NodeId, Op, Tensor};
use ndarray::ArrayD;

/// Mean input per weight tap of one node, accumulated over calibration batches.
pub struct TapMeans {
    shape: TapShape,
    sums: Vec<f64>,
    count: f64,
}

enum TapShape {
    /// A 2-D conv: sums per (input channel, kh, kw).
    Conv { channels: usize, kernel: [usize; 2], stride: [usize; 2], dilation: [usize; 2], pad: [usize; 2] },
    /// A fully connected layer: sums per input feature.
    Dense { features: usize },
}

impl TapMeans {
    /// The accumulator for node `id`, when bias correction applies to it (2-D Conv without
    /// auto padding, or FullyConnected).
    pub fn for_node(graph: &Graph, id: NodeId) -> Option<TapMeans> {
        let inputs = graph.node_inputs(id);
        let w = graph.const_value(inputs.get(1).copied().flatten()?)?;
        let shape = match &graph.node(id).op {
            Op::Conv(c) if w.shape().len() == 4 && c.auto_pad == AutoPad::NotSet => {
                let at = |v: &[usize], i: usize, d: usize| v.get(i).copied().unwrap_or(d);
                let channels = w.shape()[1] * c.group.max(1);
                TapShape::Conv {
                    channels,
                    kernel: [w.shape()[2], w.shape()[3]],
                    stride: [at(&c.strides, 0, 1), at(&c.strides, 1, 1)],
                    dilation: [at(&c.dilations, 0, 1), at(&c.dilations, 1, 1)],
                    pad: [at(&c.pads, 0, 0), at(&c.pads, 1, 0)],
                }
            }
            Op::FullyConnected(_) if w.shape().len() == 2 => TapShape::Dense { features: w.shape()[0] },
            _ => return None,
        };
        let n = match &shape {
            TapShape::Conv { channels, kernel, .. } => channels * kernel[0] * kernel[1],
            TapShape::Dense { features } => *features,
        };
        Some(TapMeans { shape, sums: vec![0.0; n], count: 0.0 })
    }

    /// Add one batch of the node's input.
    pub fn observe(&mut self, t: &Tensor) {
        let Some(view) = t.view::<f32>() else { return };
        let Some(x) = view.as_slice() else { return };
        match &self.shape {
            TapShape::Dense { features } => {
                let k = *features;
                if k == 0 || x.len() % k != 0 {
                    return;
                }
                for row in x.chunks_exact(k) {
                    for (s, &v) in self.sums.iter_mut().zip(row) {
                        *s += f64::from(v);
                    }
                }
                self.count += (x.len() / k) as f64;
            }
            TapShape::Conv { channels, kernel, stride, dilation, pad } => {
                let &[n, c, h, w] = t.shape() else { return };
                if c != *channels {
                    return;
                }
                let out = |size: usize, i: usize| {
                    let span = dilation[i] * (kernel[i] - 1) + 1;
                    (size + 2 * pad[i]).checked_sub(span).map(|r| r / stride[i] + 1)
                };
                let (Some(ho), Some(wo)) = (out(h, 0), out(w, 1)) else { return };
                let taps = kernel[0] * kernel[1];
                if h == 0 || w == 0 {
                    return;
                }
                for (idx, plane) in x.chunks_exact(h * w).take(n * c).enumerate() {
                    let ch = idx % c;
                    for kh in 0..kernel[0] {
                        for kw in 0..kernel[1] {
                            let mut s = 0.0f64;
                            for oh in 0..ho {
                                let r = (oh * stride[0] + kh * dilation[0]) as isize - pad[0] as isize;
                                if r < 0 || r >= h as isize {
                                    continue;
                                }
                                let row = &plane[r as usize * w..(r as usize + 1) * w];
                                for ow in 0..wo {
                                    let col = (ow * stride[1] + kw * dilation[1]) as isize - pad[1] as isize;
                                    if col >= 0 && col < w as isize {
                                        s += f64::from(row[col as usize]);
                                    }
                                }
                            }
                            self.sums[ch * taps + kh * kernel[1] + kw] += s;
                        }
                    }
                }
                self.count += (n * ho * wo) as f64;
            }
        }
    }

    /// Subtract the mean shift caused by replacing `w` with `w_rounded` from node `id`'s bias
    /// (a zero bias is added when the node has none). Nothing happens before any data was seen.
    pub fn correct(
        &self,
        graph: &mut Graph,
        id: NodeId,
        w: &ArrayD<f32>,
        w_rounded: &ArrayD<f32>,
    ) -> Result<(), QuantError> {
        if self.count == 0.0 {
            return Ok(());
        }
        let means: Vec<f64> = self.sums.iter().map(|s| s / self.count).collect();
        let delta: Vec<f64> = w_rounded.iter().zip(w.iter()).map(|(q, f)| f64::from(*q) - f64::from(*f)).collect();
        let shift: Vec<f64> = match &self.shape {
            TapShape::Conv { channels, kernel, .. } => {
                let (co, per_out) = (w.shape()[0], w.shape()[1] * kernel[0] * kernel[1]);
                let group_channels = w.shape()[1];
                let groups = channels / group_channels.max(1);
                let outs_per_group = co / groups.max(1);
                (0..co)
                    .map(|c| {
                        let g = c / outs_per_group.max(1);
                        let taps = &means[g * per_out..(g + 1) * per_out];
                        delta[c * per_out..(c + 1) * per_out].iter().zip(taps).map(|(d, m)| d * m).sum()
                    })
                    .collect()
            }
            TapShape::Dense { features } => {
                let n = w.shape()[1];
                (0..n).map(|j| (0..*features).map(|k| delta[k * n + j] * means[k]).sum()).collect()
            }
        };
        let name = graph.node(id).name.clone();
        let bias_slot = graph.node_inputs(id).get(2).copied().flatten();
        let old: Vec<f32> = match bias_slot.and_then(|o| graph.const_value(o)) {
            Some(b) if b.len() == shift.len() => b.to_f32_vec(),
            Some(_) => return Ok(()),
            None if bias_slot.is_some() => return Ok(()),
            None => vec![0.0; shift.len()],
        };
        let corrected: Vec<f32> = old.iter().zip(&shift).map(|(b, s)| (f64::from(*b) - s) as f32).collect();
        let c = graph.add_const(format!("{name}.corrected_bias"), Tensor::from_vec(&[corrected.len()], corrected)?);
        graph.set_input(id, 2, Some(c))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lithe_ir::op::ConvAttrs;
    use lithe_ir::{DType, TypeInfo};

    fn conv_graph(c: usize, group: usize, stride: usize, pad: usize, dilation: usize) -> (Graph, NodeId) {
        let mut g = Graph::new("g");
        let x = g.add_input("x", TypeInfo::new(DType::F32, [2, c, 7, 6]));
        let w = g.add_const("w", Tensor::from_vec(&[4, c / group, 3, 3], vec![0.5f32; 4 * c / group * 9]).unwrap());
        let attrs = ConvAttrs {
            kernel_shape: None,
            strides: vec![stride, stride],
            dilations: vec![dilation, dilation],
            pads: vec![pad, pad, pad, pad],
            group,
            ..ConvAttrs::default()
        };
        let y = g.add_node_inferred("conv", Op::Conv(attrs), &[Some(x), Some(w)], 1).unwrap()[0];
        g.set_outputs(vec![y]);
        (g, y.node)
    }

    #[test]
    fn tap_means_equal_a_brute_force_over_output_positions() {
        for (c, group, stride, pad, dilation) in [(2, 1, 1, 1, 1), (4, 4, 2, 1, 1), (2, 2, 2, 0, 2), (3, 1, 1, 2, 2)] {
            let (g, id) = conv_graph(c, group, stride, pad, dilation);
            let mut m = TapMeans::for_node(&g, id).unwrap();
            let (n, h, w) = (2, 7, 6);
            let data: Vec<f32> = (0..n * c * h * w).map(|i| ((i * 37 % 101) as f32) * 0.1 - 3.0).collect();
            let x = Tensor::from_vec(&[n, c, h, w], data.clone()).unwrap();
            m.observe(&x);
            let span = dilation * 2 + 1;
            let (ho, wo) = ((h + 2 * pad - span) / stride + 1, (w + 2 * pad - span) / stride + 1);
            for ch in 0..c {
                for kh in 0..3 {
                    for kw in 0..3 {
                        let mut s = 0.0f64;
                        for b in 0..n {
                            for oh in 0..ho {
                                for ow in 0..wo {
                                    let r = (oh * stride + kh * dilation) as isize - pad as isize;
                                    let q = (ow * stride + kw * dilation) as isize - pad as isize;
                                    if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                                        s += f64::from(data[((b * c + ch) * h + r as usize) * w + q as usize]);
                                    }
                                }
                            }
                        }
                        let got = m.sums[ch * 9 + kh * 3 + kw];
                        assert!((got - s).abs() < 1e-6, "c{ch} k{kh}{kw}: {got} vs {s}");
                    }
                }
            }
            assert_eq!(m.count, (n * ho * wo) as f64);
        }
    }

    #[test]
    fn correction_cancels_the_mean_shift_of_rounded_weights() {
        // One input channel of constant value 2 (no padding): the output shift of a weight
        // error d on every tap is 9 * d * 2 per output channel.
        let (mut g, id) = conv_graph(1, 1, 1, 0, 1);
        let mut m = TapMeans::for_node(&g, id).unwrap();
        m.observe(&Tensor::from_vec(&[2, 1, 7, 6], vec![2.0f32; 84]).unwrap());
        let w = ArrayD::from_elem(vec![4, 1, 3, 3], 0.5f32);
        let rounded = ArrayD::from_elem(vec![4, 1, 3, 3], 0.51f32);
        m.correct(&mut g, id, &w, &rounded).unwrap();
        let b = g.const_value(g.node_inputs(id)[2].unwrap()).unwrap().to_f32_vec();
        for v in b {
            assert!((v + 9.0 * 0.01 * 2.0).abs() < 1e-5, "{v}");
        }
    }
}
