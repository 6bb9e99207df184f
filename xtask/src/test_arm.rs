//! `cargo xtask test-arm`: the AArch64 build and tests of the kernel crates and the runtime,
//! cross-compiled and run under qemu user-mode emulation.

use anyhow::{Context, bail};
use std::process::Command;
use std::time::Instant;

const TARGET: &str = "aarch64-unknown-linux-gnu";
const LINKER: &str = "aarch64-linux-gnu-gcc";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
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
    ensure_target(args.no_install)?;
    let qemu = ensure_tools(args.no_install)?;
    let runner = format!("{qemu} -L {SYSROOT}");
    let cases = std::env::var("PROPTEST_CASES").unwrap_or_else(|_| QEMU_PROPTEST_CASES.to_string());
    let target_dir = crate::root().join("target/aarch64");
    eprintln!("test-arm: {TARGET}, runner `{runner}`, PROPTEST_CASES={cases}, target dir {}", target_dir.display());

    let mut cmd = Command::new(cargo());
    cmd.current_dir(crate::root())
        .args(["test", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", LINKER)
        .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", &runner)
        .env("PROPTEST_CASES", &cases);
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

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Whether `prog` can be found on `PATH`.
fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

fn ensure_target(no_install: bool) -> anyhow::Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match out {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == TARGET) => Ok(()),
        Ok(o) if o.status.success() => {
            if no_install {
                bail!("the Rust target {TARGET} is not installed (rustup target add {TARGET})");
            }
            eprintln!("test-arm: rustup target add {TARGET}");
            let s = Command::new("rustup").args(["target", "add", TARGET]).status()?;
            if !s.success() {
                bail!("rustup target add {TARGET} failed ({s})");
            }
            Ok(())
        }
        // No rustup: assume the toolchain was installed with the target some other way.
        _ => {
            eprintln!("test-arm: rustup not usable; assuming the {TARGET} standard library is installed");
            Ok(())
        }
    }
}

/// The qemu binary to use, after installing the cross gcc and qemu with apt when missing.
fn ensure_tools(no_install: bool) -> anyhow::Result<&'static str> {
    let qemu = || ["qemu-aarch64-static", "qemu-aarch64"].into_iter().find(|q| on_path(q));
    let have_gcc = on_path(LINKER);
    if let (true, Some(q)) = (have_gcc, qemu()) {
        return Ok(q);
    }
    if no_install {
        bail!("missing {LINKER} or qemu-aarch64(-static): apt-get install gcc-aarch64-linux-gnu qemu-user-static");
    }
    let mut packages = Vec::new();
    if !have_gcc {
        packages.push("gcc-aarch64-linux-gnu");
    }
    if qemu().is_none() {
        packages.push("qemu-user-static");
    }
    apt(&["update"])?;
    let mut install = vec!["install", "-y"];
    install.extend(&packages);
    apt(&install)?;
    if !on_path(LINKER) {
        bail!("{LINKER} still missing after installing {packages:?}");
    }
    qemu().context("qemu-aarch64(-static) still missing after installing qemu-user-static")
}

/// `apt-get args`, through sudo unless running as root.
fn apt(args: &[&str]) -> anyhow::Result<()> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if root {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    eprintln!("test-arm: {}apt-get {}", if root { "" } else { "sudo " }, args.join(" "));
    let s = cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive").status().context("running apt-get")?;
    if !s.success() {
        bail!("apt-get {} failed ({s})", args.join(" "));
    }
    Ok(())
}
