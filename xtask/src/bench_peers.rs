//! `cargo xtask bench-peers`: Lithe's latency next to other CPU inference engines on full-size
//! CNNs, written to `docs/benchmarks.md`.
//!
//! The models are exported from torchvision with random (seeded) weights by
//! `xtask/python/bench_peers.py` into `target/bench-peers/models/`. Lithe is timed with
//! `lite-cli bench`, tract with the small separate project `xtask/tract-bench/` (its own
//! workspace, so the Lithe workspace never compiles tract), and the Python engines (onnxruntime,
//! LiteRT, ncnn, MNN) by the script, each engine/model/thread count in its own subprocess so a
//! crashing engine only loses its own cell.

mod int8;

use crate::process::{Captured, last_line, run_captured};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Packages of the benchmark venv. torch comes from PyPI, whose Linux wheel pulls the nvidia-*
/// CUDA wheels (about 3 GB) it never uses here: installed with `--no-deps` it does not even import
/// (`libcudart.so.13` missing), so they are paid once and the venv is cached in `target/`.
pub(crate) const PACKAGES: &[&str] =
    &["torch", "torchvision", "onnx", "onnxscript", "onnxruntime", "numpy", "ncnn", "pnnx", "MNN"];
/// The venv's name under `target/` (`cargo xtask quant-data` shares it).
pub(crate) const VENV: &str = "peersenv";
/// LiteRT gets a venv of its own: `litert-torch` pins its own torch version and pulls much more,
/// and if it cannot be installed only the LiteRT column is lost.
const LITERT_VENV: &str = "peersenv-litert";
/// Packages of [`LITERT_VENV`].
const LITERT_PACKAGES: &[&str] = &["litert-torch", "torchvision", "ai-edge-litert", "numpy"];
/// Every model the tool knows, in table order.
pub const ALL_MODELS: &[&str] = &[
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "resnet18",
    "resnet50",
    "shufflenet_v2_x1_0",
    "squeezenet1_1",
    "mnasnet1_0",
];
/// Every engine, Lithe first.
pub const ALL_ENGINES: &[&str] = &["lithe", "onnxruntime", "litert", "ncnn", "mnn", "tract"];
/// One engine run may take at most this long (conversion included).
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Models, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Thread counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Timed runs per engine, model and thread count (the median is reported).
    #[arg(long, default_value_t = 30)]
    repeats: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Engines, comma-separated (default: all). Lithe is always timed, as the reference.
    #[arg(long, value_delimiter = ',')]
    engines: Vec<String>,
    /// Int8 mode: each engine's own int8 model (Lithe: `lite-cli quant --quant int8`; peers
    /// onnxruntime, LiteRT, ncnn), next to Lithe fp32; writes the `## int8` section of the report.
    #[arg(long)]
    int8: bool,
    /// Calibration samples of `--int8` (the scikit-image crops of `cargo xtask quant-data` when
    /// present, else deterministic pseudo-images).
    #[arg(long, default_value_t = 32)]
    calib_samples: usize,
    /// A note for docs/benchmarks.md, e.g. that other builds were running.
    #[arg(long)]
    note: Option<String>,
    /// Where to write the report (default: docs/benchmarks.md).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One engine's result on one model at one thread count.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Median latency in ms.
    Ms(f64),
    /// Did not run; the reason.
    NA(String),
    /// Not applicable at this thread count (tract at more than one thread).
    Skip,
}

impl Cell {
    fn ms(&self) -> Option<f64> {
        match self {
            Cell::Ms(v) => Some(*v),
            _ => None,
        }
    }
}

