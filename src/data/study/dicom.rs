//! DICOM files through dicom-rs: the header fields a series needs (read up to the pixel data
//! only), and the decoded pixels of a series' slices.
use std::io::Read;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions, Tag};
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use ndarray::{s, Array3};
use sha2::{Digest, Sha256};

use super::lengths::check_lengths;
use super::{SliceRef, StudyError, StudyErrorKind, Values};
use crate::data::geometry::{Point, VolumeGeometry};

/// JPEG Extended (Process 2 & 4): 8-bit is decoded, 12-bit is not.
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";

/// The Media Storage SOP Class of a DICOMDIR (a folder index, not an image).
const DICOMDIR_CLASS: &str = "1.2.840.10008.1.3.10";

/// What a series needs from one file's header.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomHeader {
    pub path: PathBuf,
    pub series_uid: String,
    pub description: String,
    pub number: Option<i64>,
    pub transfer_syntax: String,
    pub rows: usize,
    pub columns: usize,
    /// (between rows, between columns), mm.
    pub pixel_mm: (f64, f64),
    /// Row direction (along a row), then column direction (down a column).
    pub orientation: [f64; 6],
    /// ImagePositionPatient of each frame.
    pub positions: Vec<Point>,
    pub photometric: String,
}

/// Whether `path` starts with a DICOM Part 10 preamble (`DICM` at byte 128).
pub fn has_dicm_preamble(path: &Path) -> std::io::Result<bool> {
    let mut head = [0u8; 132];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..])? {
            0 => return Ok(false),
            n => read += n,
        }
    }
    Ok(&head[128..] == b"DICM")
}

fn error(path: &Path, kind: StudyErrorKind, detail: impl Into<String>) -> StudyError {
    StudyError::new(path, kind, detail)
}

/// An error and its sources, as one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// Whether `err` or one of its sources is an I/O error for input that ended early (std's
/// `read_exact` says "failed to fill whole buffer").
fn ended_early(err: &dyn std::error::Error) -> bool {
    let mut source = err.source();
    while let Some(inner) = source {
        if inner
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        source = inner.source();
    }
    let lower = chain(err).to_ascii_lowercase();
    ["unexpected end", "eof", "failed to fill whole buffer"]
        .iter()
        .any(|needle| lower.contains(needle))
}

/// A dicom-rs read error as kneecam says it: truncated files, broken headers, transfer syntaxes
/// it does not know.
fn read_error(path: &Path, err: &dicom_object::ReadError) -> StudyError {
    if let dicom_object::ReadError::ReadUnrecognizedTransferSyntax { uid, .. } = err {
        return unknown_syntax(path, uid);
    }
    let text = chain(err);
    let (kind, what) = if ended_early(err) {
        (StudyErrorKind::Truncated, "truncated DICOM file")
    } else {
        (StudyErrorKind::Decode, "unreadable DICOM file")
    };
    error(path, kind, format!("{what}: {text}"))
}

fn unknown_syntax(path: &Path, uid: &str) -> StudyError {
    error(
        path,
        StudyErrorKind::UnsupportedTransferSyntax,
        format!(
            "transfer syntax {} is not supported (unknown to kneecam)",
            uid.trim_end_matches('\0')
        ),
    )
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = obj.get(tag)?.to_str().ok()?;
    let value = value.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!value.is_empty()).then(|| value.to_string())
}

fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    obj.get(tag)?.to_multi_float64().ok()
}

/// The first item of sequence `tag` in `obj`.
fn item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag)?.items()?.first()
}

/// `tag` from `obj`, else from a functional group's `sequence` (per-frame groups first, then
/// shared): where enhanced multi-frame files keep geometry.
fn grouped_floats(
    obj: &InMemDicomObject,
    frame_group: Option<&InMemDicomObject>,
    sequence: Tag,
    tag: Tag,
) -> Option<Vec<f64>> {
    floats(obj, tag)
        .or_else(|| {
            frame_group
                .and_then(|g| item(g, sequence))
                .and_then(|i| floats(i, tag))
        })
        .or_else(|| {
            item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)
                .and_then(|g| item(g, sequence))
                .and_then(|i| floats(i, tag))
        })
}

fn required<T>(path: &Path, value: Option<T>, what: &str) -> Result<T, StudyError> {
    value.ok_or_else(|| {
        error(
            path,
            StudyErrorKind::MissingTag,
            format!("missing or unreadable {what}: a series needs it"),
        )
    })
}

