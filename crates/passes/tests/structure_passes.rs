//! Tests of the structural passes (dead code, identity removal, shape-op canonicalization,
//! transpose/reshape pairs, pad folding): each rewrite happens where it should, not where it
//! must not, keeps the graph output names, and keeps the outputs (the graph is evaluated node by
//! node with the reference kernels before and after).

mod common;

use common::eval;

use lithe_ir::builder::GraphBuilder;
use lithe_ir::op::{AutoPad, AvgPoolAttrs, ConvAttrs, PadMode, PoolAttrs};
use lithe_ir::{DType, Dim, Graph, Op, Outlet, Tensor};
use lithe_passes::cancel_pairs::CancelTransposeReshape;
use lithe_passes::dead_code::DeadCode;
use lithe_passes::fold_pad::FoldPad;
use lithe_passes::identity::RemoveIdentity;
use lithe_passes::reshape_chain::CanonicalizeShapes;
use lithe_passes::{Pass, op_histogram};

// ---------------------------------------------------------------------------------------------
// Helpers

/// Deterministic data (xorshift), uniform in [-1, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|_| self.next()).collect::<Vec<f32>>()).unwrap()
    }
}

fn assert_close(before: &[Tensor], after: &[Tensor]) {
    assert_eq!(before.len(), after.len());
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        assert_eq!(b.shape(), a.shape(), "output {i} shape");
        assert_eq!(b.dtype(), a.dtype(), "output {i} dtype");
        for (k, (x, y)) in b.to_f32_vec().iter().zip(a.to_f32_vec()).enumerate() {
            let ok = (x - y).abs() <= 1e-5 + 1e-5 * x.abs() || (x.is_nan() && y.is_nan()) || *x == y;
            assert!(ok, "output {i} element {k}: before {x}, after {y}");
        }
    }
}

fn output_names(g: &Graph) -> Vec<String> {
    g.outputs().iter().map(|&o| g.value(o).name.clone()).collect()
}

/// Run `pass` once (then re-infer and validate, as the pass manager does), check outputs and
/// output names are kept for `inputs`, and return the rewrite count.
fn check(pass: &dyn Pass, g: &mut Graph, inputs: &[Tensor]) -> usize {
    let before = eval(g, inputs);
    let names = output_names(g);
    let types: Vec<_> = g.outputs().iter().map(|&o| g.value(o).ty.clone()).collect();
    let n = pass.run(g).unwrap();
    g.infer_shapes().unwrap();
    g.validate().unwrap();
    assert_eq!(output_names(g), names, "graph output names must survive {}", pass.name());
    let after_types: Vec<_> = g.outputs().iter().map(|&o| g.value(o).ty.clone()).collect();
    for (b, a) in types.iter().zip(&after_types) {
        assert_eq!(b.dtype, a.dtype);
        assert_eq!(b.shape.as_ref().map(|s| s.rank()), a.shape.as_ref().map(|s| s.rank()));
    }
    assert_close(&before, &eval(g, inputs));
    n
}

fn count(g: &Graph, op: &str) -> usize {
    op_histogram(g).get(op).copied().unwrap_or(0)
}

fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_vec(&[v.len()], v.to_vec()).unwrap()
}

fn sym(s: &str) -> Dim {
    Dim::Sym(s.into())
}

/// The constant i64 shape read by the only Reshape of `g`.
fn reshape_spec(g: &Graph) -> Vec<i64> {
    let ids: Vec<_> = g.node_ids().into_iter().filter(|&id| matches!(g.node(id).op, Op::Reshape { .. })).collect();
    assert_eq!(ids.len(), 1, "exactly one Reshape");
    let shape = g.node_inputs(ids[0])[1].unwrap();
    g.const_value(shape).expect("constant shape").to_i64_vec()
}

// ---------------------------------------------------------------------------------------------
// dead_code

#[test]
fn dead_code_removes_what_no_output_needs_and_keeps_inputs() {
    let mut b = GraphBuilder::new("dead");
    let x = b.input("x", DType::F32, &[2, 3]);
    let unused = b.input("unused", DType::F32, &[4]);
    let y = b.relu(x).unwrap();
    let dead = b.node(Op::Sigmoid, &[x]).unwrap();
    let w = b.constant("w", Tensor::zeros(DType::F32, &[3]));
    let dead2 = b.add(dead, w).unwrap();
    b.node(Op::Tanh, &[unused]).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    let _ = dead2;
    let inputs = [Rng(1).tensor(&[2, 3]), Rng(2).tensor(&[4])];
    // Sigmoid, Add, the constant w and Tanh.
    assert_eq!(check(&DeadCode, &mut g, &inputs), 4);
    assert_eq!(g.inputs().len(), 2, "graph inputs stay even when unused");
    assert_eq!(count(&g, "Sigmoid") + count(&g, "Add") + count(&g, "Tanh"), 0);
    assert_eq!(count(&g, "Relu"), 1);
    assert_eq!(check(&DeadCode, &mut g, &inputs), 0, "a second run finds nothing");
}

// ---------------------------------------------------------------------------------------------
// remove_identity

