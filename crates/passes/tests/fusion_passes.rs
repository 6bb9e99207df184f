//! Tests of the fusion passes: each rewrite happens where it should, not where it must not,
//! keeps the graph output names, and keeps the outputs (checked by evaluating the graph with
//! the reference kernels before and after).

mod common;

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{Activation, ConvAttrs, ConvTransposeAttrs, Epilogue, FcAttrs, GemmAttrs};
use lithe_ir::{DType, Dim, Graph, Op, Outlet, Tensor};
use lithe_passes::activation::FuseActivation;
use lithe_passes::batch_norm::{BatchNormToAffine, FoldBatchNorm, FoldConvAffine};
use lithe_passes::fully_connected::MatMulToFc;
use lithe_passes::hard_swish::FuseHardSwish;
use lithe_passes::residual::FuseConvResidual;
use lithe_passes::{Pass, PassManager, op_histogram};
use std::collections::HashMap;

// ---------------------------------------------------------------------------------------------
// Helpers: deterministic data, a node-by-node evaluator, before/after comparison.

/// A small xorshift generator: deterministic test data without extra dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// Uniform in [-1, 1).
    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|_| self.next()).collect::<Vec<f32>>()).unwrap()
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| lo + (self.next() + 1.0) / 2.0 * (hi - lo)).collect();
        Tensor::from_vec(shape, v).unwrap()
    }
}

/// Random values for every graph input (symbolic dims are 2, unknown ones 3).
fn random_inputs(g: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = Rng(seed);
    g.inputs()
        .iter()
        .map(|&id| {
            let v = &g.node(id).outputs[0];
            let shape: Vec<usize> =
                v.ty.shape
                    .as_ref()
                    .unwrap()
                    .dims()
                    .iter()
                    .map(|d| match d {
                        Dim::Known(n) => *n,
                        Dim::Sym(_) => 2,
                        Dim::Unknown => 3,
                    })
                    .collect();
            // Spread values over [-4, 4] so activations see both of their sides.
            let t = rng.range(&shape, -4.0, 4.0).cast(v.ty.dtype);
            (v.name.clone(), t)
        })
        .collect()
}

/// The graph outputs as `(name, value)` for inputs given by name.
fn eval_graph(g: &Graph, inputs: &HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
    let ordered: Vec<Tensor> = g.inputs().iter().map(|&id| inputs[&g.node(id).outputs[0].name].clone()).collect();
    let names = g.outputs().iter().map(|o| g.value(*o).name.clone());
    names.zip(common::eval(g, &ordered)).collect()
}

/// Assert two output lists have the same names and values within `1e-4 + 1e-4 |b|`.
fn assert_close(before: &[(String, Tensor)], after: &[(String, Tensor)]) {
    assert_eq!(before.len(), after.len());
    for ((nb, tb), (na, ta)) in before.iter().zip(after) {
        assert_eq!(nb, na, "graph output names must be kept");
        assert_eq!(tb.shape(), ta.shape(), "output '{nb}' changed shape");
        assert_eq!(tb.dtype(), ta.dtype(), "output '{nb}' changed dtype");
        let (vb, va) = (tb.to_f32_vec(), ta.to_f32_vec());
        for (i, (b, a)) in vb.iter().zip(&va).enumerate() {
            assert!((a - b).abs() <= 1e-4 + 1e-4 * b.abs(), "output '{nb}'[{i}]: {a} after, {b} before");
        }
    }
}

/// Run `pass` once on a copy of `g`; check the result is valid and computes the same outputs.
/// Returns the rewritten graph and the rewrite count.
fn apply(g: &Graph, pass: &dyn Pass) -> (Graph, usize) {
    let inputs = random_inputs(g, 0x9e37_79b9_7f4a_7c15);
    let before = eval_graph(g, &inputs);
    let mut out = g.clone();
    let n = pass.run(&mut out).unwrap();
    out.infer_shapes().unwrap();
    out.validate().unwrap();
    assert_close(&before, &eval_graph(&out, &inputs));
    (out, n)
}

/// Like [`apply`] with a pipeline run to a fixed point.
fn apply_pipeline(g: &Graph, passes: Vec<Box<dyn Pass>>) -> Graph {
    let inputs = random_inputs(g, 0x1234_5678_9abc_def1);
    let before = eval_graph(g, &inputs);
    let mut m = PassManager::empty();
    for p in passes {
        m.push(p);
    }
    let mut out = g.clone();
    m.run(&mut out).unwrap();
    assert_close(&before, &eval_graph(&out, &inputs));
    out
}

/// Every fusion pass, in pipeline order.
fn fusion_pipeline() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(FoldBatchNorm),
        Box::new(BatchNormToAffine),
        Box::new(FoldConvAffine),
        Box::new(FuseHardSwish),
        Box::new(MatMulToFc),
        Box::new(FuseConvResidual),
        Box::new(FuseActivation),
    ]
}

fn count(g: &Graph, op: &str) -> usize {
    op_histogram(g).get(op).copied().unwrap_or(0)
}

/// The ops of the nodes a graph output depends on, excluding inputs and constants.
fn live_ops(g: &Graph) -> Vec<&'static str> {
    let mut g2 = g.clone();
    g2.remove_unused();
    let mut v: Vec<&'static str> =
        g2.node_ids().into_iter().map(|id| g2.node(id).op.name()).filter(|n| *n != "Input" && *n != "Const").collect();
    v.sort_unstable();
    v
}

fn conv_attrs(pads: usize, group: usize) -> ConvAttrs {
    ConvAttrs { pads: vec![pads; 4], group, ..Default::default() }
}

