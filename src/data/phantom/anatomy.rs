//! One analytic knee in its own frame (millimetres; x medial, y anterior, z superior; the joint
//! line at z = 0), with the lesions of one exam. `sample` says what tissue (as a proton-density
//! intensity in 0..1) and which lesion label lie at a point.
use super::geometry::{ellipsoid, in_ellipsoid, segment_distance, smoothstep, v3, Aabb, V3};
use super::rng::Rng;

/// Ground-truth mask values, as written to `masks/{plane}/NNNN.npy`.
pub const MASK_NONE: u8 = 0;
pub const MASK_ACL_TEAR: u8 = 1;
pub const MASK_MENISCAL_TEAR: u8 = 2;
pub const MASK_OTHER: u8 = 3;

/// Proton-density-like intensities: ligaments, menisci and cortex dark; fat and fluid bright.
mod pd {
    pub const AIR: f32 = 0.0;
    pub const FAT: f32 = 0.80;
    pub const MUSCLE: f32 = 0.33;
    pub const CORTEX: f32 = 0.06;
    pub const MARROW: f32 = 0.52;
    pub const CARTILAGE: f32 = 0.62;
    pub const MENISCUS: f32 = 0.07;
    pub const ACL: f32 = 0.20;
    pub const PCL: f32 = 0.09;
    pub const TENDON: f32 = 0.07;
    pub const FLUID: f32 = 0.97;
    pub const EDEMA: f32 = 0.95;
    /// A torn ACL's swollen, haemorrhagic remnant: intermediate signal, unlike fat or ligament.
    pub const TORN_ACL: f32 = 0.45;
    /// Fat and fatty marrow under fat saturation (MRNet's axial PD and sagittal T2 series).
    pub const FAT_SATURATED: f32 = 0.10;
    pub const MARROW_SATURATED: f32 = 0.18;
    pub const ARTERY: f32 = 0.12;
    pub const VEIN: f32 = 0.40;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub intensity: f32,
    pub lesion: u8,
}

fn hit(intensity: f32) -> Option<Hit> {
    Some(Hit {
        intensity,
        lesion: MASK_NONE,
    })
}

fn lesion(intensity: f32, label: u8) -> Option<Hit> {
    Some(Hit {
        intensity,
        lesion: label,
    })
}

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

#[derive(Debug, Clone, Copy, PartialEq)]
struct Meniscus {
    centre: (f64, f64),
    radii: (f64, f64),
    inner: f64,
    height: f64,
    base: f64,
    /// Direction (radians) the C opens towards, and the half-angle of the opening.
    opening: f64,
    opening_half: f64,
}

/// The parts, in paint order: the first that claims a point wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Patella,
    Femur,
    Tibia,
    Fibula,
    MedialMeniscus,
    LateralMeniscus,
    MeniscalCyst,
    FemoralCartilage,
    TrochlearCartilage,
    TibialCartilage,
    Acl,
    Pcl,
    PatellarTendon,
    QuadricepsTendon,
    Mcl,
    Lcl,
    Recess,
    Vessels,
}

const PARTS: [Part; 18] = [
    Part::Patella,
    Part::Femur,
    Part::Tibia,
    Part::Fibula,
    Part::MedialMeniscus,
    Part::LateralMeniscus,
    Part::MeniscalCyst,
    Part::FemoralCartilage,
    Part::TrochlearCartilage,
    Part::TibialCartilage,
    Part::Acl,
    Part::Pcl,
    Part::PatellarTendon,
    Part::QuadricepsTendon,
    Part::Mcl,
    Part::Lcl,
    Part::Recess,
    Part::Vessels,
];

