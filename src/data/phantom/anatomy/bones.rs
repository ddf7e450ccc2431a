//! Bones, marrow, cartilage and the limb around them.
use super::joint::triangle_wave;
use super::{hit, lesion, pd, Bruise, Hit, Knee, CORTEX_MM};
use crate::data::phantom::geometry::{ellipsoid, in_ellipsoid, smoothstep, v3, V3};
use crate::data::phantom::texture::noise;
use crate::data::Lesion;

impl Knee {
    /// The limb's cross-section radii (x, y) at the height and side of `p`.
    pub(super) fn limb_radii(p: V3) -> (f64, f64) {
        let rx = 55.0 + 5.0 * smoothstep(10.0, 90.0, p.z);
        let ry = if p.y > 0.0 {
            52.0
        } else {
            56.0 + 5.0 * smoothstep(10.0, 90.0, p.z)
        };
        (rx, ry)
    }

    /// Depth below the skin, or None outside the limb.
    pub(super) fn limb_depth(&self, p: V3) -> Option<f64> {
        let (rx, ry) = Self::limb_radii(p);
        let inside = p.x * p.x * ry * ry + p.y * p.y * rx * rx < rx * rx * ry * ry;
        inside.then_some(rx.min(ry)).map(|r| {
            let rho = ((p.x / rx).powi(2) + (p.y / ry).powi(2)).sqrt();
            (1.0 - rho) * r
        })
    }

    pub(super) fn inside_limb(p: V3) -> bool {
        let (rx, ry) = Self::limb_radii(p);
        p.x * p.x * ry * ry + p.y * p.y * rx * rx < rx * rx * ry * ry
    }

    pub(super) fn fat(&self) -> f32 {
        if self.fat_saturated {
            pd::FAT_SATURATED
        } else {
            pd::FAT
        }
    }

    /// Fatty marrow with a trabecular texture: fine (about 1 mm) band-limited noise.
    pub(super) fn marrow(&self, p: V3) -> f32 {
        let base = if self.fat_saturated {
            pd::MARROW_SATURATED
        } else {
            pd::MARROW
        };
        base * (1.0 + 0.22 * noise(p * 0.9 + self.texture_offset))
    }

    /// Fat parted by thin dark fibrous septa, their spacing a little finer under the skin.
    fn textured_fat(&self, p: V3, subcutaneous: bool) -> f32 {
        let scale = if subcutaneous { 0.2 } else { 0.13 };
        let septa = noise((p + self.texture_offset) * scale + v3(7.0, 3.0, 11.0));
        if septa.abs() < 0.035 {
            return if self.fat_saturated { 0.05 } else { 0.30 };
        }
        self.fat() * (0.97 + 0.06 * septa.abs())
    }

    /// Muscle bellies (fibres along the limb) parted by thin fascial planes of fat.
    fn muscle(&self, p: V3) -> f32 {
        let q = p + self.texture_offset;
        let bellies = noise(v3(q.x * 0.075, q.y * 0.075, q.z * 0.02) + v3(3.0, 17.0, 5.0));
        if bellies.abs() < 0.045 {
            return self.fat();
        }
        // The distance from the fascia shades each belly a little (cheaper than fibres).
        pd::MUSCLE * (0.94 + 0.12 * bellies.abs())
    }

    pub(super) fn soft_tissue(&self, p: V3, depth: f64) -> f32 {
        if depth < 1.2 {
            return 0.45; // skin
        }
        if !self.fat_saturated && self.in_notch_space(p) {
            return pd::NOTCH;
        }
        if depth < self.fat_thickness {
            return self.textured_fat(p, true);
        }
        // Muscle bellies above, below and behind the joint, with smooth wavy borders; the
        // vastus medialis reaches lower on the medial side (+x).
        let o = self.texture_offset;
        let wave = 5.0 * smooth_wave((p.x + o.x) / 47.0 + (p.y + o.z) / 83.0)
            + 3.5 * smooth_wave((p.y + o.y) / 31.0 - (p.x + o.z) / 59.0);
        let above = p.z > 44.0 - 0.3 * p.x + wave;
        let below = p.z < -24.0 - 0.15 * p.x.abs() + wave;
        // Behind the joint the diamond of the popliteal fossa (fat round the vessels) parts
        // the gastrocnemius heads below from the hamstrings above.
        let fossa = 14.0 * (1.0 - (p.z - 10.0).abs() / 35.0) + 0.4 * wave;
        let behind = p.y < -20.0 + 0.5 * wave && p.x.abs() > fossa;
        let muscular = above || below || behind;
        if muscular {
            self.muscle(p)
        } else {
            self.textured_fat(p, false)
        }
    }

