//! `.npy` files and `.npz` archives (numpy's `savez`: a zip of `.npy` members), read whole into
//! tensors, and the conversions of arrays to samples and class labels. Errors name the file and,
//! inside an archive, the member.

use super::{data_error, io_error};
use crate::TrainError;
use lithe_ir::npy::{NpyError, parse_npy};
use lithe_ir::{DType, Tensor};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// `.npz` members larger than this (uncompressed) are refused.
pub const MAX_MEMBER_BYTES: u64 = 1 << 34;

/// Read one `.npy` file (every dtype [`lithe_ir::npy`] reads).
pub fn read_npy(path: &Path) -> Result<Tensor, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    parse_npy(&bytes).map_err(|e| data_error(path.display(), npy_reason(&e)))
}

/// Why `.npy` bytes were refused, for an error message.
fn npy_reason(e: &NpyError) -> String {
    match e {
        NpyError::Format(m) => format!("not a valid .npy: {m}"),
        e => e.to_string(),
    }
}

/// An open `.npz` archive: its members are listed on opening and read one at a time.
pub struct Npz {
    path: PathBuf,
    zip: zip::ZipArchive<BufReader<File>>,
    members: Vec<String>,
}

impl std::fmt::Debug for Npz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Npz").field("path", &self.path).field("members", &self.members).finish()
    }
}

impl Npz {
    /// Open the archive at `path` and list its members.
    pub fn open(path: &Path) -> Result<Self, TrainError> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        let zip = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| data_error(path.display(), format!("not a valid .npz (zip) archive: {e}")))?;
        let members = zip.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
        Ok(Npz { path: path.to_path_buf(), zip, members })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The member names, in archive order.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The member holding array `name`: `name.npy` (numpy's naming) or else `name` itself.
    pub fn member_for(&self, name: &str) -> Option<&str> {
        let npy = format!("{name}.npy");
        let found = self.members.iter().find(|m| **m == npy).or_else(|| self.members.iter().find(|m| *m == name));
        found.map(String::as_str)
    }

    /// Read the member named exactly `member` (see [`Npz::member_for`]). Errors name the archive
    /// and the member.
    pub fn read(&mut self, member: &str) -> Result<Tensor, TrainError> {
        let what = |reason: String| data_error(self.path.display(), format!("member '{member}': {reason}"));
        let mut entry = self.zip.by_name(member).map_err(|e| what(e.to_string()))?;
        let size = entry.size();
        if size > MAX_MEMBER_BYTES {
            return Err(what(format!("{size} bytes uncompressed exceeds the {MAX_MEMBER_BYTES}-byte limit")));
        }
        let mut bytes = Vec::with_capacity(size.min(1 << 30) as usize);
        (&mut entry)
            .take(MAX_MEMBER_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| what(format!("cannot decompress: {e}")))?;
        drop(entry);
        parse_npy(&bytes).map_err(|e| what(npy_reason(&e)))
    }
}

/// The values of a samples array as f32: any float dtype, or any integer dtype cast as is (u8
/// images keep their 0..=255 values). Booleans are refused; `what` names the file.
pub fn samples_f32(t: &Tensor, what: &str) -> Result<Vec<f32>, TrainError> {
    match t.dtype() {
        DType::F32 => Ok(t.to_f32_vec()),
        DType::Bool => Err(data_error(what, "samples of dtype Bool (expected a float or integer dtype)")),
        _ => Ok(t.cast(DType::F32).to_f32_vec()),
    }
}

