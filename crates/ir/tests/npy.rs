//! Reading and writing `.npy` files, including files written by numpy and hostile input.

use half::f16;
use lithe_ir::npy::{NpyError, parse_npy, read_npy, to_npy_bytes, write_npy};
use lithe_ir::{DType, Tensor};
use proptest::prelude::*;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lithe-ir-npy-{}-{name}", std::process::id()))
}

fn samples() -> Vec<Tensor> {
    vec![
        Tensor::from_vec(&[2, 3], vec![0.5f32, -1.0, 3.25, f32::MAX, f32::MIN_POSITIVE, -0.0]).unwrap(),
        Tensor::from_vec(&[3], vec![f16::from_f32(0.5), f16::from_f32(-2.0), f16::MAX]).unwrap(),
        Tensor::from_vec(&[2, 2], vec![-128i8, 127, 0, -1]).unwrap(),
        Tensor::from_vec(&[4], vec![0u8, 1, 200, 255]).unwrap(),
        Tensor::from_vec(&[1, 3], vec![i16::MIN, 7, i16::MAX]).unwrap(),
        Tensor::from_vec(&[3, 1, 1], vec![i32::MIN, -5, i32::MAX]).unwrap(),
        Tensor::from_vec(&[2], vec![i64::MIN, i64::MAX]).unwrap(),
        Tensor::from_vec(&[2, 2], vec![true, false, false, true]).unwrap(),
        Tensor::scalar(42i64),
        Tensor::zeros(DType::F32, &[0, 3]),
    ]
}

#[test]
fn round_trip_every_dtype() {
    let mut seen = Vec::new();
    for t in samples() {
        let bytes = to_npy_bytes(&t);
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!(header_end % 64, 0, "data starts on a 64-byte boundary");
        assert_eq!(bytes[header_end - 1], b'\n');
        assert_eq!(bytes.len(), header_end + t.size_bytes());
        let back = parse_npy(&bytes).unwrap();
        assert_eq!(back, t);
        seen.push(t.dtype());
    }
    for d in DType::ALL {
        assert!(seen.contains(&d), "{d} covered");
    }
}

