//! `cargo xtask bench-arm`: `lite-cli bench` on an AArch64 device (adb or ssh) or, as a smoke
//! run, under qemu on this machine; one markdown table of median latency by model and thread
//! count, with the speed-up over one thread.
//!
//! `lite-cli` is cross-built in release for `aarch64-unknown-linux-gnu` (or, for adb with
//! `ANDROID_NDK_HOME` set, `aarch64-linux-android`); each ONNX model is optimized into a `.nb`
//! by the host `lite-cli opt`, so the device only maps the weights.

mod device;
mod report;

use crate::bench_peers::ALL_MODELS;
use crate::cross::{self, ANDROID_LINKER_ENV, ANDROID_TARGET, LINKER, LINKER_ENV, TARGET};
use crate::process::{Captured, run_captured};
use anyhow::{Context, Result, bail};
use device::{Argv, Device, ModelFile, Plan};
use report::{BenchStats, Row, Table, parse_bench};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where `cargo xtask bench-peers` exports the full-size models.
const EXPORTED: &str = "target/bench-peers/models";
/// The bundled model the README's first command uses: the fallback when nothing is exported.
const BUNDLED: &str = "testdata/golden/mobilenet_v2/model.onnx";
/// The one model of a qemu run when exported.
const SMOKE_MODEL: &str = "mobilenet_v3_small";
/// Where the `.nb` files are written on the host.
const WORK: &str = "target/bench-arm";
/// Limit of one copy to the device.
const COPY_TIMEOUT: Duration = Duration::from_secs(600);
/// Limit of one `lite-cli` run (opt on the host, bench on the device or under qemu).
const RUN_TIMEOUT: Duration = Duration::from_secs(900);
/// Limit of the first contact (`uname -m`); ssh gives up connecting after 10 s by itself.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `cargo xtask bench-arm`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cargo xtask bench-arm --device qemu\n  \
    cargo xtask bench-arm --device ssh:pi@raspberrypi.local --models mobilenet_v2,resnet18\n  \
    ANDROID_NDK_HOME=~/android-ndk cargo xtask bench-arm --device adb:R58M123 --threads 1,4")]
pub struct Args {
    /// Where to run. `adb:SERIAL`: files go to /data/local/tmp/lithe; with ANDROID_NDK_HOME set the
    /// binary is built for aarch64-linux-android (linked by the NDK's clang), else the glibc Linux
    /// binary is pushed, which runs only on rooted or Linux-like devices with a glibc loader.
    /// `ssh:[USER@]HOST`: an AArch64 Linux machine with key-based login (BatchMode, no prompts).
    /// `qemu`: a smoke run of the cross-built binary on this machine under qemu-aarch64; its
    /// timings mean nothing.
    #[arg(long, value_name = "adb:SERIAL|ssh:USER@HOST|qemu")]
    device: Device,
    /// Models, comma-separated: names exported by `cargo xtask bench-peers` (target/bench-peers/models/NAME.onnx),
    /// names under testdata/golden, or paths to .onnx/.nb files [default: every exported model; qemu:
    /// mobilenet_v3_small; the bundled testdata/golden/mobilenet_v2 when none is exported].
    #[arg(long, value_delimiter = ',', value_name = "MODEL,...")]
    models: Vec<String>,
    /// Thread counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4", value_name = "N,...")]
    threads: Vec<usize>,
    /// Untimed runs before measuring [default: 10; qemu: 1].
    #[arg(long)]
    warmup: Option<usize>,
    /// Timed runs; the median is reported [default: 30; qemu: 2].
    #[arg(long)]
    repeats: Option<usize>,
    /// Directory on the device (created; files are left there for the next run)
    /// [default: /data/local/tmp/lithe for adb, /tmp/lithe-bench for ssh].
    #[arg(long, value_name = "DIR")]
    remote_dir: Option<String>,
    /// Android API level of the NDK clang that links the aarch64-linux-android binary.
    #[arg(long, default_value_t = 24, value_name = "LEVEL")]
    android_api: u32,
    /// Do not install missing tools (rustup target, cross gcc, qemu); fail instead.
    #[arg(long)]
    no_install: bool,
}

/// A model to benchmark: its label in the table and its file on the host (`.onnx` or `.nb`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Source {
    label: String,
    path: PathBuf,
}

