//! Loading a model given on the command line: ONNX (`.onnx`) or Lithe (`.nb`), told apart by
//! the `.nb` magic bytes rather than the file extension.

use crate::args::{InputShape, shapes_map};
use anyhow::{Context, Result, bail};
use lithe_ir::{Graph, Outlet, Shape, TypeInfo};
use lithe_nbformat::ModelMeta;
use lithe_onnx::ImportOptions;
use std::io::Read;
use std::path::Path;

/// The container a model file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// An ONNX protobuf.
    Onnx,
    /// A Lithe `.nb` file.
    Nb,
}

/// Tell `.nb` from ONNX by the first bytes of the file.
pub fn model_kind(path: &Path) -> Result<ModelKind> {
    let mut head = [0u8; 16];
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    let mut n = 0;
    while n < head.len() {
        let got = f.read(&mut head[n..]).with_context(|| format!("cannot read '{}'", path.display()))?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(if lithe_nbformat::has_magic(&head[..n]) { ModelKind::Nb } else { ModelKind::Onnx })
}

/// Load `path` as a graph, fixing the given input shapes. `.nb` files also return their
/// metadata.
pub fn load(path: &Path, shapes: &[InputShape]) -> Result<(Graph, Option<ModelMeta>)> {
    match model_kind(path)? {
        ModelKind::Onnx => {
            let opts = ImportOptions { input_shapes: shapes_map(shapes)?, ..ImportOptions::default() };
            let g = lithe_onnx::load_model(path, &opts).context("cannot load model")?;
            Ok((g, None))
        }
        ModelKind::Nb => {
            let (mut g, meta) = lithe_nbformat::read_file(path).context("cannot load model")?;
            fix_input_shapes(&mut g, shapes)?;
            Ok((g, Some(meta)))
        }
    }
}

/// Give the named inputs of an already-built graph fixed shapes and re-infer every type.
pub fn fix_input_shapes(g: &mut Graph, shapes: &[InputShape]) -> Result<()> {
    let wanted = shapes_map(shapes)?;
    if wanted.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = g.inputs().iter().map(|&id| g.value(Outlet::new(id, 0)).name.clone()).collect();
    for (name, dims) in &wanted {
        let Some(index) = names.iter().position(|n| n == name) else {
            bail!("--input-shape: the model has no input named '{name}' (inputs: {})", names.join(", "));
        };
        let Some(&id) = g.inputs().get(index) else { continue };
        let dtype = g.value(Outlet::new(id, 0)).ty.dtype;
        g.set_input_type(index, TypeInfo::new(dtype, Shape::known(dims)))
            .with_context(|| format!("--input-shape {name}"))?;
    }
    g.infer_shapes().context("cannot infer shapes for the given input shapes")?;
    Ok(())
}
