//! Transpose: permute the axes.

use super::util::{invalid, keep_quant};
use crate::KernelError;
use lithe_ir::{Tensor, dispatch_tensor};
use ndarray::IxDyn;

/// Permute the axes of `x`: output axis `i` is input axis `perm[i]`; `None` reverses them.
pub fn transpose(x: &Tensor, perm: Option<&[usize]>) -> Result<Tensor, KernelError> {
    let rank = x.shape().len();
    let perm: Vec<usize> = match perm {
        Some(p) => p.to_vec(),
        None => (0..rank).rev().collect(),
    };
    let mut seen = vec![false; rank];
    let valid = perm.len() == rank
        && perm.iter().all(|&p| match seen.get_mut(p) {
            Some(s) if !*s => {
                *s = true;
                true
            }
            _ => false,
        });
    if !valid {
        return Err(invalid("Transpose", format!("perm {perm:?} is not a permutation of 0..{rank}")));
    }
    let out = dispatch_tensor!(x.data(), a => {
        Tensor::from(a.view().permuted_axes(IxDyn(&perm)).as_standard_layout().into_owned())
    });
    Ok(keep_quant(x, out))
}