/// The op of the node producing graph output 0.
fn output_op(g: &Graph) -> &Op {
    &g.node(g.outputs()[0].node).op
}

/// BN parameters for `c` channels: scale, bias, mean, var (var > 0).
fn bn_params(rng: &mut Rng, c: usize) -> [Tensor; 4] {
    [rng.range(&[c], 0.5, 1.5), rng.tensor(&[c]), rng.tensor(&[c]), rng.range(&[c], 0.2, 2.0)]
}

fn batch_norm(b: &mut GraphBuilder, x: Outlet, rng: &mut Rng, c: usize) -> Outlet {
    let [s, bias, m, v] = bn_params(rng, c);
    b.batch_norm(x, s, bias, m, v, 1e-5).unwrap()
}

fn scalar_const(b: &mut GraphBuilder, name: &str, v: f32) -> Outlet {
    b.constant(name, Tensor::scalar(v))
}

// ---------------------------------------------------------------------------------------------
// fold_batch_norm

#[test]
fn conv_bn_folds_with_and_without_bias() {
    for with_bias in [true, false] {
        let mut rng = Rng(7);
        let mut b = GraphBuilder::new("conv_bn");
        let x = b.input("x", DType::F32, &[1, 3, 6, 6]);
        let bias = with_bias.then(|| rng.tensor(&[4]));
        let y = b.conv2d(x, rng.tensor(&[4, 3, 3, 3]), bias, conv_attrs(1, 1)).unwrap();
        let y = batch_norm(&mut b, y, &mut rng, 4);
        b.output(y);
        let g = b.finish().unwrap();
        let out_name = g.value(g.outputs()[0]).name.clone();
        let (g2, n) = apply(&g, &FoldBatchNorm);
        assert_eq!(n, 1);
        assert_eq!(count(&g2, "BatchNormalization"), 0);
        assert_eq!(live_ops(&g2), ["Conv"]);
        assert_eq!(g2.value(g2.outputs()[0]).name, out_name);
        assert!(lithe_passes::check::missed_optimizations(&g2).is_empty());
    }
}

#[test]
fn shared_conv_weight_is_not_mutated() {
    let mut rng = Rng(11);
    let mut b = GraphBuilder::new("shared");
    let x = b.input("x", DType::F32, &[1, 2, 5, 5]);
    let w = b.constant("w", rng.tensor(&[3, 2, 3, 3]));
    let w_before = b.graph().const_value(w).unwrap().clone();
    let c1 = b.node(Op::Conv(conv_attrs(1, 1)), &[x, w]).unwrap();
    let c2 = b.node(Op::Conv(conv_attrs(1, 1)), &[x, w]).unwrap();
    let y1 = batch_norm(&mut b, c1, &mut rng, 3);
    let y2 = batch_norm(&mut b, c2, &mut rng, 3);
    b.output(y1);
    b.output(y2);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &FoldBatchNorm);
    assert_eq!(n, 2);
    assert_eq!(g2.const_value(w), Some(&w_before), "the shared weight constant must keep its values");
    let ws: Vec<Outlet> = g2
        .node_ids()
        .into_iter()
        .filter(|&id| matches!(g2.node(id).op, Op::Conv(_)))
        .map(|id| g2.node_inputs(id)[1].unwrap())
        .collect();
    assert_eq!(ws.len(), 2);
    assert_ne!(ws[0], ws[1], "each conv gets its own folded weight");
}

#[test]
fn bn_is_not_folded_when_it_must_not_be() {
    let mut rng = Rng(3);
    // Conv output read twice.
    let mut b = GraphBuilder::new("two_readers");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let c = b.conv2d(x, rng.tensor(&[2, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let y = batch_norm(&mut b, c, &mut rng, 2);
    let r = b.relu(c).unwrap();
    b.output(y);
    b.output(r);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FoldBatchNorm).1, 0);

    // Conv output is a graph output.
    let mut b = GraphBuilder::new("graph_output");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let c = b.conv2d(x, rng.tensor(&[2, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let y = batch_norm(&mut b, c, &mut rng, 2);
    b.output(c);
    b.output(y);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FoldBatchNorm).1, 0);

    // Non-constant BN scale.
    let mut b = GraphBuilder::new("dynamic_scale");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let s = b.input("s", DType::F32, &[2]);
    let c = b.conv2d(x, rng.tensor(&[2, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let [_, bias, m, v] = bn_params(&mut rng, 2);
    let (bias, m, v) = (b.constant("bn_b", bias), b.constant("bn_m", m), b.constant("bn_v", v));
    let y = b.node(Op::BatchNormalization { epsilon: 1e-5 }, &[c, s, bias, m, v]).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FoldBatchNorm).1, 0);
    assert_eq!(apply(&g, &BatchNormToAffine).1, 0);

    // Non-constant conv weight.
    let mut b = GraphBuilder::new("dynamic_weight");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let w = b.input("w", DType::F32, &[2, 2, 1, 1]);
    let c = b.node(Op::Conv(conv_attrs(0, 1)), &[x, w]).unwrap();
    let y = batch_norm(&mut b, c, &mut rng, 2);
    b.output(y);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FoldBatchNorm).1, 0);

    // Conv with an activation already fused: BN cannot go through the ReLU.
    let mut b = GraphBuilder::new("fused_conv");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let w = b.constant("w", rng.tensor(&[2, 2, 1, 1]));
    let attrs = ConvAttrs { epilogue: Epilogue { residual: false, activation: Activation::Relu }, ..conv_attrs(0, 1) };
    let c = b.node(Op::Conv(attrs), &[x, w]).unwrap();
    let y = batch_norm(&mut b, c, &mut rng, 2);
    b.output(y);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FoldBatchNorm).1, 0);
}

