//! Formatting helpers: error lines, types, numbers, tables.

use lithe_ir::{Dim, TypeInfo};

/// The error and its causes joined by `": "` on one line. A cause whose text the previous
/// message already contains (libraries that print their source themselves) is skipped.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = one_line(&cause.to_string());
        if s.is_empty() || parts.last().is_some_and(|last| last.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

/// Newlines and runs of whitespace become single spaces.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A type as JSON: `{"dtype": "f32", "shape": [1, "batch", null]}` (`shape` null when unranked).
pub fn type_json(t: &TypeInfo) -> serde_json::Value {
    let shape = t.shape.as_ref().map(|s| {
        s.dims()
            .iter()
            .map(|d| match d {
                Dim::Known(n) => serde_json::Value::from(*n),
                Dim::Sym(s) => serde_json::Value::from(s.as_str()),
                Dim::Unknown => serde_json::Value::Null,
            })
            .collect::<Vec<_>>()
    });
    serde_json::json!({ "dtype": t.dtype.name(), "shape": shape })
}

/// `1234567` as `1.23 M`; small numbers unchanged.
pub fn human(n: u64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")];
    let v = n as f64;
    for (scale, unit) in UNITS {
        if v >= scale {
            return format!("{:.2} {unit}", v / scale);
        }
    }
    n.to_string()
}

/// `n`, followed by its [`human`] form in parentheses when that is shorter.
pub fn count(n: u64) -> String {
    if n < 1000 { n.to_string() } else { format!("{n} ({})", human(n)) }
}

/// Rows as left-aligned columns (the last column is not padded), header first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|s| (*s).to_string()).collect();
    for r in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate().take(cols) {
            if i + 1 == cols {
                line.push_str(c);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(c.chars().count());
                line.push_str(c);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_skips_repeated_causes() {
        #[derive(Debug)]
        struct Inner;
        impl std::fmt::Display for Inner {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("shape error: bad\nthing")
            }
        }
        impl std::error::Error for Inner {}
        let e = anyhow::Error::new(Inner).context("node 'a' (Add): shape error: bad thing").context("loading m.onnx");
        assert_eq!(error_line(&e), "loading m.onnx: node 'a' (Add): shape error: bad thing");
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(999), "999");
        assert_eq!(human(1_500), "1.50 K");
        assert_eq!(human(3_504_872), "3.50 M");
        assert_eq!(human(600_000_000), "600.00 M");
        assert_eq!(human(1_230_000_000), "1.23 G");
    }

    #[test]
    fn counts() {
        assert_eq!(count(30), "30");
        assert_eq!(count(3_504_872), "3504872 (3.50 M)");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&["a", "bb"], &[vec!["xyz".into(), "1".into()], vec!["q".into(), "22".into()]]);
        assert_eq!(t, "  a    bb\n  xyz  1\n  q    22\n");
    }
}
