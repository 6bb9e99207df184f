//! Tables, the failure list (`failures.md`) and the baseline of passing tests (`passing.txt`).

use super::runner::{Outcome, TestResult};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

/// Counts of one group of tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Tests whose model uses an unclaimed operator.
    pub not_claimed_op: usize,
    /// Tests skipped for input/output dtypes outside Lithe's IR.
    pub not_claimed_dtype: usize,
    /// Passing claimed tests.
    pub pass: usize,
    /// Claimed tests with wrong outputs.
    pub fail: usize,
    /// Claimed tests that could not be imported or run.
    pub error: usize,
    /// Claimed tests whose code under test panicked.
    pub panic: usize,
}

impl Counts {
    fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::NotClaimedOp(_) => self.not_claimed_op += 1,
            Outcome::NotClaimedDType(_) => self.not_claimed_dtype += 1,
            Outcome::Pass => self.pass += 1,
            Outcome::Fail(_) => self.fail += 1,
            Outcome::Error(_) => self.error += 1,
            Outcome::Panic(_) => self.panic += 1,
        }
    }

    /// Tests that ran.
    pub fn claimed(&self) -> usize {
        self.pass + self.fail + self.error + self.panic
    }

    /// Every test.
    pub fn total(&self) -> usize {
        self.claimed() + self.not_claimed_op + self.not_claimed_dtype
    }

    /// Pass rate over claimed tests, in percent (`None` when nothing ran).
    pub fn pass_rate(&self) -> Option<f64> {
        let c = self.claimed();
        (c > 0).then(|| 100.0 * self.pass as f64 / c as f64)
    }
}

/// Totals over all results.
pub fn totals(results: &[TestResult]) -> Counts {
    let mut c = Counts::default();
    for r in results {
        c.add(&r.outcome);
    }
    c
}

/// The console report: per-operator table, totals, blocking operators, failures.
pub fn render(results: &[TestResult], supported: &BTreeSet<String>, regressions: &[(String, String)]) -> String {
    let mut per_op: BTreeMap<&str, Counts> = BTreeMap::new();
    for r in results {
        per_op.entry(r.test.op.as_str()).or_default().add(&r.outcome);
    }
    let mut s = String::new();
    let _ = writeln!(s, "\nPer operator (claimed tests only; 'dtype' = skipped for unsupported dtypes):");
    let _ = writeln!(
        s,
        "{:<28} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "op", "claimed", "pass", "fail", "error", "panic", "dtype"
    );
    for (op, c) in &per_op {
        // Tests skipped for dtypes only use claimed operators, so their operator is shown too.
        if c.claimed() == 0 && c.not_claimed_dtype == 0 {
            continue;
        }
        let label = if supported.contains(*op) { op.to_string() } else { format!("{op} *") };
        let _ = writeln!(
            s,
            "{:<28} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6}",
            label,
            c.claimed(),
            c.pass,
            c.fail,
            c.error,
            c.panic,
            c.not_claimed_dtype
        );
    }

    let _ = writeln!(s, "* not a claimed operator: its claimed tests are function expansions into claimed ones");

    let t = totals(results);
    let _ = writeln!(
        s,
        "\n{} node tests: {} not claimed (op), {} not claimed (dtype), {} claimed: {} pass, {} fail, {} error, {} panic",
        t.total(),
        t.not_claimed_op,
        t.not_claimed_dtype,
        t.claimed(),
        t.pass,
        t.fail,
        t.error,
        t.panic
    );

    let blockers = blocking_ops(results);
    if !blockers.is_empty() {
        let top: Vec<String> =
            blockers.iter().take(20).map(|(op, any, sole)| format!("{op} {any} ({sole} sole)")).collect();
        let _ =
            writeln!(s, "Unclaimed operators blocking most tests (tests blocked, sole blocker): {}", top.join(", "));
    }

    let failing: Vec<&TestResult> = results.iter().filter(|r| r.outcome.reason().is_some()).collect();
    if !failing.is_empty() {
        let _ = writeln!(s, "\nFailing claimed tests ({}):", failing.len());
        for r in failing {
            let _ = writeln!(s, "  {:<55} {:<6} {}", r.test.name, r.outcome.status(), r.outcome.reason().unwrap_or(""));
        }
    }
    let mut slow: Vec<&TestResult> = results.iter().filter(|r| r.elapsed.as_secs_f64() >= 1.0).collect();
    slow.sort_by_key(|r| std::cmp::Reverse(r.elapsed));
    if !slow.is_empty() {
        let list: Vec<String> =
            slow.iter().take(10).map(|r| format!("{} {:.1}s", r.test.name, r.elapsed.as_secs_f64())).collect();
        let _ = writeln!(s, "\nSlowest tests: {}", list.join(", "));
    }
    if !regressions.is_empty() {
        let _ = writeln!(s, "\nREGRESSIONS: {} baseline tests no longer pass:", regressions.len());
        for (name, why) in regressions {
            let _ = writeln!(s, "  {name}: {why}");
        }
    }
    match t.pass_rate() {
        Some(p) => {
            let _ = writeln!(s, "\nPass rate over claimed tests: {}/{} = {p:.1}%", t.pass, t.claimed());
        }
        None => {
            let _ = writeln!(s, "\nPass rate over claimed tests: no claimed tests");
        }
    }
    s
}

