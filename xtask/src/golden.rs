//! `cargo xtask golden`: regenerate `testdata/golden/`, the small ONNX models and onnxruntime
//! outputs that `crates/runtime/tests/golden.rs` compares Lithe against.
//!
//! The work is done by `xtask/python/golden.py` (torch exports and `onnx.helper` graphs, fixed
//! seeds, single-threaded torch and onnxruntime so the bytes are reproducible). `--check`
//! regenerates into a scratch directory and fails unless every file equals the committed one
//! byte for byte, which is how determinism and freshness are verified.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Packages the generator needs in the `pyenv` venv.
const PACKAGES: &[&str] = &["torch", "torchvision", "onnx", "onnxruntime", "numpy"];

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Output directory (default: `testdata/golden` in the workspace).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Regenerate only these cases (repeatable); other case directories are left untouched.
    #[arg(long)]
    only: Vec<String>,
    /// Regenerate everything into `target/golden-check` and fail unless each file equals the one
    /// in the output directory byte for byte.
    #[arg(long)]
    check: bool,
}

/// Entry point.
pub fn run(a: Args) -> Result<()> {
    let py = crate::python::ensure_venv("pyenv", PACKAGES)?;
    let golden = a.out.clone().unwrap_or_else(|| crate::root().join("testdata/golden"));
    if a.check {
        if !a.only.is_empty() {
            bail!("--check regenerates every case; it cannot be combined with --only");
        }
        let scratch = crate::root().join("target/golden-check");
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
        }
        generate(&py, &scratch, &[])?;
        return compare_trees(&golden, &scratch);
    }
    generate(&py, &golden, &a.only)
}

/// Run the generator into `out`.
fn generate(py: &PathBuf, out: &Path, only: &[String]) -> Result<()> {
    let mut args = vec!["--out".to_string(), out.display().to_string()];
    for case in only {
        args.push("--only".to_string());
        args.push(case.clone());
    }
    crate::python::run_script(py, "golden.py", &args)
}

/// Every regular file under `dir`, keyed by its path relative to `dir`, with its bytes.
fn read_tree(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let rel = path.strip_prefix(dir).map(Path::to_path_buf).unwrap_or_else(|_| path.clone());
                files.insert(rel, bytes);
            }
        }
    }
    Ok(files)
}

/// Fail unless `want` and `got` hold the same files with the same bytes.
fn compare_trees(want: &Path, got: &Path) -> Result<()> {
    let w = read_tree(want)?;
    let g = read_tree(got)?;
    let mut problems = Vec::new();
    for (path, bytes) in &w {
        match g.get(path) {
            None => problems.push(format!("{}: not regenerated", path.display())),
            Some(b) if b != bytes => {
                problems.push(format!("{}: differs ({} vs {} bytes)", path.display(), bytes.len(), b.len()))
            }
            Some(_) => {}
        }
    }
    for path in g.keys().filter(|p| !w.contains_key(*p)) {
        problems.push(format!("{}: new file not in {}", path.display(), want.display()));
    }
    if !problems.is_empty() {
        bail!("{} differs from a fresh generation in {}:\n{}", want.display(), got.display(), problems.join("\n"));
    }
    println!("{} files in {} are identical to a fresh generation", w.len(), want.display());
    Ok(())
}
