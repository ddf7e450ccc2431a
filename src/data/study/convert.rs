//! A series' stored values to the models' input: one intensity mapping for the whole series to
//! 0–255, then each slice resampled to SIDE×SIDE with its physical aspect kept (the longer side
//! fills the square, the shorter is padded with 0), bilinearly.
use ndarray::{Array3, Axis};

use super::{Intensity, Values};
use crate::data::geometry::{add, scale, unit, VolumeGeometry};

/// The models' in-plane size (MRNet: 256).
pub const SIDE: usize = 256;

/// The output pixel size in mm and, for output row/column 0, the stored row/column it samples.
struct Grid {
    out_mm: f64,
    row_mm: f64,
    column_mm: f64,
    first_row: f64,
    first_column: f64,
}

impl Grid {
    fn of(original: &VolumeGeometry) -> Grid {
        let (row_mm, column_mm) = original.pixel_mm();
        let height = original.rows as f64 * row_mm;
        let width = original.columns as f64 * column_mm;
        let out_mm = height.max(width) / SIDE as f64;
        let half = SIDE as f64 / 2.0;
        Grid {
            out_mm,
            row_mm,
            column_mm,
            first_row: (0.5 - half) * out_mm / row_mm + original.rows as f64 / 2.0 - 0.5,
            first_column: (0.5 - half) * out_mm / column_mm + original.columns as f64 / 2.0 - 0.5,
        }
    }

    fn row(&self, i: usize) -> f64 {
        self.first_row + i as f64 * self.out_mm / self.row_mm
    }

    fn column(&self, j: usize) -> f64 {
        self.first_column + j as f64 * self.out_mm / self.column_mm
    }
}

/// Where the converted voxels lie, given where the stored ones do.
pub fn conversion_geometry(original: &VolumeGeometry) -> VolumeGeometry {
    let grid = Grid::of(original);
    let row_dir = unit(original.row_step).unwrap_or([0.0; 3]);
    let column_dir = unit(original.column_step).unwrap_or([0.0; 3]);
    let shift = add(
        scale(original.row_step, grid.first_row),
        scale(original.column_step, grid.first_column),
    );
    VolumeGeometry {
        origins: original.origins.iter().map(|&o| add(o, shift)).collect(),
        column_step: scale(column_dir, grid.out_mm),
        row_step: scale(row_dir, grid.out_mm),
        rows: SIDE,
        columns: SIDE,
    }
}

/// The series' values as 0–255 floats (clipping beyond the mapping's range).
fn map_intensity(values: &Values, intensity: Intensity) -> Values {
    let (lo, hi) = match intensity {
        Intensity::Identity => (0.0, 255.0),
        Intensity::MinMax => values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            }),
        Intensity::Percentile { lo, hi } => percentiles(values, lo, hi),
    };
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return Values::zeros(values.raw_dim());
    }
    let k = 255.0 / (hi - lo);
    values.mapv(|v| ((v - lo) * k).clamp(0.0, 255.0))
}

/// The `lo`-th and `hi`-th percentiles (nearest rank) of `values`.
fn percentiles(values: &Values, lo: f64, hi: f64) -> (f32, f32) {
    let mut all: Vec<f32> = values.iter().copied().collect();
    if all.is_empty() {
        return (0.0, 0.0);
    }
    let last = (all.len() - 1) as f64;
    let rank = |p: f64| ((p / 100.0) * last).round() as usize;
    let lo_value = *all.select_nth_unstable_by(rank(lo), f32::total_cmp).1;
    let hi_value = *all.select_nth_unstable_by(rank(hi), f32::total_cmp).1;
    (lo_value, hi_value)
}

/// Bilinear sample of one slice at fractional (row, column): 0 beyond the pixels' edges (half
/// a pixel past the outer centres), the edge pixels' values up to them.
fn sample(slice: &ndarray::ArrayView2<'_, f32>, row: f64, column: f64) -> f32 {
    let (rows, columns) = slice.dim();
    let outside = |v: f64, n: usize| v < -0.5 || v > n as f64 - 0.5;
    if outside(row, rows) || outside(column, columns) {
        return 0.0;
    }
    let at = |r: isize, c: isize| -> f32 {
        let r = r.clamp(0, rows as isize - 1) as usize;
        let c = c.clamp(0, columns as isize - 1) as usize;
        slice[[r, c]]
    };
    let (r0, c0) = (row.floor(), column.floor());
    let (fr, fc) = ((row - r0) as f32, (column - c0) as f32);
    let (r0, c0) = (r0 as isize, c0 as isize);
    let top = at(r0, c0) * (1.0 - fc) + at(r0, c0 + 1) * fc;
    let bottom = at(r0 + 1, c0) * (1.0 - fc) + at(r0 + 1, c0 + 1) * fc;
    top * (1.0 - fr) + bottom * fr
}

