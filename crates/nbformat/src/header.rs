//! The fixed header and the section table (layout in `docs/nb-format.md`).

use crate::NbError;

/// The 8 magic bytes every `.nb` file starts with.
pub const MAGIC: [u8; 8] = *b"LITHENB\0";
/// The format major version this crate reads and writes.
pub const FORMAT_MAJOR: u16 = 1;
/// The format minor version this crate writes.
pub const FORMAT_MINOR: u16 = 0;
/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 32;
/// Size of one section table entry in bytes.
pub const ENTRY_LEN: usize = 24;
/// Largest section count a reader accepts.
pub const MAX_SECTIONS: u32 = 256;
/// Alignment of the weights section and of every tensor in it, in bytes from the file start.
pub const ALIGN: u64 = 64;
/// Flag bits a reader must understand (unknown ones in this mask make the file unreadable).
pub const REQUIRED_FLAGS_MASK: u32 = 0x0000_ffff;
/// Required flags this reader understands (none are defined in 1.0).
pub const KNOWN_REQUIRED_FLAGS: u32 = 0;

/// Offset of the header CRC field; the CRC covers the header before it and the section table.
const HEADER_CRC_AT: usize = 28;

/// The kind of a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SectionKind {
    /// The protobuf `Program` message (kind 1).
    Program,
    /// Tensor data (kind 2).
    Weights,
    /// A kind this reader does not know (added by a newer minor version); ignored.
    Unknown(u32),
}

impl SectionKind {
    /// The number stored in the section table.
    pub fn code(self) -> u32 {
        match self {
            SectionKind::Program => 1,
            SectionKind::Weights => 2,
            SectionKind::Unknown(c) => c,
        }
    }

    /// The kind with this number.
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => SectionKind::Program,
            2 => SectionKind::Weights,
            c => SectionKind::Unknown(c),
        }
    }

    /// A description for error messages (`program section`).
    pub fn describe(self) -> String {
        match self {
            SectionKind::Program => "program section".to_string(),
            SectionKind::Weights => "weights section".to_string(),
            SectionKind::Unknown(c) => format!("section of kind {c}"),
        }
    }
}

/// One entry of the section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionEntry {
    /// What the section holds.
    pub kind: SectionKind,
    /// CRC-32 (ISO-HDLC) of the section's bytes.
    pub crc32: u32,
    /// Offset of the first byte from the start of the file.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

impl SectionEntry {
    /// One past the last byte (checked to fit the file before an entry is returned by [`parse`]).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.length)
    }
}

/// The header fields of a `.nb` file, as [`crate::inspect`] reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Format major version.
    pub format_major: u16,
    /// Format minor version.
    pub format_minor: u16,
    /// Header flags.
    pub flags: u32,
    /// Version (major, minor, patch) of the lithe that wrote the file.
    pub producer_version: (u16, u16, u16),
    /// The section table, in file order.
    pub sections: Vec<SectionEntry>,
}

