//! Scanning the analytic knee: pose, slice geometry per plane, and the MR look (point-spread
//! blur, bias field, contrast, Rician noise, 8-bit window).
use ndarray::Array3;

use super::anatomy::Knee;
use super::geometry::{v3, Aabb, Rot, V3};
use crate::data::geometry::{Point, VolumeGeometry};
use crate::data::{Lesion, Plane};
use crate::rng::Rng;

/// In-plane size of every series, as in MRNet.
pub const SIZE: usize = 256;

/// Where the knee lies in the scanner: rotation, shift, size, and which knee (left or right).
#[derive(Debug, Clone, PartialEq)]
pub struct Pose {
    scanner_to_knee: Rot,
    shift: V3,
    scale: f64,
    mirror: bool,
}

impl Pose {
    /// ±10° about each axis, ±8 mm, ±10 % size, left or right knee.
    pub fn random(rng: &mut Rng) -> Self {
        let deg = std::f64::consts::PI / 180.0;
        let mut angle = || rng.range(-10.0, 10.0) * deg;
        let rot = Rot::from_euler(angle(), angle(), angle());
        Pose {
            scanner_to_knee: rot.transpose(),
            shift: v3(
                rng.range(-8.0, 8.0),
                rng.range(-8.0, 8.0),
                rng.range(-8.0, 8.0),
            ),
            scale: rng.range(0.9, 1.1),
            mirror: rng.chance(0.5),
        }
    }

    /// The knee-frame point at scanner point `q`.
    pub fn to_knee(&self, q: V3) -> V3 {
        let p = self.scanner_to_knee.apply(q - self.shift) * (1.0 / self.scale);
        if self.mirror {
            v3(-p.x, p.y, p.z)
        } else {
            p
        }
    }
}

/// The slices of one series in scanner space.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesGeometry {
    pub plane: Plane,
    pub slices: usize,
    pub pixel_mm: f64,
    pub thickness_mm: f64,
    centre: V3,
    col: V3,
    row: V3,
    normal: V3,
}

impl SeriesGeometry {
    pub fn random(plane: Plane, rng: &mut Rng) -> Self {
        let (lo, hi) = plane.mrnet_slice_range();
        // Most series sit in the lower middle of MRNet's range.
        let u = (rng.unit() + rng.unit()) / 2.0;
        let slices = lo + ((hi - lo) as f64 * libm::pow(u, 1.3)).round() as usize;
        let (coverage, centre, col, row, normal) = match plane {
            Plane::Sagittal => (
                rng.range(95.0, 120.0),
                v3(
                    rng.range(-4.0, 4.0),
                    rng.range(-7.0, 1.0),
                    rng.range(2.0, 14.0),
                ),
                v3(0.0, -1.0, 0.0),
                v3(0.0, 0.0, -1.0),
                v3(1.0, 0.0, 0.0),
            ),
            Plane::Coronal => (
                rng.range(85.0, 105.0),
                v3(
                    rng.range(-4.0, 4.0),
                    rng.range(-8.0, 2.0),
                    rng.range(2.0, 14.0),
                ),
                v3(1.0, 0.0, 0.0),
                v3(0.0, 0.0, -1.0),
                v3(0.0, -1.0, 0.0),
            ),
            Plane::Axial => (
                rng.range(110.0, 150.0),
                v3(
                    rng.range(-4.0, 4.0),
                    rng.range(-4.0, 4.0),
                    rng.range(0.0, 14.0),
                ),
                v3(1.0, 0.0, 0.0),
                v3(0.0, -1.0, 0.0),
                v3(0.0, 0.0, -1.0),
            ),
        };
        SeriesGeometry {
            plane,
            slices,
            pixel_mm: rng.range(0.55, 0.65),
            thickness_mm: (coverage / slices as f64).clamp(2.0, 6.5),
            centre,
            col,
            row,
            normal,
        }
    }

    /// Scanner-space centre of pixel (`row`, `col`) of slice `slice` (fractional indices allowed).
    pub fn point(&self, slice: f64, row: f64, col: f64) -> V3 {
        let half = (SIZE as f64 - 1.0) / 2.0;
        let mid = (self.slices as f64 - 1.0) / 2.0;
        self.centre
            + self.col * ((col - half) * self.pixel_mm)
            + self.row * ((row - half) * self.pixel_mm)
            + self.normal * ((slice - mid) * self.thickness_mm)
    }

    /// Where the series' voxels lie in DICOM's patient coordinates (LPS), as kneecam's datasets
    /// state it (`geometry/{plane}/NNNN.json`, DICOM and NIfTI headers): see [`patient_point`].
    pub fn volume_geometry(&self) -> VolumeGeometry {
        let at = |s: usize, r: f64, c: f64| patient_point(self.point(s as f64, r, c));
        let origin = at(0, 0.0, 0.0);
        let step = |to: Point| [to[0] - origin[0], to[1] - origin[1], to[2] - origin[2]];
        VolumeGeometry {
            origins: (0..self.slices).map(|s| at(s, 0.0, 0.0)).collect(),
            column_step: step(at(0, 0.0, 1.0)),
            row_step: step(at(0, 1.0, 0.0)),
            rows: SIZE,
            columns: SIZE,
        }
    }
}

