//! Expand: broadcast a tensor to a shape (bidirectionally, like numpy).

use super::broadcast::{broadcast_shapes, broadcast_to};
use super::util::{index_list, invalid, keep_quant};
use crate::KernelError;
use lithe_ir::{Tensor, dispatch_view};

/// Broadcast `data` together with the i64 `shape` tensor: the output shape is the numpy
/// broadcast of both (so a 1 in `shape` keeps the input's size).
pub fn expand(data: &Tensor, shape: &Tensor) -> Result<Tensor, KernelError> {
    const OP: &str = "Expand";
    let dims = index_list(OP, "shape", shape)?
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| invalid(OP, format!("shape value {d} is negative"))))
        .collect::<Result<Vec<usize>, _>>()?;
    let out_shape = broadcast_shapes(OP, &[data.shape(), &dims])?;
    let out = dispatch_view!(&data.data_view(), a => Tensor::from(broadcast_to(OP, a, &out_shape)?.to_owned()));
    Ok(keep_quant(data, out))
}