/// `x -> Relu -> <node built by f> -> Sigmoid -> output`, evaluated before/after the pass.
fn identity_case(shape: &[usize], f: impl FnOnce(&mut GraphBuilder, Outlet) -> Outlet) -> (Graph, usize) {
    let mut b = GraphBuilder::new("identity");
    let x = b.input("x", DType::F32, shape);
    let r = b.relu(x).unwrap();
    let m = f(&mut b, r);
    let y = b.node(Op::Sigmoid, &[m]).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    let n = check(&RemoveIdentity, &mut g, &[Rng(7).tensor(shape)]);
    (g, n)
}

#[test]
fn identity_and_dropout_are_removed() {
    let (g, n) = identity_case(&[2, 3], |b, x| b.node(Op::Identity, &[x]).unwrap());
    assert_eq!((n, count(&g, "Identity")), (1, 0));
    let (g, n) = identity_case(&[2, 3], |b, x| b.node(Op::Dropout, &[x]).unwrap());
    assert_eq!((n, count(&g, "Dropout")), (1, 0));
    // Mask output present but unread.
    let (g, n) = identity_case(&[2, 3], |b, x| b.node_with(Op::Dropout, &[Some(x)], 2).unwrap()[0]);
    assert_eq!((n, count(&g, "Dropout")), (1, 0));
}

#[test]
fn dropout_whose_mask_is_read_stays() {
    let mut b = GraphBuilder::new("mask");
    let x = b.input("x", DType::F32, &[2, 3]);
    let d = b.node_with(Op::Dropout, &[Some(x)], 2).unwrap();
    let y = b.relu(d[0]).unwrap();
    b.output(y);
    b.output(d[1]);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&RemoveIdentity, &mut g, &[Rng(3).tensor(&[2, 3])]), 0);
    assert_eq!(count(&g, "Dropout"), 1);
}

#[test]
fn cast_to_the_same_dtype_is_removed_and_a_real_cast_stays() {
    let (g, n) = identity_case(&[4], |b, x| b.node(Op::Cast { to: DType::F32 }, &[x]).unwrap());
    assert_eq!((n, count(&g, "Cast")), (1, 0));
    let (g, n) = identity_case(&[4], |b, x| {
        let h = b.node(Op::Cast { to: DType::F16 }, &[x]).unwrap();
        b.node(Op::Cast { to: DType::F32 }, &[h]).unwrap()
    });
    assert_eq!((n, count(&g, "Cast")), (0, 2));
}

#[test]
fn shape_ops_that_keep_the_shape_are_removed() {
    let (g, n) = identity_case(&[2, 3, 4], |b, x| b.reshape(x, &[2, 3, 4]).unwrap());
    assert_eq!((n, count(&g, "Reshape")), (1, 0));
    let (g, n) = identity_case(&[2, 3, 4], |b, x| b.reshape(x, &[0, -1, 4]).unwrap());
    assert_eq!((n, count(&g, "Reshape")), (1, 0));
    let (g, n) = identity_case(&[2, 12], |b, x| b.node(Op::Flatten { axis: 1 }, &[x]).unwrap());
    assert_eq!((n, count(&g, "Flatten")), (1, 0));
    let (g, n) = identity_case(&[2, 3], |b, x| {
        let s = b.constant("s", i64s(&[1, 3]));
        b.node(Op::Expand, &[x, s]).unwrap()
    });
    assert_eq!((n, count(&g, "Expand")), (1, 0));
    let (g, n) = identity_case(&[2, 3], |b, x| {
        let axes = b.constant("axes", Tensor::from_vec(&[0], Vec::<i64>::new()).unwrap());
        b.node(Op::Squeeze, &[x, axes]).unwrap()
    });
    assert_eq!((n, count(&g, "Squeeze")), (1, 0));
    // A real change of shape stays.
    let (g, n) = identity_case(&[2, 3, 4], |b, x| b.reshape(x, &[6, 4]).unwrap());
    assert_eq!((n, count(&g, "Reshape")), (0, 1));
    let (g, n) = identity_case(&[2, 3], |b, x| {
        let s = b.constant("s", i64s(&[4, 2, 3]));
        b.node(Op::Expand, &[x, s]).unwrap()
    });
    assert_eq!((n, count(&g, "Expand")), (0, 1));
}

#[test]
fn shape_equality_must_be_provable() {
    // The same symbol copied by 0 is provably the same dim.
    let mut b = GraphBuilder::new("sym");
    let x = b.input("x", DType::F32, &[sym("n"), 4.into()]);
    let r = b.reshape(x, &[0, 4]).unwrap();
    let y = b.relu(r).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&RemoveIdentity, &mut g, &[Rng(1).tensor(&[3, 4])]), 1);
    // An unknown dim proves nothing.
    let mut b = GraphBuilder::new("unknown");
    let x = b.input("x", DType::F32, &[Dim::Unknown, 4.into()]);
    let r = b.reshape(x, &[0, 4]).unwrap();
    let y = b.relu(r).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&RemoveIdentity, &mut g, &[Rng(1).tensor(&[3, 4])]), 0);
    assert_eq!(count(&g, "Reshape"), 1);
}