/// Entry point.
pub fn run(a: Args) -> Result<()> {
    let smoke = a.device == Device::Qemu;
    let warmup = a.warmup.unwrap_or(if smoke { 1 } else { 10 });
    let repeats = a.repeats.unwrap_or(if smoke { 2 } else { 30 });
    if repeats == 0 || a.threads.is_empty() || a.threads.contains(&0) {
        bail!("--repeats and every --threads value must be at least 1");
    }
    let root = crate::root();
    let sources = resolve_models(&a.models, smoke, &root, &root.join(EXPORTED))?;
    let android = match &a.device {
        Device::Adb(_) => cross::android_linker(a.android_api)?,
        _ => None,
    };
    if matches!(a.device, Device::Adb(_)) && android.is_none() {
        eprintln!(
            "bench-arm: ANDROID_NDK_HOME is not set: pushing the glibc Linux binary, which runs only on rooted or \
             Linux-like devices; set ANDROID_NDK_HOME to build for {ANDROID_TARGET}"
        );
    }
    // 1. Reach the device before spending minutes on builds.
    let qemu = if smoke { cross::ensure_tools(a.no_install, true)?.unwrap_or("qemu-aarch64") } else { "" };
    let mut plan = Plan::new(a.device.clone(), a.remote_dir.as_deref(), PathBuf::new(), qemu)?;
    let arch = match plan.probe() {
        Some(argv) => {
            let out = run_step(&argv, PROBE_TIMEOUT, &a.device)?;
            let arch = out.stdout.trim().to_string();
            if arch != "aarch64" && arch != "arm64" {
                bail!("{}: `uname -m` says '{arch}'; bench-arm runs AArch64 (64-bit) binaries only", a.device);
            }
            arch
        }
        None => "aarch64 under qemu".to_string(),
    };
    // 2. The models as .nb files, converted by the host lite-cli.
    let models = convert_models(&sources, &root)?;
    // 3. The AArch64 lite-cli.
    plan.binary = match &android {
        Some(clang) => {
            cross::ensure_target(ANDROID_TARGET, a.no_install)?;
            build_lite_cli(&root, Some(ANDROID_TARGET), &[(ANDROID_LINKER_ENV, clang.display().to_string())])?
        }
        None => {
            cross::ensure_target(TARGET, a.no_install)?;
            if !smoke {
                cross::ensure_tools(a.no_install, false)?;
            }
            build_lite_cli(&root, Some(TARGET), &[(LINKER_ENV, LINKER.to_string())])?
        }
    };
    // 4. Copy, then time every model at every thread count.
    let copies = plan.install(&models);
    if !copies.is_empty() {
        eprintln!("bench-arm: copying lite-cli and {} model(s) to {}:{}", models.len(), a.device, plan.dir);
    }
    for argv in &copies {
        run_step(argv, COPY_TIMEOUT, &a.device)?;
    }
    let mut rows = Vec::new();
    let mut kernels = None;
    for (src, file) in sources.iter().zip(&models) {
        let mut cells = Vec::new();
        for &t in &a.threads {
            eprint!("bench-arm: [{}] {} at {t} thread(s): ", a.device, src.label);
            let cell = bench_once(&plan.bench(file, t, warmup, repeats));
            match &cell {
                Ok(st) => {
                    eprintln!("median {:.2} ms (min {:.2}, max {:.2})", st.median, st.min, st.max);
                    kernels = kernels.or(st.kernels.clone());
                }
                Err(why) => eprintln!("failed: {why}"),
            }
            cells.push(cell);
        }
        rows.push(Row { model: src.label.clone(), cells });
    }
    // 5. The table.
    let caption = format!(
        "`cargo xtask bench-arm --device {}`: {arch}, kernels {}; median ms over {repeats} run(s) after {warmup} warm-up",
        a.device,
        kernels.as_deref().unwrap_or("unknown")
    );
    let all_failed = rows.iter().all(|r| r.cells.iter().all(Result::is_err));
    let table = Table { caption, smoke, threads: a.threads.clone(), rows };
    println!("\n{}", table.markdown());
    if all_failed {
        bail!("every lite-cli bench run on {} failed", a.device);
    }
    Ok(())
}

