//! The heat floor: the map value below which an overlay leaves the slice untouched, as a share
//! of the positive range above where a raw value of zero lands after normalisation. A floor
//! measured from the map's minimum would colour zero evidence whenever the exam also has
//! negative evidence (contrib and cam maps are signed): a blue wash over a slice that adds
//! nothing to the logit.
use ndarray::{Array3, Axis};

use super::{Method, Normalization};

/// The floor's presets, cycled by a key.
pub const PRESETS: [f32; 3] = [0.0, 0.2, 0.4];

/// The next preset above `floor` (after the largest, 0).
pub fn next_preset(floor: f32) -> f32 {
    PRESETS
        .into_iter()
        .find(|&preset| preset > floor + 1e-4)
        .unwrap_or(PRESETS[0])
}

/// The map value (0–255) where a raw value of zero lands on `slice`: `raw` is [S, h, w] before
/// ReLU or normalisation, as [`super::Explanation::raw`] holds it.
pub fn zero_level(
    raw: &Array3<f32>,
    slice: usize,
    method: Method,
    normalization: Normalization,
) -> u8 {
    let relu = matches!(method, Method::GradCam | Method::GradCamPlusPlus);
    let range = |values: &mut dyn Iterator<Item = f32>| {
        values
            .map(|v| if relu { v.max(0.0) } else { v })
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (lo, hi) = match normalization {
        Normalization::None => return 0,
        Normalization::Exam => range(&mut raw.iter().copied()),
        Normalization::Slice => {
            if slice >= raw.dim().0 {
                return 0;
            }
            range(&mut raw.index_axis(Axis(0), slice).iter().copied())
        }
    };
    if lo.is_nan() || lo >= 0.0 || !hi.is_finite() {
        return 0;
    }
    if hi <= 0.0 {
        return 255;
    }
    (255.0 * -lo / (hi - lo)).round().clamp(0.0, 255.0) as u8
}

/// The first map value that is coloured with `floor` (0–1) over a map whose zero is at `zero`:
/// 0 without a floor (everything coloured), else above zero by the floor's share of the rest;
/// 256 when nothing is above zero.
pub fn threshold(zero: u8, floor: f32) -> u16 {
    if floor <= 0.0 {
        return 0;
    }
    let rest = f32::from(255 - zero);
    let above = (rest * floor.min(1.0)).ceil().max(1.0);
    (f32::from(zero) + above).min(256.0) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_lands_where_the_exams_range_puts_it() {
        let raw = Array3::from_shape_vec((2, 1, 2), vec![-1.0, 0.0, 1.0, 3.0]).expect("shape");
        // Exam: -1..3, zero at a quarter.
        assert_eq!(
            zero_level(&raw, 0, Method::Contrib, Normalization::Exam),
            64
        );
        // Slice 1 is all positive: zero is its bottom.
        assert_eq!(zero_level(&raw, 1, Method::Cam, Normalization::Slice), 0);
        assert_eq!(zero_level(&raw, 0, Method::Cam, Normalization::Slice), 255);
        // Gradient methods are ReLU'd first: nothing is below zero.
        assert_eq!(zero_level(&raw, 0, Method::GradCam, Normalization::Exam), 0);
        assert_eq!(zero_level(&raw, 0, Method::Contrib, Normalization::None), 0);
    }

    #[test]
    fn the_floor_is_a_share_of_the_range_above_zero() {
        assert_eq!(threshold(64, 0.0), 0, "no floor: everything coloured");
        // 191 values above zero; 0.2 of them is 38.2 → 39.
        assert_eq!(threshold(64, 0.2), 64 + 39);
        assert_eq!(threshold(0, 0.4), 102);
        // Zero itself is never coloured once there is a floor.
        assert_eq!(threshold(200, 0.001), 201);
        assert_eq!(threshold(255, 0.2), 256);
    }

    #[test]
    fn presets_cycle_and_a_configured_floor_joins_at_the_next() {
        assert_eq!(next_preset(0.0), 0.2);
        assert_eq!(next_preset(0.2), 0.4);
        assert_eq!(next_preset(0.4), 0.0);
        assert_eq!(next_preset(0.3), 0.4);
        assert_eq!(next_preset(0.9), 0.0);
    }
}
