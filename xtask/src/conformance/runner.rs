//! Discover, classify and run ONNX node tests.

use super::compare::{Tolerance, compare_output};
use super::model_scan::{LITHE_DTYPES, ModelSummary, ValueType, scan_model};
use anyhow::{Context, Result};
use lithe_ir::Tensor;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One node test directory.
#[derive(Debug, Clone)]
pub struct NodeTest {
    /// Directory name (`test_abs`).
    pub name: String,
    /// The directory.
    pub dir: PathBuf,
    /// What the model uses.
    pub summary: ModelSummary,
    /// The operator the test is about (from its name, see [`primary_ops`]).
    pub op: String,
}

/// Why a test was not run, or how it went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The model uses operators outside `supported_ops()`.
    NotClaimedOp(Vec<String>),
    /// Inputs or outputs use types Lithe's IR does not have.
    NotClaimedDType(Vec<String>),
    /// Every data set matched.
    Pass,
    /// Wrong outputs (values, shapes, dtypes or count).
    Fail(String),
    /// Import, predictor construction, input reading or run failed.
    Error(String),
    /// The code under test panicked.
    Panic(String),
}

impl Outcome {
    /// Short status word.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::NotClaimedOp(_) => "not claimed (op)",
            Outcome::NotClaimedDType(_) => "not claimed (dtype)",
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Error(_) => "error",
            Outcome::Panic(_) => "panic",
        }
    }

    /// The reason of a failure, error or panic.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Fail(r) | Outcome::Error(r) | Outcome::Panic(r) => Some(r),
            _ => None,
        }
    }
}

/// A finished test.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// The test.
    pub test: NodeTest,
    /// Its outcome.
    pub outcome: Outcome,
    /// Wall time of the run (zero when not claimed).
    pub elapsed: Duration,
}