/// Entry point.
pub fn run(a: Args) -> Result<()> {
    if a.repeats == 0 || a.threads.is_empty() || a.threads.contains(&0) {
        bail!("--repeats and every --threads value must be at least 1");
    }
    let models: Vec<String> =
        if a.models.is_empty() { ALL_MODELS.iter().map(|s| s.to_string()).collect() } else { a.models.clone() };
    for m in &models {
        if !ALL_MODELS.contains(&m.as_str()) {
            bail!("unknown model {m}; known: {}", ALL_MODELS.join(","));
        }
    }
    let default_peers = if a.int8 { int8::ENGINES } else { &ALL_ENGINES[1..] };
    let mut peers: Vec<String> = if a.engines.is_empty() {
        default_peers.iter().map(|s| s.to_string()).collect()
    } else {
        a.engines.iter().filter(|e| e.as_str() != "lithe").cloned().collect()
    };
    peers.dedup();
    for e in &peers {
        if !ALL_ENGINES.contains(&e.as_str()) {
            bail!("unknown engine {e}; known: {}", ALL_ENGINES.join(","));
        }
        if a.int8 && !int8::ENGINES.contains(&e.as_str()) {
            bail!("--int8: no int8 path for {e}; int8 engines: {}", int8::ENGINES.join(","));
        }
    }
    if a.int8 && a.calib_samples == 0 {
        bail!("--calib-samples must be at least 1");
    }

    let root = crate::root();
    let work = root.join("target/bench-peers");
    let model_dir = work.join("models");
    std::fs::create_dir_all(&model_dir)?;
    let py = crate::python::ensure_venv(VENV, PACKAGES)?;
    let script = root.join("xtask/python/bench_peers.py");
    let litert_py = peers.iter().any(|p| p == "litert").then(|| {
        crate::python::ensure_venv(LITERT_VENV, LITERT_PACKAGES)
            .map_err(|e| format!("litert-torch not installable here: {e}"))
    });

    // 1. Export the models not cached yet.
    let missing: Vec<&String> = models.iter().filter(|m| !model_dir.join(format!("{m}.onnx")).exists()).collect();
    let mut export_failed: BTreeMap<String, String> = BTreeMap::new();
    if !missing.is_empty() {
        eprintln!("exporting {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
        let list = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        let out = run_captured(
            Command::new(&py).arg(&script).args(["export", "--out"]).arg(&model_dir).args(["--models", &list]),
            RUN_TIMEOUT,
        )?;
        for line in out.stdout.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && v["ok"] == Value::Bool(false)
            {
                let m = v["model"].as_str().unwrap_or("?").to_string();
                let why = v["reason"].as_str().unwrap_or("export failed").to_string();
                eprintln!("export of {m} failed: {why}");
                export_failed.insert(m, why);
            }
        }
    }
    let models: Vec<String> = models
        .into_iter()
        .filter(|m| {
            let ok = model_dir.join(format!("{m}.onnx")).exists();
            if !ok && !export_failed.contains_key(m) {
                export_failed.insert(m.clone(), "no ONNX file after export".into());
            }
            ok
        })
        .collect();

    // 2. Build the native runners.
    let lite_cli = build_lite_cli(&root)?;
    if a.int8 {
        let ctx = int8::Ctx {
            root: &root,
            work: &work,
            model_dir: &model_dir,
            script: &script,
            py: &py,
            litert_py: litert_py.as_ref(),
            lite_cli: &lite_cli,
        };
        return int8::run(&a, &ctx, &models, &peers, export_failed);
    }
    let tract = if peers.iter().any(|p| p == "tract") { Some(build_tract_bench(&root)) } else { None };

    // 3. Time everything.
    let mut tract_version = None;
    let mut lithe_kernels = None;
    let mut tables = Vec::new();
    for &threads in &a.threads {
        let mut rows = Vec::new();
        for m in &models {
            let onnx = model_dir.join(format!("{m}.onnx"));
            eprint!("[{threads} thread(s)] {m}: lithe");
            let (lithe, kernels) = time_lithe(&lite_cli, &onnx, threads, a.warmup, a.repeats);
            lithe_kernels = lithe_kernels.or(kernels);
            eprint!(" {}", cell_text(&lithe));
            let mut cells = Vec::new();
            for p in &peers {
                eprint!(", {p}");
                let c = match p.as_str() {
                    "tract" if threads != 1 => Cell::Skip,
                    "tract" => match tract.as_ref() {
                        Some(Ok(exe)) => {
                            let (c, v) = time_tract(exe, &onnx, a.warmup, a.repeats);
                            tract_version = tract_version.or(v);
                            c
                        }
                        Some(Err(e)) => Cell::NA(format!("tract-bench did not build: {e}")),
                        None => Cell::Skip,
                    },
                    "litert" => match litert_py.as_ref() {
                        Some(Ok(lpy)) => time_python(lpy, &script, p, &onnx, &work, threads, a.warmup, a.repeats),
                        Some(Err(e)) => Cell::NA(e.clone()),
                        None => Cell::Skip,
                    },
                    _ => time_python(&py, &script, p, &onnx, &work, threads, a.warmup, a.repeats),
                };
                eprint!(" {}", cell_text(&c));
                cells.push(c);
            }
            eprintln!();
            rows.push(Row { model: m.clone(), lithe, peers: cells });
        }
        let table = Table { threads, peers: peers.clone(), rows };
        println!("\n{} thread(s), median ms over {} runs after {} warm-up\n", threads, a.repeats, a.warmup);
        print!("{}", table.markdown());
        tables.push(table);
    }

    // 4. The report.
    let versions = all_versions(&py, litert_py.as_ref(), &script);
    let report = Report {
        date: shell_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default(),
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        commit: git_commit(&root),
        command: command_line(),
        note: a.note.clone(),
        versions,
        tract_version,
        lithe_kernels,
        warmup: a.warmup,
        repeats: a.repeats,
        export_failed,
        tables,
    };
    let out = a.out.clone().unwrap_or_else(|| root.join("docs/benchmarks.md"));
    write_report(&out, Some(report.markdown()), None)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// The heading that starts the int8 part of the report; everything before it is the fp32 part.
pub const INT8_HEADING: &str = "## int8";

/// Split a report into its fp32 part and its int8 part (from the `## int8` line on, if any).
pub fn split_report(text: &str) -> (&str, &str) {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == INT8_HEADING {
            return (&text[..at], &text[at..]);
        }
        at += line.len();
    }
    (text, "")
}

