//! Reading `lite-cli bench` output and the markdown table of the results.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The first line of a qemu table and its last: emulated timings say nothing about a device.
pub const SMOKE_LABEL: &str = "qemu smoke run: timings mean nothing";

/// What one `lite-cli bench` run reported.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchStats {
    /// Median latency in ms.
    pub median: f64,
    /// Fastest run in ms.
    pub min: f64,
    /// Slowest run in ms.
    pub max: f64,
    /// The thread count `lite-cli` says it ran with.
    pub threads: Option<usize>,
    /// The kernel set it names (`kernels NAME`).
    pub kernels: Option<String>,
}

/// Parse `lite-cli bench` output:
///
/// ```text
/// MODEL: 1 thread(s), 20 runs after 5 warm-up, kernels NAME
/// latency ms: median 14.610  min 14.502  max 15.423
/// ```
///
/// The latency line is required; the first line's fields are optional.
pub fn parse_bench(out: &str) -> Result<BenchStats> {
    let latency = out
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("latency ms:"))
        .context("no 'latency ms:' line in the lite-cli bench output")?;
    let words: Vec<&str> = latency.split_whitespace().collect();
    let value = |key: &str| -> Result<f64> {
        let i = words.iter().position(|w| *w == key).with_context(|| format!("no {key} in 'latency ms:{latency}'"))?;
        let text = words.get(i + 1).with_context(|| format!("no value after {key} in 'latency ms:{latency}'"))?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => bail!("{key} '{text}' is not a time in ms"),
        }
    };
    let header = out.lines().map(str::trim).find(|l| l.contains(" thread(s), "));
    let threads = header
        .and_then(|l| l.split_once(" thread(s)"))
        .and_then(|(before, _)| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok());
    let kernels = header.and_then(|l| l.rsplit_once(", kernels ")).map(|(_, k)| k.trim().to_string());
    Ok(BenchStats { median: value("median")?, min: value("min")?, max: value("max")?, threads, kernels })
}

/// One model's results, one cell per thread count of the table (an error text when the run failed).
pub struct Row {
    /// The model's label.
    pub model: String,
    /// Per thread count, in table order.
    pub cells: Vec<Result<BenchStats, String>>,
}

/// The results: models by thread counts.
pub struct Table {
    /// A line above the table: device, warm-up and repeats.
    pub caption: String,
    /// A qemu smoke run: labelled as such, first and last.
    pub smoke: bool,
    /// The thread counts, in column order.
    pub threads: Vec<usize>,
    /// The models.
    pub rows: Vec<Row>,
}

