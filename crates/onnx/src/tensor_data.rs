//! `TensorProto` to [`Tensor`]: raw little-endian data, the typed repeated fields and external
//! data files.

use crate::OnnxError;
use crate::proto::TensorProto;
use crate::proto::tensor_proto::DataLocation;
use crate::types::{checked_count, checked_dim, dtype_from_onnx};
use half::f16;
use lithe_ir::{DType, Tensor};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// Convert a `TensorProto` to a tensor. `base_dir` is the directory external data paths are
/// relative to (`None` rejects external data).
pub(crate) fn tensor_from_proto(t: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor, OnnxError> {
    let name = if t.name.is_empty() { "<unnamed>" } else { t.name.as_str() };
    let err = |m: String| OnnxError::tensor(name, m);
    let dtype = dtype_from_onnx(t.data_type).map_err(err)?;
    let dims = t.dims.iter().map(|&d| checked_dim(d)).collect::<Result<Vec<_>, _>>().map_err(err)?;
    let n = checked_count(&dims).map_err(err)?;
    let nbytes = n.checked_mul(dtype.size_bytes()).ok_or_else(|| err(format!("shape {dims:?} is too large")))?;
    let external = t.data_location == Some(DataLocation::External as i32);
    if external {
        let bytes = read_external(t, base_dir, nbytes).map_err(err)?;
        return from_le_bytes(dtype, &dims, &bytes).map_err(err);
    }
    if !t.raw_data.is_empty() {
        if t.raw_data.len() != nbytes {
            return Err(err(format!(
                "raw_data has {} bytes, shape {dims:?} of {dtype} needs {nbytes}",
                t.raw_data.len()
            )));
        }
        return from_le_bytes(dtype, &dims, &t.raw_data).map_err(err);
    }
    from_typed_fields(t, dtype, &dims, n).map_err(err)
}

fn check_len(field: &str, len: usize, n: usize, dims: &[usize]) -> Result<(), String> {
    if len != n {
        return Err(format!("{field} has {len} elements, shape {dims:?} needs {n}"));
    }
    Ok(())
}

fn from_typed_fields(t: &TensorProto, dtype: DType, dims: &[usize], n: usize) -> Result<Tensor, String> {
    let ir = |r: Result<Tensor, lithe_ir::IrError>| r.map_err(|e| e.to_string());
    match dtype {
        DType::F32 => {
            check_len("float_data", t.float_data.len(), n, dims)?;
            ir(Tensor::from_vec(dims, t.float_data.clone()))
        }
        DType::I64 => {
            check_len("int64_data", t.int64_data.len(), n, dims)?;
            ir(Tensor::from_vec(dims, t.int64_data.clone()))
        }
        _ => {
            check_len("int32_data", t.int32_data.len(), n, dims)?;
            let v = &t.int32_data;
            let range = |x: &i32| format!("int32_data value {x} is out of range for {dtype}");
            match dtype {
                DType::I32 => ir(Tensor::from_vec(dims, v.clone())),
                DType::I16 => {
                    let d = v.iter().map(|x| i16::try_from(*x).map_err(|_| range(x))).collect::<Result<Vec<_>, _>>()?;
                    ir(Tensor::from_vec(dims, d))
                }
                DType::I8 => {
                    let d = v.iter().map(|x| i8::try_from(*x).map_err(|_| range(x))).collect::<Result<Vec<_>, _>>()?;
                    ir(Tensor::from_vec(dims, d))
                }
                DType::U8 => {
                    let d = v.iter().map(|x| u8::try_from(*x).map_err(|_| range(x))).collect::<Result<Vec<_>, _>>()?;
                    ir(Tensor::from_vec(dims, d))
                }
                DType::Bool => ir(Tensor::from_vec(dims, v.iter().map(|&x| x != 0).collect())),
                DType::F16 => {
                    let d = v
                        .iter()
                        .map(|x| u16::try_from(*x).map(f16::from_bits).map_err(|_| range(x)))
                        .collect::<Result<Vec<_>, _>>()?;
                    ir(Tensor::from_vec(dims, d))
                }
                // F32 and I64 are handled above.
                DType::F32 | DType::I64 => Err(format!("internal: unexpected dtype {dtype}")),
            }
        }
    }
}

/// Decode little-endian fixed-width elements (bools one byte each).
pub(crate) fn from_le_bytes(dtype: DType, dims: &[usize], b: &[u8]) -> Result<Tensor, String> {
    let n = checked_count(dims)?;
    let need = n.checked_mul(dtype.size_bytes()).ok_or("tensor too large")?;
    if b.len() != need {
        return Err(format!("data has {} bytes, shape {dims:?} of {dtype} needs {need}", b.len()));
    }
    macro_rules! le {
        ($t:ty, $w:expr) => {
            b.chunks_exact($w)
                .map(|c| {
                    let mut a = [0u8; $w];
                    a.copy_from_slice(c);
                    <$t>::from_le_bytes(a)
                })
                .collect::<Vec<$t>>()
        };
    }
    let r = match dtype {
        DType::F32 => Tensor::from_vec(dims, le!(f32, 4)),
        DType::F16 => Tensor::from_vec(dims, le!(u16, 2).into_iter().map(f16::from_bits).collect()),
        DType::I8 => Tensor::from_vec(dims, b.iter().map(|&x| x as i8).collect()),
        DType::U8 => Tensor::from_vec(dims, b.to_vec()),
        DType::I16 => Tensor::from_vec(dims, le!(i16, 2)),
        DType::I32 => Tensor::from_vec(dims, le!(i32, 4)),
        DType::I64 => Tensor::from_vec(dims, le!(i64, 8)),
        DType::Bool => Tensor::from_vec(dims, b.iter().map(|&x| x != 0).collect()),
    };
    r.map_err(|e| e.to_string())
}

fn parse_size(key: &str, v: &str) -> Result<u64, String> {
    v.trim().parse::<u64>().map_err(|_| format!("external data '{key}' value '{v}' is not a non-negative integer"))
}

/// Resolve an external data location relative to `base`, refusing paths that leave it.
fn resolve_location(base: &Path, location: &str) -> Result<PathBuf, String> {
    if location.is_empty() {
        return Err("external data 'location' is empty".into());
    }
    let rel = Path::new(location);
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("external data location '{location}' must not contain '..'"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("external data location '{location}' must be a relative path"));
            }
        }
    }
    let path = base.join(rel);
    // Symlinks could still lead outside the model's directory; compare canonical paths.
    let canon_base = base.canonicalize().map_err(|e| format!("model directory '{}': {e}", base.display()))?;
    let canon = path.canonicalize().map_err(|e| format!("external data file '{}': {e}", path.display()))?;
    if !canon.starts_with(&canon_base) {
        return Err(format!("external data location '{location}' resolves outside the model's directory"));
    }
    Ok(canon)
}