/// Class labels from a 1-D array of any integer dtype (none negative); `what` names the file.
pub fn labels_usize(t: &Tensor, what: &str) -> Result<Vec<usize>, TrainError> {
    if matches!(t.dtype(), DType::F32 | DType::F16 | DType::Bool) {
        return Err(data_error(what, format!("labels of dtype {:?} (expected an integer dtype)", t.dtype())));
    }
    if t.shape().len() != 1 {
        return Err(data_error(what, format!("labels of shape {:?} (expected one dimension)", t.shape())));
    }
    t.to_i64_vec()
        .into_iter()
        .map(|l| usize::try_from(l).map_err(|_| data_error(what, format!("negative label {l}"))))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lithe_ir::npy::{to_npy_bytes, write_npy};
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    /// Write an archive of `(name, bytes)` members.
    pub(crate) fn write_zip(path: &Path, members: &[(&str, Vec<u8>)]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, bytes) in members {
            let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            zip.start_file(*name, opts).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    fn reason(err: TrainError, file: &str) -> String {
        match err {
            TrainError::Data { path, reason } if path.ends_with(file) => reason,
            other => panic!("expected a data error naming {file}, got {other}"),
        }
    }

    #[test]
    fn npz_members_are_found_by_name_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        let x = Tensor::from_vec(&[2, 2], vec![1f32, 2., 3., 4.]).unwrap();
        write_zip(&path, &[("x.npy", to_npy_bytes(&x)), ("raw", to_npy_bytes(&x))]);
        let mut npz = Npz::open(&path).unwrap();
        assert_eq!(npz.members(), ["x.npy", "raw"]);
        assert_eq!(
            (npz.member_for("x"), npz.member_for("raw"), npz.member_for("y")),
            (Some("x.npy"), Some("raw"), None)
        );
        assert_eq!(npz.read("x.npy").unwrap(), x);
        assert!(reason(npz.read("nope").unwrap_err(), "a.npz").starts_with("member 'nope'"));
        write_zip(&path, &[("x.npy", b"junk".to_vec())]);
        let r = reason(Npz::open(&path).unwrap().read("x.npy").unwrap_err(), "a.npz");
        assert!(r.starts_with("member 'x.npy': not a valid .npy"), "{r}");
        std::fs::write(&path, b"not a zip").unwrap();
        assert!(reason(Npz::open(&path).unwrap_err(), "a.npz").contains("not a valid .npz"));
    }

    #[test]
    fn samples_and_labels_convert_every_dtype() {
        let u8s = Tensor::from_vec(&[3], vec![0u8, 7, 255]).unwrap();
        assert_eq!(samples_f32(&u8s, "f").unwrap(), vec![0., 7., 255.]);
        let f16 = Tensor::from_vec(&[2], vec![0.5f32, -2.0]).unwrap().cast(DType::F16);
        assert_eq!(samples_f32(&f16, "f").unwrap(), vec![0.5, -2.0]);
        let bools = Tensor::from_vec(&[1], vec![true]).unwrap();
        assert!(reason(samples_f32(&bools, "f.npy").unwrap_err(), "f.npy").contains("Bool"));
        let want = vec![0usize, 3, 9];
        for dtype in [DType::U8, DType::I8, DType::I16, DType::I32, DType::I64] {
            let t = Tensor::from_vec(&[3], vec![0i64, 3, 9]).unwrap().cast(dtype);
            assert_eq!(labels_usize(&t, "l").unwrap(), want, "{dtype:?}");
        }
        // numpy's unsigned 16/32/64-bit labels come through lithe_ir::npy as i32/i64.
        let dir = tempfile::tempdir().unwrap();
        for (descr, width) in [("<u2", 2), ("<u4", 4), ("<u8", 8)] {
            let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (3,), }}");
            let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
            bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
            bytes.extend_from_slice(header.as_bytes());
            for v in [0u64, 3, 9] {
                bytes.extend_from_slice(&v.to_le_bytes()[..width]);
            }
            let p = dir.path().join(format!("labels_{width}.npy"));
            std::fs::write(&p, bytes).unwrap();
            assert_eq!(labels_usize(&read_npy(&p).unwrap(), "l").unwrap(), want, "{descr}");
        }
        let floats = Tensor::from_vec(&[3], vec![0f32, 3., 9.]).unwrap();
        assert!(reason(labels_usize(&floats, "l.npy").unwrap_err(), "l.npy").contains("dtype F32"));
        let two_d = Tensor::from_vec(&[1, 3], vec![0i64, 3, 9]).unwrap();
        assert!(reason(labels_usize(&two_d, "l.npy").unwrap_err(), "l.npy").contains("shape [1, 3]"));
        let negative = Tensor::from_vec(&[2], vec![1i32, -4]).unwrap();
        assert!(reason(labels_usize(&negative, "l.npy").unwrap_err(), "l.npy").contains("negative label -4"));
        // A file that is no .npy names the file.
        let p = dir.path().join("junk.npy");
        std::fs::write(&p, b"junk").unwrap();
        assert!(reason(read_npy(&p).unwrap_err(), "junk.npy").contains("not a valid .npy"));
        write_npy(&p, &floats).unwrap();
        assert_eq!(read_npy(&p).unwrap(), floats);
    }
}
