//! Load speed: importing an ONNX model and building its predictor against loading the same
//! model from `.nb` (from a file, memory-mapped, and from bytes in memory).
//!
//! Models: the largest golden CNN in `testdata/golden` and, when `cargo xtask models` has
//! fetched them, the PP-OCR detection models in `target/lithe-cache/models/ppocr_det`. The
//! `.nb` is written here twice: from the imported graph (no passes: the same graph, so the
//! comparison is about the format alone) and from the graph `lite-cli opt` would write (the
//! default pass pipeline: what a user loads). Before the criterion groups, a short median
//! timing of each way prints the speedup of `.nb` over ONNX.

use criterion::{Criterion, criterion_group, criterion_main};
use lithe_nbformat::ModelMeta;
use lithe_onnx::ImportOptions;
use lithe_runtime::{Predictor, PredictorOptions};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs of each way in the printed median timing.
const MEDIAN_RUNS: usize = 15;

/// One model prepared for the benchmark.
struct Model {
    name: String,
    onnx_path: PathBuf,
    nb_path: PathBuf,
    nb_bytes: Vec<u8>,
    /// The `.nb` of the optimized graph.
    opt_path: PathBuf,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The largest `model.onnx` under `testdata/golden` plus the PP-OCR detection models found.
fn model_paths() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let golden = workspace().join("testdata/golden");
    let largest = std::fs::read_dir(&golden)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("model.onnx"))
        .filter_map(|p| std::fs::metadata(&p).ok().map(|m| (m.len(), p)))
        .max();
    if let Some((_, p)) = largest {
        let name = p.parent().and_then(Path::file_name).map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        out.push((name, p));
    }
    let ppocr = workspace().join("target/lithe-cache/models/ppocr_det");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&ppocr)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    found.sort();
    for p in found {
        let name = p.file_stem().map_or_else(String::new, |n| format!("ppocr_det/{}", n.to_string_lossy()));
        out.push((name, p));
    }
    out
}

/// Import `onnx_path`, write its `.nb` next to the bench's temporary files.
fn prepare(name: &str, onnx_path: &Path) -> Result<Model, String> {
    let graph = lithe_onnx::load_model(onnx_path, &ImportOptions::default()).map_err(|e| format!("import: {e}"))?;
    let meta = ModelMeta { producer: "lithe load bench".into(), source: name.into(), ..ModelMeta::default() };
    let nb_bytes = lithe_nbformat::write(&graph, &meta).map_err(|e| format!("write .nb: {e}"))?;
    let dir = std::env::temp_dir().join(format!("lithe-load-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let nb_path = dir.join(format!("{}.nb", name.replace('/', "_")));
    std::fs::write(&nb_path, &nb_bytes).map_err(|e| format!("{}: {e}", nb_path.display()))?;
    let mut optimized = graph;
    lithe_passes::PassManager::default_pipeline().run(&mut optimized).map_err(|e| format!("passes: {e}"))?;
    let opt_path = dir.join(format!("{}.opt.nb", name.replace('/', "_")));
    lithe_nbformat::write_file(&opt_path, &optimized, &meta).map_err(|e| format!("write .nb: {e}"))?;
    Ok(Model { name: name.to_string(), onnx_path: onnx_path.to_path_buf(), nb_path, nb_bytes, opt_path })
}

fn from_onnx(path: &Path) -> Predictor {
    let graph = lithe_onnx::load_model(path, &ImportOptions::default()).unwrap_or_else(|e| panic!("import: {e}"));
    Predictor::new(graph).unwrap_or_else(|e| panic!("predictor: {e}"))
}

fn from_nb_file(path: &Path) -> Predictor {
    Predictor::from_file(path, PredictorOptions::default()).unwrap_or_else(|e| panic!("from_file: {e}"))
}

fn from_nb_bytes(bytes: &[u8]) -> Predictor {
    Predictor::from_bytes(bytes, PredictorOptions::default()).unwrap_or_else(|e| panic!("from_bytes: {e}"))
}

/// Median wall time of `f` over [`MEDIAN_RUNS`] runs (after one warm-up run).
fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..MEDIAN_RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn bench_load(c: &mut Criterion) {
    for (name, path) in model_paths() {
        let model = match prepare(&name, &path) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("load bench: skipping {name}: {e}");
                continue;
            }
        };
        let onnx = median(|| drop(black_box(from_onnx(&model.onnx_path))));
        let file = median(|| drop(black_box(from_nb_file(&model.nb_path))));
        let bytes = median(|| drop(black_box(from_nb_bytes(&model.nb_bytes))));
        let opt = median(|| drop(black_box(from_nb_file(&model.opt_path))));
        let ratio = |t: Duration| onnx.as_secs_f64() / t.as_secs_f64().max(1e-12);
        println!(
            "load {}: onnx import + Predictor::new {onnx:?}; same graph .nb from_file {file:?} ({:.1}x faster), \
             from_bytes {bytes:?} ({:.1}x faster), {} B; optimized .nb from_file {opt:?} ({:.1}x faster)",
            model.name,
            ratio(file),
            ratio(bytes),
            model.nb_bytes.len(),
            ratio(opt)
        );

        let mut group = c.benchmark_group(format!("load/{}", model.name));
        group.sample_size(20);
        group.bench_function("onnx_import_and_new", |b| b.iter(|| from_onnx(black_box(&model.onnx_path))));
        group.bench_function("nb_from_file", |b| b.iter(|| from_nb_file(black_box(&model.nb_path))));
        group.bench_function("nb_from_bytes", |b| b.iter(|| from_nb_bytes(black_box(&model.nb_bytes))));
        group.bench_function("optimized_nb_from_file", |b| b.iter(|| from_nb_file(black_box(&model.opt_path))));
        group.finish();
        let _ = std::fs::remove_file(&model.nb_path);
        let _ = std::fs::remove_file(&model.opt_path);
    }
}

criterion_group!(benches, bench_load);
criterion_main!(benches);
