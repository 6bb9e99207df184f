//! Finite-difference gradient checking shared by the rule tests.
#![allow(dead_code)]

use lithe_ir::{Graph, Op, Outlet, Tensor};
use lithe_train::rng::Rng;
use lithe_train::{Mode, Params, Tape};

/// Uniform values in `[lo, hi)`.
pub fn uniform(shape: &[usize], rng: &mut Rng, lo: f32, hi: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(shape, (0..n).map(|_| lo + (hi - lo) * rng.uniform() as f32).collect()).unwrap()
}

/// Uniform values in `[-1, 1)` kept at least `gap` away from each of `kinks`.
pub fn away_from(shape: &[usize], rng: &mut Rng, scale: f32, kinks: &[f32], gap: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|_| {
            loop {
                let x = scale * (2.0 * rng.uniform() as f32 - 1.0);
                if kinks.iter().all(|k| (x - k).abs() > gap) {
                    break x;
                }
            }
        })
        .collect();
    Tensor::from_vec(shape, v).unwrap()
}

/// Distinct values `k·step` (shuffled), so a max never ties within `step / 2`.
pub fn distinct(shape: &[usize], rng: &mut Rng, step: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut idx: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut idx);
    Tensor::from_vec(shape, idx.iter().map(|&i| (i as f32 - n as f32 / 2.0) * step).collect()).unwrap()
}

/// `L = Σ y·r` over the first output, summed in f64.
fn loss(graph: &Graph, inputs: &[Tensor], mode: Mode, r: &[f32]) -> f64 {
    let tape = Tape::new(graph).unwrap();
    let fwd = tape.forward(inputs.to_vec(), mode).unwrap();
    let y = fwd.f32(graph.outputs()[0]).unwrap();
    y.iter().zip(r).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Tolerances and step of a check.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    /// Central-difference step.
    pub eps: f32,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for Tol {
    fn default() -> Self {
        Tol { eps: 1e-2, atol: 2e-3, rtol: 1e-2 }
    }
}

/// Check the tape's gradients of `Σ y·r` (random `r`) with respect to every graph input and
/// every trainable constant against central differences, on up to 24 elements per tensor.
/// Returns the number of elements checked.
pub fn check_gradients(graph: &Graph, inputs: &[Tensor], mode: Mode, tol: Tol, seed: u64) -> Result<usize, String> {
    let mut rng = Rng::new(seed);
    let tape = Tape::new(graph).map_err(|e| e.to_string())?;
    let fwd = tape.forward(inputs.to_vec(), mode).map_err(|e| e.to_string())?;
    let out = graph.outputs()[0];
    let y = fwd.f32(out).map_err(|e| e.to_string())?.clone();
    let r: Vec<f32> = (0..y.len()).map(|_| 2.0 * rng.uniform() as f32 - 1.0).collect();
    let seed_grad = ndarray::ArrayD::from_shape_vec(y.raw_dim(), r.clone()).unwrap();
    let params = Params::select(graph, &[]);
    let input_outlets: Vec<Outlet> = graph.inputs().iter().map(|&n| Outlet::new(n, 0)).collect();
    let mut targets = input_outlets.clone();
    targets.extend(params.outlets());
    let grads = tape.backward(&fwd, vec![(out, seed_grad)], &targets).map_err(|e| e.to_string())?;
    drop(fwd);
    let mut checked = 0;
    for &t in &targets {
        let is_input = input_outlets.contains(&t);
        let base: Tensor = if is_input {
            inputs[input_outlets.iter().position(|&o| o == t).unwrap()].clone()
        } else {
            graph.const_value(t).unwrap().clone()
        };
        let name = graph.value(t).name.clone();
        let analytic = grads.get(t).cloned().unwrap_or_else(|| ndarray::ArrayD::zeros(base.shape()));
        if analytic.shape() != base.shape() {
            return Err(format!("{name}: gradient shape {:?} for value {:?}", analytic.shape(), base.shape()));
        }
        let vals = base.to_f32_vec();
        let picks: Vec<usize> = if vals.len() <= 24 {
            (0..vals.len()).collect()
        } else {
            (0..24).map(|_| rng.below(vals.len() as u64) as usize).collect()
        };
        for &j in &picks {
            let eval = |delta: f32| -> f64 {
                let mut v = vals.clone();
                v[j] += delta;
                let t2 = Tensor::from_vec(base.shape(), v).unwrap();
                if is_input {
                    let mut ins = inputs.to_vec();
                    ins[input_outlets.iter().position(|&o| o == t).unwrap()] = t2;
                    loss(graph, &ins, mode, &r)
                } else {
                    let mut g = graph.clone();
                    g.node_mut(t.node).op = Op::Const(t2);
                    loss(&g, inputs, mode, &r)
                }
            };
            let numeric = (eval(tol.eps) - eval(-tol.eps)) / (2.0 * tol.eps as f64);
            let a = analytic.as_standard_layout().as_slice().unwrap()[j] as f64;
            if (a - numeric).abs() > tol.atol + tol.rtol * a.abs().max(numeric.abs()) {
                return Err(format!("{name}[{j}]: analytic {a}, numeric {numeric}"));
            }
            checked += 1;
        }
    }
    Ok(checked)
}
