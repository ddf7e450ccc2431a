//! Bones, marrow, cartilage and the limb around them.
use super::joint::triangle_wave;
use super::{hit, lesion, pd, Hit, Knee};
use crate::data::phantom::geometry::{ellipsoid, in_ellipsoid, smoothstep, v3, V3};
use crate::data::Lesion;

impl Knee {
    /// The limb's cross-section radii (x, y) at the height and side of `p`.
    pub(super) fn limb_radii(p: V3) -> (f64, f64) {
        let rx = 52.0 + 7.0 * smoothstep(10.0, 90.0, p.z);
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

    pub(super) fn marrow(&self) -> f32 {
        if self.fat_saturated {
            pd::MARROW_SATURATED
        } else {
            pd::MARROW
        }
    }

    pub(super) fn soft_tissue(&self, p: V3, depth: f64) -> f32 {
        if depth < 1.2 {
            return 0.45; // skin
        }
        if depth < self.fat_thickness {
            return self.fat();
        }
        // Muscle bellies above, below and behind the joint, with wavy (not boxy) borders.
        let wave = 4.0 * triangle_wave(p.x / 28.0) + 3.0 * triangle_wave(p.y / 35.0);
        let muscular = p.z > 42.0 + wave || p.z < -28.0 + wave || p.y < -20.0 + 0.5 * wave;
        if muscular {
            pd::MUSCLE
        } else {
            self.fat()
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
            Some(b) => {
                let v = ellipsoid(p, b.centre, b.radii);
                let w = (1.0 - smoothstep(0.35, 1.6, v)) as f32;
                let intensity = self.marrow() + (pd::EDEMA - self.marrow()) * w * 0.85;
                if v < 0.8 {
                    lesion(intensity, Lesion::Other)
                } else {
                    hit(intensity)
                }
            }
            None => hit(self.marrow()),
        }
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

    pub(super) fn in_femur(&self, p: V3, shrink: f64) -> bool {
        if self.in_notch(p, shrink) {
            return false;
        }
        let shaft_radius = if shrink > 0.0 { 10.0 } else { 14.0 };
        if p.z > 30.0 && p.x * p.x + (p.y + 2.0).powi(2) < shaft_radius * shaft_radius {
            return true;
        }
        let s = v3(shrink, shrink, shrink);
        let (mc, mr) = self.femur_meta;
        in_ellipsoid(p, mc, mr - s)
            || self
                .condyles
                .iter()
                .any(|&(c, r)| in_ellipsoid(p, c, r - s))
    }

    pub(super) fn in_tibia(&self, p: V3, shrink: f64) -> bool {
        let top = self.tibia_top - shrink;
        if p.z > top {
            return in_ellipsoid(
                p,
                v3(0.0, -1.0, self.tibia_top),
                v3(7.0 - shrink, 9.0 - shrink, 5.0 - shrink),
            );
        }
        let (rx, ry, cy) = if p.z > -22.0 {
            (38.0, 27.0, -2.0)
        } else if p.z > -45.0 {
            let t = (p.z + 45.0) * (1.0 / 23.0);
            (17.0 + 21.0 * t, 17.0 + 10.0 * t, -4.0 + 2.0 * t)
        } else {
            // The diaphysis has a thick cortex.
            let r = if shrink > 0.0 { 12.0 } else { 17.0 };
            return p.x * p.x + (p.y + 4.0).powi(2) < r * r;
        };
        let (a, b, dy) = (rx - shrink, ry - shrink, p.y - cy);
        p.x * p.x * b * b + dy * dy * a * a < a * a * b * b
    }

    pub(super) fn patella_at(&self, p: V3) -> Option<Hit> {
        let (c, r) = self.patella;
        if in_ellipsoid(p, c, r) {
            let inner = in_ellipsoid(p, c, r - v3(1.5, 1.5, 1.5));
            return hit(if inner { self.marrow() } else { pd::CORTEX });
        }
        let cartilage = in_ellipsoid(p, c, r + v3(1.0, 2.5, 1.0)) && p.y < c.y - 2.0;
        cartilage.then_some(Hit {
            intensity: pd::CARTILAGE,
            lesion: Lesion::None,
        })
    }

    pub(super) fn femoral_cartilage_at(&self, p: V3) -> Option<Hit> {
        let grow = v3(2.2, 2.2, 2.2);
        let on_condyle = self
            .condyles
            .iter()
            .any(|&(c, r)| in_ellipsoid(p, c, r + grow) && (p.z < c.z + 2.0 || p.y < c.y - 10.0));
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

const CARTILAGE: Hit = Hit {
    intensity: pd::CARTILAGE,
    lesion: Lesion::None,
};