/// A scanner point in DICOM's patient coordinates (LPS: x to the patient's left, y posterior,
/// z superior). The scanner frame is the knee's up to the pose (x medial for a right knee, y
/// anterior, z superior), so y changes sign; x and z are kept. With that, every series reads as
/// radiologists display it: axial and coronal with the patient's left on the image's right,
/// axial anterior at the top, sagittal anterior on the left, coronal and sagittal head up.
pub fn patient_point(q: V3) -> Point {
    [q.x, -q.y, q.z]
}

/// How one scanner made this series look.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    gamma: f32,
    bias: [f32; 5],
    noise_sigma: f32,
    white: f32,
}

impl Appearance {
    pub fn random(rng: &mut Rng) -> Self {
        let mut coefficient = || (rng.normal() * 0.07) as f32;
        let bias = [
            coefficient(),
            coefficient(),
            coefficient(),
            coefficient(),
            coefficient(),
        ];
        Appearance {
            gamma: rng.range(0.8, 1.25) as f32,
            bias,
            noise_sigma: rng.range(0.015, 0.045) as f32,
            white: rng.range(0.95, 1.2) as f32,
        }
    }

    fn bias_at(&self, u: f32, v: f32, w: f32) -> f32 {
        let b = &self.bias;
        (1.0 + b[0] * u + b[1] * v + b[2] * u * v + b[3] * (u * u + v * v - 0.66) + b[4] * w)
            .max(0.3)
    }
}

/// The series' 8-bit image and its lesion mask, both (slices, 256, 256).
pub fn scan(
    knee: &Knee,
    pose: &Pose,
    geometry: &SeriesGeometry,
    look: &Appearance,
    noise: &mut Rng,
) -> (Array3<u8>, Array3<u8>) {
    let slices = geometry.slices;
    let mut intensity = vec![0f32; slices * SIZE * SIZE];
    let mut mask = Array3::<u8>::zeros((slices, SIZE, SIZE));
    for s in 0..slices {
        for r in 0..SIZE {
            let row = Row::new(pose, geometry, s, r);
            let parts = knee.parts_near(&Aabb::of_segment(row.start, row.end, row.pad));
            let row_offset = (s * SIZE + r) * SIZE;
            for c in 0..SIZE {
                let centre = row.start + row.step * c as f64;
                let hit = knee.sample(centre + row.dither(noise.next_u64()), &parts);
                intensity[row_offset + c] = hit.intensity;
                // The mask speaks for the voxel's centre, wherever its sample fell.
                if hit.lesion != Lesion::None && knee.structure_contains(hit.lesion, centre) {
                    mask[[s, r, c]] = hit.lesion.code();
                }
            }
        }
    }
    let image = develop(&mut intensity, slices, look, noise);
    (image, mask)
}

/// One image row in knee space. Each pixel samples one random point of its voxel (in-plane
/// and a fifth of the slice thickness across): with the point-spread blur that averages into
/// partial-volume edges, at the cost of a single sample per pixel.
struct Row {
    start: V3,
    end: V3,
    step: V3,
    down: V3,
    across: V3,
    pad: f64,
}

impl Row {
    fn new(pose: &Pose, geometry: &SeriesGeometry, s: usize, r: usize) -> Self {
        let at = |ds: f64, dr: f64, c: f64| {
            pose.to_knee(geometry.point(s as f64 + ds, r as f64 + dr, c))
        };
        let start = at(0.0, 0.0, 0.0);
        let end = at(0.0, 0.0, (SIZE - 1) as f64);
        let step = (end - start) * (1.0 / (SIZE - 1) as f64);
        let down = at(0.0, 1.0, 0.0) - start;
        let across = (at(1.0, 0.0, 0.0) - start) * (1.0 / 5.0);
        let pad = 0.5 * (step.norm() + down.norm() + across.norm());
        Row {
            start,
            end,
            step,
            down,
            across,
            pad,
        }
    }

    fn dither(&self, bits: u64) -> V3 {
        let unit = |shift: u32| ((bits >> shift) & 0xffff) as f64 * (1.0 / 65_536.0) - 0.5;
        self.step * unit(0) + self.down * unit(16) + self.across * unit(32)
    }
}

