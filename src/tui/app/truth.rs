//! Ground truth in the explorer: a series' lesion mask (the phantom's, or a user's `masks/`
//! folder), read with the series off the UI thread; `M` outlines the current task's lesion on
//! the slice, the status line counts the plane's slices that hold it, the strip marks them, and
//! eval-cam's per-exam result for the shown exam stands beside the count when a report was given.
use std::sync::Arc;

use ndarray::{Array3, Axis};

use crate::cam::report::EvalMark;
use crate::data::{Lesion, Plane, Task};

use super::App;

/// A series' lesion mask, and per task which of its slices hold the task's lesion.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// Lesion codes ([`Lesion::code`]) per voxel, the series' shape.
    pub mask: Arc<Array3<u8>>,
    slices: [Vec<bool>; 3],
}

impl GroundTruth {
    pub fn new(mask: Array3<u8>) -> GroundTruth {
        let slices = Task::ALL.map(|task| {
            mask.axis_iter(Axis(0))
                .map(|slice| slice.iter().any(|&code| is_lesion(code, task)))
                .collect()
        });
        GroundTruth {
            mask: Arc::new(mask),
            slices,
        }
    }

    /// Per slice: whether it holds voxels of `task`'s lesion.
    pub fn lesion_slices(&self, task: Task) -> &[bool] {
        &self.slices[task.index()]
    }
}

/// Whether a mask voxel of `code` is `task`'s lesion (any lesion for `abnormal`).
pub fn is_lesion(code: u8, task: Task) -> bool {
    Lesion::from_code(code).is_some_and(|lesion| lesion.counts_for(task))
}

/// What the status line says of the ground truth while `M` is on.
#[derive(Debug, Clone, PartialEq)]
pub enum TruthView {
    /// The shown series' mask: how many of its slices hold the lesion, of how many.
    Counted {
        slices: usize,
        of: usize,
        eval: Option<EvalMark>,
    },
    /// The series is not read yet.
    Waiting,
    /// This exam's series has no mask, or it could not be used (why).
    Missing(Option<String>),
}

impl App {
    /// Whether lesion outlines are drawn (`M`).
    pub fn truth_shown(&self) -> bool {
        self.truth_shown
    }

    pub(super) fn toggle_truth(&mut self) {
        self.truth_shown = !self.truth_shown;
        if self.truth_shown {
            if let Some(TruthView::Missing(why)) = self.truth_view() {
                self.message = Some(match why {
                    Some(why) => format!("no ground truth: {why}"),
                    None => "no ground-truth mask for this series (masks/ in the dataset)".into(),
                });
            }
        }
    }

    /// The mask of (case, plane)'s shown series, if it has one and it was read.
    pub fn truth(&self, case: usize, plane: Plane) -> Option<&Arc<GroundTruth>> {
        match self.series(case, plane)? {
            Ok(series) => series.truth.as_ref(),
            Err(_) => None,
        }
    }

    /// Per slice of `plane`'s shown series: whether it holds the current task's lesion.
    pub fn lesion_slices(&self, plane: Plane) -> Option<&[bool]> {
        let case = self.current()?;
        Some(self.truth(case, plane)?.lesion_slices(self.task))
    }

    /// What `M` has to say of the shown plane; None while it is off or no exam is shown.
    pub fn truth_view(&self) -> Option<TruthView> {
        if !self.truth_shown {
            return None;
        }
        let case = self.current()?;
        let plane = self.plane;
        let series = match self.series(case, plane) {
            None => return Some(TruthView::Waiting),
            Some(Err(_)) => return Some(TruthView::Missing(None)),
            Some(Ok(series)) => series,
        };
        let Some(truth) = &series.truth else {
            return Some(TruthView::Missing(series.truth_problem.clone()));
        };
        let slices = truth.lesion_slices(self.task);
        let eval = self.info.eval.get(
            &self.cases[case].name,
            self.task,
            plane,
            self.display.method,
        );
        Some(TruthView::Counted {
            slices: slices.iter().filter(|&&lesion| lesion).count(),
            of: slices.len(),
            eval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_counted_per_task() {
        let mut mask = Array3::zeros((4, 2, 2));
        mask[[1, 0, 0]] = Lesion::AclTear.code();
        mask[[2, 1, 1]] = Lesion::MeniscalTear.code();
        mask[[3, 0, 1]] = Lesion::Other.code();
        let truth = GroundTruth::new(mask);
        assert_eq!(truth.lesion_slices(Task::Acl), [false, true, false, false]);
        assert_eq!(
            truth.lesion_slices(Task::Meniscus),
            [false, false, true, false]
        );
        assert_eq!(
            truth.lesion_slices(Task::Abnormal),
            [false, true, true, true]
        );
    }
}
