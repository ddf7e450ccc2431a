//! One exam of a dataset: where its planes' volumes and masks are, read on demand.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::geometry::VolumeGeometry;
use crate::data::npy::{self, NpyError, NpyHeader, Volume};
use crate::data::study::{Series, StudyError};
use crate::data::{Labels, Plane, Split};

/// Where one plane of an exam comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaneSource {
    /// An MRNet `.npy` volume.
    File(PathBuf),
    /// A DICOM series or a NIfTI volume, converted to the models' input when read.
    Series(Arc<Series>),
    /// No file: `expected` is where it would be, `reason` says why there is none.
    Unavailable { expected: PathBuf, reason: String },
}

/// One exam: its id, split, labels, and per plane a volume file or why there is none. Volumes
/// are read on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exam {
    pub id: u32,
    pub split: Split,
    pub labels: Labels,
    /// Indexed by [`Plane::index`].
    pub planes: [PlaneSource; 3],
    /// Ground-truth masks (synthetic phantom), indexed by [`Plane::index`].
    pub masks: [Option<PathBuf>; 3],
    /// Where each `.npy` plane's voxels lie (`geometry/{plane}/NNNN.json`, as `kneecam synth`
    /// writes it), indexed by [`Plane::index`]. Series carry their own.
    pub geometry_files: [Option<PathBuf>; 3],
    /// For a dataset of studies: the exam's folder name, sanitised (see
    /// [`crate::data::study::sanitise_exam_id`]); it names the exam instead of `id`.
    pub study: Option<String>,
    /// For a dataset of studies: every usable series of each plane, the chosen one first.
    pub series: [Vec<Arc<Series>>; 3],
}

/// Why a plane's volume could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(transparent)]
    Npy(#[from] NpyError),
    #[error(transparent)]
    Study(#[from] StudyError),
}

impl VolumeError {
    /// The file (or folder) concerned.
    pub fn path(&self) -> &Path {
        match self {
            VolumeError::Npy(e) => e.path(),
            VolumeError::Study(e) => &e.path,
        }
    }

    /// The message without the file name in front.
    pub fn detail(&self) -> String {
        match self {
            VolumeError::Npy(e) => e.detail(),
            VolumeError::Study(e) => e.detail.clone(),
        }
    }
}

impl Exam {
    pub fn source(&self, plane: Plane) -> &PlaneSource {
        &self.planes[plane.index()]
    }

    /// The volume file of `plane` (a series' first file), if there is one.
    pub fn path(&self, plane: Plane) -> Option<&Path> {
        match self.source(plane) {
            PlaneSource::File(path) => Some(path),
            PlaneSource::Series(series) => Some(series.first_file()),
            PlaneSource::Unavailable { .. } => None,
        }
    }

    /// This exam with `plane` read from its `index`-th series instead (in
    /// [`Exam::series`] order); `None` when there is no such series.
    pub fn with_series(&self, plane: Plane, index: usize) -> Option<Exam> {
        let chosen = self.series[plane.index()].get(index)?;
        let mut exam = self.clone();
        exam.planes[plane.index()] = PlaneSource::Series(Arc::clone(chosen));
        Some(exam)
    }

    /// The geometry of `plane` as the models see it; `Ok(None)` when the exam has none (MRNet
    /// `.npy` files without a geometry file). A series' is known from its headers; a geometry
    /// file is read.
    pub fn geometry(&self, plane: Plane) -> Result<Option<Arc<VolumeGeometry>>, VolumeError> {
        match self.source(plane) {
            PlaneSource::Series(series) => Ok(Some(Arc::clone(&series.geometry))),
            PlaneSource::Unavailable { .. } => Ok(None),
            PlaneSource::File(_) => match &self.geometry_files[plane.index()] {
                None => Ok(None),
                Some(path) => crate::data::study::read_geometry_file(path)
                    .map(|g| Some(Arc::new(g)))
                    .map_err(VolumeError::from),
            },
        }
    }

    /// The planes that have a file.
    pub fn available_planes(&self) -> impl Iterator<Item = Plane> + '_ {
        Plane::ALL.into_iter().filter(|&p| self.path(p).is_some())
    }

    /// Reads the volume of `plane` (a series is decoded and converted to the models' input);
    /// an unavailable plane is [`NpyError::Unavailable`].
    pub fn load(&self, plane: Plane) -> Result<Volume, VolumeError> {
        match self.source(plane) {
            PlaneSource::File(path) => Ok(npy::read_volume(path)?),
            PlaneSource::Series(series) => Ok(series.load(false)?.0),
            PlaneSource::Unavailable { expected, reason } => Err(NpyError::Unavailable {
                path: expected.clone(),
                reason: reason.clone(),
            }
            .into()),
        }
    }

    /// Reads `plane`'s volume and the sha256 of its file(s) and conversion, from one read of
    /// the files (the CAM store's keys name exams by content).
    pub fn load_hashed(&self, plane: Plane) -> Result<(Volume, String), VolumeError> {
        let path = match self.source(plane) {
            PlaneSource::File(path) => path,
            PlaneSource::Series(series) => {
                let (volume, sha) = series.load(true)?;
                return Ok((volume, sha.unwrap_or_default()));
            }
            PlaneSource::Unavailable { expected, reason } => {
                return Err(NpyError::Unavailable {
                    path: expected.clone(),
                    reason: reason.clone(),
                }
                .into())
            }
        };
        Ok(load_npy_hashed(path)?)
    }

    /// Reads the header of `plane`'s volume only (`.npy` files; a series has none).
    pub fn header(&self, plane: Plane) -> Result<NpyHeader, NpyError> {
        match self.source(plane) {
            PlaneSource::File(path) => npy::read_header(path),
            PlaneSource::Series(series) => Err(NpyError::Unavailable {
                path: series.first_file().to_path_buf(),
                reason: "a DICOM or NIfTI series has no .npy header".into(),
            }),
            PlaneSource::Unavailable { expected, reason } => Err(NpyError::Unavailable {
                path: expected.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// The ground-truth mask file of `plane`, if the dataset has one.
    pub fn mask_path(&self, plane: Plane) -> Option<&Path> {
        self.masks[plane.index()].as_deref()
    }

    /// Reads the ground-truth mask of `plane`; `Ok(None)` when there is none.
    pub fn load_mask(&self, plane: Plane) -> Result<Option<Volume>, NpyError> {
        self.mask_path(plane).map(npy::read_volume).transpose()
    }

    /// The exam's name: the study folder's (sanitised), else the id zero-padded: `0007`.
    pub fn name(&self) -> String {
        match &self.study {
            Some(name) => name.clone(),
            None => format!("{:04}", self.id),
        }
    }
}

/// An `.npy` volume and its file's sha256, from one read.
fn load_npy_hashed(path: &Path) -> Result<(Volume, String), NpyError> {
    // The header first: its checked shape bounds how much of the file is read.
    let expected = npy::read_header(path)?.file_len();
    let bytes = match crate::fsutil::read_at_most(path, expected, "this header's data") {
        Ok(bytes) => bytes,
        // Longer than the header says: read_volume names the extra bytes without reading them.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(npy::read_volume(path).err().unwrap_or(NpyError::Io {
                path: path.to_path_buf(),
                error: e,
            }))
        }
        Err(error) => {
            return Err(NpyError::Io {
                path: path.to_path_buf(),
                error,
            })
        }
    };
    let sha = crate::digest::sha256_hex(&bytes);
    Ok((npy::parse_volume(path, &bytes)?, sha))
}
