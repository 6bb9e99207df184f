//! `lite-cli run`: run a model on `.npy` inputs, summarize and optionally save the outputs.

use crate::args::{InputShape, parse_input_shape, resolve_inputs};
use crate::info::load;
use crate::stats::{fmt_num, stats, top_k};
use anyhow::{Context, Result, bail};
use lithe_ir::Tensor;
use lithe_ir::npy::{read_npy, write_npy};
use lithe_runtime::Predictor;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `lite-cli run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The model (ONNX or .nb).
    pub model: PathBuf,
    /// An input as NAME=FILE.npy or INDEX=FILE.npy (just FILE.npy for a single-input model);
    /// repeatable.
    #[arg(long = "input", short = 'i', value_name = "[NAME=]FILE")]
    pub inputs: Vec<String>,
    /// Write each output to DIR/<output name>.npy (DIR is created).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Fix an input's shape at import, e.g. `x=1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME=DIMS", value_parser = parse_input_shape)]
    pub input_shapes: Vec<InputShape>,
}

/// Run `lite-cli run`.
pub fn run(args: &RunArgs, out: &mut dyn Write) -> Result<()> {
    let graph = load(&args.model, &args.input_shapes)?;
    let mut p = Predictor::new(graph).with_context(|| format!("cannot prepare model '{}'", args.model.display()))?;
    let names = p.input_names().to_vec();
    let given = resolve_inputs(&args.inputs, &names)?;
    for (i, name) in names.iter().enumerate() {
        if !given.iter().any(|(g, _)| *g == i) {
            let ty = p.input_types().get(i).map(ToString::to_string).unwrap_or_default();
            bail!("missing input '{name}' ({ty}): give it with --input {name}=FILE.npy");
        }
    }
    for (i, file) in given {
        let name = names.get(i).map_or("", String::as_str);
        let t = read_npy(&file).with_context(|| format!("cannot read input '{name}' from '{}'", file.display()))?;
        p.set_input(i, t)?;
    }

    let start = Instant::now();
    p.run()?;
    let elapsed = start.elapsed();

    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create output directory '{}'", dir.display()))?;
    }
    let file_names = file_names(p.output_names());
    let out_names = p.output_names().to_vec();
    for (i, (name, t)) in out_names.iter().zip(p.take_outputs()).enumerate() {
        summarize(out, name, &t)?;
        if let (Some(dir), Some(file)) = (&args.output, file_names.get(i)) {
            let path = dir.join(file);
            write_npy(&path, &t).with_context(|| format!("cannot write output '{name}'"))?;
            writeln!(out, "  saved to {}", path.display())?;
        }
    }
    writeln!(out, "run time: {:.3} ms", elapsed.as_secs_f64() * 1e3)?;
    Ok(())
}

fn summarize(out: &mut dyn Write, name: &str, t: &Tensor) -> Result<()> {
    let shape = lithe_ir::Shape::known(t.shape());
    write!(out, "output '{name}': {}{shape}", t.dtype())?;
    match stats(t) {
        Some(s) => {
            write!(out, "  min {}  max {}  mean {}", fmt_num(s.min), fmt_num(s.max), fmt_num(s.mean))?;
            if s.nans > 0 {
                write!(out, "  NaN {}", s.nans)?;
            }
        }
        None if t.is_empty() => write!(out, "  (empty)")?,
        None => write!(out, "  (all NaN)")?,
    }
    writeln!(out)?;
    if let Some(top) = top_k(t, 5) {
        let items: Vec<String> = top.iter().map(|(i, v)| format!("{i}: {}", fmt_num(f64::from(*v)))).collect();
        writeln!(out, "  top-{}: {}", top.len(), items.join(", "))?;
    }
    Ok(())
}

/// One `.npy` file name per output: the name with every character outside `[A-Za-z0-9._-]`
/// replaced by `_`, no leading dot, `output_<i>` when nothing is left, unique.
pub fn file_names(names: &[String]) -> Vec<String> {
    let mut used = HashSet::new();
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut s: String =
                n.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
            if s.starts_with('.') {
                s.replace_range(..1, "_");
            }
            if s.chars().all(|c| c == '_' || c == '.') {
                s = format!("output_{i}");
            }
            let mut candidate = s.clone();
            let mut k = 1;
            while !used.insert(candidate.to_ascii_lowercase()) {
                candidate = format!("{s}_{k}");
                k += 1;
            }
            format!("{candidate}.npy")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_file_names() {
        let names: Vec<String> =
            ["y", "out/sum:0", "..", "", "y", "Y", ".hidden", "a b"].iter().map(|s| (*s).to_string()).collect();
        assert_eq!(
            file_names(&names),
            ["y.npy", "out_sum_0.npy", "output_2.npy", "output_3.npy", "y_1.npy", "Y_2.npy", "_hidden.npy", "a_b.npy"]
        );
    }
}
