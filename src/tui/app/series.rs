//! The exams' series around the selection: which to read, and what came. A plane of a study
//! may have several series (with and without fat saturation, say); the explorer shows one per
//! plane and exam, the dataset's choice unless the user cycled to another, and every key that
//! names a series' data (its voxels, its CAMs, its images) names which series it is.
use std::sync::Arc;

use ndarray::Array3;

use crate::data::dataset::VolumeError;
use crate::data::geometry::VolumeGeometry;
use crate::data::Plane;

use super::{App, Effect};

pub type Volume = Arc<Array3<u8>>;

/// One series of an exam's plane: `series` indexes the exam's series of that plane, in the
/// dataset's order (0: the chosen one, and the only one of an MRNet `.npy` exam).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesRef {
    pub case: usize,
    pub plane: Plane,
    pub series: usize,
}

/// A series as the loader read it.
#[derive(Debug, Clone)]
pub struct Series {
    pub volume: Volume,
    /// The file's sha256, when it was hashed (it names the series' CAM store entries).
    pub sha256: Option<String>,
    /// Where its voxels lie in the patient (DICOM, NIfTI, a geometry file beside `.npy`
    /// files); None for MRNet `.npy` data, or when `geometry_problem` says why not.
    pub geometry: Option<Arc<VolumeGeometry>>,
    /// Why a geometry the exam has cannot be used (unreadable, or not the volume's shape).
    pub geometry_problem: Option<String>,
    /// The series' lesion mask, where the dataset has one.
    pub truth: Option<Arc<super::GroundTruth>>,
    /// Why a mask the exam has cannot be used (unreadable, or not the volume's shape).
    pub truth_problem: Option<String>,
}

impl Series {
    /// A series without geometry (MRNet `.npy` data).
    pub fn plain(volume: Volume, sha256: Option<String>) -> Series {
        Series {
            volume,
            sha256,
            geometry: None,
            geometry_problem: None,
            truth: None,
            truth_problem: None,
        }
    }

    /// A series with what the exam says of its geometry: kept when it can locate points and
    /// has the volume's slices, rows and columns; else the problem is kept instead.
    pub fn with_geometry(
        volume: Volume,
        sha256: Option<String>,
        geometry: Result<Option<Arc<VolumeGeometry>>, String>,
    ) -> Series {
        let checked = geometry.and_then(|found| match found {
            None => Ok(None),
            Some(geometry) => fits(&geometry, volume.dim()).map(|()| Some(geometry)),
        });
        let (geometry, geometry_problem) = match checked {
            Ok(geometry) => (geometry, None),
            Err(problem) => (None, Some(problem)),
        };
        Series {
            volume,
            sha256,
            geometry,
            geometry_problem,
            truth: None,
            truth_problem: None,
        }
    }

    /// The series with what the exam says of its lesion mask: kept when it has the volume's
    /// shape; else the problem is kept instead.
    pub fn with_truth(mut self, mask: Result<Option<ndarray::Array3<u8>>, String>) -> Series {
        let dim = self.volume.dim();
        match mask {
            Ok(None) => {}
            Ok(Some(mask)) if mask.dim() == dim => {
                self.truth = Some(Arc::new(super::GroundTruth::new(mask)));
            }
            Ok(Some(mask)) => {
                let (s, r, c) = mask.dim();
                self.truth_problem = Some(format!(
                    "its mask has {s} slices of {r}×{c}, the volume {} of {}×{}",
                    dim.0, dim.1, dim.2
                ));
            }
            Err(problem) => self.truth_problem = Some(problem),
        }
        self
    }
}

/// Whether `geometry` describes a volume of `dim` (slices, rows, columns) and can locate.
fn fits(geometry: &VolumeGeometry, dim: (usize, usize, usize)) -> Result<(), String> {
    geometry
        .check()
        .map_err(|e| format!("its geometry is unusable: {e}"))?;
    let shape = (geometry.slices(), geometry.rows, geometry.columns);
    if shape != dim {
        return Err(format!(
            "its geometry describes {} slices of {}×{}, the volume has {} of {}×{}",
            shape.0, shape.1, shape.2, dim.0, dim.1, dim.2
        ));
    }
    Ok(())
}

/// What the list knows of one series of a plane before it is read (a study's; an MRNet
/// `.npy` exam lists none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeriesInfo {
    pub description: String,
    pub number: Option<i64>,
    /// Why the dataset chose this series for its plane, or why not.
    pub choice: String,
}

impl SeriesInfo {
    pub fn of(series: &crate::data::study::Series) -> SeriesInfo {
        SeriesInfo {
            description: series.description.clone(),
            number: series.number,
            choice: series.choice.clone(),
        }
    }

    /// The description, else the series number, else a placeholder.
    pub fn name(&self) -> String {
        match (self.description.trim(), self.number) {
            ("", Some(number)) => format!("series #{number}"),
            ("", None) => "(no description)".into(),
            (description, _) => description.to_string(),
        }
    }
}

/// Why a series could not be shown.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SeriesError {
    #[error("no {0} series")]
    Missing(Plane),
    #[error(transparent)]
    Read(Arc<VolumeError>),
}

