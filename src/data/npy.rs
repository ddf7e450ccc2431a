//! `.npy` volumes: a small reader of NumPy's format (versions 1.0, 2.0 and 3.0) for the 3-D
//! series MRNet ships, `uint8` of shape (slices, height, width), and a writer.
//!
//! The header is read and checked (magic, version, dict, dtype, order, shape, sizes, and the
//! file's length against the shape) before anything is allocated for the body, so a broken or
//! hostile file costs a few hundred bytes of reading, never gigabytes of memory. Other integer
//! and float dtypes are min-max scaled to 0–255 per series, and the [`Volume`] says so.
//!
//! Files are written with ndarray-npy. Its header parser (`ndarray_npy::npy::header`, through
//! `py_literal`'s PEG grammar) is not used for reading, because of what an exam file from
//! someone else can make it do: its time and memory double with each level of nesting (a
//! 128-byte header nested 20 deep took 6.6 s and one 32 MiB allocation; 30 deep would take
//! hours), a 40 kB flat list allocates 10 MiB, and it accepts duplicate keys and expressions
//! such as `1+1` but not Python 2's `10L`. The header dict is therefore read by kneecam's own
//! parser (`dict`): one pass, linear in the header's length, at most 16 levels deep, and every
//! error says at which byte and what was expected.
use std::fs::File;
use std::path::Path;

mod dict;
mod dtype;
mod error;
mod header;
mod volume;
mod write;

pub use dtype::{ByteOrder, Dtype, Scalar};
pub use error::NpyError;
pub use header::NpyHeader;
pub use volume::Volume;
pub use write::{write_f32_volume, write_u8_volume};

use header::read_header_from;
use volume::read_body;

/// Most slices a series may have; a header asking for more is refused before allocating.
pub const MAX_SLICES: usize = 1024;
/// Largest in-plane side, in pixels; a header asking for more is refused before allocating.
pub const MAX_SIDE: usize = 2048;
/// Longest header accepted, in bytes (NumPy writes well under 200).
pub const MAX_HEADER_LEN: usize = 65_536;

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

#[cfg(test)]
mod tests;
