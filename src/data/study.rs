//! Exams as hospitals and research pipelines hold them: DICOM studies and NIfTI volumes.
//!
//! A dataset of studies is `DIR/<exam>/…`: each exam folder holds one exam's files at any depth,
//! with any names. DICOM Part 10 files are recognised by their `DICM` preamble, NIfTI-1 files by
//! their `.nii`/`.nii.gz` name. Opening reads headers only ([`scan`]); a series' pixels are
//! decoded, ordered and converted to the models' input (256×256 `uint8`, aspect kept, the
//! manifest's intensity mapping) when [`Series::load`] is called.
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use ndarray::Array3;
use sha2::Digest;

use super::geometry::VolumeGeometry;
use super::npy::Volume;
use super::Plane;

mod convert;
mod dicom;
mod lengths;
mod names;
mod nifti;
pub(crate) mod scan;

pub use convert::{conversion_geometry, convert, SIDE};
pub use dicom::has_dicm_preamble;
pub use dicom::{dicom_header, DicomHeader};
pub use names::{read_study_labels, sanitise_exam_id, StudyLabels};
pub use nifti::{nifti_header, quaternion_rotation, NiftiInfo};
pub use scan::{scan_path, scan_study, StudyScan};

/// Whether `path` is a DICOM Part 10 file (it has the `DICM` preamble); unreadable is not.
pub fn is_dicom_file(path: &Path) -> bool {
    has_dicm_preamble(path).unwrap_or(false)
}

/// How a series' values become the models' 0–255, as a manifest entry states it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Intensity {
    /// The series' minimum to 0, its maximum to 255 (as the `.npy` reader scales other dtypes).
    #[default]
    MinMax,
    /// The series' `lo`-th percentile to 0 and `hi`-th to 255, clipping beyond.
    Percentile { lo: f64, hi: f64 },
    /// The values as they are, clamped to 0–255: for series already in the models' range.
    Identity,
}

impl FromStr for Intensity {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected =
            "expected \"minmax\", \"identity\" or \"percentile:LO,HI\" (0 ≤ LO < HI ≤ 100)";
        match text.trim() {
            "minmax" => return Ok(Intensity::MinMax),
            "identity" => return Ok(Intensity::Identity),
            _ => {}
        }
        let bounds = text
            .trim()
            .strip_prefix("percentile:")
            .and_then(|rest| rest.split_once(','))
            .and_then(|(lo, hi)| Some((lo.trim().parse::<f64>().ok()?, hi.trim().parse().ok()?)));
        match bounds {
            Some((lo, hi)) if (0.0..100.0).contains(&lo) && lo < hi && hi <= 100.0 => {
                Ok(Intensity::Percentile { lo, hi })
            }
            _ => Err(format!("intensity \"{text}\": {expected}")),
        }
    }
}

impl fmt::Display for Intensity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Intensity::MinMax => f.write_str("minmax"),
            Intensity::Identity => f.write_str("identity"),
            Intensity::Percentile { lo, hi } => write!(f, "percentile:{lo},{hi}"),
        }
    }
}

/// Which series a plane shows when a study has several of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeriesRule {
    /// The one whose description holds the models' protocol (when the manifest states one),
    /// else the one with the most slices.
    #[default]
    Protocol,
    /// The one with the most slices.
    MostSlices,
    /// The lowest series number.
    FirstNumber,
}

impl FromStr for SeriesRule {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "protocol" => Ok(SeriesRule::Protocol),
            "most-slices" => Ok(SeriesRule::MostSlices),
            "first-number" => Ok(SeriesRule::FirstNumber),
            other => Err(format!(
                "series rule \"{other}\": expected \"protocol\", \"most-slices\" or \"first-number\""
            )),
        }
    }
}

impl SeriesRule {
    pub fn name(self) -> &'static str {
        match self {
            SeriesRule::Protocol => "protocol",
            SeriesRule::MostSlices => "most-slices",
            SeriesRule::FirstNumber => "first-number",
        }
    }
}

/// What the models expect of each plane, and how to choose among a plane's series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StudyOptions {
    /// Per plane ([`Plane::index`]).
    pub intensity: [Intensity; 3],
    /// Per plane: the training protocol's series description (matched case-insensitively as a
    /// substring), when the manifest states one.
    pub protocol: [Option<String>; 3],
    pub rule: SeriesRule,
}

/// What went wrong with a study file or series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudyErrorKind {
    Io,
    NotDicom,
    Truncated,
    MissingTag,
    MissingPixelData,
    UnsupportedTransferSyntax,
    Unsupported,
    Inconsistent,
    DuplicatePosition,
    BadNifti,
    Decode,
}

/// A study file or series that cannot be used; `path` names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", .path.display())]
pub struct StudyError {
    pub path: PathBuf,
    pub kind: StudyErrorKind,
    pub detail: String,
}

impl StudyError {
    pub fn new(path: impl Into<PathBuf>, kind: StudyErrorKind, detail: impl Into<String>) -> Self {
        StudyError {
            path: path.into(),
            kind,
            detail: detail.into(),
        }
    }
}

/// One slice of a DICOM series: a file, and the frame in it (0 for single-frame files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceRef {
    pub file: PathBuf,
    pub frame: u32,
}

/// Where a series' voxels are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeriesSource {
    /// Slices in order along the normal.
    Dicom(Vec<SliceRef>),
    Nifti(PathBuf),
}

