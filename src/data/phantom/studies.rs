//! The phantom cohort as a dataset of studies, as hospitals and research pipelines hold exams:
//! `{split}/NNNN/…` per exam (DICOM series in `SE{n}/IM{k}`, or `{plane}.nii.gz`), and
//! `{split}/{task}.csv` with `exam,label` rows. The pixels are the `.npy` layout's, value for
//! value, and each series' geometry is the one `geometry/{plane}/NNNN.json` states.
use std::io::Write;
use std::path::Path;

use super::{io_error, CohortSpec, ExamPlan, Format, PhantomError};
use crate::data::{Plane, Split, Task};
use crate::fsutil::atomic_write;
use crate::rng::Rng;

pub mod dicom;
pub mod nifti;

/// Each plane's series description, as MRNet's protocol names it (axial PD and sagittal T2 with
/// fat saturation, coronal PD without).
pub fn series_description(plane: Plane) -> &'static str {
    match plane {
        Plane::Axial => "AX PD FS",
        Plane::Coronal => "COR PD",
        Plane::Sagittal => "SAG T2 FS",
    }
}

/// The exam's folder name: its id, zero-padded to 4 digits.
pub fn exam_folder_name(id: u32) -> String {
    format!("{id:04}")
}

/// A DICOM UID under the `2.25` root (a UUID as a decimal integer), fixed by the seed and
/// `parts`: the same cohort gets the same UIDs, and different exams, series and slices differ.
pub fn uid(seed: u64, parts: &[u64]) -> String {
    let mut rng = Rng::derive(seed, &[&[0x5549_4400], parts].concat());
    let mut value = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    // UUID version 8 (custom) and the RFC 4122 variant, as ITU-T X.667 wants of a 2.25 UID.
    value = (value & !(0xf << 76)) | (0x8 << 76);
    value = (value & !(0x3 << 62)) | (0x2 << 62);
    format!("2.25.{value}")
}

/// What kind of UID [`uid`] makes (its first part).
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum UidKind {
    Study = 1,
    FrameOfReference = 2,
    Series = 3,
    Instance = 4,
}

/// A UID of exam `id`: the study's and frame of reference's, or of `plane`'s series, or of
/// its slice `slice`.
pub fn exam_uid(
    seed: u64,
    kind: UidKind,
    id: u32,
    plane: Option<Plane>,
    slice: Option<usize>,
) -> String {
    let plane = plane.map_or(0, |p| p.index() as u64 + 1);
    let slice = slice.map_or(0, |s| s as u64 + 1);
    uid(seed, &[kind as u64, u64::from(id), plane, slice])
}

/// Writes one exam's study; returns its labels.
pub(super) fn write_exam(
    out: &Path,
    spec: &CohortSpec,
    format: Format,
    id: u32,
) -> Result<[bool; 3], PhantomError> {
    let plan = ExamPlan::new(spec.seed, id);
    let exam_dir = out
        .join(spec.split_of(id).name())
        .join(exam_folder_name(id));
    std::fs::create_dir_all(&exam_dir).map_err(io_error(&exam_dir))?;
    let numbers = series_numbers(spec.seed, id);
    for plane in Plane::ALL {
        let (image, _mask) = plan.scan(plane);
        let geometry = plan.geometry(plane);
        match format {
            Format::Dicom => {
                let number = numbers[plane.index()];
                let series = dicom::SeriesInfo {
                    exam: exam_folder_name(id),
                    study_uid: exam_uid(spec.seed, UidKind::Study, id, None, None),
                    frame_uid: exam_uid(spec.seed, UidKind::FrameOfReference, id, None, None),
                    series_uid: exam_uid(spec.seed, UidKind::Series, id, Some(plane), None),
                    instance_uids: (0..image.dim().0)
                        .map(|s| exam_uid(spec.seed, UidKind::Instance, id, Some(plane), Some(s)))
                        .collect(),
                    number,
                    description: series_description(plane).to_string(),
                    thickness_mm: plan.series[plane.index()].thickness_mm,
                    file_numbers: file_numbers(spec.seed, id, plane, image.dim().0),
                };
                let dir = exam_dir.join(format!("SE{number}"));
                std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
                dicom::write_series(&dir, &series, &geometry, &image)?;
            }
            Format::Nifti => {
                let path = exam_dir.join(format!("{}.nii.gz", plane.name()));
                nifti::write_nifti_gz(&path, &image, &geometry, series_description(plane))
                    .map_err(io_error(&path))?;
            }
            Format::Npy => unreachable!("the .npy layout is written by phantom::write_exam"),
        }
    }
    Ok(plan.labels())
}