#[test]
fn conv_transpose_bn_folds_per_group() {
    let mut rng = Rng(5);
    let mut b = GraphBuilder::new("deconv_bn");
    let x = b.input("x", DType::F32, &[1, 4, 3, 3]);
    // C_in 4, group 2, C_out/group 3: 6 output channels.
    let w = b.constant("w", rng.tensor(&[4, 3, 2, 2]));
    let bias = b.constant("b", rng.tensor(&[6]));
    let attrs = ConvTransposeAttrs {
        conv: ConvAttrs { strides: vec![2, 2], group: 2, ..Default::default() },
        ..Default::default()
    };
    let y = b.node(Op::ConvTranspose(attrs), &[x, w, bias]).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 6);
    b.output(y);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &FoldBatchNorm);
    assert_eq!(n, 1);
    assert_eq!(live_ops(&g2), ["ConvTranspose"]);
}

#[test]
fn gemm_bn_folds_trans_b_alpha_beta_and_c() {
    let cases: Vec<(bool, f32, f32, Option<Vec<usize>>)> = vec![
        (true, 1.0, 1.0, Some(vec![5])),
        (false, 0.5, 2.0, Some(vec![1, 5])),
        (true, 1.5, 0.25, Some(vec![3, 5])),
        (false, 1.0, 3.0, Some(vec![3, 1])),
        (true, 2.0, 1.0, None),
        (false, 1.0, 0.0, Some(vec![5])),
    ];
    for (trans_b, alpha, beta, c_shape) in cases {
        let mut rng = Rng(13);
        let mut b = GraphBuilder::new("gemm_bn");
        let x = b.input("x", DType::F32, &[3, 4]);
        let w = b.constant("w", rng.tensor(if trans_b { &[5, 4] } else { &[4, 5] }));
        let c = c_shape.map(|s| b.constant("c", rng.tensor(&s)));
        let y = b.gemm(x, w, c, GemmAttrs { alpha, beta, trans_a: false, trans_b }).unwrap();
        let y = batch_norm(&mut b, y, &mut rng, 5);
        b.output(y);
        let g = b.finish().unwrap();
        let (g2, n) = apply(&g, &FoldBatchNorm);
        assert_eq!(n, 1, "trans_b {trans_b} alpha {alpha} beta {beta}");
        assert_eq!(live_ops(&g2), ["Gemm"]);
    }
}

#[test]
fn fully_connected_bn_folds_only_on_2d_output() {
    let mut rng = Rng(17);
    let mut b = GraphBuilder::new("fc_bn");
    let x = b.input("x", DType::F32, &[2, 4]);
    let w = b.constant("w", rng.tensor(&[4, 3]));
    let bias = b.constant("b", rng.tensor(&[3]));
    let y = b.node(Op::FullyConnected(FcAttrs::default()), &[x, w, bias]).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 3);
    b.output(y);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &FoldBatchNorm);
    assert_eq!(n, 1);
    assert_eq!(live_ops(&g2), ["FullyConnected"]);

    // [2, 3, 3] output: BN's channel axis 1 is not the FC's output axis.
    let mut b = GraphBuilder::new("fc_bn_3d");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let w = b.constant("w", rng.tensor(&[4, 3]));
    let y = b.node(Op::FullyConnected(FcAttrs::default()), &[x, w]).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 3);
    b.output(y);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FoldBatchNorm).1, 0);
}

// ---------------------------------------------------------------------------------------------
// batch_norm_to_affine

#[test]
fn remaining_bn_becomes_mul_add() {
    for shape in [vec![2, 3, 4, 4], vec![4, 3], vec![2, 3, 5]] {
        let mut rng = Rng(19);
        let mut b = GraphBuilder::new("bn_affine");
        let x = b.input("x", DType::F32, &shape);
        let y = b.input("y", DType::F32, &shape);
        let s = b.add(x, y).unwrap();
        let out = batch_norm(&mut b, s, &mut rng, 3);
        b.output(out);
        let g = b.finish().unwrap();
        let name = g.value(g.outputs()[0]).name.clone();
        let (g2, n) = apply(&g, &BatchNormToAffine);
        assert_eq!(n, 1);
        assert_eq!(live_ops(&g2), ["Add", "Add", "Mul"]);
        assert_eq!(g2.value(g2.outputs()[0]).name, name);
        // The per-channel constants broadcast along axis 1.
        let mul = g2.node_ids().into_iter().find(|&id| matches!(g2.node(id).op, Op::Mul)).unwrap();
        let scale = g2.const_value(g2.node_inputs(mul)[1].unwrap()).unwrap();
        let mut expect = vec![3];
        expect.resize(shape.len() - 1, 1);
        assert_eq!(scale.shape(), expect.as_slice());
    }
}

// ---------------------------------------------------------------------------------------------
// fold_conv_affine

#[test]
fn conv_mul_add_sub_div_fold_into_weights() {
    let mut rng = Rng(23);
    let mut b = GraphBuilder::new("conv_affine");
    let x = b.input("x", DType::F32, &[1, 2, 5, 5]);
    let c = b.conv2d(x, rng.tensor(&[3, 2, 3, 3]), Some(rng.tensor(&[3])), conv_attrs(1, 1)).unwrap();
    let k = b.constant("k", rng.range(&[3, 1, 1], 0.5, 2.0));
    let y = b.node(Op::Mul, &[k, c]).unwrap();
    let t = b.constant("t", rng.tensor(&[1, 3, 1, 1]));
    let y = b.add(y, t).unwrap();
    let u = scalar_const(&mut b, "u", 0.75);
    let y = b.node(Op::Sub, &[y, u]).unwrap();
    let d = b.constant("d", rng.range(&[3, 1, 1], 1.0, 3.0));
    let y = b.node(Op::Div, &[y, d]).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &FoldConvAffine);
    assert_eq!(n, 4);
    assert_eq!(live_ops(&g2), ["Conv"]);
}

