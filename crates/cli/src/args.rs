//! Parsing of `--input-shape NAME=DIMS` and `--input [NAME=|INDEX=]FILE` arguments.

use anyhow::{Result, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// `--input-shape NAME=1,3,224,224`: fixed dims for one model input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputShape {
    /// The input's name.
    pub name: String,
    /// Its dims.
    pub dims: Vec<usize>,
}

/// Parse `NAME=D0,D1,...` (the last `=` separates the name; a scalar is `NAME=`).
pub fn parse_input_shape(s: &str) -> Result<InputShape, String> {
    let (name, dims) =
        s.rsplit_once('=').ok_or_else(|| format!("expected NAME=DIMS (e.g. x=1,3,224,224), got '{s}'"))?;
    if name.is_empty() {
        return Err(format!("missing input name in '{s}' (expected NAME=DIMS)"));
    }
    let dims = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| format!("'{d}' in '{s}' is not a dimension size")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InputShape { name: name.to_string(), dims })
}

/// The `--input-shape` arguments as importer options; a name given twice is an error.
pub fn shapes_map(shapes: &[InputShape]) -> Result<HashMap<String, Vec<usize>>> {
    let mut m = HashMap::new();
    for s in shapes {
        if m.insert(s.name.clone(), s.dims.clone()).is_some() {
            bail!("--input-shape gives input '{}' twice", s.name);
        }
    }
    Ok(m)
}

/// Resolve `--input` arguments against the model's input names: `NAME=FILE`, `INDEX=FILE`, or
/// a bare `FILE` for a single-input model. Returns `(input index, file)` pairs.
pub fn resolve_inputs(specs: &[String], names: &[String]) -> Result<Vec<(usize, PathBuf)>> {
    let mut out: Vec<(usize, PathBuf)> = Vec::with_capacity(specs.len());
    for spec in specs {
        let (index, file) = resolve_one(spec, names)?;
        if out.iter().any(|(i, _)| *i == index) {
            bail!("input '{}' is given twice", names.get(index).map_or("", String::as_str));
        }
        out.push((index, file));
    }
    Ok(out)
}

fn resolve_one(spec: &str, names: &[String]) -> Result<(usize, PathBuf)> {
    // A prefix before some '=' that is an input name (preferred) or index.
    for (pos, _) in spec.match_indices('=') {
        let (key, file) = (&spec[..pos], &spec[pos + 1..]);
        if let Some(i) = names.iter().position(|n| n == key) {
            return Ok((i, non_empty(file, spec)?));
        }
    }
    for (pos, _) in spec.match_indices('=') {
        let (key, file) = (&spec[..pos], &spec[pos + 1..]);
        if let Ok(i) = key.parse::<usize>() {
            if i >= names.len() {
                bail!("--input '{spec}': input index {i} is out of range: the model has {} inputs", names.len());
            }
            return Ok((i, non_empty(file, spec)?));
        }
    }
    let as_path = Path::new(spec);
    if !spec.contains('=') || as_path.exists() {
        if names.len() == 1 {
            return Ok((0, as_path.to_path_buf()));
        }
        bail!(
            "--input '{spec}': the model has {} inputs ({}); give NAME=FILE or INDEX=FILE",
            names.len(),
            names.join(", ")
        );
    }
    let key = spec.split('=').next().unwrap_or_default();
    bail!("--input '{spec}': the model has no input named '{key}' (inputs: {})", names.join(", "))
}

fn non_empty(file: &str, spec: &str) -> Result<PathBuf> {
    if file.is_empty() {
        bail!("--input '{spec}': missing file name after '='");
    }
    Ok(PathBuf::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn input_shapes() {
        assert_eq!(
            parse_input_shape("x=1,3,224,224").unwrap(),
            InputShape { name: "x".into(), dims: vec![1, 3, 224, 224] }
        );
        assert_eq!(parse_input_shape("a=b=2").unwrap(), InputShape { name: "a=b".into(), dims: vec![2] });
        assert_eq!(parse_input_shape("s=").unwrap(), InputShape { name: "s".into(), dims: vec![] });
        assert!(parse_input_shape("x").unwrap_err().contains("NAME=DIMS"));
        assert!(parse_input_shape("=1").unwrap_err().contains("missing input name"));
        assert!(parse_input_shape("x=1,-3").unwrap_err().contains("'-3'"));
        let dup = [parse_input_shape("x=1").unwrap(), parse_input_shape("x=2").unwrap()];
        assert!(shapes_map(&dup).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn inputs_by_name_index_or_alone() {
        let two = names(&["a", "b"]);
        let r = resolve_inputs(&["b=y.npy".into(), "0=x.npy".into()], &two).unwrap();
        assert_eq!(r, vec![(1, PathBuf::from("y.npy")), (0, PathBuf::from("x.npy"))]);
        assert_eq!(resolve_inputs(&["in.npy".into()], &names(&["x"])).unwrap(), vec![(0, PathBuf::from("in.npy"))]);
        // Names with '=' and names that look like indices.
        let odd = names(&["k=v", "1"]);
        assert_eq!(resolve_inputs(&["k=v=f.npy".into()], &odd).unwrap(), vec![(0, PathBuf::from("f.npy"))]);
        assert_eq!(resolve_inputs(&["1=f.npy".into()], &odd).unwrap(), vec![(1, PathBuf::from("f.npy"))]);

        let err = |specs: &[&str], n: &[String]| {
            resolve_inputs(&specs.iter().map(|s| (*s).to_string()).collect::<Vec<_>>(), n).unwrap_err().to_string()
        };
        assert_eq!(err(&["c=z.npy"], &two), "--input 'c=z.npy': the model has no input named 'c' (inputs: a, b)");
        assert_eq!(err(&["5=z.npy"], &two), "--input '5=z.npy': input index 5 is out of range: the model has 2 inputs");
        assert!(err(&["z.npy"], &two).contains("give NAME=FILE"));
        assert_eq!(err(&["a=x.npy", "0=y.npy"], &two), "input 'a' is given twice");
        assert!(err(&["a="], &two).contains("missing file name"));
    }
}