/// The series numbers of the three planes (by [`Plane::index`]): 1 to 3 in a seeded order, so
/// that a reader cannot take the plane from the number.
fn series_numbers(seed: u64, id: u32) -> [u32; 3] {
    let order = Rng::derive(seed, &[u64::from(id), 0x5345_5200]).shuffled(3);
    [0, 1, 2].map(|i| order[i] as u32 + 1)
}

/// The file number `k` of each slice's `IM{k}` (1 to `slices`), in a seeded order: scanners'
/// file names do not follow the slice order, and readers must sort by position.
fn file_numbers(seed: u64, id: u32, plane: Plane, slices: usize) -> Vec<u32> {
    let mut rng = Rng::derive(seed, &[u64::from(id), 0x494d_0000 + plane.index() as u64]);
    rng.shuffled(slices)
        .into_iter()
        .map(|k| k as u32 + 1)
        .collect()
}

/// `{split}/{task}.csv`: an `exam,label` header, then one `NNNN,0|1` row per exam of the split.
pub(super) fn write_label_csvs(
    out: &Path,
    spec: &CohortSpec,
    labels: &[[bool; 3]],
) -> Result<(), PhantomError> {
    for split in [Split::Train, Split::Valid] {
        for task in Task::ALL {
            let path = out.join(split.name()).join(format!("{}.csv", task.name()));
            atomic_write(&path, |w| {
                writeln!(w, "exam,label")?;
                for (id, row) in labels.iter().enumerate() {
                    let id = id as u32;
                    if spec.split_of(id) == split {
                        writeln!(
                            w,
                            "{},{}",
                            exam_folder_name(id),
                            u8::from(row[task.index()])
                        )?;
                    }
                }
                Ok(())
            })
            .map_err(io_error(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_fixed_by_their_parts_valid_and_distinct() {
        let a = exam_uid(3, UidKind::Instance, 7, Some(Plane::Coronal), Some(4));
        assert_eq!(
            a,
            exam_uid(3, UidKind::Instance, 7, Some(Plane::Coronal), Some(4))
        );
        let others = [
            exam_uid(4, UidKind::Instance, 7, Some(Plane::Coronal), Some(4)),
            exam_uid(3, UidKind::Instance, 8, Some(Plane::Coronal), Some(4)),
            exam_uid(3, UidKind::Instance, 7, Some(Plane::Axial), Some(4)),
            exam_uid(3, UidKind::Instance, 7, Some(Plane::Coronal), Some(5)),
            exam_uid(3, UidKind::Series, 7, Some(Plane::Coronal), None),
            exam_uid(3, UidKind::Study, 7, None, None),
            exam_uid(3, UidKind::FrameOfReference, 7, None, None),
        ];
        for other in &others {
            assert_ne!(&a, other);
        }
        for uid in std::iter::once(&a).chain(&others) {
            let digits = uid.strip_prefix("2.25.").expect("2.25 root");
            assert!(uid.len() <= 64, "{uid}");
            assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{uid}");
            assert!(!digits.starts_with('0'), "{uid}");
            let value: u128 = digits.parse().expect("a 128-bit integer");
            assert_eq!((value >> 76) & 0xf, 8, "UUID version 8");
            assert_eq!((value >> 62) & 0x3, 2, "RFC 4122 variant");
        }
    }

    #[test]
    fn file_and_series_numbers_are_permutations() {
        let mut numbers = file_numbers(1, 2, Plane::Sagittal, 30);
        assert_ne!(
            numbers,
            (1..=30).collect::<Vec<u32>>(),
            "not in slice order"
        );
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=30).collect::<Vec<u32>>());
        let mut series = series_numbers(1, 2);
        series.sort_unstable();
        assert_eq!(series, [1, 2, 3]);
    }
}
