//! Dropout. In [`Mode::Train`] it is inverted dropout: each element is kept with probability
//! `1 - p` and scaled by `1 / (1 - p)`, the mask drawn from a generator seeded per node
//! ([`ForwardArgs::seed`]), so a pass repeats exactly for a tape seed. The mask is kept for the
//! backward rule, `dx = dy · mask / (1 - p)`. `p` is the `ratio` input (a scalar; 0.5, the ONNX
//! default, when absent). A `training_mode` input that is false makes the node the identity,
//! as does [`Mode::Eval`].

use super::{BackwardArgs, ForwardArgs, InputGrads, NodeForward, f32_input};
use crate::error::invalid;
use crate::rng::Rng;
use crate::{Mode, TrainError};
use lithe_ir::{DType, Tensor};
use ndarray::{ArrayD, Zip};

/// The ONNX default drop probability.
const DEFAULT_RATIO: f32 = 0.5;

/// The drop probability of the node: the `ratio` input, checked to lie in `[0, 1)`.
fn ratio(node: &str, inputs: &[Option<&Tensor>]) -> Result<f32, TrainError> {
    let Some(t) = inputs.get(1).copied().flatten() else { return Ok(DEFAULT_RATIO) };
    let v = t.to_f32_vec();
    match v.as_slice() {
        [p] if (0.0..1.0).contains(p) => Ok(*p),
        [p] => Err(invalid(node, format!("dropout ratio {p} is outside [0, 1)"))),
        _ => Err(invalid(node, format!("dropout ratio has {} values, one expected", v.len()))),
    }
}

/// False when a `training_mode` input says so (then the node is the identity in every mode).
fn training_mode(node: &str, inputs: &[Option<&Tensor>]) -> Result<bool, TrainError> {
    match inputs.get(2).copied().flatten() {
        None => Ok(true),
        Some(t) => match t.view::<bool>().map(|a| a.iter().copied().collect::<Vec<_>>()) {
            Some(v) if v.len() == 1 => Ok(v[0]),
            _ => Err(invalid(node, format!("training_mode must be one bool, got {} {:?}", t.dtype(), t.shape()))),
        },
    }
}

/// A generator seed for one node from the tape's seed and the node's id: different nodes draw
/// unrelated masks, and a node's mask does not depend on the order nodes run in.
pub fn node_seed(tape_seed: u64, node_index: usize) -> u64 {
    Rng::new(tape_seed ^ (node_index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

/// A keep mask of `shape` (each element kept with probability `1 - p`) drawn from `seed`.
pub fn keep_mask(shape: &[usize], p: f32, seed: u64) -> ArrayD<bool> {
    let mut rng = Rng::new(seed);
    let p = f64::from(p);
    ArrayD::from_shape_simple_fn(shape, || rng.uniform() >= p)
}

pub(super) fn forward(a: &ForwardArgs<'_>) -> Result<NodeForward, TrainError> {
    let active = a.mode == Mode::Train && training_mode(a.node, a.inputs)?;
    let p = if active { ratio(a.node, a.inputs)? } else { 0.0 };
    if p == 0.0 {
        // The identity (with an all-true mask), for every dtype.
        let outputs = lithe_kernels::reference::eval(a.op, a.inputs, a.num_outputs)
            .map_err(|e| TrainError::Kernel { node: a.node.to_string(), source: e })?;
        return Ok(NodeForward { outputs, bn_stats: None, saved: None });
    }
    let x = f32_input(a.node, a.inputs, 0)?;
    let mask = keep_mask(x.shape(), p, a.seed);
    let scale = 1.0 / (1.0 - p);
    let mut y = x.to_owned();
    Zip::from(&mut y).and(&mask).for_each(|y, &k| *y = if k { *y * scale } else { 0.0 });
    let mut outputs = vec![Tensor::from(y)];
    match a.num_outputs {
        1 => {}
        2 => outputs.push(Tensor::from(mask.clone())),
        n => return Err(invalid(a.node, format!("Dropout has 1 or 2 outputs, {n} requested"))),
    }
    Ok(NodeForward { outputs, bn_stats: None, saved: Some(Tensor::from(mask)) })
}

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let mut g = a.gy(0)?;
    if let Some(mask) = a.saved {
        let m = mask
            .view::<bool>()
            .filter(|m| m.shape() == g.shape() && mask.dtype() == DType::Bool)
            .ok_or_else(|| invalid(a.node, format!("kept mask {:?} for a gradient {:?}", mask.shape(), g.shape())))?;
        let scale = 1.0 / (1.0 - ratio(a.node, a.inputs)?);
        Zip::from(&mut g).and(m).for_each(|g, &k| *g = if k { *g * scale } else { 0.0 });
    }
    let mut out = vec![None; a.inputs.len()];
    out[0] = Some(g);
    Ok(out)
}