/// The models to run: `requested` names or paths, or the defaults (every model in `exported`;
/// under qemu only [`SMOKE_MODEL`]), falling back to [`BUNDLED`] when none is exported.
fn resolve_models(requested: &[String], smoke: bool, root: &Path, exported: &Path) -> Result<Vec<Source>> {
    let exported = |name: &str| exported.join(format!("{name}.onnx"));
    let mut sources = Vec::new();
    if requested.is_empty() {
        let defaults: &[&str] = if smoke { &[SMOKE_MODEL] } else { ALL_MODELS };
        let (found, missing): (Vec<&str>, Vec<&str>) = defaults.iter().partition(|m| exported(m).is_file());
        sources.extend(found.iter().map(|m| Source { label: m.to_string(), path: exported(m) }));
        if sources.is_empty() {
            eprintln!(
                "bench-arm: {} in {EXPORTED} (run `cargo xtask bench-peers` once to export the full-size models); \
                 benchmarking the small bundled {BUNDLED} instead",
                if smoke { "no mobilenet_v3_small" } else { "no model" }
            );
            let bundled = root.join(BUNDLED);
            if !bundled.is_file() {
                bail!("{} is missing too", bundled.display());
            }
            sources.push(Source { label: "golden/mobilenet_v2".into(), path: bundled });
        } else if !missing.is_empty() {
            eprintln!("bench-arm: not exported (run `cargo xtask bench-peers`), skipped: {}", missing.join(", "));
        }
    }
    for name in requested {
        let golden = root.join("testdata/golden").join(name).join("model.onnx");
        let as_path = PathBuf::from(name);
        let src = if exported(name).is_file() {
            Source { label: name.clone(), path: exported(name) }
        } else if !name.contains('/') && golden.is_file() {
            Source { label: format!("golden/{name}"), path: golden }
        } else if as_path.is_file() && (name.ends_with(".onnx") || name.ends_with(".nb")) {
            Source { label: path_label(&as_path), path: as_path }
        } else {
            bail!(
                "model '{name}': no {EXPORTED}/{name}.onnx (`cargo xtask bench-peers --models {name}` exports it), \
                 no testdata/golden/{name}/model.onnx, and not an .onnx or .nb file"
            );
        };
        sources.push(src);
    }
    let mut names: Vec<String> = sources.iter().map(|s| nb_name(&s.label)).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("two models would both be {} on the device; list each once", w[0]);
    }
    Ok(sources)
}

/// The label of a model given by path: its file stem, or its directory's name for the common
/// `DIR/model.onnx`.
fn path_label(path: &Path) -> String {
    let name = |p: Option<&std::ffi::OsStr>| p.map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let stem = name(path.file_stem());
    let dir = name(path.parent().and_then(Path::file_name));
    if stem == "model" && !dir.is_empty() { dir } else { stem }
}

/// The `.nb` file name of a model label: only characters a remote shell leaves alone.
fn nb_name(label: &str) -> String {
    let safe: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    format!("{}.nb", safe.trim_start_matches(['-', '.']))
}

/// Each model as a `.nb` under [`WORK`]: ONNX files optimized by the host `lite-cli opt` (built
/// first), `.nb` files as they are.
fn convert_models(sources: &[Source], root: &Path) -> Result<Vec<ModelFile>> {
    let needs_opt = sources.iter().any(|s| s.path.extension().is_none_or(|e| e != "nb"));
    let host_cli = if needs_opt { Some(build_lite_cli(root, None, &[])?) } else { None };
    let work = root.join(WORK);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut files = Vec::new();
    for s in sources {
        let name = nb_name(&s.label);
        let Some(cli) = host_cli.as_ref().filter(|_| s.path.extension().is_none_or(|e| e != "nb")) else {
            files.push(ModelFile { path: s.path.clone(), name });
            continue;
        };
        let out = work.join(&name);
        eprintln!("bench-arm: lite-cli opt {} -> {}", s.path.display(), out.display());
        let mut cmd = Command::new(cli);
        cmd.arg("opt").arg("--model").arg(&s.path).arg("--out").arg(&out).args(["--valid-targets", "arm"]);
        let c = run_captured(&mut cmd, RUN_TIMEOUT).with_context(|| format!("running {}", cli.display()))?;
        if !c.ok {
            bail!("lite-cli opt --model {} failed: {}", s.path.display(), failure(&c));
        }
        files.push(ModelFile { path: out, name });
    }
    Ok(files)
}

/// `cargo build --release -p lithe-cli --bin lite-cli` for `target` (the host when `None`) with
/// `envs`; returns the executable cargo reports.
fn build_lite_cli(root: &Path, target: Option<&str>, envs: &[(&str, String)]) -> Result<PathBuf> {
    let mut args = vec!["build", "--release", "-p", "lithe-cli", "--bin", "lite-cli"];
    args.extend(target.map(|t| ["--target", t]).into_iter().flatten());
    eprintln!("bench-arm: cargo {}", args.join(" "));
    let out = Command::new(cross::cargo())
        .current_dir(root)
        .args(&args)
        .arg("--message-format=json-render-diagnostics")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build")?;
    if !out.status.success() {
        bail!("cargo {} failed ({})", args.join(" "), out.status);
    }
    executable(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("cargo {} reported no lite-cli executable", args.join(" ")))
}

/// The `lite-cli` executable in cargo's JSON messages (`--message-format=json`).
fn executable(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "lite-cli")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
}

