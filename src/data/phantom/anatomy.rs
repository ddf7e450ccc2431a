//! One analytic knee in its own frame (millimetres; x medial, y anterior, z superior; the joint
//! line at z = 0), with the lesions of one exam. `sample` says what tissue (as a proton-density
//! intensity in 0..1) and which lesion label lie at a point.
use super::geometry::{in_ellipsoid, segment_distance, v3, Aabb, V3};
use crate::data::Lesion;
use crate::rng::Rng;

mod bones;
mod bounds;
mod joint;
mod lesions;

pub use lesions::{random_lesions, AclTear, Bruise, Lesions, MeniscalTear, MeniscalTearKind, Side};

use bones::in_fibula;
use joint::{band, mcl_at, vessels_at, LCL, PATELLAR_TENDON, QUADRICEPS_TENDON};

/// Proton-density-like intensities: ligaments, menisci and cortex dark; fat and fluid bright.
mod pd {
    pub const AIR: f32 = 0.0;
    pub const FAT: f32 = 0.74;
    /// The notch round the cruciates (synovium over fat): intermediate, so that the dark
    /// ligaments and a torn one's bright remnant both stand out there as on real PD images.
    pub const NOTCH: f32 = 0.42;
    pub const MUSCLE: f32 = 0.33;
    pub const CORTEX: f32 = 0.06;
    pub const MARROW: f32 = 0.52;
    pub const CARTILAGE: f32 = 0.62;
    pub const MENISCUS: f32 = 0.07;
    pub const ACL: f32 = 0.20;
    pub const PCL: f32 = 0.09;
    pub const TENDON: f32 = 0.07;
    pub const FLUID: f32 = 1.0;
    pub const EDEMA: f32 = 0.95;
    /// What the coronal PD series (no fat saturation) show in a torn ACL's gap, a meniscal
    /// tear's cleft and its cyst (format 4): fluid signal at the top of the 8-bit window, flat,
    /// above fat and above the joint's own fluid. Format 3's blotchy remnant (0.84–1.14) and
    /// fluid-level tears (1.0) sat among fat as bright, and the demo models never found them
    /// there (held-out AUC 0.32–0.58); this is brighter than real PD shows, for learnability.
    /// Bruises and effusions keep their look: as bright, their far larger volume drowned the
    /// tears (8 times the tears' saturated pixels in meniscus-negative series).
    pub const LESION_FLUID_PD: f32 = 1.6;
    /// The thin fibrous wall of a parameniscal cyst.
    pub const CYST_WALL: f32 = 0.22;
    /// Fat and fatty marrow under fat saturation (MRNet's axial PD and sagittal T2 series).
    pub const FAT_SATURATED: f32 = 0.10;
    pub const MARROW_SATURATED: f32 = 0.18;
    pub const ARTERY: f32 = 0.12;
    pub const VEIN: f32 = 0.40;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub intensity: f32,
    /// What the mask marks here.
    pub lesion: Lesion,
}

fn hit(intensity: f32) -> Option<Hit> {
    Some(Hit {
        intensity,
        lesion: Lesion::None,
    })
}

fn lesion(intensity: f32, label: Lesion) -> Option<Hit> {
    Some(Hit {
        intensity,
        lesion: label,
    })
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
    /// Where this knee's tissue texture sits in the noise lattice.
    texture_offset: V3,
    boxes: Vec<(Part, Aabb)>,
}

/// Cortical thickness at the epiphyses (the shafts' is thicker: see `in_femur`, `in_tibia`).
const CORTEX_MM: f64 = 1.5;

// A torn ACL is a swollen mass about twice as thick as the ligament (format version 2).
const ACL_TEAR_SPREAD: f64 = 2.3;
// Meniscal tears 3 mm wide, so that half-resolution coronal slices show them (2.4 mm before).
const TEAR_HALF_THICKNESS: f64 = 1.5;