#[test]
fn identity_transpose_zero_pad_full_slice_and_single_concat_are_removed() {
    let (g, n) = identity_case(&[2, 3], |b, x| b.node(Op::Transpose { perm: Some(vec![0, 1]) }, &[x]).unwrap());
    assert_eq!((n, count(&g, "Transpose")), (1, 0));
    let (g, n) = identity_case(&[2, 3], |b, x| b.node(Op::Transpose { perm: Some(vec![1, 0]) }, &[x]).unwrap());
    assert_eq!((n, count(&g, "Transpose")), (0, 1));
    let (g, n) = identity_case(&[2, 3], |b, x| {
        let p = b.constant("p", i64s(&[0, 0, 0, 0]));
        b.node(Op::Pad { mode: PadMode::Reflect }, &[x, p]).unwrap()
    });
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    let (g, n) = identity_case(&[2, 3], |b, x| {
        let p = b.constant("p", i64s(&[0, 1, 0, 0]));
        b.node(Op::Pad { mode: PadMode::Constant }, &[x, p]).unwrap()
    });
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // Full slices: open end, end at the size, negative start covering everything, negative axis.
    let (g, n) = identity_case(&[2, 5], |b, x| {
        let s = b.constant("s", i64s(&[0, -5]));
        let e = b.constant("e", i64s(&[i64::MAX, 5]));
        let a = b.constant("a", i64s(&[0, -1]));
        b.node(Op::Slice, &[x, s, e, a]).unwrap()
    });
    assert_eq!((n, count(&g, "Slice")), (1, 0));
    let (g, n) = identity_case(&[2, 5], |b, x| {
        let s = b.constant("s", i64s(&[1]));
        let e = b.constant("e", i64s(&[5]));
        let a = b.constant("a", i64s(&[1]));
        b.node(Op::Slice, &[x, s, e, a]).unwrap()
    });
    assert_eq!((n, count(&g, "Slice")), (0, 1));
    let (g, n) = identity_case(&[2, 5], |b, x| {
        let s = b.constant("s", i64s(&[0]));
        let e = b.constant("e", i64s(&[5]));
        let a = b.constant("a", i64s(&[1]));
        let st = b.constant("st", i64s(&[2]));
        b.node(Op::Slice, &[x, s, e, a, st]).unwrap()
    });
    assert_eq!((n, count(&g, "Slice")), (0, 1), "a strided slice is not a copy");
    let (g, n) = identity_case(&[2, 5], |b, x| b.node(Op::Concat { axis: 1 }, &[x]).unwrap());
    assert_eq!((n, count(&g, "Concat")), (1, 0));
}

#[test]
fn removing_an_identity_keeps_the_graph_output_name() {
    let mut b = GraphBuilder::new("names");
    let x = b.input("x", DType::F32, &[2, 3]);
    let r = b.relu(x).unwrap();
    let i = b.node(Op::Identity, &[r]).unwrap();
    b.output(i);
    let mut g = b.finish().unwrap();
    let name = g.value(i).name.clone();
    assert_eq!(check(&RemoveIdentity, &mut g, &[Rng(5).tensor(&[2, 3])]), 1);
    assert_eq!(count(&g, "Identity"), 0);
    let out = g.outputs()[0];
    assert!(matches!(g.node(out.node).op, Op::Relu));
    assert_eq!(g.value(out).name, name);
}

#[test]
fn identity_between_graph_input_and_output_stays() {
    // Bypassing would rename the graph input (or merge two graph outputs).
    let mut b = GraphBuilder::new("io");
    let x = b.input("x", DType::F32, &[3]);
    let i = b.node(Op::Identity, &[x]).unwrap();
    b.output(i);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&RemoveIdentity, &mut g, &[Rng(5).tensor(&[3])]), 0);
    assert_eq!(g.value(Outlet::new(g.inputs()[0], 0)).name, "x");

    let mut b = GraphBuilder::new("two_outputs");
    let x = b.input("x", DType::F32, &[3]);
    let r = b.relu(x).unwrap();
    let i = b.node(Op::Identity, &[r]).unwrap();
    b.output(r);
    b.output(i);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&RemoveIdentity, &mut g, &[Rng(5).tensor(&[3])]), 0);
}

#[test]
fn a_chain_of_identities_goes_away() {
    let mut b = GraphBuilder::new("chain");
    let x = b.input("x", DType::F32, &[2, 3]);
    let r = b.relu(x).unwrap();
    let i1 = b.node(Op::Identity, &[r]).unwrap();
    let d = b.node(Op::Dropout, &[i1]).unwrap();
    let i2 = b.node(Op::Identity, &[d]).unwrap();
    b.output(i2);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&RemoveIdentity, &mut g, &[Rng(9).tensor(&[2, 3])]), 3);
    assert_eq!(count(&g, "Identity") + count(&g, "Dropout"), 0);
}

// ---------------------------------------------------------------------------------------------
// canonicalize_shapes

