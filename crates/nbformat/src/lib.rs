//! The `.nb` file: one optimized model (structure and weights) in one file.
//!
//! A fixed little-endian header and section table, a program section (the graph as a
//! protobuf `Program` from `proto/lithe_nb.proto`) and a weights section holding every
//! tensor at a 64-byte aligned file offset, each section with a CRC-32. The reader treats
//! its input as hostile: every count and length is checked against the bytes present before
//! anything is allocated, references are checked, and the rebuilt graph is validated.
//!
//! Layout and compatibility rules: `docs/nb-format.md`.
#![warn(missing_docs)]

mod error;
pub mod header;
mod op_decode;
mod op_encode;
mod program;
mod tensor_map;

/// The protobuf messages of the program section (generated from `proto/lithe_nb.proto`).
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/lithe_nb.v1.rs"));
}

pub use error::NbError;
pub use header::{FileInfo, SectionEntry, SectionKind};
pub use tensor_map::MAX_INLINE_BYTES;

use header::{FORMAT_MINOR, SectionKind as Kind};
use lithe_ir::{Graph, SharedBytes};
use prost::Message;
use std::path::Path;
use std::sync::Arc;
use tensor_map::{WeightsView, WeightsWriter, weights_base};

/// What a `.nb` file says about how it was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelMeta {
    /// The producing tool and version (`lithe 0.1.0`).
    pub producer: String,
    /// The file the model was converted from (file name only).
    pub source: String,
    /// Names of the passes that changed the graph, in pipeline order.
    pub passes: Vec<String>,
    /// Targets the model was checked against (`arm`, `x86`).
    pub valid_targets: Vec<String>,
}

/// Encode a graph and its metadata as `.nb` bytes.
///
/// Layout: header, section table (weights then program), zero padding to 64 bytes, the
/// weights section, then the program section.
pub fn write(graph: &Graph, meta: &ModelMeta) -> Result<Vec<u8>, NbError> {
    let table_end = header::table_end(2);
    let base = weights_base(table_end);
    let mut weights = WeightsWriter::new(base);
    let program = program::encode(graph, meta, &mut weights)?.encode_to_vec();
    let weights = weights.into_bytes();
    let program_at = base + weights.len() as u64;
    let sections = [
        SectionEntry {
            kind: Kind::Weights,
            crc32: crc32fast::hash(&weights),
            offset: base,
            length: weights.len() as u64,
        },
        SectionEntry {
            kind: Kind::Program,
            crc32: crc32fast::hash(&program),
            offset: program_at,
            length: program.len() as u64,
        },
    ];
    let mut out = header::encode(0, &sections)?;
    out.reserve(base as usize - out.len() + weights.len() + program.len());
    out.resize(base as usize, 0);
    out.extend_from_slice(&weights);
    out.extend_from_slice(&program);
    tracing::debug!(
        graph = %graph.name,
        nodes = graph.len(),
        weights = weights.len(),
        program = program.len(),
        total = out.len(),
        "encoded .nb"
    );
    Ok(out)
}

/// Parse and check the header and section table (not the sections' contents or CRCs).
pub fn inspect(bytes: &[u8]) -> Result<FileInfo, NbError> {
    header::parse(bytes)
}

/// The bytes of a section (bounds were checked by [`header::parse`]).
fn section_bytes<'a>(bytes: &'a [u8], s: &SectionEntry) -> Result<&'a [u8], NbError> {
    usize::try_from(s.offset)
        .ok()
        .zip(usize::try_from(s.end()).ok())
        .and_then(|(a, b)| bytes.get(a..b))
        .ok_or_else(|| NbError::Truncated { what: s.kind.describe(), needed: s.end(), available: bytes.len() as u64 })
}

/// The single section of a kind, if present; two of the same kind are an error.
fn unique(info: &FileInfo, kind: Kind) -> Result<Option<&SectionEntry>, NbError> {
    let mut found = info.sections.iter().filter(|s| s.kind == kind);
    let first = found.next();
    if found.next().is_some() {
        return Err(NbError::SectionTable(format!("more than one {}", kind.describe())));
    }
    Ok(first)
}

/// How a `.nb` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Check the weights section's CRC-32. The header, section table and program section are
    /// always checked, and every tensor's bytes are bounds-checked whatever this says; the
    /// weights CRC only detects weights changed after writing (which give wrong numbers, not
    /// memory errors). Checking it reads every weight byte, which an in-place load of a
    /// memory-mapped file otherwise avoids.
    pub verify_weights: bool,
}

impl Default for ReadOptions {
    /// Every checksum verified.
    fn default() -> Self {
        ReadOptions { verify_weights: true }
    }
}

