//! Output comparison with the ONNX backend test runner's rule.
//!
//! The runner (`onnx/backend/test/runner`) checks the output count, each output's shape and
//! dtype, then `numpy.testing.assert_allclose(actual, expected, rtol, atol)`: an element passes
//! when `|actual - expected| <= atol + rtol * |expected|`, NaN matches NaN, and infinities must
//! match exactly. Defaults are `rtol = 1e-3`, `atol = 1e-7` (`onnx/backend/test/loader`), which
//! a test's `data.json` may override. Integers and bools are compared exactly here.

use lithe_ir::{Tensor, TensorData};

/// Tolerances of one test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { rtol: 1e-3, atol: 1e-7 }
    }
}

/// Compare one output; `Err` describes the first difference found.
pub fn compare_output(index: usize, got: &Tensor, want: &Tensor, tol: Tolerance) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("output {index}: dtype {}, expected {}", got.dtype(), want.dtype()));
    }
    if got.shape() != want.shape() {
        return Err(format!("output {index}: shape {:?}, expected {:?}", got.shape(), want.shape()));
    }
    match (got.data(), want.data()) {
        (TensorData::F32(_), _) | (TensorData::F16(_), _) => {
            let (g, w) = (got.to_array::<f32>(), want.to_array::<f32>());
            compare_floats(index, g.iter().copied(), w.iter().copied(), want.shape(), tol)
        }
        _ => {
            let (g, w) = (got.to_i64_vec(), want.to_i64_vec());
            let bad: Vec<usize> = (0..w.len()).filter(|&i| g.get(i) != w.get(i)).collect();
            match bad.first() {
                None => Ok(()),
                Some(&i) => Err(format!(
                    "output {index}: {}/{} elements differ, first at {:?}: got {}, expected {}",
                    bad.len(),
                    w.len(),
                    unravel(i, want.shape()),
                    g.get(i).copied().unwrap_or_default(),
                    w.get(i).copied().unwrap_or_default()
                )),
            }
        }
    }
}

fn compare_floats(
    index: usize,
    got: impl Iterator<Item = f32>,
    want: impl Iterator<Item = f32>,
    shape: &[usize],
    tol: Tolerance,
) -> Result<(), String> {
    let mut bad = 0usize;
    let mut total = 0usize;
    // (abs error, flat index, got, expected) of the worst element.
    let mut worst: Option<(f64, usize, f32, f32)> = None;
    for (i, (g, w)) in got.zip(want).enumerate() {
        total += 1;
        if close(f64::from(g), f64::from(w), tol) {
            continue;
        }
        bad += 1;
        let err = if g.is_nan() || w.is_nan() || g.is_infinite() || w.is_infinite() {
            f64::INFINITY
        } else {
            (f64::from(g) - f64::from(w)).abs()
        };
        if worst.is_none_or(|(e, ..)| err > e) {
            worst = Some((err, i, g, w));
        }
    }
    match worst {
        None => Ok(()),
        Some((err, i, g, w)) => Err(format!(
            "output {index}: {bad}/{total} elements out of tolerance (rtol {:e}, atol {:e}); max abs err {err:.3e} at {:?}: got {g}, expected {w}",
            tol.rtol,
            tol.atol,
            unravel(i, shape)
        )),
    }
}

/// `numpy.isclose` with `equal_nan=True`, infinities compared exactly.
fn close(g: f64, w: f64, tol: Tolerance) -> bool {
    if g.is_nan() || w.is_nan() {
        return g.is_nan() && w.is_nan();
    }
    if g.is_infinite() || w.is_infinite() {
        return g == w;
    }
    (g - w).abs() <= tol.atol + tol.rtol * w.abs()
}

/// Multi-index of a row-major flat index.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[k] = i % d;
            i /= d;
        }
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_tolerance_follows_assert_allclose() {
        let tol = Tolerance::default();
        let want = Tensor::from_vec(&[2, 2], vec![1.0f32, 100.0, f32::NAN, f32::INFINITY]).unwrap();
        let ok = Tensor::from_vec(&[2, 2], vec![1.0005f32, 100.09, f32::NAN, f32::INFINITY]).unwrap();
        assert_eq!(compare_output(0, &ok, &want, tol), Ok(()));
        let off = Tensor::from_vec(&[2, 2], vec![1.0f32, 100.2, f32::NAN, f32::INFINITY]).unwrap();
        let e = compare_output(0, &off, &want, tol).unwrap_err();
        assert!(e.contains("1/4 elements") && e.contains("[0, 1]"), "{e}");
        let inf = Tensor::from_vec(&[2, 2], vec![1.0f32, 100.0, f32::NAN, f32::NEG_INFINITY]).unwrap();
        assert!(compare_output(0, &inf, &want, tol).is_err());
        let nan = Tensor::from_vec(&[2, 2], vec![1.0f32, 100.0, 0.0, f32::INFINITY]).unwrap();
        assert!(compare_output(0, &nan, &want, tol).is_err());
    }

    #[test]
    fn atol_matters_near_zero() {
        let want = Tensor::from_vec(&[1], vec![0.0f32]).unwrap();
        let got = Tensor::from_vec(&[1], vec![1e-6f32]).unwrap();
        assert!(compare_output(0, &got, &want, Tolerance::default()).is_err());
        assert!(compare_output(0, &got, &want, Tolerance { rtol: 1e-3, atol: 1e-5 }).is_ok());
    }

    #[test]
    fn ints_are_exact_and_dtype_shape_checked() {
        let want = Tensor::from_vec(&[3], vec![1i64, 2, 3]).unwrap();
        assert!(compare_output(0, &want.clone(), &want, Tolerance::default()).is_ok());
        let got = Tensor::from_vec(&[3], vec![1i64, 2, 4]).unwrap();
        let e = compare_output(1, &got, &want, Tolerance::default()).unwrap_err();
        assert!(e.starts_with("output 1: 1/3") && e.contains("got 4, expected 3"), "{e}");
        let i32s = Tensor::from_vec(&[3], vec![1i32, 2, 3]).unwrap();
        assert!(compare_output(0, &i32s, &want, Tolerance::default()).unwrap_err().contains("dtype i32"));
        let reshaped = Tensor::from_vec(&[1, 3], vec![1i64, 2, 3]).unwrap();
        assert!(compare_output(0, &reshaped, &want, Tolerance::default()).unwrap_err().contains("shape"));
        let b = Tensor::from_vec(&[2], vec![true, false]).unwrap();
        let nb = Tensor::from_vec(&[2], vec![true, true]).unwrap();
        assert!(compare_output(0, &nb, &b, Tolerance::default()).is_err());
    }

    #[test]
    fn unravel_row_major() {
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(0, &[]), Vec::<usize>::new());
    }
}