/// Point-spread blur, contrast, bias field, Rician noise and the 8-bit window, slice by slice.
fn develop(intensity: &mut [f32], slices: usize, look: &Appearance, noise: &mut Rng) -> Array3<u8> {
    let mut out = Array3::<u8>::zeros((slices, SIZE, SIZE));
    let mut scratch = vec![0f32; SIZE * SIZE];
    let gamma = GammaTable::new(look.gamma);
    let normals = normal_quantiles();
    let half = (SIZE as f32 - 1.0) / 2.0;
    for s in 0..slices {
        let slice = &mut intensity[s * SIZE * SIZE..(s + 1) * SIZE * SIZE];
        blur_121(slice, &mut scratch);
        let w = if slices > 1 {
            2.0 * s as f32 / (slices - 1) as f32 - 1.0
        } else {
            0.0
        };
        for r in 0..SIZE {
            let v = (r as f32 - half) / half;
            for c in 0..SIZE {
                let u = (c as f32 - half) / half;
                let clean = gamma.apply(slice[r * SIZE + c]) * look.bias_at(u, v, w);
                let bits = noise.next_u64();
                let n1 = normals[(bits & 0xffff) as usize];
                let n2 = normals[((bits >> 16) & 0xffff) as usize];
                let real = clean + look.noise_sigma * n1;
                let imaginary = look.noise_sigma * n2;
                let magnitude = (real * real + imaginary * imaginary).sqrt();
                // Non-negative, so adding ½ and truncating rounds to nearest (libm's roundf is slow).
                out[[s, r, c]] = (magnitude * (255.0 / look.white) + 0.5).min(255.0) as u8;
            }
        }
    }
    out
}

/// x^γ on [0, 2] by linear interpolation in a table (libm's powf per pixel is the slow part).
struct GammaTable(Vec<f32>);

const GAMMA_STEPS: usize = 2048;

impl GammaTable {
    fn new(gamma: f32) -> Self {
        GammaTable(
            (0..=GAMMA_STEPS + 1)
                .map(|i| libm::powf(2.0 * i as f32 / GAMMA_STEPS as f32, gamma))
                .collect(),
        )
    }

    fn apply(&self, x: f32) -> f32 {
        let pos = (x.clamp(0.0, 2.0) * 0.5 * GAMMA_STEPS as f32).min(GAMMA_STEPS as f32);
        let i = pos as usize;
        let frac = pos - i as f32;
        self.0[i] + (self.0[i + 1] - self.0[i]) * frac
    }
}

/// 65,536 equally likely standard-normal values (quantiles at (i + ½)/65536): noise drawn by
/// indexing them with random bits is normal to well within what an 8-bit image can show.
fn normal_quantiles() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..65_536)
            .map(|i| {
                (std::f64::consts::SQRT_2 * inverse_erf(2.0 * (i as f64 + 0.5) / 65_536.0 - 1.0))
                    as f32
            })
            .collect()
    })
}

/// erf⁻¹ by Newton's method on libm's erf (deterministic everywhere).
fn inverse_erf(y: f64) -> f64 {
    let mut x = 0.0;
    for _ in 0..60 {
        let err = libm::erf(x) - y;
        x -= err / (2.0 / std::f64::consts::PI.sqrt() * libm::exp(-x * x));
        if err.abs() < 1e-15 {
            break;
        }
    }
    x
}

/// A separable [1 2 1]/4 blur with clamped edges: the scanner's point-spread function.
fn blur_121(slice: &mut [f32], scratch: &mut [f32]) {
    let at = |i: usize, d: isize| (i as isize + d).clamp(0, SIZE as isize - 1) as usize;
    for r in 0..SIZE {
        for c in 0..SIZE {
            let row = &slice[r * SIZE..(r + 1) * SIZE];
            scratch[r * SIZE + c] = 0.25 * row[at(c, -1)] + 0.5 * row[c] + 0.25 * row[at(c, 1)];
        }
    }
    for r in 0..SIZE {
        for c in 0..SIZE {
            slice[r * SIZE + c] = 0.25 * scratch[at(r, -1) * SIZE + c]
                + 0.5 * scratch[r * SIZE + c]
                + 0.25 * scratch[at(r, 1) * SIZE + c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_counts_stay_in_mrnet_ranges() {
        let mut rng = Rng::new(5);
        for plane in Plane::ALL {
            let (lo, hi) = plane.mrnet_slice_range();
            for _ in 0..500 {
                let g = SeriesGeometry::random(plane, &mut rng);
                assert!((lo..=hi).contains(&g.slices), "{plane}: {}", g.slices);
            }
        }
    }

    #[test]
    fn the_normal_table_has_unit_variance_and_the_gamma_table_matches_powf() {
        let table = normal_quantiles();
        let var = table
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            / table.len() as f64;
        assert!((var - 1.0).abs() < 0.01, "{var}");
        assert!(table.windows(2).all(|w| w[0] < w[1]));
        let gamma = GammaTable::new(1.2);
        for x in [0.0f32, 0.1, 0.5, 0.97, 1.5] {
            assert!((gamma.apply(x) - libm::powf(x, 1.2)).abs() < 1e-3, "{x}");
        }
    }

    #[test]
    fn blur_keeps_a_flat_image_flat_and_spreads_a_point() {
        let mut flat = vec![0.5f32; SIZE * SIZE];
        let mut scratch = vec![0f32; SIZE * SIZE];
        blur_121(&mut flat, &mut scratch);
        assert!(flat.iter().all(|&v| (v - 0.5).abs() < 1e-6));
        let mut point = vec![0f32; SIZE * SIZE];
        point[100 * SIZE + 100] = 16.0;
        blur_121(&mut point, &mut scratch);
        assert_eq!(point[100 * SIZE + 100], 4.0);
        assert_eq!(point[100 * SIZE + 101], 2.0);
        assert_eq!(point[101 * SIZE + 101], 1.0);
    }
}