    /// Cortex in the outer shell of a bone, marrow inside (bruised where a bruise is).
    pub(super) fn bone(&self, p: V3, inside: impl Fn(f64) -> bool, cortex: f64) -> Option<Hit> {
        if !inside(0.0) {
            return None;
        }
        if !inside(cortex) {
            return hit(pd::CORTEX);
        }
        match self.lesions.bruise {
            Some(b) if b.near(p) => self.bruised_marrow(p, &b),
            _ => hit(self.marrow(p)),
        }
    }

    /// Not inlined: inlined, its divisions were computed for every voxel of every bone.
    #[inline(never)]
    fn bruised_marrow(&self, p: V3, b: &Bruise) -> Option<Hit> {
        let v = ellipsoid(p, b.centre, b.radii);
        let w = (1.0 - smoothstep(0.35, 1.6, v)) as f32;
        let marrow = self.marrow(p);
        let intensity = marrow + (pd::EDEMA - marrow) * w * 0.85;
        if v < 0.8 {
            lesion(intensity, Lesion::Other)
        } else {
            hit(intensity)
        }
    }

    /// The space between the condyles round the cruciates (synovium and fat).
    fn in_notch_space(&self, p: V3) -> bool {
        p.y > -28.0 && p.z > self.tibia_top && self.in_notch(p, 0.0)
    }

    /// The intercondylar notch: an arched tunnel, open posteriorly, between the condyles.
    pub(super) fn in_notch(&self, p: V3, grow: f64) -> bool {
        if p.y > 8.0 + grow || p.z > 26.0 + grow {
            return false;
        }
        let (w, h) = (self.notch_half_width + grow, 26.0 + grow);
        let z = p.z.max(0.0);
        p.x * p.x * h * h + z * z * w * w < w * w * h * h
    }

    /// Condyles and metaphysis, and a shaft that flares smoothly into them; the shaft's
    /// cortex is thicker than the epiphysis'.
    pub(super) fn in_femur(&self, p: V3, shrink: f64) -> bool {
        if self.in_notch(p, shrink) {
            return false;
        }
        if p.z > 20.0 {
            let t = smoothstep(20.0, 80.0, p.z);
            let thick = shrink * (1.0 + 1.6 * t);
            let rx = 14.0 + 21.0 * (1.0 - t) - thick;
            let ry = 13.0 + 9.0 * (1.0 - t) - thick;
            let dy = p.y + 2.0 - 2.0 * (1.0 - t);
            if p.x * p.x * ry * ry + dy * dy * rx * rx < rx * rx * ry * ry {
                return true;
            }
        }
        let s = v3(shrink, shrink, shrink);
        let (mc, mr) = self.femur_meta;
        in_ellipsoid(p, mc, mr - s)
            || self
                .condyles
                .iter()
                .any(|&(c, r)| in_ellipsoid(p, c, r - s))
    }

    /// Height of the tibial plateau at (x, y): flat plateaus and the two tibial spines.
    pub(super) fn plateau_height(&self, x: f64, y: f64) -> f64 {
        let spine = |cx: f64, h: f64| h * bump((x - cx) / 3.2) * bump((y + 1.0) / 8.0);
        self.tibia_top + spine(4.5, 6.0) + spine(-4.0, 5.0)
    }