#[test]
fn conv_affine_is_not_folded_when_it_must_not_be() {
    let mut rng = Rng(29);
    let mut b = GraphBuilder::new("conv_affine_no");
    let x = b.input("x", DType::F32, &[1, 2, 4, 5]);
    let z = b.input("z", DType::F32, &[1, 3, 4, 5]);
    let c1 = b.conv2d(x, rng.tensor(&[3, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    // Along the last axis (5 wide), not the channels.
    let k = b.constant("k", rng.tensor(&[5]));
    let y1 = b.node(Op::Mul, &[c1, k]).unwrap();
    // Non-constant operand.
    let c2 = b.conv2d(x, rng.tensor(&[3, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let y2 = b.node(Op::Mul, &[c2, z]).unwrap();
    // Constant minus conv is not `conv - constant`.
    let c3 = b.conv2d(x, rng.tensor(&[3, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let t = b.constant("t", rng.tensor(&[3, 1, 1]));
    let y3 = b.node(Op::Sub, &[t, c3]).unwrap();
    // A constant that raises the rank.
    let c4 = b.conv2d(x, rng.tensor(&[3, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let r = b.constant("r", rng.tensor(&[1, 1, 3, 1, 1]));
    let y4 = b.node(Op::Add, &[c4, r]).unwrap();
    for y in [y1, y2, y3, y4] {
        b.output(y);
    }
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FoldConvAffine).1, 0);
}

// ---------------------------------------------------------------------------------------------
// fuse_hard_swish

fn hard_sigmoid_graph(alpha: f32, beta: f32, swap: bool, extra_reader: bool) -> Graph {
    let mut b = GraphBuilder::new("hsig");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let h = b.node(Op::HardSigmoid { alpha, beta }, &[x]).unwrap();
    let y = if swap { b.node(Op::Mul, &[h, x]).unwrap() } else { b.node(Op::Mul, &[x, h]).unwrap() };
    b.output(y);
    if extra_reader {
        b.output(h);
    }
    b.finish().unwrap()
}

#[test]
fn x_times_hard_sigmoid_becomes_hard_swish() {
    for swap in [false, true] {
        let g = hard_sigmoid_graph(1.0 / 6.0, 0.5, swap, false);
        let (g2, n) = apply(&g, &FuseHardSwish);
        assert_eq!(n, 1);
        assert_eq!(live_ops(&g2), ["HardSwish"]);
        assert_eq!(g2.value(g2.outputs()[0]).name, g.value(g.outputs()[0]).name);
    }
    assert_eq!(apply(&hard_sigmoid_graph(0.2, 0.5, false, false), &FuseHardSwish).1, 0);
    assert_eq!(apply(&hard_sigmoid_graph(1.0 / 6.0, 0.5, false, true), &FuseHardSwish).1, 0);
}

/// `x * Clip(x + 3, 0, 6) / 6` in the forms PyTorch exports.
fn torch_hard_swish(b: &mut GraphBuilder, x: Outlet, form: usize) -> Outlet {
    let three = scalar_const(b, &format!("three{form}"), 3.0);
    let zero = scalar_const(b, &format!("zero{form}"), 0.0);
    let six = scalar_const(b, &format!("six{form}"), 6.0);
    let sixth = scalar_const(b, &format!("sixth{form}"), 1.0 / 6.0);
    let s = if form.is_multiple_of(2) { b.add(x, three).unwrap() } else { b.add(three, x).unwrap() };
    let r = b.node(Op::Clip, &[s, zero, six]).unwrap();
    match form {
        0 => {
            let m = b.node(Op::Mul, &[x, r]).unwrap();
            b.node(Op::Div, &[m, six]).unwrap()
        }
        1 => {
            let m = b.node(Op::Mul, &[r, x]).unwrap();
            b.node(Op::Mul, &[sixth, m]).unwrap()
        }
        2 => {
            let h = b.node(Op::Div, &[r, six]).unwrap();
            b.node(Op::Mul, &[x, h]).unwrap()
        }
        _ => {
            let h = b.node(Op::Mul, &[r, sixth]).unwrap();
            b.node(Op::Mul, &[h, x]).unwrap()
        }
    }
}

#[test]
fn torch_hard_swish_forms_become_hard_swish() {
    for form in 0..4 {
        let mut b = GraphBuilder::new("torch_hswish");
        let x = b.input("x", DType::F32, &[1, 3, 4, 4]);
        let y = torch_hard_swish(&mut b, x, form);
        b.output(y);
        let g = b.finish().unwrap();
        let (g2, n) = apply(&g, &FuseHardSwish);
        assert_eq!(n, 1, "form {form}");
        assert_eq!(live_ops(&g2), ["HardSwish"], "form {form}");
    }
}

#[test]
fn torch_hard_swish_needs_the_exact_pattern() {
    // Clip(x + 3, 0, 6) read elsewhere too.
    let mut b = GraphBuilder::new("shared_clip");
    let x = b.input("x", DType::F32, &[2, 4]);
    let y = torch_hard_swish(&mut b, x, 0);
    b.output(y);
    let g = b.finish().unwrap();
    let clip = g.node_ids().into_iter().find(|&id| matches!(g.node(id).op, Op::Clip)).unwrap();
    let mut g = g;
    let mut outs = g.outputs().to_vec();
    outs.push(Outlet::new(clip, 0));
    g.set_outputs(outs);
    assert_eq!(apply(&g, &FuseHardSwish).1, 0);

    // Clip(x + 3, 0, 5) and a different x in the product.
    for wrong in 0..2 {
        let mut b = GraphBuilder::new("wrong");
        let x = b.input("x", DType::F32, &[2, 4]);
        let z = b.input("z", DType::F32, &[2, 4]);
        let three = scalar_const(&mut b, "three", 3.0);
        let zero = scalar_const(&mut b, "zero", 0.0);
        let six = scalar_const(&mut b, "six", 6.0);
        let hi = scalar_const(&mut b, "hi", if wrong == 0 { 5.0 } else { 6.0 });
        let s = b.add(x, three).unwrap();
        let r = b.node(Op::Clip, &[s, zero, hi]).unwrap();
        let m = b.node(Op::Mul, &[if wrong == 0 { x } else { z }, r]).unwrap();
        let y = b.node(Op::Div, &[m, six]).unwrap();
        b.output(y);
        let g = b.finish().unwrap();
        assert_eq!(apply(&g, &FuseHardSwish).1, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// matmul_to_fc

#[test]
fn matmul_add_becomes_fully_connected() {
    for bias_shape in [vec![5], vec![1, 5], vec![1, 1, 5], vec![]] {
        let mut rng = Rng(31);
        let mut b = GraphBuilder::new("mm_add");
        let x = b.input("x", DType::F32, &[Dim::Sym("batch".into()), 3.into(), 4.into()]);
        let w = b.constant("w", rng.tensor(&[4, 5]));
        let y = b.matmul(x, w).unwrap();
        let bias = b.constant("bias", rng.tensor(&bias_shape));
        let y = b.add(bias, y).unwrap();
        b.output(y);
        let g = b.finish().unwrap();
        let (g2, n) = apply(&g, &MatMulToFc);
        assert_eq!(n, 1);
        assert_eq!(live_ops(&g2), ["FullyConnected"], "bias {bias_shape:?}");
        let fc = g2.outputs()[0].node;
        assert!(g2.node_inputs(fc)[2].is_some(), "the Add went into the bias");
        if bias_shape == [5] {
            assert_eq!(g2.node_inputs(fc)[2], Some(bias), "an exact [N] bias is reused");
        }
        assert_eq!(g2.node_inputs(fc)[1], Some(w), "the weight constant is reused as is");
    }
}

#[test]
fn matmul_conversions_that_must_not_merge_or_happen() {
    let mut rng = Rng(37);
    // MatMul read twice: FC without bias, the Add stays.
    let mut b = GraphBuilder::new("mm_two_readers");
    let x = b.input("x", DType::F32, &[2, 4]);
    let w = b.constant("w", rng.tensor(&[4, 3]));
    let m = b.matmul(x, w).unwrap();
    let bias = b.constant("bias", rng.tensor(&[3]));
    let y = b.add(m, bias).unwrap();
    let r = b.relu(m).unwrap();
    b.output(y);
    b.output(r);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &MatMulToFc);
    assert_eq!(n, 1);
    assert_eq!(live_ops(&g2), ["Add", "FullyConnected", "Relu"]);

    // Bias that broadcasts along rows ([2, 1]) or is not constant.
    let mut b = GraphBuilder::new("mm_row_bias");
    let x = b.input("x", DType::F32, &[2, 4]);
    let z = b.input("z", DType::F32, &[3]);
    let w = b.constant("w", rng.tensor(&[4, 3]));
    let m1 = b.matmul(x, w).unwrap();
    let rb = b.constant("rb", rng.tensor(&[2, 1]));
    let y1 = b.add(m1, rb).unwrap();
    let m2 = b.matmul(x, w).unwrap();
    let y2 = b.add(m2, z).unwrap();
    b.output(y1);
    b.output(y2);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &MatMulToFc);
    assert_eq!(n, 2);
    assert_eq!(live_ops(&g2), ["Add", "Add", "FullyConnected", "FullyConnected"]);

    // Non-constant weight, 3-D weight, f16.
    let mut b = GraphBuilder::new("mm_no");
    let x = b.input("x", DType::F32, &[2, 4]);
    let wi = b.input("wi", DType::F32, &[4, 3]);
    let y1 = b.matmul(x, wi).unwrap();
    let x3 = b.input("x3", DType::F32, &[2, 2, 4]);
    let w3 = b.constant("w3", rng.tensor(&[2, 4, 3]));
    let y2 = b.matmul(x3, w3).unwrap();
    let xh = b.input("xh", DType::F16, &[2, 4]);
    let wh = b.constant("wh", rng.tensor(&[4, 3]).cast(DType::F16));
    let y3 = b.matmul(xh, wh).unwrap();
    for y in [y1, y2, y3] {
        b.output(y);
    }
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &MatMulToFc).1, 0);
}

#[test]
fn gemm_becomes_fully_connected() {
    let cases: Vec<(bool, f32, f32, Option<Vec<usize>>)> = vec![
        (true, 1.0, 1.0, Some(vec![5])),
        (false, 0.5, 2.0, Some(vec![1, 5])),
        (true, 1.5, 0.5, Some(vec![])),
        (false, 1.0, 1.0, None),
        (true, 1.0, 0.0, Some(vec![5])),
    ];
    for (trans_b, alpha, beta, c_shape) in cases {
        let mut rng = Rng(41);
        let mut b = GraphBuilder::new("gemm_fc");
        let x = b.input("x", DType::F32, &[3, 4]);
        let w = b.constant("w", rng.tensor(if trans_b { &[5, 4] } else { &[4, 5] }));
        let c = c_shape.clone().map(|s| b.constant("c", rng.tensor(&s)));
        let y = b.gemm(x, w, c, GemmAttrs { alpha, beta, trans_a: false, trans_b }).unwrap();
        b.output(y);
        let g = b.finish().unwrap();
        let (g2, n) = apply(&g, &MatMulToFc);
        assert_eq!(n, 1, "{trans_b} {alpha} {beta} {c_shape:?}");
        assert_eq!(live_ops(&g2), ["FullyConnected"]);
        let fc = g2.outputs()[0].node;
        let wt = g2.const_value(g2.node_inputs(fc)[1].unwrap()).unwrap();
        assert_eq!(wt.shape(), [4, 5]);
    }
    // C of shape [M, N], a non-constant C, trans_a: the Gemm stays.
    let mut rng = Rng(43);
    let mut b = GraphBuilder::new("gemm_stays");
    let x = b.input("x", DType::F32, &[3, 4]);
    let cz = b.input("cz", DType::F32, &[5]);
    let w = b.constant("w", rng.tensor(&[4, 5]));
    let cm = b.constant("cm", rng.tensor(&[3, 5]));
    let y1 = b.gemm(x, w, Some(cm), GemmAttrs::default()).unwrap();
    let y2 = b.gemm(x, w, Some(cz), GemmAttrs::default()).unwrap();
    let xt = b.input("xt", DType::F32, &[4, 3]);
    let y3 = b.gemm(xt, w, None, GemmAttrs { trans_a: true, ..Default::default() }).unwrap();
    for y in [y1, y2, y3] {
        b.output(y);
    }
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &MatMulToFc).1, 0);
}

#[test]
fn linear_with_bias_add_and_activation_fuses_fully() {
    let mut rng = Rng(47);
    let mut b = GraphBuilder::new("linear");
    let x = b.input("x", DType::F32, &[2, 6]);
    let y = b.linear(x, rng.tensor(&[4, 6]), Some(rng.tensor(&[4]))).unwrap();
    let extra = b.constant("extra", rng.tensor(&[4]));
    let y = b.add(y, extra).unwrap();
    let y = b.node(Op::Sigmoid, &[y]).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let g2 = apply_pipeline(&g, fusion_pipeline());
    assert_eq!(live_ops(&g2), ["FullyConnected"]);
    assert_eq!(output_op(&g2), &Op::FullyConnected(FcAttrs { activation: Activation::Sigmoid }));
}

// ---------------------------------------------------------------------------------------------
// fuse_conv_residual

#[test]
fn conv_add_same_shape_fuses_residual() {
    let mut rng = Rng(53);
    let mut b = GraphBuilder::new("residual");
    let dims: Vec<Dim> = vec![Dim::Sym("n".into()), 3.into(), 4.into(), 4.into()];
    let x = b.input("x", DType::F32, &dims);
    let c = b.conv2d(x, rng.tensor(&[3, 3, 3, 3]), Some(rng.tensor(&[3])), conv_attrs(1, 1)).unwrap();
    let y = b.add(x, c).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &FuseConvResidual);
    assert_eq!(n, 1);
    assert_eq!(live_ops(&g2), ["Conv"]);
    let conv = g2.outputs()[0].node;
    let Op::Conv(a) = &g2.node(conv).op else { panic!("expected a conv") };
    assert!(a.epilogue.residual);
    assert_eq!(g2.node_inputs(conv)[3], Some(x));
}

#[test]
fn residual_needs_equal_shapes_and_a_private_conv() {
    let mut rng = Rng(59);
    // Broadcast residual [1, 3, 1, 1].
    let mut b = GraphBuilder::new("broadcast");
    let x = b.input("x", DType::F32, &[1, 3, 4, 4]);
    let r = b.input("r", DType::F32, &[1, 3, 1, 1]);
    let c = b.conv2d(x, rng.tensor(&[3, 3, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let y = b.add(c, r).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FuseConvResidual).1, 0);

    // Conv output [1, 3, 1, 1] broadcast against a bigger operand.
    let mut b = GraphBuilder::new("conv_broadcast");
    let x = b.input("x", DType::F32, &[1, 3, 1, 1]);
    let r = b.input("r", DType::F32, &[1, 3, 4, 4]);
    let c = b.conv2d(x, rng.tensor(&[3, 3, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let y = b.add(c, r).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FuseConvResidual).1, 0);

    // Conv read twice; unknown dims that cannot be proven equal.
    let mut b = GraphBuilder::new("no");
    let x = b.input("x", DType::F32, &[1, 3, 4, 4]);
    let c = b.conv2d(x, rng.tensor(&[3, 3, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let y = b.add(c, x).unwrap();
    let q = b.relu(c).unwrap();
    let u = b.input("u", DType::F32, &[Dim::Unknown, 3.into(), 4.into(), 4.into()]);
    let cu = b.conv2d(u, rng.tensor(&[3, 3, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let yu = b.add(cu, u).unwrap();
    for o in [y, q, yu] {
        b.output(o);
    }
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FuseConvResidual).1, 0);
}

#[test]
fn add_of_two_convs_fuses_into_the_later_one() {
    let mut rng = Rng(61);
    let mut b = GraphBuilder::new("two_convs");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let c1 = b.conv2d(x, rng.tensor(&[3, 2, 3, 3]), None, conv_attrs(1, 1)).unwrap();
    let c2 = b.conv2d(x, rng.tensor(&[3, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let y = b.add(c2, c1).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &FuseConvResidual);
    assert_eq!(n, 1);
    assert_eq!(g2.outputs()[0].node, c2.node);
    assert_eq!(g2.node_inputs(c2.node)[3], Some(c1));
}

// ---------------------------------------------------------------------------------------------
// fuse_activation

/// A conv followed by one activation node built by `act`.
fn conv_then(act: impl FnOnce(&mut GraphBuilder, Outlet) -> Outlet) -> Graph {
    let mut rng = Rng(67);
    let mut b = GraphBuilder::new("conv_act");
    let x = b.input("x", DType::F32, &[1, 2, 5, 5]);
    let c = b.conv2d(x, rng.tensor(&[3, 2, 3, 3]), Some(rng.tensor(&[3])), conv_attrs(1, 1)).unwrap();
    let y = act(&mut b, c);
    b.output(y);
    b.finish().unwrap()
}

#[test]
fn every_activation_fuses_into_conv() {
    let clip = |lo: Option<f32>, hi: Option<f32>| {
        move |b: &mut GraphBuilder, c: Outlet| {
            let lo = lo.map(|v| scalar_const(b, "lo", v));
            let hi = hi.map(|v| b.constant("hi", Tensor::from_vec(&[1], vec![v]).unwrap()));
            b.node_with(Op::Clip, &[Some(c), lo, hi], 1).unwrap()[0]
        }
    };
    let cases: Vec<(Graph, Activation)> = vec![
        (conv_then(|b, c| b.relu(c).unwrap()), Activation::Relu),
        (conv_then(clip(Some(0.0), Some(6.0))), Activation::Clip { min: 0.0, max: 6.0 }),
        (conv_then(clip(None, Some(1.5))), Activation::Clip { min: f32::NEG_INFINITY, max: 1.5 }),
        (conv_then(clip(Some(-0.5), None)), Activation::Clip { min: -0.5, max: f32::INFINITY }),
        (conv_then(|b, c| b.node(Op::LeakyRelu { alpha: 0.1 }, &[c]).unwrap()), Activation::LeakyRelu { alpha: 0.1 }),
        (conv_then(|b, c| b.node(Op::HardSwish, &[c]).unwrap()), Activation::HardSwish),
        (
            conv_then(|b, c| b.node(Op::HardSigmoid { alpha: 0.2, beta: 0.5 }, &[c]).unwrap()),
            Activation::HardSigmoid { alpha: 0.2, beta: 0.5 },
        ),
        (conv_then(|b, c| b.node(Op::Sigmoid, &[c]).unwrap()), Activation::Sigmoid),
        (conv_then(|b, c| b.node(Op::Tanh, &[c]).unwrap()), Activation::Tanh),
    ];
    for (g, want) in cases {
        let (g2, n) = apply(&g, &FuseActivation);
        assert_eq!(n, 1, "{want:?}");
        assert_eq!(live_ops(&g2), ["Conv"], "{want:?}");
        let Op::Conv(a) = output_op(&g2) else { panic!("expected a conv") };
        assert_eq!(a.epilogue.activation, want);
        assert!(lithe_passes::check::missed_optimizations(&g2).is_empty());
    }
}

#[test]
fn prelu_slope_moves_to_the_fused_op() {
    for slope_shape in [vec![3, 1, 1], vec![1, 3, 1, 1], vec![1], vec![5]] {
        let mut rng = Rng(71);
        let slope = rng.tensor(&slope_shape);
        let g = conv_then(|b, c| {
            let s = b.constant("slope", slope);
            b.node(Op::PRelu, &[c, s]).unwrap()
        });
        let (g2, n) = apply(&g, &FuseActivation);
        assert_eq!(n, 1);
        let conv = g2.outputs()[0].node;
        let Op::Conv(a) = &g2.node(conv).op else { panic!("expected a conv") };
        assert_eq!(a.epilogue.activation, Activation::PRelu);
        assert!(g2.node_inputs(conv)[4].is_some());
    }
    // PRelu on a fully connected output.
    let mut rng = Rng(73);
    let mut b = GraphBuilder::new("fc_prelu");
    let x = b.input("x", DType::F32, &[2, 4]);
    let w = b.constant("w", rng.tensor(&[4, 3]));
    let y = b.node(Op::FullyConnected(FcAttrs::default()), &[x, w]).unwrap();
    let s = b.constant("s", rng.tensor(&[3]));
    let y = b.node(Op::PRelu, &[y, s]).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &FuseActivation);
    assert_eq!(n, 1);
    assert_eq!(g2.node_inputs(g2.outputs()[0].node)[3], Some(s));
}

#[test]
fn activation_is_not_fused_when_it_must_not_be() {
    let mut rng = Rng(79);
    let mut b = GraphBuilder::new("act_no");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let hi = b.input::<usize>("hi", DType::F32, &[]);
    // Conv read twice.
    let c1 = b.conv2d(x, rng.tensor(&[2, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let r1 = b.relu(c1).unwrap();
    // Conv output is a graph output.
    let c2 = b.conv2d(x, rng.tensor(&[2, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let r2 = b.relu(c2).unwrap();
    // Clip with a non-constant bound.
    let c3 = b.conv2d(x, rng.tensor(&[2, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let r3 = b.node_with(Op::Clip, &[Some(c3), None, Some(hi)], 1).unwrap()[0];
    // Non-constant PRelu slope.
    let c4 = b.conv2d(x, rng.tensor(&[2, 2, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let r4 = b.node(Op::PRelu, &[c4, x]).unwrap();
    // An activation not after a conv or fully connected op.
    let s = b.add(x, x).unwrap();
    let r5 = b.relu(s).unwrap();
    for o in [c1, r1, c2, r2, r3, r4, r5] {
        b.output(o);
    }
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FuseActivation).1, 0);

    // A conv that already has an activation.
    let mut b = GraphBuilder::new("act_twice");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let w = b.constant("w", rng.tensor(&[2, 2, 1, 1]));
    let attrs = ConvAttrs { epilogue: Epilogue { residual: false, activation: Activation::Relu }, ..conv_attrs(0, 1) };
    let c = b.node(Op::Conv(attrs), &[x, w]).unwrap();
    let y = b.node(Op::Sigmoid, &[c]).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    assert_eq!(apply(&g, &FuseActivation).1, 0);
}

// ---------------------------------------------------------------------------------------------
// Whole blocks through the fusion pipeline

#[test]
fn resnet_block_becomes_two_fused_convs() {
    let mut rng = Rng(83);
    let mut b = GraphBuilder::new("resnet_block");
    let x = b.input("x", DType::F32, &[Dim::Sym("batch".into()), 4.into(), 6.into(), 6.into()]);
    let y = b.conv2d(x, rng.tensor(&[4, 4, 3, 3]), None, conv_attrs(1, 1)).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 4);
    let y = b.relu(y).unwrap();
    let y = b.conv2d(y, rng.tensor(&[4, 4, 3, 3]), None, conv_attrs(1, 1)).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 4);
    let y = b.add(y, x).unwrap();
    let y = b.relu(y).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let g2 = apply_pipeline(&g, fusion_pipeline());
    assert_eq!(live_ops(&g2), ["Conv", "Conv"]);
    assert_eq!(g2.value(g2.outputs()[0]).name, g.value(g.outputs()[0]).name);
    let Op::Conv(last) = output_op(&g2) else { panic!("expected a conv") };
    assert_eq!(last.epilogue, Epilogue { residual: true, activation: Activation::Relu });
    let first = g2.node_inputs(g2.outputs()[0].node)[0].unwrap().node;
    let Op::Conv(first) = &g2.node(first).op else { panic!("expected a conv") };
    assert_eq!(first.epilogue, Epilogue { residual: false, activation: Activation::Relu });
    assert!(lithe_passes::check::missed_optimizations(&g2).is_empty());
}

#[test]
fn mobilenet_block_with_depthwise_and_relu6() {
    let mut rng = Rng(89);
    let mut b = GraphBuilder::new("mobilenet_block");
    let x = b.input("x", DType::F32, &[1, 3, 8, 8]);
    let zero = scalar_const(&mut b, "zero", 0.0);
    let six = scalar_const(&mut b, "six", 6.0);
    let stem = ConvAttrs { strides: vec![2, 2], ..conv_attrs(1, 1) };
    let y = b.conv2d(x, rng.tensor(&[6, 3, 3, 3]), None, stem).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 6);
    let y = b.node(Op::Clip, &[y, zero, six]).unwrap();
    let y = b.conv2d(y, rng.tensor(&[6, 1, 3, 3]), None, conv_attrs(1, 6)).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 6);
    let y = b.node(Op::Clip, &[y, zero, six]).unwrap();
    let y = b.conv2d(y, rng.tensor(&[4, 6, 1, 1]), None, conv_attrs(0, 1)).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 4);
    let y = torch_hard_swish(&mut b, y, 0);
    b.output(y);
    let g = b.finish().unwrap();
    let g2 = apply_pipeline(&g, fusion_pipeline());
    assert_eq!(live_ops(&g2), ["Conv", "Conv", "Conv"]);
    let mut acts: Vec<Activation> = g2
        .node_ids()
        .into_iter()
        .filter_map(|id| match &g2.node(id).op {
            Op::Conv(a) => Some(a.epilogue.activation),
            _ => None,
        })
        .collect();
    acts.sort_by_key(|a| a.name());
    assert_eq!(
        acts,
        [Activation::Clip { min: 0.0, max: 6.0 }, Activation::Clip { min: 0.0, max: 6.0 }, Activation::HardSwish]
    );
    assert!(lithe_passes::check::missed_optimizations(&g2).is_empty());
}

#[test]
fn vector_times_matrix_becomes_fully_connected() {
    let mut rng = Rng(97);
    let mut b = GraphBuilder::new("vec_mat");
    let x = b.input("x", DType::F32, &[4]);
    let w = b.constant("w", rng.tensor(&[4, 3]));
    let y = b.matmul(x, w).unwrap();
    let bias = b.constant("bias", rng.tensor(&[3]));
    let y = b.add(y, bias).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let (g2, n) = apply(&g, &MatMulToFc);
    assert_eq!(n, 1);
    assert_eq!(live_ops(&g2), ["FullyConnected"]);
    assert_eq!(g2.value(g2.outputs()[0]).ty.shape.as_ref().unwrap().as_known(), Some(vec![3]));
}

#[test]
fn matmul_bn_relu_ends_as_one_fully_connected() {
    let mut rng = Rng(101);
    let mut b = GraphBuilder::new("mm_bn");
    let x = b.input("x", DType::F32, &[Dim::Sym("batch".into()), 6.into()]);
    let w = b.constant("w", rng.tensor(&[6, 5]));
    let y = b.matmul(x, w).unwrap();
    let y = batch_norm(&mut b, y, &mut rng, 5);
    let y = b.relu(y).unwrap();
    b.output(y);
    let g = b.finish().unwrap();
    let g2 = apply_pipeline(&g, fusion_pipeline());
    assert_eq!(live_ops(&g2), ["FullyConnected"]);
    assert_eq!(output_op(&g2), &Op::FullyConnected(FcAttrs { activation: Activation::Relu }));
}
