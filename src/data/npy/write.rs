//! Writing `.npy` files (format 1.0, C order), atomically.
use std::io::Write;
use std::path::Path;

use ndarray::Array3;

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
