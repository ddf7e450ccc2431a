//! `.npy` volumes: a small reader of NumPy's format (versions 1.0, 2.0 and 3.0) for the 3-D
//! series MRNet ships, `uint8` of shape (slices, height, width).
//!
//! The header is read and checked (magic, version, dict, dtype, order, shape, sizes, and the
//! file's length against the shape) before anything is allocated for the body, so a broken or
//! hostile file costs a few hundred bytes of reading, never gigabytes of memory. Other integer
//! and float dtypes are min-max scaled to 0–255 per series, and the [`Volume`] says so.
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array3, ArrayView2, Axis};

/// Most slices a series may have; a header asking for more is refused before allocating.
pub const MAX_SLICES: usize = 1024;
/// Largest in-plane side, in pixels; a header asking for more is refused before allocating.
pub const MAX_SIDE: usize = 2048;
/// Longest header accepted, in bytes (NumPy writes well under 200).
pub const MAX_HEADER_LEN: usize = 65_536;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
const ACCEPTED: &str = "uint8 ('|u1'), or int16, uint16, int32, uint32, float32, float64 \
                        ('<i2', '>u2', '<f4', ...; scaled to 0–255)";
const EXPECTED_DICT: &str = "expected a dict like \
                             {'descr': '|u1', 'fortran_order': False, 'shape': (S, 256, 256), }";

/// Element types the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Scalar {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Scalar::U8 => 1,
            Scalar::I16 | Scalar::U16 => 2,
            Scalar::I32 | Scalar::U32 | Scalar::F32 => 4,
            Scalar::F64 => 8,
        }
    }

    /// NumPy's name for it: `uint8`, `int16`, `float32`, ...
    pub fn name(self) -> &'static str {
        match self {
            Scalar::U8 => "uint8",
            Scalar::I16 => "int16",
            Scalar::U16 => "uint16",
            Scalar::I32 => "int32",
            Scalar::U32 => "uint32",
            Scalar::F32 => "float32",
            Scalar::F64 => "float64",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Scalar::U8 => "u1",
            Scalar::I16 => "i2",
            Scalar::U16 => "u2",
            Scalar::I32 => "i4",
            Scalar::U32 => "u4",
            Scalar::F32 => "f4",
            Scalar::F64 => "f8",
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Scalar::F32 | Scalar::F64)
    }
}

/// Byte order of a multi-byte element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ByteOrder {
    Little,
    Big,
}

/// An accepted `descr`: element type and byte order (little for `uint8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dtype {
    pub scalar: Scalar,
    pub order: ByteOrder,
}

impl Dtype {
    pub const U8: Dtype = Dtype {
        scalar: Scalar::U8,
        order: ByteOrder::Little,
    };

    /// Parses a NumPy `descr` string such as `'|u1'`, `'<i2'` or `'>f8'`; `None` for anything
    /// this reader does not accept.
    pub fn parse(descr: &str) -> Option<Dtype> {
        let mut chars = descr.chars();
        let first = chars.next()?;
        let (order_char, code) = match first {
            '<' | '>' | '|' | '=' => (Some(first), chars.as_str()),
            _ => (None, descr),
        };
        let scalar = match code {
            "u1" => Scalar::U8,
            "i2" => Scalar::I16,
            "u2" => Scalar::U16,
            "i4" => Scalar::I32,
            "u4" => Scalar::U32,
            "f4" => Scalar::F32,
            "f8" => Scalar::F64,
            _ => return None,
        };
        let native = if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        let order = match (order_char, scalar) {
            (_, Scalar::U8) => ByteOrder::Little,
            // '|' means "not applicable", which NumPy only writes for one-byte types.
            (Some('|'), _) => return None,
            (Some('>'), _) => ByteOrder::Big,
            (Some('<'), _) => ByteOrder::Little,
            _ => native,
        };
        Some(Dtype { scalar, order })
    }

    /// The `descr` NumPy would write for it.
    pub fn descr(self) -> String {
        let order = match (self.scalar, self.order) {
            (Scalar::U8, _) => '|',
            (_, ByteOrder::Little) => '<',
            (_, ByteOrder::Big) => '>',
        };
        format!("{order}{}", self.scalar.code())
    }

    /// Whether loading rescales the values to 0–255 (everything but `uint8`).
    pub fn needs_scaling(self) -> bool {
        self.scalar != Scalar::U8
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scalar.name())?;
        if self.scalar != Scalar::U8 && self.order == ByteOrder::Big {
            f.write_str(" (big-endian)")?;
        }
        Ok(())
    }
}

