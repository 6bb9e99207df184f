//! Checkpoints: the training graph saved as a `.nb` (batch norm in its training form with the
//! running statistics, every weight) or exported as ONNX, models loaded from either as the
//! starting point of training, [`TrainState`] (the counters that let a run resume) and the
//! optimizer's moments ([`save_optimizer`], [`load_optimizer`]: a small binary file of their own).
//!
//! A checkpoint `.nb` is an ordinary Lithe model: `lite-cli run` and `Predictor::from_file`
//! run it (BatchNormalization uses the running statistics, i.e. eval semantics).

use crate::error::invalid;
use crate::optim::OptimizerState;
use crate::{TrainError, Trainer};
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
    if graph.inputs().len() != 1 || graph.outputs().is_empty() {
        return Err(invalid(
            &file,
            format!(
                "{} inputs and {} outputs (a classifier with one input and the logits first expected)",
                graph.inputs().len(),
                graph.outputs().len()
            ),
        ));
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

/// First bytes of an optimizer-state file.
const OPTIM_MAGIC: &[u8; 8] = b"LITHEOPT";
/// Its format version.
const OPTIM_VERSION: u32 = 1;

/// The optimizer-state file of a checkpoint: the same path with extension `.optim`.
pub fn optimizer_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("optim")
}

/// Write the trainer's optimizer state next to `checkpoint`. Layout (little-endian): `LITHEOPT`,
/// version u32, steps u64, entry count u32, then per trainable constant: name length u32, the
/// UTF-8 name, value count u64, a u8 (1 when second moments follow), the first moments (f32),
/// the second moments. Before the first step there are no entries.
pub fn save_optimizer(trainer: &Trainer, checkpoint: &Path) -> Result<(), TrainError> {
    let state = trainer.optimizer().state();
    let names = param_names(trainer);
    let mut b = Vec::new();
    b.extend_from_slice(OPTIM_MAGIC);
    b.extend_from_slice(&OPTIM_VERSION.to_le_bytes());
    b.extend_from_slice(&state.steps.to_le_bytes());
    b.extend_from_slice(&(state.m.len() as u32).to_le_bytes());
    for (i, m) in state.m.iter().enumerate() {
        let name = names.get(i).map_or("", String::as_str);
        b.extend_from_slice(&(name.len() as u32).to_le_bytes());
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(&(m.len() as u64).to_le_bytes());
        let v = state.v.get(i);
        b.push(u8::from(v.is_some()));
        for x in m.iter().chain(v.into_iter().flatten()) {
            b.extend_from_slice(&x.to_le_bytes());
        }
    }
    let path = optimizer_path(checkpoint);
    std::fs::write(&path, b).map_err(|source| TrainError::Io { path: path.display().to_string(), source })
}

/// Restore the trainer's optimizer state from the file next to `checkpoint`; `false` when there
/// is none. Entries are matched to the trainable constants by name; a missing entry, a size
/// that differs, or first-only moments for Adam (an SGD run's state) are errors naming the file.
pub fn load_optimizer(trainer: &mut Trainer, checkpoint: &Path) -> Result<bool, TrainError> {
    let path = optimizer_path(checkpoint);
    let file = path.display().to_string();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(TrainError::Io { path: file, source }),
    };
    let (steps, entries) = parse_optimizer(&file, &bytes)?;
    let mut state = OptimizerState { steps, m: Vec::new(), v: Vec::new() };
    if !entries.is_empty() {
        for name in param_names(trainer) {
            let Some((_, m, v)) = entries.iter().find(|(n, _, _)| *n == name) else {
                return Err(invalid(&file, format!("no optimizer state for parameter '{name}'")));
            };
            let want = trainer.graph().node_ids().into_iter().find(|&id| trainer.graph().node(id).name == name);
            let size = want.and_then(|id| match &trainer.graph().node(id).op {
                lithe_ir::Op::Const(t) => Some(t.len()),
                _ => None,
            });
            if size != Some(m.len()) {
                return Err(invalid(&file, format!("{} values for parameter '{name}' of {size:?}", m.len())));
            }
            state.m.push(m.clone());
            if let Some(v) = v {
                state.v.push(v.clone());
            }
        }
    }
    trainer.optimizer_mut().set_state(state).map_err(|e| invalid(&file, e.to_string()))?;
    Ok(true)
}

/// Names of the trainer's trainable constants in parameter order.
fn param_names(trainer: &Trainer) -> Vec<String> {
    trainer.params().nodes().iter().map(|&id| trainer.graph().node(id).name.clone()).collect()
}

/// One entry of an optimizer-state file: name, first moments, second moments.
type OptimEntry = (String, Vec<f32>, Option<Vec<f32>>);

/// Parse an optimizer-state file (every length checked against the bytes left).
fn parse_optimizer(file: &str, bytes: &[u8]) -> Result<(u64, Vec<OptimEntry>), TrainError> {
    let mut r = Reader { bytes, pos: 0, file };
    if r.take(8)? != OPTIM_MAGIC {
        return Err(invalid(file, "not a Lithe optimizer-state file (bad magic)"));
    }
    let version = r.u32()?;
    if version != OPTIM_VERSION {
        return Err(invalid(file, format!("optimizer-state version {version} (this build reads {OPTIM_VERSION})")));
    }
    let steps = r.u64()?;
    let count = r.u32()? as usize;
    let mut entries = Vec::new();
    for _ in 0..count {
        let name_len = r.u32()? as usize;
        let name = String::from_utf8(r.take(name_len)?.to_vec()).map_err(|_| invalid(file, "a name is not UTF-8"))?;
        let len = usize::try_from(r.u64()?).map_err(|_| invalid(file, "value count too large"))?;
        let has_v = r.take(1)?[0] == 1;
        let m = r.f32s(len)?;
        let v = if has_v { Some(r.f32s(len)?) } else { None };
        entries.push((name, m, v));
    }
    if r.pos != bytes.len() {
        return Err(invalid(file, format!("{} trailing bytes", bytes.len() - r.pos)));
    }
    Ok((steps, entries))
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    file: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TrainError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(invalid(self.file, format!("truncated at byte {} (wanted {n} more)", self.pos)));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, TrainError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, TrainError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, TrainError> {
        let bytes = n.checked_mul(4).ok_or_else(|| invalid(self.file, "value count too large"))?;
        let b = self.take(bytes)?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
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
    fn optimizer_files_reject_malformed_bytes_without_panicking() {
        let mut good = OPTIM_MAGIC.to_vec();
        good.extend_from_slice(&OPTIM_VERSION.to_le_bytes());
        good.extend_from_slice(&7u64.to_le_bytes());
        good.extend_from_slice(&1u32.to_le_bytes());
        good.extend_from_slice(&1u32.to_le_bytes());
        good.push(b'w');
        good.extend_from_slice(&2u64.to_le_bytes());
        good.push(1);
        for x in [1f32, 2., 3., 4.] {
            good.extend_from_slice(&x.to_le_bytes());
        }
        let (steps, e) = parse_optimizer("o", &good).unwrap();
        assert_eq!((steps, e), (7, vec![("w".to_string(), vec![1., 2.], Some(vec![3., 4.]))]));
        for cut in 0..good.len() {
            assert!(parse_optimizer("o", &good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(parse_optimizer("o", &long).unwrap_err().to_string(), "o: 1 trailing bytes");
        let mut huge = good.clone();
        huge[29..37].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_optimizer("o", &huge).is_err());
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