/// Decode `.nb` bytes, copying every tensor: check the header, every section's CRC, decode
/// the program, read the tensors, rebuild the graph and validate it.
pub fn read(bytes: &[u8]) -> Result<(Graph, ModelMeta), NbError> {
    read_impl(bytes, None, &ReadOptions::default())
}

/// Decode `.nb` bytes held in `bytes`; weight tensors read their elements in place from
/// `bytes` (no copy) wherever the host allows it (little endian, aligned, not bool), and keep
/// `bytes` alive.
pub fn read_shared(bytes: SharedBytes, options: &ReadOptions) -> Result<(Graph, ModelMeta), NbError> {
    let view: &[u8] = (*bytes).as_ref();
    read_impl(view, Some(&bytes), options)
}

/// A copy of `bytes` starting at a 64-byte aligned address, for [`read_shared`] (so the
/// 64-byte aligned weights of a `.nb` are aligned in memory too).
pub fn shared_copy(bytes: &[u8]) -> SharedBytes {
    lithe_ir::shared_aligned_copy(bytes)
}

fn read_impl(bytes: &[u8], shared: Option<&SharedBytes>, options: &ReadOptions) -> Result<(Graph, ModelMeta), NbError> {
    let info = header::parse(bytes)?;
    for s in &info.sections {
        if s.kind == Kind::Weights && !options.verify_weights {
            continue;
        }
        let computed = crc32fast::hash(section_bytes(bytes, s)?);
        if computed != s.crc32 {
            return Err(NbError::Checksum { section: s.kind.describe(), stored: s.crc32, computed });
        }
        if let Kind::Unknown(code) = s.kind {
            tracing::debug!(kind = code, length = s.length, "ignoring a section of unknown kind");
        }
    }
    if info.format_minor > FORMAT_MINOR {
        tracing::debug!(
            minor = info.format_minor,
            "file has a newer minor format version; reading what this version knows"
        );
    }
    let program = unique(&info, Kind::Program)?.ok_or(NbError::MissingSection("program"))?;
    let weights = unique(&info, Kind::Weights)?;
    if let Some(w) = weights
        && w.offset % header::ALIGN != 0
    {
        return Err(NbError::SectionTable(format!(
            "weights section starts at {}, not a multiple of {}",
            w.offset,
            header::ALIGN
        )));
    }
    let program = pb::Program::decode(section_bytes(bytes, program)?)?;
    let view = WeightsView { file: bytes, range: weights.map(|w| (w.offset, w.end())), shared };
    let (graph, meta) = program::decode(&program, &view)?;
    tracing::debug!(graph = %graph.name, nodes = graph.len(), bytes = bytes.len(), "read .nb");
    Ok((graph, meta))
}

/// Read a `.nb` file with every checksum verified; see [`read_file_with`].
pub fn read_file(path: &Path) -> Result<(Graph, ModelMeta), NbError> {
    read_file_with(path, &ReadOptions::default())
}

/// Read a `.nb` file memory-mapped, its weights read in place from the mapping (which the
/// graph's tensors keep alive). If mapping fails the file is read into an aligned buffer.
///
/// The file must not be modified or truncated while the graph (or a predictor built from
/// it) is alive; lithe's own writer never does that ([`write_file`] writes a new file and
/// renames it over the old one, which leaves an existing mapping intact).
pub fn read_file_with(path: &Path, options: &ReadOptions) -> Result<(Graph, ModelMeta), NbError> {
    let io = |source| NbError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    // SAFETY: the mapping is read-only and lives in an `Arc` held by every tensor that reads
    // from it, so it outlives every borrow of its bytes. Mapping is sound as long as no
    // process modifies or truncates the file while it is mapped, which is this function's
    // documented requirement (the same one every memory-mapped model loader has); every
    // length read from the file is checked against the mapping's length, which never changes.
    let shared: SharedBytes = match unsafe { memmap2::Mmap::map(&file) } {
        Ok(map) => Arc::new(map),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "memory map failed; reading the file");
            shared_copy(&std::fs::read(path).map_err(io)?)
        }
    };
    read_shared(shared, options)
}

/// Write a `.nb` file: to a temporary file next to `path`, then renamed over it.
pub fn write_file(path: &Path, graph: &Graph, meta: &ModelMeta) -> Result<(), NbError> {
    let bytes = write(graph, meta)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes).map_err(|source| NbError::Io { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        NbError::Io { path: path.to_path_buf(), source }
    })
}

/// True when `bytes` start with the `.nb` magic (a cheap check to tell `.nb` from ONNX).
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(&header::MAGIC)
}