/// A checked header: an accepted dtype, C order, and a 3-D shape within the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Format version, `(1, 0)`, `(2, 0)` or `(3, 0)`.
    pub version: (u8, u8),
    pub dtype: Dtype,
    /// (slices, height, width).
    pub shape: [usize; 3],
    /// Where the data starts: magic, version, length field and header dict.
    pub data_offset: u64,
}

impl NpyHeader {
    pub fn slices(&self) -> usize {
        self.shape[0]
    }

    pub fn height(&self) -> usize {
        self.shape[1]
    }

    pub fn width(&self) -> usize {
        self.shape[2]
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Always false: a checked header has no zero-sized axis.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of data after the header.
    pub fn body_len(&self) -> u64 {
        self.len() as u64 * self.dtype.scalar.size() as u64
    }

    /// The exact length the file must have.
    pub fn file_len(&self) -> u64 {
        self.data_offset + self.body_len()
    }
}

/// A series as kneecam uses it: `uint8` voxels (slices, height, width), and a note when they
/// are not the file's values as stored (scaled from another dtype).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub data: Array3<u8>,
    pub note: Option<String>,
}

impl Volume {
    pub fn slices(&self) -> usize {
        self.data.len_of(Axis(0))
    }

    pub fn height(&self) -> usize {
        self.data.len_of(Axis(1))
    }

    pub fn width(&self) -> usize {
        self.data.len_of(Axis(2))
    }

    /// Slice `index` (0-based), or `None` past the end.
    pub fn slice(&self, index: usize) -> Option<ArrayView2<'_, u8>> {
        (index < self.slices()).then(|| self.data.index_axis(Axis(0), index))
    }
}

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

/// Writes a C-order uint8 `.npy` (format 1.0) atomically (temp file + rename, no fsync).
pub fn write_u8_volume(path: &Path, volume: &Array3<u8>) -> std::io::Result<()> {
    let data: Vec<u8> = volume.iter().copied().collect();
    write_npy(path, "|u1", volume.dim(), &data)
}

/// Writes a C-order little-endian float32 `.npy` (format 1.0) atomically.
pub fn write_f32_volume(path: &Path, volume: &Array3<f32>) -> std::io::Result<()> {
    let data: Vec<u8> = volume.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<f4", volume.dim(), &data)
}

fn write_npy(
    path: &Path,
    descr: &str,
    (s, h, w): (usize, usize, usize),
    data: &[u8],
) -> std::io::Result<()> {
    let dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({s}, {h}, {w}), }}");
    // Magic (6) + version (2) + length (2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let header = format!("{dict}{}\n", " ".repeat((64 - unpadded % 64) % 64));
    let header_len = u16::try_from(header.len()).map_err(std::io::Error::other)?;
    crate::fsutil::atomic_write_unsynced(path, |out| {
        out.write_all(b"\x93NUMPY\x01\x00")?;
        out.write_all(&header_len.to_le_bytes())?;
        out.write_all(header.as_bytes())?;
        out.write_all(data)
    })
}

/// Reads and checks the header of `path`, and checks the file's length against it, without
/// reading the data. Cheap: one open, one stat, and a few hundred bytes.
pub fn read_header(path: &Path) -> Result<NpyHeader, NpyError> {
    let (mut file, len) = open(path)?;
    read_header_from(path, &mut file, len)
}

/// Reads the whole series at `path` as `uint8`, scaling other dtypes to 0–255.
pub fn read_volume(path: &Path) -> Result<Volume, NpyError> {
    let (mut file, len) = open(path)?;
    let header = read_header_from(path, &mut file, len)?;
    read_body(path, &header, &mut file)
}

/// Parses a `.npy` file held in memory; `path` only names it in errors.
pub fn parse_volume(path: &Path, bytes: &[u8]) -> Result<Volume, NpyError> {
    let mut reader = bytes;
    let header = read_header_from(path, &mut reader, bytes.len() as u64)?;
    read_body(path, &header, &mut reader)
}

/// Parses and checks the header at the start of `bytes`, which must be the whole file (its
/// length is checked against the shape); `path` only names it in errors.
pub fn parse_header(path: &Path, bytes: &[u8]) -> Result<NpyHeader, NpyError> {
    let mut reader = bytes;
    read_header_from(path, &mut reader, bytes.len() as u64)
}