#[test]
fn file_round_trip_and_io_errors() {
    let path = temp("rt.npy");
    let t = Tensor::from_vec(&[2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    write_npy(&path, &t).unwrap();
    assert_eq!(read_npy(&path).unwrap(), t);
    std::fs::remove_file(&path).unwrap();
    let e = read_npy(&path).unwrap_err();
    assert!(matches!(e, NpyError::Io { .. }));
    assert!(e.to_string().contains("lithe-ir-npy"), "{e}");
    let e = write_npy(&temp("no-such-dir").join("x.npy"), &t).unwrap_err();
    assert!(matches!(e, NpyError::Io { .. }));
}

#[test]
fn reads_files_written_by_numpy() {
    let f4 = read_npy(&data("f4_2x3.npy")).unwrap();
    assert_eq!(f4, Tensor::from_vec(&[2, 3], vec![0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5]).unwrap());
    // Fortran order comes back in C order.
    let ff = read_npy(&data("f4_fortran_2x3.npy")).unwrap();
    assert_eq!(ff, Tensor::from_vec(&[2, 3], vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap());
    assert!(ff.as_f32().unwrap().is_standard_layout());
    // float64 becomes f32 (1e40 overflows to infinity).
    let f8 = read_npy(&data("f8_3.npy")).unwrap();
    assert_eq!(f8.dtype(), DType::F32);
    assert_eq!(f8.to_f32_vec(), vec![1.5, -2.25, f32::INFINITY]);
    let be = read_npy(&data("i4_be_2x2.npy")).unwrap();
    assert_eq!(be, Tensor::from_vec(&[2, 2], vec![1i32, -2, 300000, -4]).unwrap());
    let h = read_npy(&data("f2_be_3.npy")).unwrap();
    assert_eq!(h.to_f32_vec(), vec![0.5, -1.0, 65504.0]);
    assert_eq!(h.dtype(), DType::F16);
    assert_eq!(read_npy(&data("b1_4.npy")).unwrap(), Tensor::from_vec(&[4], vec![true, false, false, true]).unwrap());
    assert_eq!(read_npy(&data("i8_scalar.npy")).unwrap(), Tensor::scalar(-7i64));
    assert_eq!(read_npy(&data("u1_0x3.npy")).unwrap(), Tensor::zeros(DType::U8, &[0, 3]));
    for v in ["i2_v2.npy", "i2_v3.npy"] {
        assert_eq!(read_npy(&data(v)).unwrap(), Tensor::from_vec(&[4], vec![0i16, 1, 2, 3]).unwrap());
    }
}

#[test]
fn reads_unsigned_wider_than_a_byte_as_signed() {
    let h = |d: &str| format!("{{'descr': '{d}', 'fortran_order': False, 'shape': (2,), }}");
    let u2 = [7u16.to_le_bytes(), u16::MAX.to_le_bytes()].concat();
    assert_eq!(parse_npy(&with_header(&h("<u2"), &u2)).unwrap(), Tensor::from_vec(&[2], vec![7i32, 65535]).unwrap());
    let u4 = [3u32.to_be_bytes(), u32::MAX.to_be_bytes()].concat();
    let want = Tensor::from_vec(&[2], vec![3i64, u32::MAX as i64]).unwrap();
    assert_eq!(parse_npy(&with_header(&h(">u4"), &u4)).unwrap(), want);
    let u8 = [9u64.to_le_bytes(), (i64::MAX as u64).to_le_bytes()].concat();
    assert_eq!(parse_npy(&with_header(&h("<u8"), &u8)).unwrap(), Tensor::from_vec(&[2], vec![9i64, i64::MAX]).unwrap());
}

/// A v1 file with the given header text and data bytes.
fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

fn format_err(bytes: &[u8]) -> String {
    match parse_npy(bytes) {
        Err(NpyError::Format(m)) => m,
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn rejects_hostile_files() {
    let valid = std::fs::read(data("f4_2x3.npy")).unwrap();
    // Every truncation fails cleanly.
    for n in 0..valid.len() {
        assert!(parse_npy(&valid[..n]).is_err(), "truncated to {n} bytes");
    }
    assert!(format_err(&valid[..valid.len() - 1]).contains("needs 24 data bytes"));
    assert!(format_err(b"NUMPY\x01\x00").contains("magic"));
    assert!(format_err(b"\x93NUMPY\x04\x00\x10\x00").contains("version 4.0"));
    // A header length far beyond the file.
    let mut huge = b"\x93NUMPY\x02\x00".to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(format_err(&huge).contains("header length"));
    let mut long = b"\x93NUMPY\x02\x00".to_vec();
    long.extend_from_slice(&1000u32.to_le_bytes());
    long.extend_from_slice(b"{'descr'");
    assert!(format_err(&long).contains("does not fit"));
    // Shapes whose element count overflows or exceeds the data.
    let big = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({0}, {0}, {0}), }}", 1u64 << 40);
    assert!(format_err(&with_header(&big, &[])).contains("too"));
    let more = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }";
    assert!(format_err(&with_header(more, &[0; 16])).contains("needs 4000000000 data bytes"));
    let zero_huge = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': (0, {}, 2), }}", i64::MAX);
    assert!(parse_npy(&with_header(&zero_huge, &[])).is_err());
    // Malformed headers.
    for h in [
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': 1, 'shape': (2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} extra",
        "{'descr': '<f4 , 'fortran_order': False, 'shape': (2,)}",
        "[1, 2]",
        "((((((((((((((((((((((((((((((((((((((((((((",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)",
        "",
    ] {
        assert!(matches!(parse_npy(&with_header(h, &[0; 8])), Err(NpyError::Format(_))), "{h}");
    }
    // Unsupported dtypes name the descr.
    for d in ["'<c8'", "'<m8'", "'|O'", "'<U3'", "[['a', '<f4']]", "'>f16'"] {
        let h = format!("{{'descr': {d}, 'fortran_order': False, 'shape': (1,), }}");
        match parse_npy(&with_header(&h, &[0; 16])) {
            Err(NpyError::UnsupportedDType(s)) => assert!(d.contains(&s), "{d} vs {s}"),
            other => panic!("{d}: {other:?}"),
        }
    }
    let structured = "{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (1,), }";
    assert!(
        matches!(parse_npy(&with_header(structured, &[0; 12])), Err(NpyError::UnsupportedDType(s)) if s.contains("'b'"))
    );
    // u8 values beyond i64 are a format error (u2, u4 and smaller u8 values are read exactly).
    let u8_header = "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }";
    assert!(format_err(&with_header(u8_header, &u64::MAX.to_le_bytes())).contains("exceeds the i64 range"));
    assert!(matches!(
        parse_npy(&with_header("{'descr': 'f4', 'fortran_order': False, 'shape': (1,), }", &[0; 4])),
        Err(NpyError::Format(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), magic in any::<bool>()) {
        let mut b = if magic { b"\x93NUMPY\x01\x00".to_vec() } else { Vec::new() };
        b.extend_from_slice(&bytes);
        let _ = parse_npy(&b);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        which in 0usize..10,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut b = to_npy_bytes(&samples()[which]);
        for (i, v) in flips {
            let i = i.index(b.len());
            b[i] = v;
        }
        let n = cut.index(b.len() + 1);
        let _ = parse_npy(&b[..n]);
        let _ = parse_npy(&b);
    }

    #[test]
    fn round_trip_random_f32(shape in proptest::collection::vec(0usize..4, 0..4), seed in any::<u32>()) {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| (i as f32 + seed as f32) * 0.25 - 3.0).collect();
        let t = Tensor::from_vec(&shape, v).unwrap();
        prop_assert_eq!(parse_npy(&to_npy_bytes(&t)).unwrap(), t);
    }
}
