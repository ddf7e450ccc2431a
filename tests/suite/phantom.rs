//! The synthetic knee phantom, written to real files and read back through the dataset reader.
use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use kneecam::data::dataset::Dataset;
use kneecam::data::phantom::{write_cohort, CohortSpec, ExamPlan, PhantomError};
use kneecam::data::{Lesion, Plane, Split, Task};
use predicates::prelude::*;
use sha2::{Digest, Sha256};

fn synth(dir: &Path, cases: u32, valid: u32, seed: u64) {
    let spec = CohortSpec { cases, valid, seed };
    write_cohort(dir, &spec, false, || {}).expect("synth");
}

/// sha256 of every file under `dir`, by relative path.
pub(crate) fn tree_hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                let rel = path
                    .strip_prefix(dir)
                    .expect("relative")
                    .display()
                    .to_string();
                out.insert(rel, format!("{:x}", Sha256::digest(&bytes)));
            }
        }
    }
    out
}

#[test]
fn a_cohort_round_trips_through_the_dataset_reader() {
    let dir = tempfile::tempdir().expect("temp dir");
    synth(dir.path(), 8, 3, 11);
    let dataset = Dataset::open(dir.path()).expect("open");
    assert!(dataset.is_usable(), "{:?}", dataset.problems());
    assert!(dataset.problems().is_empty(), "{:?}", dataset.problems());
    assert_eq!(dataset.exams().len(), 8);
    for exam in dataset.exams() {
        let plan = ExamPlan::new(11, exam.id);
        let expected_split = if exam.id >= 5 {
            Split::Valid
        } else {
            Split::Train
        };
        assert_eq!(exam.split, expected_split, "exam {}", exam.id);
        for task in Task::ALL {
            assert_eq!(
                exam.labels.get(task),
                Some(plan.labels()[task.index()]),
                "exam {} {task}",
                exam.id
            );
        }
        for plane in Plane::ALL {
            let volume = exam.load(plane).expect("volume");
            let mask = exam.load_mask(plane).expect("mask").expect("mask exists");
            let (lo, hi) = plane.mrnet_slice_range();
            assert!(
                (lo..=hi).contains(&volume.slices()),
                "{plane}: {}",
                volume.slices()
            );
            assert_eq!((volume.height(), volume.width()), (256, 256));
            assert_eq!(mask.data.dim(), volume.data.dim());
            assert!(volume.note.is_none());
        }
    }
}

/// Lesion voxels per label, over all three planes, and whether each voxel lies in its structure.
fn lesion_voxels(plan: &ExamPlan) -> ([usize; 4], usize) {
    let mut counts = [0usize; 4];
    let mut outside = 0;
    for plane in Plane::ALL {
        let (_, mask) = plan.scan(plane);
        for ((s, r, c), &code) in mask.indexed_iter() {
            let lesion = Lesion::from_code(code).expect("a lesion code");
            if lesion == Lesion::None {
                continue;
            }
            counts[usize::from(code)] += 1;
            if !plan
                .knee
                .structure_contains(lesion, plan.knee_point(plane, s, r, c))
            {
                outside += 1;
            }
        }
    }
    (counts, outside)
}

#[test]
fn masks_are_non_empty_exactly_for_positive_exams_and_lie_in_their_structure() {
    for id in 0..24 {
        let plan = ExamPlan::new(5, id);
        let [_, acl, meniscus] = plan.labels();
        let (counts, outside) = lesion_voxels(&plan);
        assert_eq!(
            counts[usize::from(Lesion::AclTear.code())] > 0,
            acl,
            "exam {id}: ACL mask vs label"
        );
        assert_eq!(
            counts[usize::from(Lesion::MeniscalTear.code())] > 0,
            meniscus,
            "exam {id}: meniscus mask vs label"
        );
        let other = plan.lesions().bruise.is_some() || plan.lesions().effusion;
        assert_eq!(
            counts[usize::from(Lesion::Other.code())] > 0,
            other,
            "exam {id}: other-abnormality mask"
        );
        assert_eq!(
            outside, 0,
            "exam {id}: lesion voxels outside their structure"
        );
    }
}

#[test]
fn the_same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
        tempfile::tempdir().expect("c"),
    );
    synth(a.path(), 3, 1, 42);
    synth(b.path(), 3, 1, 42);
    synth(c.path(), 3, 1, 43);
    let (ha, hb, hc) = (
        tree_hashes(a.path()),
        tree_hashes(b.path()),
        tree_hashes(c.path()),
    );
    assert_eq!(
        ha.len(),
        3 * 9 + 6 + 1,
        "3 exams × (3 planes + 3 masks + 3 geometry files), 6 CSVs, the marker"
    );
    assert_eq!(ha, hb);
    assert_ne!(
        ha.get("train/axial/0000.npy"),
        hc.get("train/axial/0000.npy")
    );
}

