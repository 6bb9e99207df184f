//! `cargo xtask bench-peers --int8`: Lithe's int8 models next to Lithe fp32 and each peer's own
//! int8 model of the same network, written to the `## int8` section of `docs/benchmarks.md`.
//!
//! Calibration data: `target/bench-peers/int8/calib.npy`, N x 3 x 224 x 224 f32 normalized like
//! ImageNet (the first N scikit-image crops of `cargo xtask quant-data` when present, else
//! deterministic pseudo-images), written by `bench_peers.py calib` and shared by every engine.
//! Lithe quantizes with `lite-cli quant --quant int8`; onnxruntime with `quantize_static` (QDQ,
//! u8 activations, s8 per-channel weights); LiteRT with litert-torch's PT2E quantizer (full int8);
//! ncnn with a Python port of what `ncnn2table`/`ncnn2int8` do (those tools are not on PyPI).

use super::{
    Args, Cell, INT8_HEADING, RUN_TIMEOUT, all_versions, cell_text, command_line, cpu_model, git_commit, json_cell,
    shell_line, time_lithe, write_report,
};
use crate::process::{last_line, run_captured};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The peers with an int8 path (or a stated reason why not), in table order.
pub const ENGINES: &[&str] = &["onnxruntime", "litert", "ncnn"];

/// What the int8 run needs from the common setup of `bench-peers`.
pub struct Ctx<'a> {
    pub root: &'a Path,
    pub work: &'a Path,
    pub model_dir: &'a Path,
    pub script: &'a Path,
    pub py: &'a Path,
    pub litert_py: Option<&'a std::result::Result<PathBuf, String>>,
    pub lite_cli: &'a Path,
}

/// One model's row at one thread count.
pub struct Row {
    pub model: String,
    pub int8: Cell,
    pub fp32: Cell,
    pub peers: Vec<Cell>,
}

/// The int8 results at one thread count.
pub struct Table {
    pub threads: usize,
    pub peers: Vec<String>,
    pub rows: Vec<Row>,
}

/// `fp32 / int8` for Lithe, or `peer / lithe int8`: above 1 means the second is faster.
fn over(num: &Cell, den: &Cell) -> Option<f64> {
    match (num, den) {
        (Cell::Ms(n), Cell::Ms(d)) if *d > 0.0 => Some(n / d),
        _ => None,
    }
}