fn open(path: &Path) -> Result<(File, u64), NpyError> {
    let io_err = |error| NpyError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(NpyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok((file, meta.len()))
}

/// Reads into `buf` until it is full or the reader ends; returns how much was read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_header_from(
    path: &Path,
    reader: &mut impl Read,
    file_len: u64,
) -> Result<NpyHeader, NpyError> {
    let p = || path.to_path_buf();
    let io_err = |error| NpyError::Io { path: p(), error };

    let mut prefix = [0u8; 8];
    let n = read_up_to(reader, &mut prefix).map_err(io_err)?;
    let magic_len = n.min(MAGIC.len());
    if prefix[..magic_len] != MAGIC[..magic_len] {
        return Err(NpyError::BadMagic {
            path: p(),
            found: prefix[..magic_len].to_vec(),
        });
    }
    if n < prefix.len() {
        return Err(NpyError::TruncatedHeader {
            path: p(),
            needed: 10,
            found: n as u64,
        });
    }
    let version = (prefix[6], prefix[7]);
    let len_field = match version {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        (major, minor) => {
            return Err(NpyError::UnsupportedVersion {
                path: p(),
                major,
                minor,
            })
        }
    };
    let mut len_bytes = [0u8; 4];
    let n = read_up_to(reader, &mut len_bytes[..len_field]).map_err(io_err)?;
    if n < len_field {
        return Err(NpyError::TruncatedHeader {
            path: p(),
            needed: 8 + len_field as u64,
            found: 8 + n as u64,
        });
    }
    let header_len = u32::from_le_bytes(len_bytes) as usize;
    let data_offset = (8 + len_field + header_len) as u64;
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::BadHeader {
            path: p(),
            reason: format!(
                "header length field says {header_len} bytes, more than the {MAX_HEADER_LEN} \
                 a .npy header can plausibly need"
            ),
        });
    }
    if file_len < data_offset {
        return Err(NpyError::TruncatedHeader {
            path: p(),
            needed: data_offset,
            found: file_len,
        });
    }
    let mut text = vec![0u8; header_len];
    let n = read_up_to(reader, &mut text).map_err(io_err)?;
    if n < header_len {
        return Err(NpyError::TruncatedHeader {
            path: p(),
            needed: data_offset,
            found: (8 + len_field + n) as u64,
        });
    }

    let dict = parse_dict(&text).map_err(|reason| NpyError::BadHeader { path: p(), reason })?;

    let descr = match &dict.descr {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    };
    let dtype = match &dict.descr {
        Value::Str(s) => Dtype::parse(s),
        _ => None,
    }
    .ok_or_else(|| NpyError::UnsupportedDtype {
        path: p(),
        descr: format!("'{descr}'"),
    })?;
    let fortran = match dict.fortran_order {
        Value::Bool(b) => b,
        other => {
            return Err(NpyError::BadHeader {
                path: p(),
                reason: format!("'fortran_order' is {other}, expected True or False"),
            })
        }
    };
    if fortran {
        return Err(NpyError::FortranOrder { path: p() });
    }
    let shape: Vec<u64> = match &dict.shape {
        Value::Tuple(items) => items
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                other => Err(other.to_string()),
            })
            .collect::<Result<_, _>>()
            .map_err(|item| NpyError::BadHeader {
                path: p(),
                reason: format!("'shape' holds {item}, expected non-negative integers"),
            })?,
        other => {
            return Err(NpyError::BadHeader {
                path: p(),
                reason: format!("'shape' is {other}, expected a tuple of integers"),
            })
        }
    };
    let [s, h, w] = match shape[..] {
        [s, h, w] => [s, h, w],
        _ => return Err(NpyError::WrongNdim { path: p(), shape }),
    };
    if s == 0 {
        return Err(NpyError::NoSlices { path: p(), shape });
    }
    let absurd = if h == 0 || w == 0 {
        Some("a zero-sized side".to_string())
    } else if s > MAX_SLICES as u64 {
        Some(format!("{s} slices is more than {MAX_SLICES}"))
    } else if h > MAX_SIDE as u64 || w > MAX_SIDE as u64 {
        Some(format!("{h}×{w} px is more than {MAX_SIDE} a side"))
    } else {
        None
    };
    if let Some(reason) = absurd {
        return Err(NpyError::Absurd {
            path: p(),
            shape,
            reason,
        });
    }
    // Within the limits, so these fit a usize and the products fit a u64.
    let header = NpyHeader {
        version,
        dtype,
        shape: [s as usize, h as usize, w as usize],
        data_offset,
    };
    let needed = header.file_len();
    if file_len < needed {
        return Err(NpyError::Truncated {
            path: p(),
            found: file_len - data_offset,
            header: Box::new(header),
        });
    }
    if file_len > needed {
        return Err(NpyError::TrailingBytes {
            path: p(),
            extra: file_len - needed,
            header: Box::new(header),
        });
    }
    Ok(header)
}

