//! Reading and writing NumPy `.npy` files.
//!
//! Reading accepts format versions 1.0, 2.0 and 3.0, little- and big-endian data, C and
//! Fortran order (Fortran-order data is converted to C order), and the dtypes
//! `f4 f2 i1 u1 i2 i4 i8 b1`, which map to [`DType`]. `f8` (float64, numpy's default float
//! type) is also read and converted to f32: precision is lost and values outside the f32
//! range become infinities. The unsigned `u2` and `u4` are read as i32 and i64 (exactly), `u8`
//! as i64 (values above `i64::MAX` are a format error). Any other dtype (including structured
//! dtypes and object arrays) is rejected with [`NpyError::UnsupportedDType`].
//!
//! Untrusted files never panic and never allocate more than their size justifies: the
//! header length, the header itself and the element count are checked against the bytes
//! actually present.
//!
//! Writing produces version 1.0 (2.0 if the header does not fit), little-endian, C order.
//! Quantization parameters of a tensor are not stored.

use crate::{DType, Tensor, TensorData};
use half::f16;
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors reading or writing `.npy` files.
#[derive(Debug, Error)]
pub enum NpyError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid `.npy` file; the message says what is wrong.
    #[error("invalid .npy data: {0}")]
    Format(String),
    /// The file's dtype has no IR equivalent.
    #[error("unsupported .npy dtype '{0}' (supported: f4 f2 f8 i1 u1 i2 u2 i4 u4 i8 u8 b1)")]
    UnsupportedDType(String),
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Headers longer than this are rejected (numpy itself refuses headers over 10 kB by default).
const MAX_HEADER_LEN: usize = 1 << 20;

/// Maximum number of dimensions (numpy's own limit).
const MAX_RANK: usize = 64;

/// Maximum nesting of tuples/lists/dicts in a header.
const MAX_DEPTH: usize = 8;

/// Read a `.npy` file. float64 data is converted to f32 (see the module docs); format
/// errors name the file.
pub fn read_npy(path: &Path) -> Result<Tensor, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: path.to_path_buf(), source })?;
    parse_npy(&bytes).map_err(|e| match e {
        NpyError::Format(m) => NpyError::Format(format!("{}: {m}", path.display())),
        e => e,
    })
}

/// Write a tensor to a `.npy` file.
pub fn write_npy(path: &Path, t: &Tensor) -> Result<(), NpyError> {
    std::fs::write(path, to_npy_bytes(t)).map_err(|source| NpyError::Io { path: path.to_path_buf(), source })
}

/// Encode a tensor as the bytes of a `.npy` file.
pub fn to_npy_bytes(t: &Tensor) -> Vec<u8> {
    let descr = match t.dtype() {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::I8 => "|i1",
        DType::U8 => "|u1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::Bool => "|b1",
    };
    let shape = match t.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        s => format!("({})", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Version 1.0 has a 2-byte header length; the whole preamble is padded to 64 bytes.
    let (major, len_bytes) = if header.len() + 11 + 64 <= u16::MAX as usize { (1u8, 2) } else { (2u8, 4) };
    let prefix = MAGIC.len() + 2 + len_bytes;
    let total = (prefix + header.len() + 1).div_ceil(64) * 64;
    while prefix + header.len() + 1 < total {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(total + t.size_bytes());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[major, 0]);
    if len_bytes == 2 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    match t.data() {
        TensorData::F32(a) => a.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        TensorData::F16(a) => a.iter().for_each(|v| out.extend_from_slice(&v.to_bits().to_le_bytes())),
        TensorData::I8(a) => a.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        TensorData::U8(a) => a.iter().for_each(|v| out.push(*v)),
        TensorData::I16(a) => a.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        TensorData::I32(a) => a.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        TensorData::I64(a) => a.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        TensorData::Bool(a) => a.iter().for_each(|v| out.push(u8::from(*v))),
    }
    out
}

/// Parse the bytes of a `.npy` file. float64 data is converted to f32; Fortran-order data
/// is returned in C order.
pub fn parse_npy(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let fmt = |m: String| NpyError::Format(m);
    if bytes.len() < MAGIC.len() + 2 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(fmt("missing the \\x93NUMPY magic string".into()));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let len_bytes = match major {
        1 => 2,
        2 | 3 => 4,
        _ => return Err(fmt(format!("unsupported format version {major}.{minor}"))),
    };
    let len_field = bytes
        .get(8..8 + len_bytes)
        .ok_or_else(|| fmt(format!("file ends inside the header length ({} bytes)", bytes.len())))?;
    let header_len = match *len_field {
        [a, b] => u16::from_le_bytes([a, b]) as usize,
        [a, b, c, d] => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => return Err(fmt("bad header length field".into())),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(fmt(format!("header length {header_len} exceeds the {MAX_HEADER_LEN}-byte limit")));
    }
    let start = 8 + len_bytes;
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| fmt(format!("header of {header_len} bytes does not fit in the {}-byte file", bytes.len())))?;
    let text: String = if major == 3 {
        std::str::from_utf8(header).map_err(|_| fmt("header is not valid UTF-8".into()))?.to_string()
    } else {
        header.iter().map(|&b| b as char).collect()
    };
    let h = parse_header(&text)?;
    let data = &bytes[start + header_len..];
    decode(&h, data)
}

