//! The joint's soft parts: menisci and the parameniscal cyst, cruciate ligaments, recesses,
//! tendons, collateral ligaments and vessels.
use super::{hit, lesion, pd, Hit, Knee, Meniscus, Side};
use super::{MeniscalTear, MeniscalTearKind, ACL_TEAR_SPREAD, TEAR_HALF_THICKNESS};
use crate::data::phantom::geometry::{floor, in_ellipsoid, segment_distance, smoothstep, v3, V3};
use crate::data::phantom::texture::noise;
use crate::data::Lesion;

pub(super) const PATELLAR_TENDON: (V3, V3) = (v3(0.0, 40.0, 14.0), v3(0.0, 30.0, -28.0));
pub(super) const QUADRICEPS_TENDON: (V3, V3) = (v3(0.0, 36.0, 46.0), v3(0.0, 26.0, 120.0));
pub(super) const MCL: (V3, V3) = (v3(40.0, -4.0, 30.0), v3(41.5, -2.0, -40.0));
pub(super) const LCL: (V3, V3) = (v3(-37.0, -8.0, 26.0), v3(-34.0, -19.0, -16.0));

impl Knee {
    pub(super) fn meniscus(&self, side: Side) -> &Meniscus {
        &self.menisci[side as usize]
    }

    /// (normalised radius, angle, height fraction) of `p` inside the meniscus of `side`.
    pub(super) fn meniscus_coords(&self, p: V3, side: Side) -> Option<(f64, f64, f64)> {
        let m = self.meniscus(side);
        let dx = (p.x - m.centre.0) / m.radii.0;
        let dy = (p.y - m.centre.1) / m.radii.1;
        let rho = (dx * dx + dy * dy).sqrt();
        if !(m.inner..1.0).contains(&rho) || p.z < m.base {
            return None;
        }
        let height = m.height * ((rho - m.inner) / (1.0 - m.inner)).min(1.0);
        let above = p.z - m.base;
        if above > height {
            return None;
        }
        let angle = libm::atan2(dy, dx);
        if angle_between(angle, m.opening) < m.opening_half {
            return None;
        }
        Some((rho, angle, above / height))
    }

    /// A torn meniscus' parameniscal cyst: fluid just outside the rim at the torn sector.
    /// Real cysts come with some tears only; here every tear has one, so that a small CNN
    /// learns meniscal tears from a few hundred exams (format version 2).
    pub(super) fn meniscal_cyst(&self) -> Option<(V3, V3)> {
        let tear = self.lesions.meniscal_tear?;
        let m = self.meniscus(tear.side);
        let (sin, cos) = libm::sincos(tear.sector_centre);
        let centre = v3(
            m.centre.0 + m.radii.0 * 1.12 * cos,
            m.centre.1 + m.radii.1 * 1.12 * sin,
            m.base + 0.5 * m.height,
        );
        Some((centre, v3(7.0, 7.0, 4.5)))
    }

    pub(super) fn meniscal_cyst_at(&self, p: V3) -> Option<Hit> {
        let (centre, radii) = self.meniscal_cyst()?;
        if in_ellipsoid(p, centre, radii) {
            lesion(self.lesion_fluid(), Lesion::MeniscalTear)
        } else if in_ellipsoid(p, centre, radii + v3(0.9, 0.9, 0.9)) {
            hit(pd::CYST_WALL)
        } else {
            None
        }
    }

    pub(super) fn meniscus_at(&self, p: V3, side: Side) -> Option<Hit> {
        let (rho, angle, fraction) = self.meniscus_coords(p, side)?;
        let torn = self
            .lesions
            .meniscal_tear
            .filter(|t| t.side == side)
            .is_some_and(|t| self.in_meniscal_tear(&t, rho, angle, fraction));
        if torn {
            lesion(self.lesion_fluid(), Lesion::MeniscalTear)
        } else {
            hit(pd::MENISCUS)
        }
    }

    pub(super) fn in_meniscal_tear(
        &self,
        tear: &MeniscalTear,
        rho: f64,
        angle: f64,
        fraction: f64,
    ) -> bool {
        let m = self.meniscus(tear.side);
        if angle_between(angle, tear.sector_centre) > tear.sector_half {
            return false;
        }
        let mean_radius = 0.5 * (m.radii.0 + m.radii.1);
        match tear.kind {
            MeniscalTearKind::Horizontal { height_fraction } => {
                let height = m.height * ((rho - m.inner) / (1.0 - m.inner)).min(1.0);
                ((fraction - height_fraction) * height).abs() < TEAR_HALF_THICKNESS && rho < 0.96
            }
            MeniscalTearKind::Vertical { radius } => {
                ((rho - radius) * mean_radius).abs() < TEAR_HALF_THICKNESS
            }
            MeniscalTearKind::Radial { angle: a } => {
                angle_between(angle, a) * rho * mean_radius < TEAR_HALF_THICKNESS
                    && rho < m.inner + 0.75 * (1.0 - m.inner)
            }
        }
    }