/// Unclaimed operators by the number of tests they block, with how many tests they alone block.
pub fn blocking_ops(results: &[TestResult]) -> Vec<(String, usize, usize)> {
    let mut m: HashMap<&str, (usize, usize)> = HashMap::new();
    for r in results {
        if let Outcome::NotClaimedOp(ops) = &r.outcome {
            for op in ops {
                let e = m.entry(op.as_str()).or_default();
                e.0 += 1;
                if ops.len() == 1 {
                    e.1 += 1;
                }
            }
        }
    }
    let mut v: Vec<(String, usize, usize)> = m.into_iter().map(|(k, (a, b))| (k.to_string(), a, b)).collect();
    v.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
    v
}

/// Baseline tests (within the run) that are not passing now, with why.
pub fn regressions(
    results: &[TestResult],
    baseline: &BTreeSet<String>,
    in_scope: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let by_name: HashMap<&str, &TestResult> = results.iter().map(|r| (r.test.name.as_str(), r)).collect();
    baseline
        .iter()
        .filter(|n| in_scope(n))
        .filter_map(|n| match by_name.get(n.as_str()) {
            None => Some((n.clone(), "test not found in the node test data".to_string())),
            Some(r) => match &r.outcome {
                Outcome::Pass => None,
                Outcome::NotClaimedOp(ops) => Some((n.clone(), format!("no longer claimed: {}", ops.join(", ")))),
                o => Some((n.clone(), format!("{}: {}", o.status(), o.reason().unwrap_or("not claimed")))),
            },
        })
        .collect()
}

/// Test names listed in a baseline file (`#` starts a comment); empty when the file is missing.
pub fn read_baseline(path: &Path) -> Result<BTreeSet<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The baseline file's text for a set of passing tests.
pub fn baseline_text(passing: &BTreeSet<String>, onnx_version: &str) -> String {
    let mut s = format!(
        "# ONNX node tests (onnx {onnx_version}) that pass on Lithe. `cargo xtask onnx-conformance` fails if\n\
         # any of them stops passing. Regenerate with `cargo xtask onnx-conformance --update-baseline`.\n"
    );
    for n in passing {
        s.push_str(n);
        s.push('\n');
    }
    s
}

/// Hand-written explanations in an existing failures file, by test name: the last column of
/// rows whose explanation differs from their error column (an unedited row repeats its error).
pub fn read_explanations(path: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    text.lines()
        .filter(|l| l.starts_with("| test_"))
        .filter_map(|l| {
            let cells = split_row(l);
            let (name, error, explanation) = (cells.first()?, cells.get(cells.len().checked_sub(2)?)?, cells.last()?);
            (cells.len() >= 5 && !explanation.is_empty() && explanation != error)
                .then(|| (name.clone(), explanation.clone()))
        })
        .collect()
}

