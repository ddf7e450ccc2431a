//! Where a CAM points, measured against ground-truth lesion masks (the phantom's), and how
//! faithful it is: pointing game, energy share, slice hit, deletion curve.
use ndarray::{Array3, Axis, Zip};

/// The voxels of `label` in `mask`, grown by `radius` pixels within each slice (a square
/// neighbourhood: one feature cell of slack for maps computed at feature resolution).
pub fn dilated(mask: &Array3<u8>, label: u8, radius: usize) -> Array3<bool> {
    let (slices, h, w) = mask.dim();
    let mut out = Array3::from_elem((slices, h, w), false);
    for ((s, r, c), &v) in mask.indexed_iter() {
        if v != label {
            continue;
        }
        for rr in r.saturating_sub(radius)..(r + radius + 1).min(h) {
            for cc in c.saturating_sub(radius)..(c + radius + 1).min(w) {
                out[[s, rr, cc]] = true;
            }
        }
    }
    out
}

/// Pointing game: the map's maximum over all slices and pixels lies in `target`. None when
/// the target is empty.
pub fn pointing_game(map: &Array3<f32>, target: &Array3<bool>) -> Option<bool> {
    if !target.iter().any(|&t| t) {
        return None;
    }
    let (index, _) = map.indexed_iter().max_by(|a, b| a.1.total_cmp(b.1))?;
    Some(target[index])
}

/// Positive map energy inside the 3-D bounding box of `label`'s voxels, as a share of all
/// positive energy. None without lesion voxels or without positive energy.
pub fn energy_share(map: &Array3<f32>, mask: &Array3<u8>, label: u8) -> Option<f64> {
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for ((s, r, c), _) in mask.indexed_iter().filter(|(_, &v)| v == label) {
        for (axis, i) in [s, r, c].into_iter().enumerate() {
            lo[axis] = lo[axis].min(i);
            hi[axis] = hi[axis].max(i);
        }
    }
    if lo[0] == usize::MAX {
        return None;
    }
    let (mut inside, mut total) = (0.0f64, 0.0f64);
    for ((s, r, c), &v) in map.indexed_iter() {
        let energy = f64::from(v.max(0.0));
        total += energy;
        if (lo[0]..=hi[0]).contains(&s)
            && (lo[1]..=hi[1]).contains(&r)
            && (lo[2]..=hi[2]).contains(&c)
        {
            inside += energy;
        }
    }
    (total > 0.0).then(|| inside / total)
}

/// Slice hit: the slice with the highest score holds voxels of `label`. None without any.
pub fn slice_hit(scores: &[f32], mask: &Array3<u8>, label: u8) -> Option<bool> {
    let lesion_slices: Vec<bool> = mask
        .axis_iter(Axis(0))
        .map(|slice| slice.iter().any(|&v| v == label))
        .collect();
    if !lesion_slices.contains(&true) {
        return None;
    }
    let (best, _) = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    Some(lesion_slices.get(best).copied().unwrap_or(false))
}

/// Keep-masks for a deletion curve: step k (0..=steps) removes the k/steps most highlighted
/// share of voxels (ties broken by position, so the order is deterministic).
pub fn deletion_masks(map: &Array3<f32>, steps: usize) -> Vec<Array3<bool>> {
    let mut order: Vec<(usize, f32)> = map.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let n = order.len();
    (0..=steps)
        .map(|k| {
            let removed = n * k / steps.max(1);
            let mut keep = vec![true; n];
            for &(i, _) in &order[..removed] {
                keep[i] = false;
            }
            Array3::from_shape_vec(map.dim(), keep)
                .unwrap_or_else(|_| Array3::from_elem(map.dim(), true))
        })
        .collect()
}

/// Zeroes the voxels a keep-mask removes.
pub fn apply_deletion(volume: &Array3<u8>, keep: &Array3<bool>) -> Array3<u8> {
    let mut out = volume.clone();
    Zip::from(&mut out).and(keep).for_each(|v, &k| {
        if !k {
            *v = 0;
        }
    });
    out
}

