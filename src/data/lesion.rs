//! Ground-truth lesion classes, as the synthetic phantom's masks (`masks/{plane}/NNNN.npy`, one
//! byte a voxel) store them: written by the phantom, read by the CAM evaluation.
use super::Task;

/// What a mask voxel marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(u8)]
pub enum Lesion {
    #[default]
    None = 0,
    AclTear = 1,
    MeniscalTear = 2,
    /// A bone bruise or a joint effusion: abnormal, neither tear.
    Other = 3,
}

impl Lesion {
    pub const ALL: [Lesion; 4] = [
        Lesion::None,
        Lesion::AclTear,
        Lesion::MeniscalTear,
        Lesion::Other,
    ];

    /// The value a mask voxel holds for this class.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The class a mask value stands for; `None` for a value no mask holds.
    pub fn from_code(code: u8) -> Option<Lesion> {
        Lesion::ALL.get(usize::from(code)).copied()
    }

    /// Whether a voxel of this class is what `task` is about: the ACL tear for `acl`, the
    /// meniscal tear for `meniscus`, any lesion for `abnormal`.
    pub fn counts_for(self, task: Task) -> bool {
        match task {
            Task::Acl => self == Lesion::AclTear,
            Task::Meniscus => self == Lesion::MeniscalTear,
            Task::Abnormal => self != Lesion::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_only_four_exist() {
        for lesion in Lesion::ALL {
            assert_eq!(Lesion::from_code(lesion.code()), Some(lesion));
        }
        assert_eq!(Lesion::AclTear.code(), 1);
        assert_eq!(Lesion::from_code(3), Some(Lesion::Other));
        assert_eq!(Lesion::from_code(4), None);
    }

    #[test]
    fn each_task_counts_its_own_lesions() {
        assert!(Lesion::AclTear.counts_for(Task::Acl));
        assert!(!Lesion::MeniscalTear.counts_for(Task::Acl));
        assert!(Lesion::MeniscalTear.counts_for(Task::Meniscus));
        assert!(Lesion::Other.counts_for(Task::Abnormal));
        assert!(!Lesion::None.counts_for(Task::Abnormal));
    }
}
