//! Summary pictures for the headless commands: a slice and its CAM overlay side by side.
use image::{DynamicImage, Rgb, RgbImage};
use ndarray::Array3;

use crate::cam::colormap::{blend_reference, Colormap};
use crate::cam::Explanation;

const OUTLINE: [u8; 3] = [255, 255, 255];

/// The slice with the highest score: the raw slice left, the overlay right; where a mask is
/// given, its lesion voxels' border is drawn on the overlay.
pub fn side_by_side(
    volume: &Array3<u8>,
    explanation: &Explanation,
    mask: Option<&Array3<u8>>,
    colormap: Colormap,
) -> DynamicImage {
    let (_, h, w) = volume.dim();
    let slice = top_slice(&explanation.scores);
    let mut canvas = RgbImage::new(2 * w as u32, h as u32);
    for r in 0..h {
        for c in 0..w {
            let gray = volume[[slice, r, c]];
            let heat = colormap.rgb(explanation.maps[[slice, r, c]]);
            let overlay = if mask.is_some_and(|m| on_border(m, slice, r, c)) {
                OUTLINE
            } else {
                blend_reference(gray, heat)
            };
            canvas.put_pixel(c as u32, r as u32, Rgb([gray; 3]));
            canvas.put_pixel((w + c) as u32, r as u32, Rgb(overlay));
        }
    }
    DynamicImage::ImageRgb8(canvas)
}

/// The index of the highest score (0 when there are none): the same argmax as the top class.
pub fn top_slice(scores: &[f32]) -> usize {
    crate::model::network::top_class(scores)
}

/// A lesion voxel (any non-zero label) with a 4-neighbour outside the lesion or the slice.
fn on_border(mask: &Array3<u8>, s: usize, r: usize, c: usize) -> bool {
    if mask.get([s, r, c]).is_none_or(|&v| v == 0) {
        return false;
    }
    let (_, h, w) = mask.dim();
    let neighbours = [
        r.checked_sub(1).map(|r| (r, c)),
        (r + 1 < h).then_some((r + 1, c)),
        c.checked_sub(1).map(|c| (r, c)),
        (c + 1 < w).then_some((r, c + 1)),
    ];
    neighbours
        .iter()
        .any(|n| n.is_none_or(|(r, c)| mask[[s, r, c]] == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_border_of_a_square_lesion_is_its_outer_ring() {
        let mut mask = Array3::<u8>::zeros((1, 6, 6));
        for r in 1..5 {
            for c in 1..5 {
                mask[[0, r, c]] = 1;
            }
        }
        assert!(on_border(&mask, 0, 1, 1));
        assert!(on_border(&mask, 0, 4, 2));
        assert!(!on_border(&mask, 0, 2, 2));
        assert!(!on_border(&mask, 0, 0, 0));
    }

    #[test]
    fn the_top_slice_is_the_highest_score() {
        assert_eq!(top_slice(&[0.1, -2.0, 3.0, 2.9]), 2);
        assert_eq!(top_slice(&[]), 0);
    }
}
