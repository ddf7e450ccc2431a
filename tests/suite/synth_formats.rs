//! `kneecam synth`'s geometry files and its DICOM and NIfTI studies, read back through the
//! dataset and study readers: the same pixels as the `.npy` layout, where the geometry says.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kneecam::data::dataset::Dataset;
use kneecam::data::geometry::{dot, norm, sub, VolumeGeometry};
use kneecam::data::npy::read_volume;
use kneecam::data::phantom::render::patient_point;
use kneecam::data::phantom::{write_cohort_as, CohortSpec, ExamPlan, Format};
use kneecam::data::study::{scan_study, Intensity, SeriesSource, StudyOptions};
use kneecam::data::{Plane, Split, Task};
use ndarray::{s, Array3};
use predicates::prelude::*;

const SEED: u64 = 31;
const SPEC: CohortSpec = CohortSpec {
    cases: 2,
    valid: 1,
    seed: SEED,
};

fn synth(dir: &Path, spec: &CohortSpec, format: Format) {
    write_cohort_as(dir, spec, format, false, || {}).expect("synth");
}

/// SPEC's cohort in each format, written once for the tests that only read it (in the build's
/// temporary folder, kept for the process: a static is never dropped).
struct Cohorts {
    _dir: tempfile::TempDir,
    npy: std::path::PathBuf,
    dicom: std::path::PathBuf,
    nifti: std::path::PathBuf,
}

fn cohorts() -> &'static Cohorts {
    static COHORTS: std::sync::OnceLock<Cohorts> = std::sync::OnceLock::new();
    COHORTS.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let [npy, dicom, nifti] = ["npy", "dicom", "nifti"].map(|name| dir.path().join(name));
        synth(&npy, &SPEC, Format::Npy);
        synth(&dicom, &SPEC, Format::Dicom);
        synth(&nifti, &SPEC, Format::Nifti);
        Cohorts {
            _dir: dir,
            npy,
            dicom,
            nifti,
        }
    })
}

fn split_name(id: u32) -> &'static str {
    SPEC.split_of(id).name()
}

fn npy_volume(root: &Path, id: u32, plane: Plane) -> Array3<u8> {
    let path = root
        .join(split_name(id))
        .join(plane.name())
        .join(format!("{id:04}.npy"));
    read_volume(&path).expect("npy").data
}

/// Every file under `dir` by relative path, with its sha256.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    super::phantom::tree_hashes(dir)
}

fn close(a: [f64; 3], b: [f64; 3], tolerance: f64) -> bool {
    norm(sub(a, b)) <= tolerance
}

#[test]
fn an_npy_cohorts_exams_have_the_phantoms_geometry() {
    let dataset = Dataset::open(&cohorts().npy).expect("open");
    assert!(dataset.problems().is_empty(), "{:?}", dataset.problems());
    assert_eq!(dataset.exams().len(), SPEC.cases as usize);
    for exam in dataset.exams() {
        let plan = ExamPlan::new(SEED, exam.id);
        for plane in Plane::ALL {
            let geometry = exam.geometry(plane).expect("readable").expect("a file");
            // serde_json's default float parsing may miss the last bit: equal to 1e-9 mm.
            let want = plan.geometry(plane);
            assert_eq!(geometry.slices(), want.slices(), "exam {} {plane}", exam.id);
            let pairs = geometry.origins.iter().zip(&want.origins);
            assert!(
                pairs
                    .chain([
                        (&geometry.column_step, &want.column_step),
                        (&geometry.row_step, &want.row_step),
                    ])
                    .all(|(&a, &b)| close(a, b, 1e-9)),
                "exam {} {plane}: {geometry:?} vs {want:?}",
                exam.id
            );
            geometry.check().expect("usable");
            assert_eq!(geometry.plane(), plane, "exam {} {plane}", exam.id);
            let volume = exam.load(plane).expect("volume");
            assert_eq!(geometry.slices(), volume.slices());
            assert_eq!((geometry.rows, geometry.columns), (256, 256));
            let series = &plan.series[plane.index()];
            for (slice, row, col) in [(0, 0, 0), (volume.slices() - 1, 17, 200), (3, 255, 9)] {
                let want = patient_point(series.point(slice as f64, row as f64, col as f64));
                let got = geometry
                    .point(slice, row as f64, col as f64)
                    .expect("a slice");
                assert!(close(got, want, 1e-9), "{plane} {slice} {row} {col}");
            }
        }
    }
}