/// Compose the report from a new fp32 part and/or a new int8 part, keeping the other part of the
/// existing report (so neither mode destroys the other's results).
pub fn compose_report(old: Option<&str>, fp32: Option<String>, int8: Option<String>) -> String {
    let (old_fp32, old_int8) = old.map(split_report).unwrap_or(("", ""));
    let mut s = fp32.unwrap_or_else(|| {
        if old_fp32.trim().is_empty() {
            "# Benchmarks: Lithe and other CPU inference engines\n\n\
             No fp32 results yet: run `cargo xtask bench-peers`.\n"
                .to_string()
        } else {
            old_fp32.to_string()
        }
    });
    let int8 = int8.unwrap_or_else(|| old_int8.to_string());
    if !int8.is_empty() {
        while s.ends_with("\n\n") {
            s.pop();
        }
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&int8);
    }
    s
}

/// Write the report at `out`, replacing the parts given and keeping the others.
fn write_report(out: &Path, fp32: Option<String>, int8: Option<String>) -> Result<()> {
    let old = std::fs::read_to_string(out).ok();
    let text = compose_report(old.as_deref(), fp32, int8);
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))
}

/// The pip versions of both venvs (LiteRT's packages and torch from its own venv).
fn all_versions(
    py: &Path,
    litert_py: Option<&std::result::Result<PathBuf, String>>,
    script: &Path,
) -> BTreeMap<String, String> {
    let mut versions = python_versions(py, script);
    versions.retain(|k, _| k != "litert-torch" && k != "ai-edge-litert" && k != "torchao");
    if let Some(Ok(lpy)) = litert_py {
        for (k, v) in python_versions(lpy, script) {
            match k.as_str() {
                "litert-torch" | "ai-edge-litert" => {
                    versions.insert(k, v);
                }
                "torch" => {
                    versions.insert("torch (LiteRT conversion venv)".into(), v);
                }
                "torchao" => {
                    versions.insert("torchao (LiteRT conversion venv)".into(), v);
                }
                _ => {}
            }
        }
    }
    versions
}