#[derive(Debug, Clone, PartialEq)]
pub struct Knee {
    pub lesions: Lesions,
    /// Fat-saturated series: fat and marrow dark, so fluid and edema stand out.
    pub fat_saturated: bool,
    fat_thickness: f64,
    condyles: [(V3, V3); 2],
    femur_meta: (V3, V3),
    notch_half_width: f64,
    tibia_top: f64,
    patella: (V3, V3),
    acl: (V3, V3, f64),
    pcl: (V3, V3, V3, f64),
    menisci: [Meniscus; 2],
    recess: (V3, V3),
    recess_back: Option<(V3, V3)>,
    boxes: Vec<(Part, Aabb)>,
}

// A torn ACL is a swollen mass about twice as thick as the ligament (format version 2).
const ACL_TEAR_SPREAD: f64 = 2.3;
// Meniscal tears 2 mm wide, so that 256-pixel slices show them (format version 2).
const TEAR_HALF_THICKNESS: f64 = 1.0;

impl Knee {
    /// A knee with per-exam anatomical variation and the given lesions.
    pub fn random(rng: &mut Rng, lesions: Lesions) -> Self {
        let mut j = |spread: f64| rng.range(-spread, spread);
        let condyles = [
            (
                v3(20.0 + j(1.5), -6.0 + j(1.5), 20.0),
                v3(15.0 + j(1.0), 25.0 + j(1.5), 19.0 + j(1.0)),
            ),
            (
                v3(-20.0 + j(1.5), -5.0 + j(1.5), 21.0),
                v3(14.5 + j(1.0), 24.0 + j(1.5), 18.0 + j(1.0)),
            ),
        ];
        let patella_z = 30.0 + j(5.0);
        let acl = (
            v3(-6.0 + j(1.0), -16.0 + j(2.0), 15.0 + j(1.5)),
            v3(-2.0 + j(1.5), 9.0 + j(2.0), -2.5),
            3.4 + j(0.4),
        );
        let pcl = (
            v3(6.0 + j(1.0), 2.0 + j(1.5), 15.0 + j(1.0)),
            v3(3.0 + j(1.0), -14.0 + j(1.5), 8.0 + j(1.0)),
            v3(1.0 + j(1.0), -24.0 + j(1.0), -7.0 + j(1.0)),
            4.5 + j(0.4),
        );
        let tibia_top = -2.5;
        let menisci = [
            Meniscus {
                centre: (20.0 + j(1.0), -3.0 + j(1.0)),
                radii: (16.0 + j(1.0), 21.0 + j(1.5)),
                inner: 0.45 + j(0.04),
                height: 6.0 + j(0.8),
                base: tibia_top + 0.3,
                opening: std::f64::consts::PI,
                opening_half: 0.85 + j(0.1),
            },
            Meniscus {
                centre: (-20.0 + j(1.0), -3.0 + j(1.0)),
                radii: (15.0 + j(1.0), 17.0 + j(1.2)),
                inner: 0.42 + j(0.04),
                height: 5.5 + j(0.8),
                base: tibia_top + 0.3,
                opening: 0.0,
                opening_half: 0.5 + j(0.1),
            },
        ];
        let (recess, recess_back) = if lesions.effusion {
            (
                (
                    v3(0.0, 20.0, 44.0 + j(3.0)),
                    v3(26.0 + j(2.0), 6.5 + j(1.0), 22.0 + j(3.0)),
                ),
                Some((
                    v3(0.0, -23.0, 12.0),
                    v3(17.0 + j(2.0), 4.0 + j(0.5), 7.0 + j(1.0)),
                )),
            )
        } else {
            ((v3(0.0, 19.0, 44.0), v3(16.0, 1.6 + j(0.3), 12.0)), None)
        };
        let mut knee = Knee {
            lesions,
            fat_saturated: false,
            fat_thickness: 3.0 + rng.range(0.0, 7.0),
            condyles,
            femur_meta: (v3(0.0, -3.0, 32.0), v3(34.0, 24.0, 22.0)),
            notch_half_width: 9.5 + rng.range(-1.0, 1.0),
            tibia_top,
            patella: (v3(0.0, 36.0, patella_z), v3(21.0, 9.0, 17.0)),
            acl,
            pcl,
            menisci,
            recess,
            recess_back,
            boxes: Vec::new(),
        };
        knee.boxes = PARTS
            .iter()
            .map(|&part| (part, knee.bounds(part)))
            .collect();
        knee
    }

