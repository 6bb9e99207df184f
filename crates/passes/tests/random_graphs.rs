//! Property test of the whole default pipeline: random small CNN-like graphs (convs with
//! groups, pads, strides and biases, batch norms, activations, residual adds, explicit pads
//! before convs and pools, shape-op chains, transpose pairs, no-op nodes, hard-swish patterns,
//! fully connected heads) compute the same outputs, under the same names, before and after
//! `PassManager::default_pipeline()`.

mod common;

use common::eval;

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{AvgPoolAttrs, ConvAttrs, GemmAttrs, PadMode, PoolAttrs};
use lithe_ir::{DType, Dim, Graph, IrError, Op, Outlet, Tensor, TypeInfo};
use lithe_passes::PassManager;
use proptest::prelude::*;

/// Deterministic data (xorshift).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() >> 33) as usize % n.max(1)
    }

    fn coin(&mut self, p_true: f32) -> bool {
        self.unit() < p_true
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn uniform(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| lo + self.unit() * (hi - lo)).collect();
        Tensor::from_vec(shape, v).unwrap()
    }
}

/// Builds a random graph block by block, tracking the current NCHW feature map.
struct Gen {
    b: GraphBuilder,
    x: Outlet,
    rng: Rng,
    extra_outputs: Vec<Outlet>,
    /// The batch size; a symbolic (or, after some reshapes, unknown) batch dim stands for it.
    batch: usize,
    /// The batch dim of the graph input is the symbol `n`.
    symbolic: bool,
}

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
}

impl Gen {
    /// The dims of a generated value; only the batch dim may be symbolic or unknown.
    fn dims(&self, o: Outlet) -> Vec<usize> {
        let shape = self.b.ty(o).shape.as_ref().expect("generated values have a rank");
        shape.dims().iter().map(|d| d.known().unwrap_or(self.batch)).collect()
    }

    /// The batch entry of a Reshape shape: the size, or `0` (copy) when it is symbolic.
    fn batch_spec(&self, n: usize) -> i64 {
        if self.symbolic { 0 } else { n as i64 }
    }

    fn nchw(&self) -> (usize, usize, usize, usize) {
        let d = self.dims(self.x);
        (d[0], d[1], d[2], d[3])
    }

    fn constant(&mut self, name: &str, t: Tensor) -> Outlet {
        let name = format!("{name}_{}", self.rng.next_u64() % 1_000_000_007);
        self.b.constant(name, t)
    }

    /// Weights scaled so activations stay of order 1.
    fn weights(&mut self, shape: &[usize], fan_in: usize) -> Tensor {
        let s = 1.0 / (fan_in.max(1) as f32).sqrt();
        self.rng.uniform(shape, -s, s)
    }

    /// A random activation on `x`, whose channel axis (for PReLU) is axis 1 of size `c`.
    fn activation(&mut self, x: Outlet, c: usize, rank: usize) -> Result<Outlet, IrError> {
        match self.rng.below(7) {
            0 => self.b.relu(x),
            1 => {
                let lo = self.constant("clip_min", Tensor::scalar(0f32));
                let hi = self.constant("clip_max", Tensor::scalar(6f32));
                self.b.node(Op::Clip, &[x, lo, hi])
            }
            2 => self.b.node(Op::LeakyRelu { alpha: 0.1 }, &[x]),
            3 => {
                let mut shape = vec![c];
                shape.extend(std::iter::repeat_n(1, rank.saturating_sub(2)));
                let slope = self.rng.uniform(&shape, 0.0, 0.5);
                let s = self.constant("slope", slope);
                self.b.node(Op::PRelu, &[x, s])
            }
            4 => self.b.node(Op::HardSwish, &[x]),
            5 => self.b.node(Op::HardSigmoid { alpha: 0.2, beta: 0.5 }, &[x]),
            _ => self.b.node(Op::Sigmoid, &[x]),
        }
    }

    fn batch_norm(&mut self, x: Outlet, c: usize) -> Result<Outlet, IrError> {
        let scale = self.rng.uniform(&[c], 0.5, 1.5);
        let bias = self.rng.uniform(&[c], -0.5, 0.5);
        let mean = self.rng.uniform(&[c], -0.5, 0.5);
        let var = self.rng.uniform(&[c], 0.5, 1.5);
        self.b.batch_norm(x, scale, bias, mean, var, 1e-5)
    }