#[test]
fn a_shape_chain_becomes_one_reshape() {
    let mut b = GraphBuilder::new("chain");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let r = b.relu(x).unwrap();
    let f = b.node(Op::Flatten { axis: 1 }, &[r]).unwrap();
    let axes = b.constant("axes", i64s(&[0]));
    let u = b.node(Op::Unsqueeze, &[f, axes]).unwrap();
    let s = b.reshape(u, &[4, -1, 2]).unwrap();
    let y = b.node(Op::Sigmoid, &[s]).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(1).tensor(&[2, 3, 4])]), 1);
    assert_eq!((count(&g, "Flatten"), count(&g, "Unsqueeze"), count(&g, "Reshape")), (0, 0, 1));
    assert_eq!(reshape_spec(&g), vec![4, 3, 2]);
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(1).tensor(&[2, 3, 4])]), 0, "a fixed point");
}

#[test]
fn a_chain_ending_at_a_graph_output_keeps_its_name() {
    let mut b = GraphBuilder::new("out");
    let x = b.input("x", DType::F32, &[2, 3, 1]);
    let r = b.relu(x).unwrap();
    let axes = b.constant("axes", i64s(&[2]));
    let s = b.node(Op::Squeeze, &[r, axes]).unwrap();
    let t = b.node(Op::Flatten { axis: 0 }, &[s]).unwrap();
    b.output(t);
    let mut g = b.finish().unwrap();
    let name = g.value(t).name.clone();
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(2).tensor(&[2, 3, 1])]), 1);
    assert_eq!(reshape_spec(&g), vec![1, 6]);
    assert_eq!(g.value(g.outputs()[0]).name, name);
}

#[test]
fn symbolic_batch_is_copied_with_zero() {
    let mut b = GraphBuilder::new("batch");
    let x = b.input("x", DType::F32, &[sym("n"), 3.into(), 2.into(), 2.into()]);
    let r = b.relu(x).unwrap();
    let f = b.node(Op::Flatten { axis: 1 }, &[r]).unwrap();
    let y = b.node(Op::Sigmoid, &[f]).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    let mut g2 = g.clone();
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(3).tensor(&[2, 3, 2, 2])]), 1);
    assert_eq!(reshape_spec(&g), vec![0, 12]);
    assert_eq!(g.value(g.outputs()[0]).ty.to_string(), "f32[n,12]");
    // Correct for another batch size too.
    assert_eq!(check(&CanonicalizeShapes, &mut g2, &[Rng(4).tensor(&[5, 3, 2, 2])]), 1);
}

#[test]
fn one_unknown_dim_becomes_minus_one() {
    // [h, w, 4] -> Flatten(axis 2) -> [h*w, 4]: h*w is neither known nor a copied symbol.
    let mut b = GraphBuilder::new("minus_one");
    let x = b.input("x", DType::F32, &[sym("h"), sym("w"), 4.into()]);
    let r = b.relu(x).unwrap();
    let f = b.node(Op::Flatten { axis: 2 }, &[r]).unwrap();
    let axes = b.constant("axes", i64s(&[1]));
    let u = b.node(Op::Unsqueeze, &[f, axes]).unwrap();
    b.output(u);
    let mut g = b.finish().unwrap();
    let mut g2 = g.clone();
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(5).tensor(&[2, 3, 4])]), 1);
    assert_eq!(reshape_spec(&g), vec![-1, 1, 4]);
    assert_eq!(check(&CanonicalizeShapes, &mut g2, &[Rng(6).tensor(&[5, 1, 4])]), 1);
}

#[test]
fn unprovable_shapes_are_left_alone() {
    // Two dims that are neither known nor copied: no single Reshape can be written.
    let mut b = GraphBuilder::new("two_unknown");
    let x = b.input("x", DType::F32, &[sym("a"), sym("b"), sym("c"), sym("d")]);
    let f = b.node(Op::Flatten { axis: 2 }, &[x]).unwrap();
    let y = b.relu(f).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(7).tensor(&[2, 3, 2, 2])]), 0);
    assert_eq!(count(&g, "Flatten"), 1);
    // Squeeze without axes of symbolic dims: even the rank is unknown.
    let mut b = GraphBuilder::new("squeeze_all");
    let x = b.input("x", DType::F32, &[sym("a"), 1.into(), sym("c")]);
    let s = b.node_with(Op::Squeeze, &[Some(x)], 1).unwrap()[0];
    let y = b.relu(s).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(8).tensor(&[2, 1, 3])]), 0);
    assert_eq!(count(&g, "Squeeze"), 1);
}

#[test]
fn chains_are_cut_where_an_intermediate_has_another_reader() {
    let mut b = GraphBuilder::new("shared");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let r1 = b.reshape(x, &[6, 4]).unwrap();
    let r2 = b.reshape(r1, &[24]).unwrap();
    let other = b.relu(r1).unwrap();
    b.output(r2);
    b.output(other);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(9).tensor(&[2, 3, 4])]), 0);
    assert_eq!(count(&g, "Reshape"), 2);
    // A graph output in the middle cuts the chain as well; the single Flatten at the end
    // still becomes a Reshape.
    let mut b = GraphBuilder::new("output_inside");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let r1 = b.reshape(x, &[6, 4]).unwrap();
    let f = b.node(Op::Flatten { axis: 0 }, &[r1]).unwrap();
    b.output(r1);
    b.output(f);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CanonicalizeShapes, &mut g, &[Rng(9).tensor(&[2, 3, 4])]), 1);
    assert_eq!((count(&g, "Reshape"), count(&g, "Flatten")), (2, 0));
}