/// One series of a study, as its headers describe it; [`Series::load`] reads its voxels.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// SeriesInstanceUID, or the NIfTI file's name.
    pub uid: String,
    pub description: String,
    pub number: Option<i64>,
    pub plane: Plane,
    pub source: SeriesSource,
    /// Where the stored voxels lie (rows × columns as stored).
    pub original: VolumeGeometry,
    /// Where the converted voxels (the models' input) lie.
    pub geometry: Arc<VolumeGeometry>,
    /// The transfer syntaxes of its files (DICOM), by name.
    pub transfer_syntaxes: Vec<String>,
    pub intensity: Intensity,
    /// Why this series was chosen for its plane, or why not.
    pub choice: String,
}

impl Eq for Series {}

impl Series {
    /// The series' first file (a NIfTI's only one).
    pub fn first_file(&self) -> &Path {
        match &self.source {
            SeriesSource::Dicom(slices) => slices.first().map_or(Path::new(""), |s| &s.file),
            SeriesSource::Nifti(path) => path,
        }
    }

    pub fn slices(&self) -> usize {
        self.original.slices()
    }

    /// Decodes, orders and converts the series to the models' input; with `hash`, also the
    /// sha256 of its files' bytes and the conversion (the CAM store's key).
    pub fn load(&self, hash: bool) -> Result<(Volume, Option<String>), StudyError> {
        let (slices, digest) = match &self.source {
            SeriesSource::Dicom(refs) => dicom::read_slices(refs, &self.original, hash)?,
            SeriesSource::Nifti(path) => nifti::read_slices(path, &self.original, hash)?,
        };
        let data = convert(&slices, &self.original, self.intensity);
        let note = Some(format!(
            "{} {}×{} → {SIDE}×{SIDE}, intensity {}",
            self.kind_name(),
            self.original.rows,
            self.original.columns,
            self.intensity
        ));
        let sha = digest.map(|mut files| {
            files.update(format!("kneecam-series-v1 {SIDE} {}", self.intensity).as_bytes());
            crate::digest::hex(&files.finalize())
        });
        Ok((Volume { data, note }, sha))
    }

    fn kind_name(&self) -> &'static str {
        match self.source {
            SeriesSource::Dicom(_) => "DICOM",
            SeriesSource::Nifti(_) => "NIfTI",
        }
    }
}

/// What kneecam makes of one file's header held in memory, DICOM (with the `DICM` preamble) or
/// NIfTI-1: its series, or the error naming `path`. The header readers' fuzz target.
pub fn header_series(path: &Path, bytes: &[u8]) -> Result<Series, StudyError> {
    if bytes.get(128..132) == Some(b"DICM") {
        let header = dicom::dicom_header_from_bytes(path, bytes)?;
        return scan::dicom_series(header.series_uid.clone(), vec![header]).map(|(s, _)| s);
    }
    let header = ::nifti::NiftiHeader::from_reader(bytes).map_err(|e| {
        StudyError::new(
            path,
            StudyErrorKind::BadNifti,
            format!("not a NIfTI-1 file: {e}"),
        )
    })?;
    let info = nifti::check_header(path, &header)?;
    Ok(scan::nifti_series(
        path.parent().unwrap_or(Path::new("")),
        path,
        info,
    ))
}

/// Reads a geometry file (`kneecam synth`'s `geometry/{plane}/NNNN.json`).
pub fn read_geometry_file(path: &Path) -> Result<VolumeGeometry, StudyError> {
    let text = crate::fsutil::read_at_most(path, 4 << 20, "a geometry file")
        .map_err(|e| StudyError::new(path, StudyErrorKind::Io, format!("cannot read: {e}")))?;
    let geometry: VolumeGeometry = serde_json::from_slice(&text).map_err(|e| {
        StudyError::new(
            path,
            StudyErrorKind::Inconsistent,
            format!("not a geometry file: {e}"),
        )
    })?;
    geometry
        .check()
        .map_err(|e| StudyError::new(path, StudyErrorKind::Inconsistent, e.to_string()))?;
    Ok(geometry)
}

/// A decoded series before conversion: (slices, rows, columns) of stored values.
pub type Values = Array3<f32>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz seeds, written by pydicom and nibabel (`fuzz/make-study-seeds.py`).
    fn seed(name: &str) -> (PathBuf, Vec<u8>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/study_header")
            .join(name);
        let bytes = std::fs::read(&path).expect("a committed seed");
        (path, bytes)
    }

    #[test]
    fn headers_written_by_pydicom_and_nibabel_give_their_planes() {
        for (name, plane) in [
            ("dicom-axial", Plane::Axial),
            ("dicom-coronal", Plane::Coronal),
            ("dicom-sagittal", Plane::Sagittal),
            // Rows 20° off left–right in the axial plane, columns head to foot.
            ("dicom-oblique", Plane::Coronal),
            ("dicom-implicit", Plane::Sagittal),
            ("dicom-big-endian", Plane::Coronal),
            ("nifti-axial", Plane::Axial),
            ("nifti-sagittal", Plane::Sagittal),
        ] {
            let (path, bytes) = seed(name);
            let series = header_series(&path, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(series.plane, plane, "{name}");
        }
        let (path, bytes) = seed("dicom-multiframe");
        let series = header_series(&path, &bytes).expect("multi-frame");
        assert_eq!(series.slices(), 3, "one slice per frame");
        assert_eq!(series.plane, Plane::Axial);
    }

    #[test]
    fn a_cut_header_is_an_error_naming_the_file() {
        let (path, bytes) = seed("dicom-axial");
        let err = header_series(&path, &bytes[..200]).expect_err("cut in its meta group");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        let (path, mut bytes) = seed("nifti-axial");
        bytes[0] = 0;
        assert!(header_series(&path, &bytes).is_err());
    }
}
