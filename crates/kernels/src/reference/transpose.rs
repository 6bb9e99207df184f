//! Transpose: permute the axes.

use super::util::{invalid, keep_quant};
use crate::KernelError;
use lithe_ir::op::resolve_perm;
use lithe_ir::{Tensor, dispatch_view};
use ndarray::IxDyn;

/// Permute the axes of `x`: output axis `i` is input axis `perm[i]`; `None` reverses them.
pub fn transpose(x: &Tensor, perm: Option<&[usize]>) -> Result<Tensor, KernelError> {
    let rank = x.shape().len();
    let perm = resolve_perm(perm, rank).map_err(|e| match e {
        lithe_ir::IrError::Attribute(m) => invalid("Transpose", m),
        e => e.into(),
    })?;
    let out = dispatch_view!(&x.data_view(), a => {
        Tensor::from(a.view().permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned())
    });
    Ok(keep_quant(x, out))
}