fn read_body(path: &Path, header: &NpyHeader, reader: &mut impl Read) -> Result<Volume, NpyError> {
    let p = || path.to_path_buf();
    let io_err = |error| NpyError::Io { path: p(), error };
    let body_len = header.body_len();
    let mut body = Vec::new();
    usize::try_from(body_len)
        .ok()
        .and_then(|n| body.try_reserve_exact(n).ok())
        .ok_or(NpyError::OutOfMemory {
            path: p(),
            bytes: body_len,
        })?;
    reader
        .take(body_len)
        .read_to_end(&mut body)
        .map_err(io_err)?;
    if (body.len() as u64) < body_len {
        return Err(NpyError::Truncated {
            path: p(),
            found: body.len() as u64,
            header: Box::new(header.clone()),
        });
    }
    // The length was checked with the header; this catches a file that grew since.
    let mut probe = [0u8; 1];
    if read_up_to(reader, &mut probe).map_err(io_err)? > 0 {
        let extra = 1 + io::copy(reader, &mut io::sink()).map_err(io_err)?;
        return Err(NpyError::TrailingBytes {
            path: p(),
            extra,
            header: Box::new(header.clone()),
        });
    }
    let (data, note) = if header.dtype.scalar == Scalar::U8 {
        (body, None)
    } else {
        let (data, note) = scale_to_u8(path, header, &body)?;
        (data, Some(note))
    };
    let data = Array3::from_shape_vec(header.shape, data).map_err(|e| NpyError::BadHeader {
        path: p(),
        reason: format!("shape does not match the data: {e}"),
    })?;
    Ok(Volume { data, note })
}

fn decode(dtype: Dtype, b: &[u8]) -> f64 {
    macro_rules! num {
        ($t:ty, $n:literal) => {{
            let mut a = [0u8; $n];
            a.copy_from_slice(&b[..$n]);
            match dtype.order {
                ByteOrder::Little => <$t>::from_le_bytes(a) as f64,
                ByteOrder::Big => <$t>::from_be_bytes(a) as f64,
            }
        }};
    }
    match dtype.scalar {
        Scalar::U8 => f64::from(b[0]),
        Scalar::I16 => num!(i16, 2),
        Scalar::U16 => num!(u16, 2),
        Scalar::I32 => num!(i32, 4),
        Scalar::U32 => num!(u32, 4),
        Scalar::F32 => num!(f32, 4),
        Scalar::F64 => num!(f64, 8),
    }
}