    /// The ACL; torn, a gap filled by a swollen remnant of intermediate-to-high signal
    /// (blotchy haemorrhage and edema) and, beside it, lax wavy stumps.
    pub(super) fn acl_at(&self, p: V3) -> Option<Hit> {
        let (a, b, radius) = self.acl;
        let Some(tear) = self.lesions.acl_tear else {
            return (segment_distance(p, a, b).0 < radius).then_some(ACL);
        };
        let (d, t) = segment_distance(p, a, b);
        let length = (b - a).norm();
        let from_gap = ((t - tear.at) * length).abs() - tear.half_gap;
        // An amorphous mass, not a capsule: a ragged outline (never beyond the envelope that
        // the mask and `structure_contains` use) and ragged ends.
        let ragged = f64::from(noise(p * 0.3 + self.texture_offset + v3(9.0, 1.0, 4.0)));
        let inside = d < radius * ACL_TEAR_SPREAD * (0.85 + 0.15 * ragged);
        if inside && from_gap < 1.5 * ragged {
            return lesion(self.torn_acl(p), Lesion::AclTear);
        }
        // Within 8 mm of the gap the stumps buckle sideways and thin out.
        let lax = (1.0 - from_gap / 8.0).max(0.0);
        let wave = lax * 2.2 * triangle_wave(t * length / 6.0);
        let q = v3(p.x - wave, p.y, p.z);
        (segment_distance(q, a, b).0 < radius * (1.0 - 0.3 * lax)).then_some(ACL)
    }

    fn torn_acl(&self, p: V3) -> f32 {
        if !self.fat_saturated {
            return pd::LESION_FLUID_PD;
        }
        let blotch = smoothstep(
            -0.25,
            0.35,
            f64::from(noise(p * 0.45 + self.texture_offset)),
        );
        pd::EDEMA * (0.8 + 0.2 * blotch as f32)
    }

    /// A meniscal tear's fluid: the joint's fluid under fat saturation, brighter on PD.
    fn lesion_fluid(&self) -> f32 {
        if self.fat_saturated {
            pd::FLUID
        } else {
            pd::LESION_FLUID_PD
        }
    }

    pub(super) fn pcl_at(&self, p: V3) -> Option<Hit> {
        let (a, m, b, radius) = self.pcl;
        let d = segment_distance(p, a, m).0.min(segment_distance(p, m, b).0);
        (d < radius).then_some(Hit {
            intensity: pd::PCL,
            lesion: Lesion::None,
        })
    }

    pub(super) fn recess_at(&self, p: V3) -> Option<Hit> {
        let label = if self.lesions.effusion {
            Lesion::Other
        } else {
            Lesion::None
        };
        let (c, r) = self.recess;
        let inside =
            in_ellipsoid(p, c, r) || self.recess_back.is_some_and(|(c, r)| in_ellipsoid(p, c, r));
        inside.then_some(Hit {
            intensity: pd::FLUID,
            lesion: label,
        })
    }
}

const ACL: Hit = Hit {
    intensity: pd::ACL,
    lesion: Lesion::None,
};

/// A tendon: a capsule widened `widen` times along x (a flat band seen from the front).
pub(super) fn band(p: V3, widen: f64, (a, b): (V3, V3), radius: f64) -> Option<Hit> {
    let narrow = 1.0 / widen;
    let flat = |q: V3| v3(q.x * narrow, q.y, q.z);
    (segment_distance(flat(p), flat(a), flat(b)).0 < radius).then_some(Hit {
        intensity: pd::TENDON,
        lesion: Lesion::None,
    })
}

/// The medial collateral ligament: a thin sheet, 3.5 times wider (front to back) than thick.
pub(super) fn mcl_at(p: V3) -> Option<Hit> {
    let thin_y = |q: V3| v3(q.x, q.y * (1.0 / 3.5), q.z);
    (segment_distance(thin_y(p), thin_y(MCL.0), thin_y(MCL.1)).0 < 1.8).then_some(Hit {
        intensity: pd::TENDON,
        lesion: Lesion::None,
    })
}

pub(super) fn vessels_at(p: V3) -> Option<Hit> {
    let artery = (p.x - 3.0).powi(2) + (p.y + 32.0).powi(2) < 3.5 * 3.5;
    let vein = (p.x + 4.0).powi(2) + (p.y + 36.0).powi(2) < 4.5 * 4.5;
    if artery {
        hit(pd::ARTERY)
    } else if vein {
        hit(pd::VEIN)
    } else {
        None
    }
}

/// A cheap periodic wave in [-1, 1] with period 1.
pub(super) fn triangle_wave(x: f64) -> f64 {
    4.0 * (x - floor(x) - 0.5).abs() - 1.0
}

/// The absolute difference of two angles, in [0, π].
pub(super) fn angle_between(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(std::f64::consts::TAU);
    d.min(std::f64::consts::TAU - d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_wrap() {
        assert!((angle_between(3.0, -3.0) - (std::f64::consts::TAU - 6.0)).abs() < 1e-12);
        assert!(angle_between(0.0, std::f64::consts::PI) <= std::f64::consts::PI);
    }
}