/// Reads the header of the DICOM file at `path` (up to its pixel data) and what a series needs
/// of it. `Ok(None)`: a DICOM file that is not an image (a DICOMDIR).
pub fn dicom_header(path: &Path) -> Result<Option<DicomHeader>, StudyError> {
    let io = |e: std::io::Error| error(path, StudyErrorKind::Io, format!("cannot read: {e}"));
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    check_lengths(path, std::io::BufReader::new(file), len)?;
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| read_error(path, &e))?;
    if obj
        .meta()
        .media_storage_sop_class_uid()
        .trim_end_matches('\0')
        == DICOMDIR_CLASS
    {
        return Ok(None);
    }
    let ts_uid = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    let transfer_syntax = match TransferSyntaxRegistry.get(&ts_uid) {
        Some(ts) if ts.can_decode_all() => ts.name().to_string(),
        Some(ts) => {
            return Err(error(
                path,
                StudyErrorKind::UnsupportedTransferSyntax,
                format!(
                    "transfer syntax {} ({ts_uid}) is not supported: kneecam decodes native, \
                     deflated, RLE, JPEG baseline/extended/lossless and JPEG 2000 pixel data",
                    ts.name()
                ),
            ))
        }
        None => return Err(unknown_syntax(path, &ts_uid)),
    };
    let bits_stored = obj
        .get(tags::BITS_STORED)
        .and_then(|e| e.to_int::<u16>().ok())
        .unwrap_or(8);
    if ts_uid == JPEG_EXTENDED && bits_stored > 8 {
        return Err(error(
            path,
            StudyErrorKind::UnsupportedTransferSyntax,
            format!(
                "transfer syntax JPEG Extended ({ts_uid}) with {bits_stored} bits stored is not \
                 supported: kneecam's JPEG decoder (jpeg-decoder) reads 8-bit JPEG Extended \
                 only; 12-bit needs libjpeg, which kneecam does not build"
            ),
        ));
    }
    let header = header_fields(path, &obj, transfer_syntax)?;
    Ok(Some(header))
}

/// [`dicom_header`] on a file held in memory (`path` only names it): the fuzz target's entry.
pub fn dicom_header_from_bytes(path: &Path, bytes: &[u8]) -> Result<DicomHeader, StudyError> {
    check_lengths(path, std::io::Cursor::new(bytes), bytes.len() as u64)?;
    let obj = OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes)
        .map_err(|e| read_error(path, &e))?;
    let ts_uid = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    header_fields(path, &obj, ts_uid)
}

