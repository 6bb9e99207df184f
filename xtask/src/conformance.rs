//! `cargo xtask onnx-conformance`: the ONNX backend node tests for every operator Lithe claims.
//!
//! The tests come from the `onnx` wheel on PyPI (`onnx/backend/test/data/node`, extracted once
//! into the cache). A test is *claimed* when every operator its model uses is in
//! `lithe_onnx::supported_ops()` and its inputs and outputs use dtypes Lithe's IR has; claimed
//! tests are imported, run and compared in Rust (see [`compare`] for the tolerance rule).
//! The run fails when under 90% of claimed tests pass or when a test of the committed baseline
//! (`testdata/conformance/passing.txt`) no longer passes. Every passing test is then exported
//! with `lithe_onnx::export_model`, imported again and run: the run also fails unless all of
//! them give the first import's outputs bit for bit ([`export_round_trip`]).

mod compare;
mod export_round_trip;
mod model_scan;
mod report;
mod runner;

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The onnx release whose node tests are used.
pub const ONNX_VERSION: &str = "1.22.0";
/// Minimum pass rate over claimed tests, in percent.
const MIN_PASS_RATE: f64 = 90.0;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Only tests whose directory name contains this string.
    #[arg(long)]
    filter: Option<String>,
    /// Rewrite testdata/conformance/passing.txt from this run (only the filtered tests' entries
    /// when --filter is given).
    #[arg(long)]
    update_baseline: bool,
    /// Worker threads (default: available cores).
    #[arg(long)]
    jobs: Option<usize>,
}

fn conformance_dir() -> PathBuf {
    crate::root().join("testdata/conformance")
}

/// The extracted node tests, downloading and extracting the wheel when missing.
fn ensure_node_tests() -> Result<PathBuf> {
    let dir = crate::cache_dir().join("onnx-node-tests");
    let stamp = dir.join(".complete");
    let want = format!("onnx=={ONNX_VERSION}");
    if std::fs::read_to_string(&stamp).ok().is_some_and(|s| s.trim() == want) {
        return Ok(dir);
    }
    let py = crate::python::ensure_venv(crate::models::CI_VENV, crate::models::CI_PACKAGES)?;
    let args = vec![
        "--version".to_string(),
        ONNX_VERSION.to_string(),
        "--wheels".to_string(),
        crate::cache_dir().join("wheels").display().to_string(),
        "--out".to_string(),
        dir.display().to_string(),
    ];
    crate::python::run_script(&py, "conformance_fetch.py", &args)?;
    if !stamp.is_file() {
        bail!("extraction of the onnx node tests did not complete ({} missing)", stamp.display());
    }
    Ok(dir)
}

/// Entry point.
pub fn run(a: Args) -> Result<()> {
    let started = std::time::Instant::now();
    let tests_dir = ensure_node_tests()?;
    let supported: BTreeSet<String> = lithe_onnx::supported_ops().into_iter().map(str::to_string).collect();
    let tests = runner::discover(&tests_dir, a.filter.as_deref())?;
    if tests.is_empty() {
        bail!("no node test matches the filter {:?} in {}", a.filter, tests_dir.display());
    }
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let results = runner::run_all(tests, &supported, jobs);

    let in_scope = |n: &str| a.filter.as_deref().is_none_or(|f| n.contains(f));
    let baseline_path = conformance_dir().join("passing.txt");
    let baseline = report::read_baseline(&baseline_path)?;
    let regressions = report::regressions(&results, &baseline, in_scope);
    print!("{}", report::render(&results, &supported, &regressions));

    std::fs::create_dir_all(conformance_dir()).context("creating testdata/conformance")?;
    let failures_path = conformance_dir().join("failures.md");
    if a.filter.is_none() {
        let old = report::read_explanations(&failures_path);
        let header = format!("onnx {ONNX_VERSION} node tests");
        std::fs::write(&failures_path, report::failures_md(&results, &old, &header))
            .with_context(|| format!("writing {}", failures_path.display()))?;
        println!("wrote {}", failures_path.display());
    } else {
        println!("(filtered run: {} not rewritten)", failures_path.display());
    }

    if a.update_baseline {
        let mut passing: BTreeSet<String> = baseline.iter().filter(|n| !in_scope(n)).cloned().collect();
        passing.extend(results.iter().filter(|r| r.outcome == runner::Outcome::Pass).map(|r| r.test.name.clone()));
        std::fs::write(&baseline_path, report::baseline_text(&passing, ONNX_VERSION))
            .with_context(|| format!("writing {}", baseline_path.display()))?;
        println!("wrote {} ({} passing tests)", baseline_path.display(), passing.len());
    }
    let (round_tripped, export_failures) = export_round_trip::check(&results);
    println!(
        "export round trip (import, export, import, run; bit-exact): {} of {round_tripped} passing tests",
        round_tripped - export_failures.len()
    );
    for f in &export_failures {
        println!("  export round trip failed: {f}");
    }
    println!("conformance run took {:.1}s", started.elapsed().as_secs_f64());

    let t = report::totals(&results);
    let Some(rate) = t.pass_rate() else {
        bail!("no claimed test ran: supported_ops() claims none of the operators these tests use");
    };
    if rate < MIN_PASS_RATE && a.filter.is_none() {
        bail!("pass rate {rate:.1}% over {} claimed tests is below {MIN_PASS_RATE}%", t.claimed());
    }
    if !export_failures.is_empty() {
        bail!("{} passing tests do not survive the ONNX export round trip", export_failures.len());
    }
    if !regressions.is_empty() && !a.update_baseline {
        bail!("{} tests of {} no longer pass", regressions.len(), baseline_path.display());
    }
    Ok(())
}
