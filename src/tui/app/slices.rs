//! Which slice each plane shows: the slice through the linked cursor where it lies on the
//! plane's series, else the user's choice during this visit of an exam, else the
//! top-contributing slice once a CAM says which, else the middle one.
use std::sync::Arc;

use crate::cam::{Explanation, Method};
use crate::data::Plane;

use super::requests::CamKey;
use super::App;

impl App {
    /// The slice shown for `plane` of the selected exam (0 while its series is not loaded).
    pub fn slice(&self, plane: Plane) -> usize {
        let count = self.slice_count(plane);
        if count == 0 {
            return 0;
        }
        if let Some(voxel) = self.cursor_voxel(plane) {
            return voxel.slice.min(count - 1);
        }
        let slice = match self.chosen_slices[plane.index()] {
            Some(chosen) => chosen,
            None => self
                .strip_scores(plane)
                .filter(|scores| scores.len() == count)
                .map_or(count / 2, |scores| {
                    crate::model::network::top_class(&scores)
                }),
        };
        slice.min(count - 1)
    }

    /// Whether the user moved within `plane` during this visit of the exam.
    pub fn slice_chosen(&self, plane: Plane) -> bool {
        self.chosen_slices[plane.index()].is_some()
    }

    /// Slices in the current exam's series for `plane` (0 while it is not loaded).
    pub fn slice_count(&self, plane: Plane) -> usize {
        self.current()
            .and_then(|case| self.volume(case, plane))
            .map_or(0, |volume| volume.dim().0)
    }

    pub fn cam_key(&self, case: usize, plane: Plane, method: Method) -> CamKey {
        CamKey {
            case,
            series: self.series_index(case, plane),
            task: self.task,
            plane,
            method,
            normalization: self.display.normalization,
        }
    }

    /// The explanation for the current exam's `plane` with the current method, if it came.
    pub fn explanation(&self, plane: Plane) -> Option<&Arc<Explanation>> {
        let case = self.current()?;
        self.cams
            .peek(&self.cam_key(case, plane, self.display.method))
    }

    /// The `contrib` explanation (for the slice strip): exact per-slice contributions.
    pub fn contributions(&self, plane: Plane) -> Option<&Arc<Explanation>> {
        let case = self.current()?;
        self.cams.peek(&self.cam_key(case, plane, Method::Contrib))
    }

    /// Why the current exam's `plane` has no CAM for the current method, if it failed.
    pub fn cam_error(&self, plane: Plane) -> Option<&String> {
        let case = self.current()?;
        self.cam_errors
            .get(&self.cam_key(case, plane, self.display.method))
    }

    /// The scores behind the slice strip: `contrib` when it came, else the current method's.
    pub fn strip_scores(&self, plane: Plane) -> Option<Vec<f32>> {
        self.contributions(plane)
            .or_else(|| self.explanation(plane))
            .map(|e| e.scores.clone())
    }

    /// Another exam (or task) is shown: each plane opens at the view's own slice again.
    pub(super) fn new_visit(&mut self) {
        self.chosen_slices = [None; 3];
        self.cursor_for_visit();
    }

    pub(super) fn move_slice(&mut self, delta: isize) {
        let count = self.slice_count(self.plane);
        if count == 0 {
            return;
        }
        let current = self.slice(self.plane) as isize;
        self.set_slice((current + delta).clamp(0, count as isize - 1) as usize);
    }

    pub(super) fn set_slice(&mut self, slice: usize) {
        let count = self.slice_count(self.plane);
        if count == 0 {
            return;
        }
        let slice = slice.min(count - 1);
        self.cursor_follows_slice(self.plane, slice);
        self.chosen_slices[self.plane.index()] = Some(slice);
    }

    pub(super) fn jump_to_top(&mut self) {
        if let Some(scores) = self.strip_scores(self.plane) {
            self.set_slice(crate::model::network::top_class(&scores));
        }
    }

    pub(super) fn jump_positive(&mut self, forward: bool) {
        let Some(scores) = self.strip_scores(self.plane) else {
            return;
        };
        let here = self.slice(self.plane);
        let found = if forward {
            (here + 1..scores.len()).find(|&s| scores[s] > 0.0)
        } else {
            (0..here).rev().find(|&s| scores[s] > 0.0)
        };
        if let Some(slice) = found {
            self.set_slice(slice);
        }
    }
}