impl App {
    /// Which of `case`'s `plane` series is shown (0: the dataset's choice).
    pub fn series_index(&self, case: usize, plane: Plane) -> usize {
        self.series_shown.get(&(case, plane)).copied().unwrap_or(0)
    }

    /// The series of `case`'s `plane` that is shown.
    pub fn series_ref(&self, case: usize, plane: Plane) -> SeriesRef {
        SeriesRef {
            case,
            plane,
            series: self.series_index(case, plane),
        }
    }

    /// The series `case`'s `plane` has (one, for an exam that lists none: `.npy` files).
    pub fn series_count(&self, case: usize, plane: Plane) -> usize {
        self.series_infos(case, plane).len().max(1)
    }

    /// What the dataset says of each series of `case`'s `plane` (empty for `.npy` exams).
    pub fn series_infos(&self, case: usize, plane: Plane) -> &[SeriesInfo] {
        self.cases
            .get(case)
            .map_or(&[], |c| c.series[plane.index()].as_slice())
    }

    /// "series 2/3: SAG T2 FS" for a plane with several series; None with one.
    pub fn series_label(&self, case: usize, plane: Plane) -> Option<String> {
        let count = self.series_count(case, plane);
        let index = self.series_index(case, plane);
        let info = self.series_infos(case, plane).get(index)?;
        (count > 1).then(|| format!("series {}/{count}: {}", index + 1, info.name()))
    }

    /// The shown series of (case, plane), if it was read.
    pub fn series(&self, case: usize, plane: Plane) -> Option<&Result<Series, SeriesError>> {
        self.series_at(self.series_ref(case, plane))
    }

    /// A series, if it was read (whether it is shown or not).
    pub fn series_at(&self, which: SeriesRef) -> Option<&Result<Series, SeriesError>> {
        self.volumes.peek(&which)
    }

    /// The voxels of (case, plane)'s shown series, if they were read.
    pub fn volume(&self, case: usize, plane: Plane) -> Option<&Volume> {
        self.volume_at(self.series_ref(case, plane))
    }

    /// The voxels of a series, if they were read.
    pub fn volume_at(&self, which: SeriesRef) -> Option<&Volume> {
        match self.series_at(which)? {
            Ok(series) => Some(&series.volume),
            Err(_) => None,
        }
    }

    /// The shown plane, then the others in tab order.
    pub(super) fn planes_by_urgency(&self) -> [Plane; 3] {
        let mut planes = Plane::ALL;
        planes.sort_by_key(|plane| *plane != self.plane);
        planes
    }

    /// How many series are kept (read, or failed to be read).
    pub fn series_kept(&self) -> usize {
        self.volumes.len()
    }

    /// The series the state wants kept: the shown series of the exams around the selection.
    pub(super) fn series_around(&self) -> Vec<SeriesRef> {
        let planes = self.planes_by_urgency();
        self.neighbourhood()
            .into_iter()
            .flat_map(|case| planes.map(|plane| self.series_ref(case, plane)))
            .collect()
    }

    pub(super) fn series_loaded(&mut self, which: SeriesRef, outcome: Result<Series, SeriesError>) {
        self.loading.retain(|key| *key != which);
        // The series around the selection were maybe loaded long ago (lookups do not count as
        // uses): mark them used, so that this one drops others, never the selected exam's.
        for around in self.series_around() {
            self.volumes.touch(&around);
        }
        self.volumes.insert(which, outcome, 1);
    }

    /// The series to read now: the selection's and its neighbours' not read yet. Asked again
    /// only when that list changes (the loader then drops what it has not started, so an
    /// empty list stops it).
    pub(super) fn plan_series(&mut self) -> Option<Effect> {
        // Most urgent first: the shown plane before the others, the selection before its
        // neighbours (the loader reads in this order).
        let wanted: Vec<SeriesRef> = self
            .series_around()
            .into_iter()
            .filter(|key| self.volumes.peek(key).is_none())
            .collect();
        if wanted == self.loading {
            return None;
        }
        self.loading = wanted.clone();
        Some(Effect::LoadSeries(wanted))
    }

    /// `S`: the shown plane's next series, when the exam has several.
    pub(super) fn next_series(&mut self) {
        let Some(case) = self.current() else {
            return;
        };
        let plane = self.plane;
        let count = self.series_count(case, plane);
        if count < 2 {
            self.message = Some(format!("only one {plane} series"));
            return;
        }
        let next = (self.series_index(case, plane) + 1) % count;
        if next == 0 {
            self.series_shown.remove(&(case, plane));
        } else {
            self.series_shown.insert((case, plane), next);
        }
        // Another series has slices of its own: the plane opens at its own choice (or at the
        // cursor, which is a point in the patient and holds across series).
        self.chosen_slices[plane.index()] = None;
        let label = self.series_label(case, plane).unwrap_or_default();
        let choice = self
            .series_infos(case, plane)
            .get(next)
            .map(|info| info.choice.trim().to_string())
            .filter(|choice| !choice.is_empty());
        self.message = Some(match choice {
            Some(choice) => format!("{plane} {label} — {choice}"),
            None => format!("{plane} {label}"),
        });
    }
}
