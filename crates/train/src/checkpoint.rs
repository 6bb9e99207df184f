//! Checkpoints: the training graph saved as a `.nb` (batch norm in its training form with the
//! running statistics, every weight) or exported as ONNX, models loaded from either as the
//! starting point of training, and [`TrainState`], the few counters that let a run resume.
//!
//! A checkpoint `.nb` is an ordinary Lithe model: `lite-cli run` and `Predictor::from_file`
//! run it (BatchNormalization uses the running statistics, i.e. eval semantics). The
//! optimizer's moments are not saved: a resumed run continues the learning-rate schedule from
//! the saved step count with fresh moments.

use crate::TrainError;
use crate::error::invalid;
use lithe_ir::{Dim, Graph, Outlet, Shape, TypeInfo};
use lithe_nbformat::ModelMeta;
use std::path::{Path, PathBuf};

/// Name of the symbolic batch dimension given to a loaded model's input.
pub const BATCH_DIM: &str = "batch";

/// Load a model to train from a `.nb` file or an ONNX file (told apart by the `.nb` magic
/// bytes). ONNX import runs only its constant folding, no optimization pass, so batch norm
/// stays a BatchNormalization node; a `.nb` written by `lite-cli opt` may hold fused convs,
/// which have no backward rule (train a checkpoint or the ONNX model instead).
///
/// The first input's leading dimension becomes the symbolic [`BATCH_DIM`] when the graph's
/// shapes still infer with it, so batches of any size train.
pub fn load_model(path: &Path) -> Result<Graph, TrainError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TrainError::Io { path: file.clone(), source })?;
    let mut graph = if lithe_nbformat::has_magic(&bytes) {
        lithe_nbformat::read(&bytes).map_err(|e| invalid(&file, e.to_string()))?.0
    } else {
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        lithe_onnx::load_model_bytes(&bytes, Some(base), &lithe_onnx::ImportOptions::default())
            .map_err(|e| invalid(&file, e.to_string()))?
    };
    if graph.inputs().len() != 1 {
        return Err(invalid(&file, format!("{} inputs (a classifier with one input expected)", graph.inputs().len())));
    }
    graph = with_symbolic_batch(graph);
    graph.validate().map_err(|e| invalid(&file, e.to_string()))?;
    Ok(graph)
}

/// `graph` with its first input's leading dimension symbolic, or unchanged when the graph
/// fixes the batch elsewhere (a Reshape to a constant batch size, ...).
pub fn with_symbolic_batch(graph: Graph) -> Graph {
    let Some(&input) = graph.inputs().first() else { return graph };
    let ty = graph.value(Outlet::new(input, 0)).ty.clone();
    let Some(shape) = ty.shape.as_ref().filter(|s| s.rank() > 0) else { return graph };
    if matches!(shape.dims()[0], Dim::Sym(_)) {
        return graph;
    }
    let mut dims = shape.dims().to_vec();
    dims[0] = Dim::Sym(BATCH_DIM.into());
    let mut g = graph.clone();
    let ok = g.set_input_type(0, TypeInfo::new(ty.dtype, Shape(dims))).is_ok() && g.infer_shapes().is_ok();
    if ok { g } else { graph }
}

/// Write the graph as it is (training form) to a `.nb` file; `source` names the model it
/// came from.
pub fn save_nb(graph: &Graph, path: &Path, source: &str) -> Result<(), TrainError> {
    let meta = ModelMeta {
        producer: format!("lithe {} (lithe-train)", env!("CARGO_PKG_VERSION")),
        source: source.to_string(),
        passes: Vec::new(),
        valid_targets: Vec::new(),
    };
    lithe_nbformat::write_file(path, graph, &meta).map_err(|e| invalid(path.display().to_string(), e.to_string()))
}