/// What the header says.
#[derive(Debug)]
struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
}

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug)]
enum Py {
    Str(String),
    Bool(bool),
    Int(i64),
    None,
    Seq(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn err(&self, what: &str) -> NpyError {
        NpyError::Format(format!("header: {what} at byte {}", self.pos))
    }

    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Py, NpyError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                let begin = self.pos;
                while self.s.get(self.pos).is_some_and(|&c| c != q) {
                    if self.s.get(self.pos) == Some(&b'\\') {
                        return Err(self.err("escape sequences are not supported in strings"));
                    }
                    self.pos += 1;
                }
                if self.pos >= self.s.len() {
                    return Err(self.err("unterminated string"));
                }
                let v = String::from_utf8_lossy(&self.s[begin..self.pos]).into_owned();
                self.pos += 1;
                Ok(Py::Str(v))
            }
            Some(open @ (b'(' | b'[')) => {
                self.pos += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') {
                        if self.eat(close) {
                            break;
                        }
                        return Err(self.err("expected ',' or a closing bracket"));
                    }
                }
                Ok(Py::Seq(items))
            }
            Some(b'{') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b'}') {
                        break;
                    }
                    let k = self.value(depth + 1)?;
                    if !self.eat(b':') {
                        return Err(self.err("expected ':'"));
                    }
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            break;
                        }
                        return Err(self.err("expected ',' or '}'"));
                    }
                }
                Ok(Py::Dict(items))
            }
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let begin = self.pos;
                self.pos += 1;
                while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.s[begin..self.pos]).unwrap_or("");
                let v = text.parse::<i64>().map_err(|_| self.err(&format!("bad integer '{text}'")))?;
                // Python 2 long suffix, written by old numpy versions.
                if self.s.get(self.pos) == Some(&b'L') {
                    self.pos += 1;
                }
                Ok(Py::Int(v))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let begin = self.pos;
                while self.s.get(self.pos).is_some_and(u8::is_ascii_alphanumeric) {
                    self.pos += 1;
                }
                match &self.s[begin..self.pos] {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    w => Err(self.err(&format!("unexpected word '{}'", String::from_utf8_lossy(w)))),
                }
            }
            Some(c) => Err(self.err(&format!("unexpected character '{}'", c as char))),
            None => Err(self.err("unexpected end")),
        }
    }
}