/// The stored values of a series (slices, rows, columns), as the models' input.
pub fn convert(values: &Values, original: &VolumeGeometry, intensity: Intensity) -> Array3<u8> {
    let mapped = map_intensity(values, intensity);
    let (row_mm, column_mm) = original.pixel_mm();
    let square = (row_mm - column_mm).abs() <= 1e-9 * row_mm.max(column_mm);
    if (original.rows, original.columns) == (SIDE, SIDE) && square {
        // The grid is the stored one: each output pixel is its stored pixel.
        return mapped.mapv(|v| v.round().clamp(0.0, 255.0) as u8);
    }
    let grid = Grid::of(original);
    let rows: Vec<f64> = (0..SIDE).map(|i| grid.row(i)).collect();
    let columns: Vec<f64> = (0..SIDE).map(|j| grid.column(j)).collect();
    let mut out = Array3::<u8>::zeros((mapped.len_of(Axis(0)), SIDE, SIDE));
    for (slice, mut target) in mapped.outer_iter().zip(out.outer_iter_mut()) {
        for (i, &r) in rows.iter().enumerate() {
            for (j, &c) in columns.iter().enumerate() {
                target[[i, j]] = sample(&slice, r, c).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(rows: usize, columns: usize, row_mm: f64, column_mm: f64) -> VolumeGeometry {
        VolumeGeometry {
            origins: vec![[0.0, 0.0, 0.0], [0.0, 0.0, 3.0]],
            column_step: [column_mm, 0.0, 0.0],
            row_step: [0.0, row_mm, 0.0],
            rows,
            columns,
        }
    }

    #[test]
    fn a_256_square_series_in_the_models_range_is_unchanged() {
        let values =
            Values::from_shape_fn((2, SIDE, SIDE), |(s, r, c)| ((s + r * 3 + c) % 256) as f32);
        let g = geometry(SIDE, SIDE, 0.6, 0.6);
        let out = convert(&values, &g, Intensity::Identity);
        assert_eq!(out, values.mapv(|v| v as u8));
        let back = conversion_geometry(&g);
        assert_eq!(back.origins, g.origins);
        assert_eq!(back.rows, SIDE);
    }

    #[test]
    fn the_aspect_is_kept_by_padding_and_the_geometry_follows() {
        // 128 rows × 256 columns of square pixels: the image fills the middle half of the rows.
        let values = Values::from_elem((1, 128, 256), 100.0);
        let g = VolumeGeometry {
            origins: vec![[0.0; 3]],
            ..geometry(128, 256, 1.0, 1.0)
        };
        let out = convert(&values, &g, Intensity::Identity);
        assert_eq!(out[[0, 10, 128]], 0, "padding above");
        assert_eq!(out[[0, 128, 128]], 100, "image in the middle");
        assert_eq!(out[[0, 250, 128]], 0, "padding below");
        let converted = conversion_geometry(&g);
        // Output row 64 samples stored row 0: the same patient point.
        let p = converted.point(0, 64.0, 0.0).expect("slice");
        let q = g.point(0, 0.0, 0.0).expect("slice");
        assert!(
            p.iter().zip(q).all(|(a, b)| (a - b).abs() < 1e-9),
            "{p:?} vs {q:?}"
        );
    }

    #[test]
    fn non_square_pixels_are_resampled_to_square_ones() {
        // 100 rows of 2 mm, 200 columns of 1 mm: a 200 mm square field.
        let values = Values::from_shape_fn((1, 100, 200), |(_, r, _)| r as f32);
        let g = VolumeGeometry {
            origins: vec![[0.0; 3]],
            ..geometry(100, 200, 2.0, 1.0)
        };
        let out = convert(&values, &g, Intensity::MinMax);
        assert!(
            out[[0, 0, 5]] < 3 && out[[0, 255, 5]] > 250,
            "rows stretch over the whole height"
        );
        let (row_mm, column_mm) = conversion_geometry(&g).pixel_mm();
        assert!((row_mm - column_mm).abs() < 1e-12);
    }

    #[test]
    fn intensity_mappings() {
        let values = Values::from_shape_fn((1, 10, 10), |(_, r, c)| (r * 10 + c) as f32 * 40.0);
        let minmax = map_intensity(&values, Intensity::MinMax);
        assert_eq!(minmax[[0, 0, 0]], 0.0);
        assert_eq!(minmax[[0, 9, 9]], 255.0);
        let clipped = map_intensity(&values, Intensity::Percentile { lo: 10.0, hi: 90.0 });
        assert_eq!(clipped[[0, 0, 5]], 0.0, "below the 10th percentile");
        assert_eq!(clipped[[0, 9, 5]], 255.0, "above the 90th");
        let constant = map_intensity(&Values::from_elem((1, 2, 2), 7.0), Intensity::MinMax);
        assert!(constant.iter().all(|&v| v == 0.0));
        assert_eq!(
            "percentile:0.5,99.5".parse(),
            Ok(Intensity::Percentile { lo: 0.5, hi: 99.5 })
        );
        assert!("percentile:50,10".parse::<Intensity>().is_err());
        assert!("window".parse::<Intensity>().is_err());
    }
}
