//! Round trips: every op, every dtype, the golden ONNX models, files on disk.

mod common;

use common::{all_ops_graph, assert_same_graph, every_dtype_tensors, golden_models, load_golden, meta, op_names};
use lithe_ir::{DType, Graph, Op, Outlet, Tensor, TypeInfo};
use lithe_nbformat::ReadOptions;

fn round_trip(g: &Graph) -> Graph {
    let bytes = lithe_nbformat::write(g, &meta()).unwrap();
    assert!(lithe_nbformat::has_magic(&bytes));
    let (back, m) = lithe_nbformat::read(&bytes).unwrap();
    assert_eq!(m, meta());
    assert_same_graph(g, &back);
    // Writing the read graph gives the same bytes.
    assert_eq!(lithe_nbformat::write(&back, &meta()).unwrap(), bytes);
    // Read in place from shared bytes: the same graph, and every weight (not bool) is a
    // view of the shared bytes rather than a copy.
    let (shared, m) =
        lithe_nbformat::read_shared(lithe_nbformat::shared_copy(&bytes), &ReadOptions::default()).unwrap();
    assert_eq!(m, meta());
    for id in shared.node_ids() {
        if let Op::Const(t) = &shared.node(id).op
            && t.dtype() != DType::Bool
            && t.size_bytes() > lithe_nbformat::MAX_INLINE_BYTES
        {
            assert!(t.is_in_place(), "constant {} was copied", shared.node(id).name);
        }
    }
    assert_same_graph(g, &shared);
    back
}

#[test]
fn weights_checksum_is_verified_unless_turned_off() {
    let g = load_golden(&golden_models()[0].1);
    let mut bytes = lithe_nbformat::write(&g, &meta()).unwrap();
    let info = lithe_nbformat::inspect(&bytes).unwrap();
    let w = info.sections.iter().find(|s| s.kind == lithe_nbformat::SectionKind::Weights).unwrap();
    // Flip a byte inside the weights section.
    bytes[(w.offset + w.length / 2) as usize] ^= 0x10;
    let verified = ReadOptions { verify_weights: true };
    let e = lithe_nbformat::read_shared(lithe_nbformat::shared_copy(&bytes), &verified).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    assert!(lithe_nbformat::read(&bytes).is_err());
    // Not verified: the structure is intact, so it loads (with one changed weight).
    let unverified = ReadOptions { verify_weights: false };
    let (h, _) = lithe_nbformat::read_shared(lithe_nbformat::shared_copy(&bytes), &unverified).unwrap();
    assert_eq!(h.len(), g.len());
}

#[test]
fn every_op_variant_round_trips() {
    let g = all_ops_graph();
    let mut expected: Vec<&str> = Op::all_names();
    expected.extend(["Input", "Const"]);
    let used: Vec<&str> = op_names(&g).into_iter().collect();
    expected.sort_unstable();
    assert_eq!(used, expected, "the test graph must use every op");
    round_trip(&g);
}

#[test]
fn every_dtype_round_trips_as_constant_and_input() {
    let mut g = Graph::new("dtypes");
    let mut outs = Vec::new();
    for (i, t) in every_dtype_tensors().into_iter().enumerate() {
        outs.push(g.add_const(format!("c{i}"), t));
    }
    for (i, dt) in DType::ALL.into_iter().enumerate() {
        outs.push(g.add_input(format!("in{i}"), TypeInfo::new(dt, [2, 3])));
    }
    g.set_outputs(outs);
    let back = round_trip(&g);
    let dtypes: Vec<DType> = back.inputs().iter().map(|&id| back.node(id).outputs[0].ty.dtype).collect();
    assert_eq!(dtypes, DType::ALL);
}

#[test]
fn empty_graph_round_trips() {
    let g = Graph::new("");
    let bytes = lithe_nbformat::write(&g, &lithe_nbformat::ModelMeta::default()).unwrap();
    let (back, m) = lithe_nbformat::read(&bytes).unwrap();
    assert_eq!(m, lithe_nbformat::ModelMeta::default());
    assert_same_graph(&g, &back);
}

#[test]
fn removed_nodes_and_reordered_inputs_round_trip() {
    // Node ids with gaps, a reused id making graph-input order differ from id order, a
    // producer with a higher id than its consumer, and trailing absent inputs.
    let mut g = Graph::new("edited");
    let a = g.add_input("a", TypeInfo::new(DType::F32, [3]));
    let b = g.add_input("b", TypeInfo::new(DType::F32, [3]));
    let dead = g.add_const("dead", Tensor::scalar(1.0f32));
    g.remove_node(a.node);
    let c = g.add_input("c", TypeInfo::new(DType::F32, [3]));
    let relu = g.add_node_inferred("relu", Op::Relu, &[Some(b)], 1).unwrap()[0];
    let late = g.add_node_inferred("late", Op::Neg, &[Some(c)], 1).unwrap()[0];
    g.set_input(relu.node, 0, Some(late)).unwrap();
    g.node_mut(relu.node).num_inputs = 1;
    let clip = g.add_node_inferred("clip", Op::Clip, &[Some(b), None, None], 1).unwrap()[0];
    g.remove_node(dead.node);
    g.set_outputs(vec![relu, clip, Outlet::new(b.node, 0)]);
    g.validate().unwrap();
    assert!(c.node < b.node, "the removed input's id is reused");
    let bytes = lithe_nbformat::write(&g, &meta()).unwrap();
    let (back, _) = lithe_nbformat::read(&bytes).unwrap();
    let names = |g: &Graph| g.inputs().iter().map(|&id| g.node(id).name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&back), ["b", "c"]);
    assert_eq!(names(&g), names(&back));
    let by_name = |g: &Graph, n: &str| g.node_ids().into_iter().find(|&id| g.node(id).name == n).unwrap();
    let (r0, r1) = (by_name(&g, "relu"), by_name(&back, "relu"));
    assert_eq!(back.node(r1).num_inputs, 1);
    assert_eq!(back.node(back.node_inputs(r1)[0].unwrap().node).name, "late");
    assert_eq!(g.node(r0).outputs, back.node(r1).outputs);
    let k = by_name(&back, "clip");
    assert_eq!(back.node_inputs(k).len(), 3);
    assert!(back.node_inputs(k)[1..].iter().all(Option::is_none));
    let outs: Vec<_> = back.outputs().iter().map(|o| back.value(*o).name.clone()).collect();
    assert_eq!(outs, ["relu", "clip", "b"]);
    back.validate().unwrap();
}

