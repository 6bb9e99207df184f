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

/// Copy the box of `x` (shape `shape`) starting at `begin` with shape `out_shape` (a Slice
/// with every step 1) into `out`, one contiguous innermost run at a time.
pub fn f32_slice_box(
    x: &[f32],
    shape: &[usize],
    begin: &[usize],
    out_shape: &[usize],
    out: &mut [f32],
) -> Result<(), KernelError> {
    const OP: &str = "Slice";
    let rank = shape.len();
    let fits = begin.len() == rank
        && out_shape.len() == rank
        && (0..rank).all(|i| begin[i].checked_add(out_shape[i]).is_some_and(|e| e <= shape[i]));
    let n: usize = out_shape.iter().product();
    if !fits || x.len() != shape.iter().product::<usize>() || out.len() != n {
        return Err(KernelError::Invalid {
            op: OP,
            detail: format!(
                "box at {begin:?} of shape {out_shape:?} does not fit {shape:?} ({} / {} values)",
                x.len(),
                out.len()
            ),
        });
    }
    if n == 0 {
        return Ok(());
    }
    if rank == 0 {
        out.copy_from_slice(x);
        return Ok(());
    }
    let mut strides = vec![1usize; rank];
    for i in (0..rank - 1).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let run = out_shape[rank - 1];
    let outer = rank - 1;
    let mut index = vec![0usize; outer];
    let mut src: usize = (0..rank).map(|i| begin[i] * strides[i]).sum();
    for dst in out.chunks_exact_mut(run) {
        dst.copy_from_slice(&x[src..src + run]);
        for ax in (0..outer).rev() {
            index[ax] += 1;
            src += strides[ax];
            if index[ax] < out_shape[ax] {
                break;
            }
            src -= strides[ax] * out_shape[ax];
            index[ax] = 0;
        }
    }
    Ok(())
}
