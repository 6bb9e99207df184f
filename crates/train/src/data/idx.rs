//! IDX files (the MNIST format): a magic, big-endian dimensions, then u8 values.

use super::{data_error, io_error};
use crate::TrainError;
use std::path::Path;

/// Largest IDX payload read (bytes), against hostile headers.
const MAX_IDX_BYTES: usize = 1 << 31;

/// An IDX file: dims and the u8 payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, first the sample count.
    pub dims: Vec<usize>,
    /// Row-major u8 values.
    pub data: Vec<u8>,
}

/// Parse IDX bytes: `00 00 08 rank`, one big-endian u32 per dimension, then u8 data. Only the
/// unsigned-byte type (0x08) is read; trailing bytes are an error. `what` names the file.
pub fn parse_idx(what: &str, bytes: &[u8]) -> Result<Idx, TrainError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(data_error(what, "not an IDX file (bad magic)"));
    }
    if bytes[2] != 0x08 {
        return Err(data_error(what, format!("IDX element type 0x{:02x} (only u8, 0x08, is read)", bytes[2])));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(data_error(what, format!("IDX header of rank {rank} is truncated")));
    }
    let dims: Vec<usize> =
        bytes[4..header].chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize).collect();
    let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&l| l <= MAX_IDX_BYTES);
    let Some(len) = len else {
        return Err(data_error(what, format!("IDX dims {dims:?} exceed {MAX_IDX_BYTES} bytes")));
    };
    if bytes.len() - header != len {
        return Err(data_error(
            what,
            format!("IDX dims {dims:?} need {len} data bytes, the file has {}", bytes.len() - header),
        ));
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}

/// Read and parse an IDX file.
pub fn read_idx(path: &Path) -> Result<Idx, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    parse_idx(&path.display().to_string(), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    fn reason(r: Result<Idx, TrainError>) -> String {
        match r {
            Err(TrainError::Data { path, reason }) => {
                assert_eq!(path, "t.idx");
                reason
            }
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn parses_and_rejects_malformed_files() {
        let ok = parse_idx("t.idx", &idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!((ok.dims, ok.data), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
        assert!(reason(parse_idx("t.idx", &idx(&[2, 3], &[1, 2, 3]))).contains("need 6 data bytes, the file has 3"));
        assert!(reason(parse_idx("t.idx", &idx(&[2, 3], &[0; 7]))).contains("the file has 7"));
        assert!(reason(parse_idx("t.idx", &[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0])).contains("0x0d"));
        assert!(reason(parse_idx("t.idx", &[1, 0, 8, 1])).contains("magic"));
        assert!(reason(parse_idx("t.idx", &[0, 0, 8, 2, 0, 0])).contains("truncated"));
        assert!(reason(parse_idx("t.idx", &idx(&[u32::MAX, u32::MAX, u32::MAX], &[]))).contains("exceed"));
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let err = read_idx(Path::new("no/such/file.idx")).unwrap_err();
        assert!(matches!(&err, TrainError::Io { path, .. } if path.ends_with("file.idx")), "{err}");
    }
}