    /// A random conv of `x` (channels `c`, spatial `h x w`) to `c_out` channels; `keep_size`
    /// forces stride 1 and "same" padding.
    fn conv(&mut self, x: Outlet, c_out: usize, keep_size: bool) -> Result<Outlet, IrError> {
        let d = self.dims(x);
        let (c, h, w) = (d[1], d[2], d[3]);
        let groups: Vec<usize> = (1..=c).filter(|g| c % g == 0 && c_out.is_multiple_of(*g)).collect();
        let group = groups[self.rng.below(groups.len())];
        let k = if h.min(w) >= 3 && self.rng.coin(0.6) { 3 } else { 1 };
        let (strides, pads) = if keep_size {
            (vec![1, 1], vec![k / 2; 4])
        } else {
            let s = if h.min(w) >= 4 && self.rng.coin(0.3) { 2 } else { 1 };
            let pads = (0..4).map(|_| self.rng.below(k / 2 + 1)).collect();
            (vec![s, s], pads)
        };
        let weight = self.weights(&[c_out, c / group, k, k], c / group * k * k);
        let bias = self.rng.coin(0.6).then(|| self.rng.uniform(&[c_out], -0.5, 0.5));
        let attrs = ConvAttrs { pads, strides, group, ..Default::default() };
        self.b.conv2d(x, weight, bias, attrs)
    }

    /// One random block applied to the current feature map.
    fn block(&mut self, kind: u8) -> Result<(), IrError> {
        let (n, c, h, w) = self.nchw();
        let x = self.x;
        self.x = match kind % 13 {
            // Conv (+ BN) (+ activation).
            0 | 1 => {
                let c_out = 1 + self.rng.below(6);
                let mut y = self.conv(x, c_out, false)?;
                if kind % 13 == 1 || self.rng.coin(0.3) {
                    y = self.batch_norm(y, c_out)?;
                }
                if self.rng.coin(0.7) {
                    let r = self.b.ty(y).shape.as_ref().map_or(4, |s| s.rank());
                    y = self.activation(y, c_out, r)?;
                }
                y
            }
            // A standalone activation.
            2 => self.activation(x, c, 4)?,
            // Residual: conv keeping the shape (+ BN) (+ activation), added to the input.
            3 => {
                let mut y = self.conv(x, c, true)?;
                if self.rng.coin(0.5) {
                    y = self.batch_norm(y, c)?;
                }
                if self.rng.coin(0.3) {
                    y = self.activation(y, c, 4)?;
                }
                let mut z = if self.rng.coin(0.5) { self.b.add(y, x)? } else { self.b.add(x, y)? };
                if self.rng.coin(0.5) {
                    z = self.activation(z, c, 4)?;
                }
                z
            }
            // Explicit Pad + Conv.
            4 => {
                let value = if self.rng.coin(0.85) { 0.0 } else { 0.5 };
                let padded = self.pad(x, 2, value)?;
                let c_out = 1 + self.rng.below(5);
                self.conv(padded, c_out, false)?
            }
            // Explicit Pad + AveragePool.
            5 => {
                let padded = self.pad(x, 1, 0.0)?;
                let pool = self.pool_attrs(padded)?;
                let a = AvgPoolAttrs { pool, count_include_pad: self.rng.coin(0.5) };
                self.b.node(Op::AveragePool(a), &[padded])?
            }
            // Explicit -inf (or lowest) Pad + MaxPool. The pool has no pads of its own and no
            // ceil mode, so every window reads a real element as in exported models (a window
            // wholly in the padding would send infinities downstream, whose arithmetic no
            // weight folding can keep bit-for-bit).
            6 => {
                let v = if self.rng.coin(0.5) { f32::NEG_INFINITY } else { f32::MIN };
                let padded = self.pad(x, 1, v)?;
                let pool = PoolAttrs { pads: Vec::new(), ceil_mode: false, ..self.pool_attrs(padded)? };
                self.b.max_pool(padded, pool)?
            }
            // Shape-op chains that come back to NCHW.
            7 => self.shape_chain(x, (n, c, h, w))?,
            // Transposes that compose to the identity.
            8 => {
                let p1 = self.perm();
                let p2 = self.perm();
                let t1 = self.b.node(Op::Transpose { perm: Some(p1.clone()) }, &[x])?;
                let mid = if self.rng.coin(0.3) { self.b.relu(t1)? } else { t1 };
                let t2 = self.b.node(Op::Transpose { perm: Some(p2.clone()) }, &[mid])?;
                // Axis j of t2 is axis p1[p2[j]] of x; invert that.
                let composed: Vec<usize> = p2.iter().map(|&j| p1[j]).collect();
                let mut inv = vec![0; 4];
                for (j, &a) in composed.iter().enumerate() {
                    inv[a] = j;
                }
                self.b.node(Op::Transpose { perm: Some(inv) }, &[t2])?
            }
            // No-op nodes.
            9 => match self.rng.below(6) {
                0 => self.b.node(Op::Identity, &[x])?,
                1 => self.b.node(Op::Dropout, &[x])?,
                2 => self.b.node_with(Op::Dropout, &[Some(x)], 2)?[0],
                3 => self.b.node(Op::Cast { to: DType::F32 }, &[x])?,
                4 => self.b.node(Op::Concat { axis: 1 }, &[x])?,
                _ => {
                    let s = self.constant("starts", i64s(&[0]));
                    let e = self.constant("ends", i64s(&[i64::MAX]));
                    let a = self.constant("axes", i64s(&[1]));
                    self.b.node(Op::Slice, &[x, s, e, a])?
                }
            },
            // x * HardSigmoid(x) with alpha 1/6, beta 1/2: a hard swish.
            10 => {
                let hs = self.b.node(Op::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, &[x])?;
                if self.rng.coin(0.5) { self.b.node(Op::Mul, &[x, hs])? } else { self.b.node(Op::Mul, &[hs, x])? }
            }
            // A batch norm not after a conv.
            11 => self.batch_norm(x, c)?,
            // A pool without explicit Pad.
            _ => {
                let pool = self.pool_attrs(x)?;
                if self.rng.coin(0.5) {
                    self.b.max_pool(x, pool)?
                } else {
                    self.b.node(Op::AveragePool(AvgPoolAttrs { pool, count_include_pad: self.rng.coin(0.5) }), &[x])?
                }
            }
        };
        Ok(())
    }