impl Table {
    /// The table in markdown: median ms per thread count, then the speed-up of each other
    /// thread count over 1 thread (when 1 thread was run), then notes on failed runs.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        if self.smoke {
            let _ = writeln!(s, "**{SMOKE_LABEL}**\n");
        }
        let _ = writeln!(s, "{}\n", self.caption);
        let base = self.threads.iter().position(|&t| t == 1);
        let plural = |t: usize| if t == 1 { "1 thread".to_string() } else { format!("{t} threads") };
        let mut head = vec!["model".to_string()];
        head.extend(self.threads.iter().map(|&t| format!("{} ms", plural(t))));
        let speedups: Vec<usize> = match base {
            Some(b) => (0..self.threads.len()).filter(|&i| i != b).collect(),
            None => Vec::new(),
        };
        head.extend(speedups.iter().map(|&i| format!("{} speed-up", plural(self.threads[i]))));
        let _ = writeln!(s, "| {} |", head.join(" | "));
        let _ = writeln!(s, "|{}", " --- |".repeat(head.len()));
        // reason -> the runs that failed with it, so a device-wide failure is explained once.
        let mut failed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut notes = Vec::new();
        for r in &self.rows {
            let mut cols = vec![r.model.clone()];
            for (&t, c) in self.threads.iter().zip(&r.cells) {
                match c {
                    Ok(st) => {
                        cols.push(format!("{:.2}", st.median));
                        if let Some(ran) = st.threads.filter(|&n| n != t) {
                            notes.push(format!("- {} at {}: lite-cli reported {ran} thread(s)", r.model, plural(t)));
                        }
                    }
                    Err(why) => {
                        cols.push("n/a".into());
                        failed.entry(why.as_str()).or_default().push(format!("{} at {}", r.model, plural(t)));
                    }
                }
            }
            let median = |i: usize| r.cells.get(i).and_then(|c| c.as_ref().ok()).map(|st| st.median);
            for &i in &speedups {
                cols.push(match (base.and_then(median), median(i)) {
                    (Some(one), Some(m)) if m > 0.0 => format!("{:.2}x", one / m),
                    _ => "n/a".into(),
                });
            }
            let _ = writeln!(s, "| {} |", cols.join(" | "));
        }
        if base.is_none() {
            notes.push("- no speed-up columns: they compare with a 1-thread run (add 1 to --threads)".into());
        }
        let runs = self.rows.len() * self.threads.len();
        for (why, which) in failed {
            let which = if which.len() == runs { "every run".to_string() } else { which.join(", ") };
            notes.push(format!("- n/a ({which}): {}", why.replace('|', "/")));
        }
        if !notes.is_empty() {
            let _ = writeln!(s, "\n{}", notes.join("\n"));
        }
        if self.smoke {
            let _ = writeln!(s, "\n**{SMOKE_LABEL}**");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(median: f64, threads: usize) -> Result<BenchStats, String> {
        Ok(BenchStats { median, min: median, max: median, threads: Some(threads), kernels: None })
    }

    #[test]
    fn parses_bench_output() {
        let out = "target/bench-arm/m: v2.nb: 4 thread(s), 20 runs after 5 warm-up, kernels f32_gemm_8x12__neon\n\
                   latency ms: median 14.610  min 14.502  max 15.423\n\nper op type: ...\n";
        let st = parse_bench(out).unwrap();
        assert_eq!(
            st,
            BenchStats {
                median: 14.61,
                min: 14.502,
                max: 15.423,
                threads: Some(4),
                kernels: Some("f32_gemm_8x12__neon".into())
            }
        );
        // adb shells without shell protocol end lines with \r\n.
        let crlf =
            "m.nb: 2 thread(s), 3 runs after 1 warm-up, kernels neon\r\nlatency ms: median 1.5  min 1  max 2\r\n";
        let st = parse_bench(crlf).unwrap();
        assert_eq!(
            (st.median, st.min, st.max, st.threads, st.kernels.as_deref()),
            (1.5, 1.0, 2.0, Some(2), Some("neon"))
        );
        // Only the latency line is required.
        assert_eq!(parse_bench("latency ms: median 3  min 2  max 4").unwrap().threads, None);
    }

    #[test]
    fn rejects_bad_bench_output() {
        for bad in [
            "",
            "error: cannot load model",
            "/system/bin/sh: ./lite-cli: not found",
            "latency ms: median 14.6  min 14.5",
            "latency ms: median abc  min 1  max 2",
            "latency ms: median NaN  min 1  max 2",
            "latency ms: median -1  min 1  max 2",
            "latency ms: min 1  max 2  median",
        ] {
            assert!(parse_bench(bad).is_err(), "{bad:?} should not parse");
        }
        let e = parse_bench("latency ms: median 1  min x  max 2").unwrap_err().to_string();
        assert!(e.contains("min 'x'"), "{e}");
    }

    #[test]
    fn table_markdown() {
        let t = Table {
            caption: "cap".into(),
            smoke: false,
            threads: vec![1, 2, 4],
            rows: vec![
                Row { model: "resnet18".into(), cells: vec![stats(100.0, 1), stats(52.0, 2), stats(40.0, 2)] },
                Row {
                    model: "squeezenet1_1".into(),
                    cells: vec![Err("killed | oom".into()), stats(10.0, 2), Err("killed | oom".into())],
                },
            ],
        };
        let md = t.markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "cap");
        assert_eq!(
            lines[2],
            "| model | 1 thread ms | 2 threads ms | 4 threads ms | 2 threads speed-up | 4 threads speed-up |"
        );
        assert_eq!(lines[3], "| --- | --- | --- | --- | --- | --- |");
        assert_eq!(lines[4], "| resnet18 | 100.00 | 52.00 | 40.00 | 1.92x | 2.50x |");
        assert_eq!(lines[5], "| squeezenet1_1 | n/a | 10.00 | n/a | n/a | n/a |");
        assert!(md.contains("- resnet18 at 4 threads: lite-cli reported 2 thread(s)"), "{md}");
        assert!(md.contains("- n/a (squeezenet1_1 at 1 thread, squeezenet1_1 at 4 threads): killed / oom"), "{md}");
        assert!(!md.contains(SMOKE_LABEL));
    }

    #[test]
    fn smoke_table_is_labelled_and_speedups_need_one_thread() {
        let t = Table {
            caption: "cap".into(),
            smoke: true,
            threads: vec![2, 4],
            rows: vec![Row { model: "m".into(), cells: vec![Err("boom".into()), Err("boom".into())] }],
        };
        let md = t.markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], format!("**{SMOKE_LABEL}**"));
        assert_eq!(lines.last().copied(), Some(format!("**{SMOKE_LABEL}**").as_str()));
        assert!(md.contains("| model | 2 threads ms | 4 threads ms |\n"), "{md}");
        assert!(md.contains("| m | n/a | n/a |\n"), "{md}");
        assert!(md.contains("- n/a (every run): boom"), "{md}");
        assert!(md.contains("no speed-up columns"), "{md}");
    }
}
