//! One phantom series as a gzipped NIfTI-1 file: `uint8` voxels, i (columns) fastest, then j
//! (rows), then k (slices); the sform and the qform both state the geometry (scanner
//! coordinates, RAS). Written by hand, 348 header bytes and an empty extension flag: the `nifti`
//! crate writes only through its `ndarray` feature, another major version of ndarray than
//! kneecam's, and the header is a fixed table of little-endian fields.
use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use ndarray::Array3;

use crate::data::geometry::{cross, dot, norm, sub, unit, Point, VolumeGeometry};
use crate::fsutil::atomic_write_unsynced;

/// Header size, and the offset of the voxels after the 4-byte extension flag.
const HEADER_BYTES: usize = 348;
const VOX_OFFSET: usize = 352;
const DT_UINT8: i16 = 2;
const NIFTI_UNITS_MM: u8 = 2;
const NIFTI_XFORM_SCANNER_ANAT: i16 = 1;

/// DICOM's patient coordinates (LPS) to NIfTI's (RAS), and back: x and y change sign.
fn ras(p: Point) -> Point {
    [-p[0], -p[1], p[2]]
}

/// The step from one slice to the next: between the first two origins, or 1 mm along the
/// normal for a single slice.
fn slice_step(geometry: &VolumeGeometry) -> Point {
    match geometry.origins.as_slice() {
        [first, second, ..] => sub(*second, *first),
        _ => geometry.normal(),
    }
}

/// The quaternion (b, c, d) and qfac of the rotation whose columns are the unit i, j and k
/// directions (k negated when they form a left-handed frame, qfac −1), as NIfTI's reference
/// library computes it (`nifti_mat44_to_quatern`); the directions must be orthogonal.
pub fn quaternion(i: Point, j: Point, k: Point) -> ([f64; 3], f64) {
    let [i, j, k] = [i, j, k].map(|v| unit(v).unwrap_or([0.0; 3]));
    let qfac = if dot(cross(i, j), k) < 0.0 { -1.0 } else { 1.0 };
    let k = k.map(|v| v * qfac);
    let (r11, r12, r13) = (i[0], j[0], k[0]);
    let (r21, r22, r23) = (i[1], j[1], k[1]);
    let (r31, r32, r33) = (i[2], j[2], k[2]);
    let trace = r11 + r22 + r33 + 1.0;
    let (a, b, c, d);
    if trace > 0.5 {
        a = 0.5 * trace.sqrt();
        b = 0.25 * (r32 - r23) / a;
        c = 0.25 * (r13 - r31) / a;
        d = 0.25 * (r21 - r12) / a;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r12 + r21) / b;
            d = 0.25 * (r13 + r31) / b;
            a = 0.25 * (r32 - r23) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r12 + r21) / c;
            d = 0.25 * (r23 + r32) / c;
            a = 0.25 * (r13 - r31) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r13 + r31) / d;
            c = 0.25 * (r23 + r32) / d;
            a = 0.25 * (r21 - r12) / d;
        }
    }
    // NIfTI stores b, c, d only, with a = √(1 − b² − c² − d²) ≥ 0.
    let sign = if a < 0.0 { -1.0 } else { 1.0 };
    ([b * sign, c * sign, d * sign], qfac)
}

/// The 348-byte NIfTI-1 header of a `uint8` volume of `size` (columns, rows, slices).
pub fn header(size: [usize; 3], geometry: &VolumeGeometry, description: &str) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_BYTES];
    let mut put =
        |offset: usize, bytes: &[u8]| h[offset..offset + bytes.len()].copy_from_slice(bytes);
    put(0, &(HEADER_BYTES as i32).to_le_bytes());
    put(38, b"r");
    let dim: [i16; 8] = [
        3,
        size[0] as i16,
        size[1] as i16,
        size[2] as i16,
        1,
        1,
        1,
        1,
    ];
    for (n, v) in dim.iter().enumerate() {
        put(40 + 2 * n, &v.to_le_bytes());
    }
    put(70, &DT_UINT8.to_le_bytes());
    put(72, &8i16.to_le_bytes());
    let (i_step, j_step, k_step) = (
        ras(geometry.column_step),
        ras(geometry.row_step),
        ras(slice_step(geometry)),
    );
    let ([b, c, d], qfac) = quaternion(i_step, j_step, k_step);
    let pixdim = [
        qfac,
        norm(i_step),
        norm(j_step),
        norm(k_step),
        0.0,
        0.0,
        0.0,
        0.0,
    ];
    for (n, v) in pixdim.iter().enumerate() {
        put(76 + 4 * n, &(*v as f32).to_le_bytes());
    }
    put(108, &(VOX_OFFSET as f32).to_le_bytes());
    put(112, &1f32.to_le_bytes());
    put(123, &[NIFTI_UNITS_MM]);
    let text = description.as_bytes();
    put(148, &text[..text.len().min(79)]);
    put(252, &NIFTI_XFORM_SCANNER_ANAT.to_le_bytes());
    put(254, &NIFTI_XFORM_SCANNER_ANAT.to_le_bytes());
    let origin = ras(geometry.origins.first().copied().unwrap_or([0.0; 3]));
    for (n, v) in [b, c, d, origin[0], origin[1], origin[2]]
        .iter()
        .enumerate()
    {
        put(256 + 4 * n, &(*v as f32).to_le_bytes());
    }
    for axis in 0..3 {
        let row = [i_step[axis], j_step[axis], k_step[axis], origin[axis]];
        for (n, v) in row.iter().enumerate() {
            put(280 + 16 * axis + 4 * n, &(*v as f32).to_le_bytes());
        }
    }
    put(344, b"n+1\0");
    h
}

