//! Running a graph on calibration or evaluation batches with the predictor, reading any
//! values of interest (not only the graph's outputs).

use crate::QuantError;
use crate::data::{Batch, CalibSource, batches};
use lithe_ir::{Dim, Graph, Outlet, Tensor};
use lithe_runtime::{Predictor, PredictorOptions};
use ndarray::{Axis, Slice};

/// A predictor over a copy of a graph whose outputs are chosen values.
pub struct ValueRunner {
    predictor: Predictor,
    /// Graph input names, in input order.
    input_names: Vec<String>,
    /// The fixed batch size of the first input, when the graph has one.
    fixed_batch: Option<usize>,
    /// For each requested value: an output index, or the index of a graph input.
    sources: Vec<ValueSource>,
}

#[derive(Clone, Copy, Debug)]
enum ValueSource {
    Output(usize),
    Input(usize),
}

impl ValueRunner {
    /// Prepare to read `values` of `graph` (values may be graph inputs).
    pub fn new(graph: &Graph, values: &[Outlet], threads: usize) -> Result<ValueRunner, QuantError> {
        let mut g = graph.clone();
        let inputs: Vec<_> = g.inputs().to_vec();
        let input_names: Vec<String> = inputs.iter().map(|&id| g.value(Outlet::new(id, 0)).name.clone()).collect();
        let fixed_batch =
            inputs.first().and_then(|&id| match g.value(Outlet::new(id, 0)).ty.shape.as_ref()?.0.first() {
                Some(Dim::Known(n)) => Some(*n),
                _ => None,
            });
        let mut outputs = Vec::new();
        let sources = values
            .iter()
            .map(|&o| match inputs.iter().position(|&id| id == o.node) {
                Some(i) => ValueSource::Input(i),
                None => {
                    outputs.push(o);
                    ValueSource::Output(outputs.len() - 1)
                }
            })
            .collect();
        if outputs.is_empty() {
            // The predictor needs an output; keep the graph's own.
            outputs = g.outputs().to_vec();
        }
        g.set_outputs(outputs);
        g.remove_unused();
        let options = PredictorOptions { threads: threads.max(1), ..PredictorOptions::default() };
        let predictor = Predictor::with_options(g, options).map_err(|e| run_error(&e))?;
        Ok(ValueRunner { predictor, input_names, fixed_batch, sources })
    }

    /// Run on `batch` and call `each` with every requested value (in request order) for each
    /// chunk the graph accepts (the whole batch when the batch dim is free).
    pub fn run(&mut self, batch: &Batch, each: &mut dyn FnMut(&[&Tensor])) -> Result<(), QuantError> {
        let inputs: Vec<&Tensor> = self
            .input_names
            .iter()
            .map(|n| {
                batch.get(n).ok_or_else(|| QuantError::CalibData {
                    path: "calibration data".into(),
                    reason: format!("no data for model input '{n}'"),
                })
            })
            .collect::<Result<_, _>>()?;
        let samples = batch.samples();
        let chunk = self.fixed_batch.unwrap_or(samples).max(1);
        if !samples.is_multiple_of(chunk) {
            return Err(QuantError::CalibData {
                path: "calibration data".into(),
                reason: format!("{samples} samples do not split into the model's fixed batch of {chunk}"),
            });
        }
        for start in (0..samples).step_by(chunk) {
            let parts: Vec<Tensor> = inputs.iter().map(|t| slice_samples(t, start, chunk)).collect::<Result<_, _>>()?;
            for (i, t) in parts.iter().enumerate() {
                self.predictor.set_input(i, t.clone()).map_err(|e| run_error(&e))?;
            }
            self.predictor.run().map_err(|e| run_error(&e))?;
            let mut values = Vec::with_capacity(self.sources.len());
            for s in &self.sources {
                values.push(match *s {
                    ValueSource::Input(i) => &parts[i],
                    ValueSource::Output(i) => self
                        .predictor
                        .output(i)
                        .ok_or_else(|| QuantError::Run(format!("output {i} missing after a run")))?,
                });
            }
            each(&values);
        }
        Ok(())
    }

    /// Run over the first `max_samples` samples of `source` (all when `None`) in batches of
    /// `batch_size`, calling `each` as [`ValueRunner::run`] does and `progress` with the
    /// samples done so far.
    pub fn run_source(
        &mut self,
        source: &dyn CalibSource,
        batch_size: usize,
        max_samples: Option<usize>,
        each: &mut dyn FnMut(&[&Tensor]),
        progress: &mut dyn FnMut(usize),
    ) -> Result<usize, QuantError> {
        let limit = max_samples.unwrap_or(usize::MAX).min(source.len());
        let mut done = 0;
        for batch in batches(source, batch_size)? {
            if done >= limit {
                break;
            }
            let mut batch = batch?;
            let take = (limit - done).min(batch.samples());
            if take < batch.samples() {
                for (_, t) in &mut batch.inputs {
                    *t = slice_samples(t, 0, take)?;
                }
            }
            self.run(&batch, each)?;
            done += take;
            progress(done);
        }
        Ok(done)
    }
}

/// Samples `start..start + count` of `t` along axis 0.
fn slice_samples(t: &Tensor, start: usize, count: usize) -> Result<Tensor, QuantError> {
    if t.shape().first() == Some(&count) && start == 0 {
        return Ok(t.clone());
    }
    let a = t.expect_view::<f32>("calibration input")?;
    let s = a.slice_axis(Axis(0), Slice::from(start..start + count));
    Ok(Tensor::from(s.to_owned()))
}

fn run_error(e: &lithe_runtime::RuntimeError) -> QuantError {
    QuantError::Run(e.to_string())
}
