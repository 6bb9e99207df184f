//! Format rules: forged lengths fail fast without big allocations, bad references are
//! typed errors, tensors are 64-byte aligned, and the version rules of docs/nb-format.md.

mod common;

use common::{all_ops_graph, assert_same_graph, golden_models, load_golden, meta};
use lithe_ir::{Op, TensorData};
use lithe_nbformat::{NbError, SectionEntry, SectionKind, header, pb};
use prost::Message;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the bytes live on the current thread and their peak, to check that hostile
/// files are rejected without large allocations.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; the wrapper only
// updates thread-local counters, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            track(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `System` with layout `l`.
        unsafe { System.dealloc(p, l) };
        track(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: `p` was allocated by `System` with layout `l`.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            track(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Read `bytes` and return the result with the peak bytes allocated above the start.
fn read_measured(bytes: &[u8]) -> (Result<(), NbError>, isize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = lithe_nbformat::read(bytes).map(|_| ());
    (r, PEAK.with(Cell::get) - base)
}

const BASE: u64 = 128;

/// A file with the given program and weights (weights at 128, program after them).
fn assemble(program: &pb::Program, weights: &[u8]) -> Vec<u8> {
    let p = program.encode_to_vec();
    let sections = [
        SectionEntry {
            kind: SectionKind::Weights,
            crc32: crc32fast::hash(weights),
            offset: BASE,
            length: weights.len() as u64,
        },
        SectionEntry {
            kind: SectionKind::Program,
            crc32: crc32fast::hash(&p),
            offset: BASE + weights.len() as u64,
            length: p.len() as u64,
        },
    ];
    let mut out = header::encode(0, &sections).unwrap();
    out.resize(BASE as usize, 0);
    out.extend_from_slice(weights);
    out.extend_from_slice(&p);
    out
}

fn value(name: &str, dtype: pb::DataType, dims: &[u64]) -> pb::Value {
    let dims = dims.iter().map(|&d| pb::Dim { kind: Some(pb::dim::Kind::Known(d)) }).collect();
    pb::Value { name: name.into(), dtype: dtype as i32, shape: Some(pb::Shape { dims }) }
}

fn const_node(name: &str, t: pb::Tensor) -> pb::Node {
    let v = value(name, pb::DataType::try_from(t.dtype).unwrap_or(pb::DataType::F32), &t.shape);
    pb::Node {
        name: name.into(),
        op: Some(pb::Op { kind: Some(pb::op::Kind::Const(t)) }),
        inputs: vec![],
        outputs: vec![v],
    }
}

fn weights_tensor(dtype: pb::DataType, shape: &[u64], offset: u64, length: u64) -> pb::Tensor {
    pb::Tensor {
        dtype: dtype as i32,
        shape: shape.to_vec(),
        data: Some(pb::tensor::Data::Weights(pb::WeightRef { offset, length })),
        quant: None,
    }
}

fn program(nodes: Vec<pb::Node>) -> pb::Program {
    pb::Program { graph_name: "forged".into(), nodes, inputs: vec![], outputs: vec![], meta: None }
}

/// Set a header field and recompute the header CRC.
fn patch_header(bytes: &mut [u8], at: usize, v: &[u8]) {
    bytes[at..at + v.len()].copy_from_slice(v);
    let end = header::table_end(u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize);
    if end > bytes.len() {
        return; // A forged count: the reader rejects it before it could check the CRC.
    }
    let crc = header::header_crc(&bytes[..end]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn forged_section_lengths_fail_without_allocating() {
    let good = lithe_nbformat::write(&all_ops_graph(), &meta()).unwrap();
    // Entry 1 (the program) claims 1 TB, then an overflowing length; entry 0 a huge offset.
    for (at, v) in [(32 + 24 + 16, 1u64 << 40), (32 + 24 + 16, u64::MAX - 10), (32 + 8, u64::MAX / 2)] {
        let mut b = good.clone();
        patch_header(&mut b, at, &v.to_le_bytes());
        let (r, peak) = read_measured(&b);
        assert!(matches!(r, Err(NbError::Truncated { .. } | NbError::SectionTable(_))), "{r:?}");
        assert!(peak < 4096, "peak {peak}");
    }
    let mut b = good.clone();
    patch_header(&mut b, 24, &u32::MAX.to_le_bytes());
    let (r, peak) = read_measured(&b);
    assert!(matches!(r, Err(NbError::SectionTable(_))), "{r:?}");
    assert!(peak < 4096, "peak {peak}");
}

#[test]
fn forged_tensor_sizes_fail_without_allocating() {
    let weights = vec![0u8; 64];
    let cases = [
        // A shape of 2^40 x 2^40 f32 stored in 16 bytes.
        weights_tensor(pb::DataType::F32, &[1 << 40, 1 << 40], BASE, 16),
        // A reference far past the weights section.
        weights_tensor(pb::DataType::F32, &[1 << 38], BASE, 1 << 40),
        // Overflowing shape product and offset + length.
        weights_tensor(pb::DataType::I64, &[u64::MAX, 2], BASE, 16),
        weights_tensor(pb::DataType::U8, &[4], u64::MAX - 63, 128),
        // A large inline claim.
        pb::Tensor {
            dtype: pb::DataType::F32 as i32,
            shape: vec![1 << 30],
            data: Some(pb::tensor::Data::Inline(vec![0; 4])),
            quant: None,
        },
    ];
    for t in cases {
        let file = assemble(&program(vec![const_node("w", t.clone())]), &weights);
        let (r, peak) = read_measured(&file);
        match r {
            Err(NbError::BadTensor { context, .. } | NbError::BadReference { context, .. }) => {
                assert_eq!(context, "node 0 'w'");
            }
            other => panic!("{t:?} gave {other:?}"),
        }
        assert!(peak < 64 * 1024, "{t:?}: peak {peak}");
    }
    // A protobuf length prefix claiming 4 GB of nodes.
    let mut b = assemble(&program(vec![]), &[]);
    let p_at = BASE as usize;
    b.extend_from_slice(&[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    let len = (b.len() - p_at) as u64;
    let crc = crc32fast::hash(&b[p_at..]);
    patch_header(&mut b, 32 + 24 + 4, &crc.to_le_bytes());
    patch_header(&mut b, 32 + 24 + 16, &len.to_le_bytes());
    let (r, peak) = read_measured(&b);
    assert!(matches!(r, Err(NbError::Decode(_))), "{r:?}");
    assert!(peak < 64 * 1024, "peak {peak}");
}

#[test]
fn bad_references_are_typed_errors_naming_the_place() {
    let mut weights = vec![1u8; 256];
    weights[192..].fill(2);
    let f32_ref = |offset, len| weights_tensor(pb::DataType::F32, &[len / 4], offset, len);
    let relu = |from: u32, slot: u32| pb::Node {
        name: "r".into(),
        op: Some(pb::Op { kind: Some(pb::op::Kind::Relu(pb::Empty {})) }),
        inputs: vec![pb::InputSlot { outlet: Some(pb::Outlet { node: from, slot }) }],
        outputs: vec![value("r", pb::DataType::F32, &[4])],
    };
    let expect = |p: pb::Program, check: &dyn Fn(&NbError) -> bool| {
        let r = lithe_nbformat::read(&assemble(&p, &weights));
        let e = r.expect_err("an error");
        assert!(check(&e), "{e}");
        e.to_string()
    };
    // Misaligned and overlapping tensors.
    let msg = expect(program(vec![const_node("w", f32_ref(BASE + 4, 16))]), &|e| {
        matches!(e, NbError::BadReference { field: "weights", .. })
    });
    assert!(msg.contains("not a multiple of 64"), "{msg}");
    let msg =
        expect(program(vec![const_node("a", f32_ref(BASE, 128)), const_node("b", f32_ref(BASE + 64, 64))]), &|e| {
            matches!(e, NbError::BadReference { .. })
        });
    assert!(msg.contains("overlap"), "{msg}");
    // Dangling node index and output slot.
    let msg = expect(program(vec![const_node("a", f32_ref(BASE, 16)), relu(7, 0)]), &|e| {
        matches!(e, NbError::BadReference { field: "inputs", .. })
    });
    assert!(msg.contains("node 1 'r'"), "{msg}");
    expect(program(vec![const_node("a", f32_ref(BASE, 16)), relu(0, 3)]), &|e| {
        matches!(e, NbError::BadReference { field: "inputs", .. })
    });
    // Graph outputs and inputs.
    let mut p = program(vec![const_node("a", f32_ref(BASE, 16))]);
    p.outputs.push(pb::Outlet { node: 5, slot: 0 });
    expect(p, &|e| matches!(e, NbError::BadReference { field: "outputs", .. }));
    let mut p = program(vec![const_node("a", f32_ref(BASE, 16))]);
    p.inputs.push(0);
    expect(p, &|e| matches!(e, NbError::BadReference { field: "inputs", .. }));
    // Bool bytes other than 0 and 1; unknown dtype codes.
    expect(program(vec![const_node("b", weights_tensor(pb::DataType::Bool, &[4], BASE + 192, 4))]), &|e| {
        matches!(e, NbError::BadTensor { .. })
    });
    let mut t = f32_ref(BASE, 16);
    t.dtype = 99;
    expect(program(vec![const_node("a", t)]), &|e| matches!(e, NbError::InvalidField { .. }));
    // A cycle through a forward reference fails graph validation.
    expect(program(vec![relu(0, 0)]), &|e| matches!(e, NbError::Graph(_)));
    // A weights reference without a weights section.
    let p = program(vec![const_node("a", f32_ref(BASE, 16))]).encode_to_vec();
    let sections =
        [SectionEntry { kind: SectionKind::Program, crc32: crc32fast::hash(&p), offset: BASE, length: p.len() as u64 }];
    let mut b = header::encode(0, &sections).unwrap();
    b.resize(BASE as usize, 0);
    b.extend_from_slice(&p);
    assert!(matches!(lithe_nbformat::read(&b), Err(NbError::MissingSection("weights"))));
}

#[test]
fn every_tensor_is_64_byte_aligned_and_usable_in_place() {
    let (_, mnv2) = golden_models().into_iter().find(|(n, _)| n == "mobilenet_v2").unwrap();
    for g in [all_ops_graph(), load_golden(&mnv2)] {
        let bytes = lithe_nbformat::write(&g, &meta()).unwrap();
        let info = lithe_nbformat::inspect(&bytes).unwrap();
        let w = info.sections.iter().find(|s| s.kind == SectionKind::Weights).unwrap();
        assert_eq!(w.offset % 64, 0);
        let p = info.sections.iter().find(|s| s.kind == SectionKind::Program).unwrap();
        let prog = pb::Program::decode(&bytes[p.offset as usize..p.end() as usize]).unwrap();
        let mut checked = 0;
        for (node, id) in prog.nodes.iter().zip(g.node_ids()) {
            let Some(pb::op::Kind::Const(t)) = node.op.as_ref().and_then(|o| o.kind.as_ref()) else { continue };
            let Some(pb::tensor::Data::Weights(r)) = &t.data else {
                panic!("Const data must be in the weights section")
            };
            assert_eq!(r.offset % 64, 0, "{}", node.name);
            assert!(r.offset >= w.offset && r.offset + r.length <= w.end());
            if let Op::Const(tensor) = &g.node(id).op
                && let TensorData::F32(a) = tensor.data()
            {
                let raw = &bytes[r.offset as usize..(r.offset + r.length) as usize];
                let in_place: Vec<f32> =
                    raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                assert_eq!(in_place, a.iter().copied().collect::<Vec<_>>(), "{}", node.name);
                checked += 1;
            }
        }
        assert!(checked > 10, "{checked}");
    }
}

#[test]
fn newer_minor_versions_are_read() {
    let g = all_ops_graph();
    let good = lithe_nbformat::write(&g, &meta()).unwrap();
    let mut b = good.clone();
    patch_header(&mut b, 10, &7u16.to_le_bytes());
    assert_eq!(lithe_nbformat::inspect(&b).unwrap().format_minor, 7);
    assert_same_graph(&g, &lithe_nbformat::read(&b).unwrap().0);

    // Optional flags (high 16 bits) are ignored; unknown required flags are rejected.
    let mut b = good.clone();
    patch_header(&mut b, 12, &0x0001_0000u32.to_le_bytes());
    assert!(lithe_nbformat::read(&b).is_ok());
    patch_header(&mut b, 12, &0x0000_0004u32.to_le_bytes());
    let e = lithe_nbformat::read(&b).unwrap_err();
    assert!(matches!(e, NbError::UnsupportedFlags { flags: 4 }), "{e}");

    // An unknown section kind is skipped; unknown protobuf fields are ignored.
    let info = lithe_nbformat::inspect(&good).unwrap();
    let mut sections = info.sections.clone();
    let extra = b"a section from the future".to_vec();
    sections.push(SectionEntry {
        kind: SectionKind::Unknown(77),
        crc32: crc32fast::hash(&extra),
        offset: good.len() as u64,
        length: extra.len() as u64,
    });
    let mut b = header::encode(0, &sections).unwrap();
    b.extend_from_slice(&good[b.len()..]);
    b.extend_from_slice(&extra);
    assert_same_graph(&g, &lithe_nbformat::read(&b).unwrap().0);

    let p = info.sections.iter().find(|s| s.kind == SectionKind::Program).unwrap();
    let mut prog = good[p.offset as usize..p.end() as usize].to_vec();
    prog.extend_from_slice(&[0xc0, 0x3e, 0x01]); // field 1000, varint 1
    let mut prog_msg = pb::Program::decode(&prog[..]).unwrap();
    assert_eq!(lithe_nbformat::read(&good).unwrap().1.passes, prog_msg.meta.as_ref().unwrap().passes);
    let mut b = good[..p.offset as usize].to_vec();
    b.extend_from_slice(&prog);
    patch_header(&mut b, 32 + 24 + 4, &crc32fast::hash(&prog).to_le_bytes());
    patch_header(&mut b, 32 + 24 + 16, &(prog.len() as u64).to_le_bytes());
    assert_same_graph(&g, &lithe_nbformat::read(&b).unwrap().0);

    // An operator added by a newer minor version is an error naming the node.
    prog_msg.nodes[5].op = Some(pb::Op { kind: None });
    let name = prog_msg.nodes[5].name.clone();
    let prog = prog_msg.encode_to_vec();
    let mut b = good[..p.offset as usize].to_vec();
    b.extend_from_slice(&prog);
    patch_header(&mut b, 32 + 24 + 4, &crc32fast::hash(&prog).to_le_bytes());
    patch_header(&mut b, 32 + 24 + 16, &(prog.len() as u64).to_le_bytes());
    let e = lithe_nbformat::read(&b).unwrap_err();
    assert!(matches!(&e, NbError::UnknownOp { context } if context == &format!("node 5 '{name}'")), "{e}");
    assert!(e.to_string().contains("upgrade lithe"));
}

#[test]
fn other_major_versions_are_rejected() {
    let good = lithe_nbformat::write(&all_ops_graph(), &meta()).unwrap();
    let mut b = good.clone();
    patch_header(&mut b, 8, &2u16.to_le_bytes());
    let e = lithe_nbformat::read(&b).unwrap_err();
    assert!(matches!(e, NbError::UnsupportedVersion { major: 2, supported: 1, .. }));
    assert_eq!(e.to_string(), "file format 2.x, this reader supports 1.x; upgrade lithe");
    // The major version is checked before anything else after the magic, so a 2.x header
    // may change every other field; and 0.x is not 1.x either.
    b[12..].fill(0xee);
    assert!(matches!(lithe_nbformat::read(&b), Err(NbError::UnsupportedVersion { major: 2, .. })));
    let mut b = good.clone();
    patch_header(&mut b, 8, &0u16.to_le_bytes());
    assert!(matches!(lithe_nbformat::read(&b), Err(NbError::UnsupportedVersion { major: 0, .. })));
}

#[test]
fn header_fields_are_reported() {
    let bytes = lithe_nbformat::write(&all_ops_graph(), &meta()).unwrap();
    let info = lithe_nbformat::inspect(&bytes).unwrap();
    assert_eq!((info.format_major, info.format_minor, info.flags), (1, 0, 0));
    assert_eq!(info.producer_version, header::producer_version());
    assert_eq!(&bytes[..8], b"LITHENB\0");
    let kinds: Vec<_> = info.sections.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [SectionKind::Weights, SectionKind::Program]);
    assert_eq!(info.sections[0].offset, 128);
    assert_eq!(info.sections[1].end(), bytes.len() as u64);
}