/// Area under a curve sampled at equal steps over [0, 1] (trapezoids).
pub fn curve_area(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return values.first().copied().unwrap_or(0.0);
    }
    let step = 1.0 / (values.len() - 1) as f64;
    values.windows(2).map(|w| (w[0] + w[1]) / 2.0 * step).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesion_mask() -> Array3<u8> {
        let mut mask = Array3::<u8>::zeros((3, 10, 10));
        for r in 4..6 {
            for c in 6..8 {
                mask[[1, r, c]] = 1;
            }
        }
        mask
    }

    fn peaked_map(at: (usize, usize, usize)) -> Array3<f32> {
        let mut map = Array3::<f32>::from_elem((3, 10, 10), 0.1);
        map[[at.0, at.1, at.2]] = 5.0;
        map
    }

    #[test]
    fn a_map_peaked_inside_the_mask_scores_one_outside_zero() {
        let mask = lesion_mask();
        let target = dilated(&mask, 1, 0);
        assert_eq!(pointing_game(&peaked_map((1, 4, 6)), &target), Some(true));
        assert_eq!(pointing_game(&peaked_map((1, 0, 0)), &target), Some(false));
        assert_eq!(
            pointing_game(&peaked_map((0, 4, 6)), &target),
            Some(false),
            "right place, wrong slice"
        );
        assert_eq!(
            pointing_game(&peaked_map((1, 4, 6)), &dilated(&mask, 2, 0)),
            None,
            "no voxel of label 2"
        );
    }

    #[test]
    fn dilation_gives_one_cell_of_slack() {
        let mask = lesion_mask();
        assert_eq!(
            pointing_game(&peaked_map((1, 3, 5)), &dilated(&mask, 1, 0)),
            Some(false)
        );
        assert_eq!(
            pointing_game(&peaked_map((1, 3, 5)), &dilated(&mask, 1, 1)),
            Some(true)
        );
        assert_eq!(dilated(&mask, 1, 1).iter().filter(|&&b| b).count(), 16);
    }

    #[test]
    fn energy_share_counts_positive_energy_in_the_lesion_box() {
        let mask = lesion_mask();
        let mut map = Array3::<f32>::zeros((3, 10, 10));
        map[[1, 4, 6]] = 3.0;
        map[[2, 0, 0]] = 1.0;
        map[[0, 0, 0]] = -10.0;
        assert_eq!(energy_share(&map, &mask, 1), Some(0.75));
        assert_eq!(energy_share(&Array3::zeros((3, 10, 10)), &mask, 1), None);
    }

    #[test]
    fn slice_hit_looks_at_the_top_scoring_slice() {
        let mask = lesion_mask();
        assert_eq!(slice_hit(&[0.1, 0.9, 0.3], &mask, 1), Some(true));
        assert_eq!(slice_hit(&[0.9, 0.1, 0.3], &mask, 1), Some(false));
        assert_eq!(slice_hit(&[0.9, 0.1, 0.3], &mask, 3), None);
    }

    #[test]
    fn deletion_removes_the_hottest_voxels_first() {
        let map = Array3::from_shape_fn((1, 2, 2), |(_, r, c)| (r * 2 + c) as f32);
        let masks = deletion_masks(&map, 4);
        assert_eq!(masks.len(), 5);
        assert!(masks[0].iter().all(|&k| k));
        assert!(
            !masks[1][[0, 1, 1]] && masks[1][[0, 1, 0]],
            "the hottest voxel goes first"
        );
        assert!(masks[4].iter().all(|&k| !k));
        let volume = Array3::from_elem((1, 2, 2), 9u8);
        assert_eq!(
            apply_deletion(&volume, &masks[2])
                .iter()
                .filter(|&&v| v == 0)
                .count(),
            2
        );
    }

    #[test]
    fn curve_area_is_the_trapezoid_rule() {
        assert!((curve_area(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((curve_area(&[1.0, 0.0]) - 0.5).abs() < 1e-12);
        assert!((curve_area(&[0.0, 1.0, 0.0, 1.0, 0.0]) - 0.5).abs() < 1e-12);
    }
}