/// Python-like text of a parsed literal, for messages.
fn show_py(v: &Py) -> String {
    match v {
        Py::Str(s) => format!("'{s}'"),
        Py::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Py::Int(i) => i.to_string(),
        Py::None => "None".to_string(),
        Py::Seq(items) => format!("[{}]", items.iter().map(show_py).collect::<Vec<_>>().join(", ")),
        Py::Dict(items) => format!(
            "{{{}}}",
            items.iter().map(|(k, v)| format!("{}: {}", show_py(k), show_py(v))).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn parse_header(text: &str) -> Result<Header, NpyError> {
    let fmt = |m: String| NpyError::Format(m);
    let mut lx = Lexer { s: text.as_bytes(), pos: 0 };
    let Py::Dict(items) = lx.value(0)? else {
        return Err(fmt(format!("header is not a dict: {}", text.trim())));
    };
    if lx.peek().is_some() {
        return Err(lx.err("trailing characters after the header dict"));
    }
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (k, v) in items {
        let Py::Str(k) = k else { return Err(fmt("header keys must be strings".into())) };
        match k.as_str() {
            "descr" => match v {
                Py::Str(s) => descr = Some(s),
                other => return Err(NpyError::UnsupportedDType(show_py(&other))),
            },
            "fortran_order" => match v {
                Py::Bool(b) => fortran = Some(b),
                _ => return Err(fmt("fortran_order must be True or False".into())),
            },
            "shape" => {
                let Py::Seq(dims) = v else { return Err(fmt("shape must be a tuple".into())) };
                let mut s = Vec::with_capacity(dims.len().min(64));
                for d in dims {
                    match d {
                        Py::Int(n) if n >= 0 => {
                            s.push(usize::try_from(n).map_err(|_| fmt(format!("dimension {n} is too large")))?)
                        }
                        other => {
                            return Err(fmt(format!("shape entries must be non-negative integers, got {other:?}")));
                        }
                    }
                }
                if s.len() > MAX_RANK {
                    return Err(fmt(format!("shape has {} dimensions, at most {MAX_RANK} are supported", s.len())));
                }
                shape = Some(s);
            }
            other => tracing::warn!(key = other, "ignoring unknown .npy header key"),
        }
    }
    Ok(Header {
        descr: descr.ok_or_else(|| fmt("header has no 'descr'".into()))?,
        fortran: fortran.ok_or_else(|| fmt("header has no 'fortran_order'".into()))?,
        shape: shape.ok_or_else(|| fmt("header has no 'shape'".into()))?,
    })
}

/// The element kinds this reader understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    F2,
    F4,
    F8,
    I1,
    U1,
    I2,
    I4,
    I8,
    U2,
    U4,
    U8,
    B1,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::I1 | Kind::U1 | Kind::B1 => 1,
            Kind::F2 | Kind::I2 | Kind::U2 => 2,
            Kind::F4 | Kind::I4 | Kind::U4 => 4,
            Kind::F8 | Kind::I8 | Kind::U8 => 8,
        }
    }
}

/// Parse a descr like `<f4` into the kind and whether the data is big-endian.
fn parse_descr(descr: &str) -> Result<(Kind, bool), NpyError> {
    let unsupported = || NpyError::UnsupportedDType(descr.to_string());
    let (order, rest) = match descr.as_bytes().first() {
        Some(b'<') => (Some(false), &descr[1..]),
        Some(b'>') => (Some(true), &descr[1..]),
        Some(b'=') => (Some(cfg!(target_endian = "big")), &descr[1..]),
        Some(b'|') => (None, &descr[1..]),
        _ => (None, descr),
    };
    let kind = match rest {
        "f2" | "e" => Kind::F2,
        "f4" | "f" => Kind::F4,
        "f8" | "d" => Kind::F8,
        "i1" | "b" => Kind::I1,
        "u1" | "B" => Kind::U1,
        "i2" | "h" => Kind::I2,
        "i4" => Kind::I4,
        "i8" => Kind::I8,
        "u2" | "H" => Kind::U2,
        "u4" => Kind::U4,
        "u8" => Kind::U8,
        "b1" | "?" => Kind::B1,
        _ => return Err(unsupported()),
    };
    let big = match order {
        Some(b) => b,
        None if kind.size() == 1 => false,
        None => return Err(NpyError::Format(format!("dtype '{descr}' has no byte order"))),
    };
    Ok((kind, big))
}