#[test]
fn the_bytes_of_a_seed_are_pinned_across_machines() {
    // The phantom uses only its own RNG and libm, so these bytes are the same on every machine.
    // If a change alters them on purpose, bump phantom::FORMAT_VERSION and update this hash
    // (last: format version 4).
    // Exam 5 of seed 2026 has an ACL and a meniscal tear; all three planes, so that both the
    // fat-saturated and the plain series are pinned.
    let plan = ExamPlan::new(2026, 5);
    assert_eq!(plan.labels(), [true, true, true]);
    let mut hasher = Sha256::new();
    for plane in Plane::ALL {
        let (image, mask) = plan.scan(plane);
        hasher.update(image.as_slice().expect("contiguous"));
        hasher.update(mask.as_slice().expect("contiguous"));
    }
    let digest = format!("{:x}", hasher.finalize());
    assert_eq!(
        digest, PINNED_EXAM_HASH,
        "phantom output changed: bump FORMAT_VERSION"
    );
}

const PINNED_EXAM_HASH: &str = "71b1d3a81ab13a1f1c5eb1c76899bc702d80917bc1a7a2e69556ca4f992ccdfd";

#[test]
fn prevalence_is_near_mrnet_on_six_hundred_exams() {
    let n = 600;
    let mut positives = [0u32; 3];
    for id in 0..n {
        let labels = ExamPlan::new(99, id).labels();
        for task in Task::ALL {
            positives[task.index()] += u32::from(labels[task.index()]);
        }
    }
    let rate = |task: Task| f64::from(positives[task.index()]) / f64::from(n);
    // MRNet: abnormal 80.6 %, ACL 23.3 %, meniscus 37.1 %; ±5 points is ~3 standard errors.
    assert!(
        (rate(Task::Abnormal) - 0.806).abs() < 0.05,
        "abnormal {}",
        rate(Task::Abnormal)
    );
    assert!(
        (rate(Task::Acl) - 0.233).abs() < 0.05,
        "acl {}",
        rate(Task::Acl)
    );
    assert!(
        (rate(Task::Meniscus) - 0.371).abs() < 0.05,
        "meniscus {}",
        rate(Task::Meniscus)
    );
}

#[test]
fn refuses_a_non_empty_folder_and_force_only_replaces_a_phantom_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("seed file");
    let spec = CohortSpec {
        cases: 2,
        valid: 1,
        seed: 1,
    };
    let err = write_cohort(dir.path(), &spec, false, || {}).expect_err("non-empty");
    assert!(matches!(err, PhantomError::NotEmpty { .. }), "{err}");
    let err = write_cohort(dir.path(), &spec, true, || {}).expect_err("not a phantom folder");
    assert!(err.to_string().contains("holds no phantom.toml"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).expect("kept"),
        "mine"
    );

    let cohort = tempfile::tempdir().expect("temp dir");
    synth(cohort.path(), 4, 1, 1);
    let err = write_cohort(cohort.path(), &spec, false, || {}).expect_err("non-empty");
    assert!(matches!(err, PhantomError::NotEmpty { .. }), "{err}");
    write_cohort(cohort.path(), &spec, true, || {}).expect("force replaces");
    let dataset = Dataset::open(cohort.path()).expect("open");
    assert_eq!(dataset.exams().len(), 2, "the old, larger cohort is gone");
}

#[test]
fn bad_specs_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("new");
    let err = write_cohort(
        &out,
        &CohortSpec {
            cases: 2,
            valid: 3,
            seed: 0,
        },
        false,
        || {},
    )
    .expect_err("valid > cases");
    assert!(
        err.to_string().contains("--valid 3 is more than --cases 2"),
        "{err}"
    );
    let err = write_cohort(
        &out,
        &CohortSpec {
            cases: 0,
            valid: 0,
            seed: 0,
        },
        false,
        || {},
    )
    .expect_err("no cases");
    assert!(err.to_string().contains("expected 1 to 10000"), "{err}");
}

#[test]
fn synth_and_summary_work_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("cohort");
    let home = dir.path().join("home");
    let kneecam = || {
        let mut cmd = Command::cargo_bin("kneecam").expect("binary");
        cmd.env("KNEECAM_DATA_DIR", &home);
        cmd
    };
    kneecam()
        .args(["synth", "--out"])
        .arg(&out)
        .args(["--cases", "3", "--valid", "1", "--seed", "4"])
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote 3 exams (2 train, 1 valid)"));
    kneecam()
        .args(["synth", "--out"])
        .arg(&out)
        .args(["--cases", "3"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not empty"));
    kneecam()
        .args(["dataset", "summary"])
        .arg(&out)
        .assert()
        .success();
}