#[test]
fn a_point_located_on_one_plane_is_the_same_knee_point_on_the_others() {
    for id in 0..4 {
        let plan = ExamPlan::new(SEED, id);
        let geometry = Plane::ALL.map(|plane| plan.geometry(plane));
        let mut compared = 0;
        for from in Plane::ALL {
            let g = &geometry[from.index()];
            let middle = g.slices() / 2;
            for (slice, row, col) in [
                (middle, 128, 128),
                (middle, 100, 150),
                (middle.saturating_sub(3), 140, 110),
                (middle + 2, 120, 135),
            ] {
                let p = g.point(slice, row as f64, col as f64).expect("a slice");
                let here = plan.knee_point(from, slice, row, col);
                for to in Plane::ALL.into_iter().filter(|&to| to != from) {
                    let Some(v) = geometry[to.index()].locate(p) else {
                        continue;
                    };
                    let (r, c) = (v.row.round() as usize, v.column.round() as usize);
                    let there = plan.knee_point(to, v.slice, r, c);
                    // Each plane is off by at most half its slice gap and half a pixel's
                    // diagonal; the knee is at most 10 % smaller than the scanner's millimetres.
                    let half_gap = |plane: Plane| plan.series[plane.index()].thickness_mm / 2.0;
                    let pixel = |plane: Plane| plan.series[plane.index()].pixel_mm;
                    let bound =
                        (half_gap(from) + half_gap(to) + (pixel(from) + pixel(to)) * 0.71) / 0.9;
                    let distance = (there - here).norm();
                    assert!(
                        distance <= bound,
                        "exam {id}: {from} ({slice}, {row}, {col}) and {to} {v:?}: \
                         {distance:.2} mm apart, more than {bound:.2}"
                    );
                    compared += 1;
                }
            }
        }
        assert!(
            compared >= 12,
            "exam {id}: only {compared} points on two planes"
        );
    }
}

#[test]
fn patient_coordinates_follow_the_knees_anatomy() {
    // The knee frame is x medial, y anterior, z superior, within ±10° of the scanner's: moving
    // anterior in the knee lowers LPS y (posterior is +y); moving up raises LPS z.
    for id in 0..6 {
        let plan = ExamPlan::new(SEED, id);
        let g = plan.geometry(Plane::Sagittal);
        let s = g.slices() / 2;
        let knee = |row, col| plan.knee_point(Plane::Sagittal, s, row, col);
        let lps = |row, col| g.point(s, row as f64, col as f64).expect("a slice");
        let (a, b) = ((128, 60), (128, 200));
        let knee_anterior = knee(a.0, a.1).y - knee(b.0, b.1).y;
        let lps_posterior = lps(a.0, a.1)[1] - lps(b.0, b.1)[1];
        assert!(
            knee_anterior * lps_posterior < 0.0,
            "exam {id}: {knee_anterior} vs {lps_posterior}"
        );
        let (top, bottom) = ((40, 128), (220, 128));
        let knee_up = knee(top.0, top.1).z - knee(bottom.0, bottom.1).z;
        let lps_up = lps(top.0, top.1)[2] - lps(bottom.0, bottom.1)[2];
        assert!(knee_up > 0.0 && lps_up > 0.0, "exam {id}");
    }
}

/// The study folder of exam `id` in a cohort of studies.
fn study(root: &Path, id: u32) -> PathBuf {
    root.join(split_name(id)).join(format!("{id:04}"))
}