/// Decode fixed-size elements.
fn elements<T, const N: usize>(data: &[u8], n: usize, big: bool, le: fn([u8; N]) -> T, be: fn([u8; N]) -> T) -> Vec<T> {
    let conv = if big { be } else { le };
    data.chunks_exact(N).take(n).map(|c| conv(<[u8; N]>::try_from(c).unwrap_or([0u8; N]))).collect()
}

fn decode(h: &Header, data: &[u8]) -> Result<Tensor, NpyError> {
    let (kind, big) = parse_descr(&h.descr)?;
    let fmt = |m: String| NpyError::Format(m);
    let mut n: usize = 1;
    for &d in &h.shape {
        n = n.checked_mul(d).ok_or_else(|| fmt(format!("shape {:?} has too many elements", h.shape)))?;
    }
    // ndarray also requires the product of the non-zero dims to fit in isize.
    let nonzero = h.shape.iter().filter(|&&d| d != 0).try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if nonzero.is_none_or(|p| p > isize::MAX as usize) {
        return Err(fmt(format!("shape {:?} is too large", h.shape)));
    }
    let need = n.checked_mul(kind.size()).ok_or_else(|| fmt(format!("shape {:?} is too large", h.shape)))?;
    if data.len() < need {
        return Err(fmt(format!(
            "shape {:?} of '{}' needs {need} data bytes, the file has {}",
            h.shape,
            h.descr,
            data.len()
        )));
    }
    if data.len() > need {
        tracing::warn!(extra = data.len() - need, "ignoring trailing bytes after .npy data");
    }
    let data = &data[..need];
    let shape = IxDyn(&h.shape).set_f(h.fortran);
    fn build<T: crate::Element>(shape: ndarray::Shape<IxDyn>, v: Vec<T>) -> Result<Tensor, NpyError> {
        let a = ArrayD::from_shape_vec(shape, v).map_err(|e| NpyError::Format(format!("bad shape: {e}")))?;
        let a = if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() };
        Ok(Tensor::from(a))
    }
    match kind {
        Kind::F4 => build(shape, elements(data, n, big, f32::from_le_bytes, f32::from_be_bytes)),
        Kind::F8 => {
            let v: Vec<f64> = elements(data, n, big, f64::from_le_bytes, f64::from_be_bytes);
            build(shape, v.into_iter().map(|x| x as f32).collect::<Vec<f32>>())
        }
        Kind::F2 => {
            let v: Vec<u16> = elements(data, n, big, u16::from_le_bytes, u16::from_be_bytes);
            build(shape, v.into_iter().map(f16::from_bits).collect::<Vec<f16>>())
        }
        Kind::I1 => build(shape, elements(data, n, big, i8::from_le_bytes, i8::from_be_bytes)),
        Kind::U1 => build(shape, data.to_vec()),
        Kind::I2 => build(shape, elements(data, n, big, i16::from_le_bytes, i16::from_be_bytes)),
        Kind::I4 => build(shape, elements(data, n, big, i32::from_le_bytes, i32::from_be_bytes)),
        Kind::I8 => build(shape, elements(data, n, big, i64::from_le_bytes, i64::from_be_bytes)),
        Kind::U2 => {
            let v: Vec<u16> = elements(data, n, big, u16::from_le_bytes, u16::from_be_bytes);
            build(shape, v.into_iter().map(i32::from).collect::<Vec<i32>>())
        }
        Kind::U4 => {
            let v: Vec<u32> = elements(data, n, big, u32::from_le_bytes, u32::from_be_bytes);
            build(shape, v.into_iter().map(i64::from).collect::<Vec<i64>>())
        }
        Kind::U8 => {
            let v: Vec<u64> = elements(data, n, big, u64::from_le_bytes, u64::from_be_bytes);
            let v = v
                .into_iter()
                .map(i64::try_from)
                .collect::<Result<Vec<i64>, _>>()
                .map_err(|_| fmt(format!("a '{}' value exceeds the i64 range", h.descr)))?;
            build(shape, v)
        }
        Kind::B1 => build(shape, data.iter().map(|&b| b != 0).collect::<Vec<bool>>()),
    }
}
