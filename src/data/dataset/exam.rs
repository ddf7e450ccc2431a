//! One exam of a dataset: where its planes' volumes and masks are, read on demand.
use std::path::{Path, PathBuf};

use crate::data::npy::{self, NpyError, NpyHeader, Volume};
use crate::data::{Labels, Plane, Split};

/// Where one plane of an exam comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaneSource {
    File(PathBuf),
    /// No file: `expected` is where it would be, `reason` says why there is none.
    Unavailable {
        expected: PathBuf,
        reason: String,
    },
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
}

impl Exam {
    pub fn source(&self, plane: Plane) -> &PlaneSource {
        &self.planes[plane.index()]
    }

    /// The volume file of `plane`, if there is one.
    pub fn path(&self, plane: Plane) -> Option<&Path> {
        match self.source(plane) {
            PlaneSource::File(path) => Some(path),
            PlaneSource::Unavailable { .. } => None,
        }
    }

    /// The planes that have a file.
    pub fn available_planes(&self) -> impl Iterator<Item = Plane> + '_ {
        Plane::ALL.into_iter().filter(|&p| self.path(p).is_some())
    }

    /// Reads the volume of `plane`; an unavailable plane is [`NpyError::Unavailable`].
    pub fn load(&self, plane: Plane) -> Result<Volume, NpyError> {
        match self.source(plane) {
            PlaneSource::File(path) => npy::read_volume(path),
            PlaneSource::Unavailable { expected, reason } => Err(NpyError::Unavailable {
                path: expected.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Reads `plane`'s volume and the sha256 of its file, from one read of the file (the CAM
    /// store's keys name exams by content).
    pub fn load_hashed(&self, plane: Plane) -> Result<(Volume, String), NpyError> {
        let path = match self.source(plane) {
            PlaneSource::File(path) => path,
            PlaneSource::Unavailable { expected, reason } => {
                return Err(NpyError::Unavailable {
                    path: expected.clone(),
                    reason: reason.clone(),
                })
            }
        };
        // The header first: its checked shape bounds how much of the file is read.
        let expected = npy::read_header(path)?.file_len();
        let bytes = match crate::fsutil::read_at_most(path, expected, "this header's data") {
            Ok(bytes) => bytes,
            // Longer than the header says: read_volume names the extra bytes without reading them.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(npy::read_volume(path).err().unwrap_or(NpyError::Io {
                    path: path.clone(),
                    error: e,
                }))
            }
            Err(error) => {
                return Err(NpyError::Io {
                    path: path.clone(),
                    error,
                })
            }
        };
        let sha = crate::digest::sha256_hex(&bytes);
        Ok((npy::parse_volume(path, &bytes)?, sha))
    }

    /// Reads the header of `plane`'s volume only.
    pub fn header(&self, plane: Plane) -> Result<NpyHeader, NpyError> {
        match self.source(plane) {
            PlaneSource::File(path) => npy::read_header(path),
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

    /// The exam's file name stem, zero-padded: `0007`.
    pub fn name(&self) -> String {
        format!("{:04}", self.id)
    }
}
