//! `cargo xtask test-arm`: the AArch64 build and tests of the kernel crates and the runtime,
//! cross-compiled and run under qemu user-mode emulation.

use crate::cross::{self, LINKER, LINKER_ENV, SYSROOT, TARGET};
use anyhow::{Context, bail};
use std::process::Command;
use std::time::Instant;

/// Crates whose tests run under qemu.
const PACKAGES: [&str; 3] = ["lithe-kernels", "lithe-kernels-arm", "lithe-runtime"];
/// `PROPTEST_CASES` under qemu (emulation is much slower than native); it applies to property
/// tests using proptest's default case count, not to those with an explicit `with_cases`.
const QEMU_PROPTEST_CASES: &str = "16";

/// Options of `cargo xtask test-arm`.
#[derive(clap::Args)]
pub struct Args {
    /// Do not install missing tools (rustup target, cross gcc, qemu); fail instead.
    #[arg(long)]
    no_install: bool,
    /// Extra arguments passed to the test binaries (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    test_args: Vec<String>,
}

/// Install what is missing, then run `cargo test --target aarch64-unknown-linux-gnu` for
/// [`PACKAGES`] with qemu as the runner.
pub fn run(args: Args) -> anyhow::Result<()> {
    let start = Instant::now();
    cross::ensure_target(TARGET, args.no_install)?;
    let qemu = cross::ensure_tools(args.no_install, true)?.context("no qemu-aarch64")?;
    let runner = format!("{qemu} -L {SYSROOT}");
    let cases = std::env::var("PROPTEST_CASES").unwrap_or_else(|_| QEMU_PROPTEST_CASES.to_string());
    let target_dir = crate::root().join("target/aarch64");
    eprintln!("test-arm: {TARGET}, runner `{runner}`, PROPTEST_CASES={cases}, target dir {}", target_dir.display());

    let mut cmd = Command::new(cross::cargo());
    cmd.current_dir(crate::root())
        .args(["test", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .env(LINKER_ENV, LINKER)
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", &runner)
        .env("PROPTEST_CASES", &cases)
        // The `max` CPU model has every extension qemu emulates (dotprod among them), so the
        // int8 `sdot` kernel runs next to the baseline NEON kernels; the test checks it ran.
        .env("QEMU_CPU", "max")
        .env("LITHE_EXPECT_DOTPROD", "1");
    for p in PACKAGES {
        cmd.args(["-p", p]);
    }
    if !args.test_args.is_empty() {
        cmd.arg("--").args(&args.test_args);
    }
    let status = cmd.status().context("running cargo test")?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!(
            "test-arm: FAILED ({status}) after {secs:.0} s: cargo test --target {TARGET} -p {}",
            PACKAGES.join(" -p ")
        );
    }
    eprintln!("test-arm: OK, {} passed on {TARGET} under qemu in {secs:.0} s", PACKAGES.join(", "));
    Ok(())
}