// ---------------------------------------------------------------------------------------------
// cancel_transpose_reshape

fn transpose(b: &mut GraphBuilder, x: Outlet, perm: &[usize]) -> Outlet {
    b.node(Op::Transpose { perm: Some(perm.to_vec()) }, &[x]).unwrap()
}

#[test]
fn a_transpose_and_its_inverse_cancel() {
    let mut b = GraphBuilder::new("inverse");
    let x = b.input("x", DType::F32, &[1, 2, 3, 4]);
    let r = b.relu(x).unwrap();
    let t1 = transpose(&mut b, r, &[0, 2, 3, 1]);
    let t2 = transpose(&mut b, t1, &[0, 3, 1, 2]);
    let y = b.node(Op::Sigmoid, &[t2]).unwrap();
    b.output(y);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(1).tensor(&[1, 2, 3, 4])]), 1);
    assert_eq!(count(&g, "Transpose"), 0);
}

#[test]
fn two_transposes_compose_into_one() {
    let mut b = GraphBuilder::new("compose");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let t1 = transpose(&mut b, x, &[1, 2, 0]);
    let t2 = transpose(&mut b, t1, &[0, 2, 1]);
    b.output(t2);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(2).tensor(&[2, 3, 4])]), 1);
    assert_eq!(count(&g, "Transpose"), 1);
    let out = g.outputs()[0];
    assert_eq!(g.node(out.node).op, Op::Transpose { perm: Some(vec![1, 0, 2]) });
    assert_eq!(g.value(out).ty.to_string(), "f32[3,2,4]");
    // The default (reversing) permutation composes too.
    let mut b = GraphBuilder::new("reverse");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let r = b.relu(x).unwrap();
    let t1 = b.node(Op::Transpose { perm: None }, &[r]).unwrap();
    let t2 = b.node(Op::Transpose { perm: None }, &[t1]).unwrap();
    b.output(t2);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(3).tensor(&[2, 3, 4])]), 1);
    assert_eq!(count(&g, "Transpose"), 0);
}

#[test]
fn a_shared_transpose_is_kept() {
    let mut b = GraphBuilder::new("shared");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let t1 = transpose(&mut b, x, &[1, 2, 0]);
    let inv = transpose(&mut b, t1, &[2, 0, 1]);
    let other = b.relu(t1).unwrap();
    let y = b.add(inv, x).unwrap();
    b.output(y);
    b.output(other);
    let mut g = b.finish().unwrap();
    // The inverse goes; the first stays for its other reader.
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(4).tensor(&[2, 3, 4])]), 1);
    assert_eq!(count(&g, "Transpose"), 1);
    // A non-inverse pair with a shared first transpose stays as is.
    let mut b = GraphBuilder::new("shared2");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let t1 = transpose(&mut b, x, &[1, 2, 0]);
    let t2 = transpose(&mut b, t1, &[1, 0, 2]);
    let other = b.relu(t1).unwrap();
    b.output(t2);
    b.output(other);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(4).tensor(&[2, 3, 4])]), 0);
    assert_eq!(count(&g, "Transpose"), 2);
}

#[test]
fn cancelling_transposes_between_graph_input_and_output_keep_names() {
    let mut b = GraphBuilder::new("io");
    let x = b.input("x", DType::F32, &[2, 3]);
    let t1 = transpose(&mut b, x, &[1, 0]);
    let t2 = transpose(&mut b, t1, &[1, 0]);
    b.output(t2);
    let mut g = b.finish().unwrap();
    // The output cannot become the graph input itself: one identity Transpose remains.
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(5).tensor(&[2, 3])]), 1);
    assert_eq!(count(&g, "Transpose"), 1);
    assert_eq!(g.value(Outlet::new(g.inputs()[0], 0)).name, "x");
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(5).tensor(&[2, 3])]), 0, "a fixed point");
}

#[test]
fn a_reshape_back_to_the_original_shape_is_removed() {
    let mut b = GraphBuilder::new("back");
    let x = b.input("x", DType::F32, &[sym("n"), 3.into(), 4.into()]);
    let r = b.relu(x).unwrap();
    let r1 = b.reshape(r, &[0, 12]).unwrap();
    let r2 = b.reshape(r1, &[0, 3, 4]).unwrap();
    let other = b.node(Op::Sigmoid, &[r1]).unwrap();
    b.output(r2);
    b.output(other);
    let mut g = b.finish().unwrap();
    let name = g.value(r2).name.clone();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(6).tensor(&[2, 3, 4])]), 1);
    assert_eq!(count(&g, "Reshape"), 1, "the first Reshape stays for its other reader");
    let out = g.outputs()[0];
    assert!(matches!(g.node(out.node).op, Op::Relu));
    assert_eq!(g.value(out).name, name);
}