/// For each slice of `read` (a series' converted geometry), the slice of `written` at the same
/// place.
fn slice_map(read: &VolumeGeometry, written: &VolumeGeometry) -> Vec<usize> {
    assert_eq!(read.slices(), written.slices());
    assert!(close(read.column_step, written.column_step, 1e-5));
    assert!(close(read.row_step, written.row_step, 1e-5));
    read.origins
        .iter()
        .map(|&o| {
            let found: Vec<usize> = (0..written.slices())
                .filter(|&s| close(o, written.origins[s], 1e-3))
                .collect();
            assert_eq!(found.len(), 1, "origin {o:?}");
            found[0]
        })
        .collect()
}

/// (series whose min-max mapping leaves them unchanged, series) over a cohort of studies.
fn check_studies(root: &Path, npy_root: &Path, format: Format) -> (usize, usize) {
    let identity = StudyOptions {
        intensity: [Intensity::Identity; 3],
        ..Default::default()
    };
    let (mut unchanged, mut all) = (0, 0);
    for id in 0..SPEC.cases {
        let plan = ExamPlan::new(SEED, id);
        let folder = study(root, id);
        let scan = scan_study(&folder, &identity);
        assert!(
            scan.problems.is_empty(),
            "{format} {id}: {:?}",
            scan.problems
        );
        assert_eq!(scan.ignored, 0);
        for plane in Plane::ALL {
            let series = &scan.series[plane.index()];
            assert_eq!(series.len(), 1, "{format} exam {id}: {plane} series");
            let series = &series[0];
            assert_eq!(series.plane, plane);
            match (&series.source, format) {
                (SeriesSource::Dicom(slices), Format::Dicom) => {
                    assert_eq!(slices.len(), plan.series[plane.index()].slices);
                }
                (SeriesSource::Nifti(path), Format::Nifti) => {
                    assert!(path.ends_with(format!("{plane}.nii.gz")), "{path:?}");
                }
                (other, _) => panic!("{format} exam {id} {plane}: {other:?}"),
            }
            let npy = npy_volume(npy_root, id, plane);
            let map = slice_map(&series.geometry, &plan.geometry(plane));
            let (volume, _) = series.load(false).expect("load");
            assert_eq!(volume.data.dim(), npy.dim());
            for (read, &written) in map.iter().enumerate() {
                assert!(
                    volume.data.slice(s![read, .., ..]) == npy.slice(s![written, .., ..]),
                    "{format} exam {id} {plane}: slice {read} differs from .npy slice {written}"
                );
            }
            // Slices come back in the order the reader sorts them: along the normal.
            let in_order: Vec<usize> = (0..map.len()).collect();
            let reversed: Vec<usize> = in_order.iter().rev().copied().collect();
            let expected_reversed = format == Format::Dicom && plane != Plane::Coronal;
            assert_eq!(
                map,
                if expected_reversed {
                    reversed
                } else {
                    in_order
                },
                "{format} exam {id} {plane}: slice order"
            );
            let mut minmax = (**series).clone();
            minmax.intensity = Intensity::MinMax;
            let (mapped, _) = minmax.load(false).expect("load");
            let extremes = (npy.iter().min().copied(), npy.iter().max().copied());
            let same = mapped.data == volume.data;
            assert_eq!(same, extremes == (Some(0), Some(255)), "{extremes:?}");
            unchanged += usize::from(same);
            all += 1;
        }
    }
    (unchanged, all)
}