/// Cells of a markdown table row, unescaping `\|`.
fn split_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    cells.push(cur.trim().to_string());
    cells
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// `failures.md`: every failing claimed test; explanations written earlier are kept.
pub fn failures_md(results: &[TestResult], old: &HashMap<String, String>, header: &str) -> String {
    let t = totals(results);
    let mut s = String::new();
    let _ = writeln!(s, "# ONNX node test failures\n");
    let _ = writeln!(
        s,
        "Written by `cargo xtask onnx-conformance` ({header}). Claimed tests: {}, passing: {}, failing: {} \
         ({} fail, {} error, {} panic); not claimed: {} (op), {} (dtype).\n",
        t.claimed(),
        t.pass,
        t.fail + t.error + t.panic,
        t.fail,
        t.error,
        t.panic,
        t.not_claimed_op,
        t.not_claimed_dtype
    );
    let _ = writeln!(s, "The Explanation column starts as a copy of the error; once edited it is kept across runs.\n");
    let _ = writeln!(s, "| Test | Op | Status | Error | Explanation |");
    let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
    for r in results {
        let Some(reason) = r.outcome.reason() else { continue };
        let explanation = old.get(&r.test.name).cloned().unwrap_or_else(|| reason.to_string());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.test.name,
            cell(&r.test.op),
            r.outcome.status(),
            cell(reason),
            cell(&explanation)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::model_scan::ModelSummary;
    use crate::conformance::runner::NodeTest;
    use std::time::Duration;

    fn result(name: &str, op: &str, outcome: Outcome) -> TestResult {
        TestResult {
            test: NodeTest {
                name: name.into(),
                dir: Default::default(),
                summary: ModelSummary::default(),
                op: op.into(),
            },
            outcome,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn counts_and_regressions() {
        let rs = vec![
            result("test_relu", "Relu", Outcome::Pass),
            result("test_add", "Add", Outcome::Fail("output 0: off".into())),
            result("test_add_bcast", "Add", Outcome::Panic("PANIC: x".into())),
            result("test_gelu", "Gelu", Outcome::NotClaimedOp(vec!["Gelu".into()])),
            result("test_add_uint8", "Add", Outcome::NotClaimedDType(vec!["uint32".into()])),
        ];
        let t = totals(&rs);
        assert_eq!((t.claimed(), t.pass, t.fail, t.panic, t.total()), (3, 1, 1, 1, 5));
        assert!((t.pass_rate().unwrap() - 100.0 / 3.0).abs() < 1e-9);
        let base: BTreeSet<String> =
            ["test_relu", "test_add", "test_gelu", "test_gone"].iter().map(|s| s.to_string()).collect();
        let reg = regressions(&rs, &base, |_| true);
        let names: Vec<&str> = reg.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["test_add", "test_gelu", "test_gone"]);
        assert!(regressions(&rs, &base, |n| n.contains("relu")).is_empty());
        let supported: BTreeSet<String> = ["Relu", "Add"].iter().map(|s| s.to_string()).collect();
        let text = render(&rs, &supported, &reg);
        assert!(text.contains("Pass rate over claimed tests: 1/3 = 33.3%"), "{text}");
        assert!(text.contains("REGRESSIONS: 3"), "{text}");
    }

    #[test]
    fn failures_md_keeps_explanations() {
        let rs = vec![
            result("test_add", "Add", Outcome::Fail("a | b".into())),
            result("test_sub", "Sub", Outcome::Error("import: x".into())),
        ];
        let dir = std::env::temp_dir().join(format!("lithe-conf-md-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("failures.md");
        let md = failures_md(&rs, &HashMap::new(), "test");
        assert!(md.contains("| test_add | Add | fail | a \\| b | a \\| b |"), "{md}");
        // Unedited rows are refreshed; an edited explanation survives a changed error.
        let edited = md.replace("| import: x | import: x |", "| import: x | needs Sub for int8 |");
        std::fs::write(&path, edited).unwrap();
        let old = read_explanations(&path);
        assert_eq!(old.len(), 1);
        let rs2 = vec![
            result("test_add", "Add", Outcome::Fail("c".into())),
            result("test_sub", "Sub", Outcome::Error("import: y".into())),
        ];
        let md = failures_md(&rs2, &old, "test");
        assert!(md.contains("| test_sub | Sub | error | import: y | needs Sub for int8 |"), "{md}");
        assert!(md.contains("| test_add | Add | fail | c | c |"), "{md}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
