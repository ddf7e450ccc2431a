//! Each part's bounding box, so that a scan line tries only the parts it can meet.
use super::joint::{LCL, MCL, PATELLAR_TENDON, QUADRICEPS_TENDON};
use super::{Knee, Part, Side, ACL_TEAR_SPREAD};
use crate::data::phantom::geometry::{v3, Aabb, V3};

impl Knee {
    pub(super) fn bounds(&self, part: Part) -> Aabb {
        let ell = |(c, r): (V3, V3)| Aabb::around(c, r + v3(3.0, 3.0, 3.0));
        match part {
            Part::Patella => ell(self.patella),
            Part::Femur => Aabb {
                lo: v3(-40.0, -35.0, -3.0),
                hi: v3(40.0, 25.0, 400.0),
            },
            Part::Tibia => Aabb {
                lo: v3(-41.0, -32.0, -400.0),
                hi: v3(41.0, 28.0, self.tibia_top + 7.0),
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
                Some((centre, radii)) => Aabb::around(centre, radii + v3(1.5, 1.5, 1.5)),
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
                // The wavy stumps swing up to 2.2 mm sideways.
                Aabb::of_segment(a, b, r * ACL_TEAR_SPREAD + 2.7)
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