/// Export the graph as ONNX (opset 21; batch norm as an inference BatchNormalization with the
/// running statistics).
pub fn save_onnx(graph: &Graph, path: &Path) -> Result<(), TrainError> {
    lithe_onnx::save_onnx(path, graph).map_err(|e| invalid(path.display().to_string(), e.to_string()))
}

/// Where a run stands: written next to each checkpoint (`epoch-003.nb` → `epoch-003.state`)
/// as `key = value` lines, read back to resume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken (the schedule's position).
    pub steps: usize,
}

impl TrainState {
    /// The state file of a checkpoint: the same path with extension `.state`.
    pub fn path_for(checkpoint: &Path) -> PathBuf {
        checkpoint.with_extension("state")
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        format!("# lithe-train checkpoint state\nepoch = {}\nsteps = {}\n", self.epoch, self.steps)
    }

    /// Parse the text of a state file; `what` names it in errors.
    pub fn parse(what: &str, text: &str) -> Result<Self, TrainError> {
        let (mut epoch, mut steps) = (None, None);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |d: String| invalid(format!("{what} line {}", i + 1), d);
            let (k, v) = line.split_once('=').ok_or_else(|| bad(format!("expected key = value, got '{line}'")))?;
            let n: usize = v.trim().parse().map_err(|_| bad(format!("'{}' is not a count", v.trim())))?;
            match k.trim() {
                "epoch" => epoch = Some(n),
                "steps" => steps = Some(n),
                other => return Err(bad(format!("unknown key '{other}'"))),
            }
        }
        match (epoch, steps) {
            (Some(epoch), Some(steps)) => Ok(TrainState { epoch, steps }),
            _ => Err(invalid(what, "needs both 'epoch' and 'steps'")),
        }
    }

    /// Write the state file of `checkpoint`.
    pub fn save(&self, checkpoint: &Path) -> Result<(), TrainError> {
        let path = Self::path_for(checkpoint);
        std::fs::write(&path, self.to_text())
            .map_err(|source| TrainError::Io { path: path.display().to_string(), source })
    }

    /// Read the state file of `checkpoint`, `None` when there is none.
    pub fn load(checkpoint: &Path) -> Result<Option<Self>, TrainError> {
        let path = Self::path_for(checkpoint);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path.display().to_string(), &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TrainError::Io { path: path.display().to_string(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_rejects_bad_lines() {
        let s = TrainState { epoch: 3, steps: 189 };
        assert_eq!(TrainState::parse("s", &s.to_text()).unwrap(), s);
        assert_eq!(TrainState::path_for(Path::new("d/epoch-003.nb")), PathBuf::from("d/epoch-003.state"));
        let err = |t: &str| TrainState::parse("f.state", t).unwrap_err().to_string();
        assert_eq!(err("epoch = 1\nsteps = x\n"), "f.state line 2: 'x' is not a count");
        assert_eq!(err("epoch = 1\n"), "f.state: needs both 'epoch' and 'steps'");
        assert_eq!(err("lr = 1\n"), "f.state line 1: unknown key 'lr'");
        assert_eq!(err("epoch 1\n"), "f.state line 1: expected key = value, got 'epoch 1'");
    }

    #[test]
    fn a_fixed_batch_becomes_symbolic() {
        let g = crate::models::dwsep(1, crate::models::Init::default()).unwrap();
        let mut fixed = g.clone();
        fixed.set_input_type(0, TypeInfo::new(lithe_ir::DType::F32, Shape::known(&[1, 1, 28, 28]))).unwrap();
        fixed.infer_shapes().unwrap();
        let back = with_symbolic_batch(fixed);
        let ty = &back.value(Outlet::new(back.inputs()[0], 0)).ty;
        assert_eq!(ty.shape.as_ref().unwrap().dims()[0], Dim::Sym(BATCH_DIM.into()));
        let out = &back.value(back.outputs()[0]).ty;
        assert_eq!(out.shape.as_ref().unwrap().dims()[0], Dim::Sym(BATCH_DIM.into()));
    }
}
