//! Writing `.npy` files (format 1.0, C order), atomically, with ndarray-npy's writer.
use std::io;
use std::path::Path;

use ndarray::Array3;
use ndarray_npy::{WritableElement, WriteNpyError, WriteNpyExt};

/// Writes a C-order uint8 `.npy` (format 1.0) atomically (temp file + rename, no fsync).
pub fn write_u8_volume(path: &Path, volume: &Array3<u8>) -> io::Result<()> {
    write_npy(path, volume)
}

/// Writes a C-order float32 `.npy` (format 1.0) atomically, in the machine's byte order
/// (little-endian on x86 and ARM).
pub fn write_f32_volume(path: &Path, volume: &Array3<f32>) -> io::Result<()> {
    write_npy(path, volume)
}

fn write_npy<A: WritableElement + Clone>(path: &Path, volume: &Array3<A>) -> io::Result<()> {
    // ndarray-npy writes an array in Fortran layout as `fortran_order: True`, which the reader
    // refuses: always write C order.
    let volume = volume.as_standard_layout();
    crate::fsutil::atomic_write_unsynced(path, |out| {
        volume.write_npy(out).map_err(|e| match e {
            WriteNpyError::Io(e) => e,
            other => io::Error::other(other),
        })
    })
}

#[cfg(test)]
mod tests {
    use ndarray::ShapeBuilder;

    use super::*;
    use crate::data::npy::{read_header, read_volume, Scalar};

    #[test]
    fn volumes_read_back_as_written_in_c_order_whatever_their_layout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let values: Vec<u8> = (0..2 * 3 * 4).collect();
        let c_order = Array3::from_shape_vec((2, 3, 4), values.clone()).expect("shape");
        let fortran = Array3::from_shape_vec((2, 3, 4).f(), values).expect("shape");
        for (name, volume) in [("c.npy", c_order), ("f.npy", fortran)] {
            let path = dir.path().join(name);
            write_u8_volume(&path, &volume).expect("write");
            let header = read_header(&path).expect("header");
            assert_eq!((header.version, header.shape), ((1, 0), [2, 3, 4]));
            assert_eq!(header.data_offset % 64, 0, "NumPy's alignment");
            assert_eq!(read_volume(&path).expect("read").data, volume);
        }
    }

    #[test]
    fn float_volumes_are_little_endian_float32() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cam.npy");
        let volume = Array3::from_shape_fn((1, 2, 2), |(_, r, c)| r as f32 - c as f32 * 0.5);
        write_f32_volume(&path, &volume).expect("write");
        let header = read_header(&path).expect("header");
        assert_eq!(header.dtype.descr(), "<f4");
        assert_eq!(header.dtype.scalar, Scalar::F32);
        let bytes = std::fs::read(&path).expect("read");
        let body: Vec<f32> = bytes[header.data_offset as usize..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(body, volume.iter().copied().collect::<Vec<_>>());
    }
}
