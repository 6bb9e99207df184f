//! The fast training paths against plain f64 loops and the general path: convs (depthwise
//! direct loops, including the kernels crate's 3x3/5x5 forward, and im2col + the CPU's GEMM
//! microkernel) and Gemm on the CPU's microkernel, on shapes that cross the register tiles'
//! edges.

use lithe_ir::Tensor;
use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{ConvAttrs, GemmAttrs};
use lithe_ir::{DType, Outlet};
use lithe_train::rng::Rng;
use lithe_train::rules::{ConvPath, conv2d_backward_with, conv2d_forward_with};
use lithe_train::{Mode, Tape};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

fn uniform(shape: &[usize], rng: &mut Rng) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|_| 2.0 * rng.uniform() as f32 - 1.0).collect()).unwrap()
}

/// A 2-D conv's geometry for the f64 loops.
struct Conv {
    group: usize,
    stride: [usize; 2],
    dil: [usize; 2],
    pads: [usize; 4],
}

impl Conv {
    fn attrs(&self) -> ConvAttrs {
        ConvAttrs {
            strides: self.stride.to_vec(),
            dilations: self.dil.to_vec(),
            pads: self.pads.to_vec(),
            group: self.group,
            ..Default::default()
        }
    }

    fn out(&self, x: &[usize], w: &[usize]) -> [usize; 2] {
        let o = |ax: usize| {
            (x[2 + ax] + self.pads[ax] + self.pads[2 + ax] - self.dil[ax] * (w[2 + ax] - 1) - 1) / self.stride[ax] + 1
        };
        [o(0), o(1)]
    }