fn header_fields(
    path: &Path,
    obj: &InMemDicomObject,
    transfer_syntax: String,
) -> Result<DicomHeader, StudyError> {
    let int = |tag| obj.get(tag).and_then(|e| e.to_int::<i64>().ok());
    let series_uid = required(
        path,
        text(obj, tags::SERIES_INSTANCE_UID),
        "SeriesInstanceUID",
    )?;
    let rows = required(path, int(tags::ROWS).filter(|&v| v > 0), "Rows")? as usize;
    let columns = required(path, int(tags::COLUMNS).filter(|&v| v > 0), "Columns")? as usize;
    required(path, int(tags::BITS_ALLOCATED), "BitsAllocated")?;
    let samples = int(tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let photometric = text(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    if samples != 1 || !photometric.starts_with("MONOCHROME") {
        return Err(error(
            path,
            StudyErrorKind::Unsupported,
            format!(
                "{samples} samples per pixel, photometric interpretation '{photometric}': \
                 expected a greyscale (MONOCHROME1 or MONOCHROME2) MR image"
            ),
        ));
    }
    let frames = int(tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    if frames > crate::data::npy::MAX_SLICES as i64 {
        return Err(error(
            path,
            StudyErrorKind::Unsupported,
            format!(
                "NumberOfFrames {frames}: more than {} slices in one file",
                crate::data::npy::MAX_SLICES
            ),
        ));
    }
    let frames = frames as usize;
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    let frame_group = |f: usize| per_frame.and_then(|items| items.get(f));
    let spacing = grouped_floats(
        obj,
        frame_group(0),
        tags::PIXEL_MEASURES_SEQUENCE,
        tags::PIXEL_SPACING,
    )
    .filter(|v| v.len() == 2 && v.iter().all(|&x| x.is_finite() && x > 0.0));
    let spacing = required(path, spacing, "PixelSpacing (two positive numbers)")?;
    let orientation = grouped_floats(
        obj,
        frame_group(0),
        tags::PLANE_ORIENTATION_SEQUENCE,
        tags::IMAGE_ORIENTATION_PATIENT,
    )
    .filter(|v| v.len() == 6 && v.iter().all(|x| x.is_finite()));
    let orientation = required(path, orientation, "ImageOrientationPatient (six numbers)")?;
    let position = |f: usize| {
        let own = if frames > 1 {
            None
        } else {
            floats(obj, tags::IMAGE_POSITION_PATIENT)
        };
        own.or_else(|| {
            frame_group(f)
                .and_then(|g| item(g, tags::PLANE_POSITION_SEQUENCE))
                .and_then(|i| floats(i, tags::IMAGE_POSITION_PATIENT))
        })
        .filter(|v| v.len() == 3 && v.iter().all(|x| x.is_finite()))
        .map(|v| [v[0], v[1], v[2]])
    };
    let positions = (0..frames)
        .map(|f| {
            required(
                path,
                position(f),
                &format!("ImagePositionPatient (three numbers) of frame {}", f + 1),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DicomHeader {
        path: path.to_path_buf(),
        series_uid,
        description: text(obj, tags::SERIES_DESCRIPTION).unwrap_or_default(),
        number: int(tags::SERIES_NUMBER),
        transfer_syntax,
        rows,
        columns,
        pixel_mm: (spacing[0], spacing[1]),
        orientation: [
            orientation[0],
            orientation[1],
            orientation[2],
            orientation[3],
            orientation[4],
            orientation[5],
        ],
        positions,
        photometric,
    })
}

/// One file's frames as stored values (Rescale Slope/Intercept applied, MONOCHROME1 inverted
/// to read as MONOCHROME2), (frames, rows, columns).
fn decode_file(path: &Path, bytes: &[u8]) -> Result<Values, StudyError> {
    check_lengths(path, std::io::Cursor::new(bytes), bytes.len() as u64)?;
    let obj = OpenFileOptions::new()
        .from_reader(bytes)
        .map_err(|e| read_error(path, &e))?;
    if obj.get(tags::PIXEL_DATA).is_none() {
        return Err(error(
            path,
            StudyErrorKind::MissingPixelData,
            "no pixel data (7FE0,0010): expected an image",
        ));
    }
    let decoded = obj.decode_pixel_data().map_err(|e| {
        error(
            path,
            StudyErrorKind::Decode,
            format!("cannot decode the pixel data: {}", chain(&e)),
        )
    })?;
    let (rows, columns) = (decoded.rows() as usize, decoded.columns() as usize);
    let frames = decoded.number_of_frames() as usize;
    let values: Vec<f32> = decoded.to_vec().map_err(|e| {
        error(
            path,
            StudyErrorKind::Decode,
            format!("cannot convert the pixel data: {}", chain(&e)),
        )
    })?;
    let mut values = Array3::from_shape_vec((frames, rows, columns), values).map_err(|e| {
        error(
            path,
            StudyErrorKind::Decode,
            format!("pixel data does not fill {frames}×{rows}×{columns}: {e}"),
        )
    })?;
    if decoded.photometric_interpretation().as_str() == "MONOCHROME1" {
        invert_monochrome1(&decoded, &mut values);
    }
    Ok(values)
}

/// MONOCHROME1 as its MONOCHROME2 equivalent: each stored value `s` becomes `lo + hi - s`
/// within the range the stored bits allow, through each frame's rescale (the same in every
/// file of a series, whatever its own range).
fn invert_monochrome1(decoded: &dicom_pixeldata::DecodedPixelData<'_>, values: &mut Values) {
    let bits = i32::from(decoded.bits_stored().clamp(1, 32));
    let (lo, hi) = match decoded.pixel_representation() {
        dicom_pixeldata::PixelRepresentation::Signed => {
            (-(2f64.powi(bits - 1)), 2f64.powi(bits - 1) - 1.0)
        }
        dicom_pixeldata::PixelRepresentation::Unsigned => (0.0, 2f64.powi(bits) - 1.0),
    };
    let rescales = decoded.rescale().unwrap_or(&[]);
    for (frame, mut plane) in values.outer_iter_mut().enumerate() {
        let (slope, intercept) = rescales
            .get(frame)
            .or(rescales.first())
            .map_or((1.0, 0.0), |r| (r.slope, r.intercept));
        // v = slope·s + intercept, so v' = slope·(lo + hi − s) + intercept.
        let flip = (slope * (lo + hi) + 2.0 * intercept) as f32;
        plane.mapv_inplace(|v| flip - v);
    }
}

/// Decodes the slices of a series, in order; with `hash`, the sha256 of their files' bytes.
pub fn read_slices(
    slices: &[SliceRef],
    original: &VolumeGeometry,
    hash: bool,
) -> Result<(Values, Option<Sha256>), StudyError> {
    let (rows, columns) = (original.rows, original.columns);
    let mut out = Values::zeros((slices.len(), rows, columns));
    let mut digest = hash.then(Sha256::new);
    let mut index = 0;
    while index < slices.len() {
        let file = &slices[index].file;
        let bytes = std::fs::read(file)
            .map_err(|e| error(file, StudyErrorKind::Io, format!("cannot read: {e}")))?;
        if let Some(digest) = digest.as_mut() {
            digest.update(&bytes);
        }
        let frames = decode_file(file, &bytes)?;
        if frames.dim().1 != rows || frames.dim().2 != columns {
            return Err(error(
                file,
                StudyErrorKind::Inconsistent,
                format!(
                    "pixel data is {}×{}, the header said {rows}×{columns}",
                    frames.dim().1,
                    frames.dim().2
                ),
            ));
        }
        // A multi-frame file's frames are consecutive or scattered among the slices.
        while index < slices.len() && slices[index].file == *file {
            let frame = slices[index].frame as usize;
            if frame >= frames.dim().0 {
                return Err(error(
                    file,
                    StudyErrorKind::Inconsistent,
                    format!("frame {} of {} is missing", frame + 1, frames.dim().0),
                ));
            }
            out.slice_mut(s![index, .., ..])
                .assign(&frames.slice(s![frame, .., ..]));
            index += 1;
        }
    }
    Ok((out, digest))
}