/// Each split folder opens as a dataset of studies: its exams by name, their labels, and with
/// the identity mapping the `.npy` volumes (in the slice order the geometry gives).
fn check_split_datasets(root: &Path, npy_root: &Path, format: Format) {
    let identity = StudyOptions {
        intensity: [Intensity::Identity; 3],
        ..Default::default()
    };
    for split in [Split::Train, Split::Valid] {
        let folder = root.join(split.name());
        let dataset = Dataset::open_with(&folder, &identity).expect("open");
        assert!(dataset.problems().is_empty(), "{:?}", dataset.problems());
        let ids: Vec<u32> = (0..SPEC.cases)
            .filter(|&id| SPEC.split_of(id) == split)
            .collect();
        let names: Vec<String> = dataset.exams().iter().map(|e| e.name()).collect();
        let want: Vec<String> = ids.iter().map(|id| format!("{id:04}")).collect();
        assert_eq!(names, want, "{format} {split}");
        for (exam, &id) in dataset.exams().iter().zip(&ids) {
            let plan = ExamPlan::new(SEED, id);
            for task in Task::ALL {
                assert_eq!(exam.labels.get(task), Some(plan.labels()[task.index()]));
            }
            for plane in Plane::ALL {
                let geometry = exam.geometry(plane).expect("geometry").expect("a series");
                let map = slice_map(&geometry, &plan.geometry(plane));
                let volume = exam.load(plane).expect("load").data;
                let npy = npy_volume(npy_root, id, plane);
                for (read, &written) in map.iter().enumerate() {
                    assert!(volume.slice(s![read, .., ..]) == npy.slice(s![written, .., ..]));
                }
            }
        }
    }
}

#[test]
fn dicom_and_nifti_studies_hold_the_npy_volumes_where_the_geometry_says() {
    let Cohorts {
        npy, dicom, nifti, ..
    } = cohorts();
    for (root, format) in [(&dicom, Format::Dicom), (&nifti, Format::Nifti)] {
        let (unchanged, all) = check_studies(root, npy, format);
        eprintln!("{format}: {unchanged} of {all} series span 0–255 (min-max leaves them as is)");
        check_split_datasets(root, npy, format);
        let marker = std::fs::read_to_string(root.join("phantom.toml")).expect("marker");
        assert!(
            marker.contains(&format!("format = \"{format}\"")),
            "{marker}"
        );
        for split in [Split::Train, Split::Valid] {
            for task in Task::ALL {
                let path = root.join(split.name()).join(format!("{}.csv", task.name()));
                let text = std::fs::read_to_string(&path).expect("labels");
                let mut want = String::from("exam,label\n");
                for id in (0..SPEC.cases).filter(|&id| SPEC.split_of(id) == split) {
                    let label = ExamPlan::new(SEED, id).labels()[task.index()];
                    want.push_str(&format!("{id:04},{}\n", u8::from(label)));
                }
                assert_eq!(text, want, "{}", path.display());
            }
        }
    }
}

