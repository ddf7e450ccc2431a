//! DICOM studies and NIfTI volumes read from real files that independent writers made at test
//! time: pydicom 3 and nibabel 5 (scripts/setup-libtorch's virtualenv) write a phantom cohort as
//! studies and volumes, small series tilted ±20°, one bad input per folder, and copy pydicom's
//! own MR test files (tests/suite/studies_fixtures.py). The cohort is `kneecam synth`'s, made
//! in-process; the Python fixtures are cached by the script and the cohort's bytes.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use kneecam::data::dataset::{Problem, Severity};
use kneecam::data::geometry::VolumeGeometry;
use kneecam::data::npy;
use kneecam::data::phantom::{write_cohort, CohortSpec};
use kneecam::data::study::{
    self, scan_study, Intensity, SeriesSource, StudyErrorKind, StudyOptions, StudyScan, Values,
};
use kneecam::data::Plane;
use ndarray::{s, Array3};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{binary, py_fixtures};

const FIXTURES_PY: &str = include_str!("studies_fixtures.py");

/// The phantom cohort the studies are written from: 4 exams (3 train, 1 valid).
const COHORT: CohortSpec = CohortSpec {
    cases: 4,
    valid: 1,
    seed: 3,
};

/// Positions written by pydicom (decimal strings of up to 16 characters) or nibabel (float32
/// affines) come back to within this, in mm.
const POSITION_MM: f64 = 2e-3;

struct Fixtures {
    /// The `.npy` cohort (MRNet layout).
    cohort: PathBuf,
    /// What the Python script wrote (see its header).
    dir: PathBuf,
    written: Value,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let started = Instant::now();
        let (cohort, digest) = cohort();
        let made_cohort = started.elapsed();
        let dir = py_fixtures::make_from("study-fixtures", FIXTURES_PY, Some((&cohort, &digest)));
        let text = std::fs::read_to_string(dir.join("written.json")).expect("written.json");
        eprintln!(
            "studies: cohort in {:.1} s, fixtures ready in {:.1} s",
            made_cohort.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        Fixtures {
            cohort,
            dir,
            written: serde_json::from_str(&text).expect("written.json parses"),
        }
    })
}

