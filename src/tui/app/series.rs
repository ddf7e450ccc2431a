//! The exams' series around the selection: which to read, and what came.
use std::sync::Arc;

use ndarray::Array3;

use crate::data::dataset::VolumeError;
use crate::data::Plane;

use super::{App, Effect};

pub type Volume = Arc<Array3<u8>>;

/// A series as the loader read it.
#[derive(Debug, Clone)]
pub struct Series {
    pub volume: Volume,
    /// The file's sha256, when it was hashed (it names the series' CAM store entries).
    pub sha256: Option<String>,
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
    /// The series of (case, plane), if it was read.
    pub fn series(&self, case: usize, plane: Plane) -> Option<&Result<Series, SeriesError>> {
        self.volumes.peek(&(case, plane))
    }

    /// The voxels of (case, plane), if they were read.
    pub fn volume(&self, case: usize, plane: Plane) -> Option<&Volume> {
        match self.series(case, plane)? {
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

    pub(super) fn series_loaded(
        &mut self,
        case: usize,
        plane: Plane,
        outcome: Result<Series, SeriesError>,
    ) {
        self.loading.retain(|key| *key != (case, plane));
        // The series around the selection were maybe loaded long ago (lookups do not count as
        // uses): mark them used, so that this one drops others, never the selected exam's.
        for around in self.neighbourhood() {
            for plane in Plane::ALL {
                self.volumes.touch(&(around, plane));
            }
        }
        self.volumes.insert((case, plane), outcome, 1);
    }

    /// The series to read now: the selection's and its neighbours' not read yet. Asked again
    /// only when that list changes (the loader then drops what it has not started, so an
    /// empty list stops it).
    pub(super) fn plan_series(&mut self) -> Option<Effect> {
        // Most urgent first: the shown plane before the others, the selection before its
        // neighbours (the loader reads in this order).
        let planes = self.planes_by_urgency();
        let wanted: Vec<(usize, Plane)> = self
            .neighbourhood()
            .into_iter()
            .flat_map(|case| planes.map(|plane| (case, plane)))
            .filter(|key| self.volumes.peek(key).is_none())
            .collect();
        if wanted == self.loading {
            return None;
        }
        self.loading = wanted.clone();
        Some(Effect::LoadSeries(wanted))
    }
}
