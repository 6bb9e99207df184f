//! Data-movement ops whose outputs are input elements (or fill values): Slice (negative steps
//! included), Split, Pad (every mode; negative pads crop), Gather (on the data input), Expand
//! and nearest-neighbour Resize (every coordinate transform but `tf_crop_and_resize`, whose
//! extrapolated positions read no input).
//!
//! The gradient is a scatter-add through an index map: the op is run by the reference kernel
//! on an i64 tensor of the input's shape holding each element's flat index (and `-1` as the
//! pad value), which gives, per output element, the input element it was read from (or none).
//! `dx[map[o]] += dy[o]` then sums every output that read an input element, so repeated reads
//! (Expand, repeated Gather indices, reflect padding) add up.

use super::{BackwardArgs, InputGrads};
use crate::TrainError;
use crate::error::invalid;
use lithe_ir::op::{CoordTransform, ResizeAttrs, ResizeMode};
use lithe_ir::{Op, Tensor};
use ndarray::{ArrayD, IxDyn};

/// True when a Resize only copies input elements (nearest mode, no extrapolation).
pub(super) fn resize_is_nearest(attrs: &ResizeAttrs) -> bool {
    attrs.mode == ResizeMode::Nearest && attrs.coord != CoordTransform::TfCropAndResize
}

/// An i64 tensor of `shape` whose elements are their own row-major flat index.
fn flat_indices(node: &str, shape: &[usize]) -> Result<Tensor, TrainError> {
    let len: usize = shape.iter().product();
    let idx: Vec<i64> = (0..len as i64).collect();
    Tensor::from_vec(shape, idx).map_err(|e| invalid(node, e.to_string()))
}

/// Run the node's op on the index tensor in place of input 0; one map per output.
fn index_maps(a: &BackwardArgs<'_>, op: &Op) -> Result<Vec<Tensor>, TrainError> {
    let data = a.inputs.first().copied().flatten().ok_or_else(|| invalid(a.node, "input 0 is missing"))?;
    let idx = flat_indices(a.node, data.shape())?;
    let fill = Tensor::scalar(-1i64);
    let mut ins: Vec<Option<&Tensor>> = a.inputs.to_vec();
    ins[0] = Some(&idx);
    // Pad's constant value (slot 2) must have the data's dtype: the map marks padding with -1.
    if matches!(op, Op::Pad { .. }) {
        ins.resize(ins.len().max(3), None);
        ins[2] = Some(&fill);
    }
    lithe_kernels::reference::eval(op, &ins, a.outputs.len())
        .map_err(|e| TrainError::Kernel { node: a.node.to_string(), source: e })
}

/// `dx[map[o]] += dy[o]` over every output with a gradient; `dx` has input 0's shape.
fn scatter(a: &BackwardArgs<'_>, maps: &[Tensor]) -> Result<ArrayD<f32>, TrainError> {
    let shape = a.x(0)?.shape().to_vec();
    let mut dx = vec![0f32; shape.iter().product()];
    for (slot, map) in maps.iter().enumerate() {
        let Some(Some(g)) = a.grads.get(slot) else { continue };
        if g.shape() != map.shape() {
            return Err(invalid(
                a.node,
                format!("output {slot} gradient {:?} for an output {:?}", g.shape(), map.shape()),
            ));
        }
        let map = map.view::<i64>().ok_or_else(|| invalid(a.node, "index map is not i64"))?;
        for (&m, &gv) in map.iter().zip(g.iter()) {
            if let Ok(m) = usize::try_from(m) {
                let d = dx.get_mut(m).ok_or_else(|| invalid(a.node, format!("index {m} outside the input")))?;
                *d += gv;
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&shape), dx).map_err(|e| invalid(a.node, e.to_string()))
}

pub(super) fn backward(a: &BackwardArgs<'_>) -> Result<InputGrads, TrainError> {
    let maps = index_maps(a, a.op)?;
    let dx = scatter(a, &maps)?;
    let mut out = vec![None; a.inputs.len()];
    out[0] = Some(dx);
    Ok(out)
}