#[test]
fn consecutive_reshapes_merge() {
    let mut b = GraphBuilder::new("merge");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let r = b.relu(x).unwrap();
    let r1 = b.reshape(r, &[6, 4]).unwrap();
    let r2 = b.reshape(r1, &[4, -1]).unwrap();
    b.output(r2);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(7).tensor(&[2, 3, 4])]), 1);
    assert_eq!(count(&g, "Reshape"), 1);
    assert_eq!(reshape_spec(&g), vec![4, -1]);
    // A 0 in the second shape copies a dim of the first one's output: it becomes that known size.
    let mut b = GraphBuilder::new("merge_zero");
    let x = b.input("x", DType::F32, &[2, 3, 4]);
    let r = b.relu(x).unwrap();
    let r1 = b.reshape(r, &[6, 4]).unwrap();
    let r2 = b.reshape(r1, &[0, 2, 2]).unwrap();
    b.output(r2);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(8).tensor(&[2, 3, 4])]), 1);
    assert_eq!(reshape_spec(&g), vec![6, 2, 2]);
    // With a symbolic dim, a 0 is kept only when it copies the same symbol.
    let mut b = GraphBuilder::new("merge_sym");
    let x = b.input("x", DType::F32, &[sym("n"), 3.into(), 4.into()]);
    let r = b.relu(x).unwrap();
    let r1 = b.reshape(r, &[0, 12]).unwrap();
    let r2 = b.reshape(r1, &[0, 2, 6]).unwrap();
    b.output(r2);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(9).tensor(&[3, 3, 4])]), 1);
    assert_eq!(reshape_spec(&g), vec![0, 2, 6]);
    // ... and the merge is refused when the copied dim is not provable.
    let mut b = GraphBuilder::new("merge_unknown");
    let x = b.input("x", DType::F32, &[sym("n"), 3.into(), 4.into()]);
    let r = b.relu(x).unwrap();
    let r1 = b.reshape(r, &[-1, 4]).unwrap();
    let r2 = b.reshape(r1, &[0, 2, 2]).unwrap();
    b.output(r2);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&CancelTransposeReshape, &mut g, &[Rng(10).tensor(&[3, 3, 4])]), 0);
    assert_eq!(count(&g, "Reshape"), 2);
}

// ---------------------------------------------------------------------------------------------
// fold_pad

/// `x[1,2,5,5] -> Relu -> Pad(pads, value, axes) -> <consumer built by f>`.
fn pad_case(
    pads: &[i64],
    value: Option<f32>,
    axes: Option<&[i64]>,
    mode: PadMode,
    f: impl FnOnce(&mut GraphBuilder, Outlet) -> Outlet,
) -> (Graph, usize) {
    pad_case_shape(&[1, 2, 5, 5], pads, value, axes, mode, f)
}

fn pad_case_shape(
    shape: &[usize],
    pads: &[i64],
    value: Option<f32>,
    axes: Option<&[i64]>,
    mode: PadMode,
    f: impl FnOnce(&mut GraphBuilder, Outlet) -> Outlet,
) -> (Graph, usize) {
    let mut b = GraphBuilder::new("pad");
    let x = b.input("x", DType::F32, shape);
    let r = b.node(Op::Sigmoid, &[x]).unwrap();
    let p = b.constant("pads", i64s(pads));
    let v = value.map(|v| b.constant("value", Tensor::scalar(v)));
    let a = axes.map(|a| b.constant("axes", i64s(a)));
    let padded = b.node_with(Op::Pad { mode }, &[Some(r), Some(p), v, a], 1).unwrap()[0];
    let y = f(&mut b, padded);
    b.output(y);
    let mut g = b.finish().unwrap();
    let n = check(&FoldPad, &mut g, &[Rng(11).tensor(shape)]);
    (g, n)
}

fn conv3x3(b: &mut GraphBuilder, x: Outlet, attrs: ConvAttrs) -> Outlet {
    let c = b.ty(x).shape.as_ref().unwrap().dims()[1].known().unwrap();
    b.conv2d(x, Rng(21).tensor(&[4, c / attrs.group, 3, 3]), Some(Rng(22).tensor(&[4])), attrs).unwrap()
}

fn pool_attrs(k: usize, s: usize, pads: &[usize], ceil_mode: bool) -> PoolAttrs {
    PoolAttrs { kernel_shape: vec![k, k], strides: vec![s, s], pads: pads.to_vec(), ceil_mode, ..Default::default() }
}

fn only_node<'g>(g: &'g Graph, op: &str) -> &'g Op {
    let ids: Vec<_> = g.node_ids().into_iter().filter(|&id| g.node(id).op.name() == op).collect();
    assert_eq!(ids.len(), 1, "exactly one {op}");
    &g.node(ids[0]).op
}

