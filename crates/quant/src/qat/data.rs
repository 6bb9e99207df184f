//! A labelled training set read as calibration and evaluation data.

use crate::QuantError;
use crate::data::{Batch, CalibSource, InputSpec};
use lithe_ir::Tensor;
use lithe_train::data::Dataset;

/// A [`Dataset`] (samples and labels) as a [`CalibSource`] feeding the graph input `name`,
/// in order; the labels stay available for accuracy.
#[derive(Debug)]
pub struct LabelledSource<'a> {
    data: &'a Dataset,
    spec: [InputSpec; 1],
}

impl<'a> LabelledSource<'a> {
    /// Feed `data` to the graph input `name`.
    pub fn new(data: &'a Dataset, name: impl Into<String>) -> Self {
        let mut shape = vec![None];
        shape.extend(data.sample_shape.iter().map(|&d| Some(d)));
        LabelledSource { data, spec: [InputSpec::new(name, &shape)] }
    }

    /// The labels, in sample order.
    pub fn labels(&self) -> &[usize] {
        &self.data.labels
    }
}

impl CalibSource for LabelledSource<'_> {
    fn inputs(&self) -> &[InputSpec] {
        &self.spec
    }

    fn len(&self) -> usize {
        self.data.len()
    }

    fn load(&self, start: usize, count: usize) -> Result<Batch, QuantError> {
        let end = (start + count).min(self.data.len());
        let indices: Vec<usize> = (start.min(end)..end).collect();
        let (x, _): (Tensor, Vec<usize>) = self.data.gather(&indices);
        Ok(Batch { inputs: vec![(self.spec[0].name.clone(), x)] })
    }
}