    /// The parts (with their bounds) that meet `region`, in paint order.
    pub fn parts_near(&self, region: &Aabb) -> Vec<(Part, Aabb)> {
        self.boxes
            .iter()
            .filter(|(_, b)| b.overlaps(region))
            .copied()
            .collect()
    }

    /// Intensity and lesion label at `p`, trying only `parts` (from `parts_near`).
    pub fn sample(&self, p: V3, parts: &[(Part, Aabb)]) -> Hit {
        if !Self::inside_limb(p) {
            return Hit {
                intensity: pd::AIR,
                lesion: MASK_NONE,
            };
        }
        parts
            .iter()
            .filter(|(_, bounds)| bounds.contains(p))
            .find_map(|&(part, _)| self.sample_part(part, p))
            .unwrap_or_else(|| Hit {
                intensity: self.soft_tissue(p, self.limb_depth(p).unwrap_or(0.0)),
                lesion: MASK_NONE,
            })
    }

    fn sample_part(&self, part: Part, p: V3) -> Option<Hit> {
        match part {
            Part::Patella => self.patella_at(p),
            Part::Femur => self.bone(p, |s| self.in_femur(p, s), 2.0),
            Part::Tibia => self.bone(p, |s| self.in_tibia(p, s), 2.0),
            Part::Fibula => self.bone(p, |s| in_fibula(p, s), 1.5),
            Part::MedialMeniscus => self.meniscus_at(p, Side::Medial),
            Part::LateralMeniscus => self.meniscus_at(p, Side::Lateral),
            Part::MeniscalCyst => self.meniscal_cyst_at(p),
            Part::FemoralCartilage => self.femoral_cartilage_at(p),
            Part::TrochlearCartilage => self.trochlear_cartilage_at(p),
            Part::TibialCartilage => self.tibial_cartilage_at(p),
            Part::Acl => self.acl_at(p),
            Part::Pcl => self.pcl_at(p),
            Part::PatellarTendon => band(p, 2.5, PATELLAR_TENDON, 3.6),
            Part::QuadricepsTendon => band(p, 3.0, QUADRICEPS_TENDON, 4.0),
            Part::Mcl => mcl_at(p),
            Part::Lcl => (segment_distance(p, LCL.0, LCL.1).0 < 2.5).then_some(Hit {
                intensity: pd::TENDON,
                lesion: MASK_NONE,
            }),
            Part::Recess => self.recess_at(p),
            Part::Vessels => vessels_at(p),
        }
    }

    /// The limb's cross-section radii (x, y) at the height and side of `p`.
    fn limb_radii(p: V3) -> (f64, f64) {
        let rx = 52.0 + 7.0 * smoothstep(10.0, 90.0, p.z);
        let ry = if p.y > 0.0 {
            52.0
        } else {
            56.0 + 5.0 * smoothstep(10.0, 90.0, p.z)
        };
        (rx, ry)
    }

    /// Depth below the skin, or None outside the limb.
    fn limb_depth(&self, p: V3) -> Option<f64> {
        let (rx, ry) = Self::limb_radii(p);
        let inside = p.x * p.x * ry * ry + p.y * p.y * rx * rx < rx * rx * ry * ry;
        inside.then_some(rx.min(ry)).map(|r| {
            let rho = ((p.x / rx).powi(2) + (p.y / ry).powi(2)).sqrt();
            (1.0 - rho) * r
        })
    }

    fn inside_limb(p: V3) -> bool {
        let (rx, ry) = Self::limb_radii(p);
        p.x * p.x * ry * ry + p.y * p.y * rx * rx < rx * rx * ry * ry
    }

    fn fat(&self) -> f32 {
        if self.fat_saturated {
            pd::FAT_SATURATED
        } else {
            pd::FAT
        }
    }