    /// A random permutation of 4 axes.
    fn perm(&mut self) -> Vec<usize> {
        let mut p = vec![0, 1, 2, 3];
        for i in (1..4).rev() {
            let j = self.rng.below(i + 1);
            p.swap(i, j);
        }
        p
    }

    /// A constant Pad of the spatial axes by up to `max` per side (ONNX form, sometimes with
    /// an axes input), filled with `value`.
    fn pad(&mut self, x: Outlet, max: usize, value: f32) -> Result<Outlet, IrError> {
        let mut sides: Vec<i64> = (0..4).map(|_| self.rng.below(max + 1) as i64).collect();
        if sides.iter().all(|&p| p == 0) {
            sides[0] = 1;
        }
        let v = self.constant("pad_value", Tensor::scalar(value));
        if self.rng.coin(0.5) {
            let p = self.constant("pads", i64s(&[sides[0], sides[1], sides[2], sides[3]]));
            let axes = self.constant("pad_axes", i64s(&[2, 3]));
            self.b.node(Op::Pad { mode: PadMode::Constant }, &[x, p, v, axes])
        } else {
            let p = self.constant("pads", i64s(&[0, 0, sides[0], sides[1], 0, 0, sides[2], sides[3]]));
            self.b.node(Op::Pad { mode: PadMode::Constant }, &[x, p, v])
        }
    }

    /// Random pool attributes fitting the input: kernel 2 or 3, stride 1 or 2, own pads below
    /// the kernel, sometimes ceil mode.
    fn pool_attrs(&mut self, x: Outlet) -> Result<PoolAttrs, IrError> {
        let d = self.dims(x);
        let small = d[2].min(d[3]);
        if small < 2 {
            return Err(IrError::Attribute("too small to pool".into()));
        }
        let k = if small >= 3 && self.rng.coin(0.5) { 3 } else { 2 };
        let s = 1 + self.rng.below(2);
        let pads = if self.rng.coin(0.4) { (0..4).map(|_| self.rng.below(k / 2 + 1)).collect() } else { Vec::new() };
        Ok(PoolAttrs {
            kernel_shape: vec![k, k],
            strides: vec![s, s],
            pads,
            ceil_mode: self.rng.coin(0.3),
            ..Default::default()
        })
    }