/// The median from `lite-cli bench` output (`latency ms: median X  min Y  max Z`).
pub fn parse_lithe_median(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.trim_start().starts_with("latency ms:"))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "median")?;
    words.next()?.parse().ok()
}

/// Build `lite-cli` in release and return its path.
fn build_lite_cli(root: &Path) -> Result<PathBuf> {
    eprintln!("building lite-cli (release)");
    let st = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--release", "-p", "lithe-cli"])
        .status()
        .context("running cargo build")?;
    if !st.success() {
        bail!("cargo build --release -p lithe-cli failed");
    }
    Ok(root.join("target/release/lite-cli"))
}

/// Build `xtask/tract-bench` in release into `target/tract-bench` and return the executable.
fn build_tract_bench(root: &Path) -> Result<PathBuf, String> {
    eprintln!("building xtask/tract-bench (release)");
    let target = root.join("target/tract-bench");
    let st = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--release", "--manifest-path", "xtask/tract-bench/Cargo.toml", "--target-dir"])
        .arg(&target)
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("cargo build failed".into());
    }
    Ok(target.join("release/tract-bench"))
}

/// The kernel set named in `lite-cli bench`'s first line (`..., kernels NAME`).
pub fn parse_lithe_kernels(out: &str) -> Option<String> {
    let line = out.lines().next()?;
    Some(line.rsplit_once(", kernels ")?.1.trim().to_string())
}

/// Lithe's median and the kernel set it reported.
fn time_lithe(exe: &Path, onnx: &Path, threads: usize, warmup: usize, repeats: usize) -> (Cell, Option<String>) {
    let mut cmd = Command::new(exe);
    cmd.arg("bench").arg(onnx).args([
        "--threads",
        &threads.to_string(),
        "--warmup",
        &warmup.to_string(),
        "--repeats",
        &repeats.to_string(),
    ]);
    match run_captured(&mut cmd, RUN_TIMEOUT) {
        Ok(c) if c.ok => match parse_lithe_median(&c.stdout) {
            Some(ms) => (Cell::Ms(ms), parse_lithe_kernels(&c.stdout)),
            None => (Cell::NA("no median in lite-cli output".into()), None),
        },
        Ok(c) => (Cell::NA(last_line(&c.stderr)), None),
        Err(e) => (Cell::NA(e.to_string()), None),
    }
}

/// A result JSON line (`{"ok": true, "median_ms": ..}` or `{"ok": false, "reason": ..}`) to a cell.
fn json_cell(c: &Captured) -> (Cell, Option<Value>) {
    let line = c.stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l.trim()).ok());
    match line {
        Some(v) => match v["median_ms"].as_f64() {
            Some(ms) if v["ok"] != Value::Bool(false) => (Cell::Ms(ms), Some(v)),
            _ => (Cell::NA(v["reason"].as_str().unwrap_or("failed").to_string()), Some(v)),
        },
        None if c.ok => (Cell::NA("no result line".into()), None),
        None => (Cell::NA(last_line(&c.stderr)), None),
    }
}

fn time_tract(exe: &Path, onnx: &Path, warmup: usize, repeats: usize) -> (Cell, Option<String>) {
    let mut cmd = Command::new(exe);
    cmd.arg(onnx).args([warmup.to_string(), repeats.to_string()]);
    match run_captured(&mut cmd, RUN_TIMEOUT) {
        Ok(c) => {
            let (cell, v) = json_cell(&c);
            (cell, v.and_then(|v| v["version"].as_str().map(String::from)))
        }
        Err(e) => (Cell::NA(e.to_string()), None),
    }
}