/// Every `test_*` directory with a `model.onnx` under `root` whose name contains `filter`, sorted.
pub fn discover(root: &Path, filter: Option<&str>) -> Result<Vec<NodeTest>> {
    let mut dirs = Vec::new();
    for e in std::fs::read_dir(root).with_context(|| format!("listing {}", root.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("test_") || !e.path().join("model.onnx").is_file() {
            continue;
        }
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        dirs.push((name, e.path()));
    }
    dirs.sort();
    let mut tests = Vec::with_capacity(dirs.len());
    for (name, dir) in dirs {
        let path = dir.join("model.onnx");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let summary = scan_model(&bytes).with_context(|| format!("scanning {}", path.display()))?;
        tests.push(NodeTest { name, dir, summary, op: String::new() });
    }
    let ops = primary_ops(&tests);
    for (t, op) in tests.iter_mut().zip(ops) {
        t.op = op;
    }
    Ok(tests)
}

fn normalize(s: &str) -> String {
    s.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect()
}

/// The operator each test is about: the longest operator name (among all operators any test
/// model uses) that prefixes the test name once both are lower-cased without underscores
/// (`test_reduce_mean_keepdims` -> `ReduceMean`). Otherwise: for `*_expanded*` tests, the
/// operator of the unexpanded sibling; else the model's only non-`Constant` operator; else
/// its first node's operator.
pub fn primary_ops(tests: &[NodeTest]) -> Vec<String> {
    let mut known: Vec<(String, String)> = tests
        .iter()
        .flat_map(|t| t.summary.op_types.iter())
        .filter(|op| !op.contains("::"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|op| (normalize(op), op.clone()))
        .collect();
    known.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let by_prefix = |name: &str| -> Option<String> {
        let n = normalize(name.strip_prefix("test_").unwrap_or(name));
        known.iter().find(|(k, _)| n.starts_with(k.as_str())).map(|(_, op)| op.clone())
    };
    let single_op = |t: &NodeTest| -> Option<String> {
        let ops: BTreeSet<&String> = t.summary.node_ops.iter().filter(|o| *o != "Constant").collect();
        if ops.len() == 1 { ops.into_iter().next().cloned() } else { None }
    };
    let by_name: HashMap<&str, &NodeTest> = tests.iter().map(|t| (t.name.as_str(), t)).collect();
    tests
        .iter()
        .map(|t| {
            by_prefix(&t.name)
                .or_else(|| {
                    let stem = t.name.split("_expanded").next().filter(|s| s.len() < t.name.len())?;
                    by_name.get(stem).and_then(|s| single_op(s))
                })
                .or_else(|| single_op(t))
                .or_else(|| t.summary.node_ops.first().cloned())
                .unwrap_or_else(|| "(no nodes)".to_string())
        })
        .collect()
}

/// Decide whether a test is claimed: `None` when it should run.
pub fn classify(t: &NodeTest, supported: &BTreeSet<String>) -> Option<Outcome> {
    let missing: Vec<String> = t.summary.op_types.iter().filter(|op| !supported.contains(*op)).cloned().collect();
    if !missing.is_empty() {
        return Some(Outcome::NotClaimedOp(missing));
    }
    let bad: BTreeSet<String> = t
        .summary
        .inputs
        .iter()
        .chain(&t.summary.outputs)
        .filter(|ty| !matches!(ty, ValueType::Tensor(c) if LITHE_DTYPES.contains(c)))
        .map(|ty| ty.name())
        .collect();
    if !bad.is_empty() {
        return Some(Outcome::NotClaimedDType(bad.into_iter().collect()));
    }
    None
}

/// Tolerances from the test's `data.json` when it has one, else the runner's defaults.
fn tolerance(dir: &Path) -> Tolerance {
    let mut tol = Tolerance::default();
    if let Ok(text) = std::fs::read_to_string(dir.join("data.json"))
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
    {
        if let Some(r) = v.get("rtol").and_then(|x| x.as_f64()) {
            tol.rtol = r;
        }
        if let Some(a) = v.get("atol").and_then(|x| x.as_f64()) {
            tol.atol = a;
        }
    }
    tol
}

/// `prefix_0.pb`, `prefix_1.pb`, ... while they exist.
fn numbered_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..).map(|i| dir.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.is_file()).collect()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

fn read_tensors(files: &[PathBuf]) -> Result<Vec<Tensor>, String> {
    files
        .iter()
        .map(|p| {
            lithe_onnx::read_tensor_proto(p).map(|(_, t)| t).map_err(|e| {
                let file = p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                format!("reading {file}: {}", first_line(&e.to_string()))
            })
        })
        .collect()
}

/// Import, build a predictor and check every `test_data_set_*`; messages name files relative
/// to the test directory.
fn run_claimed(t: &NodeTest) -> Outcome {
    let prefix = format!("{}/", t.dir.display());
    match run_claimed_in(t) {
        Outcome::Fail(m) => Outcome::Fail(m.replace(&prefix, "")),
        Outcome::Error(m) => Outcome::Error(m.replace(&prefix, "")),
        o => o,
    }
}

fn run_claimed_in(t: &NodeTest) -> Outcome {
    let model = t.dir.join("model.onnx");
    let graph = match lithe_onnx::load_model(&model, &lithe_onnx::ImportOptions::default()) {
        Ok(g) => g,
        Err(e) => return Outcome::Error(format!("import: {}", first_line(&e.to_string()))),
    };
    let mut predictor = match lithe_runtime::Predictor::new(graph) {
        Ok(p) => p,
        Err(e) => return Outcome::Error(format!("predictor: {}", first_line(&e.to_string()))),
    };
    let tol = tolerance(&t.dir);
    let mut sets: Vec<PathBuf> = match std::fs::read_dir(&t.dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
            .collect(),
        Err(e) => return Outcome::Error(format!("listing {}: {e}", t.dir.display())),
    };
    sets.sort();
    if sets.is_empty() {
        return Outcome::Error("no test_data_set_* directory".to_string());
    }
    for set in &sets {
        let set_name = set.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let inputs = match read_tensors(&numbered_files(set, "input")) {
            Ok(v) => v,
            Err(e) => return Outcome::Error(format!("{set_name}: {e}")),
        };
        let expected = match read_tensors(&numbered_files(set, "output")) {
            Ok(v) => v,
            Err(e) => return Outcome::Error(format!("{set_name}: {e}")),
        };
        let got = match predictor.run_with(inputs) {
            Ok(v) => v,
            Err(e) => return Outcome::Error(format!("run: {}", first_line(&e.to_string()))),
        };
        if got.len() != expected.len() {
            return Outcome::Fail(format!("{set_name}: {} outputs, expected {}", got.len(), expected.len()));
        }
        for (i, (g, w)) in got.iter().zip(&expected).enumerate() {
            if let Err(e) = compare_output(i, g, w, tol) {
                let prefix = if sets.len() > 1 { format!("{set_name}: ") } else { String::new() };
                return Outcome::Fail(format!("{prefix}{e}"));
            }
        }
    }
    Outcome::Pass
}

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Run `f`, turning a panic into `Outcome::Panic` with its message and location.
fn guarded(f: impl FnOnce() -> Outcome) -> Outcome {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(o) => o,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            let loc = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
            Outcome::Panic(format!("PANIC: {}{loc}", first_line(&msg)))
        }
    }
}