    fn shape_chain(&mut self, x: Outlet, (n, c, h, w): (usize, usize, usize, usize)) -> Result<Outlet, IrError> {
        let nchw = [self.batch_spec(n), c as i64, h as i64, w as i64];
        // Where the batch is merged with another dim, a symbolic one is written -1.
        let merged = if self.symbolic { -1 } else { (n * c) as i64 };
        let lead = if self.symbolic { -1 } else { n as i64 };
        Ok(match self.rng.below(5) {
            0 => {
                let f = self.b.node(Op::Flatten { axis: 1 }, &[x])?;
                self.b.reshape(f, &nchw)?
            }
            1 => {
                let r = self.b.reshape(x, &[0, c as i64, -1])?;
                let axes = self.constant("axes", i64s(&[3]));
                let u = self.b.node(Op::Unsqueeze, &[r, axes])?;
                let u = if self.rng.coin(0.3) { self.b.relu(u)? } else { u };
                self.b.reshape(u, &nchw)?
            }
            2 => {
                let axes = self.constant("axes", i64s(&[0]));
                let u = self.b.node(Op::Unsqueeze, &[x, axes])?;
                let axes = self.constant("axes", i64s(&[0]));
                self.b.node(Op::Squeeze, &[u, axes])?
            }
            3 => {
                let r = self.b.reshape(x, &[merged, h as i64, w as i64])?;
                self.b.reshape(r, &[lead, c as i64, h as i64, w as i64])?
            }
            _ => {
                let f = self.b.node(Op::Flatten { axis: 2 }, &[x])?;
                let axes = self.constant("axes", i64s(&[1]));
                let u = self.b.node(Op::Unsqueeze, &[f, axes])?;
                if self.symbolic {
                    self.b.reshape(u, &[-1, c as i64, h as i64, w as i64])?
                } else {
                    self.b.reshape(u, &[n as i64, c as i64, h as i64, -1])?
                }
            }
        })
    }

    /// A fully connected head on the current feature map.
    fn head(&mut self, kind: u8) -> Result<Outlet, IrError> {
        let (n, c, h, w) = self.nchw();
        let x = self.x;
        let (flat, k) = match kind % 4 {
            0 => {
                let g = self.b.global_avg_pool(x)?;
                (self.b.node(Op::Flatten { axis: 1 }, &[g])?, c)
            }
            1 => {
                let g = self.b.global_avg_pool(x)?;
                let lead = if self.symbolic { -1 } else { n as i64 };
                (self.b.reshape(g, &[lead, c as i64])?, c)
            }
            2 => {
                let g = self.b.global_avg_pool(x)?;
                let axes = self.constant("axes", i64s(&[2, 3]));
                (self.b.node(Op::Squeeze, &[g, axes])?, c)
            }
            _ => (self.b.node(Op::Flatten { axis: 1 }, &[x])?, c * h * w),
        };
        let f = 1 + self.rng.below(5);
        let mut y = if self.rng.coin(0.5) {
            let wt = self.weights(&[k, f], k);
            let wc = self.constant("fc_w", wt);
            let mut y = self.b.matmul(flat, wc)?;
            if self.rng.coin(0.7) {
                let bias = self.rng.uniform(&[f], -0.5, 0.5);
                let bc = self.constant("fc_b", bias);
                y = if self.rng.coin(0.5) { self.b.add(y, bc)? } else { self.b.add(bc, y)? };
            }
            y
        } else {
            let trans_b = self.rng.coin(0.5);
            let shape = if trans_b { [f, k] } else { [k, f] };
            let wt = self.weights(&shape, k);
            let wc = self.constant("gemm_w", wt);
            let bias = self.rng.coin(0.7).then(|| self.rng.uniform(&[f], -0.5, 0.5));
            let bc = bias.map(|t| self.constant("gemm_b", t));
            self.b.gemm(flat, wc, bc, GemmAttrs { trans_b, ..Default::default() })?
        };
        if self.rng.coin(0.6) {
            y = self.activation(y, f, 2)?;
        }
        Ok(y)
    }
}

/// What a random graph is made of.
#[derive(Clone, Debug)]
struct Recipe {
    batch: usize,
    symbolic: bool,
    channels: usize,
    size: usize,
    blocks: Vec<u8>,
    /// Index of a block whose output also becomes a graph output.
    tap: Option<usize>,
    head: Option<u8>,
    seed: u64,
}

fn recipe() -> impl Strategy<Value = Recipe> {
    (
        1usize..=2,
        any::<bool>(),
        1usize..=4,
        3usize..=7,
        prop::collection::vec(0u8..13, 1..=6),
        prop::option::of(0usize..6),
        prop::option::of(0u8..4),
        any::<u64>(),
    )
        .prop_map(|(batch, symbolic, channels, size, blocks, tap, head, seed)| Recipe {
            batch,
            symbolic,
            channels,
            size,
            blocks,
            tap,
            head,
            seed,
        })
}