    /// The tibia: plateau with a rounded rim, metaphysis flaring smoothly into the shaft.
    pub(super) fn in_tibia(&self, p: V3, shrink: f64) -> bool {
        if p.z > self.plateau_height(p.x, p.y) - shrink {
            return false;
        }
        let flare = smoothstep(-50.0, -12.0, p.z);
        let rim = ((p.z - (self.tibia_top - 5.0)) / 5.0).clamp(0.0, 1.0);
        let round = 0.9 + 0.1 * (1.0 - rim * rim).sqrt();
        let thick = shrink * (1.0 + 1.6 * (1.0 - flare));
        let a = (17.0 + 21.0 * flare) * round - thick;
        let b = (17.0 + 10.0 * flare) * round - thick;
        let dy = p.y - (-4.0 + 2.0 * flare);
        a > 0.0 && b > 0.0 && p.x * p.x * b * b + dy * dy * a * a < a * a * b * b
    }

    /// The patella: convex in front, behind two facets (the lateral one longer) meeting at
    /// the median ridge.
    pub(super) fn in_patella(&self, p: V3, shrink: f64) -> bool {
        let (c, r) = self.patella;
        in_ellipsoid(p, c, r - v3(shrink, shrink, shrink))
            && p.y > self.patellar_surface(p.x) + shrink
    }

    fn patellar_surface(&self, x: f64) -> f64 {
        let (c, r) = self.patella;
        let ridge = c.x + 2.0;
        let slope = if x > ridge { 0.40 } else { 0.27 };
        c.y - 0.9 * r.y + slope * (x - ridge).abs()
    }

    pub(super) fn patella_at(&self, p: V3) -> Option<Hit> {
        if let Some(bone) = self.bone(p, |s| self.in_patella(p, s), CORTEX_MM) {
            return Some(bone);
        }
        let (c, r) = self.patella;
        let surface = self.patellar_surface(p.x);
        let cartilage =
            in_ellipsoid(p, c, r + v3(1.0, 3.0, 1.0)) && p.y > surface - 2.8 && p.y < c.y;
        cartilage.then_some(CARTILAGE)
    }

    pub(super) fn femoral_cartilage_at(&self, p: V3) -> Option<Hit> {
        let grow = v3(2.2, 2.2, 2.2);
        let on_condyle = self.condyles.iter().any(|&(c, r)| {
            // Articular surfaces only: none on the epicondyles' outer faces.
            let outer = (p.x - c.x) * c.x.signum() > 0.7 * r.x;
            in_ellipsoid(p, c, r + grow) && !outer && (p.z < c.z + 2.0 || p.y < c.y - 10.0)
        });
        (on_condyle && !self.in_notch(p, 0.0)).then_some(CARTILAGE)
    }

    pub(super) fn trochlear_cartilage_at(&self, p: V3) -> Option<Hit> {
        let (mc, mr) = self.femur_meta;
        let trochlear = p.y > 8.0 && p.z < 46.0 && in_ellipsoid(p, mc, mr + v3(2.2, 2.2, 2.2));
        trochlear.then_some(CARTILAGE)
    }

    pub(super) fn tibial_cartilage_at(&self, p: V3) -> Option<Hit> {
        let plateau = p.z > self.tibia_top
            && p.z < self.tibia_top + 1.9
            && p.x.abs() > 8.0
            && p.x * p.x * (1.0 / (34.0 * 34.0))
                + (p.y + 2.0) * (p.y + 2.0) * (1.0 / (23.0 * 23.0))
                < 1.0;
        plateau.then_some(CARTILAGE)
    }
}

pub(super) fn in_fibula(p: V3, shrink: f64) -> bool {
    let head = in_ellipsoid(
        p,
        v3(-31.0, -20.0, -20.0),
        v3(9.0 - shrink, 9.0 - shrink, 8.0 - shrink),
    );
    let shaft = p.z < -20.0 && (p.x + 31.0).powi(2) + (p.y + 21.0).powi(2) < (6.0 - shrink).powi(2);
    head || shaft
}

/// A periodic, sine-like wave in [-1, 1] with period 1 (a smoothed triangle wave: no libm).
fn smooth_wave(x: f64) -> f64 {
    let t = triangle_wave(x);
    t * (1.5 - 0.5 * t * t)
}

/// A smooth bump: 1 at 0, falling to 0 at ±1.
fn bump(t: f64) -> f64 {
    let u = (1.0 - t * t).max(0.0);
    u * u
}

const CARTILAGE: Hit = Hit {
    intensity: pd::CARTILAGE,
    lesion: Lesion::None,
};