/// The cohort, and a digest of its bytes. It is made once per build of this test binary (which
/// links the phantom, so a change to the phantom rebuilds it) into a folder named by the build,
/// with its digest beside it.
fn cohort() -> (PathBuf, String) {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let exe = std::env::current_exe().expect("the test binary");
    let meta = std::fs::metadata(&exe).expect("its metadata");
    let build = format!(
        "{exe:?} {} {:?} {COHORT:?}",
        meta.len(),
        meta.modified().ok()
    );
    let key: String = Sha256::digest(build.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = root.join(format!("study-cohort-{key}"));
    let digest_file = root.join(format!("study-cohort-{key}.digest"));
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("study-cohort-") && !name.starts_with(&format!("study-cohort-{key}")) {
            let _ = std::fs::remove_dir_all(entry.path());
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if let Ok(digest) = std::fs::read_to_string(&digest_file) {
        if dir.is_dir() {
            return (dir, digest);
        }
    }
    let tmp = root.join(format!("study-cohort.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    write_cohort(&tmp, &COHORT, false, || {}).expect("synth");
    let mut files = Vec::new();
    let mut stack = vec![tmp.clone()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let name = file.strip_prefix(&tmp).expect("inside").to_string_lossy();
        hasher.update(name.as_bytes());
        hasher.update(std::fs::read(file).expect("read"));
    }
    let digest: String = hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test process made it first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    std::fs::write(&digest_file, &digest).expect("the digest");
    (dir, digest)
}

fn options(intensity: Intensity) -> StudyOptions {
    StudyOptions {
        intensity: [intensity; 3],
        ..StudyOptions::default()
    }
}

fn plane_named(name: &str) -> Plane {
    Plane::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("plane {name}"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn positions(v: &Value) -> Vec<[f64; 3]> {
    v["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .map(|p| {
            let p = p.as_array().expect("a position");
            [0, 1, 2].map(|i| p[i].as_f64().expect("a number"))
        })
        .collect()
}

fn errors(scan: &StudyScan) -> Vec<&Problem> {
    scan.problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect()
}

/// The series written as `entry` (a `written.json` series), found in `scan`: checked to sit
/// where its files said, slice by slice, and to hold the `.npy` cohort's voxels exactly.
fn check_series(scan: &StudyScan, entry: &Value, what: &str) {
    let f = fixtures();
    let plane = plane_named(str_of(entry, "plane"));
    let found = &scan.series[plane.index()];
    let series = match entry.get("uid").and_then(Value::as_str) {
        Some(uid) => found.iter().find(|s| s.uid == uid),
        None => found.first(),
    }
    .unwrap_or_else(|| panic!("{what}: no {plane} series in {found:?}"));
    assert_eq!(series.plane, plane, "{what}: plane from the orientation");
    let written = positions(entry);
    let npy_slices: Vec<usize> = entry["npy_slices"]
        .as_array()
        .expect("npy_slices")
        .iter()
        .map(|v| v.as_u64().expect("index") as usize)
        .collect();
    assert_eq!(series.slices(), written.len(), "{what}: slices");

    // Slice order from positions: ascending along the normal, whatever the files' names,
    // folders, instance numbers or frame order.
    let normal = series.original.normal();
    let along: Vec<f64> = series
        .original
        .origins
        .iter()
        .map(|o| o.iter().zip(normal).map(|(a, b)| a * b).sum())
        .collect();
    assert!(
        along.windows(2).all(|w| w[1] > w[0]),
        "{what}: slices not in position order: {along:?}"
    );
    // Which written slice each read slice is, by position.
    let matched: Vec<usize> = series
        .original
        .origins
        .iter()
        .map(|o| {
            let (index, distance) = written
                .iter()
                .map(|p| {
                    let d: f64 = p.iter().zip(o).map(|(a, b)| (a - b).powi(2)).sum();
                    d.sqrt()
                })
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("positions");
            assert!(
                distance < POSITION_MM,
                "{what}: slice at {o:?} is {distance} mm from any written position"
            );
            index
        })
        .collect();

    let started = Instant::now();
    let (volume, _) = series
        .load(false)
        .unwrap_or_else(|e| panic!("{what}: load: {e}"));
    let took = started.elapsed();
    let npy = npy::read_volume(&f.cohort.join(str_of(entry, "npy")))
        .expect("the cohort's .npy")
        .data;
    assert_eq!(
        volume.data.dim(),
        (written.len(), npy.dim().1, npy.dim().2),
        "{what}: shape"
    );
    for (k, &w) in matched.iter().enumerate() {
        let want = npy.slice(s![npy_slices[w], .., ..]);
        let got = volume.data.slice(s![k, .., ..]);
        let differ = want.iter().zip(got.iter()).filter(|(a, b)| a != b).count();
        assert_eq!(
            differ, 0,
            "{what}: slice {k} (the .npy's slice {}) differs in {differ} voxels",
            npy_slices[w]
        );
    }
    eprintln!(
        "studies: {what}: {} slices read and converted in {:.0} ms",
        written.len(),
        took.as_secs_f64() * 1e3
    );
}

fn series_entries(kind: &str) -> Vec<&'static Value> {
    fixtures().written["series"]
        .as_array()
        .expect("series")
        .iter()
        .filter(|s| s["kind"] == kind)
        .collect()
}

#[test]
fn the_cohort_as_dicom_studies_holds_the_npy_voxels_in_position_order() {
    let f = fixtures();
    let entries = series_entries("dicom");
    let exams: std::collections::BTreeSet<&str> =
        entries.iter().map(|e| str_of(e, "exam")).collect();
    assert!(exams.len() >= 3, "{exams:?}");
    let mut syntaxes = std::collections::BTreeSet::new();
    for exam in exams {
        let started = Instant::now();
        let scan = scan_study(
            &f.dir.join("dicom").join(exam),
            &options(Intensity::Identity),
        );
        eprintln!(
            "studies: DICOM study {exam} scanned in {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        assert!(scan.problems.is_empty(), "{exam}: {:?}", scan.problems);
        for entry in entries.iter().filter(|e| str_of(e, "exam") == exam) {
            let what = format!(
                "DICOM {exam} {} ({})",
                str_of(entry, "plane"),
                str_of(entry, "syntax_name")
            );
            check_series(&scan, entry, &what);
            let plane = plane_named(str_of(entry, "plane"));
            let series = scan.series[plane.index()]
                .iter()
                .find(|s| s.uid == str_of(entry, "uid"))
                .expect("found above");
            assert_eq!(
                series.transfer_syntaxes,
                [str_of(entry, "syntax_name")],
                "{what}: transfer syntax as pydicom names it"
            );
            assert_eq!(series.description, str_of(entry, "description"));
            syntaxes.insert(str_of(entry, "syntax_name"));
            // The files' own orders are not the position order, so the order above is the
            // positions' doing.
            let SeriesSource::Dicom(slices) = &series.source else {
                panic!("{what}: not DICOM");
            };
            let read: Vec<String> = slices
                .iter()
                .map(|s| {
                    s.file
                        .strip_prefix(&f.dir)
                        .expect("inside")
                        .display()
                        .to_string()
                })
                .collect();
            let mut by_name = read.clone();
            by_name.sort();
            assert_ne!(
                read, by_name,
                "{what}: file names happen to be in position order"
            );
            let files: Vec<&str> = entry["files"]
                .as_array()
                .expect("files")
                .iter()
                .map(|v| v.as_str().expect("file"))
                .collect();
            let numbers: Vec<u64> = read
                .iter()
                .map(|file| {
                    let at = files
                        .iter()
                        .position(|f| f == file)
                        .expect("a written file");
                    entry["instance_numbers"][at].as_u64().expect("number")
                })
                .collect();
            assert!(
                numbers.windows(2).any(|w| w[1] < w[0]),
                "{what}: instance numbers happen to be in position order"
            );
        }
    }
    for wanted in [
        "Explicit VR Little Endian",
        "Implicit VR Little Endian",
        "Explicit VR Big Endian",
        "Deflated Explicit VR Little Endian",
        "RLE Lossless",
    ] {
        assert!(syntaxes.contains(wanted), "no {wanted} in {syntaxes:?}");
    }
}

#[test]
fn a_study_with_two_sagittal_series_shows_the_longer_and_says_why() {
    let f = fixtures();
    let second = series_entries("dicom")
        .into_iter()
        .find(|e| e["second"] == true)
        .expect("a second sagittal series");
    let exam = str_of(second, "exam");
    let scan = scan_study(
        &f.dir.join("dicom").join(exam),
        &options(Intensity::Identity),
    );
    let sagittal = &scan.series[Plane::Sagittal.index()];
    assert_eq!(sagittal.len(), 2, "{sagittal:?}");
    assert_ne!(
        sagittal[0].uid,
        str_of(second, "uid"),
        "the longer one is chosen"
    );
    assert!(sagittal[0].slices() > sagittal[1].slices());
    assert_eq!(
        sagittal[0].choice,
        "chosen over 1 other sagittal series: the most slices"
    );
    assert_eq!(sagittal[1].choice, "not chosen (the most slices)");
    assert_eq!(sagittal[1].description, "SAG T1 localiser");
    check_series(&scan, second, &format!("DICOM {exam} second sagittal"));

    // The manifest's protocol picks the other one.
    let mut by_protocol = options(Intensity::Identity);
    by_protocol.protocol[Plane::Sagittal.index()] = Some("t1 LOCAL".into());
    let scan = scan_study(&f.dir.join("dicom").join(exam), &by_protocol);
    let sagittal = &scan.series[Plane::Sagittal.index()];
    assert_eq!(sagittal[0].uid, str_of(second, "uid"));
    assert_eq!(
        sagittal[0].choice,
        "chosen over 1 other sagittal series: its description matches the models' protocol \
         \"t1 LOCAL\""
    );
}

#[test]
fn a_study_without_a_coronal_series_has_the_other_planes() {
    let f = fixtures();
    let with_coronal: std::collections::BTreeSet<&str> = series_entries("dicom")
        .into_iter()
        .filter(|e| e["plane"] == "coronal")
        .map(|e| str_of(e, "exam"))
        .collect();
    let exam = series_entries("dicom")
        .into_iter()
        .map(|e| str_of(e, "exam"))
        .find(|exam| !with_coronal.contains(exam))
        .expect("an exam without a coronal series");
    let scan = scan_study(
        &f.dir.join("dicom").join(exam),
        &options(Intensity::Identity),
    );
    assert!(scan.series[Plane::Coronal.index()].is_empty());
    assert_eq!(scan.series[Plane::Axial.index()].len(), 1);
    assert_eq!(scan.series[Plane::Sagittal.index()].len(), 1);
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    for entry in series_entries("dicom")
        .into_iter()
        .filter(|e| str_of(e, "exam") == exam)
    {
        check_series(
            &scan,
            entry,
            &format!("DICOM {exam} {}", str_of(entry, "plane")),
        );
    }
}

#[test]
fn the_cohort_as_nifti_holds_the_npy_voxels() {
    let f = fixtures();
    let entries = series_entries("nifti");
    assert!(
        entries.iter().any(|e| e["sform"] == false),
        "a qform-only volume"
    );
    assert!(entries.iter().any(|e| str_of(e, "file").ends_with(".nii")));
    let mut scans: BTreeMap<&str, StudyScan> = BTreeMap::new();
    for entry in &entries {
        let exam = str_of(entry, "exam");
        let scan = scans.entry(exam).or_insert_with(|| {
            scan_study(
                &f.dir.join("nifti").join(exam),
                &options(Intensity::Identity),
            )
        });
        assert!(scan.problems.is_empty(), "{exam}: {:?}", scan.problems);
        let what = format!("NIfTI {}", str_of(entry, "file"));
        let plane = plane_named(str_of(entry, "plane"));
        let series = &scan.series[plane.index()];
        assert_eq!(series.len(), 1, "{what}");
        assert_eq!(
            series[0].source,
            SeriesSource::Nifti(f.dir.join(str_of(entry, "file")))
        );
        assert_eq!(series[0].description, format!("{plane} phantom"));
        // NIfTI slices run along k, the .npy's order; check_series wants ascending positions
        // along the normal, which a left-handed affine reverses: compare origins directly.
        let written = positions(entry);
        for (k, (o, w)) in series[0].original.origins.iter().zip(&written).enumerate() {
            let d: f64 = o.iter().zip(w).map(|(a, b)| (a - b).powi(2)).sum();
            assert!(
                d.sqrt() < POSITION_MM,
                "{what}: slice {k} at {o:?}, written at {w:?}"
            );
        }
        let (volume, _) = series[0]
            .load(false)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let npy = npy::read_volume(&f.cohort.join(str_of(entry, "npy")))
            .expect("npy")
            .data;
        assert!(volume.data == npy, "{what}: voxels differ from the .npy's");
    }
}

#[test]
fn an_enhanced_mr_multi_frame_file_is_one_series_in_position_order() {
    let f = fixtures();
    let entry = series_entries("multiframe")
        .into_iter()
        .next()
        .expect("a multi-frame file");
    let exam = str_of(entry, "exam");
    let scan = scan_study(
        &f.dir.join("multiframe").join(exam),
        &options(Intensity::Identity),
    );
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let series = &scan.series[plane_named(str_of(entry, "plane")).index()];
    assert_eq!(series.len(), 1);
    let SeriesSource::Dicom(slices) = &series[0].source else {
        panic!("not DICOM");
    };
    assert!(slices.iter().all(|s| s.file == slices[0].file), "one file");
    let frames: Vec<u32> = slices.iter().map(|s| s.frame).collect();
    assert!(
        frames.windows(2).any(|w| w[1] < w[0]),
        "frames happen to be stored in position order: {frames:?}"
    );
    check_series(&scan, entry, &format!("multi-frame {exam}"));
}

#[test]
fn oblique_series_take_the_plane_of_their_dominant_normal() {
    let f = fixtures();
    let oblique = f.written["oblique"].as_array().expect("oblique");
    assert_eq!(oblique.len(), 12);
    for entry in oblique {
        let folder = f.dir.join(str_of(entry, "folder"));
        let scan = scan_study(&folder, &StudyOptions::default());
        assert!(scan.problems.is_empty(), "{folder:?}: {:?}", scan.problems);
        let plane = plane_named(str_of(entry, "plane"));
        let found: Vec<(Plane, usize)> = Plane::ALL
            .into_iter()
            .map(|p| (p, scan.series[p.index()].len()))
            .filter(|&(_, n)| n > 0)
            .collect();
        assert_eq!(
            found,
            [(plane, 1)],
            "{folder:?} (tilted {})",
            entry["degrees"]
        );
        let normal = scan.series[plane.index()][0].original.normal();
        let tilt = normal[match plane {
            Plane::Sagittal => 0,
            Plane::Coronal => 1,
            Plane::Axial => 2,
        }]
        .abs()
        .acos()
        .to_degrees();
        assert!(
            (tilt - 20.0).abs() < 0.01,
            "{folder:?}: normal {normal:?} tilted {tilt}°"
        );
        scan.series[plane.index()][0].load(false).expect("loads");
    }
}

/// pydicom's MR_small pixels (64×64 int16), as it decodes them.
fn mr_small_pixels() -> Values {
    let bytes = std::fs::read(fixtures().dir.join("pydicom/MR_small.i16")).expect("MR_small.i16");
    let values: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
        .collect();
    Values::from_shape_vec((1, 64, 64), values).expect("64×64")
}

#[test]
fn pydicoms_mr_small_in_every_lossless_syntax_decodes_to_pydicoms_pixels() {
    let f = fixtures();
    let pixels = mr_small_pixels();
    let (lo, hi) = pixels
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(lo < hi);
    let mut checked = Vec::new();
    for name in [
        "MR_small",
        "MR_small_implicit",
        "MR_small_bigendian",
        "MR_small_expb",
        "MR_small_padded",
        "MR_small_RLE",
        "MR_small_jp2klossless",
    ] {
        let entry = &f.written["pydicom"][name];
        let file = f.dir.join(str_of(entry, "file"));
        let folder = file.parent().expect("folder");
        // Two mappings: min-max over the whole 16-bit range, and identity, which keeps the
        // values 0–255 one to one; each compared with kneecam's conversion of pydicom's pixels,
        // so a decoded value off by one in that range changes the output.
        for intensity in [Intensity::MinMax, Intensity::Identity] {
            let scan = scan_study(folder, &options(intensity));
            assert!(scan.problems.is_empty(), "{name}: {:?}", scan.problems);
            let series: Vec<_> = scan.series.iter().flatten().collect();
            assert_eq!(series.len(), 1, "{name}");
            let series = series[0];
            assert_eq!(series.slices(), 1);
            assert_eq!(
                series.transfer_syntaxes,
                [str_of(entry, "syntax_name")],
                "{name}: transfer syntax"
            );
            let (volume, sha) = series.load(true).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(sha.is_some());
            let want: Array3<u8> = study::convert(&pixels, &series.original, intensity);
            let differ = want
                .iter()
                .zip(volume.data.iter())
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(differ, 0, "{name} ({intensity}): {differ} voxels differ");
        }
        checked.push(name);
    }
    eprintln!("studies: pydicom's files decoded as pydicom does: {checked:?}");
}

#[test]
fn jpeg_extended_12_bit_is_refused_when_the_study_is_opened_naming_the_file() {
    let f = fixtures();
    let entry = &f.written["pydicom"]["JPGExtended_geometry"];
    let file = f.dir.join(str_of(entry, "file"));
    let scan = scan_study(file.parent().expect("folder"), &StudyOptions::default());
    assert!(scan.series.iter().all(Vec::is_empty), "no series from it");
    assert_eq!(scan.problems.len(), 1, "{:?}", scan.problems);
    let problem = &scan.problems[0];
    assert_eq!(problem.file.as_deref(), Some(file.as_path()));
    assert!(
        problem.message.contains("JPEG Extended") && problem.message.contains("12 bits stored"),
        "{problem}"
    );
}

/// Where a bad input shows: a problem when the study is scanned, or an error when its series
/// is loaded.
enum Shows {
    Scan(Severity),
    Load(StudyErrorKind),
}

#[test]
fn every_bad_input_gives_its_own_error_naming_the_file() {
    let f = fixtures();
    let cases: &[(&str, Shows, &[&str])] = &[
        (
            "not_dicom",
            Shows::Scan(Severity::Warning),
            &["ignored: not DICOM (no DICM preamble at byte 128)"],
        ),
        (
            "garbage_after_magic",
            Shows::Scan(Severity::Error),
            &["DICOM file"],
        ),
        (
            "truncated_header",
            Shows::Scan(Severity::Error),
            &["truncated DICOM file"],
        ),
        (
            "truncated_dataset",
            Shows::Scan(Severity::Error),
            &["truncated DICOM file"],
        ),
        // The pixel data's declared length is checked against the file when the study opens.
        (
            "truncated_pixels",
            Shows::Scan(Severity::Error),
            &["truncated DICOM file", "(7FE0,0010)"],
        ),
        (
            "truncated_pydicom",
            Shows::Scan(Severity::Error),
            &["truncated DICOM file", "(7FE0,0010)"],
        ),
        (
            "no_pixel_data",
            Shows::Load(StudyErrorKind::MissingPixelData),
            &["no pixel data (7FE0,0010)"],
        ),
        (
            "no_position",
            Shows::Scan(Severity::Error),
            &["ImagePositionPatient"],
        ),
        (
            "no_orientation",
            Shows::Scan(Severity::Error),
            &["ImageOrientationPatient"],
        ),
        (
            "no_spacing",
            Shows::Scan(Severity::Error),
            &["PixelSpacing"],
        ),
        ("no_rows", Shows::Scan(Severity::Error), &["Rows"]),
        (
            "no_series_uid",
            Shows::Scan(Severity::Error),
            &["SeriesInstanceUID"],
        ),
        (
            "jpeg_ls",
            Shows::Scan(Severity::Error),
            &[
                "transfer syntax",
                "JPEG-LS",
                "1.2.840.10008.1.2.4.80",
                "is not supported",
            ],
        ),
        (
            "private_syntax",
            Shows::Scan(Severity::Error),
            &["transfer syntax 1.2.826.0.1.3680043.9.9999.1 is not supported"],
        ),
        (
            "inconsistent_size",
            Shows::Scan(Severity::Error),
            &["a series must have one size"],
        ),
        (
            "inconsistent_spacing",
            Shows::Scan(Severity::Error),
            &["a series must have one spacing"],
        ),
        (
            "inconsistent_orientation",
            Shows::Scan(Severity::Error),
            &["mixed orientations in one series"],
        ),
        (
            "duplicate_position",
            Shows::Scan(Severity::Error),
            &["duplicate positions"],
        ),
        (
            "uneven_spacing",
            Shows::Scan(Severity::Warning),
            &["slices 3.00 to 6.00 mm apart (uneven spacing: a slice may be missing)"],
        ),
        (
            "rgb",
            Shows::Scan(Severity::Error),
            &["3 samples per pixel, photometric interpretation 'RGB'"],
        ),
        (
            "nifti_zero_affine",
            Shows::Scan(Severity::Error),
            &["the affine is zero or singular"],
        ),
        (
            "nifti_singular_affine",
            Shows::Scan(Severity::Error),
            &["the affine is zero or singular"],
        ),
        (
            "nifti_no_orientation",
            Shows::Scan(Severity::Error),
            &["qform_code and sform_code are both 0"],
        ),
        (
            "nifti_4d",
            Shows::Scan(Severity::Error),
            &["a 4-D volume (16×16×4×2)"],
        ),
        (
            "nifti_vox_offset_small",
            Shows::Scan(Severity::Error),
            &["vox_offset 100: expected a whole number of bytes, at least 352"],
        ),
        (
            "nifti_vox_offset_fraction",
            Shows::Scan(Severity::Error),
            &["vox_offset 352.5"],
        ),
        (
            "nifti_vox_offset_past_end",
            Shows::Scan(Severity::Error),
            &["truncated, or a wrong vox_offset"],
        ),
        (
            "nifti_gz_vox_offset_past_end",
            Shows::Load(StudyErrorKind::BadNifti),
            &["after vox_offset 1000000"],
        ),
    ];
    let bad = f.written["bad"].as_object().expect("bad");
    let mut seen = Vec::new();
    let mut messages = BTreeMap::new();
    let mut wrong = Vec::new();
    for (case, shows, needles) in cases {
        let entry = &bad[*case];
        let folder = f.dir.join("bad").join(case);
        let named: Vec<PathBuf> = entry["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|v| f.dir.join(v.as_str().expect("file")))
            .collect();
        let last = named.last().expect("a file");
        let scan = scan_study(&folder, &StudyOptions::default());
        let message = match shows {
            Shows::Scan(severity) => {
                let ours: Vec<&Problem> = scan
                    .problems
                    .iter()
                    .filter(|p| p.severity == *severity)
                    .collect();
                if ours.len() != 1 || ours[0].file.as_ref() != Some(last) {
                    wrong.push(format!(
                        "{case}: expected one {severity} naming {last:?}: {:?}",
                        scan.problems
                    ));
                    continue;
                }
                if *severity == Severity::Warning && !errors(&scan).is_empty() {
                    wrong.push(format!("{case}: errors too: {:?}", scan.problems));
                }
                if *case == "uneven_spacing" {
                    let series: Vec<_> = scan.series.iter().flatten().collect();
                    if series.len() != 1 || series[0].load(false).is_err() {
                        wrong.push(format!("{case}: the series does not load: {series:?}"));
                    }
                }
                ours[0].message.clone()
            }
            Shows::Load(kind) => {
                let series: Vec<_> = scan.series.iter().flatten().collect();
                if !scan.problems.is_empty() || series.len() != 1 {
                    wrong.push(format!(
                        "{case}: expected one series, no problems: {:?}",
                        scan.problems
                    ));
                    continue;
                }
                match series[0].load(false) {
                    Ok(_) => {
                        wrong.push(format!("{case}: loads"));
                        continue;
                    }
                    Err(err) => {
                        if err.kind != *kind || err.path != *last {
                            wrong.push(format!(
                                "{case}: expected {kind:?} naming {last:?}: {err:?}"
                            ));
                        }
                        assert!(err.to_string().starts_with(&err.path.display().to_string()));
                        err.detail
                    }
                }
            }
        };
        for needle in *needles {
            if !message.contains(needle) {
                wrong.push(format!("{case}: {message:?} lacks {needle:?}"));
            }
        }
        if *case == "duplicate_position" && !message.contains(&named[0].display().to_string()) {
            wrong.push(format!("{case}: does not name the other file: {message}"));
        }
        eprintln!("studies: bad input {case}: {message}");
        messages.insert(*case, message);
        seen.push(*case);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every bad input the script wrote is checked here.
    let mut all: Vec<&str> = bad
        .keys()
        .map(String::as_str)
        .filter(|c| *c != "no_coronal")
        .collect();
    all.sort();
    seen.sort();
    assert_eq!(seen, all);
    // Each says what is wrong in its own words.
    let distinct: std::collections::BTreeSet<&String> = messages.values().collect();
    assert!(distinct.len() >= messages.len() - 4, "{messages:#?}");
}

#[test]
fn a_series_with_a_bad_file_keeps_its_other_slices() {
    // A required tag missing from one file: that file is an error, the others still form the
    // series (its slices one fewer, with a warning if that leaves a gap).
    let f = fixtures();
    for case in ["no_position", "no_spacing", "no_rows"] {
        let scan = scan_study(&f.dir.join("bad").join(case), &StudyOptions::default());
        let coronal = &scan.series[Plane::Coronal.index()];
        assert_eq!(coronal.len(), 1, "{case}: {:?}", scan.problems);
        assert_eq!(coronal[0].slices(), 2, "{case}");
        coronal[0]
            .load(false)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
    }
}

#[test]
fn a_study_with_no_series_of_a_plane_has_that_plane_unavailable() {
    let f = fixtures();
    let scan = scan_study(&f.dir.join("bad/no_coronal"), &StudyOptions::default());
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    assert!(scan.series[Plane::Coronal.index()].is_empty());
    for plane in [Plane::Sagittal, Plane::Axial] {
        assert_eq!(scan.series[plane.index()].len(), 1, "{plane}");
        scan.series[plane.index()][0].load(false).expect("loads");
    }
}

// --- the command line -------------------------------------------------------------------------

/// One `kneecam predict` CSV: (exam, task) → [p_axial, p_coronal, p_sagittal, p_combined], a
/// field left empty (a plane unavailable) as `None`.
type Predictions = BTreeMap<(String, String), [Option<f64>; 4]>;

fn predict(data: &Path, models: &Path, what: &str) -> Predictions {
    let home = tempfile::tempdir().expect("home");
    let out = home.path().join("predictions.csv");
    let started = Instant::now();
    binary::kneecam(home.path())
        .env("OMP_NUM_THREADS", "1")
        .args(["predict", "--split", "all", "--data"])
        .arg(data)
        .arg("--models")
        .arg(models)
        .arg("--out")
        .arg(&out)
        .arg("--cache")
        .arg(home.path().join("store"))
        .assert()
        .success();
    eprintln!(
        "studies: predict on {what} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let text = std::fs::read_to_string(&out).expect("predictions");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("exam,split,task,label,p_axial,p_coronal,p_sagittal,p_combined")
    );
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let p = |i: usize| -> Option<f64> {
                (!fields[i].is_empty()).then(|| fields[i].parse().expect("a probability"))
            };
            (
                (fields[0].to_string(), fields[2].to_string()),
                [p(4), p(5), p(6), p(7)],
            )
        })
        .collect()
}

/// models/demo's ACL models (the three planes and their combiner; the other tasks' six models
/// would triple the time and test nothing more), in a folder of their own; with `intensity`,
/// every entry states that intensity mapping instead of the demo's own.
fn acl_models(intensity: Option<&'static str>) -> &'static Path {
    static DIRS: OnceLock<std::sync::Mutex<BTreeMap<Option<&str>, &'static Path>>> =
        OnceLock::new();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut dirs = DIRS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    dirs.entry(intensity).or_insert_with(|| {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo");
        // Made afresh by each process (models/demo may have changed), then renamed into place.
        let name = format!("study-models-{}", intensity.unwrap_or("demo"));
        let tmp = root.join(format!("{name}.tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("models");
        let text = std::fs::read_to_string(demo.join("manifest.toml")).expect("manifest");
        let mut kept = String::new();
        // The lines before the first table (the format), then the ACL tables.
        let mut keep = true;
        for line in text.lines() {
            if line.starts_with('[') {
                keep = line.starts_with("[models.acl-") || line == "[combiners.acl]";
                if keep && line.starts_with("[models.") {
                    let name = &line["[models.".len()..line.len() - 1];
                    let file = format!("{name}.safetensors");
                    std::fs::copy(demo.join(&file), tmp.join(&file)).expect("copy");
                }
            }
            if !keep || (intensity.is_some() && line.starts_with("intensity =")) {
                continue;
            }
            kept.push_str(line);
            kept.push('\n');
            if let (Some(intensity), true) = (intensity, line.starts_with("[models.")) {
                kept.push_str(&format!("intensity = \"{intensity}\"\n"));
            }
        }
        assert_eq!(kept.matches("[models.acl-").count(), 3, "{kept}");
        std::fs::write(tmp.join("manifest.toml"), kept).expect("manifest");
        let dir = root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another test process put its identical copy there first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Box::leak(dir.into_boxed_path())
    })
}

/// The `.npy` cohort's predictions (the intensity mapping does not apply to uint8 `.npy`).
fn npy_predictions() -> &'static Predictions {
    static PREDICTIONS: OnceLock<Predictions> = OnceLock::new();
    PREDICTIONS.get_or_init(|| predict(&fixtures().cohort, acl_models(None), "the .npy cohort"))
}

/// The largest difference between `found` and the `.npy` cohort's predictions, over the
/// fields both have; panics when `found` lacks a field other than those `missing` allows.
fn max_difference(
    found: &Predictions,
    what: &str,
    missing: impl Fn(&str, usize) -> bool,
    mut each: impl FnMut(&str, usize, f64),
) -> f64 {
    let want = npy_predictions();
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: exams and tasks"
    );
    let mut max = 0.0f64;
    for (key, row) in want {
        for (field, (w, f)) in row.iter().zip(&found[key]).enumerate() {
            match (w, f) {
                (Some(w), Some(f)) => {
                    let d = (w - f).abs();
                    each(&key.0, field, d);
                    max = max.max(d);
                }
                (Some(_), None) if missing(&key.0, field) => {}
                (None, None) if key.1 != "acl" => {}
                _ => panic!("{what}: {key:?} field {field}: {w:?} vs {f:?}"),
            }
        }
    }
    max
}

fn exam_without_coronal() -> &'static str {
    let with: std::collections::BTreeSet<&str> = series_entries("dicom")
        .into_iter()
        .filter(|e| e["plane"] == "coronal")
        .map(|e| str_of(e, "exam"))
        .collect();
    series_entries("nifti")
        .into_iter()
        .map(|e| str_of(e, "exam"))
        .find(|exam| !with.contains(exam))
        .expect("an exam without a coronal series")
}

/// With the manifest's intensity "identity" (as models/demo states), the models see exactly the `.npy` cohort's voxels
/// (256×256 square pixels are copied, and the rescale gives back each uint8 value exactly), so
/// the probabilities are the same to the CSV's 6 decimals: tolerance half a unit of the last
/// printed digit. The exam without a coronal series has no coronal (nor combined) probability.
#[test]
fn predict_on_the_studies_gives_the_npy_cohorts_probabilities() {
    let f = fixtures();
    let missing = exam_without_coronal();
    let dicom = predict(
        &f.dir.join("dicom"),
        acl_models(Some("identity")),
        "DICOM studies",
    );
    let max = max_difference(
        &dicom,
        "DICOM",
        |exam, field| exam == missing && (field == 1 || field == 3),
        |_, _, _| {},
    );
    eprintln!("studies: DICOM vs .npy predictions: max difference {max:e}");
    assert!(
        max <= 5e-7,
        "DICOM predictions differ from the .npy's by {max}"
    );
    for ((exam, task), row) in &dicom {
        if task == "acl" {
            assert_eq!(row[1].is_none(), exam == missing, "{exam}: coronal");
        }
    }
    let nifti = predict(
        &f.dir.join("nifti"),
        acl_models(Some("identity")),
        "NIfTI volumes",
    );
    let max = max_difference(&nifti, "NIfTI", |_, _| false, |_, _, _| {});
    eprintln!("studies: NIfTI vs .npy predictions: max difference {max:e}");
    assert!(
        max <= 5e-7,
        "NIfTI predictions differ from the .npy's by {max}"
    );
}

/// With the manifest's intensity "minmax" (the default when none is stated), a series whose
/// darkest voxel is 0 and brightest 255 reaches the models unchanged, and one whose brightest is less is
/// stretched to 255: its probabilities move (by up to 1.2e-3 with the demo ACL models when this
/// was written). Tolerance: 0 (to the printed digits) for the unstretched planes; for the others at
/// most 0.02, an order of magnitude above what was measured, and not all equal (the mapping is
/// applied).
#[test]
fn predict_with_min_max_intensity_changes_only_the_stretched_series() {
    let f = fixtures();
    let missing = exam_without_coronal();
    // Which planes of which exams span 0–255 in the .npy cohort.
    let mut full_range = BTreeMap::new();
    for entry in series_entries("nifti") {
        let npy = npy::read_volume(&f.cohort.join(str_of(entry, "npy")))
            .expect("npy")
            .data;
        let (lo, hi) = npy
            .iter()
            .fold((u8::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let plane = plane_named(str_of(entry, "plane"));
        full_range.insert(
            (str_of(entry, "exam").to_string(), plane),
            (lo, hi) == (0, 255),
        );
    }
    assert!(full_range.values().any(|&full| full) && full_range.values().any(|&full| !full));
    let dicom = predict(
        &f.dir.join("dicom"),
        acl_models(Some("minmax")),
        "DICOM studies, min-max",
    );
    let (mut same, mut stretched) = (0.0f64, 0.0f64);
    let max = max_difference(
        &dicom,
        "DICOM min-max",
        |exam, field| exam == missing && (field == 1 || field == 3),
        |exam, field, d| {
            let plane = [Plane::Axial, Plane::Coronal, Plane::Sagittal].get(field);
            match plane.map(|p| full_range[&(exam.to_string(), *p)]) {
                Some(true) => same = same.max(d),
                Some(false) => stretched = stretched.max(d),
                None => {} // combined
            }
        },
    );
    eprintln!(
        "studies: DICOM (min-max) vs .npy predictions: full-range planes {same:e}, stretched \
         {stretched:e}, overall {max:e}"
    );
    assert!(same <= 5e-7, "unstretched planes differ by {same}");
    assert!(
        stretched > 5e-7,
        "no stretched plane changed: is the mapping applied?"
    );
    assert!(max <= 0.02, "min-max moved a probability by {max}");
}

#[test]
fn dataset_summary_lists_the_series_their_choice_and_the_missing_plane() {
    let f = fixtures();
    let home = tempfile::tempdir().expect("home");
    let output = binary::kneecam(home.path())
        .args(["dataset", "summary"])
        .arg(f.dir.join("dicom"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    let missing = exam_without_coronal();
    let second = series_entries("dicom")
        .into_iter()
        .find(|e| e["second"] == true)
        .expect("a second sagittal series");
    for needle in [
        "(studies: DICOM or NIfTI)".to_string(),
        "flat        4       4         3          4".to_string(),
        "uses 'SAG T2 FS' #3".to_string(),
        "chosen over 1 other sagittal series: the most slices".to_string(),
        format!(
            "also 'SAG T1 localiser' #11: {} slices of 256×256 (",
            positions(second).len()
        ),
        format!(
            " mm), DICOM, {} files, Explicit VR Little Endian",
            positions(second).len()
        ),
        "not chosen (the most slices)".to_string(),
        "none: the plane is unavailable".to_string(),
        format!(
            "warning  {}: no coronal series: that plane is unavailable for this exam (the \
             others work)",
            f.dir.join("dicom").join(missing).display()
        ),
        "transfer syntaxes  Deflated Explicit VR Little Endian (1 series), Explicit VR Big \
         Endian (1 series), Explicit VR Little Endian (8 series), Implicit VR Little Endian \
         (1 series), RLE Lossless (1 series)"
            .to_string(),
        "problems 0 errors, 1 warning".to_string(),
        "usable: yes".to_string(),
    ] {
        assert!(text.contains(&needle), "summary lacks {needle:?}:\n{text}");
    }
    // The exam lines in name order, each with its three planes.
    let exams: Vec<&str> = text
        .lines()
        .filter(|l| l.len() == 6 && l.starts_with("  ") && !l.starts_with("   "))
        .map(str::trim)
        .collect();
    assert_eq!(exams, ["0000", "0001", "0002", "0003"], "{text}");
}

#[test]
fn dataset_summary_of_the_bad_inputs_names_each_file_and_exits_1() {
    let f = fixtures();
    let home = tempfile::tempdir().expect("home");
    let output = binary::kneecam(home.path())
        .args(["dataset", "summary"])
        .arg(f.dir.join("bad"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("usable: no"), "{text}");
    // Every input whose fault is in its header is an error naming its file.
    for (case, entry) in f.written["bad"].as_object().expect("bad") {
        let severity = match case.as_str() {
            // Found when the voxels are read, or not a problem of the folder's own.
            "no_coronal" | "no_pixel_data" | "nifti_gz_vox_offset_past_end" => continue,
            "uneven_spacing" | "not_dicom" => "warning",
            _ => "error  ",
        };
        let file = entry["files"]
            .as_array()
            .and_then(|files| files.last())
            .and_then(Value::as_str)
            .expect("a file");
        let line = format!("{severity}  {}", f.dir.join(file).display());
        assert!(text.contains(&line), "{case}: no {line:?} in:\n{text}");
    }
}

/// MONOCHROME1 means low values bright: a series of it reads as the same series stored as
/// MONOCHROME2 (255 − v), with one mapping for every file, even when one file's range differs
/// from the others' (slice 0 has one brighter pixel).
#[test]
fn monochrome1_reads_as_its_monochrome2_equivalent() {
    let f = fixtures();
    for options in [
        StudyOptions::default(),
        StudyOptions {
            intensity: [Intensity::Identity; 3],
            ..StudyOptions::default()
        },
    ] {
        monochrome1_matches_monochrome2(f, &options);
    }
}

fn monochrome1_matches_monochrome2(f: &Fixtures, options: &StudyOptions) {
    let load = |which: &str| {
        let scan = scan_study(&f.dir.join("monochrome").join(which), options);
        assert!(scan.problems.is_empty(), "{which}: {:?}", scan.problems);
        let series = &scan.series[Plane::Sagittal.index()];
        assert_eq!(series.len(), 1, "{which}");
        series[0].load(false).expect("loads").0.data
    };
    let (one, two) = (load("1"), load("2"));
    let differ = one.iter().zip(two.iter()).filter(|(a, b)| a != b).count();
    let per_slice: Vec<usize> = (0..one.dim().0)
        .map(|k| {
            let (a, b) = (one.slice(s![k, .., ..]), two.slice(s![k, .., ..]));
            a.iter().zip(b.iter()).filter(|(x, y)| x != y).count()
        })
        .collect();
    assert_eq!(
        differ, 0,
        "MONOCHROME1 differs from MONOCHROME2 per slice ({:?}): {per_slice:?}",
        options.intensity
    );
}

/// A series smaller than the models' 256×256 is enlarged: its outer pixels keep their value out
/// to the edge of the field of view (half a pixel beyond their centres), with no dark rim from
/// blending with the padding's 0; the padding itself, where the aspect leaves some, is 0.
#[test]
fn an_enlarged_series_keeps_its_edges_and_pads_with_zero() {
    let geometry = |rows: usize, columns: usize| VolumeGeometry {
        origins: vec![[0.0; 3]],
        column_step: [0.6, 0.0, 0.0],
        row_step: [0.0, 0.6, 0.0],
        rows,
        columns,
    };
    let square = study::convert(
        &Values::from_elem((1, 64, 64), 100.0),
        &geometry(64, 64),
        Intensity::Identity,
    );
    let rim: Vec<(usize, u8)> = (0..study::SIDE)
        .map(|i| (i, square[[0, i, 128]]))
        .filter(|&(_, v)| v != 100)
        .collect();
    assert!(
        rim.is_empty(),
        "64×64 of 100 enlarged: rows (index, value) off 100: {rim:?}"
    );
    let wide = study::convert(
        &Values::from_elem((1, 64, 128), 100.0),
        &geometry(64, 128),
        Intensity::Identity,
    );
    let column: Vec<u8> = (0..study::SIDE).map(|i| wide[[0, i, 128]]).collect();
    let image: Vec<usize> = (0..study::SIDE).filter(|&i| column[i] != 0).collect();
    assert_eq!(image, (64..192).collect::<Vec<_>>(), "{column:?}");
    assert!(image.iter().all(|&i| column[i] == 100), "{column:?}");
}