#[test]
fn golden_models_round_trip() {
    let models = golden_models();
    assert!(models.len() >= 30, "found {} golden models", models.len());
    for (name, path) in models {
        let g = load_golden(&path);
        let bytes = lithe_nbformat::write(&g, &meta()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (back, _) = lithe_nbformat::read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same_graph(&g, &back);
        assert_eq!(g.total_params(), back.total_params(), "{name}");
    }
}

#[test]
fn files_round_trip_through_the_memory_map() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all_ops.nb");
    let g = all_ops_graph();
    lithe_nbformat::write_file(&path, &g, &meta()).unwrap();
    let (back, m) = lithe_nbformat::read_file(&path).unwrap();
    assert_eq!(m, meta());
    assert_same_graph(&g, &back);
    // Overwriting an existing file works and leaves no temporary file behind.
    lithe_nbformat::write_file(&path, &g, &lithe_nbformat::ModelMeta::default()).unwrap();
    assert_eq!(lithe_nbformat::read_file(&path).unwrap().1, lithe_nbformat::ModelMeta::default());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A missing file is an I/O error naming the path; an empty file is not a .nb.
    let missing = dir.path().join("missing.nb");
    let err = lithe_nbformat::read_file(&missing).unwrap_err();
    assert!(matches!(err, lithe_nbformat::NbError::Io { .. }));
    assert!(err.to_string().contains("missing.nb"));
    let empty = dir.path().join("empty.nb");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(lithe_nbformat::read_file(&empty), Err(lithe_nbformat::NbError::Truncated { .. })));
}

mod random {
    use super::common::{assert_same_graph, meta};
    use half::f16;
    use lithe_ir::{DType, Dim, Graph, QuantParams, Shape, Tensor, TypeInfo};
    use proptest::prelude::*;

    fn tensor(dtype: DType, shape: &[usize], bits: &[u64]) -> Tensor {
        let n: usize = shape.iter().product();
        let b = |i: usize| bits[i % bits.len()];
        match dtype {
            DType::F32 => Tensor::from_vec(shape, (0..n).map(|i| f32::from_bits(b(i) as u32)).collect()),
            DType::F16 => Tensor::from_vec(shape, (0..n).map(|i| f16::from_bits(b(i) as u16)).collect()),
            DType::I8 => Tensor::from_vec(shape, (0..n).map(|i| b(i) as i8).collect()),
            DType::U8 => Tensor::from_vec(shape, (0..n).map(|i| b(i) as u8).collect()),
            DType::I16 => Tensor::from_vec(shape, (0..n).map(|i| b(i) as i16).collect()),
            DType::I32 => Tensor::from_vec(shape, (0..n).map(|i| b(i) as i32).collect()),
            DType::I64 => Tensor::from_vec(shape, (0..n).map(|i| b(i) as i64).collect()),
            DType::Bool => Tensor::from_vec(shape, (0..n).map(|i| b(i) & 1 == 1).collect()),
        }
        .unwrap()
    }

    fn dim() -> impl Strategy<Value = Dim> {
        prop_oneof![(0usize..1 << 20).prop_map(Dim::Known), "[a-z]{1,6}".prop_map(Dim::Sym), Just(Dim::Unknown)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random constants of every dtype (any bit pattern, NaNs included), random
        /// quantization parameters and random input types survive a round trip bit for bit.
        #[test]
        fn random_tensors_and_types_round_trip(
            consts in proptest::collection::vec(
                (0usize..8, proptest::collection::vec(0usize..5, 0..4), proptest::collection::vec(any::<u64>(), 1..8),
                 proptest::option::of((proptest::collection::vec(any::<f32>(), 1..3), proptest::option::of(0usize..4)))),
                0..6),
            inputs in proptest::collection::vec((0usize..8, proptest::option::of(proptest::collection::vec(dim(), 0..5))), 0..4),
        ) {
            let mut g = Graph::new("random");
            let mut outs = Vec::new();
            for (i, (d, shape, bits, quant)) in consts.iter().enumerate() {
                let mut t = tensor(DType::ALL[*d], shape, bits);
                t.quant = quant.as_ref().map(|(scale, axis)| QuantParams {
                    scale: scale.clone(),
                    zero_point: scale.iter().map(|s| s.to_bits() as i32).collect(),
                    axis: *axis,
                });
                outs.push(g.add_const(format!("c{i}"), t));
            }
            for (i, (d, dims)) in inputs.iter().enumerate() {
                let ty = TypeInfo { dtype: DType::ALL[*d], shape: dims.clone().map(Shape) };
                outs.push(g.add_input(format!("in{i}"), ty));
            }
            g.set_outputs(outs);
            let bytes = lithe_nbformat::write(&g, &meta()).unwrap();
            let (back, _) = lithe_nbformat::read(&bytes).unwrap();
            assert_same_graph(&g, &back);
        }
    }
}
