//! `cargo xtask models`: real trained models from PyPI wheels, with onnxruntime reference outputs.
//!
//! Fetches the three PP-OCR models (text detection, direction classifier, recognition) shipped
//! in the `rapidocr-onnxruntime` 1.4.4 wheel into `<cache>/models/<name>/model.onnx`, renders a
//! text image, preprocesses it as RapidOCR does and stores onnxruntime's outputs as `.npy` cases
//! with a `manifest.json` per model (see `xtask/python/models.py`). The integration test
//! `crates/runtime/tests/real_models.rs` compares Lithe against those outputs.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

/// The venv CI tasks share (no torch: it must stay fast and small).
pub const CI_VENV: &str = "pyenv-ci";
/// Packages of [`CI_VENV`], pinned so reference outputs are reproducible.
pub const CI_PACKAGES: &[&str] =
    &["numpy==2.4.6", "onnxruntime==1.32.0", "onnx==1.23.2", "pillow==13.0.0", "pyyaml==6.0.4"];
/// The models `xtask models` provides.
pub const MODEL_NAMES: [&str; 3] = ["ppocr_det", "ppocr_cls", "ppocr_rec"];

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Regenerate even if the cache is complete and up to date.
    #[arg(long)]
    force: bool,
}

#[derive(Deserialize)]
struct ModelManifest {
    op_types: Vec<String>,
    cases: Vec<CaseEntry>,
}

#[derive(Deserialize)]
struct CaseEntry {
    name: String,
    inputs: Vec<FileEntry>,
    outputs: Vec<FileEntry>,
}

#[derive(Deserialize)]
struct FileEntry {
    file: String,
}

/// A fingerprint of what produced the cache: the script and the pinned packages (FNV-1a).
fn fingerprint() -> Result<String> {
    let script = crate::root().join("xtask/python/models.py");
    let mut bytes = std::fs::read(&script).with_context(|| format!("reading {}", script.display()))?;
    bytes.extend(CI_PACKAGES.join("\n").bytes());
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{h:016x}"))
}

/// Read a model's manifest and check every file it names exists.
fn check_model(dir: &Path, name: &str) -> Result<ModelManifest> {
    let mdir = dir.join(name);
    let path = mdir.join("manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let m: ModelManifest = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if !mdir.join("model.onnx").is_file() {
        bail!("{} is missing", mdir.join("model.onnx").display());
    }
    if m.cases.is_empty() {
        bail!("{} lists no cases", path.display());
    }
    for c in &m.cases {
        for f in c.inputs.iter().chain(&c.outputs) {
            let p = mdir.join(&c.name).join(&f.file);
            if !p.is_file() {
                bail!("{} is missing", p.display());
            }
        }
    }
    Ok(m)
}

/// Entry point.
pub fn run(a: Args) -> Result<()> {
    let dir = crate::cache_dir().join("models");
    let stamp = dir.join(".stamp");
    let fp = fingerprint()?;
    let fresh = std::fs::read_to_string(&stamp).ok().is_some_and(|s| s.trim() == fp)
        && MODEL_NAMES.iter().all(|n| check_model(&dir, n).is_ok());
    if fresh && !a.force {
        println!("{} is up to date (use --force to regenerate)", dir.display());
    } else {
        let py = crate::python::ensure_venv(CI_VENV, CI_PACKAGES)?;
        let args = vec![
            "--out".to_string(),
            dir.display().to_string(),
            "--wheels".to_string(),
            crate::cache_dir().join("wheels").display().to_string(),
        ];
        crate::python::run_script(&py, "models.py", &args)?;
        std::fs::write(&stamp, &fp).with_context(|| format!("writing {}", stamp.display()))?;
    }

    let supported: BTreeSet<&str> = lithe_onnx::supported_ops().into_iter().collect();
    for name in MODEL_NAMES {
        let m = check_model(&dir, name)?;
        let missing: Vec<&str> = m.op_types.iter().map(String::as_str).filter(|op| !supported.contains(op)).collect();
        println!(
            "{name}: {} cases; ops {}; not in lithe_onnx::supported_ops(): {}",
            m.cases.len(),
            m.op_types.join(", "),
            if missing.is_empty() { "none".to_string() } else { missing.join(", ") }
        );
    }
    Ok(())
}