#[test]
fn a_zero_pad_folds_into_the_conv() {
    let (g, n) = pad_case(&[0, 0, 1, 2, 0, 0, 2, 1], None, None, PadMode::Constant, |b, x| {
        conv3x3(b, x, ConvAttrs { pads: vec![1, 0, 0, 1], strides: vec![2, 1], ..Default::default() })
    });
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    let Op::Conv(c) = only_node(&g, "Conv") else { unreachable!() };
    assert_eq!(c.pads, vec![2, 2, 2, 2]);
    // ONNX form with an explicit 0 value and spatial axes (one negative); Valid auto_pad.
    let (g, n) = pad_case(&[1, 0, 0, 3], Some(0.0), Some(&[2, -1]), PadMode::Constant, |b, x| {
        conv3x3(b, x, ConvAttrs { auto_pad: AutoPad::Valid, group: 2, ..Default::default() })
    });
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    let Op::Conv(c) = only_node(&g, "Conv") else { unreachable!() };
    assert_eq!((c.pads.clone(), c.auto_pad), (vec![1, 0, 0, 3], AutoPad::NotSet));
    // 1-D conv (rank 3).
    let (g, n) = pad_case_shape(&[1, 2, 6], &[0, 0, 2, 0, 0, 1], None, None, PadMode::Constant, |b, x| {
        b.conv2d(x, Rng(3).tensor(&[4, 2, 3]), None, ConvAttrs::default()).unwrap()
    });
    assert_eq!((n, count(&g, "Pad")), (1, 0));
}

#[test]
fn pads_that_conv_cannot_express_stay() {
    let conv = |b: &mut GraphBuilder, x: Outlet| conv3x3(b, x, ConvAttrs::default());
    // A non-zero fill value.
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], Some(0.5), None, PadMode::Constant, conv);
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // Padding the channel axis.
    let (g, n) = pad_case(&[0, 1, 1, 1, 0, 0, 1, 1], None, None, PadMode::Constant, conv);
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // Negative pads (cropping).
    let (g, n) = pad_case(&[0, 0, 1, -1, 0, 0, 1, 1], None, None, PadMode::Constant, conv);
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // Other modes.
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], None, None, PadMode::Reflect, conv);
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], None, None, PadMode::Edge, conv);
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // SAME auto padding on the conv.
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], None, None, PadMode::Constant, |b, x| {
        conv3x3(b, x, ConvAttrs { auto_pad: AutoPad::SameUpper, ..Default::default() })
    });
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // Two readers.
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], None, None, PadMode::Constant, |b, x| {
        let c1 = conv3x3(b, x, ConvAttrs::default());
        let c2 = conv3x3(b, x, ConvAttrs::default());
        b.add(c1, c2).unwrap()
    });
    assert_eq!((n, count(&g, "Pad")), (0, 1));
}

#[test]
fn a_pad_that_is_a_graph_output_stays() {
    let mut b = GraphBuilder::new("pad_out");
    let x = b.input("x", DType::F32, &[1, 2, 4, 4]);
    let p = b.constant("pads", i64s(&[0, 0, 1, 1, 0, 0, 1, 1]));
    let padded = b.node(Op::Pad { mode: PadMode::Constant }, &[x, p]).unwrap();
    let y = conv3x3(&mut b, padded, ConvAttrs::default());
    b.output(y);
    b.output(padded);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&FoldPad, &mut g, &[Rng(1).tensor(&[1, 2, 4, 4])]), 0);
}

#[test]
fn a_zero_pad_folds_into_average_pool() {
    // No own pads, count_include_pad off: the padded zeros were counted, so they must stay so.
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], None, None, PadMode::Constant, |b, x| {
        let a = AvgPoolAttrs { pool: pool_attrs(3, 2, &[], false), count_include_pad: false };
        b.node(Op::AveragePool(a), &[x]).unwrap()
    });
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    let Op::AveragePool(a) = only_node(&g, "AveragePool") else { unreachable!() };
    assert!(a.count_include_pad);
    assert_eq!(a.pool.pads, vec![1, 1, 1, 1]);
    // Own pads counted in the divisor.
    let (g, n) = pad_case(&[0, 0, 1, 0, 0, 0, 0, 1], None, None, PadMode::Constant, |b, x| {
        let a = AvgPoolAttrs { pool: pool_attrs(2, 1, &[1, 1, 0, 0], false), count_include_pad: true };
        b.node(Op::AveragePool(a), &[x]).unwrap()
    });
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    // Own pads not counted: the fold would count them.
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], None, None, PadMode::Constant, |b, x| {
        let a = AvgPoolAttrs { pool: pool_attrs(3, 1, &[1, 1, 1, 1], false), count_include_pad: false };
        b.node(Op::AveragePool(a), &[x]).unwrap()
    });
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // A non-zero fill value.
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], Some(1.0), None, PadMode::Constant, |b, x| {
        let a = AvgPoolAttrs { pool: pool_attrs(3, 1, &[], false), count_include_pad: true };
        b.node(Op::AveragePool(a), &[x]).unwrap()
    });
    assert_eq!((n, count(&g, "Pad")), (0, 1));
}