/// The version of this crate as three numbers (0 for parts that do not parse).
pub fn producer_version() -> (u16, u16, u16) {
    let mut parts = env!("CARGO_PKG_VERSION").split(['.', '-', '+']).map(|p| p.parse::<u16>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Where the section table ends for `count` sections.
pub fn table_end(count: usize) -> usize {
    HEADER_LEN + ENTRY_LEN * count
}

/// Round `n` up to the next multiple of [`ALIGN`].
pub fn align_up(n: u64) -> Option<u64> {
    n.checked_add(ALIGN - 1).map(|v| v / ALIGN * ALIGN)
}

/// The header and table bytes (with the header CRC filled in) for these sections.
pub fn encode(flags: u32, sections: &[SectionEntry]) -> Result<Vec<u8>, NbError> {
    let count = u32::try_from(sections.len())
        .ok()
        .filter(|&c| c <= MAX_SECTIONS)
        .ok_or_else(|| NbError::Encode(format!("{} sections is more than {MAX_SECTIONS}", sections.len())))?;
    let (pmaj, pmin, ppatch) = producer_version();
    let mut out = Vec::with_capacity(table_end(sections.len()));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_MAJOR.to_le_bytes());
    out.extend_from_slice(&FORMAT_MINOR.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&pmaj.to_le_bytes());
    out.extend_from_slice(&pmin.to_le_bytes());
    out.extend_from_slice(&ppatch.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for s in sections {
        out.extend_from_slice(&s.kind.code().to_le_bytes());
        out.extend_from_slice(&s.crc32.to_le_bytes());
        out.extend_from_slice(&s.offset.to_le_bytes());
        out.extend_from_slice(&s.length.to_le_bytes());
    }
    let crc = header_crc(&out);
    out[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// The CRC-32 of the header bytes before the CRC field followed by the section table.
/// `bytes` must hold at least the header.
pub fn header_crc(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..HEADER_CRC_AT]);
    h.update(&bytes[HEADER_LEN..]);
    h.finalize()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parse and check the header and section table of a whole file: magic, version, flags,
/// header CRC, every section inside the file, after the table, and not overlapping another.
/// Section CRCs are checked by the caller.
pub fn parse(bytes: &[u8]) -> Result<FileInfo, NbError> {
    let len = bytes.len() as u64;
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(NbError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(NbError::Truncated { what: "header".into(), needed: HEADER_LEN as u64, available: len });
    }
    let format_major = u16_at(bytes, 8);
    let format_minor = u16_at(bytes, 10);
    if format_major != FORMAT_MAJOR {
        return Err(NbError::UnsupportedVersion { major: format_major, minor: format_minor, supported: FORMAT_MAJOR });
    }
    let flags = u32_at(bytes, 12);
    let producer_version = (u16_at(bytes, 16), u16_at(bytes, 18), u16_at(bytes, 20));
    let count = u32_at(bytes, 24);
    if count > MAX_SECTIONS {
        return Err(NbError::SectionTable(format!("{count} sections is more than {MAX_SECTIONS}")));
    }
    let end = table_end(count as usize);
    if bytes.len() < end {
        return Err(NbError::Truncated { what: "section table".into(), needed: end as u64, available: len });
    }
    let stored = u32_at(bytes, HEADER_CRC_AT);
    let computed = header_crc(&bytes[..end]);
    if stored != computed {
        return Err(NbError::Checksum { section: "header and section table".into(), stored, computed });
    }
    let unknown = flags & REQUIRED_FLAGS_MASK & !KNOWN_REQUIRED_FLAGS;
    if unknown != 0 {
        return Err(NbError::UnsupportedFlags { flags: unknown });
    }
    let mut sections = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let at = HEADER_LEN + ENTRY_LEN * i;
        let s = SectionEntry {
            kind: SectionKind::from_code(u32_at(bytes, at)),
            crc32: u32_at(bytes, at + 4),
            offset: u64_at(bytes, at + 8),
            length: u64_at(bytes, at + 16),
        };
        let what = s.kind.describe();
        let stop = s.offset.checked_add(s.length).ok_or_else(|| {
            NbError::SectionTable(format!("{what}: offset {} + length {} overflows", s.offset, s.length))
        })?;
        if stop > len {
            return Err(NbError::Truncated { what, needed: stop, available: len });
        }
        if s.offset < end as u64 {
            return Err(NbError::SectionTable(format!(
                "{what} starts at {}, inside the header and section table (which end at {end})",
                s.offset
            )));
        }
        sections.push(s);
    }
    let mut spans: Vec<&SectionEntry> = sections.iter().filter(|s| s.length > 0).collect();
    spans.sort_by_key(|s| s.offset);
    for w in spans.windows(2) {
        if w[0].end() > w[1].offset {
            return Err(NbError::SectionTable(format!(
                "{} ({}..{}) overlaps {} ({}..{})",
                w[0].kind.describe(),
                w[0].offset,
                w[0].end(),
                w[1].kind.describe(),
                w[1].offset,
                w[1].end()
            )));
        }
    }
    Ok(FileInfo { format_major, format_minor, flags, producer_version, sections })
}
