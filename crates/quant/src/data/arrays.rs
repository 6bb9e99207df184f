//! `.npy` and `.npz` calibration data, held in memory (the files are read by
//! [`lithe_train::data::arrays`]).

use super::{Batch, CalibSource, InputSpec, calib_error, from_train};
use crate::QuantError;
use lithe_ir::{DType, Tensor};
use lithe_train::data::arrays::{Npz, read_npy};
use ndarray::{ArrayD, Axis, Slice};
use std::path::{Path, PathBuf};

/// Calibration samples read from `.npy` / `.npz` files: for each input, an array of samples
/// stacked on axis 0. float32 is used as is; float16 and float64 are converted to f32; any
/// other dtype is refused. Every input must have the same number of samples (at least one).
#[derive(Debug, Clone)]
pub struct ArraySource {
    specs: Vec<InputSpec>,
    arrays: Vec<ArrayD<f32>>,
    samples: usize,
}

impl ArraySource {
    /// One `.npy` file per input.
    pub fn from_npy(files: &[(InputSpec, PathBuf)]) -> Result<Self, QuantError> {
        let mut arrays = Vec::with_capacity(files.len());
        for (spec, path) in files {
            let tensor = read_npy(path).map_err(from_train)?;
            arrays.push((path.display().to_string(), to_f32(tensor, spec, &path.display().to_string())?));
        }
        Self::new(files.iter().map(|(s, _)| s.clone()).collect(), arrays)
    }

    /// One `.npz` archive with a member per input, named `NAME.npy` (numpy's `savez` naming) or
    /// `NAME`. A model with one input also accepts an archive with exactly one member of any name.
    pub fn from_npz(path: &Path, inputs: &[InputSpec]) -> Result<Self, QuantError> {
        let mut npz = Npz::open(path).map_err(from_train)?;
        let names = npz.members().to_vec();
        let mut arrays = Vec::with_capacity(inputs.len());
        for spec in inputs {
            let member = match npz.member_for(&spec.name) {
                Some(m) => m.to_string(),
                None if inputs.len() == 1 && names.len() == 1 => names[0].clone(),
                None => {
                    return Err(calib_error(
                        path,
                        format!(
                            "no member '{}.npy' for input '{}' (members: {})",
                            spec.name,
                            spec.name,
                            names.join(", ")
                        ),
                    ));
                }
            };
            let tensor = npz.read(&member).map_err(from_train)?;
            let label = format!("{}: member '{member}'", path.display());
            arrays.push((label, to_f32(tensor, spec, &format!("{}:{member}", path.display()))?));
        }
        Self::new(inputs.to_vec(), arrays)
    }

    /// Check the sample counts agree (files are named in the error).
    fn new(specs: Vec<InputSpec>, arrays: Vec<(String, ArrayD<f32>)>) -> Result<Self, QuantError> {
        let Some((first_label, first)) = arrays.first() else {
            return Err(QuantError::Setting { field: "calibration inputs", reason: "no model input given".into() });
        };
        let samples = first.shape()[0];
        for (label, a) in &arrays[1..] {
            if a.shape()[0] != samples {
                return Err(QuantError::CalibData {
                    path: label.clone(),
                    reason: format!("{} samples, but {first_label} has {samples}", a.shape()[0]),
                });
            }
        }
        Ok(ArraySource { specs, arrays: arrays.into_iter().map(|(_, a)| a).collect(), samples })
    }
}

/// The f32 samples of `t` for input `spec`, checking its dtype and shape; `label` names the file.
fn to_f32(t: Tensor, spec: &InputSpec, label: &str) -> Result<ArrayD<f32>, QuantError> {
    let bad = |reason: String| QuantError::CalibData { path: label.to_string(), reason };
    let a = match t.dtype() {
        DType::F32 => t.to_array::<f32>(),
        DType::F16 => t.cast(DType::F32).to_array::<f32>(),
        d => return Err(bad(format!("dtype {d:?} for input '{}' (expected float32, float16 or float64)", spec.name))),
    };
    let shape = a.shape();
    let fits = shape.len() == spec.shape.len()
        && !shape.is_empty()
        && shape.iter().zip(&spec.shape).skip(1).all(|(&d, s)| s.is_none_or(|s| s == d));
    if !fits {
        return Err(bad(format!("shape {shape:?} does not fit input {spec} (samples stacked on the first axis)")));
    }
    if shape[0] == 0 {
        return Err(bad(format!("no samples for input '{}' (shape {shape:?})", spec.name)));
    }
    Ok(a)
}

impl CalibSource for ArraySource {
    fn inputs(&self) -> &[InputSpec] {
        &self.specs
    }

    fn len(&self) -> usize {
        self.samples
    }

    fn load(&self, start: usize, count: usize) -> Result<Batch, QuantError> {
        let start = start.min(self.samples);
        let end = start.saturating_add(count).min(self.samples);
        let inputs = self
            .specs
            .iter()
            .zip(&self.arrays)
            .map(|(s, a)| {
                let part = a.slice_axis(Axis(0), Slice::from(start..end)).to_owned();
                (s.name.clone(), Tensor::from(part))
            })
            .collect();
        Ok(Batch { inputs })
    }
}