#[allow(clippy::too_many_arguments)]
fn time_python(
    py: &Path,
    script: &Path,
    engine: &str,
    onnx: &Path,
    work: &Path,
    threads: usize,
    warmup: usize,
    repeats: usize,
) -> Cell {
    let mut cmd = Command::new(py);
    cmd.arg(script).args(["run", "--engine", engine, "--onnx"]).arg(onnx).arg("--work").arg(work).args([
        "--threads",
        &threads.to_string(),
        "--warmup",
        &warmup.to_string(),
        "--repeats",
        &repeats.to_string(),
    ]);
    match run_captured(&mut cmd, RUN_TIMEOUT) {
        Ok(c) => json_cell(&c).0,
        Err(e) => Cell::NA(e.to_string()),
    }
}

fn python_versions(py: &Path, script: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(c) = run_captured(Command::new(py).arg(script).arg("versions"), Duration::from_secs(120))
        && let Some(Value::Object(m)) = c.stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        for (k, v) in m {
            out.insert(k, v.as_str().unwrap_or("not installed").to_string());
        }
    }
    out
}

fn shell_line(cmd: &mut Command) -> Option<String> {
    let o = cmd.output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The CPU model and its SIMD extensions that matter here, from `/proc/cpuinfo`.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
    };
    let model = field("model name").unwrap_or_else(|| "unknown CPU".into());
    let flags = field("flags").unwrap_or_default();
    let simd: Vec<&str> = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    if simd.is_empty() { model } else { format!("{model} ({})", simd.join(", ")) }
}