/// Run one step of the device setup; an error names the device, the command and why it failed.
fn run_step(argv: &Argv, timeout: Duration, device: &Device) -> Result<Captured> {
    let (prog, args) = argv.split_first().context("empty command")?;
    let line = argv.join(" ");
    let c = run_captured(Command::new(prog).args(args), timeout)
        .with_context(|| format!("{device}: cannot run `{line}` (is {prog} installed?)"))?;
    if !c.ok {
        bail!("{device}: `{line}` failed: {}", failure(&c));
    }
    Ok(c)
}

/// One `lite-cli bench` run: its numbers, or why there are none.
fn bench_once(argv: &Argv) -> Result<BenchStats, String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let c = run_captured(Command::new(prog).args(args), RUN_TIMEOUT).map_err(|e| format!("cannot run {prog}: {e}"))?;
    if !c.ok {
        return Err(failure(&c));
    }
    parse_bench(&c.stdout).map_err(|e| format!("{e}: {}", crate::process::last_line(&c.stdout)))
}

/// Why a command failed: the last line it wrote (stderr first, some adb versions use stdout)
/// and its exit status.
fn failure(c: &Captured) -> String {
    let lines = |s: &str| s.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect::<Vec<_>>();
    let mut err = lines(&c.stderr);
    // run_captured appends the exit status (or the timeout) to stderr.
    let status = err.pop().unwrap_or_else(|| "failed".into());
    let said = err.pop().or_else(|| lines(&c.stdout).pop());
    let said: Option<String> = said.map(|s| s.chars().take(200).collect());
    match said {
        Some(s) => format!("{s} ({status})"),
        None => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_executable_in_cargo_messages() {
        let msgs = r#"{"reason":"compiler-artifact","target":{"name":"lithe_ir"},"executable":null}
{"reason":"compiler-artifact","target":{"name":"lite-cli","kind":["bin"]},"executable":"/w/target/aarch64-unknown-linux-gnu/release/lite-cli"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(executable(msgs), Some(PathBuf::from("/w/target/aarch64-unknown-linux-gnu/release/lite-cli")));
        assert_eq!(executable("not json\n{\"reason\":\"build-finished\"}"), None);
    }

    #[test]
    fn path_labels() {
        assert_eq!(path_label(Path::new("/m/resnet50-v1.onnx")), "resnet50-v1");
        assert_eq!(path_label(Path::new("zoo/yolo/model.onnx")), "yolo");
        assert_eq!(path_label(Path::new("model.nb")), "model");
    }

    #[test]
    fn nb_names_are_shell_safe() {
        assert_eq!(nb_name("resnet18"), "resnet18.nb");
        assert_eq!(nb_name("golden/mobilenet_v2"), "golden_mobilenet_v2.nb");
        assert_eq!(nb_name("-my model$(x)"), "my_model__x_.nb");
        assert!(device::shell_safe(&nb_name("a b;c|d")));
    }

    #[test]
    fn models_fall_back_to_the_bundled_one() {
        let root = crate::root();
        let none = root.join("target/bench-arm-test-no-models");
        let bundled = vec![Source { label: "golden/mobilenet_v2".into(), path: root.join(BUNDLED) }];
        // Nothing exported: the bundled model, on a device and under qemu.
        assert_eq!(resolve_models(&[], false, &root, &none).unwrap(), bundled);
        assert_eq!(resolve_models(&[], true, &root, &none).unwrap(), bundled);
        // Exported names first, then golden names, then paths; unknown names fail.
        let golden = resolve_models(&["mnasnet0_5".into()], false, &root, &none).unwrap();
        assert_eq!(
            golden,
            vec![Source {
                label: "golden/mnasnet0_5".into(),
                path: root.join("testdata/golden/mnasnet0_5/model.onnx")
            }]
        );
        let exported =
            resolve_models(&["model".into()], false, &root, &root.join("testdata/golden/mobilenet_v2")).unwrap();
        assert_eq!(exported, vec![Source { label: "model".into(), path: root.join(BUNDLED) }]);
        let path = root.join(BUNDLED).display().to_string();
        let by_path = resolve_models(std::slice::from_ref(&path), false, &root, &none).unwrap();
        assert_eq!(by_path, vec![Source { label: "mobilenet_v2".into(), path: PathBuf::from(&path) }]);
        let e = resolve_models(&["no_such_model".into()], true, &root, &none).unwrap_err().to_string();
        assert!(e.contains("cargo xtask bench-peers"), "{e}");
        assert!(resolve_models(&["mnasnet0_5".into(), "mnasnet0_5".into()], false, &root, &none).is_err());
    }
}
