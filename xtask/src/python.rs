//! A Python virtual environment under `target/` with the packages a task needs.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// The venv's python executable, creating the venv and installing `packages` (pip requirement
/// strings) when missing. Set `LITHE_PYTHON` to use another interpreter as is.
pub fn ensure_venv(name: &str, packages: &[&str]) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LITHE_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let dir = crate::root().join("target").join(name);
    let py = dir.join("bin/python");
    if !py.exists() {
        eprintln!("creating venv {}", dir.display());
        let st = Command::new("python3").args(["-m", "venv"]).arg(&dir).status().context("running python3 -m venv")?;
        if !st.success() {
            bail!("python3 -m venv {} failed", dir.display());
        }
    }
    let stamp = dir.join(".lithe-packages");
    let want = packages.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        eprintln!("installing {} into {}", packages.join(" "), dir.display());
        let st = Command::new(&py)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages)
            .status()
            .context("running pip")?;
        if !st.success() {
            bail!("pip install {} failed", packages.join(" "));
        }
        std::fs::write(&stamp, want)?;
    }
    Ok(py)
}

/// Run a Python script from `xtask/python/` with arguments; fails on a non-zero exit.
pub fn run_script(py: &PathBuf, script: &str, args: &[String]) -> Result<()> {
    let path = crate::root().join("xtask/python").join(script);
    let st = Command::new(py).arg(&path).args(args).status().with_context(|| format!("running {}", path.display()))?;
    if !st.success() {
        bail!("{} exited with {st}", path.display());
    }
    Ok(())
}
