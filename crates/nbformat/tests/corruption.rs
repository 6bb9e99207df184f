//! Corrupted and truncated files: `read` returns Ok or Err, never panics, and reports a
//! checksum mismatch when a covered byte changed.

mod common;

use common::{all_ops_graph, golden_models, load_golden, meta};
use lithe_nbformat::{NbError, SectionKind, header};

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Recompute every section CRC and the header CRC (the layout of docs/nb-format.md).
pub fn fix_checksums(b: &mut [u8]) {
    let info = lithe_nbformat::inspect(b).ok();
    let count = u32_at(b, 24) as usize;
    let end = header::table_end(count);
    if let Some(info) = info {
        for (i, s) in info.sections.iter().enumerate() {
            let crc = crc32fast::hash(&b[s.offset as usize..s.end() as usize]);
            b[32 + 24 * i + 4..32 + 24 * i + 8].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let crc = header::header_crc(&b[..end]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
}

/// Which byte ranges a CRC covers: the header before its CRC field, the section table, and
/// every section.
fn covered(bytes: &[u8]) -> Vec<(usize, usize, String)> {
    let info = lithe_nbformat::inspect(bytes).unwrap();
    let end = header::table_end(info.sections.len());
    let mut v = vec![(0, 28, "header".to_string()), (32, end, "header".to_string())];
    for s in &info.sections {
        v.push((s.offset as usize, s.end() as usize, s.kind.describe()));
    }
    v
}

fn check_flip(bytes: &[u8], at: usize, mask: u8, regions: &[(usize, usize, String)]) {
    let mut b = bytes.to_vec();
    b[at] ^= mask;
    let r = lithe_nbformat::read(&b);
    if let Some((_, _, name)) = regions.iter().find(|(s, e, _)| (*s..*e).contains(&at)) {
        match r {
            Err(NbError::Checksum { section, .. }) => {
                let want = if name == "header" { "header and section table" } else { name.as_str() };
                assert_eq!(section, want, "byte {at}");
            }
            // The magic and the major version are checked before the header CRC.
            Err(NbError::BadMagic) if at < 8 => {}
            Err(NbError::UnsupportedVersion { .. }) if (8..10).contains(&at) => {}
            // The section count is checked against the file length before the CRC it bounds.
            Err(NbError::SectionTable(_) | NbError::Truncated { .. }) if (24..28).contains(&at) => {}
            other => panic!("flipping covered byte {at} ({name}) gave {other:?}"),
        }
    } else if (28..32).contains(&at) {
        assert!(matches!(r, Err(NbError::Checksum { .. })), "byte {at}: {r:?}");
    } else {
        // Padding between sections is not covered: the file still reads.
        assert!(r.is_ok(), "padding byte {at}: {r:?}");
    }
}

#[test]
fn flipping_any_byte_is_detected_or_harmless() {
    let bytes = lithe_nbformat::write(&all_ops_graph(), &meta()).unwrap();
    let regions = covered(&bytes);
    for at in 0..bytes.len() {
        check_flip(&bytes, at, 0xff, &regions);
    }
    // The padding before the weights section exists and is really uncovered.
    assert!(regions.iter().all(|(s, e, _)| !(*s..*e).contains(&100)));
}

#[test]
fn in_place_reads_without_weight_checksums_never_panic() {
    // The weights CRC unchecked, every flipped byte either fails cleanly or loads a graph
    // whose in-place tensors can all be read (a flip inside the weights is only a value).
    let bytes = lithe_nbformat::write(&all_ops_graph(), &meta()).unwrap();
    let options = lithe_nbformat::ReadOptions { verify_weights: false };
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0xff;
        if let Ok((g, _)) = lithe_nbformat::read_shared(lithe_nbformat::shared_copy(&b), &options) {
            for id in g.node_ids() {
                if let lithe_ir::Op::Const(t) = &g.node(id).op {
                    assert_eq!(lithe_ir::dispatch_tensor!(t.data(), a => a.len()), t.len());
                }
            }
        }
    }
}

#[test]
fn flipping_sampled_bytes_of_a_real_model_is_detected() {
    let (_, path) = golden_models().into_iter().find(|(n, _)| n == "mobilenet_v2").unwrap();
    let bytes = lithe_nbformat::write(&load_golden(&path), &meta()).unwrap();
    let regions = covered(&bytes);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let at = (state % bytes.len() as u64) as usize;
        check_flip(&bytes, at, 1 << (state >> 61), &regions);
    }
}

#[test]
fn corrupted_program_with_valid_checksums_never_panics() {
    // Flip each program byte and fix the CRCs so the corruption reaches the decoder.
    let bytes = lithe_nbformat::write(&all_ops_graph(), &meta()).unwrap();
    let info = lithe_nbformat::inspect(&bytes).unwrap();
    let p = info.sections.iter().find(|s| s.kind == SectionKind::Program).unwrap();
    let (mut ok, mut err) = (0, 0);
    for at in p.offset as usize..p.end() as usize {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[at] ^= mask;
            fix_checksums(&mut b);
            match lithe_nbformat::read(&b) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(!matches!(e, NbError::Checksum { .. }), "{e}");
                    err += 1;
                }
            }
        }
    }
    // Most flips hit names or float attributes (still a valid graph); many break structure.
    assert!(ok > 0 && err > 0, "ok {ok}, err {err}");
}

#[test]
fn corrupted_header_fields_with_valid_checksum_never_panic() {
    let bytes = lithe_nbformat::write(&all_ops_graph(), &meta()).unwrap();
    let end = header::table_end(2);
    for at in 8..end {
        if (28..32).contains(&at) {
            continue;
        }
        for v in [0x00u8, 0x01, 0x40, 0x7f, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[at] = v;
            let crc = header::header_crc(&b[..end]);
            b[28..32].copy_from_slice(&crc.to_le_bytes());
            let _ = lithe_nbformat::read(&b);
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = lithe_nbformat::write(&all_ops_graph(), &meta()).unwrap();
    for n in 0..bytes.len() {
        match lithe_nbformat::read(&bytes[..n]) {
            Err(NbError::Truncated { .. }) => {}
            other => panic!("prefix of {n} bytes gave {other:?}"),
        }
    }
    assert!(lithe_nbformat::read(&bytes).is_ok());
}

#[test]
fn truncations_of_a_real_model_are_errors() {
    let (_, path) = golden_models().into_iter().find(|(n, _)| n == "mobilenet_v1").unwrap();
    let bytes = lithe_nbformat::write(&load_golden(&path), &meta()).unwrap();
    let step = bytes.len() / 97;
    for n in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
        assert!(matches!(lithe_nbformat::read(&bytes[..n]), Err(NbError::Truncated { .. })), "prefix {n}");
    }
}

#[test]
fn not_a_nb_file() {
    assert!(matches!(lithe_nbformat::read(b"\x08\x07\x12\x04onnx"), Err(NbError::BadMagic)));
    assert!(matches!(lithe_nbformat::read(b""), Err(NbError::Truncated { .. })));
    assert!(matches!(lithe_nbformat::read(b"LITHE"), Err(NbError::Truncated { .. })));
    assert!(!lithe_nbformat::has_magic(b"LITHENB"));
    assert!(lithe_nbformat::has_magic(b"LITHENB\0\x01\x00"));
}
