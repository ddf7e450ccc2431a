//! Points, rotations and the few solids the knee is built from (all in millimetres).
use std::ops::{Add, Mul, Sub};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct V3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

pub const fn v3(x: f64, y: f64, z: f64) -> V3 {
    V3 { x, y, z }
}

impl Add for V3 {
    type Output = V3;
    fn add(self, o: V3) -> V3 {
        v3(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}

impl Sub for V3 {
    type Output = V3;
    fn sub(self, o: V3) -> V3 {
        v3(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}

impl Mul<f64> for V3 {
    type Output = V3;
    fn mul(self, k: f64) -> V3 {
        v3(self.x * k, self.y * k, self.z * k)
    }
}

impl V3 {
    pub fn dot(self, o: V3) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }

    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }

    pub fn scale(self, k: V3) -> V3 {
        v3(self.x * k.x, self.y * k.y, self.z * k.z)
    }

    pub fn min(self, o: V3) -> V3 {
        v3(self.x.min(o.x), self.y.min(o.y), self.z.min(o.z))
    }

    pub fn max(self, o: V3) -> V3 {
        v3(self.x.max(o.x), self.y.max(o.y), self.z.max(o.z))
    }
}

/// A rotation as a row-major 3×3 matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rot([[f64; 3]; 3]);

impl Rot {
    /// Rotation about x, then y, then z (angles in radians).
    pub fn from_euler(ax: f64, ay: f64, az: f64) -> Self {
        let (sx, cx) = libm::sincos(ax);
        let (sy, cy) = libm::sincos(ay);
        let (sz, cz) = libm::sincos(az);
        let rx = [[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]];
        let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let rz = [[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]];
        Rot(matmul(&rz, &matmul(&ry, &rx)))
    }

    pub fn apply(&self, p: V3) -> V3 {
        let m = &self.0;
        v3(
            m[0][0] * p.x + m[0][1] * p.y + m[0][2] * p.z,
            m[1][0] * p.x + m[1][1] * p.y + m[1][2] * p.z,
            m[2][0] * p.x + m[2][1] * p.y + m[2][2] * p.z,
        )
    }

    pub fn transpose(&self) -> Rot {
        let m = &self.0;
        Rot([
            [m[0][0], m[1][0], m[2][0]],
            [m[0][1], m[1][1], m[2][1]],
            [m[0][2], m[1][2], m[2][2]],
        ])
    }
}

fn matmul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for (i, row) in out.iter_mut().enumerate() {
        for (j, cell) in row.iter_mut().enumerate() {
            *cell = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

/// An axis-aligned box, for cheap rejection before the exact test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aabb {
    pub lo: V3,
    pub hi: V3,
}

impl Aabb {
    pub fn around(centre: V3, half: V3) -> Self {
        Aabb {
            lo: centre - half,
            hi: centre + half,
        }
    }

    pub fn of_segment(a: V3, b: V3, pad: f64) -> Self {
        let pad = v3(pad, pad, pad);
        Aabb {
            lo: a.min(b) - pad,
            hi: a.max(b) + pad,
        }
    }

    pub fn union(self, o: Aabb) -> Aabb {
        Aabb {
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
        }
    }

    pub fn overlaps(&self, o: &Aabb) -> bool {
        self.lo.x <= o.hi.x
            && o.lo.x <= self.hi.x
            && self.lo.y <= o.hi.y
            && o.lo.y <= self.hi.y
            && self.lo.z <= o.hi.z
            && o.lo.z <= self.hi.z
    }

    pub fn contains(&self, p: V3) -> bool {
        self.lo.x <= p.x
            && p.x <= self.hi.x
            && self.lo.y <= p.y
            && p.y <= self.hi.y
            && self.lo.z <= p.z
            && p.z <= self.hi.z
    }
}

/// Σ((p − c)/r)²: below 1 inside the ellipsoid.
pub fn ellipsoid(p: V3, c: V3, r: V3) -> f64 {
    let d = p - c;
    let (x, y, z) = (d.x / r.x, d.y / r.y, d.z / r.z);
    x * x + y * y + z * z
}

/// ⌊x⌋ for |x| < 2⁶³, exact: without SSE4.1 `f64::floor` is a libm call, and the noise and
/// the waves call it for most voxels.
#[inline]
pub fn floor(x: f64) -> f64 {
    let truncated = x as i64 as f64;
    if truncated > x {
        truncated - 1.0
    } else {
        truncated
    }
}

/// Whether p is inside the ellipsoid (centre c, radii r); division-free, for the hot paths.
pub fn in_ellipsoid(p: V3, c: V3, r: V3) -> bool {
    let d = p - c;
    let (xx, yy, zz) = (r.x * r.x, r.y * r.y, r.z * r.z);
    d.x * d.x * yy * zz + d.y * d.y * xx * zz + d.z * d.z * xx * yy < xx * yy * zz
}

/// Distance from p to the segment ab, and where along it (0 at a, 1 at b) the closest point is.
pub fn segment_distance(p: V3, a: V3, b: V3) -> (f64, f64) {
    let ab = b - a;
    let t = ((p - a).dot(ab) / ab.dot(ab)).clamp(0.0, 1.0);
    ((p - (a + ab * t)).norm(), t)
}

pub fn smoothstep(edge0: f64, edge1: f64, x: f64) -> f64 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_round_trips_through_its_transpose() {
        let r = Rot::from_euler(0.1, -0.15, 0.2);
        let p = v3(3.0, -4.0, 5.0);
        let back = r.transpose().apply(r.apply(p));
        assert!((back - p).norm() < 1e-12);
        assert!((r.apply(p).norm() - p.norm()).abs() < 1e-12);
    }

    #[test]
    fn in_ellipsoid_agrees_with_the_ellipsoid_value() {
        let (c, r) = (v3(1.0, -2.0, 3.0), v3(4.0, 7.0, 2.5));
        for i in 0..2000 {
            let t = f64::from(i);
            let p = v3(
                1.0 + 6.0 * (t * 0.37).sin(),
                -2.0 + 9.0 * (t * 0.11).cos(),
                3.0 + 4.0 * (t * 0.23).sin(),
            );
            assert_eq!(in_ellipsoid(p, c, r), ellipsoid(p, c, r) < 1.0, "{p:?}");
        }
    }

    #[test]
    fn segment_distance_measures_to_the_closest_point() {
        let (d, t) = segment_distance(v3(1.0, 2.0, 0.0), v3(0.0, 0.0, 0.0), v3(4.0, 0.0, 0.0));
        assert!((d - 2.0).abs() < 1e-12 && (t - 0.25).abs() < 1e-12);
        let (d, t) = segment_distance(v3(7.0, 0.0, 0.0), v3(0.0, 0.0, 0.0), v3(4.0, 0.0, 0.0));
        assert!((d - 3.0).abs() < 1e-12 && t == 1.0);
    }
}