fn read_external(t: &TensorProto, base_dir: Option<&Path>, nbytes: usize) -> Result<Vec<u8>, String> {
    let mut location = None;
    let mut offset = 0u64;
    let mut length = None;
    for e in &t.external_data {
        match e.key.as_str() {
            "location" => location = Some(e.value.as_str()),
            "offset" => offset = parse_size("offset", &e.value)?,
            "length" => length = Some(parse_size("length", &e.value)?),
            _ => {}
        }
    }
    let location = location.ok_or("external data has no 'location' entry")?;
    let base = base_dir
        .ok_or_else(|| format!("data is stored in external file '{location}', but the model's directory is unknown"))?;
    let path = resolve_location(base, location)?;
    let shown = path.display();
    let want = nbytes as u64;
    if let Some(len) = length
        && len != want
    {
        return Err(format!("external data length {len} does not match the {want} bytes the shape needs"));
    }
    let mut f = File::open(&path).map_err(|e| format!("cannot open external data file '{shown}': {e}"))?;
    let file_len = f.metadata().map_err(|e| format!("external data file '{shown}': {e}"))?.len();
    let end = offset.checked_add(want).ok_or("external data offset overflows")?;
    if end > file_len {
        return Err(format!(
            "external data file '{shown}' has {file_len} bytes, the tensor needs bytes {offset}..{end}"
        ));
    }
    f.seek(SeekFrom::Start(offset)).map_err(|e| format!("external data file '{shown}': {e}"))?;
    let mut buf = vec![0u8; nbytes];
    f.read_exact(&mut buf).map_err(|e| format!("reading external data file '{shown}': {e}"))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(dtype: i32, dims: &[i64]) -> TensorProto {
        TensorProto { name: "t".into(), data_type: dtype, dims: dims.to_vec(), ..Default::default() }
    }

    #[test]
    fn raw_f32_and_i64() {
        let mut t = proto(1, &[2]);
        t.raw_data = [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat();
        let x = tensor_from_proto(&t, None).unwrap();
        assert_eq!(x.to_f32_vec(), vec![1.5, -2.0]);
        let mut t = proto(7, &[1, 2]);
        t.raw_data = [7i64.to_le_bytes(), (-9i64).to_le_bytes()].concat();
        let x = tensor_from_proto(&t, None).unwrap();
        assert_eq!(x.shape(), &[1, 2]);
        assert_eq!(x.to_i64_vec(), vec![7, -9]);
    }

    #[test]
    fn typed_fields() {
        let mut t = proto(3, &[3]);
        t.int32_data = vec![-1, 2, 127];
        assert_eq!(tensor_from_proto(&t, None).unwrap().to_i64_vec(), vec![-1, 2, 127]);
        t.int32_data = vec![-1, 2, 300];
        let e = tensor_from_proto(&t, None).unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
        let mut t = proto(10, &[1]);
        t.int32_data = vec![i32::from(f16::from_f32(0.5).to_bits())];
        assert_eq!(tensor_from_proto(&t, None).unwrap().to_f32_vec(), vec![0.5]);
        let mut t = proto(9, &[2]);
        t.int32_data = vec![0, 1];
        assert_eq!(tensor_from_proto(&t, None).unwrap().to_i64_vec(), vec![0, 1]);
    }

    #[test]
    fn length_mismatch_and_bad_dims() {
        let mut t = proto(1, &[3]);
        t.float_data = vec![1.0, 2.0];
        let e = tensor_from_proto(&t, None).unwrap_err().to_string();
        assert!(e.contains("float_data has 2 elements"), "{e}");
        let t = proto(1, &[-1]);
        assert!(tensor_from_proto(&t, None).unwrap_err().to_string().contains("negative"));
        let t = proto(1, &[1 << 31, 1 << 31]);
        assert!(tensor_from_proto(&t, None).is_err());
        let mut t = proto(11, &[1]);
        t.double_data = vec![1.0];
        assert!(tensor_from_proto(&t, None).unwrap_err().to_string().contains("DOUBLE"));
    }

    #[test]
    fn empty_tensor() {
        let t = proto(1, &[0, 4]);
        let x = tensor_from_proto(&t, None).unwrap();
        assert_eq!(x.shape(), &[0, 4]);
    }

    #[test]
    fn location_checks() {
        let dir = std::env::temp_dir();
        assert!(resolve_location(&dir, "../x").unwrap_err().contains(".."));
        assert!(resolve_location(&dir, "/etc/passwd").unwrap_err().contains("relative"));
        assert!(resolve_location(&dir, "").is_err());
    }
}