#[test]
fn ceil_mode_folds_only_when_the_output_size_stays() {
    let avg = |b: &mut GraphBuilder, x: Outlet| {
        let a = AvgPoolAttrs { pool: pool_attrs(2, 2, &[], true), count_include_pad: false };
        b.node(Op::AveragePool(a), &[x]).unwrap()
    };
    // Width 4 padded by 1 at the end: 3 windows before, 2 after (a window may not start in
    // the end padding): refused.
    let (g, n) = pad_case_shape(&[1, 1, 4, 4], &[0, 0, 0, 0, 0, 0, 0, 1], None, None, PadMode::Constant, avg);
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // Width 3 padded by 1 at the end: 2 windows either way.
    let (g, n) = pad_case_shape(&[1, 1, 3, 3], &[0, 0, 0, 0, 0, 0, 1, 1], None, None, PadMode::Constant, avg);
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    // Begin padding only never changes the count.
    let (g, n) = pad_case_shape(&[1, 1, 4, 4], &[0, 0, 1, 1, 0, 0, 0, 0], None, None, PadMode::Constant, avg);
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    // Unknown spatial sizes with end padding: refused.
    let mut b = GraphBuilder::new("ceil_sym");
    let x = b.input("x", DType::F32, &[1.into(), 1.into(), sym("h"), sym("w")]);
    let p = b.constant("pads", i64s(&[0, 0, 0, 0, 0, 0, 1, 1]));
    let padded = b.node(Op::Pad { mode: PadMode::Constant }, &[x, p]).unwrap();
    let y = avg(&mut b, padded);
    b.output(y);
    let mut g = b.finish().unwrap();
    assert_eq!(check(&FoldPad, &mut g, &[Rng(1).tensor(&[1, 1, 3, 3])]), 0);
}

#[test]
fn a_minus_infinity_pad_folds_into_max_pool() {
    let pool = |b: &mut GraphBuilder, x: Outlet| b.max_pool(x, pool_attrs(3, 2, &[], false)).unwrap();
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], Some(f32::NEG_INFINITY), None, PadMode::Constant, pool);
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    let Op::MaxPool(p) = only_node(&g, "MaxPool") else { unreachable!() };
    assert_eq!(p.pads, vec![1, 1, 1, 1]);
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], Some(f32::MIN), None, PadMode::Constant, pool);
    assert_eq!((n, count(&g, "Pad")), (1, 0));
    // A zero pad changes a max pool of negative values: refused.
    let (g, n) = pad_case(&[0, 0, 1, 1, 0, 0, 1, 1], None, None, PadMode::Constant, pool);
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    // f32::MIN as wide as the kernel: a window could hold only padding (f32::MIN, not -inf).
    let (g, n) = pad_case(&[0, 0, 3, 0, 0, 0, 0, 0], Some(f32::MIN), None, PadMode::Constant, pool);
    assert_eq!((n, count(&g, "Pad")), (0, 1));
    let (g, n) = pad_case(&[0, 0, 3, 0, 0, 0, 0, 0], Some(f32::NEG_INFINITY), None, PadMode::Constant, pool);
    assert_eq!((n, count(&g, "Pad")), (1, 0));
}

// ---------------------------------------------------------------------------------------------
// Robustness

#[test]
fn unknown_ranks_and_runtime_parameters_are_left_alone() {
    use lithe_ir::TypeInfo;
    let mut g = Graph::new("odd");
    let x = g.add_input("x", TypeInfo::unranked(DType::F32));
    let pads = g.add_input("pads", TypeInfo::new(DType::I64, [8]));
    let bounds = g.add_input("bounds", TypeInfo::new(DType::I64, [1]));
    let t1 = g.add_node_inferred("t1", Op::Transpose { perm: None }, &[Some(x)], 1).unwrap()[0];
    let t2 = g.add_node_inferred("t2", Op::Transpose { perm: None }, &[Some(t1)], 1).unwrap()[0];
    let f = g.add_node_inferred("f", Op::Flatten { axis: 1 }, &[Some(x)], 1).unwrap()[0];
    let sq = g.add_node_inferred("sq", Op::Squeeze, &[Some(x)], 1).unwrap()[0];
    let p = g
        .add_node_inferred("p", Op::Pad { mode: PadMode::Constant }, &[Some(x), Some(pads), None, None], 1)
        .unwrap()[0];
    let w = g.add_const("w", Rng(1).tensor(&[2, 2, 3, 3]));
    let c = g.add_node_inferred("c", Op::Conv(ConvAttrs::default()), &[Some(p), Some(w)], 1).unwrap()[0];
    let s = g.add_node_inferred("s", Op::Slice, &[Some(x), Some(bounds), Some(bounds)], 1).unwrap()[0];
    g.set_outputs(vec![t2, f, sq, c, s]);
    g.validate().unwrap();
    let passes: [&dyn Pass; 5] = [&RemoveIdentity, &CanonicalizeShapes, &CancelTransposeReshape, &FoldPad, &DeadCode];
    for pass in passes {
        assert_eq!(pass.run(&mut g).unwrap(), 0, "{} changed a graph it cannot reason about", pass.name());
        g.validate().unwrap();
    }
    // The graph still computes what it did (checked on one concrete input).
    let xv = Rng(2).tensor(&[1, 2, 5, 5]);
    let pv = i64s(&[0, 0, 1, 1, 0, 0, 1, 1]);
    let out = eval(&g, &[xv, pv, i64s(&[1])]);
    assert_eq!(out[3].shape(), &[1, 2, 5, 5]);
    assert_eq!(out[4].shape(), &[0, 2, 5, 5]);
}
