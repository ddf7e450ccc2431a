//! The header: magic, version, length and dict, checked against the limits and the file's
//! length before anything is allocated for the body.
use std::io::{self, Read};
use std::path::Path;

use super::dict::{parse_dict, Value};
use super::{Dtype, NpyError, MAX_HEADER_LEN, MAX_SIDE, MAX_SLICES};

pub(super) const MAGIC: &[u8; 6] = b"\x93NUMPY";

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

/// Reads into `buf` until it is full or the reader ends; returns how much was read.
pub(super) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// Reads and checks the header from `reader`, the start of a file of `file_len` bytes: the
/// fixed prefix, the length field against [`MAX_HEADER_LEN`] and the file's length (before the
/// dict's buffer is allocated), the dict, and the shape against the limits and the file.
pub(super) fn read_header_from(
    path: &Path,
    reader: &mut impl Read,
    file_len: u64,
) -> Result<NpyHeader, NpyError> {
    let prefix = read_prefix(path, reader, file_len)?;
    let text = read_dict_text(path, reader, &prefix)?;
    let dict = parse_dict(&text).map_err(|reason| NpyError::BadHeader {
        path: path.to_path_buf(),
        reason,
    })?;
    let dtype = dtype_of(path, &dict.descr)?;
    c_order(path, &dict.fortran_order)?;
    let shape = shape_of(path, &dict.shape)?;
    let header = NpyHeader {
        version: prefix.version,
        dtype,
        shape,
        data_offset: prefix.data_offset(),
    };
    check_length(path, header, file_len)
}

/// The fixed part before the dict: magic, version and the dict's length.
struct Prefix {
    version: (u8, u8),
    /// Bytes of the length field: 2 (version 1.0) or 4.
    len_field: usize,
    header_len: usize,
}

impl Prefix {
    fn data_offset(&self) -> u64 {
        (8 + self.len_field + self.header_len) as u64
    }
}

fn read_prefix(path: &Path, reader: &mut impl Read, file_len: u64) -> Result<Prefix, NpyError> {
    let p = || path.to_path_buf();
    let io_err = |error| NpyError::Io { path: p(), error };
    let mut start = [0u8; 8];
    let n = read_up_to(reader, &mut start).map_err(io_err)?;
    let magic_len = n.min(MAGIC.len());
    if start[..magic_len] != MAGIC[..magic_len] {
        return Err(NpyError::BadMagic {
            path: p(),
            found: start[..magic_len].to_vec(),
        });
    }
    if n < start.len() {
        return Err(NpyError::TruncatedHeader {
            path: p(),
            needed: 10,
            found: n as u64,
        });
    }
    let version = (start[6], start[7]);
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
    let prefix = Prefix {
        version,
        len_field,
        header_len: u32::from_le_bytes(len_bytes) as usize,
    };
    if prefix.header_len > MAX_HEADER_LEN {
        return Err(NpyError::BadHeader {
            path: p(),
            reason: format!(
                "header length field says {} bytes, more than the {MAX_HEADER_LEN} \
                 a .npy header can plausibly need",
                prefix.header_len
            ),
        });
    }
    if file_len < prefix.data_offset() {
        return Err(NpyError::TruncatedHeader {
            path: p(),
            needed: prefix.data_offset(),
            found: file_len,
        });
    }
    Ok(prefix)
}

/// The dict's bytes; the caller has checked that the file is long enough to hold them.
fn read_dict_text(
    path: &Path,
    reader: &mut impl Read,
    prefix: &Prefix,
) -> Result<Vec<u8>, NpyError> {
    let mut text = vec![0u8; prefix.header_len];
    let n = read_up_to(reader, &mut text).map_err(|error| NpyError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    if n < prefix.header_len {
        return Err(NpyError::TruncatedHeader {
            path: path.to_path_buf(),
            needed: prefix.data_offset(),
            found: (8 + prefix.len_field + n) as u64,
        });
    }
    Ok(text)
}

fn dtype_of(path: &Path, descr: &Value) -> Result<Dtype, NpyError> {
    let parsed = match descr {
        Value::Str(s) => Dtype::parse(s),
        _ => None,
    };
    parsed.ok_or_else(|| NpyError::UnsupportedDtype {
        path: path.to_path_buf(),
        descr: match descr {
            Value::Str(s) => format!("'{s}'"),
            other => format!("'{other}'"),
        },
    })
}

fn c_order(path: &Path, fortran_order: &Value) -> Result<(), NpyError> {
    match fortran_order {
        Value::Bool(false) => Ok(()),
        Value::Bool(true) => Err(NpyError::FortranOrder {
            path: path.to_path_buf(),
        }),
        other => Err(NpyError::BadHeader {
            path: path.to_path_buf(),
            reason: format!("'fortran_order' is {other}, expected True or False"),
        }),
    }
}

/// The shape: a tuple of three integers, at least one slice, within the limits.
fn shape_of(path: &Path, shape: &Value) -> Result<[usize; 3], NpyError> {
    let p = || path.to_path_buf();
    let shape: Vec<u64> = match shape {
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
    match absurd {
        Some(reason) => Err(NpyError::Absurd {
            path: p(),
            shape,
            reason,
        }),
        // Within the limits, so these fit a usize and the products fit a u64.
        None => Ok([s as usize, h as usize, w as usize]),
    }
}

/// The file must be exactly as long as the header says.
fn check_length(path: &Path, header: NpyHeader, file_len: u64) -> Result<NpyHeader, NpyError> {
    let needed = header.file_len();
    if file_len < needed {
        return Err(NpyError::Truncated {
            path: path.to_path_buf(),
            found: file_len - header.data_offset,
            header: Box::new(header),
        });
    }
    if file_len > needed {
        return Err(NpyError::TrailingBytes {
            path: path.to_path_buf(),
            extra: file_len - needed,
            header: Box::new(header),
        });
    }
    Ok(header)
}