#[test]
fn dicom_files_are_named_out_of_order_and_say_what_a_scanner_would() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = CohortSpec {
        cases: 1,
        valid: 0,
        seed: SEED,
    };
    synth(dir.path(), &spec, Format::Dicom);
    let folder = dir.path().join("train").join("0000");
    let mut series_dirs: Vec<String> = std::fs::read_dir(&folder)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    series_dirs.sort();
    assert_eq!(series_dirs, ["SE1", "SE2", "SE3"]);
    let scan = scan_study(&folder, &StudyOptions::default());
    let plan = ExamPlan::new(SEED, 0);
    let mut numbers = Vec::new();
    for plane in Plane::ALL {
        let series = &scan.series[plane.index()][0];
        let description = match plane {
            Plane::Axial => "AX PD FS",
            Plane::Coronal => "COR PD",
            Plane::Sagittal => "SAG T2 FS",
        };
        assert_eq!(series.description, description);
        assert!(series.uid.starts_with("2.25."), "{}", series.uid);
        assert_eq!(series.transfer_syntaxes, ["Explicit VR Little Endian"]);
        numbers.push(series.number.expect("a series number"));
        let SeriesSource::Dicom(slices) = &series.source else {
            panic!("not DICOM");
        };
        let names: Vec<u32> = slices
            .iter()
            .map(|s| {
                let name = s.file.file_name().expect("name").to_string_lossy();
                name.strip_prefix("IM").expect("IM{k}").parse().expect("k")
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_ne!(names, sorted, "{plane}: file names follow the slice order");
        assert_eq!(sorted, (1..=names.len() as u32).collect::<Vec<_>>());
        let (row_mm, column_mm) = series.original.pixel_mm();
        let pixel = plan.series[plane.index()].pixel_mm;
        assert!((row_mm - pixel).abs() < 1e-9 && (column_mm - pixel).abs() < 1e-9);
        let normal = series.original.normal();
        let gap = dot(
            sub(series.original.origins[1], series.original.origins[0]),
            normal,
        );
        let thickness = plan.series[plane.index()].thickness_mm;
        assert!(
            (gap - thickness).abs() < 1e-6,
            "{plane}: {gap} vs {thickness}"
        );
    }
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3]);
    // The same seed gives the same files, UIDs included; another seed other UIDs.
    let again = tempfile::tempdir().expect("temp dir");
    synth(again.path(), &spec, Format::Dicom);
    assert_eq!(tree(dir.path()), tree(again.path()));
    let other = tempfile::tempdir().expect("temp dir");
    synth(
        other.path(),
        &CohortSpec {
            seed: SEED + 1,
            ..spec
        },
        Format::Dicom,
    );
    let other_scan = scan_study(
        &other.path().join("train").join("0000"),
        &Default::default(),
    );
    assert_ne!(
        other_scan.series[0][0].uid, scan.series[0][0].uid,
        "series UIDs depend on the seed"
    );
}

#[test]
fn force_replaces_a_cohort_of_any_format_with_any_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = CohortSpec {
        cases: 1,
        valid: 0,
        seed: 2,
    };
    synth(dir.path(), &spec, Format::Npy);
    assert!(dir.path().join("train/geometry/axial/0000.json").is_file());
    for format in [Format::Dicom, Format::Nifti, Format::Npy] {
        write_cohort_as(dir.path(), &spec, format, true, || {}).expect("force");
        let files: Vec<String> = tree(dir.path()).into_keys().collect();
        let expected = match format {
            Format::Npy => 9 + 6 + 1,
            Format::Dicom => {
                Plane::ALL
                    .map(|p| ExamPlan::new(2, 0).series[p.index()].slices)
                    .iter()
                    .sum::<usize>()
                    + 6
                    + 1
            }
            Format::Nifti => 3 + 6 + 1,
        };
        assert_eq!(files.len(), expected, "{format}: {files:?}");
        let geometry = files.iter().any(|f| f.contains("geometry"));
        assert_eq!(geometry, format == Format::Npy, "{format}: {files:?}");
    }
}

#[test]
fn synth_writes_each_format_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("cohort");
    let kneecam = || {
        let mut cmd = Command::cargo_bin("kneecam").expect("binary");
        cmd.env("KNEECAM_DATA_DIR", dir.path().join("home"));
        cmd.args(["synth", "--out"]).arg(&out);
        cmd.args(["--cases", "1", "--valid", "0", "--seed", "3"]);
        cmd
    };
    kneecam()
        .args(["--format", "dicom"])
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote 1 exams (1 train, 0 valid)"))
        .stdout(predicate::str::contains("as DICOM studies"));
    assert!(out.join("train/0000/SE1").is_dir());
    kneecam()
        .args(["--format", "nifti"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not empty"));
    kneecam()
        .args(["--format", "nifti", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains("as NIfTI studies"));
    assert!(out.join("train/0000/sagittal.nii.gz").is_file());
    assert!(
        !out.join("valid/0001/SE1").exists(),
        "the DICOM study is gone"
    );
    kneecam()
        .args(["--format", "png", "--force"])
        .assert()
        .failure()
        .code(2)
        .stderr(predicate::str::contains("expected npy, dicom or nifti"));
}
