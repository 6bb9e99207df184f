//! Helpers shared by the CLI test binaries (`mod common;` in each).

use lithe_ir::Tensor;
use std::path::Path;
use std::process::{Command, Output};

/// `lite-cli ARGS`, its output collected.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lite-cli")).args(args).output().unwrap()
}

/// stdout followed by stderr.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// The first `n` images of an IDX file as `n x 1 x 28 x 28` f32 in `[0, 1]`.
pub fn idx_images(idx: impl AsRef<Path>, n: usize) -> Tensor {
    let b = std::fs::read(idx).unwrap();
    let px: Vec<f32> = b[16..16 + n * 784].iter().map(|&p| f32::from(p) / 255.0).collect();
    Tensor::from_vec(&[n, 1, 28, 28], px).unwrap()
}
