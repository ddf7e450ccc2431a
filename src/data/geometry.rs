//! Where a series' voxels lie in the patient, as the models see the series (slices × rows ×
//! columns, after conversion): DICOM's patient coordinates, in millimetres (x towards the
//! patient's left, y towards posterior, z towards the head). This is what links the three planes
//! of an exam: a point set on one plane's slice is found on the others'.
use serde::{Deserialize, Serialize};

use super::Plane;

/// A point or a direction in patient coordinates, millimetres.
pub type Point = [f64; 3];

/// The geometry of one series: each slice's origin and the in-plane steps, shared by all slices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeGeometry {
    /// Centre of the pixel at row 0, column 0 of each slice, in the series' slice order.
    pub origins: Vec<Point>,
    /// The move from one column to the next (one pixel to the right).
    pub column_step: Point,
    /// The move from one row to the next (one pixel down).
    pub row_step: Point,
    pub rows: usize,
    pub columns: usize,
}

/// Where a patient point falls in a series: the nearest slice, the fractional row and column
/// on it, and how far the point is from that slice's plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Voxel {
    pub slice: usize,
    pub row: f64,
    pub column: f64,
    pub off_plane_mm: f64,
}

/// Why a geometry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error("no slices")]
    Empty,
    #[error("a zero or non-finite step: rows and columns must move by a length in mm")]
    ZeroStep,
    #[error("rows and columns are parallel: the slice has no normal")]
    Degenerate,
}

