//! One exam's CAM scored against its ground-truth lesion mask: pointing game, energy share,
//! slice hit and the deletion curve (with a random-order baseline), for several methods from a
//! single forward pass.
use ndarray::{Array3, Zip};

use super::localization::{
    apply_deletion, curve_area, deletion_masks, dilated, energy_share, pointing_game, slice_hit,
};
use super::{explain_forward, forward, CamError, CamSpec, Method, Normalization, Placement};
use crate::data::{Lesion, Task};
use crate::model::network::{positive_probability, GapNetwork};
use crate::model::preprocess::Preprocess;
use crate::rng::Rng;

/// One method's figures on one exam; None where the exam's mask gives no answer (no lesion
/// voxels in this plane).
#[derive(Debug, Clone, PartialEq)]
pub struct ExamScore {
    pub method: Method,
    pub probability: f32,
    pub pointing: Option<bool>,
    pub energy_share: Option<f64>,
    pub slice_hit: Option<bool>,
    /// Area under P(positive) as the most highlighted voxels are zeroed (lower: more faithful).
    pub deletion_auc: f64,
}

/// What one exam's evaluation gives: each method's score and the random-order deletion area.
#[derive(Debug, Clone, PartialEq)]
pub struct ExamEvaluation {
    pub scores: Vec<ExamScore>,
    pub random_deletion_auc: f64,
}

/// The voxels (as 1) that count as the lesion for `task` ([`Lesion::counts_for`]): the ACL
/// tear, the meniscal tear, or any lesion for `abnormal`. A value that is no [`Lesion`] code
/// counts for none.
pub fn lesion_of(task: Task, mask: &Array3<u8>) -> Array3<u8> {
    mask.mapv(|v| u8::from(Lesion::from_code(v).is_some_and(|l| l.counts_for(task))))
}

/// Whether `lesion` (1 = lesion) has any voxel.
pub fn has_lesion(lesion: &Array3<u8>) -> bool {
    lesion.iter().any(|&v| v == 1)
}

/// Everything the evaluation of one series needs besides the methods.
pub struct EvalInput<'a> {
    pub net: &'a dyn GapNetwork,
    pub preprocess: Preprocess,
    pub volume: &'a Array3<u8>,
    /// 1 where the lesion is (see `lesion_of`).
    pub lesion: &'a Array3<u8>,
    pub steps: usize,
    pub seed: u64,
}

pub fn evaluate_exam(input: &EvalInput, methods: &[Method]) -> Result<ExamEvaluation, CamError> {
    let (slices, height, width) = input.volume.dim();
    let device = input.net.classifier().0.device();
    let x = input.preprocess.input(input.volume, device);
    let pass = forward(input.net, &x)?;
    let placement = Placement {
        window: input.preprocess.window(height, width),
        slice: (height, width),
    };
    let positive = pass.logits.len().saturating_sub(1);
    let mut scores = Vec::with_capacity(methods.len());
    for &method in methods {
        let spec = CamSpec {
            method,
            class: Some(positive),
            normalization: Normalization::Exam,
        };
        let explanation = explain_forward(input.net, &pass, &spec, placement)?;
        let (_, cells_h, cells_w) = explanation.raw.dim();
        let target = dilated(
            &lesion_cells(input.lesion, placement, (cells_h, cells_w)),
            1,
            1,
        );
        let display = explanation.maps.mapv(f32::from);
        let ranking = cells_to_pixels(&explanation.raw, placement);
        scores.push(ExamScore {
            method,
            probability: explanation.probability,
            pointing: pointing_game(&explanation.raw, &target),
            energy_share: energy_share(&display, input.lesion, 1),
            slice_hit: slice_hit(&explanation.scores, input.lesion, 1),
            deletion_auc: deletion_area(input, &ranking, explanation.probability)?,
        });
    }
    let mut rng = Rng::new(input.seed);
    let feature_size = pass.features.size();
    let (cells_h, cells_w) = (feature_size[2] as usize, feature_size[3] as usize);
    let random = Array3::from_shape_fn((slices, cells_h, cells_w), |_| rng.range(0.0, 1.0) as f32);
    let unchanged = positive_probability(&pass.logits);
    let random_deletion_auc =
        deletion_area(input, &cells_to_pixels(&random, placement), unchanged)?;
    Ok(ExamEvaluation {
        scores,
        random_deletion_auc,
    })
}

