//! NIfTI-1 volumes (`.nii`, `.nii.gz`): the header through the `nifti` crate, checked here
//! (dimensions, data type, `vox_offset`, the affine), and the voxels read as one series whose
//! slices run along the third voxel axis.
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use nifti::NiftiHeader;
use sha2::{Digest, Sha256};

use super::{StudyError, StudyErrorKind, Values};
use crate::data::geometry::{cross, dot, Point, VolumeGeometry};

/// A NIfTI-1 header's size, in bytes.
const HEADER_BYTES: u64 = 348;

/// What a series needs from a NIfTI header.
#[derive(Debug, Clone, PartialEq)]
pub struct NiftiInfo {
    /// (i, j, k) sizes: columns, rows, slices.
    pub size: [usize; 3],
    pub datatype: i16,
    pub vox_offset: u64,
    pub scale: (f32, f32),
    pub big_endian: bool,
    /// Where the voxels lie, in DICOM's patient coordinates (LPS).
    pub geometry: VolumeGeometry,
    pub description: String,
}

fn bad(path: &Path, detail: impl Into<String>) -> StudyError {
    StudyError::new(path, StudyErrorKind::BadNifti, detail)
}

fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

fn open(path: &Path) -> Result<Box<dyn Read>, StudyError> {
    let file = File::open(path)
        .map_err(|e| StudyError::new(path, StudyErrorKind::Io, format!("cannot read: {e}")))?;
    let reader = BufReader::new(file);
    Ok(if is_gz(path) {
        Box::new(GzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

/// Bytes per voxel of the data types kneecam reads.
fn voxel_bytes(datatype: i16) -> Option<usize> {
    match datatype {
        2 | 256 => Some(1),      // uint8, int8
        4 | 512 => Some(2),      // int16, uint16
        8 | 768 | 16 => Some(4), // int32, uint32, float32
        64 => Some(8),           // float64
        _ => None,
    }
}

/// Reads and checks the header of the NIfTI-1 file at `path` (for an uncompressed file, also
/// that it holds the data the header promises).
pub fn nifti_header(path: &Path) -> Result<NiftiInfo, StudyError> {
    let header = NiftiHeader::from_reader(open(path)?).map_err(|e| {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("eof") || text.contains("end of file") {
            bad(path, format!("truncated NIfTI header: {text}"))
        } else {
            bad(path, format!("not a NIfTI-1 file: {text}"))
        }
    })?;
    let info = check_header(path, &header)?;
    if !is_gz(path) {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        let needed = info.vox_offset + data_len(&info);
        if len < needed {
            return Err(bad(
                path,
                format!(
                    "the file is {len} bytes, but vox_offset {} plus {}×{}×{} voxels of {} \
                     bytes needs {needed}: truncated, or a wrong vox_offset",
                    info.vox_offset,
                    info.size[0],
                    info.size[1],
                    info.size[2],
                    voxel_bytes(info.datatype).unwrap_or(0)
                ),
            ));
        }
    }
    Ok(info)
}

fn data_len(info: &NiftiInfo) -> u64 {
    let voxels = info.size.iter().map(|&n| n as u64).product::<u64>();
    voxels * voxel_bytes(info.datatype).unwrap_or(0) as u64
}

/// The checks of a parsed header; `path` only names it.
pub fn check_header(path: &Path, h: &NiftiHeader) -> Result<NiftiInfo, StudyError> {
    if h.sizeof_hdr != 348 {
        return Err(bad(
            path,
            format!(
                "sizeof_hdr {}: expected 348 (a NIfTI-1 header)",
                h.sizeof_hdr
            ),
        ));
    }
    if &h.magic != b"n+1\0" {
        return Err(bad(
            path,
            format!(
                "magic {:?}: expected \"n+1\" (a single-file .nii; .hdr/.img pairs are not read)",
                String::from_utf8_lossy(&h.magic).trim_end_matches('\0')
            ),
        ));
    }
    let rank = usize::from(h.dim[0]);
    if !(3..=7).contains(&rank) {
        return Err(bad(
            path,
            format!("{rank} dimensions: expected a 3-D volume (slices of a series)"),
        ));
    }
    let extra: Vec<u16> = h.dim[4..=rank].to_vec();
    if extra.iter().any(|&n| n > 1) {
        return Err(bad(
            path,
            format!(
                "a {rank}-D volume ({}): kneecam reads one 3-D volume per file; extract the \
                 volume you want (e.g. with fslroi or nibabel's slicer) into its own file",
                h.dim[1..=rank]
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join("×")
            ),
        ));
    }
    let size = [h.dim[1], h.dim[2], h.dim[3]].map(usize::from);
    if size.contains(&0)
        || size[0] > crate::data::npy::MAX_SIDE
        || size[1] > crate::data::npy::MAX_SIDE
        || size[2] > crate::data::npy::MAX_SLICES
    {
        return Err(bad(
            path,
            format!(
                "dimensions {}×{}×{}: expected 1 to {} columns and rows and 1 to {} slices",
                size[0],
                size[1],
                size[2],
                crate::data::npy::MAX_SIDE,
                crate::data::npy::MAX_SLICES
            ),
        ));
    }
    voxel_bytes(h.datatype).ok_or_else(|| {
        bad(
            path,
            format!(
                "data type {}: expected uint8, int8, int16, uint16, int32, uint32, float32 or \
                 float64",
                h.datatype
            ),
        )
    })?;
    let offset = h.vox_offset;
    if !offset.is_finite() || offset < 352.0 || offset.fract() != 0.0 || offset > 1e9 {
        return Err(bad(
            path,
            format!("vox_offset {offset}: expected a whole number of bytes, at least 352"),
        ));
    }
    let geometry = affine_geometry(path, h, size)?;
    let (slope, inter) = if h.scl_slope == 0.0 || !h.scl_slope.is_finite() {
        (1.0, 0.0)
    } else {
        (
            h.scl_slope,
            if h.scl_inter.is_finite() {
                h.scl_inter
            } else {
                0.0
            },
        )
    };
    Ok(NiftiInfo {
        size,
        datatype: h.datatype,
        vox_offset: offset as u64,
        scale: (slope, inter),
        big_endian: h.endianness == nifti::Endianness::Big,
        geometry,
        description: String::from_utf8_lossy(&h.descrip)
            .trim_end_matches('\0')
            .trim()
            .to_string(),
    })
}

/// The voxel-to-RAS matrix (3×3 and offset): the sform when its code is set, else the qform.
fn affine(path: &Path, h: &NiftiHeader) -> Result<([[f64; 3]; 3], Point), StudyError> {
    if h.sform_code > 0 {
        let rows = [h.srow_x, h.srow_y, h.srow_z].map(|r| r.map(f64::from));
        let m = rows.map(|r| [r[0], r[1], r[2]]);
        return Ok((m, [rows[0][3], rows[1][3], rows[2][3]]));
    }
    if h.qform_code > 0 {
        let (b, c, d) = (
            f64::from(h.quatern_b),
            f64::from(h.quatern_c),
            f64::from(h.quatern_d),
        );
        let rest = 1.0 - (b * b + c * c + d * d);
        let r = quaternion_rotation(a_of(rest), b, c, d);
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let spacing = [
            f64::from(h.pixdim[1]),
            f64::from(h.pixdim[2]),
            f64::from(h.pixdim[3]) * qfac,
        ];
        let m = r.map(|row| {
            [
                row[0] * spacing[0],
                row[1] * spacing[1],
                row[2] * spacing[2],
            ]
        });
        let t = [h.quatern_x, h.quatern_y, h.quatern_z].map(f64::from);
        return Ok((m, t));
    }
    Err(bad(
        path,
        "qform_code and sform_code are both 0: the volume's orientation is unknown (expected a \
         qform or an sform)",
    ))
}

/// The quaternion's `a` from 1 − b² − c² − d²: 0 below 1e-7, as NIfTI's reference library (a
/// 180° rotation's `a` is 0, not f32 rounding's residue).
fn a_of(rest: f64) -> f64 {
    if rest < 1e-7 {
        0.0
    } else {
        rest.sqrt()
    }
}

/// The rotation matrix of the unit quaternion (a, b, c, d), as the NIfTI-1 header defines it.
pub fn quaternion_rotation(a: f64, b: f64, c: f64, d: f64) -> [[f64; 3]; 3] {
    [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - b * b - c * c,
        ],
    ]
}

fn affine_geometry(
    path: &Path,
    h: &NiftiHeader,
    size: [usize; 3],
) -> Result<VolumeGeometry, StudyError> {
    let (m, t) = affine(path, h)?;
    let column = |c: usize| [m[0][c], m[1][c], m[2][c]];
    let (i_step, j_step, k_step) = (column(0), column(1), column(2));
    let det = dot(i_step, cross(j_step, k_step));
    if !det.is_finite() || det.abs() < 1e-9 || t.iter().any(|v| !v.is_finite()) {
        return Err(bad(
            path,
            format!(
                "the affine is zero or singular (determinant {det:.3e}): voxels have no \
                 position"
            ),
        ));
    }
    // NIfTI's world is RAS+; DICOM's patient coordinates are LPS+.
    let lps = |p: Point| [-p[0], -p[1], p[2]];
    let geometry = VolumeGeometry {
        origins: (0..size[2])
            .map(|k| {
                let p = [
                    t[0] + k_step[0] * k as f64,
                    t[1] + k_step[1] * k as f64,
                    t[2] + k_step[2] * k as f64,
                ];
                lps(p)
            })
            .collect(),
        column_step: lps(i_step),
        row_step: lps(j_step),
        rows: size[1],
        columns: size[0],
    };
    geometry
        .check()
        .map_err(|e| bad(path, format!("unusable affine: {e}")))?;
    Ok(geometry)
}

fn decode(datatype: i16, big: bool, b: &[u8]) -> f32 {
    macro_rules! num {
        ($t:ty, $n:literal) => {{
            let mut a = [0u8; $n];
            a.copy_from_slice(&b[..$n]);
            (if big {
                <$t>::from_be_bytes(a)
            } else {
                <$t>::from_le_bytes(a)
            }) as f32
        }};
    }
    match datatype {
        2 => f32::from(b[0]),
        256 => f32::from(b[0] as i8),
        4 => num!(i16, 2),
        512 => num!(u16, 2),
        8 => num!(i32, 4),
        768 => num!(u32, 4),
        16 => num!(f32, 4),
        _ => num!(f64, 8),
    }
}

/// Reads the volume as (slices, rows, columns) of scaled values; with `hash`, the sha256 of the
/// file's bytes as stored.
pub fn read_slices(
    path: &Path,
    original: &VolumeGeometry,
    hash: bool,
) -> Result<(Values, Option<Sha256>), StudyError> {
    // One read of the file: its sha256, its header and its voxels all come from these bytes.
    let bytes = std::fs::read(path)
        .map_err(|e| StudyError::new(path, StudyErrorKind::Io, format!("cannot read: {e}")))?;
    let digest = hash.then(|| Sha256::new().chain_update(&bytes));
    let mut reader: Box<dyn Read + '_> = if is_gz(path) {
        Box::new(GzDecoder::new(&bytes[..]))
    } else {
        Box::new(&bytes[..])
    };
    let header = NiftiHeader::from_reader(&mut reader)
        .map_err(|e| bad(path, format!("not a NIfTI-1 file: {e}")))?;
    let info = check_header(path, &header)?;
    if info.geometry.slices() != original.slices() {
        return Err(bad(path, "the file changed since the dataset was opened"));
    }
    let io = |e: std::io::Error| bad(path, format!("cannot read the voxels: {e}"));
    // The header took its 348 bytes; the voxels start at vox_offset.
    std::io::copy(
        &mut (&mut reader).take(info.vox_offset - HEADER_BYTES),
        &mut std::io::sink(),
    )
    .map_err(io)?;
    let len = data_len(&info) as usize;
    let mut raw = Vec::new();
    raw.try_reserve_exact(len)
        .map_err(|_| bad(path, format!("{len} bytes of voxels do not fit in memory")))?;
    reader.take(len as u64).read_to_end(&mut raw).map_err(io)?;
    if raw.len() < len {
        return Err(bad(
            path,
            format!(
                "truncated: {} of the {len} bytes of voxels after vox_offset {}",
                raw.len(),
                info.vox_offset
            ),
        ));
    }
    let size = voxel_bytes(info.datatype).unwrap_or(1);
    let [columns, rows, slices] = info.size;
    let (slope, inter) = info.scale;
    let mut values = Values::zeros((slices, rows, columns));
    for (index, chunk) in raw.chunks_exact(size).enumerate() {
        let v = decode(info.datatype, info.big_endian, chunk);
        if !v.is_finite() {
            return Err(bad(
                path,
                format!("voxel {index} is {v}: expected finite values"),
            ));
        }
        let (i, j, k) = (
            index % columns,
            (index / columns) % rows,
            index / (columns * rows),
        );
        values[[k, j, i]] = v * slope + inter;
    }
    Ok((values, digest))
}
