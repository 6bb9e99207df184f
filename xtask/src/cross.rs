//! The AArch64 cross toolchain shared by `test-arm` and `bench-arm`: rustup targets, the cross
//! gcc used as linker, qemu user-mode emulation (installed with apt when missing) and the
//! Android NDK's clang.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The AArch64 Linux (glibc) target.
pub const TARGET: &str = "aarch64-unknown-linux-gnu";
/// [`TARGET`]'s linker, from apt's `gcc-aarch64-linux-gnu`.
pub const LINKER: &str = "aarch64-linux-gnu-gcc";
/// The variable cargo reads [`TARGET`]'s linker from.
pub const LINKER_ENV: &str = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER";
/// The glibc sysroot qemu loads the dynamic loader and libraries from (`qemu-aarch64 -L`).
pub const SYSROOT: &str = "/usr/aarch64-linux-gnu";
/// The AArch64 Android target, linked by the NDK's clang.
pub const ANDROID_TARGET: &str = "aarch64-linux-android";
/// The variable cargo reads [`ANDROID_TARGET`]'s linker from.
pub const ANDROID_LINKER_ENV: &str = "CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER";

/// The cargo that runs xtask (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Whether `prog` can be found on `PATH`.
pub fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// Make sure rustup has the standard library of `target`, adding it unless `no_install`.
pub fn ensure_target(target: &str, no_install: bool) -> Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match out {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == target) => Ok(()),
        Ok(o) if o.status.success() => {
            if no_install {
                bail!("the Rust target {target} is not installed (rustup target add {target})");
            }
            eprintln!("xtask: rustup target add {target}");
            let s = Command::new("rustup").args(["target", "add", target]).status().context("running rustup")?;
            if !s.success() {
                bail!("rustup target add {target} failed ({s})");
            }
            Ok(())
        }
        // No rustup: assume the toolchain was installed with the target some other way.
        _ => {
            eprintln!("xtask: rustup not usable; assuming the {target} standard library is installed");
            Ok(())
        }
    }
}

/// Make sure the cross gcc ([`LINKER`]) and, with `need_qemu`, qemu-aarch64 are on `PATH`,
/// installing the missing ones with one apt-get run unless `no_install`. Returns the qemu
/// program when `need_qemu`.
pub fn ensure_tools(no_install: bool, need_qemu: bool) -> Result<Option<&'static str>> {
    let qemu = || ["qemu-aarch64-static", "qemu-aarch64"].into_iter().find(|q| on_path(q));
    let mut packages = Vec::new();
    if !on_path(LINKER) {
        packages.push("gcc-aarch64-linux-gnu");
    }
    if need_qemu && qemu().is_none() {
        packages.push("qemu-user-static");
    }
    if !packages.is_empty() {
        if no_install {
            bail!(
                "missing {LINKER}{}: apt-get install {}",
                if need_qemu { " or qemu-aarch64(-static)" } else { "" },
                packages.join(" ")
            );
        }
        apt(&["update"])?;
        let mut install = vec!["install", "-y"];
        install.extend(&packages);
        apt(&install)?;
        if !on_path(LINKER) {
            bail!("{LINKER} still missing after installing {packages:?}");
        }
    }
    if !need_qemu {
        return Ok(None);
    }
    qemu().map(Some).context("qemu-aarch64(-static) still missing after installing qemu-user-static")
}

/// The NDK clang that links [`ANDROID_TARGET`] for Android API level `api`, from
/// `ANDROID_NDK_HOME`; `None` when that variable is unset or empty.
pub fn android_linker(api: u32) -> Result<Option<PathBuf>> {
    let Some(ndk) = std::env::var_os("ANDROID_NDK_HOME").filter(|v| !v.is_empty()) else { return Ok(None) };
    let clang = ndk_clang(Path::new(&ndk), api);
    if !clang.is_file() {
        bail!(
            "ANDROID_NDK_HOME is set but {} does not exist (wrong NDK path, or no clang for API level {api}?)",
            clang.display()
        );
    }
    Ok(Some(clang))
}

/// Where an NDK keeps the clang wrapper for [`ANDROID_TARGET`] at API level `api`.
fn ndk_clang(ndk: &Path, api: u32) -> PathBuf {
    // The NDK ships x86-64 host tools only; macOS hosts (Intel or Apple) use darwin-x86_64.
    let host = if cfg!(target_os = "macos") { "darwin-x86_64" } else { "linux-x86_64" };
    ndk.join("toolchains/llvm/prebuilt").join(host).join("bin").join(format!("{ANDROID_TARGET}{api}-clang"))
}

/// `apt-get args`, through sudo unless running as root.
fn apt(args: &[&str]) -> Result<()> {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if root {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    eprintln!("xtask: {}apt-get {}", if root { "" } else { "sudo " }, args.join(" "));
    let s = cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive").status().context("running apt-get")?;
    if !s.success() {
        bail!("apt-get {} failed ({s})", args.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndk_clang_path() {
        #[cfg(target_os = "linux")]
        assert_eq!(
            ndk_clang(Path::new("/opt/ndk"), 24),
            Path::new("/opt/ndk/toolchains/llvm/prebuilt/linux-x86_64/bin/aarch64-linux-android24-clang")
        );
        assert!(ndk_clang(Path::new("/ndk"), 30).ends_with("aarch64-linux-android30-clang"));
    }
}