    fn marrow(&self) -> f32 {
        if self.fat_saturated {
            pd::MARROW_SATURATED
        } else {
            pd::MARROW
        }
    }

    fn soft_tissue(&self, p: V3, depth: f64) -> f32 {
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
    fn bone(&self, p: V3, inside: impl Fn(f64) -> bool, cortex: f64) -> Option<Hit> {
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
                    lesion(intensity, MASK_OTHER)
                } else {
                    hit(intensity)
                }
            }
            None => hit(self.marrow()),
        }
    }

    /// The intercondylar notch: an arched tunnel, open posteriorly, between the condyles.
    fn in_notch(&self, p: V3, grow: f64) -> bool {
        if p.y > 8.0 + grow || p.z > 26.0 + grow {
            return false;
        }
        let (w, h) = (self.notch_half_width + grow, 26.0 + grow);
        let z = p.z.max(0.0);
        p.x * p.x * h * h + z * z * w * w < w * w * h * h
    }

    fn in_femur(&self, p: V3, shrink: f64) -> bool {
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

    fn in_tibia(&self, p: V3, shrink: f64) -> bool {
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

    fn patella_at(&self, p: V3) -> Option<Hit> {
        let (c, r) = self.patella;
        if in_ellipsoid(p, c, r) {
            let inner = in_ellipsoid(p, c, r - v3(1.5, 1.5, 1.5));
            return hit(if inner { self.marrow() } else { pd::CORTEX });
        }
        let cartilage = in_ellipsoid(p, c, r + v3(1.0, 2.5, 1.0)) && p.y < c.y - 2.0;
        cartilage.then_some(Hit {
            intensity: pd::CARTILAGE,
            lesion: MASK_NONE,
        })
    }

    fn femoral_cartilage_at(&self, p: V3) -> Option<Hit> {
        let grow = v3(2.2, 2.2, 2.2);
        let on_condyle = self
            .condyles
            .iter()
            .any(|&(c, r)| in_ellipsoid(p, c, r + grow) && (p.z < c.z + 2.0 || p.y < c.y - 10.0));
        (on_condyle && !self.in_notch(p, 0.0)).then_some(CARTILAGE)
    }

    fn trochlear_cartilage_at(&self, p: V3) -> Option<Hit> {
        let (mc, mr) = self.femur_meta;
        let trochlear = p.y > 8.0 && p.z < 46.0 && in_ellipsoid(p, mc, mr + v3(2.2, 2.2, 2.2));
        trochlear.then_some(CARTILAGE)
    }

    fn tibial_cartilage_at(&self, p: V3) -> Option<Hit> {
        let plateau = p.z > self.tibia_top
            && p.z < self.tibia_top + 1.9
            && p.x.abs() > 8.0
            && p.x * p.x * (1.0 / (34.0 * 34.0))
                + (p.y + 2.0) * (p.y + 2.0) * (1.0 / (23.0 * 23.0))
                < 1.0;
        plateau.then_some(CARTILAGE)
    }

    fn meniscus(&self, side: Side) -> &Meniscus {
        &self.menisci[side as usize]
    }

    /// (normalised radius, angle, height fraction) of `p` inside the meniscus of `side`.
    fn meniscus_coords(&self, p: V3, side: Side) -> Option<(f64, f64, f64)> {
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
    fn meniscal_cyst(&self) -> Option<(V3, V3)> {
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

    fn meniscal_cyst_at(&self, p: V3) -> Option<Hit> {
        let (centre, radii) = self.meniscal_cyst()?;
        if in_ellipsoid(p, centre, radii) {
            lesion(pd::FLUID, MASK_MENISCAL_TEAR)
        } else {
            None
        }
    }

    fn meniscus_at(&self, p: V3, side: Side) -> Option<Hit> {
        let (rho, angle, fraction) = self.meniscus_coords(p, side)?;
        let torn = self
            .lesions
            .meniscal_tear
            .filter(|t| t.side == side)
            .is_some_and(|t| self.in_meniscal_tear(&t, rho, angle, fraction));
        if torn {
            lesion(pd::FLUID, MASK_MENISCAL_TEAR)
        } else {
            hit(pd::MENISCUS)
        }
    }

    fn in_meniscal_tear(&self, tear: &MeniscalTear, rho: f64, angle: f64, fraction: f64) -> bool {
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

    fn acl_at(&self, p: V3) -> Option<Hit> {
        let (a, b, radius) = self.acl;
        let (d, t) = segment_distance(p, a, b);
        if let Some(tear) = self.lesions.acl_tear {
            let length = (b - a).norm();
            if d < radius * ACL_TEAR_SPREAD && ((t - tear.at) * length).abs() < tear.half_gap {
                let remnant = if self.fat_saturated {
                    pd::EDEMA
                } else {
                    pd::TORN_ACL
                };
                return lesion(remnant, MASK_ACL_TEAR);
            }
        }
        (d < radius).then_some(Hit {
            intensity: pd::ACL,
            lesion: MASK_NONE,
        })
    }

    fn pcl_at(&self, p: V3) -> Option<Hit> {
        let (a, m, b, radius) = self.pcl;
        let d = segment_distance(p, a, m).0.min(segment_distance(p, m, b).0);
        (d < radius).then_some(Hit {
            intensity: pd::PCL,
            lesion: MASK_NONE,
        })
    }

    fn recess_at(&self, p: V3) -> Option<Hit> {
        let label = if self.lesions.effusion {
            MASK_OTHER
        } else {
            MASK_NONE
        };
        let (c, r) = self.recess;
        let inside =
            in_ellipsoid(p, c, r) || self.recess_back.is_some_and(|(c, r)| in_ellipsoid(p, c, r));
        inside.then_some(Hit {
            intensity: pd::FLUID,
            lesion: label,
        })
    }

    /// Whether `p` lies in the structure that a lesion label belongs to: the ACL's envelope (1),
    /// a meniscus (2), bone marrow or the joint recesses (3).
    pub fn structure_contains(&self, label: u8, p: V3) -> bool {
        match label {
            MASK_ACL_TEAR => {
                let (a, b, radius) = self.acl;
                segment_distance(p, a, b).0 <= radius * ACL_TEAR_SPREAD + 1e-6
            }
            MASK_MENISCAL_TEAR => {
                self.meniscus_coords(p, Side::Medial).is_some()
                    || self.meniscus_coords(p, Side::Lateral).is_some()
                    || self
                        .meniscal_cyst()
                        .is_some_and(|(c, r)| in_ellipsoid(p, c, r + v3(1e-6, 1e-6, 1e-6)))
            }
            MASK_OTHER => {
                let marrow = self.in_femur(p, 2.0) || self.in_tibia(p, 2.0);
                marrow || self.recess_at(p).is_some()
            }
            _ => false,
        }
    }

    fn bounds(&self, part: Part) -> Aabb {
        let ell = |(c, r): (V3, V3)| Aabb::around(c, r + v3(3.0, 3.0, 3.0));
        match part {
            Part::Patella => ell(self.patella),
            Part::Femur => Aabb {
                lo: v3(-40.0, -35.0, -3.0),
                hi: v3(40.0, 25.0, 400.0),
            },
            Part::Tibia => Aabb {
                lo: v3(-41.0, -32.0, -400.0),
                hi: v3(41.0, 28.0, self.tibia_top + 3.0),
            },
            Part::Fibula => Aabb {
                lo: v3(-42.0, -32.0, -400.0),
                hi: v3(-20.0, -10.0, -10.0),
            },
            Part::MedialMeniscus | Part::LateralMeniscus => {
                let m = self.meniscus(if part == Part::MedialMeniscus {
                    Side::Medial
                } else {
                    Side::Lateral
                });
                Aabb {
                    lo: v3(m.centre.0 - m.radii.0, m.centre.1 - m.radii.1, m.base),
                    hi: v3(
                        m.centre.0 + m.radii.0,
                        m.centre.1 + m.radii.1,
                        m.base + m.height,
                    ),
                }
            }
            Part::MeniscalCyst => match self.meniscal_cyst() {
                Some((centre, radii)) => Aabb::around(centre, radii + v3(0.5, 0.5, 0.5)),
                // No cyst: a box no scan line reaches.
                None => Aabb::around(v3(1e6, 1e6, 1e6), v3(0.0, 0.0, 0.0)),
            },
            Part::FemoralCartilage => self
                .condyles
                .iter()
                .map(|&c| ell(c))
                .fold(ell(self.condyles[0]), Aabb::union),
            Part::TrochlearCartilage => Aabb {
                lo: v3(-37.0, 8.0, 8.0),
                hi: v3(37.0, 25.0, 46.0),
            },
            Part::TibialCartilage => Aabb {
                lo: v3(-35.0, -26.0, self.tibia_top),
                hi: v3(35.0, 22.0, self.tibia_top + 2.0),
            },
            Part::Acl => {
                let (a, b, r) = self.acl;
                Aabb::of_segment(a, b, r * ACL_TEAR_SPREAD + 0.5)
            }
            Part::Pcl => {
                let (a, m, b, r) = self.pcl;
                Aabb::of_segment(a, m, r).union(Aabb::of_segment(m, b, r))
            }
            Part::PatellarTendon => Aabb::of_segment(PATELLAR_TENDON.0, PATELLAR_TENDON.1, 9.5),
            Part::QuadricepsTendon => {
                Aabb::of_segment(QUADRICEPS_TENDON.0, QUADRICEPS_TENDON.1, 12.5)
            }
            Part::Mcl => Aabb::of_segment(MCL.0, MCL.1, 6.5),
            Part::Lcl => Aabb::of_segment(LCL.0, LCL.1, 3.0),
            Part::Recess => {
                let front = ell(self.recess);
                self.recess_back
                    .map_or(front, |back| front.union(ell(back)))
            }
            Part::Vessels => Aabb {
                lo: v3(-10.0, -42.0, -400.0),
                hi: v3(8.0, -25.0, 400.0),
            },
        }
    }
}

fn in_fibula(p: V3, shrink: f64) -> bool {
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
    lesion: MASK_NONE,
};
const PATELLAR_TENDON: (V3, V3) = (v3(0.0, 40.0, 14.0), v3(0.0, 30.0, -28.0));
const QUADRICEPS_TENDON: (V3, V3) = (v3(0.0, 36.0, 46.0), v3(0.0, 26.0, 120.0));
const MCL: (V3, V3) = (v3(40.0, -4.0, 30.0), v3(41.5, -2.0, -40.0));
const LCL: (V3, V3) = (v3(-37.0, -8.0, 26.0), v3(-34.0, -19.0, -16.0));

/// A tendon: a capsule widened `widen` times along x (a flat band seen from the front).
fn band(p: V3, widen: f64, (a, b): (V3, V3), radius: f64) -> Option<Hit> {
    let narrow = 1.0 / widen;
    let flat = |q: V3| v3(q.x * narrow, q.y, q.z);
    (segment_distance(flat(p), flat(a), flat(b)).0 < radius).then_some(Hit {
        intensity: pd::TENDON,
        lesion: MASK_NONE,
    })
}

/// The medial collateral ligament: a thin sheet, 3.5 times wider (front to back) than thick.
fn mcl_at(p: V3) -> Option<Hit> {
    let thin_y = |q: V3| v3(q.x, q.y * (1.0 / 3.5), q.z);
    (segment_distance(thin_y(p), thin_y(MCL.0), thin_y(MCL.1)).0 < 1.8).then_some(Hit {
        intensity: pd::TENDON,
        lesion: MASK_NONE,
    })
}

fn vessels_at(p: V3) -> Option<Hit> {
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
fn triangle_wave(x: f64) -> f64 {
    4.0 * (x - x.floor() - 0.5).abs() - 1.0
}

/// The absolute difference of two angles, in [0, π].
fn angle_between(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(std::f64::consts::TAU);
    d.min(std::f64::consts::TAU - d)
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

fn random_meniscal_tear(rng: &mut Rng) -> MeniscalTear {
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

    fn knee_with(lesions: Lesions) -> Knee {
        Knee::random(&mut Rng::new(1), lesions)
    }

    fn sample(knee: &Knee, p: V3) -> Hit {
        knee.sample(p, &knee.boxes)
    }

    #[test]
    fn tissues_have_their_proton_density_look() {
        let knee = knee_with(Lesions::default());
        assert_eq!(
            sample(&knee, v3(75.0, 0.0, 0.0)).intensity,
            pd::AIR,
            "beside the knee: outside the limb"
        );
        assert_eq!(
            sample(&knee, v3(0.0, -2.0, 80.0)).intensity,
            pd::MARROW,
            "femoral shaft marrow"
        );
        assert_eq!(
            sample(&knee, v3(0.0, -2.0 + 12.0, 80.0)).intensity,
            pd::CORTEX,
            "femoral shaft cortex"
        );
        let (a, b, _) = knee.acl;
        assert_eq!(
            sample(&knee, (a + b) * 0.5).intensity,
            pd::ACL,
            "ACL mid-substance"
        );
        let m = knee.meniscus(Side::Medial);
        let rim = v3(m.centre.0, m.centre.1 - 0.85 * m.radii.1, m.base + 1.0);
        assert_eq!(
            sample(&knee, rim).intensity,
            pd::MENISCUS,
            "posterior horn of the medial meniscus"
        );
    }

    #[test]
    fn an_acl_tear_replaces_the_ligament_with_its_remnant_and_is_labelled() {
        let tear = AclTear {
            at: 0.5,
            half_gap: 3.0,
        };
        let mut knee = knee_with(Lesions {
            acl_tear: Some(tear),
            ..Lesions::default()
        });
        let (a, b, _) = knee.acl;
        let mid = sample(&knee, (a + b) * 0.5);
        assert_eq!(
            mid,
            Hit {
                intensity: pd::TORN_ACL,
                lesion: MASK_ACL_TEAR
            }
        );
        knee.fat_saturated = true;
        assert_eq!(
            sample(&knee, (a + b) * 0.5),
            Hit {
                intensity: pd::EDEMA,
                lesion: MASK_ACL_TEAR
            },
            "fat-saturated: the remnant is bright edema"
        );
        knee.fat_saturated = false;
        let intact = sample(&knee, a + (b - a) * 0.2);
        assert_eq!(intact.intensity, pd::ACL);
        assert!(knee.structure_contains(MASK_ACL_TEAR, (a + b) * 0.5));
    }

    #[test]
    fn a_meniscal_tear_comes_with_a_labelled_cyst_at_the_rim() {
        let mut rng = Rng::new(3);
        let knee = knee_with(Lesions {
            meniscal_tear: Some(random_meniscal_tear(&mut rng)),
            ..Lesions::default()
        });
        let (centre, _) = knee.meniscal_cyst().expect("a cyst");
        assert_eq!(
            sample(&knee, centre),
            Hit {
                intensity: pd::FLUID,
                lesion: MASK_MENISCAL_TEAR
            }
        );
        assert!(knee.structure_contains(MASK_MENISCAL_TEAR, centre));
        assert!(knee_with(Lesions::default()).meniscal_cyst().is_none());
    }

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

    #[test]
    fn angles_wrap() {
        assert!((angle_between(3.0, -3.0) - (std::f64::consts::TAU - 6.0)).abs() < 1e-12);
        assert!(angle_between(0.0, std::f64::consts::PI) <= std::f64::consts::PI);
    }
}
