//! Errors reading and writing `.nb` files.

use std::path::PathBuf;

/// Errors reading or writing a `.nb` file. Read errors name the section, node or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum NbError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes do not start with the `.nb` magic.
    #[error("not a .nb file (the magic bytes \"LITHENB\\0\" are missing)")]
    BadMagic,
    /// The file ends before something it declares.
    #[error("file truncated: {what} needs {needed} bytes, the file has {available}")]
    Truncated {
        /// What did not fit.
        what: String,
        /// Bytes needed (end offset).
        needed: u64,
        /// Bytes available (file length).
        available: u64,
    },
    /// The file's major format version is not the one this reader implements.
    #[error("file format {major}.x, this reader supports {supported}.x; upgrade lithe")]
    UnsupportedVersion {
        /// The file's major version.
        major: u16,
        /// The file's minor version.
        minor: u16,
        /// The major version this reader implements.
        supported: u16,
    },
    /// The header sets a must-understand flag this reader does not know.
    #[error("file uses format features this reader does not know (required flags {flags:#06x}); upgrade lithe")]
    UnsupportedFlags {
        /// The unknown required flag bits.
        flags: u32,
    },
    /// The section table is malformed (too many entries, overlapping or misplaced sections).
    #[error("section table: {0}")]
    SectionTable(String),
    /// A section the format requires is missing.
    #[error("missing {0} section")]
    MissingSection(&'static str),
    /// A CRC-32 does not match the bytes it covers.
    #[error(
        "checksum mismatch in the {section}: stored {stored:#010x}, computed {computed:#010x} (the file is corrupted)"
    )]
    Checksum {
        /// The covered region (`header`, `program section`, `weights section`, ...).
        section: String,
        /// The CRC stored in the file.
        stored: u32,
        /// The CRC of the bytes read.
        computed: u32,
    },
    /// The program section is not a valid protobuf `Program` message.
    #[error("program section: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A required field is absent.
    #[error("{context}: missing field '{field}'")]
    MissingField {
        /// Where (`node 3 'conv1'`, `graph output 0`, ...).
        context: String,
        /// The field.
        field: &'static str,
    },
    /// A field holds a value this reader does not know or that is out of range.
    #[error("{context}: invalid '{field}': {detail}")]
    InvalidField {
        /// Where (`node 3 'conv1'`, `graph output 0`, ...).
        context: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A node's operator is not one this reader knows (a newer minor version added it).
    #[error("{context}: unknown operator (written by a newer lithe?); upgrade lithe")]
    UnknownOp {
        /// The node.
        context: String,
    },
    /// A reference to a node, output slot or weight range that does not exist.
    #[error("{context}: dangling reference in '{field}': {detail}")]
    BadReference {
        /// Where the reference is.
        context: String,
        /// The field holding it.
        field: &'static str,
        /// What it refers to and why that fails.
        detail: String,
    },
    /// A tensor's dtype, shape and data do not agree.
    #[error("{context}: bad tensor: {detail}")]
    BadTensor {
        /// The tensor's owner.
        context: String,
        /// What is wrong.
        detail: String,
    },
    /// The rebuilt graph fails [`lithe_ir::Graph::validate`] (or could not be rebuilt).
    #[error("program section: invalid graph: {0}")]
    Graph(#[from] lithe_ir::IrError),
    /// The graph cannot be written (a count or size exceeds what the format can hold).
    #[error("cannot encode: {0}")]
    Encode(String),
}