fn git_commit(root: &Path) -> String {
    let head = shell_line(Command::new("git").current_dir(root).args(["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let dirty =
        shell_line(Command::new("git").current_dir(root).args(["status", "--porcelain", "--untracked-files=no"]))
            .is_some_and(|s| !s.is_empty());
    if dirty { format!("{head} (with uncommitted changes)") } else { head }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(
            |a| if a.contains([' ', '"', '\'', ';', '(', ')']) { format!("'{}'", a.replace('\'', "'\\''")) } else { a },
        )
        .collect();
    format!("cargo xtask {}", args.join(" "))
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Ms(v) => format!("{v:.2}"),
        Cell::NA(_) => "n/a".into(),
        Cell::Skip => "-".into(),
    }
}

/// One model's row.
pub struct Row {
    pub model: String,
    pub lithe: Cell,
    pub peers: Vec<Cell>,
}

/// The results at one thread count.
pub struct Table {
    pub threads: usize,
    pub peers: Vec<String>,
    pub rows: Vec<Row>,
}

/// `peer / lithe`: above 1 means Lithe is faster.
pub fn ratio(lithe: &Cell, peer: &Cell) -> Option<f64> {
    match (lithe.ms(), peer.ms()) {
        (Some(l), Some(p)) if l > 0.0 => Some(p / l),
        _ => None,
    }
}

impl Table {
    /// The table in Markdown, followed by the reasons of the n/a cells.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let mut head = vec!["model".to_string(), "lithe ms".to_string()];
        head.extend(self.peers.iter().map(|p| format!("{p} ms")));
        head.extend(self.peers.iter().map(|p| format!("{p}/lithe")));
        head.push("best peer".into());
        let _ = writeln!(s, "| {} |", head.join(" | "));
        let _ = writeln!(s, "|{}", " --- |".repeat(head.len()));
        // (engine, reason) -> models, so an engine that fails everywhere is explained once.
        let mut reasons: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for r in &self.rows {
            let mut cols = vec![r.model.clone(), cell_text(&r.lithe)];
            if let Cell::NA(why) = &r.lithe {
                reasons.entry(("lithe".into(), why.clone())).or_default().push(r.model.clone());
            }
            for (p, c) in self.peers.iter().zip(&r.peers) {
                cols.push(cell_text(c));
                if let Cell::NA(why) = c {
                    reasons.entry((p.clone(), why.clone())).or_default().push(r.model.clone());
                }
            }
            for c in &r.peers {
                cols.push(match (c, ratio(&r.lithe, c)) {
                    (_, Some(x)) => format!("{x:.2}"),
                    (Cell::Skip, _) => "-".into(),
                    _ => "n/a".into(),
                });
            }
            let best = self
                .peers
                .iter()
                .zip(&r.peers)
                .filter_map(|(p, c)| c.ms().map(|v| (p, v)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            cols.push(match best {
                Some((p, v)) => format!("{p} {v:.2}"),
                None => "n/a".into(),
            });
            let _ = writeln!(s, "| {} |", cols.join(" | "));
        }
        if !reasons.is_empty() {
            let _ = writeln!(s, "\nn/a:");
            for ((engine, why), models) in reasons {
                let which = if models.len() == self.rows.len() { "all models".to_string() } else { models.join(", ") };
                let _ = writeln!(s, "- {engine} ({which}): {}", why.replace('|', "/"));
            }
        }
        s
    }
}

/// How each engine is set up, for the report.
const METHOD: &str = "\
## How each engine runs

- **Lithe**: `lite-cli bench MODEL.onnx --threads N --warmup W --repeats R` (release build), which \
imports the ONNX file and runs the default optimization passes in memory; the median is parsed from \
its output.
- **onnxruntime**: `InferenceSession` on the ONNX file, CPU provider, `intra_op_num_threads=N`, \
`inter_op_num_threads=1`, sequential execution, all graph optimizations.
- **LiteRT**: the torch model converted with `litert_torch.convert` (in its own venv, since \
litert-torch pins its own torch), run by the `ai-edge-litert` interpreter with `num_threads=N` \
(XNNPACK delegate by default); the input stays NCHW as in torch.
- **ncnn**: the ONNX file converted by `pnnx` with `fp16=0`, run by the `ncnn` Python bindings with \
`num_threads=N`, Vulkan off and fp16/bf16 storage and arithmetic off (f32 like the others); one \
extractor per run.
- **MNN**: the ONNX file converted by `mnnconvert`, run through an `Interpreter` session with \
`numThread=N`, CPU backend, precision `high`; each run reads the output back.
- **tract**: `xtask/tract-bench` (tract-onnx from crates.io, its own cargo workspace): the ONNX \
file with the input fixed to 1x3x224x224 f32, `into_optimized().into_runnable()`; tract runs on \
the calling thread only.

Timings include only the run call (inputs are set up before); conversions are cached in \
`target/bench-peers/`.

";

/// Everything `docs/benchmarks.md` says.
struct Report {
    date: String,
    cpu: String,
    cores: usize,
    commit: String,
    command: String,
    note: Option<String>,
    versions: BTreeMap<String, String>,
    tract_version: Option<String>,
    lithe_kernels: Option<String>,
    warmup: usize,
    repeats: usize,
    export_failed: BTreeMap<String, String>,
    tables: Vec<Table>,
}

impl Report {
    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks: Lithe and other CPU inference engines\n");
        let _ = writeln!(
            s,
            "Generated by `cargo xtask bench-peers` (see `xtask/src/bench_peers.rs`); rerun it to refresh this page.\n\n\
             Full-size torchvision CNNs at 1x3x224x224, batch 1, f32, random (seeded) weights, exported to ONNX \
             (opset 13, constant folding) and converted to each engine's own format where it has one. Each cell is \
             the median latency in ms over {} runs after {} warm-up runs, measured inside the engine's own API in its \
             own process (Lithe: `lite-cli bench`, which runs the default optimization passes first). \
             `peer/lithe` above 1 means Lithe is faster. n/a cells say why below each table; `-` means not applicable \
             (tract runs on one thread only).\n",
            self.repeats, self.warmup
        );
        s.push_str(METHOD);
        let _ = writeln!(s, "## Run\n");
        let _ = writeln!(s, "- date: {}", self.date);
        let _ = writeln!(s, "- machine: {}, {} core(s) available", self.cpu, self.cores);
        let _ = writeln!(s, "- command: `{}`", self.command);
        let _ = writeln!(s, "- Lithe commit: {}", self.commit);
        let _ = writeln!(
            s,
            "- Lithe kernels (as `lite-cli bench` reports them): {}",
            self.lithe_kernels.as_deref().unwrap_or("unknown")
        );
        let _ = writeln!(
            s,
            "- conditions: {}",
            self.note.as_deref().unwrap_or(
                "not recorded; the tool cannot tell whether other work was running on the machine, \
                 so treat small differences with caution"
            )
        );
        let _ = writeln!(s, "\n## Versions\n");
        let _ = writeln!(s, "- tract-onnx (crate): {}", self.tract_version.as_deref().unwrap_or("not run"));
        for (k, v) in &self.versions {
            let _ = writeln!(s, "- {k}: {v}");
        }
        if !self.export_failed.is_empty() {
            let _ = writeln!(s, "\n## Models that failed to export\n");
            for (m, why) in &self.export_failed {
                let _ = writeln!(s, "- {m}: {why}");
            }
        }
        for t in &self.tables {
            let _ = writeln!(s, "\n## {} thread(s)\n", t.threads);
            s.push_str(&t.markdown());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lite_cli_median() {
        let out = "m.onnx: 1 thread(s), 30 runs after 10 warm-up, kernels avx512\n\
                   latency ms: median 12.345  min 11.000  max 20.500\n";
        assert_eq!(parse_lithe_median(out), Some(12.345));
        assert_eq!(parse_lithe_median("nothing here"), None);
        assert_eq!(parse_lithe_median("latency ms: median abc"), None);
        assert_eq!(parse_lithe_kernels(out).as_deref(), Some("avx512"));
    }

    #[test]
    fn ratio_is_peer_over_lithe() {
        assert_eq!(ratio(&Cell::Ms(2.0), &Cell::Ms(3.0)), Some(1.5));
        assert_eq!(ratio(&Cell::NA("x".into()), &Cell::Ms(3.0)), None);
        assert_eq!(ratio(&Cell::Ms(2.0), &Cell::Skip), None);
    }

    #[test]
    fn table_markdown() {
        let t = Table {
            threads: 2,
            peers: vec!["onnxruntime".into(), "tract".into(), "mnn".into()],
            rows: vec![
                Row {
                    model: "resnet18".into(),
                    lithe: Cell::Ms(10.0),
                    peers: vec![Cell::Ms(12.5), Cell::Skip, Cell::NA("boom | bang".into())],
                },
                Row {
                    model: "squeezenet1_1".into(),
                    lithe: Cell::NA("crash".into()),
                    peers: vec![Cell::Ms(3.0), Cell::Skip, Cell::NA("boom | bang".into())],
                },
            ],
        };
        let md = t.markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "| model | lithe ms | onnxruntime ms | tract ms | mnn ms | onnxruntime/lithe | tract/lithe | mnn/lithe | best peer |"
        );
        assert_eq!(lines[1], "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        assert_eq!(lines[2], "| resnet18 | 10.00 | 12.50 | - | n/a | 1.25 | - | n/a | onnxruntime 12.50 |");
        assert_eq!(lines[3], "| squeezenet1_1 | n/a | 3.00 | - | n/a | n/a | - | n/a | onnxruntime 3.00 |");
        assert!(md.contains("- lithe (squeezenet1_1): crash"));
        assert!(md.contains("- mnn (all models): boom / bang"));
    }
}