/// Min-max scales a whole series to 0–255; NaN or infinity is an error.
fn scale_to_u8(
    path: &Path,
    header: &NpyHeader,
    body: &[u8],
) -> Result<(Vec<u8>, String), NpyError> {
    let dtype = header.dtype;
    let size = dtype.scalar.size();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, chunk) in body.chunks_exact(size).enumerate() {
        let v = decode(dtype, chunk);
        if dtype.scalar.is_float() && !v.is_finite() {
            let plane = header.height() * header.width();
            return Err(NpyError::NotFinite {
                path: path.to_path_buf(),
                dtype,
                index: [i / plane, (i % plane) / header.width(), i % header.width()],
            });
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let n = body.len() / size;
    if lo >= hi {
        return Ok((
            vec![0; n],
            format!(
                "constant {dtype} series (every value {}): shown as all zeros",
                number(lo)
            ),
        ));
    }
    // Halved, so that a range as wide as float64's (-max to max) does not overflow.
    let (lo_half, range_half) = (lo * 0.5, hi * 0.5 - lo * 0.5);
    let data = body
        .chunks_exact(size)
        .map(|chunk| {
            let t = (decode(dtype, chunk) * 0.5 - lo_half) / range_half;
            (t * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    Ok((
        data,
        format!(
            "scaled from {dtype} range [{}, {}] to 0–255",
            number(lo),
            number(hi)
        ),
    ))
}

/// A value for a note: plain where short, in scientific notation where huge or tiny.
fn number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e9).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

// ---- the header dict ------------------------------------------------------------------------

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    None,
    Tuple(Vec<Value>),
    List(Vec<Value>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn items(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        match self {
            Value::Str(s) => write!(f, "'{s}'"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::None => f.write_str("None"),
            Value::Tuple(v) => {
                f.write_str("(")?;
                items(f, v)?;
                f.write_str(if v.len() == 1 { ",)" } else { ")" })
            }
            Value::List(v) => {
                f.write_str("[")?;
                items(f, v)?;
                f.write_str("]")
            }
        }
    }
}

struct Dict {
    descr: Value,
    fortran_order: Value,
    shape: Value,
}

const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.text.len() && self.text[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the header".to_string(),
            Some(b) => format!("'{}'", std::ascii::escape_default(b)),
        }
    }

    fn fail<T>(&self, expected: &str) -> Result<T, String> {
        Err(format!(
            "at byte {} of the dict: expected {expected}, found {}",
            self.pos,
            self.found()
        ))
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return self.fail("a quoted string"),
        };
        self.pos += 1;
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == quote {
                let s = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
                self.pos += 1;
                return Ok(s);
            }
            if b == b'\\' || b == b'\n' {
                return self.fail("a simple string (no escapes or line breaks)");
            }
            self.pos += 1;
        }
        self.fail("a closing quote")
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return self.fail("a value nested less deeply");
        }
        self.skip_ws();
        match self.peek() {
            Some(b'\'' | b'"') => self.string().map(Value::Str),
            Some(b'(') => self.sequence(b')', depth).map(Value::Tuple),
            Some(b'[') => self.sequence(b']', depth).map(Value::List),
            Some(b'0'..=b'9') => {
                let start = self.pos;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
                let digits = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
                // Python 2 wrote long integers as `10L`.
                self.eat(b'L');
                digits
                    .parse::<u64>()
                    .map(Value::Int)
                    .map_err(|_| format!("integer {digits} is too large"))
            }
            Some(b'A'..=b'Z' | b'a'..=b'z') => {
                let start = self.pos;
                while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_') {
                    self.pos += 1;
                }
                match &self.text[start..self.pos] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    b"None" => Ok(Value::None),
                    word => Err(format!(
                        "at byte {start} of the dict: expected a value, found '{}'",
                        String::from_utf8_lossy(word)
                    )),
                }
            }
            _ => self.fail("a value (string, True, False, integer or tuple)"),
        }
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, String> {
        self.pos += 1; // the opening bracket
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            if self.eat(close) {
                return Ok(items);
            }
            if !self.eat(b',') {
                return self.fail(&format!("',' or '{}'", char::from(close)));
            }
        }
    }

    fn dict(&mut self) -> Result<Dict, String> {
        self.skip_ws();
        if !self.eat(b'{') {
            return self.fail("'{' at the start");
        }
        let mut descr = None;
        let mut fortran_order = None;
        let mut shape = None;
        loop {
            self.skip_ws();
            if self.eat(b'}') {
                break;
            }
            let key_at = self.pos;
            let key = self.string()?;
            self.skip_ws();
            if !self.eat(b':') {
                return self.fail("':' after a key");
            }
            let value = self.value(0)?;
            let slot = match key.as_str() {
                "descr" => &mut descr,
                "fortran_order" => &mut fortran_order,
                "shape" => &mut shape,
                _ => {
                    return Err(format!(
                        "unexpected key '{key}': expected exactly 'descr', 'fortran_order' \
                         and 'shape'"
                    ))
                }
            };
            if slot.is_some() {
                return Err(format!(
                    "at byte {key_at} of the dict: key '{key}' appears twice"
                ));
            }
            *slot = Some(value);
            self.skip_ws();
            if self.eat(b'}') {
                break;
            }
            if !self.eat(b',') {
                return self.fail("',' or '}'");
            }
        }
        self.skip_ws();
        if self.pos < self.text.len() {
            return self.fail("only spaces and a newline after the dict");
        }
        let missing = |name| format!("missing key '{name}'");
        Ok(Dict {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

fn parse_dict(text: &[u8]) -> Result<Dict, String> {
    Parser { text, pos: 0 }.dict()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn npy(version: u8, dict: &str, body: &[u8]) -> Vec<u8> {
        let len_field = if version == 1 { 2 } else { 4 };
        let mut header = dict.to_string();
        while !(8 + len_field + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header.as_bytes());
        out.extend(body);
        out
    }

    fn dict(descr: &str, shape: &str) -> String {
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
    }

    fn path() -> &'static Path {
        Path::new("x.npy")
    }

    #[test]
    fn reads_uint8_in_every_version() {
        let body: Vec<u8> = (0..2 * 3 * 4).collect();
        for version in [1, 2, 3] {
            let bytes = npy(version, &dict("|u1", "(2, 3, 4)"), &body);
            let header = parse_header(path(), &bytes).expect("header");
            assert_eq!(header.version, (version, 0));
            assert_eq!(header.shape, [2, 3, 4]);
            assert_eq!(header.data_offset % 64, 0);
            let volume = parse_volume(path(), &bytes).expect("volume");
            assert_eq!(volume.note, None);
            assert_eq!(volume.data[[1, 2, 3]], 23);
            assert_eq!(volume.slice(1).map(|s| s[[0, 0]]), Some(12));
            assert!(volume.slice(2).is_none());
        }
    }

    #[test]
    fn dict_variants_numpy_and_others_write() {
        for text in [
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1), }",
            "{\"descr\":\"<u1\",\"fortran_order\":False,\"shape\":(1,1,1)}",
            "{'shape': (1L, 1L, 1L), 'fortran_order': False, 'descr': 'u1'}",
            "  {'descr': '>u1', 'fortran_order': False, 'shape': ( 1 , 1 , 1 , ) }\n",
        ] {
            let bytes = npy(1, text, &[7]);
            assert!(parse_volume(path(), &bytes).is_ok(), "{text}");
        }
    }

    #[test]
    fn dtype_names() {
        assert_eq!(Dtype::parse("<i2").map(|d| d.descr()), Some("<i2".into()));
        assert_eq!(
            Dtype::parse(">f8").map(|d| d.to_string()),
            Some("float64 (big-endian)".into())
        );
        assert_eq!(Dtype::parse("<u1"), Some(Dtype::U8));
        assert_eq!(Dtype::parse("|i2"), None);
        assert_eq!(Dtype::parse("<i1"), None);
        assert_eq!(Dtype::parse("<c8"), None);
        assert_eq!(Dtype::parse(""), None);
    }

    #[test]
    fn structured_dtype_is_unsupported_not_malformed() {
        let bytes = npy(
            1,
            "{'descr': [('a', '<i4'), ('b', '<f8')], 'fortran_order': False, 'shape': (1, 1, 1), }",
            &[0; 12],
        );
        let err = parse_header(path(), &bytes).expect_err("structured");
        assert!(matches!(err, NpyError::UnsupportedDtype { .. }), "{err}");
        assert!(
            err.to_string().contains("[('a', '<i4'), ('b', '<f8')]"),
            "{err}"
        );
    }

    #[test]
    fn dict_errors_say_where() {
        for (text, wanted) in [
            (
                "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1)",
                "expected ',' or '}'",
            ),
            (
                "{'descr': '|u1', 'fortran_order': False}",
                "missing key 'shape'",
            ),
            (
                "{'descr': '|u1', 'descr': '|u1'}",
                "key 'descr' appears twice",
            ),
            (
                "{'descr': '|u1', 'fortran_order': Maybe, 'shape': (1,)}",
                "found 'Maybe'",
            ),
            ("['descr']", "expected '{' at the start"),
            ("{'a': 1}", "unexpected key 'a'"),
            (
                "{'shape': (((((((((((((((((((((1,),),),),),),),),),),),),),),),),),),),),)}",
                "nested",
            ),
            ("{'shape': (99999999999999999999999,)}", "too large"),
            (
                "{'descr': '|u1', 'fortran_order': 0, 'shape': (1, 1, 1)}",
                "'fortran_order' is 0",
            ),
            (
                "{'descr': '|u1', 'fortran_order': False, 'shape': 3}",
                "'shape' is 3",
            ),
            (
                "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 'a', 1)}",
                "'shape' holds 'a'",
            ),
            (
                "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1)} x",
                "after the dict",
            ),
        ] {
            let bytes = npy(1, text, &[0]);
            let err = parse_header(path(), &bytes).expect_err(text);
            let msg = err.to_string();
            assert!(msg.contains(wanted), "{text}: {msg}");
            assert!(msg.starts_with("x.npy: "), "{msg}");
        }
    }

    #[test]
    fn big_endian_and_wide_integers_scale() {
        let values: [u16; 4] = [100, 200, 300, 500];
        let body: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        let v = parse_volume(path(), &npy(1, &dict(">u2", "(1, 2, 2)"), &body)).expect("u2");
        assert_eq!(
            v.data.iter().copied().collect::<Vec<_>>(),
            [0, 64, 128, 255]
        );
        assert_eq!(
            v.note.as_deref(),
            Some("scaled from uint16 (big-endian) range [100, 500] to 0–255")
        );
        let body: Vec<u8> = [-5i32, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let v = parse_volume(path(), &npy(1, &dict("<i4", "(2, 1, 1)"), &body)).expect("i4");
        assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), [0, 255]);
        let body: Vec<u8> = [7u32, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let v = parse_volume(path(), &npy(1, &dict("<u4", "(2, 1, 1)"), &body)).expect("u4");
        assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), [0, 0]);
        assert!(v
            .note
            .as_deref()
            .is_some_and(|n| n.contains("constant uint32")));
        let body: Vec<u8> = [f64::MIN, 0.0, f64::MAX]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let v = parse_volume(path(), &npy(1, &dict("<f8", "(3, 1, 1)"), &body)).expect("wide");
        assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), [0, 128, 255]);
        assert_eq!(
            v.note.as_deref(),
            Some("scaled from float64 range [-1.7976931348623157e308, 1.7976931348623157e308] to 0–255")
        );
        let body: Vec<u8> = [0.0f64, f64::INFINITY]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let err = parse_volume(path(), &npy(1, &dict(">f8", "(1, 1, 2)"), &body)).expect_err("inf");
        assert!(
            err.to_string()
                .contains("value at [0, 0, 1] is NaN or infinite"),
            "{err}"
        );
    }

    #[test]
    fn a_reader_that_grows_past_the_header_length_is_caught() {
        // The length check uses the length given; the body read catches more data behind it.
        let bytes = npy(1, &dict("|u1", "(1, 1, 2)"), &[1, 2, 3]);
        let mut reader = &bytes[..];
        let header = read_header_from(path(), &mut reader, bytes.len() as u64 - 1).expect("h");
        let err = read_body(path(), &header, &mut reader).expect_err("grew");
        assert!(
            err.to_string().contains("1 unexpected byte after the data"),
            "{err}"
        );
        let mut reader = &bytes[..bytes.len() - 2];
        let header = read_header_from(path(), &mut reader, bytes.len() as u64 - 1).expect("h");
        let err = read_body(path(), &header, &mut reader).expect_err("shrank");
        assert!(err.to_string().contains("the file has 1"), "{err}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_volume(path(), &bytes);
        }

        #[test]
        fn arbitrary_headers_after_a_valid_prefix_never_panic(
            version in 1u8..=3,
            text in proptest::collection::vec(any::<u8>(), 0..200),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend([version, 0]);
            if version == 1 {
                bytes.extend((text.len() as u16).to_le_bytes());
            } else {
                bytes.extend((text.len() as u32).to_le_bytes());
            }
            bytes.extend(&text);
            bytes.extend(&body);
            let _ = parse_volume(path(), &bytes);
        }

        #[test]
        fn dict_like_text_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("{"), Just("}"), Just("("), Just(")"), Just("["), Just("]"),
                    Just(","), Just(":"), Just(" "), Just("'descr'"), Just("'shape'"),
                    Just("'fortran_order'"), Just("'|u1'"), Just("'<f4'"), Just("'>i2'"),
                    Just("True"), Just("False"), Just("None"), Just("0"), Just("1"), Just("3"),
                    Just("18446744073709551616"), Just("'"), Just("\""), Just("\n"), Just("L"),
                ],
                0..40,
            ),
            body in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let _ = parse_volume(path(), &npy(1, &parts.concat(), &body));
        }

        #[test]
        fn valid_small_volumes_round_trip(
            s in 1usize..4, h in 1usize..5, w in 1usize..5, seed in any::<u8>(),
        ) {
            let body: Vec<u8> = (0..s * h * w).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let bytes = npy(2, &dict("|u1", &format!("({s}, {h}, {w})")), &body);
            let v = parse_volume(path(), &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(v.data.shape(), &[s, h, w]);
            prop_assert_eq!(v.data.iter().copied().collect::<Vec<_>>(), body);
        }
    }
}
