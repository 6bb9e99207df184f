//! Checking given input tensors against the declared input types and binding symbolic dims.

use crate::RuntimeError;
use lithe_ir::{Dim, Tensor, TypeInfo};
use std::collections::HashMap;

/// Check every input against its declared type: all set, dtype equal, rank equal, known dims
/// equal, each symbol one size across all inputs. Returns the concrete input shapes.
pub(crate) fn check_inputs(
    names: &[String],
    types: &[TypeInfo],
    tensors: &[Option<Tensor>],
) -> Result<Vec<Vec<usize>>, RuntimeError> {
    // symbol -> (size, input index that bound it)
    let mut bound: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut shapes = Vec::with_capacity(types.len());
    for (i, (name, decl)) in names.iter().zip(types).enumerate() {
        let t =
            tensors.get(i).and_then(Option::as_ref).ok_or_else(|| RuntimeError::MissingInput { name: name.clone() })?;
        let got = t.shape();
        let mismatch = |detail: String| RuntimeError::input_type(name, decl, t.dtype(), got, detail);
        if t.dtype() != decl.dtype {
            return Err(mismatch(format!("dtype is {}, expected {}", t.dtype(), decl.dtype)));
        }
        if let Some(shape) = &decl.shape {
            if shape.rank() != got.len() {
                return Err(mismatch(format!("rank is {}, expected {}", got.len(), shape.rank())));
            }
            for (axis, (d, &n)) in shape.dims().iter().zip(got).enumerate() {
                match d {
                    Dim::Known(k) if *k != n => {
                        return Err(mismatch(format!("dim {axis} is {n}, expected {k}")));
                    }
                    Dim::Sym(s) => match bound.get(s.as_str()) {
                        Some(&(size, _)) if size == n => {}
                        Some(&(size, first)) if first == i => {
                            return Err(mismatch(format!(
                                "dim {axis} is {n}, but an earlier dim binds '{s}' to {size}"
                            )));
                        }
                        Some(&(size, first)) => {
                            return Err(RuntimeError::SymbolConflict {
                                symbol: s.clone(),
                                first_input: names.get(first).cloned().unwrap_or_default(),
                                first_size: size,
                                second_input: name.clone(),
                                second_size: n,
                            });
                        }
                        None => {
                            bound.insert(s.as_str(), (n, i));
                        }
                    },
                    _ => {}
                }
            }
        }
        shapes.push(got.to_vec());
    }
    Ok(shapes)
}
