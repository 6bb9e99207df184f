//! Split: cut a tensor into pieces along an axis.

use super::util::{axis_index, index_list, invalid, keep_quant};
use crate::KernelError;
use lithe_ir::{Tensor, dispatch_view};
use ndarray::{Axis, Slice};

/// The piece sizes of a Split: the i64 `split` input (one non-negative size per output, summing
/// to `dim`), or `num_outputs` pieces of `ceil(dim / num_outputs)` with the last one smaller.
pub fn split_sizes(dim: usize, split: Option<&Tensor>, num_outputs: usize) -> Result<Vec<usize>, KernelError> {
    const OP: &str = "Split";
    if num_outputs == 0 {
        return Err(invalid(OP, "num_outputs must be at least 1"));
    }
    match split {
        Some(t) => {
            let spec = index_list(OP, "split", t)?;
            if spec.len() != num_outputs {
                return Err(invalid(
                    OP,
                    format!("split {spec:?} has {} entries for {num_outputs} outputs", spec.len()),
                ));
            }
            let sizes = spec
                .iter()
                .map(|&s| usize::try_from(s).map_err(|_| invalid(OP, format!("split {spec:?} has a negative size"))))
                .collect::<Result<Vec<usize>, _>>()?;
            let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
            if total != Some(dim) {
                return Err(invalid(OP, format!("split {spec:?} does not sum to the axis size {dim}")));
            }
            Ok(sizes)
        }
        None => {
            let chunk = dim.div_ceil(num_outputs);
            let last = chunk.checked_mul(num_outputs - 1).and_then(|used| dim.checked_sub(used)).ok_or_else(|| {
                invalid(OP, format!("axis size {dim} cannot be split into {num_outputs} pieces of {chunk}"))
            })?;
            let mut sizes = vec![chunk; num_outputs - 1];
            sizes.push(last);
            Ok(sizes)
        }
    }
}

/// Split `input` along `axis` (negative counts from the end) into `num_outputs` pieces sized by
/// [`split_sizes`].
pub fn split(
    input: &Tensor,
    split: Option<&Tensor>,
    axis: i64,
    num_outputs: usize,
) -> Result<Vec<Tensor>, KernelError> {
    let ax = axis_index("Split", axis, input.shape().len())?;
    let dim = input.shape().get(ax).copied().unwrap_or(0);
    let sizes = split_sizes(dim, split, num_outputs)?;
    let mut start = 0usize;
    let mut out = Vec::with_capacity(sizes.len());
    for s in sizes {
        let end = start + s;
        let piece = dispatch_view!(&input.data_view(), a => {
            Tensor::from(a.slice_axis(Axis(ax), Slice::from(start..end)).to_owned())
        });
        out.push(keep_quant(input, piece));
        start = end;
    }
    Ok(out)
}