impl Knee {
    /// A knee with per-exam anatomical variation and the given lesions.
    pub fn random(rng: &mut Rng, lesions: Lesions) -> Self {
        let mut j = |spread: f64| rng.range(-spread, spread);
        let condyles = [
            (
                v3(19.0 + j(1.5), -6.0 + j(1.5), 20.0),
                v3(13.5 + j(1.0), 25.0 + j(1.5), 19.0 + j(1.0)),
            ),
            (
                v3(-19.0 + j(1.5), -5.0 + j(1.5), 21.0),
                v3(13.0 + j(1.0), 24.0 + j(1.5), 18.0 + j(1.0)),
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
                centre: (19.0 + j(1.0), -3.0 + j(1.0)),
                radii: (16.5 + j(1.0), 21.0 + j(1.5)),
                inner: 0.45 + j(0.04),
                height: 7.0 + j(0.8),
                base: tibia_top + 0.3,
                opening: std::f64::consts::PI,
                opening_half: 0.85 + j(0.1),
            },
            Meniscus {
                centre: (-19.0 + j(1.0), -3.0 + j(1.0)),
                radii: (15.5 + j(1.0), 17.0 + j(1.2)),
                inner: 0.42 + j(0.04),
                height: 6.5 + j(0.8),
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
            texture_offset: v3(
                rng.range(0.0, 32.0),
                rng.range(0.0, 32.0),
                rng.range(0.0, 32.0),
            ),
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
                lesion: Lesion::None,
            };
        }
        parts
            .iter()
            .filter(|(_, bounds)| bounds.contains(p))
            .find_map(|&(part, _)| self.sample_part(part, p))
            .unwrap_or_else(|| Hit {
                intensity: self.soft_tissue(p, self.limb_depth(p).unwrap_or(0.0)),
                lesion: Lesion::None,
            })
    }

    /// Not inlined: inlined into `sample`, with every part's test in one body, the phantom ran
    /// at less than half the speed (6.5 s against 2.9 s for 20 exams' scans, the same bytes).
    #[inline(never)]
    fn sample_part(&self, part: Part, p: V3) -> Option<Hit> {
        match part {
            Part::Patella => self.patella_at(p),
            Part::Femur => self.bone(p, |s| self.in_femur(p, s), CORTEX_MM),
            Part::Tibia => self.bone(p, |s| self.in_tibia(p, s), CORTEX_MM),
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
                lesion: Lesion::None,
            }),
            Part::Recess => self.recess_at(p),
            Part::Vessels => vessels_at(p),
        }
    }

    /// Whether `p` lies in the structure that a lesion belongs to: the ACL's envelope, a
    /// meniscus, bone marrow or the joint recesses (for [`Lesion::Other`]).
    pub fn structure_contains(&self, lesion: Lesion, p: V3) -> bool {
        match lesion {
            Lesion::AclTear => {
                let (a, b, radius) = self.acl;
                segment_distance(p, a, b).0 <= radius * ACL_TEAR_SPREAD + 1e-6
            }
            Lesion::MeniscalTear => {
                self.meniscus_coords(p, Side::Medial).is_some()
                    || self.meniscus_coords(p, Side::Lateral).is_some()
                    || self
                        .meniscal_cyst()
                        .is_some_and(|(c, r)| in_ellipsoid(p, c, r + v3(1e-6, 1e-6, 1e-6)))
            }
            Lesion::Other => {
                let marrow = self.in_femur(p, CORTEX_MM) || self.in_tibia(p, CORTEX_MM);
                marrow || self.recess_at(p).is_some()
            }
            Lesion::None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lesions::random_meniscal_tear;
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
        let marrow = sample(&knee, v3(0.0, -2.0, 80.0)).intensity;
        assert!(
            (marrow - pd::MARROW).abs() < 0.25 * pd::MARROW,
            "femoral shaft marrow (textured): {marrow}"
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
        assert_eq!(mid.lesion, Lesion::AclTear);
        assert_eq!(
            mid.intensity,
            pd::LESION_FLUID_PD,
            "PD: flat fluid signal above fat and the joint's fluid"
        );
        assert!(pd::LESION_FLUID_PD > pd::FAT.max(pd::FLUID));
        knee.fat_saturated = true;
        let edema = sample(&knee, (a + b) * 0.5);
        assert_eq!(edema.lesion, Lesion::AclTear);
        assert!(
            edema.intensity >= 0.8 * pd::EDEMA,
            "fat-saturated: the remnant is bright edema"
        );
        knee.fat_saturated = false;
        let intact = sample(&knee, a + (b - a) * 0.02);
        assert_eq!(intact.intensity, pd::ACL);
        assert!(knee.structure_contains(Lesion::AclTear, (a + b) * 0.5));
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
                intensity: pd::LESION_FLUID_PD,
                lesion: Lesion::MeniscalTear
            }
        );
        assert!(knee.structure_contains(Lesion::MeniscalTear, centre));
        assert!(knee_with(Lesions::default()).meniscal_cyst().is_none());
    }
}
