//! Property tests of the reference kernels against naive index-based implementations.

use half::f16;
use lithe_ir::{DType, Element, Op, Tensor};
use lithe_kernels::reference::{cast::cast, eval};
use proptest::prelude::*;

fn run(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, lithe_kernels::KernelError> {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|x| Some(*x)).collect();
    eval(op, &ins, 1).map(|mut v| v.remove(0))
}

fn vals<T: Element>(x: &Tensor) -> Vec<T> {
    x.view::<T>().unwrap().iter().copied().collect()
}

/// Row-major multi-index of flat position `flat` in `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        idx[k] = flat % shape[k];
        flat /= shape[k];
    }
    idx
}

/// Row-major flat position of `idx` in `shape`.
fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// An output shape and two input shapes that broadcast to it.
fn broadcast_case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec(0usize..4, 0..5).prop_flat_map(|out| {
        let r = out.len();
        let input = {
            let out = out.clone();
            (0..=r, prop::collection::vec(any::<bool>(), r)).prop_map(move |(rank, ones)| {
                (r - rank..r).map(|k| if ones[k] { 1 } else { out[k] }).collect::<Vec<usize>>()
            })
        };
        (Just(out), input.clone(), input)
    })
}

/// `true` when numpy would broadcast `a` and `b`.
fn compatible(a: &[usize], b: &[usize]) -> bool {
    a.iter().rev().zip(b.iter().rev()).all(|(&x, &y)| x == y || x == 1 || y == 1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn broadcasting_matches_naive_indexing(
        (out, sa, sb) in broadcast_case(),
        seed in any::<u64>(),
    ) {
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let av: Vec<i32> = (0..na).map(|i| ((i as u64 * 7 + seed) % 201) as i32 - 100).collect();
        let bv: Vec<i32> = (0..nb).map(|i| ((i as u64 * 13 + seed / 3) % 201) as i32 - 100).collect();
        let a = Tensor::from_vec(&sa, av.clone()).unwrap();
        let b = Tensor::from_vec(&sb, bv.clone()).unwrap();
        // The expected output shape: `out`, except axes where both inputs have 1 (or are absent).
        let rank = out.len();
        let exp_shape: Vec<usize> = (0..rank)
            .map(|k| {
                let da = if k + sa.len() >= rank { sa[k + sa.len() - rank] } else { 1 };
                let db = if k + sb.len() >= rank { sb[k + sb.len() - rank] } else { 1 };
                if da == 1 { db } else { da }
            })
            .collect();
        let exp_shape: Vec<usize> = exp_shape[rank - sa.len().max(sb.len())..].to_vec();
        let n: usize = exp_shape.iter().product();
        let pick = |vals: &[i32], shape: &[usize], idx: &[usize]| {
            let off = idx.len() - shape.len();
            let src: Vec<usize> = shape.iter().enumerate().map(|(k, &d)| if d == 1 { 0 } else { idx[k + off] }).collect();
            vals[ravel(&src, shape)]
        };
        let want_add: Vec<i32> = (0..n)
            .map(|f| {
                let idx = unravel(f, &exp_shape);
                pick(&av, &sa, &idx).wrapping_add(pick(&bv, &sb, &idx))
            })
            .collect();
        let y = run(&Op::Add, &[&a, &b]).unwrap();
        prop_assert_eq!(y.shape(), &exp_shape[..]);
        prop_assert_eq!(vals::<i32>(&y), want_add);
        // Where with a broadcast condition picks the same elements.
        let c = Tensor::from_vec(&sa, av.iter().map(|&v| v > 0).collect::<Vec<bool>>()).unwrap();
        let w = run(&Op::Where, &[&c, &a, &b]).unwrap();
        let want_where: Vec<i32> = (0..n)
            .map(|f| {
                let idx = unravel(f, &exp_shape);
                let x = pick(&av, &sa, &idx);
                if x > 0 { x } else { pick(&bv, &sb, &idx) }
            })
            .collect();
        prop_assert_eq!(vals::<i32>(&w), want_where);
    }

    #[test]
    fn broadcasting_accepts_exactly_compatible_shapes(
        sa in prop::collection::vec(0usize..4, 0..4),
        sb in prop::collection::vec(0usize..4, 0..4),
    ) {
        let a = Tensor::zeros(DType::F32, &sa);
        let b = Tensor::zeros(DType::F32, &sb);
        prop_assert_eq!(run(&Op::Mul, &[&a, &b]).is_ok(), compatible(&sa, &sb));
    }
}

/// The positions `data[start:end:step]` takes along an axis of size `dim`, by the ONNX rules
/// stated per element (no closed-form counting). Unlike Python, ONNX (and onnxruntime) clamps a
/// start below `-dim` to 0 for negative steps, so `[0][-2:-2:-2]` is `[0]`.
fn naive_positions(dim: usize, start: i64, end: i64, step: i64) -> Vec<usize> {
    let d = dim as i128;
    let norm = |v: i64| if v < 0 { v as i128 + d } else { v as i128 };
    let (s, e, st) = (norm(start), norm(end), step as i128);
    if st > 0 {
        let s = s.max(0);
        (0..d).filter(|&p| p >= s && p < e && (p - s) % st == 0).map(|p| p as usize).collect()
    } else {
        let s = s.min(d - 1).max(0);
        (0..d).rev().filter(|&p| p <= s && p > e && (s - p) % -st == 0).map(|p| p as usize).collect()
    }
}

fn bound() -> impl Strategy<Value = i64> {
    prop_oneof![6 => -7i64..8, 1 => Just(i64::MAX), 1 => Just(i64::MIN), 1 => Just(i32::MAX as i64)]
}

fn step() -> impl Strategy<Value = i64> {
    prop_oneof![6 => prop_oneof![-3i64..0, 1i64..4], 1 => Just(i64::MAX), 1 => Just(i64::MIN)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn slice_matches_naive_per_element(
        shape in prop::collection::vec(0usize..5, 1..4),
        params in prop::collection::vec((bound(), bound(), step(), any::<bool>()), 1..4),
        order in any::<prop::sample::Index>(),
        use_i32 in any::<bool>(),
    ) {
        let rank = shape.len();
        let n: usize = shape.iter().product();
        let data = Tensor::from_vec(&shape, (0..n as i64).collect()).unwrap();
        // Distinct axes in a shuffled order, some written as negative.
        let k = params.len().min(rank);
        let first = order.index(rank);
        let axes: Vec<usize> = (0..k).map(|i| (first + i) % rank).collect();
        let axes_spec: Vec<i64> = axes.iter().zip(&params).map(|(&a, p)| if p.3 { a as i64 - rank as i64 } else { a as i64 }).collect();
        let starts: Vec<i64> = params[..k].iter().map(|p| p.0).collect();
        let ends: Vec<i64> = params[..k].iter().map(|p| p.1).collect();
        let steps: Vec<i64> = params[..k].iter().map(|p| p.2).collect();
        let idx = |v: &[i64]| {
            if use_i32 {
                Tensor::from_vec(&[v.len()], v.iter().map(|&x| x.clamp(i32::MIN as i64, i32::MAX as i64) as i32).collect()).unwrap()
            } else {
                Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
            }
        };
        let clamp32 = |v: i64| if use_i32 { v.clamp(i32::MIN as i64, i32::MAX as i64) } else { v };
        let y = run(&Op::Slice, &[&data, &idx(&starts), &idx(&ends), &idx(&axes_spec), &idx(&steps)]).unwrap();
        // Naive: per-axis positions, then every output element looked up by its index.
        let mut picks: Vec<Vec<usize>> = shape.iter().map(|&d| (0..d).collect()).collect();
        for i in 0..k {
            picks[axes[i]] = naive_positions(shape[axes[i]], clamp32(starts[i]), clamp32(ends[i]), clamp32(steps[i]));
        }
        let out_shape: Vec<usize> = picks.iter().map(Vec::len).collect();
        let m: usize = out_shape.iter().product();
        let want: Vec<i64> = (0..m)
            .map(|f| {
                let o = unravel(f, &out_shape);
                let src: Vec<usize> = o.iter().enumerate().map(|(a, &i)| picks[a][i]).collect();
                ravel(&src, &shape) as i64
            })
            .collect();
        prop_assert_eq!(y.shape(), &out_shape[..]);
        prop_assert_eq!(vals::<i64>(&y), want);
    }

    #[test]
    fn transpose_then_inverse_is_identity(
        perm in (0usize..5).prop_flat_map(|r| Just((0..r).collect::<Vec<usize>>()).prop_shuffle()),
        dims in prop::collection::vec(1usize..4, 5),
    ) {
        let shape = &dims[..perm.len()];
        let n: usize = shape.iter().product();
        let x = Tensor::from_vec(shape, (0..n).map(|v| v as f32).collect()).unwrap();
        let y = run(&Op::Transpose { perm: Some(perm.clone()) }, &[&x]).unwrap();
        let want_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        prop_assert_eq!(y.shape(), &want_shape[..]);
        // y[i] = x[j] with j[perm[a]] = i[a].
        let yv = vals::<f32>(&y);
        for (f, &v) in yv.iter().enumerate() {
            let i = unravel(f, &want_shape);
            let mut j = vec![0; perm.len()];
            for (a, &p) in perm.iter().enumerate() {
                j[p] = i[a];
            }
            prop_assert_eq!(v, ravel(&j, shape) as f32);
        }
        let mut inv = vec![0; perm.len()];
        for (a, &p) in perm.iter().enumerate() {
            inv[p] = a;
        }
        let z = run(&Op::Transpose { perm: Some(inv) }, &[&y]).unwrap();
        prop_assert_eq!(z, x);
    }

    #[test]
    fn cast_round_trips(
        small in prop::collection::vec(any::<i8>(), 0..16),
        wide in prop::collection::vec(any::<i32>(), 0..16),
        half_bits in prop::collection::vec(any::<u16>(), 0..16),
        floats in prop::collection::vec(any::<f32>(), 0..16),
        flags in prop::collection::vec(any::<bool>(), 0..16),
    ) {
        // i8 survives every non-bool dtype (u8 wraps and wraps back).
        let x = Tensor::from_vec(&[small.len()], small.clone()).unwrap();
        for dt in DType::ALL.into_iter().filter(|&d| d != DType::Bool) {
            prop_assert_eq!(cast(&cast(&x, dt), DType::I8), x.clone(), "via {}", dt);
        }
        // i32 survives i64, and f32 when |v| <= 2^24.
        let x = Tensor::from_vec(&[wide.len()], wide.clone()).unwrap();
        prop_assert_eq!(cast(&cast(&x, DType::I64), DType::I32), x.clone());
        let exact: Vec<i32> = wide.iter().map(|v| v % (1 << 24)).collect();
        let x = Tensor::from_vec(&[exact.len()], exact).unwrap();
        prop_assert_eq!(cast(&cast(&x, DType::F32), DType::I32), x);
        // Every non-NaN f16 survives f32 bit for bit.
        let hs: Vec<f16> = half_bits.iter().map(|&b| f16::from_bits(b)).filter(|h| !h.is_nan()).collect();
        let x = Tensor::from_vec(&[hs.len()], hs.clone()).unwrap();
        let back = cast(&cast(&x, DType::F32), DType::F16);
        let bits: Vec<u16> = vals::<f16>(&back).iter().map(|h| h.to_bits()).collect();
        prop_assert_eq!(bits, hs.iter().map(|h| h.to_bits()).collect::<Vec<_>>());
        // f32 -> f16 is idempotent after one rounding.
        let x = Tensor::from_vec(&[floats.len()], floats.clone()).unwrap();
        let once = cast(&x, DType::F16);
        let twice = cast(&cast(&once, DType::F32), DType::F16);
        let ob: Vec<u16> = vals::<f16>(&once).iter().map(|h| h.to_bits()).collect();
        let tb: Vec<u16> = vals::<f16>(&twice).iter().map(|h| h.to_bits()).collect();
        prop_assert_eq!(ob, tb);
        // bool survives every dtype.
        let x = Tensor::from_vec(&[flags.len()], flags.clone()).unwrap();
        for dt in DType::ALL {
            prop_assert_eq!(cast(&cast(&x, dt), DType::Bool), x.clone(), "via {}", dt);
        }
    }
}