impl Table {
    /// The table in Markdown, followed by the reasons of the n/a cells.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let mut head = vec!["model".to_string(), "lithe int8 ms".into(), "lithe fp32 ms".into(), "fp32/int8".into()];
        head.extend(self.peers.iter().map(|p| format!("{p} int8 ms")));
        head.extend(self.peers.iter().map(|p| format!("{p}/lithe")));
        head.push("best peer int8".into());
        let _ = writeln!(s, "| {} |", head.join(" | "));
        let _ = writeln!(s, "|{}", " --- |".repeat(head.len()));
        let mut reasons: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for r in &self.rows {
            let mut cols = vec![r.model.clone(), cell_text(&r.int8), cell_text(&r.fp32)];
            cols.push(over(&r.fp32, &r.int8).map_or("n/a".into(), |x| format!("{x:.2}")));
            for (name, c) in [("lithe int8", &r.int8), ("lithe fp32", &r.fp32)] {
                if let Cell::NA(why) = c {
                    reasons.entry((name.into(), why.clone())).or_default().push(r.model.clone());
                }
            }
            for (p, c) in self.peers.iter().zip(&r.peers) {
                cols.push(cell_text(c));
                if let Cell::NA(why) = c {
                    reasons.entry((p.clone(), why.clone())).or_default().push(r.model.clone());
                }
            }
            for c in &r.peers {
                cols.push(over(c, &r.int8).map_or("n/a".into(), |x| format!("{x:.2}")));
            }
            let best = self
                .peers
                .iter()
                .zip(&r.peers)
                .filter_map(|(p, c)| c.ms().map(|v| (p, v)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            cols.push(best.map_or("n/a".into(), |(p, v)| format!("{p} {v:.2}")));
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

/// The calibration rows shared by every engine and where they came from; made when missing or
/// when the sample count changed (the engines' cached int8 models are then dropped).
fn calibration(ctx: &Ctx, samples: usize) -> Result<(PathBuf, String)> {
    let dir = ctx.work.join("int8");
    std::fs::create_dir_all(&dir)?;
    let npy = dir.join("calib.npy");
    let meta = dir.join("calib.json");
    if let Ok(text) = std::fs::read_to_string(&meta)
        && let Ok(v) = serde_json::from_str::<Value>(&text)
        && v["n"].as_u64() == Some(samples as u64)
        && npy.is_file()
        && let Some(src) = v["source"].as_str()
    {
        return Ok((npy, src.to_string()));
    }
    let photos = crate::cache_dir().join("quant/photos/calib.npy");
    let mut cmd = Command::new(ctx.py);
    cmd.arg(ctx.script).args(["calib", "--out"]).arg(&npy).args(["--n", &samples.to_string()]);
    if photos.is_file() {
        cmd.arg("--photos").arg(&photos);
    }
    eprintln!("writing {} ({samples} samples)", npy.display());
    let c = run_captured(&mut cmd, RUN_TIMEOUT)?;
    let v = c.stdout.lines().rev().find_map(|l| serde_json::from_str::<Value>(l.trim()).ok());
    let source = match v {
        Some(v) if c.ok && v["ok"] == Value::Bool(true) => v["source"].as_str().unwrap_or("?").to_string(),
        _ => bail!("bench_peers.py calib failed: {}", last_line(&c.stderr)),
    };
    for engine in ["lithe", "onnxruntime", "litert", "ncnn"] {
        let d = dir.join(engine);
        if d.exists() {
            std::fs::remove_dir_all(&d).with_context(|| format!("removing stale {}", d.display()))?;
        }
    }
    let rel = source.replace(&format!("{}/", ctx.root.display()), "");
    std::fs::write(&meta, serde_json::json!({"n": samples, "source": rel}).to_string())?;
    Ok((npy, rel))
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// `lite-cli quant --quant int8` of one model (cached; redone when `lite-cli` or the calibration
/// data is newer than the `.nb`).
fn lithe_quantize(ctx: &Ctx, onnx: &Path, calib: &Path, model: &str) -> std::result::Result<PathBuf, String> {
    let nb = ctx.work.join("int8/lithe").join(format!("{model}_int8.nb"));
    let fresh =
        modified(&nb).is_some_and(|t| [ctx.lite_cli, calib, onnx].iter().all(|p| modified(p).is_none_or(|u| u <= t)));
    if fresh {
        return Ok(nb);
    }
    std::fs::create_dir_all(nb.parent().unwrap_or(ctx.work)).map_err(|e| e.to_string())?;
    eprint!(" (quantizing)");
    let mut cmd = Command::new(ctx.lite_cli);
    cmd.args(["quant", "-m"]).arg(onnx).arg("-o").arg(&nb).args(["--quant", "int8", "--calib"]).arg(calib);
    match run_captured(&mut cmd, RUN_TIMEOUT) {
        Ok(c) if c.ok && nb.is_file() => Ok(nb),
        Ok(c) => {
            let _ = std::fs::remove_file(&nb);
            Err(format!("lite-cli quant failed: {}", last_line(&c.stderr)))
        }
        Err(e) => Err(format!("lite-cli quant: {e}")),
    }
}

/// One peer's int8 cell: `bench_peers.py run --int8 --calib NPY` in `py`.
fn time_peer(ctx: &Ctx, py: &Path, engine: &str, onnx: &Path, calib: &Path, threads: usize, a: &Args) -> Cell {
    let mut cmd = Command::new(py);
    cmd.arg(ctx.script).args(["run", "--engine", engine, "--onnx"]).arg(onnx).arg("--work").arg(ctx.work).args([
        "--threads",
        &threads.to_string(),
        "--warmup",
        &a.warmup.to_string(),
        "--repeats",
        &a.repeats.to_string(),
        "--int8",
        "--calib",
    ]);
    cmd.arg(calib);
    match run_captured(&mut cmd, RUN_TIMEOUT) {
        Ok(c) => json_cell(&c).0,
        Err(e) => Cell::NA(e.to_string()),
    }
}

/// Entry point of `--int8` (after the models are exported and `lite-cli` is built).
pub fn run(
    a: &Args,
    ctx: &Ctx,
    models: &[String],
    peers: &[String],
    export_failed: BTreeMap<String, String>,
) -> Result<()> {
    let (calib, calib_source) = calibration(ctx, a.calib_samples)?;
    let mut quantized: BTreeMap<String, std::result::Result<PathBuf, String>> = BTreeMap::new();
    let mut kernels = None;
    let mut tables = Vec::new();
    for &threads in &a.threads {
        let mut rows = Vec::new();
        for m in models {
            let onnx = ctx.model_dir.join(format!("{m}.onnx"));
            eprint!("[int8, {threads} thread(s)] {m}: lithe int8");
            let nb = quantized.entry(m.clone()).or_insert_with(|| lithe_quantize(ctx, &onnx, &calib, m)).clone();
            let int8 = match nb {
                Ok(nb) => {
                    let (c, k) = time_lithe(ctx.lite_cli, &nb, threads, a.warmup, a.repeats);
                    kernels = kernels.or(k);
                    c
                }
                Err(e) => Cell::NA(e),
            };
            eprint!(" {}, lithe fp32", cell_text(&int8));
            let (fp32, _) = time_lithe(ctx.lite_cli, &onnx, threads, a.warmup, a.repeats);
            eprint!(" {}", cell_text(&fp32));
            let mut cells = Vec::new();
            for p in peers {
                eprint!(", {p}");
                let c = match p.as_str() {
                    "litert" => match ctx.litert_py {
                        Some(Ok(lpy)) => time_peer(ctx, lpy, p, &onnx, &calib, threads, a),
                        Some(Err(e)) => Cell::NA(e.clone()),
                        None => Cell::Skip,
                    },
                    _ => time_peer(ctx, ctx.py, p, &onnx, &calib, threads, a),
                };
                eprint!(" {}", cell_text(&c));
                cells.push(c);
            }
            eprintln!();
            rows.push(Row { model: m.clone(), int8, fp32, peers: cells });
        }
        let table = Table { threads, peers: peers.to_vec(), rows };
        println!("\nint8, {} thread(s), median ms over {} runs after {} warm-up\n", threads, a.repeats, a.warmup);
        print!("{}", table.markdown());
        tables.push(table);
    }

    let report = Report {
        date: shell_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default(),
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        commit: git_commit(ctx.root),
        command: command_line(),
        note: a.note.clone(),
        versions: all_versions(ctx.py, ctx.litert_py, ctx.script),
        kernels,
        calib_source,
        warmup: a.warmup,
        repeats: a.repeats,
        export_failed,
        tables,
    };
    let out = a.out.clone().unwrap_or_else(|| ctx.root.join("docs/benchmarks.md"));
    write_report(&out, None, Some(report.markdown()))?;
    eprintln!("wrote the int8 section of {}", out.display());
    Ok(())
}

/// How each engine quantizes and runs, for the report.
const METHOD: &str = "\
### How each engine quantizes and runs

- **Lithe**: `lite-cli quant -m MODEL.onnx -o MODEL_int8.nb --quant int8 --calib calib.npy` \
(defaults: `hist` calibration at the 99.99th percentile, int8 weights per output channel, u8 \
activations; the int8 convs run as fused `QConv` nodes), timed with `lite-cli bench MODEL_int8.nb \
--threads N`; `lithe fp32` is `lite-cli bench MODEL.onnx` in the same run, as in the fp32 tables.
- **onnxruntime**: `quant_pre_process` (the torch export feeds conv biases through Identity nodes, \
which `quantize_static` does not quantize), then `quantize_static` with `QuantFormat.QDQ`, \
activations `QUInt8`, weights `QInt8`, `per_channel=True`, MinMax calibration on the same rows; \
run like fp32 (`InferenceSession`, all graph optimizations, which fuse the QDQ groups into int8 \
kernels).
- **LiteRT**: the torch model through `torch.export`, litert-torch's `PT2EQuantizer` with \
`get_symmetric_quantization_config(is_per_channel=True)` (full int8: int8 activations per tensor \
with histogram observers, int8 weights per channel), calibrated on the same rows, \
`convert_pt2e`, `litert_torch.convert`; run by the `ai-edge-litert` interpreter (XNNPACK) with \
`num_threads=N`; the model's input is int8, so the input is quantized once before timing.
- **ncnn**: ncnn's own int8 tools (`ncnn2table`, `ncnn2int8`) are C++ programs of its source tree \
that the `ncnn` and `pnnx` wheels do not ship, so `bench_peers.py` does what they do on the fp32 \
pnnx model: weight scales 127/max|w| per output channel (per group for depthwise convs), input \
scales 127/max|x| per tensor for every Convolution, ConvolutionDepthWise and InnerProduct input \
over the same rows (read from the fp32 net through the ncnn bindings; ncnn2table's default is KL, \
which changes the scales, not the speed), `int8_scale_term` in the .param, int8 weights and scales \
in the .bin, and requantization fused into convs that feed only another conv (ncnn2int8's \
`fuse_requantize`, without its Split case); run like fp32 (`num_threads=N`, Vulkan and fp16/bf16 \
off). Checked: the int8 nets' outputs have cosine 0.9995-1.0000 with the fp32 nets' on the \
calibration rows.

";

/// The `## int8` section of `docs/benchmarks.md`.
struct Report {
    date: String,
    cpu: String,
    cores: usize,
    commit: String,
    command: String,
    note: Option<String>,
    versions: BTreeMap<String, String>,
    kernels: Option<String>,
    calib_source: String,
    warmup: usize,
    repeats: usize,
    export_failed: BTreeMap<String, String>,
    tables: Vec<Table>,
}

impl Report {
    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{INT8_HEADING}\n");
        let _ = writeln!(
            s,
            "Generated by `cargo xtask bench-peers --int8` (see `xtask/src/bench_peers/int8.rs`); it rewrites only \
             this section, and `cargo xtask bench-peers` only the sections above.\n\n\
             The same models as above (random seeded weights), each quantized to int8 by the engine's own tools on \
             the same calibration rows, timed like the fp32 models: median latency in ms over {} runs after {} \
             warm-up runs inside the engine's own API, batch 1. `fp32/int8` is Lithe's int8 speed-up over its own \
             fp32 in the same run; `peer/lithe` above 1 means Lithe int8 is faster than the peer's int8. With random \
             weights the accuracy of the int8 models is meaningless; only their speed is compared.\n",
            self.repeats, self.warmup
        );
        s.push_str(METHOD);
        let _ = writeln!(s, "### Run\n");
        let _ = writeln!(s, "- date: {}", self.date);
        let _ = writeln!(s, "- machine: {}, {} core(s) available", self.cpu, self.cores);
        let _ = writeln!(s, "- command: `{}`", self.command);
        let _ = writeln!(s, "- Lithe commit: {}", self.commit);
        let _ = writeln!(
            s,
            "- Lithe kernels (as `lite-cli bench` reports them for the int8 models): {}",
            self.kernels.as_deref().unwrap_or("unknown")
        );
        let _ = writeln!(s, "- calibration data: {}, 1x3x224x224 f32 each, ImageNet mean/std", self.calib_source);
        let _ = writeln!(
            s,
            "- conditions: {}",
            self.note.as_deref().unwrap_or(
                "not recorded; the tool cannot tell whether other work was running on the machine, \
                 so treat small differences with caution"
            )
        );
        let _ = writeln!(s, "\n### Versions\n");
        for (k, v) in &self.versions {
            let _ = writeln!(s, "- {k}: {v}");
        }
        if !self.export_failed.is_empty() {
            let _ = writeln!(s, "\n### Models that failed to export\n");
            for (m, why) in &self.export_failed {
                let _ = writeln!(s, "- {m}: {why}");
            }
        }
        for t in &self.tables {
            let _ = writeln!(s, "\n### int8, {} thread(s)\n", t.threads);
            s.push_str(&t.markdown());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_peers::{compose_report, split_report};

    #[test]
    fn int8_table_markdown() {
        let t = Table {
            threads: 1,
            peers: vec!["onnxruntime".into(), "ncnn".into()],
            rows: vec![
                Row {
                    model: "resnet50".into(),
                    int8: Cell::Ms(10.0),
                    fp32: Cell::Ms(25.0),
                    peers: vec![Cell::Ms(12.0), Cell::NA("no tools".into())],
                },
                Row {
                    model: "mobilenet_v2".into(),
                    int8: Cell::NA("quant failed".into()),
                    fp32: Cell::Ms(8.0),
                    peers: vec![Cell::Ms(2.0), Cell::NA("no tools".into())],
                },
            ],
        };
        let md = t.markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "| model | lithe int8 ms | lithe fp32 ms | fp32/int8 | onnxruntime int8 ms | ncnn int8 ms | \
             onnxruntime/lithe | ncnn/lithe | best peer int8 |"
        );
        assert_eq!(lines[2], "| resnet50 | 10.00 | 25.00 | 2.50 | 12.00 | n/a | 1.20 | n/a | onnxruntime 12.00 |");
        assert_eq!(lines[3], "| mobilenet_v2 | n/a | 8.00 | n/a | 2.00 | n/a | n/a | n/a | onnxruntime 2.00 |");
        assert!(md.contains("- ncnn (all models): no tools"));
        assert!(md.contains("- lithe int8 (mobilenet_v2): quant failed"));
    }

    #[test]
    fn report_parts_are_kept() {
        let fp32 = "# Benchmarks\n\n## 1 thread(s)\n\n| a |\n";
        let int8 = "## int8\n\nint8 text\n";
        // An int8 run keeps the fp32 part, and replaces an old int8 part.
        let both = compose_report(Some(fp32), None, Some(int8.into()));
        assert_eq!(both, format!("{fp32}\n{int8}"));
        assert_eq!(split_report(&both), (format!("{fp32}\n").as_str(), int8));
        let again = compose_report(Some(&both), None, Some("## int8\n\nnew\n".into()));
        assert_eq!(again, format!("{fp32}\n## int8\n\nnew\n"));
        // An fp32 run keeps the int8 part.
        let fp32_new = compose_report(Some(&both), Some("# Benchmarks\n\nnew fp32\n".into()), None);
        assert_eq!(fp32_new, format!("# Benchmarks\n\nnew fp32\n\n{int8}"));
        // Without an old report, or without an int8 part, nothing is invented.
        assert_eq!(compose_report(None, Some(fp32.into()), None), fp32);
        assert!(compose_report(None, None, Some(int8.into())).contains("No fp32 results yet"));
        // `## int8 ...` subsection-like headings and `### int8` do not split.
        assert_eq!(split_report("a\n### int8, 1 thread(s)\nb\n").1, "");
    }
}