/// Writes `image` (slices, rows, columns), whose voxels lie at `geometry`, to `path` as a
/// gzipped NIfTI-1 file.
pub fn write_nifti_gz(
    path: &Path,
    image: &Array3<u8>,
    geometry: &VolumeGeometry,
    description: &str,
) -> std::io::Result<()> {
    let (slices, rows, columns) = image.dim();
    let image = image.as_standard_layout();
    let voxels = image
        .as_slice()
        .ok_or_else(|| std::io::Error::other("not contiguous"))?;
    atomic_write_unsynced(path, |w| {
        let mut gz = GzEncoder::new(w, Compression::fast());
        gz.write_all(&header([columns, rows, slices], geometry, description))?;
        gz.write_all(&[0u8; VOX_OFFSET - HEADER_BYTES])?;
        // (slices, rows, columns) in C order is k slowest, then j, then i: NIfTI's order.
        gz.write_all(voxels)?;
        gz.finish()?.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::phantom::ExamPlan;
    use crate::data::study::nifti_header;
    use crate::data::Plane;

    fn close(a: Point, b: Point, tolerance: f64) -> bool {
        norm(sub(a, b)) <= tolerance
    }

    /// The rotation matrix NIfTI builds from (b, c, d), as its reference library does.
    fn rotation([b, c, d]: [f64; 3]) -> [[f64; 3]; 3] {
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        crate::data::study::quaternion_rotation(a, b, c, d)
    }

    #[test]
    fn the_quaternion_gives_back_the_directions_in_every_branch() {
        let deg = std::f64::consts::PI / 180.0;
        let (s, c) = ((25.0 * deg).sin(), (25.0 * deg).cos());
        let frames: [[Point; 3]; 7] = [
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]],
            [[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]],
            [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]],
            [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]],
            [[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, -1.0]],
            [[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]],
        ];
        for [i, j, k] in frames {
            let (q, qfac) = quaternion(i, j, k);
            let r = rotation(q);
            for (n, want) in [i, j, k.map(|v| v * qfac)].iter().enumerate() {
                let got = [r[0][n], r[1][n], r[2][n]];
                assert!(
                    got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9),
                    "{i:?} {j:?} {k:?}: column {n} {got:?}, want {want:?}"
                );
            }
            assert_eq!(qfac < 0.0, dot(cross(i, j), k) < 0.0);
        }
    }

    #[test]
    fn the_qform_states_the_same_geometry_as_the_sform() {
        let dir = tempfile::tempdir().expect("temp dir");
        for id in 0..3 {
            let plan = ExamPlan::new(31, id);
            for plane in Plane::ALL {
                let geometry = plan.geometry(plane);
                let size = [256, 256, geometry.slices()];
                let mut bytes = header(size, &geometry, "test");
                bytes.resize(VOX_OFFSET + 256 * 256 * geometry.slices(), 0);
                let sform = dir.path().join(format!("{id}-{plane}-sform.nii"));
                std::fs::write(&sform, &bytes).expect("write");
                // sform_code 0: the reader takes the qform (quaternion, pixdim, qfac, offset).
                bytes[254..256].copy_from_slice(&0i16.to_le_bytes());
                let qform = dir.path().join(format!("{id}-{plane}-qform.nii"));
                std::fs::write(&qform, &bytes).expect("write");
                // The reader computes the quaternion's a = √(1 − b² − c² − d²) from f32 values:
                // for a half-turn (a = 0: the coronal series) that leaves a ≈ 3e-4, a rotation
                // of about 0.02°, where NIfTI's reference library takes a = 0 below 1e-7. So the
                // qform's steps are held to 1e-3 of their length (0.15 mm across 256 pixels),
                // the sform's to 1e-5, and each origin to that times its distance from the first.
                let thickness = plan.series[plane.index()].thickness_mm;
                for (path, relative) in [(&sform, 1e-5), (&qform, 1e-3)] {
                    let info = nifti_header(path).expect("readable");
                    assert_eq!(info.size, size);
                    let read = &info.geometry;
                    assert_eq!(read.plane(), plane);
                    let steps = [
                        (read.column_step, geometry.column_step),
                        (read.row_step, geometry.row_step),
                    ];
                    for (got, want) in steps {
                        let tolerance = relative * norm(want);
                        assert!(close(got, want, tolerance), "{path:?}: {got:?} vs {want:?}");
                    }
                    let origins = read.origins.iter().zip(&geometry.origins);
                    for (k, (got, want)) in origins.enumerate() {
                        let tolerance = 1e-3 + relative * thickness * k as f64;
                        assert!(close(*got, *want, tolerance), "{path:?} {k}: {got:?}");
                    }
                }
            }
        }
    }
}
