//! The ground truth's outline on a composed slice: a thin contour, in a colour that none of the
//! heat colormaps (nor their blends with the grey slice) has, around the voxels of the current
//! task's lesion.
use image::{Rgb, RgbImage};
use ndarray::{Array3, Axis};

use crate::data::Task;
use crate::tui::app::is_lesion;

/// Pure green: jet's greens carry red or blue (its purest is (128, 255, 128)), turbo's and
/// inferno's too, and a blend with grey moves every channel together.
pub const OUTLINE: Rgb<u8> = Rgb([0, 255, 0]);

/// Draws the outline of `task`'s lesion on `slice` of `mask` into each of `panels` side by
/// side in `image` (each the slice scaled to the panel): a pixel is on the outline when its
/// voxel is lesion and a pixel within the line's width is not.
pub fn draw(image: &mut RgbImage, mask: &Array3<u8>, slice: usize, task: Task, panels: u32) {
    if slice >= mask.dim().0 || panels == 0 {
        return;
    }
    let voxels = mask.index_axis(Axis(0), slice);
    let (rows, columns) = voxels.dim();
    let (panel_w, panel_h) = (image.width() / panels, image.height());
    if rows == 0 || columns == 0 || panel_w == 0 || panel_h == 0 {
        return;
    }
    // Nearest voxel of each pixel row and column.
    let row_of: Vec<usize> = (0..panel_h)
        .map(|y| (y as usize * rows / panel_h as usize).min(rows - 1))
        .collect();
    let column_of: Vec<usize> = (0..panel_w)
        .map(|x| (x as usize * columns / panel_w as usize).min(columns - 1))
        .collect();
    let inside = |x: i64, y: i64| {
        (0..i64::from(panel_w)).contains(&x)
            && (0..i64::from(panel_h)).contains(&y)
            && is_lesion(voxels[[row_of[y as usize], column_of[x as usize]]], task)
    };
    let width = i64::from((panel_w.min(panel_h) / 300).max(1));
    let mut contour = Vec::new();
    for y in 0..i64::from(panel_h) {
        for x in 0..i64::from(panel_w) {
            if !inside(x, y) {
                continue;
            }
            let edge = [(-width, 0), (width, 0), (0, -width), (0, width)]
                .iter()
                .any(|&(dx, dy)| !inside(x + dx, y + dy));
            if edge {
                contour.push((x as u32, y as u32));
            }
        }
    }
    for panel in 0..panels {
        for &(x, y) in &contour {
            image.put_pixel(panel * panel_w + x, y, OUTLINE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cam::colormap::{blend, Colormap};
    use crate::data::Lesion;

    #[test]
    fn a_square_lesion_gets_a_one_pixel_ring_in_each_panel() {
        let mut mask = Array3::zeros((1, 8, 8));
        for r in 2..6 {
            for c in 2..6 {
                mask[[0, r, c]] = Lesion::AclTear.code();
            }
        }
        mask[[0, 0, 0]] = Lesion::MeniscalTear.code();
        let mut image = RgbImage::from_pixel(32, 16, Rgb([9, 9, 9]));
        draw(&mut image, &mask, 0, Task::Acl, 2);
        let green = |x: u32, y: u32| *image.get_pixel(x, y) == OUTLINE;
        // 16-pixel panels: voxels 2..6 are pixels 4..12; the ring is its border.
        for panel in [0, 16] {
            assert!(green(panel + 4, 4) && green(panel + 11, 11) && green(panel + 4, 8));
            assert!(!green(panel + 8, 8), "the inside stays as it was");
            assert!(!green(panel + 3, 4), "outside stays");
            assert!(!green(panel, 0), "another task's lesion is not outlined");
        }
        let ring = image.pixels().filter(|p| **p == OUTLINE).count();
        assert_eq!(ring, 2 * (8 * 4 - 4));
        // Abnormal outlines every lesion.
        let mut image = RgbImage::new(16, 16);
        draw(&mut image, &mask, 0, Task::Abnormal, 1);
        assert_eq!(*image.get_pixel(0, 0), OUTLINE);
    }

    #[test]
    fn the_outline_colour_is_far_from_every_colormap_and_blend() {
        let far = |rgb: [u8; 3]| {
            rgb.iter()
                .zip(OUTLINE.0)
                .map(|(&a, b)| (i16::from(a) - i16::from(b)).abs())
                .max()
                .unwrap_or(0)
        };
        for colormap in Colormap::ALL {
            for value in 0..=255u8 {
                for gray in (0..=255u8).step_by(5) {
                    for opacity in [0.3, 0.45, 0.7, 1.0] {
                        let shown = blend(gray, value, colormap, opacity, 0);
                        assert!(
                            far(shown) >= 48,
                            "{colormap:?} {value} over {gray} at {opacity}: {shown:?}"
                        );
                    }
                }
            }
        }
    }
}