/// Run all tests on `jobs` threads; not-claimed tests are classified without running.
pub fn run_all(tests: Vec<NodeTest>, supported: &BTreeSet<String>, jobs: usize) -> Vec<TestResult> {
    let n = tests.len();
    let mut slots: Vec<Option<TestResult>> = vec![None; n];
    let mut todo = Vec::new();
    for (i, t) in tests.iter().enumerate() {
        match classify(t, supported) {
            Some(o) => slots[i] = Some(TestResult { test: t.clone(), outcome: o, elapsed: Duration::ZERO }),
            None => todo.push(i),
        }
    }
    let total = todo.len();
    eprintln!("running {total} claimed tests of {n} on {jobs} threads");

    // Panics are reported per test: record location quietly instead of printing.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let loc = info.location().map(|l| format!(" (at {}:{})", l.file(), l.line())).unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(loc));
    }));

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let alive = AtomicUsize::new(0);
    let running: Mutex<BTreeMap<usize, Instant>> = Mutex::default();
    let results: Mutex<Vec<(usize, Outcome, Duration)>> = Mutex::new(Vec::with_capacity(total));
    std::thread::scope(|s| {
        for w in 0..jobs.max(1) {
            let (next, done, alive, running, results, todo, tests) =
                (&next, &done, &alive, &running, &results, &todo, &tests);
            alive.fetch_add(1, Ordering::SeqCst);
            let spawned = std::thread::Builder::new()
                .name(format!("conformance-{w}"))
                .stack_size(64 << 20)
                .spawn_scoped(s, move || {
                    let _alive = Alive(alive);
                    loop {
                        let k = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&i) = todo.get(k) else { break };
                        let t = &tests[i];
                        lock(running).insert(i, Instant::now());
                        let start = Instant::now();
                        let outcome = guarded(|| run_claimed(t));
                        let elapsed = start.elapsed();
                        lock(running).remove(&i);
                        lock(results).push((i, outcome, elapsed));
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                });
            if let Err(e) = spawned {
                alive.fetch_sub(1, Ordering::SeqCst);
                eprintln!("cannot spawn worker thread: {e}");
            }
        }
        // Watchdog: report progress and name tests that run long, so a hang is visible.
        let mut last_report = Instant::now();
        while alive.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(100));
            if last_report.elapsed() >= Duration::from_secs(20) {
                last_report = Instant::now();
                let slow: Vec<String> = lock(&running)
                    .iter()
                    .filter(|(_, t0)| t0.elapsed() >= Duration::from_secs(10))
                    .map(|(i, t0)| format!("{} ({}s)", tests[*i].name, t0.elapsed().as_secs()))
                    .collect();
                eprintln!(
                    "  {}/{total} done{}",
                    done.load(Ordering::SeqCst),
                    if slow.is_empty() { String::new() } else { format!("; still running: {}", slow.join(", ")) }
                );
            }
        }
    });
    std::panic::set_hook(default_hook);

    for (i, outcome, elapsed) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        slots[i] = Some(TestResult { test: tests[i].clone(), outcome, elapsed });
    }
    slots
        .into_iter()
        .zip(tests)
        .map(|(r, t)| {
            r.unwrap_or(TestResult {
                test: t,
                outcome: Outcome::Error("worker thread did not run this test".to_string()),
                elapsed: Duration::ZERO,
            })
        })
        .collect()
}

/// Counts a worker as alive until dropped, even if the worker unwinds.
struct Alive<'a>(&'a AtomicUsize);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(name: &str, ops: &[&str], inputs: Vec<ValueType>) -> NodeTest {
        NodeTest {
            name: name.to_string(),
            dir: PathBuf::new(),
            summary: ModelSummary {
                op_types: ops.iter().map(|s| s.to_string()).collect(),
                node_ops: ops.iter().map(|s| s.to_string()).collect(),
                inputs,
                outputs: vec![ValueType::Tensor(1)],
            },
            op: String::new(),
        }
    }

    #[test]
    fn primary_op_is_longest_name_prefix() {
        let tests = vec![
            test("test_max_example", &["Max"], vec![]),
            test("test_maxpool_2d", &["MaxPool"], vec![]),
            test("test_reduce_mean_keepdims", &["ReduceMean"], vec![]),
            test("test_constantofshape_int", &["ConstantOfShape"], vec![]),
            test("test_constant", &["Constant"], vec![]),
            test("test_sce_mean", &["SoftmaxCrossEntropyLoss"], vec![]),
            test("test_sce_mean_expanded", &["Constant", "Exp", "ReduceSum"], vec![]),
        ];
        assert_eq!(
            primary_ops(&tests),
            vec![
                "Max",
                "MaxPool",
                "ReduceMean",
                "ConstantOfShape",
                "Constant",
                "SoftmaxCrossEntropyLoss",
                "SoftmaxCrossEntropyLoss"
            ]
        );
    }

    #[test]
    fn classification_checks_ops_then_dtypes() {
        let supported: BTreeSet<String> = ["Relu", "Add"].iter().map(|s| s.to_string()).collect();
        let ok = test("test_relu", &["Relu"], vec![ValueType::Tensor(1)]);
        assert_eq!(classify(&ok, &supported), None);
        let op = test("test_x", &["Relu", "Gelu"], vec![ValueType::Tensor(11)]);
        assert_eq!(classify(&op, &supported), Some(Outcome::NotClaimedOp(vec!["Gelu".to_string()])));
        let dt = test("test_add_uint32", &["Add"], vec![ValueType::Tensor(12), ValueType::NonTensor]);
        assert_eq!(
            classify(&dt, &supported),
            Some(Outcome::NotClaimedDType(vec!["non-tensor".to_string(), "uint32".to_string()]))
        );
    }

    #[test]
    fn panics_become_outcomes() {
        let o = guarded(|| panic!("boom {}", 42));
        assert_eq!(o.status(), "panic");
        assert!(o.reason().unwrap().starts_with("PANIC: boom 42"), "{o:?}");
        assert_eq!(guarded(|| Outcome::Pass), Outcome::Pass);
    }
}
