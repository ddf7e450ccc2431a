//! Why a `.npy` file could not be read, naming the file, what was found and what was expected.
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::{Dtype, NpyHeader, MAX_SIDE, MAX_SLICES};

const ACCEPTED: &str = "uint8 ('|u1'), or int16, uint16, int32, uint32, float32, float64 \
                        ('<i2', '>u2', '<f4', ...; scaled to 0–255)";
const EXPECTED_DICT: &str = "expected a dict like \
                             {'descr': '|u1', 'fortran_order': False, 'shape': (S, 256, 256), }";

/// Why a `.npy` file could not be read. Every variant names the file; the message says what
/// was found and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// The file could not be read; the OS's words are in the message (not a `source`, so a
    /// chain of errors says them once).
    Io {
        path: PathBuf,
        error: io::Error,
    },
    /// A folder (or another non-file) where a `.npy` file is expected.
    NotAFile {
        path: PathBuf,
    },
    /// The plane has no file (see [`crate::data::dataset::PlaneSource`]).
    Unavailable {
        path: PathBuf,
        reason: String,
    },
    BadMagic {
        path: PathBuf,
        found: Vec<u8>,
    },
    UnsupportedVersion {
        path: PathBuf,
        major: u8,
        minor: u8,
    },
    /// The file ends inside the fixed prefix or the header dict.
    TruncatedHeader {
        path: PathBuf,
        needed: u64,
        found: u64,
    },
    BadHeader {
        path: PathBuf,
        reason: String,
    },
    UnsupportedDtype {
        path: PathBuf,
        descr: String,
    },
    FortranOrder {
        path: PathBuf,
    },
    WrongNdim {
        path: PathBuf,
        shape: Vec<u64>,
    },
    NoSlices {
        path: PathBuf,
        shape: Vec<u64>,
    },
    /// A zero-sized side, or more slices or pixels than [`MAX_SLICES`] / [`MAX_SIDE`].
    Absurd {
        path: PathBuf,
        shape: Vec<u64>,
        reason: String,
    },
    /// The body is shorter than shape × itemsize.
    Truncated {
        path: PathBuf,
        header: Box<NpyHeader>,
        found: u64,
    },
    TrailingBytes {
        path: PathBuf,
        header: Box<NpyHeader>,
        extra: u64,
    },
    NotFinite {
        path: PathBuf,
        dtype: Dtype,
        index: [usize; 3],
    },
    OutOfMemory {
        path: PathBuf,
        bytes: u64,
    },
}

fn shape_text(shape: &[impl fmt::Display]) -> String {
    let items: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if items.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(", "))
    }
}

impl NpyError {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        match self {
            NpyError::Io { path, .. }
            | NpyError::NotAFile { path }
            | NpyError::Unavailable { path, .. }
            | NpyError::BadMagic { path, .. }
            | NpyError::UnsupportedVersion { path, .. }
            | NpyError::TruncatedHeader { path, .. }
            | NpyError::BadHeader { path, .. }
            | NpyError::UnsupportedDtype { path, .. }
            | NpyError::FortranOrder { path }
            | NpyError::WrongNdim { path, .. }
            | NpyError::NoSlices { path, .. }
            | NpyError::Absurd { path, .. }
            | NpyError::Truncated { path, .. }
            | NpyError::TrailingBytes { path, .. }
            | NpyError::NotFinite { path, .. }
            | NpyError::OutOfMemory { path, .. } => path,
        }
    }

    /// The message without the file name in front (the [`fmt::Display`] form is
    /// `FILE: DETAIL`).
    pub fn detail(&self) -> String {
        match self {
            NpyError::Io { error, .. } => format!("cannot read: {error}"),
            NpyError::NotAFile { .. } => "is a folder, expected a .npy file".to_string(),
            NpyError::Unavailable { reason, .. } => format!("unavailable: {reason}"),
            NpyError::BadMagic { found, .. } => format!(
                "not a .npy file: starts with {}, expected the magic string \\x93NUMPY",
                escape_bytes(found)
            ),
            NpyError::UnsupportedVersion { major, minor, .. } => {
                format!("unsupported .npy format version {major}.{minor}: expected 1.0, 2.0 or 3.0")
            }
            NpyError::TruncatedHeader { needed, found, .. } => format!(
                "truncated header: the file has {found} bytes, the header alone needs {needed}"
            ),
            NpyError::BadHeader { reason, .. } => {
                format!("malformed .npy header: {reason}; {EXPECTED_DICT}")
            }
            NpyError::UnsupportedDtype { descr, .. } => {
                format!("unsupported dtype {descr}: expected {ACCEPTED}")
            }
            NpyError::FortranOrder { .. } => "array is stored in Fortran order \
                (fortran_order: True): expected C order (fortran_order: False)"
                .to_string(),
            NpyError::WrongNdim { shape, .. } => format!(
                "shape {} has {} dimension{}: expected 3 (slices, height, width)",
                shape_text(shape),
                shape.len(),
                if shape.len() == 1 { "" } else { "s" }
            ),
            NpyError::NoSlices { shape, .. } => format!(
                "shape {} has zero slices: expected at least 1",
                shape_text(shape)
            ),
            NpyError::Absurd { shape, reason, .. } => format!(
                "shape {} refused: {reason} (at most {MAX_SLICES} slices and {MAX_SIDE} px \
                 a side, none zero)",
                shape_text(shape)
            ),
            NpyError::Truncated { header, found, .. } => format!(
                "truncated: shape {} of {} needs {} bytes of data after the {}-byte header, \
                 the file has {found}",
                shape_text(&header.shape),
                header.dtype,
                header.body_len(),
                header.data_offset
            ),
            NpyError::TrailingBytes { header, extra, .. } => format!(
                "{extra} unexpected byte{} after the data: shape {} of {} needs exactly {} \
                 bytes after the {}-byte header",
                if *extra == 1 { "" } else { "s" },
                shape_text(&header.shape),
                header.dtype,
                header.body_len(),
                header.data_offset
            ),
            NpyError::NotFinite { dtype, index, .. } => format!(
                "{dtype} value at [{}, {}, {}] is NaN or infinite: expected finite values",
                index[0], index[1], index[2]
            ),
            NpyError::OutOfMemory { bytes, .. } => {
                format!("cannot allocate {bytes} bytes for the data")
            }
        }
    }
}

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path().display(), self.detail())
    }
}

fn escape_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (empty file)".to_string();
    }
    let mut out = String::from("\"");
    for &b in bytes {
        out.extend(std::ascii::escape_default(b).map(char::from));
    }
    out.push('"');
    out
}
