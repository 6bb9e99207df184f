//! Data movement on f32 tensors: concatenation and transposition by contiguous blocks.

use crate::KernelError;

const CONCAT: &str = "Concat";
const TRANSPOSE: &str = "Transpose";

/// Concatenate `inputs` (each `(data, shape)`, same rank, equal dims except `axis`) along
/// `axis` into `out`, copying contiguous runs.
pub fn f32_concat(inputs: &[(&[f32], &[usize])], axis: usize, out: &mut [f32]) -> Result<(), KernelError> {
    let Some(&(_, first)) = inputs.first() else {
        return Err(KernelError::Invalid { op: CONCAT, detail: "no inputs".into() });
    };
    if axis >= first.len() {
        return Err(KernelError::Invalid { op: CONCAT, detail: format!("axis {axis} out of rank {}", first.len()) });
    }
    let outer: usize = first[..axis].iter().product();
    let inner: usize = first[axis + 1..].iter().product();
    let mut total = 0usize;
    for (data, shape) in inputs {
        let same = shape.len() == first.len()
            && shape.iter().zip(first.iter()).enumerate().all(|(i, (a, b))| i == axis || a == b);
        if !same || data.len() != outer * shape[axis] * inner {
            return Err(KernelError::Invalid {
                op: CONCAT,
                detail: format!("input of shape {shape:?} ({} values) does not concatenate with {first:?}", data.len()),
            });
        }
        total += data.len();
    }
    if out.len() != total {
        return Err(KernelError::Invalid {
            op: CONCAT,
            detail: format!("output has {} values, expected {total}", out.len()),
        });
    }
    let mut at = 0;
    for o in 0..outer {
        for (data, shape) in inputs {
            let run = shape[axis] * inner;
            out[at..at + run].copy_from_slice(&data[o * run..(o + 1) * run]);
            at += run;
        }
    }
    Ok(())
}

/// Transpose `x` of `shape` by `perm` (output axis `i` is input axis `perm[i]`) into `out`.
/// Trailing axes the permutation keeps in place are copied as contiguous blocks.
pub fn f32_transpose(x: &[f32], shape: &[usize], perm: &[usize], out: &mut [f32]) -> Result<(), KernelError> {
    let rank = shape.len();
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
        return Err(KernelError::Invalid {
            op: TRANSPOSE,
            detail: format!("perm {perm:?} is not a permutation of {rank} axes"),
        });
    }
    let n: usize = shape.iter().product();
    if x.len() != n || out.len() != n {
        return Err(KernelError::Invalid {
            op: TRANSPOSE,
            detail: format!("{} input / {} output values for shape {shape:?}", x.len(), out.len()),
        });
    }
    if n == 0 {
        return Ok(());
    }
    // Trailing axes left in place form one contiguous block.
    let mut kept = rank;
    while kept > 0 && perm[kept - 1] == kept - 1 {
        kept -= 1;
    }
    let block: usize = shape[kept..].iter().product();
    let mut in_strides = vec![0usize; rank];
    let mut s = 1;
    for i in (0..rank).rev() {
        in_strides[i] = s;
        s *= shape[i];
    }
    let out_dims: Vec<usize> = perm[..kept].iter().map(|&p| shape[p]).collect();
    let src_strides: Vec<usize> = perm[..kept].iter().map(|&p| in_strides[p]).collect();
    let mut index = vec![0usize; kept];
    let mut src = 0usize;
    for dst in out.chunks_exact_mut(block) {
        dst.copy_from_slice(&x[src..src + block]);
        // Advance the output index (row-major), keeping `src` in step.
        for ax in (0..kept).rev() {
            index[ax] += 1;
            src += src_strides[ax];
            if index[ax] < out_dims[ax] {
                break;
            }
            src -= src_strides[ax] * out_dims[ax];
            index[ax] = 0;
        }
    }
    Ok(())
}
