//! Subprocesses with captured output and a time limit, for the tasks that run external tools.

use anyhow::{Context, Result};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A finished subprocess's output.
pub struct Captured {
    /// Whether it exited successfully within the time limit.
    pub ok: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error, followed by the exit status or the timeout when it failed.
    pub stderr: String,
}

/// Run `cmd` with stdout and stderr captured, killing it after `timeout`.
pub fn run_captured(cmd: &mut Command, timeout: Duration) -> Result<Captured> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut so = child.stdout.take().context("no stdout")?;
    let mut se = child.stderr.take().context("no stderr")?;
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = t_out.join().unwrap_or_default();
    let mut stderr = t_err.join().unwrap_or_default();
    let ok = match status {
        Some(st) => {
            if !st.success() {
                stderr.push_str(&format!("\nexited with {st}"));
            }
            st.success()
        }
        None => {
            stderr.push_str(&format!("\ntimed out after {} s", timeout.as_secs()));
            false
        }
    };
    Ok(Captured { ok, stdout, stderr })
}

/// The last non-empty line of `s`, shortened.
pub fn last_line(s: &str) -> String {
    let l = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim();
    l.chars().take(160).collect()
}
