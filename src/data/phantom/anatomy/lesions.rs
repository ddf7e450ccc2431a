//! The lesions of one exam, drawn at MRNet-like prevalence.
use crate::data::phantom::geometry::{v3, V3};
use crate::rng::Rng;

/// Which meniscus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Medial,
    Lateral,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeniscalTearKind {
    /// A bright line parallel to the plateau, at this fraction of the meniscus height.
    Horizontal { height_fraction: f64 },
    /// A bright line along the C, at this normalised radius.
    Vertical { radius: f64 },
    /// A bright line across the C, at this angle.
    Radial { angle: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeniscalTear {
    pub side: Side,
    pub kind: MeniscalTearKind,
    /// Centre and half-width (radians) of the torn sector.
    pub sector_centre: f64,
    pub sector_half: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AclTear {
    /// Where along the ligament (0 femur, 1 tibia) the gap is, and its half-length in mm.
    pub at: f64,
    pub half_gap: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bruise {
    pub centre: V3,
    pub radii: V3,
}

impl Bruise {
    /// Whether `p` may lie where the bruise shows (its ellipsoid value below 1.6): a box
    /// test that spares marrow far from it the divisions (the phantom's hottest path).
    pub fn near(&self, p: V3) -> bool {
        let d = p - self.centre;
        d.x.abs() < 1.3 * self.radii.x
            && d.y.abs() < 1.3 * self.radii.y
            && d.z.abs() < 1.3 * self.radii.z
    }
}

/// The lesions of one exam; MRNet's labels follow from them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Lesions {
    pub acl_tear: Option<AclTear>,
    pub meniscal_tear: Option<MeniscalTear>,
    pub bruise: Option<Bruise>,
    pub effusion: bool,
}

impl Lesions {
    /// MRNet labels (abnormal, acl, meniscus): a tear of either kind makes the exam abnormal.
    pub fn labels(&self) -> [bool; 3] {
        let acl = self.acl_tear.is_some();
        let meniscus = self.meniscal_tear.is_some();
        let other = self.bruise.is_some() || self.effusion;
        [acl || meniscus || other, acl, meniscus]
    }
}

/// Lesions for one exam, at MRNet-like prevalence: ACL 23 %, meniscus 37 % (more often with an
/// ACL tear, as in real knees), abnormal ≈ 80 %.
pub fn random_lesions(rng: &mut Rng) -> Lesions {
    let acl = rng.chance(0.23);
    let meniscus = rng.chance(if acl { 0.55 } else { 0.316 });
    let other = if acl || meniscus {
        rng.chance(0.35)
    } else {
        rng.chance(0.62)
    };
    let mut lesions = Lesions::default();
    if acl {
        lesions.acl_tear = Some(AclTear {
            at: rng.range(0.3, 0.7),
            half_gap: rng.range(4.5, 7.0),
        });
    }
    if meniscus {
        lesions.meniscal_tear = Some(random_meniscal_tear(rng));
    }
    if other {
        if rng.chance(0.6) {
            lesions.bruise = Some(random_bruise(rng, acl));
        } else {
            lesions.effusion = true;
        }
    }
    lesions
}

pub(super) fn random_meniscal_tear(rng: &mut Rng) -> MeniscalTear {
    let side = if rng.chance(0.7) {
        Side::Medial
    } else {
        Side::Lateral
    };
    // Posterior horn most often: the angle of −y in the meniscus' own frame.
    let sector_centre = -std::f64::consts::FRAC_PI_2 + rng.range(-0.45, 0.45);
    let kind = match rng.int(0, 2) {
        0 => MeniscalTearKind::Horizontal {
            height_fraction: rng.range(0.35, 0.65),
        },
        1 => MeniscalTearKind::Vertical {
            radius: rng.range(0.68, 0.86),
        },
        _ => MeniscalTearKind::Radial {
            angle: sector_centre + rng.range(-0.2, 0.2),
        },
    };
    MeniscalTear {
        side,
        kind,
        sector_centre,
        sector_half: rng.range(0.5, 0.9),
    }
}

fn random_bruise(rng: &mut Rng, with_acl_tear: bool) -> Bruise {
    // ACL tears bruise the lateral compartment (pivot shift); other bruises land anywhere.
    let sites = [
        v3(-20.0, -4.0, 9.0),
        v3(-20.0, -8.0, -11.0),
        v3(20.0, -5.0, 9.0),
        v3(20.0, -2.0, -11.0),
    ];
    let site = if with_acl_tear {
        sites[rng.int(0, 1)]
    } else {
        sites[rng.int(0, 3)]
    };
    let jitter = v3(
        rng.range(-3.0, 3.0),
        rng.range(-4.0, 4.0),
        rng.range(-2.0, 2.0),
    );
    let r = rng.range(5.0, 9.0);
    Bruise {
        centre: site + jitter,
        radii: v3(r, r * rng.range(0.9, 1.4), r * rng.range(0.6, 0.9)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_mrnet_tears_make_the_exam_abnormal() {
        let mut rng = Rng::new(3);
        let tear = Lesions {
            meniscal_tear: Some(random_meniscal_tear(&mut rng)),
            ..Lesions::default()
        };
        assert_eq!(tear.labels(), [true, false, true]);
        assert_eq!(Lesions::default().labels(), [false, false, false]);
        let effusion = Lesions {
            effusion: true,
            ..Lesions::default()
        };
        assert_eq!(effusion.labels(), [true, false, false]);
    }
}