fn build(r: &Recipe) -> (Graph, Tensor) {
    let mut rng = Rng::new(r.seed);
    let shape = [r.batch, r.channels, r.size, r.size];
    let input = rng.uniform(&shape, -1.0, 1.0);
    let mut b = GraphBuilder::new("random");
    let batch_dim = if r.symbolic { Dim::Sym("n".into()) } else { Dim::Known(r.batch) };
    let x = b.input("x", DType::F32, &[batch_dim, r.channels.into(), r.size.into(), r.size.into()]);
    let mut g = Gen { b, x, rng, extra_outputs: Vec::new(), batch: r.batch, symbolic: r.symbolic };
    for (i, &kind) in r.blocks.iter().enumerate() {
        let before = g.x;
        // A block that does not fit the current shape leaves the feature map as it was.
        if g.block(kind).is_err() {
            g.x = before;
        }
        if r.tap == Some(i) && g.x != before {
            g.extra_outputs.push(g.x);
        }
    }
    let out = match r.head {
        Some(h) => g.head(h).unwrap_or(g.x),
        None => g.x,
    };
    let Gen { mut b, extra_outputs, .. } = g;
    b.output(out);
    for o in extra_outputs {
        if o != out {
            b.output(o);
        }
    }
    (b.finish().unwrap(), input)
}

/// True when a Pad that fold_pad must fold (constant, zero fill, non-negative spatial pads,
/// read only by a plain-padded Conv) is still in the graph.
fn foldable_pad_left(g: &Graph) -> Option<String> {
    for id in g.node_ids() {
        let node = g.node(id);
        if !matches!(node.op, Op::Pad { mode: PadMode::Constant }) {
            continue;
        }
        let ins = g.node_inputs(id);
        let zero_fill = ins
            .get(2)
            .copied()
            .flatten()
            .and_then(|o| g.const_value(o))
            .is_none_or(|t| t.to_f32_vec().iter().all(|&v| v == 0.0));
        let readers = g.consumers(Outlet::new(id, 0));
        let only_conv = matches!(readers.as_slice(), [(c, 0)] if matches!(g.node(*c).op, Op::Conv(_)))
            && !g.outputs().contains(&Outlet::new(id, 0));
        if zero_fill && only_conv {
            return Some(node.name.clone());
        }
    }
    None
}

/// A node the structural passes always remove that is still there: Flatten, Squeeze and
/// Unsqueeze of known shapes (they become Reshapes), Identity and Dropout (unless both their
/// input and output are graph inputs or outputs, whose names must all stay).
fn removable_left(g: &Graph) -> Option<String> {
    for id in g.node_ids() {
        let node = g.node(id);
        let src = g.node_inputs(id).first().copied().flatten();
        let named_src = src.is_some_and(|o| g.inputs().contains(&o.node) || g.outputs().contains(&o));
        let is_output = g.outputs().contains(&Outlet::new(id, 0));
        let left = match node.op {
            Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze => true,
            Op::Identity | Op::Dropout => !(named_src && is_output),
            _ => false,
        };
        if left {
            return Some(format!("{} '{}'", node.op.name(), node.name));
        }
    }
    None
}

/// True when `after` is `before` or a refinement of it: same dtype and rank, dims equal except
/// where `before` did not know them.
fn type_kept(before: &TypeInfo, after: &TypeInfo) -> bool {
    let dims_kept = match (&before.shape, &after.shape) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(b), Some(a)) => {
            b.rank() == a.rank() && b.dims().iter().zip(a.dims()).all(|(b, a)| matches!(b, Dim::Unknown) || a == b)
        }
    };
    before.dtype == after.dtype && dims_kept
}

/// 64 cases, or `PROPTEST_CASES` when set (for longer runs); failures are not written to disk.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn default_pipeline_keeps_outputs(r in recipe()) {
        let (original, input) = build(&r);
        let mut optimized = original.clone();
        let report = PassManager::default_pipeline().run(&mut optimized).unwrap();
        optimized.validate().unwrap();
        prop_assert_eq!(original.outputs().len(), optimized.outputs().len());
        for (&o, &p) in original.outputs().iter().zip(optimized.outputs()) {
            let (before, after) = (original.value(o), optimized.value(p));
            prop_assert_eq!(&before.name, &after.name);
            prop_assert!(type_kept(&before.ty, &after.ty), "type {} became {}", before.ty, after.ty);
        }
        let before = eval(&original, std::slice::from_ref(&input));
        let after = eval(&optimized, std::slice::from_ref(&input));
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            prop_assert_eq!(b.shape(), a.shape());
            for (k, (x, y)) in b.to_f32_vec().iter().zip(a.to_f32_vec()).enumerate() {
                prop_assert!(
                    *x == y || (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 + 1e-4 * x.abs(),
                    "output {} element {}: {} before, {} after (passes applied: {:?})",
                    i, k, x, y, report.applied()
                );
            }
        }
        prop_assert!(foldable_pad_left(&optimized).is_none(), "a Pad was not folded into its conv");
        if let Some(left) = removable_left(&optimized) {
            prop_assert!(false, "{} left after the pipeline: {:?}", left, report.ops_after);
        }
    }
}