/// P(positive) as the `ranking`'s highest voxels are zeroed in `steps` equal steps; the area.
/// `unchanged` is P(positive) of the whole series, the curve's first point (no re-prediction).
fn deletion_area(
    input: &EvalInput,
    ranking: &Array3<f32>,
    unchanged: f32,
) -> Result<f64, CamError> {
    let device = input.net.classifier().0.device();
    let mut curve = Vec::with_capacity(input.steps + 1);
    curve.push(f64::from(unchanged));
    for keep in deletion_masks(ranking, input.steps).iter().skip(1) {
        let x = input
            .preprocess
            .input(&apply_deletion(input.volume, keep), device);
        curve.push(f64::from(positive_probability(
            &forward(input.net, &x)?.logits,
        )));
    }
    Ok(curve_area(&curve))
}

/// Feature cells (S, h, w) holding any lesion voxel of the network's input window.
pub fn lesion_cells(
    lesion: &Array3<u8>,
    placement: Placement,
    cells: (usize, usize),
) -> Array3<u8> {
    let (top, left, win_h, win_w) = placement.window;
    let mut out = Array3::<u8>::zeros((lesion.dim().0, cells.0, cells.1));
    for ((s, r, c), _) in lesion.indexed_iter().filter(|(_, &v)| v == 1) {
        let (Some(wr), Some(wc)) = (r.checked_sub(top), c.checked_sub(left)) else {
            continue;
        };
        if wr < win_h && wc < win_w {
            out[[s, wr * cells.0 / win_h, wc * cells.1 / win_w]] = 1;
        }
    }
    out
}

/// A feature-resolution map spread over the slice (each pixel takes its cell's value); pixels
/// outside the network's window rank last.
pub fn cells_to_pixels(cells: &Array3<f32>, placement: Placement) -> Array3<f32> {
    let (top, left, win_h, win_w) = placement.window;
    let (slices, cells_h, cells_w) = cells.dim();
    let (height, width) = placement.slice;
    let mut out = Array3::from_elem((slices, height, width), f32::NEG_INFINITY);
    Zip::indexed(&mut out).for_each(|(s, r, c), v| {
        let (Some(wr), Some(wc)) = (r.checked_sub(top), c.checked_sub(left)) else {
            return;
        };
        if wr < win_h && wc < win_w {
            *v = cells[[s, wr * cells_h / win_h, wc * cells_w / win_w]];
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(size: usize) -> Placement {
        Placement {
            window: (0, 0, size, size),
            slice: (size, size),
        }
    }

    #[test]
    fn lesion_voxels_mark_the_cell_they_fall_in() {
        let mut lesion = Array3::<u8>::zeros((2, 32, 32));
        lesion[[1, 17, 3]] = 1;
        let cells = lesion_cells(&lesion, whole(32), (4, 4));
        assert_eq!(cells.sum(), 1);
        assert_eq!(cells[[1, 2, 0]], 1);
    }

    #[test]
    fn lesion_voxels_outside_a_crop_window_are_ignored() {
        let mut lesion = Array3::<u8>::zeros((1, 32, 32));
        lesion[[0, 1, 1]] = 1;
        lesion[[0, 20, 20]] = 1;
        let placement = Placement {
            window: (8, 8, 16, 16),
            slice: (32, 32),
        };
        let cells = lesion_cells(&lesion, placement, (2, 2));
        assert_eq!(cells.sum(), 1);
        assert_eq!(cells[[0, 1, 1]], 1);
    }

    #[test]
    fn cells_spread_over_their_pixels_and_outside_the_window_ranks_last() {
        let cells = Array3::from_shape_vec((1, 2, 2), vec![1.0, 2.0, 3.0, 4.0]).expect("shape");
        let placement = Placement {
            window: (2, 2, 4, 4),
            slice: (8, 8),
        };
        let pixels = cells_to_pixels(&cells, placement);
        assert_eq!(pixels[[0, 2, 2]], 1.0);
        assert_eq!(pixels[[0, 5, 5]], 4.0);
        assert_eq!(pixels[[0, 2, 5]], 2.0);
        assert_eq!(pixels[[0, 0, 0]], f32::NEG_INFINITY);
    }

    #[test]
    fn each_task_takes_its_own_lesion_label() {
        let mask = Array3::from_shape_vec((1, 1, 4), vec![0, 1, 2, 3]).expect("shape");
        assert_eq!(
            lesion_of(Task::Acl, &mask).into_raw_vec_and_offset().0,
            [0, 1, 0, 0]
        );
        assert_eq!(
            lesion_of(Task::Meniscus, &mask).into_raw_vec_and_offset().0,
            [0, 0, 1, 0]
        );
        assert_eq!(
            lesion_of(Task::Abnormal, &mask).into_raw_vec_and_offset().0,
            [0, 1, 1, 1]
        );
    }
}