pub fn add(a: Point, b: Point) -> Point {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

pub fn sub(a: Point, b: Point) -> Point {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn scale(a: Point, k: f64) -> Point {
    [a[0] * k, a[1] * k, a[2] * k]
}

pub fn dot(a: Point, b: Point) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: Point, b: Point) -> Point {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn norm(a: Point) -> f64 {
    dot(a, a).sqrt()
}

/// `a` scaled to length 1; `None` for a zero or non-finite vector.
pub fn unit(a: Point) -> Option<Point> {
    let n = norm(a);
    (n.is_finite() && n > 1e-9).then(|| scale(a, 1.0 / n))
}

/// The plane a slice with this normal shows: the normal's dominant patient axis (left–right →
/// sagittal, anterior–posterior → coronal, head–foot → axial).
pub fn plane_of_normal(normal: Point) -> Plane {
    let [x, y, z] = normal.map(f64::abs);
    if x >= y && x >= z {
        Plane::Sagittal
    } else if y >= z {
        Plane::Coronal
    } else {
        Plane::Axial
    }
}

impl VolumeGeometry {
    /// Checks that the geometry can locate points: slices, non-zero steps, a normal.
    pub fn check(&self) -> Result<(), GeometryError> {
        if self.origins.is_empty() || self.rows == 0 || self.columns == 0 {
            return Err(GeometryError::Empty);
        }
        let finite = |p: &Point| p.iter().all(|v| v.is_finite());
        if !finite(&self.column_step)
            || !finite(&self.row_step)
            || !self.origins.iter().all(finite)
            || unit(self.column_step).is_none()
            || unit(self.row_step).is_none()
        {
            return Err(GeometryError::ZeroStep);
        }
        unit(cross(self.column_step, self.row_step))
            .map(|_| ())
            .ok_or(GeometryError::Degenerate)
    }

    pub fn slices(&self) -> usize {
        self.origins.len()
    }

    /// The unit normal of the slices: columns × rows. Zero where [`check`](Self::check) fails.
    pub fn normal(&self) -> Point {
        unit(cross(self.column_step, self.row_step)).unwrap_or([0.0; 3])
    }

    /// The plane these slices show, from their normal.
    pub fn plane(&self) -> Plane {
        plane_of_normal(self.normal())
    }

    /// The patient point at (fractional) `row`, `column` of `slice`; `None` past the last slice.
    pub fn point(&self, slice: usize, row: f64, column: f64) -> Option<Point> {
        let origin = *self.origins.get(slice)?;
        Some(add(
            origin,
            add(scale(self.column_step, column), scale(self.row_step, row)),
        ))
    }

    /// The slice nearest to `p` and where `p` projects on it; `None` when `p` is outside the
    /// slices' rectangle, or further from the nearest slice than half the distance between
    /// slices (at least half a millimetre, for a single slice).
    pub fn locate(&self, p: Point) -> Option<Voxel> {
        let normal = unit(cross(self.column_step, self.row_step))?;
        let (slice, off_plane_mm) = self
            .origins
            .iter()
            .map(|&o| dot(sub(p, o), normal))
            .enumerate()
            .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))?;
        if off_plane_mm.abs() > self.slice_gap_mm() / 2.0 + 1e-6 {
            return None;
        }
        let in_plane = sub(p, self.origins[slice]);
        let along = |step: Point| dot(in_plane, step) / dot(step, step);
        let (row, column) = (along(self.row_step), along(self.column_step));
        let inside = |v: f64, n: usize| (-0.5..=n as f64 - 0.5).contains(&v);
        (inside(row, self.rows) && inside(column, self.columns)).then_some(Voxel {
            slice,
            row,
            column,
            off_plane_mm,
        })
    }

    /// The median distance between neighbouring slices along the normal (1 mm for one slice).
    pub fn slice_gap_mm(&self) -> f64 {
        let normal = self.normal();
        let mut positions: Vec<f64> = self.origins.iter().map(|&o| dot(o, normal)).collect();
        positions.sort_by(f64::total_cmp);
        let mut gaps: Vec<f64> = positions.windows(2).map(|w| w[1] - w[0]).collect();
        if gaps.is_empty() {
            return 1.0;
        }
        gaps.sort_by(f64::total_cmp);
        gaps[gaps.len() / 2].max(1e-3)
    }

    /// Pixel size in mm along rows and columns.
    pub fn pixel_mm(&self) -> (f64, f64) {
        (norm(self.row_step), norm(self.column_step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sagittal(slices: usize) -> VolumeGeometry {
        VolumeGeometry {
            origins: (0..slices).map(|s| [s as f64 * 3.0, -50.0, 60.0]).collect(),
            column_step: [0.0, 0.5, 0.0],
            row_step: [0.0, 0.0, -0.5],
            rows: 200,
            columns: 200,
        }
    }

    #[test]
    fn a_point_is_found_on_its_slice_row_and_column() {
        let g = sagittal(20);
        g.check().expect("valid");
        assert_eq!(g.plane(), Plane::Sagittal);
        let p = g.point(7, 40.0, 120.0).expect("in range");
        let v = g.locate(p).expect("inside");
        assert_eq!(v.slice, 7);
        assert!((v.row - 40.0).abs() < 1e-9 && (v.column - 120.0).abs() < 1e-9);
        assert!(v.off_plane_mm.abs() < 1e-9);
        // 1 mm off the plane still lands on slice 7; 2 mm is nearer slice 8's 3 mm spacing.
        assert_eq!(g.locate(add(p, [1.0, 0.0, 0.0])).map(|v| v.slice), Some(7));
        assert_eq!(g.locate(add(p, [2.0, 0.0, 0.0])).map(|v| v.slice), Some(8));
        assert_eq!(g.slice_gap_mm(), 3.0);
    }

    #[test]
    fn points_outside_the_stack_or_the_rectangle_are_not_located() {
        let g = sagittal(5);
        assert_eq!(
            g.locate([-10.0, -40.0, 50.0]),
            None,
            "before the first slice"
        );
        assert_eq!(g.locate([6.0, 500.0, 50.0]), None, "beyond the columns");
        assert!(g.locate([6.0, -40.0, 50.0]).is_some());
    }

    #[test]
    fn the_plane_is_the_normals_dominant_axis_also_when_oblique() {
        let deg = std::f64::consts::PI / 180.0;
        for angle in [-20.0, -5.0, 0.0, 12.0, 20.0] {
            let (s, c) = (f64::sin(angle * deg), f64::cos(angle * deg));
            assert_eq!(plane_of_normal([c, s, 0.0]), Plane::Sagittal, "{angle}");
            assert_eq!(plane_of_normal([s, -c, 0.0]), Plane::Coronal, "{angle}");
            assert_eq!(plane_of_normal([0.0, s, c]), Plane::Axial, "{angle}");
        }
    }

    #[test]
    fn degenerate_geometries_are_refused() {
        let mut g = sagittal(3);
        g.row_step = g.column_step;
        assert_eq!(g.check(), Err(GeometryError::Degenerate));
        g.row_step = [0.0; 3];
        assert_eq!(g.check(), Err(GeometryError::ZeroStep));
        g.origins.clear();
        assert_eq!(g.check(), Err(GeometryError::Empty));
    }
}