    /// Calls `f(n, m, c, c_in_group, oy, ox, ki, kj, iy, ix)` for every product of the conv.
    fn each(&self, x: &[usize], w: &[usize], mut f: impl FnMut([usize; 10])) {
        let [oh, ow] = self.out(x, w);
        let (cg, mg) = (w[1], w[0] / self.group);
        for n in 0..x[0] {
            for m in 0..w[0] {
                for cl in 0..cg {
                    let c = (m / mg) * cg + cl;
                    for oy in 0..oh {
                        for ox in 0..ow {
                            for ki in 0..w[2] {
                                for kj in 0..w[3] {
                                    let iy = (oy * self.stride[0] + ki * self.dil[0]) as isize - self.pads[0] as isize;
                                    let ix = (ox * self.stride[1] + kj * self.dil[1]) as isize - self.pads[1] as isize;
                                    if iy >= 0 && ix >= 0 && (iy as usize) < x[2] && (ix as usize) < x[3] {
                                        f([n, m, c, cl, oy, ox, ki, kj, iy as usize, ix as usize]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `(y, dx, dw, db)` in f64 for the output gradient `gy`.
    #[allow(clippy::type_complexity)]
    fn reference(
        &self,
        x: &ArrayD<f32>,
        w: &ArrayD<f32>,
        b: &[f32],
        gy: &ArrayD<f32>,
    ) -> (ArrayD<f64>, ArrayD<f64>, ArrayD<f64>, Vec<f64>) {
        let (xs, ws) = (x.shape(), w.shape());
        let [oh, ow] = self.out(xs, ws);
        let mut y = ArrayD::<f64>::zeros(IxDyn(&[xs[0], ws[0], oh, ow]));
        let mut dx = ArrayD::<f64>::zeros(IxDyn(xs));
        let mut dw = ArrayD::<f64>::zeros(IxDyn(ws));
        for (i, v) in y.indexed_iter_mut() {
            *v = b[i[1]] as f64;
        }
        self.each(xs, ws, |[n, m, c, cl, oy, ox, ki, kj, iy, ix]| {
            let (xv, wv, g) = (x[[n, c, iy, ix]] as f64, w[[m, cl, ki, kj]] as f64, gy[[n, m, oy, ox]] as f64);
            y[[n, m, oy, ox]] += wv * xv;
            dx[[n, c, iy, ix]] += wv * g;
            dw[[m, cl, ki, kj]] += xv * g;
        });
        let mut db = vec![0f64; ws[0]];
        for (i, &g) in gy.indexed_iter() {
            db[i[1]] += g as f64;
        }
        (y, dx, dw, db)
    }
}

/// Largest `|a − b| / (1 + |b|)`.
fn rel_err<'a>(a: impl IntoIterator<Item = &'a f32>, b: impl IntoIterator<Item = &'a f64>) -> f64 {
    a.into_iter().zip(b).map(|(&a, &b)| (a as f64 - b).abs() / (1.0 + b.abs())).fold(0.0, f64::max)
}

/// Runs the conv on both paths and checks each against the f64 loops.
fn check_conv(conv: &Conv, x_shape: &[usize], w_shape: &[usize], seed: u64) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let x = uniform(x_shape, &mut rng);
    let w = uniform(w_shape, &mut rng);
    let b: Vec<f32> = uniform(&[w_shape[0]], &mut rng).iter().copied().collect();
    let [oh, ow] = conv.out(x_shape, w_shape);
    let gy = uniform(&[x_shape[0], w_shape[0], oh, ow], &mut rng);
    let (y_ref, dx_ref, dw_ref, db_ref) = conv.reference(&x, &w, &b, &gy);
    let bv = ArrayD::from_shape_vec(IxDyn(&[b.len()]), b.clone()).unwrap();
    let attrs = conv.attrs();
    for path in [ConvPath::Auto, ConvPath::Gemm] {
        let y = conv2d_forward_with("conv", &x.view(), &w.view(), Some(&bv.view()), &attrs, path)
            .map_err(|e| e.to_string())?;
        let (dx, dw, db) =
            conv2d_backward_with("conv", &x.view(), &w.view(), &gy.view(), &attrs, [true, true, true], path)
                .map_err(|e| e.to_string())?;
        let (dx, dw, db) = (dx.ok_or("no dx")?, dw.ok_or("no dw")?, db.ok_or("no db")?);
        if y.shape() != y_ref.shape() || dx.shape() != x_shape || dw.shape() != w_shape {
            return Err(format!("{path:?}: shapes {:?} {:?} {:?}", y.shape(), dx.shape(), dw.shape()));
        }
        for (what, err) in [
            ("y", rel_err(&y, &y_ref)),
            ("dx", rel_err(&dx, &dx_ref)),
            ("dw", rel_err(&dw, &dw_ref)),
            ("db", rel_err(&db, &db_ref)),
        ] {
            if err > 1e-5 {
                return Err(format!("{path:?}: {what} differs from the f64 loops by {err:e} (relative)"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Depthwise convs of every geometry (non-square kernels, strides and dilations per axis,
    /// asymmetric pads, channel multipliers): the direct loops and im2col + GEMM against f64.
    #[test]
    fn depthwise_any_geometry(seed in any::<u64>(), n in 1usize..3, c in 2usize..5, mg in 1usize..3,
                              kh in 1usize..6, kw in 1usize..6, sh in 1usize..4, sw in 1usize..4,
                              dh in 1usize..3, dw in 1usize..3, pads in prop::array::uniform4(0usize..3),
                              h in 9usize..14, w in 9usize..14) {
        let conv = Conv { group: c, stride: [sh, sw], dil: [dh, dw], pads };
        prop_assume!(h + pads[0] + pads[2] > dh * (kh - 1) && w + pads[1] + pads[3] > dw * (kw - 1));
        let r = check_conv(&conv, &[n, c, h, w], &[c * mg, 1, kh, kw], seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    /// The geometries the kernels crate's direct depthwise forward covers (3x3/5x5, stride 1
    /// or 2, pads below the kernel, multiplier 1).
    #[test]
    fn depthwise_fast_forward_geometry(seed in any::<u64>(), c in 1usize..20, k in prop::sample::select(vec![3usize, 5]),
                                       s in 1usize..3, pads in prop::array::uniform4(0usize..3), hw in 5usize..16) {
        let conv = Conv { group: c, stride: [s, s], dil: [1, 1], pads };
        prop_assume!(hw + pads[0] + pads[2] >= k && hw + 1 + pads[1] + pads[3] >= k);
        let r = check_conv(&conv, &[2, c, hw, hw + 1], &[c, 1, k, k], seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

/// The MNIST models' convs (LeNet's 5x5 convs, dwsep's stem, depthwise and pointwise convs)
/// at batch 4: output channels 8 to 96 cross the AVX-512 (8/12/14 x 32), AVX2 (6 x 16) and
/// generic (4 x 8) tiles' edges.
#[test]
fn mnist_model_convs() {
    let cases: [(Conv, [usize; 4], [usize; 4]); 8] = [
        (Conv { group: 1, stride: [1, 1], dil: [1, 1], pads: [0; 4] }, [4, 1, 28, 28], [8, 1, 5, 5]),
        (Conv { group: 1, stride: [1, 1], dil: [1, 1], pads: [0; 4] }, [4, 8, 12, 12], [16, 8, 5, 5]),
        (Conv { group: 1, stride: [2, 2], dil: [1, 1], pads: [1; 4] }, [4, 1, 28, 28], [16, 1, 3, 3]),
        (Conv { group: 16, stride: [1, 1], dil: [1, 1], pads: [1; 4] }, [4, 16, 14, 14], [16, 1, 3, 3]),
        (Conv { group: 32, stride: [2, 2], dil: [1, 1], pads: [1; 4] }, [4, 32, 14, 14], [32, 1, 3, 3]),
        (Conv { group: 1, stride: [1, 1], dil: [1, 1], pads: [0; 4] }, [4, 16, 14, 14], [32, 16, 1, 1]),
        (Conv { group: 1, stride: [1, 1], dil: [1, 1], pads: [0; 4] }, [4, 64, 7, 7], [96, 64, 1, 1]),
        (Conv { group: 2, stride: [1, 1], dil: [1, 1], pads: [1; 4] }, [3, 6, 9, 9], [10, 3, 3, 3]),
    ];
    for (i, (conv, xs, ws)) in cases.iter().enumerate() {
        if let Err(e) = check_conv(conv, xs, ws, i as u64) {
            panic!("case {i} (x {xs:?}, w {ws:?}): {e}");
        }
    }
}

fn gemm_graph(a_shape: &[usize], b: Tensor, attrs: GemmAttrs) -> (lithe_ir::Graph, Outlet) {
    let mut g = GraphBuilder::new("gemm");
    let a = g.input("a", DType::F32, a_shape);
    let bw = g.constant("B", b);
    let y = g.gemm(a, bw, None, attrs).unwrap();
    g.output(y);
    (g.finish().unwrap(), y)
}

/// Gemm forward and backward on the CPU's microkernel against f64 products, row counts from
/// 1 to 70 (one to several register tiles of every kernel) and both transposes.
#[test]
fn gemm_on_the_native_kernel() {
    let mut rng = Rng::new(7);
    for (m, k, n) in [(1, 3, 5), (5, 17, 33), (13, 64, 10), (31, 9, 47), (64, 256, 128), (70, 96, 10)] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a_shape = if ta { [k, m] } else { [m, k] };
            let b_shape = if tb { [n, k] } else { [k, n] };
            let a = uniform(&a_shape, &mut rng);
            let b = uniform(&b_shape, &mut rng);
            let gy = uniform(&[m, n], &mut rng);
            let (g, y) = gemm_graph(
                &a_shape,
                Tensor::from(b.clone()),
                GemmAttrs { trans_a: ta, trans_b: tb, ..Default::default() },
            );
            let tape = Tape::new(&g).unwrap();
            let fwd = tape.forward(vec![Tensor::from(a.clone())], Mode::Train).unwrap();
            let b_out = g.node_inputs(y.node)[1].unwrap();
            let a_out = Outlet::new(g.inputs()[0], 0);
            let grads = tape.backward(&fwd, vec![(y, gy.clone())], &[a_out, b_out]).unwrap();
            let av = |i: usize, p: usize| if ta { a[[p, i]] } else { a[[i, p]] } as f64;
            let bv = |p: usize, j: usize| if tb { b[[j, p]] } else { b[[p, j]] } as f64;
            let mut y_ref = vec![0f64; m * n];
            let mut ga_ref = ArrayD::<f64>::zeros(IxDyn(&a_shape));
            let mut gb_ref = ArrayD::<f64>::zeros(IxDyn(&b_shape));
            for i in 0..m {
                for j in 0..n {
                    let g = gy[[i, j]] as f64;
                    for p in 0..k {
                        y_ref[i * n + j] += av(i, p) * bv(p, j);
                        let (ai, bi) = (if ta { [p, i] } else { [i, p] }, if tb { [j, p] } else { [p, j] });
                        ga_ref[ai] += g * bv(p, j);
                        gb_ref[bi] += g * av(i, p);
                    }
                }
            }
            let what = format!("m {m} k {k} n {n} trans {ta}/{tb}");
            assert!(rel_err(fwd.f32(y).unwrap().iter(), &y_ref) < 1e-5, "{what}: forward");
            assert!(rel_err(grads.get(a_out).unwrap().iter(), ga_ref.iter()) < 1e-5, "{what}: dA");
            assert!(rel_err(grads.get(b_out).unwrap().iter(), gb_ref.iter()) < 1e-5, "{what}: dB");
        }
    }
}

/// Train-mode batch normalization (parallel per-channel sums, f32 lanes) against f64: the
/// output, the batch statistics the trainer folds into the running ones, and the gradients of
/// the input, scale and shift.
#[test]
fn batch_norm_train_mode_against_f64() {
    let (n, c, h, w) = (5, 6, 9, 11);
    let mut rng = Rng::new(11);
    // Channels with offsets and scales far from 0 and 1, so the two-pass variance matters.
    let mut x = uniform(&[n, c, h, w], &mut rng);
    for (i, v) in x.indexed_iter_mut() {
        *v = 3.0 * i[1] as f32 - 4.0 + (1.0 + i[1] as f32) * *v;
    }
    let gamma = uniform(&[c], &mut rng);
    let beta = uniform(&[c], &mut rng);
    let gy = uniform(&[n, c, h, w], &mut rng);
    let eps = 1e-5f32;
    let mut b = GraphBuilder::new("bn");
    let xi = b.input("x", DType::F32, &[n, c, h, w]);
    let zeros = Tensor::from(ArrayD::<f32>::zeros(IxDyn(&[c])));
    let ones = Tensor::from(ArrayD::<f32>::ones(IxDyn(&[c])));
    let y = b.batch_norm(xi, Tensor::from(gamma.clone()), Tensor::from(beta.clone()), zeros, ones, eps).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let tape = Tape::new(&g).unwrap();
    let fwd = tape.forward(vec![Tensor::from(x.clone())], Mode::Train).unwrap();
    let ins = g.node_inputs(y.node);
    let (g_out, b_out, x_out) = (ins[1].unwrap(), ins[2].unwrap(), Outlet::new(g.inputs()[0], 0));
    let grads = tape.backward(&fwd, vec![(y, gy.clone())], &[x_out, g_out, b_out]).unwrap();
    let m = (n * h * w) as f64;
    let mut y_ref = ArrayD::<f64>::zeros(IxDyn(&[n, c, h, w]));
    let mut dx_ref = ArrayD::<f64>::zeros(IxDyn(&[n, c, h, w]));
    let (mut dg_ref, mut db_ref) = (vec![0f64; c], vec![0f64; c]);
    for ch in 0..c {
        let plane = |a: &ArrayD<f32>| -> Vec<f64> {
            a.indexed_iter().filter(|(i, _)| i[1] == ch).map(|(_, &v)| v as f64).collect()
        };
        let (xs, gs) = (plane(&x), plane(&gy));
        let mean = xs.iter().sum::<f64>() / m;
        let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
        let (stat_mean, stat_var) = (&fwd.bn_stats[0].1.mean, &fwd.bn_stats[0].1.var);
        assert!((stat_mean[ch] as f64 - mean).abs() < 1e-5 * (1.0 + mean.abs()), "channel {ch} mean");
        assert!((stat_var[ch] as f64 - var * m / (m - 1.0)).abs() < 1e-5 * (1.0 + var), "channel {ch} variance");
        let inv = 1.0 / (var + eps as f64).sqrt();
        let xhat: Vec<f64> = xs.iter().map(|v| (v - mean) * inv).collect();
        db_ref[ch] = gs.iter().sum();
        dg_ref[ch] = gs.iter().zip(&xhat).map(|(g, xh)| g * xh).sum();
        let k = gamma[ch] as f64 * inv / m;
        let mut it = 0;
        for (i, v) in y_ref.indexed_iter_mut() {
            if i[1] == ch {
                *v = gamma[ch] as f64 * xhat[it] + beta[ch] as f64;
                dx_ref[i.clone()] = k * (m * gs[it] - db_ref[ch] - xhat[it] * dg_ref[ch]);
                it += 1;
            }
        }
    }
    assert!(rel_err(fwd.f32(y).unwrap().iter(), y_ref.iter()) < 1e-5, "forward");
    assert!(rel_err(grads.get(x_out).unwrap().iter(), dx_ref.iter()) < 1e-5, "dx");
    assert!(rel_err(grads.get(g_out).unwrap().iter(), &dg_ref) < 1e-5, "dgamma");
    assert!(rel_err(grads.get(b_out).unwrap().iter(), &db_ref) < 1e-5, "dbeta");
}

/// MaxPool and ReLU forward (the kernels crate's direct max pool with batch items in
/// parallel, chunked ReLU) equal the reference kernels, including windows reaching into the
/// padding and geometries the direct kernel leaves to the reference.
#[test]
fn max_pool_and_relu_forward_equal_the_reference() {
    let mut rng = Rng::new(5);
    let x = Tensor::from(uniform(&[3, 4, 13, 12], &mut rng));
    for (k, s, pad, ceil) in [(2, 2, 0, false), (3, 2, 1, false), (2, 2, 1, false), (3, 1, 1, false), (2, 2, 0, true)] {
        let attrs = lithe_ir::op::PoolAttrs {
            kernel_shape: vec![k, k],
            strides: vec![s, s],
            pads: vec![pad; 4],
            ceil_mode: ceil,
            ..Default::default()
        };
        let mut b = GraphBuilder::new("pool");
        let xi = b.input("x", DType::F32, &[3, 4, 13, 12]);
        let r = b.relu(xi).unwrap();
        let y = b.max_pool(r, attrs).unwrap();
        b.output(y);
        let g = b.finish().unwrap();
        let fwd = Tape::new(&g).unwrap().forward(vec![x.clone()], Mode::Train).unwrap();
        let relu_ref = lithe_kernels::reference::eval(&g.node(r.node).op, &[Some(&x)], 1).unwrap().remove(0);
        assert_eq!(fwd.f32(r).unwrap(), relu_ref.view::<f32>().unwrap(), "relu");
        let pool_ref = lithe_kernels::reference::eval(&g.node(y.node).op, &[Some(&relu_ref)], 1).unwrap().remove(0);
        assert_eq!(fwd.f32(y).unwrap(), pool_ref.view::<f32>().unwrap(), "max pool {k}x{k}/{s} pad {pad} ceil {ceil}");
    }
}
