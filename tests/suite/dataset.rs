//! The dataset reader on real files: `.npy` volumes, label CSVs, both layouts, every bad input
//! the reader must name, and `kneecam dataset summary` through the binary.
use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kneecam::data::dataset::{Dataset, DatasetError, Layout, PlaneSource, Problem, Severity};
use kneecam::data::labels::read_labels;
use kneecam::data::npy::{read_header, read_volume, NpyError, Scalar};
use kneecam::data::{Plane, Split, Task};
use predicates::prelude::*;

// ---- fixtures --------------------------------------------------------------------------------

/// A `.npy` file as NumPy writes it: magic, version, little-endian header length, the dict
/// padded with spaces to a multiple of 64 and ended by a newline, then the body.
fn npy_bytes(version: u8, dict: &str, body: &[u8]) -> Vec<u8> {
    let len_field = if version == 1 { 2 } else { 4 };
    let mut header = dict.to_string();
    while !(8 + len_field + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(body);
    out
}

fn dict(descr: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
}

fn u8_volume(slices: usize, side: usize, fill: u8) -> Vec<u8> {
    npy_bytes(
        1,
        &dict("|u1", &format!("({slices}, {side}, {side})")),
        &vec![fill; slices * side * side],
    )
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> PathBuf {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create folders");
    }
    fs::write(path, bytes).expect("write fixture");
    path.to_path_buf()
}

/// Writes `name` in a fresh temp dir and reads it as a volume; the error must name the file.
fn npy_error(name: &str, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(&dir.path().join(name), bytes);
    let err = read_volume(&path).expect_err("should be refused");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
    assert_eq!(err.path(), path);
    // The header check alone must refuse it too (the summary relies on that), except for
    // what only the values show.
    if !matches!(err, NpyError::NotFinite { .. }) {
        let header_err = read_header(&path).expect_err("header check should refuse it");
        assert_eq!(header_err.to_string(), msg);
    }
    msg
}

/// A small MRNet-layout dataset: train 0000–0002, valid 1130–1131, three planes each, 4×4
/// in-plane, and six CSVs with unpadded ids in train.
fn mrnet_dataset(root: &Path) {
    for (split, ids) in [("train", vec![0u32, 1, 2]), ("valid", vec![1130, 1131])] {
        for &id in &ids {
            for (p, plane) in ["axial", "coronal", "sagittal"].iter().enumerate() {
                let slices = 17 + id as usize % 3 + p;
                write(
                    &root.join(split).join(plane).join(format!("{id:04}.npy")),
                    u8_volume(slices, 4, id as u8),
                );
            }
        }
    }
    write(&root.join("train-abnormal.csv"), "0,1\n1,1\n2,0\n");
    write(&root.join("train-acl.csv"), "0,0\r\n1,1\r\n2,0\r\n\r\n");
    write(&root.join("train-meniscus.csv"), " 0 , 0 \n1,0\n2,1\n\n\n");
    write(&root.join("valid-abnormal.csv"), "1130,1\n1131,1\n");
    write(&root.join("valid-acl.csv"), "1130,1\n1131,0\n");
    write(&root.join("valid-meniscus.csv"), "1130,0\n1131,0\n");
}

fn messages(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

fn kneecam() -> Command {
    let mut cmd = Command::cargo_bin("kneecam").expect("kneecam binary");
    let home = tempfile::tempdir().expect("temp home").keep();
    cmd.env("KNEECAM_DATA_DIR", home.join("data"))
        .env("KNEECAM_CACHE_DIR", home.join("cache"))
        .env("KNEECAM_CONFIG_DIR", home.join("config"));
    cmd
}

// ---- .npy: good files ------------------------------------------------------------------------

#[test]
fn uint8_volumes_read_in_versions_1_2_and_3() {
    let dir = tempfile::tempdir().expect("temp dir");
    let body: Vec<u8> = (0..3 * 5 * 4).map(|i| i as u8).collect();
    for version in [1u8, 2, 3] {
        let path = write(
            &dir.path().join(format!("v{version}.npy")),
            npy_bytes(version, &dict("|u1", "(3, 5, 4)"), &body),
        );
        let header = read_header(&path).expect("header");
        assert_eq!((header.version, header.shape), ((version, 0), [3, 5, 4]));
        assert_eq!(header.dtype.scalar, Scalar::U8);
        let volume = read_volume(&path).expect("volume");
        assert_eq!(
            (volume.slices(), volume.height(), volume.width()),
            (3, 5, 4)
        );
        assert_eq!(volume.data[[2, 4, 3]], 59);
        assert_eq!(volume.note, None);
    }
}

#[test]
fn files_written_by_ndarray_npy_read_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("0000.npy");
    let array =
        ndarray::Array3::<u8>::from_shape_fn((17, 8, 6), |(s, y, x)| (s * 13 + y * 7 + x) as u8);
    ndarray_npy::write_npy(&path, &array).expect("write with ndarray-npy");
    assert_eq!(read_volume(&path).expect("read").data, array);
}

#[test]
fn int16_is_min_max_scaled_with_a_note() {
    let dir = tempfile::tempdir().expect("temp dir");
    let values: [i16; 4] = [-1000, 0, 1000, 3000];
    let body: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = write(
        &dir.path().join("ct.npy"),
        npy_bytes(1, &dict("<i2", "(1, 2, 2)"), &body),
    );
    let volume = read_volume(&path).expect("i16");
    assert_eq!(
        volume.data.iter().copied().collect::<Vec<_>>(),
        [0, 64, 128, 255]
    );
    assert_eq!(
        volume.note.as_deref(),
        Some("scaled from int16 range [-1000, 3000] to 0–255")
    );
}

#[test]
fn float32_is_min_max_scaled_with_a_note_in_either_byte_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let values: [f32; 3] = [0.5, 1.0, 1.5];
    for (descr, body) in [
        (
            "<f4",
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        ),
        (">f4", values.iter().flat_map(|v| v.to_be_bytes()).collect()),
    ] {
        let path = write(
            &dir.path().join("f.npy"),
            npy_bytes(1, &dict(descr, "(3, 1, 1)"), &body),
        );
        let volume = read_volume(&path).expect("f32");
        assert_eq!(
            volume.data.iter().copied().collect::<Vec<_>>(),
            [0, 128, 255]
        );
        let note = volume.note.expect("note");
        assert!(note.starts_with("scaled from float32"), "{note}");
        assert!(note.ends_with("range [0.5, 1.5] to 0–255"), "{note}");
    }
}

#[test]
fn a_constant_series_becomes_zeros_with_a_note() {
    let dir = tempfile::tempdir().expect("temp dir");
    let body: Vec<u8> = [2.5f64; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let path = write(
        &dir.path().join("flat.npy"),
        npy_bytes(1, &dict("<f8", "(1, 2, 2)"), &body),
    );
    let volume = read_volume(&path).expect("constant");
    assert!(volume.data.iter().all(|&v| v == 0));
    assert_eq!(
        volume.note.as_deref(),
        Some("constant float64 series (every value 2.5): shown as all zeros")
    );
}

// ---- .npy: every bad input, each named ---------------------------------------------------------

#[test]
fn truncated_body_says_how_much_was_needed() {
    let mut bytes = u8_volume(2, 4, 1);
    bytes.truncate(bytes.len() - 5);
    let msg = npy_error("short.npy", &bytes);
    assert!(
        msg.ends_with("truncated: shape (2, 4, 4) of uint8 needs 32 bytes of data after the 128-byte header, the file has 27"),
        "{msg}"
    );
}

#[test]
fn truncated_header_and_empty_file() {
    let bytes = u8_volume(1, 1, 0);
    let msg = npy_error("cut.npy", &bytes[..40]);
    assert!(
        msg.ends_with("truncated header: the file has 40 bytes, the header alone needs 128"),
        "{msg}"
    );
    let msg = npy_error("empty.npy", b"");
    assert!(
        msg.contains("truncated header: the file has 0 bytes"),
        "{msg}"
    );
    let msg = npy_error("magic-only.npy", b"\x93NUMPY\x01\x00\x76");
    assert!(
        msg.contains("truncated header: the file has 9 bytes, the header alone needs 10"),
        "{msg}"
    );
}

#[test]
fn bad_magic() {
    let msg = npy_error("text.npy", b"case,label\n0,1\n");
    assert!(
        msg.contains(
            "not a .npy file: starts with \"case,l\", expected the magic string \\x93NUMPY"
        ),
        "{msg}"
    );
}

#[test]
fn unsupported_version() {
    let mut bytes = u8_volume(1, 1, 0);
    bytes[6] = 4;
    let msg = npy_error("v4.npy", &bytes);
    assert!(
        msg.ends_with("unsupported .npy format version 4.0: expected 1.0, 2.0 or 3.0"),
        "{msg}"
    );
}

#[test]
fn malformed_header_dict() {
    let bytes = npy_bytes(
        1,
        "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1)",
        &[0],
    );
    let msg = npy_error("unclosed.npy", &bytes);
    assert!(msg.contains("malformed .npy header: at byte"), "{msg}");
    assert!(
        msg.contains("expected ',' or '}', found the end of the header"),
        "{msg}"
    );
    assert!(
        msg.contains("expected a dict like {'descr': '|u1'"),
        "{msg}"
    );

    let bytes = npy_bytes(1, "not a dict at all", &[0]);
    let msg = npy_error("garbage.npy", &bytes);
    assert!(
        msg.contains(
            "malformed .npy header: at byte 0 of the dict: expected '{' at the start, found 'n'"
        ),
        "{msg}"
    );
}

#[test]
fn header_with_a_missing_key() {
    for (key, text) in [
        ("shape", "{'descr': '|u1', 'fortran_order': False, }"),
        ("descr", "{'fortran_order': False, 'shape': (1, 1, 1), }"),
        ("fortran_order", "{'descr': '|u1', 'shape': (1, 1, 1), }"),
    ] {
        let msg = npy_error("nokey.npy", &npy_bytes(1, text, &[0]));
        assert!(
            msg.contains(&format!("malformed .npy header: missing key '{key}'")),
            "{msg}"
        );
    }
}

#[test]
fn absurd_header_length_is_refused_before_allocating() {
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend(u32::MAX.to_le_bytes());
    bytes.extend(b"{'descr'");
    let msg = npy_error("huge-header.npy", &bytes);
    assert!(
        msg.contains("header length field says 4294967295 bytes"),
        "{msg}"
    );
}

#[test]
fn unsupported_dtypes_are_named_with_the_accepted_ones() {
    for descr in ["<c8", "|i1", "|b1", "<U10", "<M8[ns]", "|O"] {
        let msg = npy_error(
            "dtype.npy",
            &npy_bytes(1, &dict(descr, "(1, 1, 1)"), &[0; 16]),
        );
        assert!(
            msg.contains(&format!("unsupported dtype '{descr}'")),
            "{msg}"
        );
        assert!(
            msg.contains(
                "expected uint8 ('|u1'), or int16, uint16, int32, uint32, float32, float64"
            ),
            "{msg}"
        );
    }
}

#[test]
fn wrong_number_of_dimensions() {
    let msg = npy_error("2d.npy", &npy_bytes(1, &dict("|u1", "(4, 4)"), &[0; 16]));
    assert!(
        msg.ends_with("shape (4, 4) has 2 dimensions: expected 3 (slices, height, width)"),
        "{msg}"
    );
    let msg = npy_error(
        "4d.npy",
        &npy_bytes(1, &dict("|u1", "(1, 2, 2, 2)"), &[0; 8]),
    );
    assert!(
        msg.contains("shape (1, 2, 2, 2) has 4 dimensions: expected 3"),
        "{msg}"
    );
    let msg = npy_error("1d.npy", &npy_bytes(1, &dict("|u1", "(4,)"), &[0; 4]));
    assert!(
        msg.contains("shape (4,) has 1 dimension: expected 3"),
        "{msg}"
    );
    let msg = npy_error("0d.npy", &npy_bytes(1, &dict("|u1", "()"), &[0]));
    assert!(
        msg.contains("shape () has 0 dimensions: expected 3"),
        "{msg}"
    );
}

#[test]
fn zero_slices() {
    let msg = npy_error(
        "none.npy",
        &npy_bytes(1, &dict("|u1", "(0, 256, 256)"), &[]),
    );
    assert!(
        msg.ends_with("shape (0, 256, 256) has zero slices: expected at least 1"),
        "{msg}"
    );
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    // Tiny files whose headers ask for gigabytes: refused by the shape, not by a failed read.
    for (shape, why) in [
        ("(1025, 256, 256)", "1025 slices is more than 1024"),
        ("(20, 4096, 256)", "4096×256 px is more than 2048 a side"),
        (
            "(20, 256, 100000)",
            "256×100000 px is more than 2048 a side",
        ),
        ("(20, 0, 256)", "a zero-sized side"),
        ("(20, 256, 0)", "a zero-sized side"),
        (
            "(18446744073709551615, 1, 1)",
            "18446744073709551615 slices is more than 1024",
        ),
    ] {
        let msg = npy_error("absurd.npy", &npy_bytes(1, &dict("|u1", shape), &[0; 8]));
        assert!(
            msg.contains(&format!("shape {shape} refused: {why}")),
            "{msg}"
        );
        assert!(
            msg.contains("(at most 1024 slices and 2048 px a side, none zero)"),
            "{msg}"
        );
    }
}

#[test]
fn fortran_order_is_refused() {
    let text = "{'descr': '|u1', 'fortran_order': True, 'shape': (1, 2, 2), }";
    let msg = npy_error("fortran.npy", &npy_bytes(1, text, &[0; 4]));
    assert!(
        msg.ends_with("array is stored in Fortran order (fortran_order: True): expected C order (fortran_order: False)"),
        "{msg}"
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = u8_volume(1, 2, 9);
    bytes.extend(b"junk");
    let msg = npy_error("long.npy", &bytes);
    assert!(
        msg.ends_with("4 unexpected bytes after the data: shape (1, 2, 2) of uint8 needs exactly 4 bytes after the 128-byte header"),
        "{msg}"
    );
}

#[test]
fn nan_and_infinity_are_refused() {
    let body: Vec<u8> = [1.0f32, f32::NAN]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let msg = npy_error("nan.npy", &npy_bytes(1, &dict("<f4", "(1, 1, 2)"), &body));
    assert!(
        msg.ends_with("float32 value at [0, 0, 1] is NaN or infinite: expected finite values"),
        "{msg}"
    );
    let body: Vec<u8> = [f64::NEG_INFINITY, 0.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let msg = npy_error("inf.npy", &npy_bytes(1, &dict(">f8", "(2, 1, 1)"), &body));
    assert!(
        msg.contains("float64 (big-endian) value at [0, 0, 0] is NaN or infinite"),
        "{msg}"
    );
}

#[test]
fn a_missing_file_is_an_io_error_and_a_folder_is_named_as_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("0001.npy");
    let msg = read_volume(&missing).expect_err("missing").to_string();
    assert!(
        msg.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{msg}"
    );
    let folder = dir.path().join("0002.npy");
    fs::create_dir(&folder).expect("mkdir");
    let msg = read_header(&folder).expect_err("folder").to_string();
    assert_eq!(
        msg,
        format!("{}: is a folder, expected a .npy file", folder.display())
    );
}

// ---- label CSVs ------------------------------------------------------------------------------

#[test]
fn label_csv_bad_rows_are_named_and_good_rows_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write(
        &dir.path().join("train-acl.csv"),
        "case,label\n0,1\n1,2\n2;1\n0002,0\n3,1,1\n4,\n\n5,0\n0001,0\n1,1\n",
    );
    let file = read_labels(&path).expect("readable");
    let shown = path.display().to_string();
    let msgs: Vec<String> = file.errors.iter().map(ToString::to_string).collect();
    let expected = [
        format!(
            "{shown}:1: bad row \"case,label\": case id \"case\" is not a number (a header row?)"
        ),
        format!("{shown}:3: bad row \"1,2\": label \"2\" is not 0 or 1"),
        format!("{shown}:4: bad row \"2;1\": 1 field, not 2"),
        format!("{shown}:6: bad row \"3,1,1\": 3 fields, not 2"),
        format!("{shown}:7: bad row \"4,\": no label"),
        format!("{shown}:8: bad row \"\": empty line between rows"),
        format!("{shown}:11: case 1 appears twice, on lines 10 and 11: expected each case once"),
    ];
    assert_eq!(msgs.len(), expected.len(), "{msgs:#?}");
    for (msg, want) in msgs.iter().zip(&expected) {
        assert!(msg.starts_with(want.as_str()), "{msg}\n  wanted {want}");
    }
    assert!(msgs[0]
        .ends_with("expected `case,label`: a case id, a comma, and label 0 or 1 (no header row)"));
    let rows: Vec<(u32, bool)> = file.rows.values().map(|r| (r.id, r.label)).collect();
    assert_eq!(rows, [(0, true), (1, false), (2, false), (5, false)]);
}

#[test]
fn an_unreadable_label_csv_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nope.csv");
    let msg = read_labels(&path).expect_err("missing").to_string();
    assert!(
        msg.starts_with(&format!("{}: cannot read: ", path.display())),
        "{msg}"
    );
}

// ---- datasets --------------------------------------------------------------------------------

#[test]
fn a_valid_mrnet_dataset_round_trips() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    let dataset = Dataset::open(dir.path()).expect("open");
    assert_eq!(dataset.layout(), Layout::Mrnet);
    assert!(
        dataset.problems().is_empty(),
        "{:#?}",
        messages(dataset.problems())
    );
    assert!(dataset.is_usable());
    assert_eq!(dataset.splits(), [Split::Train, Split::Valid]);
    let ids: Vec<(Split, u32)> = dataset.exams().iter().map(|e| (e.split, e.id)).collect();
    assert_eq!(
        ids,
        [
            (Split::Train, 0),
            (Split::Train, 1),
            (Split::Train, 2),
            (Split::Valid, 1130),
            (Split::Valid, 1131)
        ]
    );
    let exam = dataset.exam(Split::Train, 1).expect("exam 0001");
    assert_eq!(exam.labels.get(Task::Abnormal), Some(true));
    assert_eq!(exam.labels.get(Task::Acl), Some(true));
    assert_eq!(exam.labels.get(Task::Meniscus), Some(false));
    let exam = dataset.exam(Split::Train, 0).expect("exam 0000");
    assert_eq!(exam.labels.get(Task::Meniscus), Some(false));
    assert_eq!(exam.name(), "0000");
    let coronal = exam.load(Plane::Coronal).expect("load");
    assert_eq!(
        (coronal.slices(), coronal.height(), coronal.width()),
        (18, 4, 4)
    );
    assert_eq!(
        exam.path(Plane::Sagittal),
        Some(dir.path().join("train/sagittal/0000.npy").as_path())
    );
    assert_eq!(exam.mask_path(Plane::Axial), None);
    assert_eq!(exam.load_mask(Plane::Axial).expect("no mask"), None);
    let valid = dataset.exam(Split::Valid, 1131).expect("exam 1131");
    assert_eq!(
        valid.load(Plane::Axial).expect("load").data[[0, 0, 0]],
        1131u32 as u8
    );
    assert!(dataset.exam(Split::Valid, 0).is_none());
    assert_eq!(dataset.label_sources().len(), 6);
    assert!(dataset.has_labels(Split::Valid, Task::Acl));
    let abnormal = &dataset.label_sources()[0];
    assert_eq!((abnormal.rows, abnormal.positives), (3, 2));

    let scan = dataset.scan_headers();
    assert!(scan.problems.is_empty());
    assert_eq!(scan.volumes.len(), 15);
}

#[test]
fn opening_reads_no_volume() {
    // Broken volumes do not stop opening: only the header scan or a load looks at them.
    let dir = tempfile::tempdir().expect("temp dir");
    write(&dir.path().join("axial/0000.npy"), b"not an npy");
    write(&dir.path().join("coronal/0000.npy"), b"");
    write(&dir.path().join("sagittal/0000.npy"), u8_volume(2, 2, 0));
    let dataset = Dataset::open(dir.path()).expect("open");
    assert!(
        dataset.problems().is_empty(),
        "{:#?}",
        messages(dataset.problems())
    );
    let exam = &dataset.exams()[0];
    assert!(exam.load(Plane::Axial).is_err());
    assert!(exam.load(Plane::Sagittal).is_ok());
    let scan = dataset.scan_headers();
    let msgs = messages(&scan.problems);
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(
        msgs[0].contains("axial/0000.npy: not a .npy file"),
        "{msgs:#?}"
    );
    assert!(
        msgs[1].contains("coronal/0000.npy: truncated header"),
        "{msgs:#?}"
    );
    assert!(scan.problems.iter().all(|p| p.severity == Severity::Error));
}

#[test]
fn a_missing_plane_file_leaves_the_exam_with_that_plane_unavailable() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    let gone = dir.path().join("train/coronal/0001.npy");
    fs::remove_file(&gone).expect("remove");
    let dataset = Dataset::open(dir.path()).expect("open");
    let msgs = messages(dataset.problems());
    assert_eq!(
        msgs,
        [format!(
            "{}: missing: case 0001 has other planes but no coronal volume; that plane is unavailable",
            gone.display()
        )]
    );
    assert_eq!(dataset.problems()[0].severity, Severity::Warning);
    assert!(dataset.is_usable());
    let exam = dataset.exam(Split::Train, 1).expect("exam stays");
    assert_eq!(
        exam.source(Plane::Coronal),
        &PlaneSource::Unavailable {
            expected: gone.clone(),
            reason: "no such file".into()
        }
    );
    assert_eq!(
        exam.available_planes().collect::<Vec<_>>(),
        [Plane::Axial, Plane::Sagittal]
    );
    let err = exam.load(Plane::Coronal).expect_err("unavailable");
    assert_eq!(
        err.to_string(),
        format!("{}: unavailable: no such file", gone.display())
    );
}

#[test]
fn a_missing_plane_folder_is_one_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    fs::remove_dir_all(dir.path().join("valid/sagittal")).expect("remove");
    let dataset = Dataset::open(dir.path()).expect("open");
    let msgs = messages(dataset.problems());
    assert_eq!(
        msgs,
        [format!(
            "{}: missing folder: the sagittal plane is unavailable for all 2 exams",
            dir.path().join("valid/sagittal").display()
        )]
    );
    let exam = dataset.exam(Split::Valid, 1130).expect("exam");
    assert!(matches!(
        exam.source(Plane::Sagittal),
        PlaneSource::Unavailable { reason, .. } if reason == "no sagittal folder"
    ));
}

#[test]
fn misnamed_files_in_plane_folders_are_ignored_and_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    let axial = dir.path().join("train/axial");
    for name in ["7.npy", "00007.npy", "0007.NPY", "notes.txt", ".DS_Store"] {
        write(&axial.join(name), u8_volume(1, 1, 0));
    }
    fs::create_dir(axial.join("0008.npy")).expect("folder named like an exam");
    let dataset = Dataset::open(dir.path()).expect("open");
    let msgs = messages(dataset.problems());
    let expected: Vec<String> = [
        (".DS_Store", "expected NNNN.npy (a 4-digit case id)"),
        ("00007.npy", "expected NNNN.npy (a 4-digit case id)"),
        ("0007.NPY", "expected NNNN.npy (a 4-digit case id)"),
        ("0008.npy", "not a file"),
        ("7.npy", "expected NNNN.npy (a 4-digit case id)"),
        ("notes.txt", "expected NNNN.npy (a 4-digit case id)"),
    ]
    .iter()
    .map(|(name, why)| format!("{}: ignored: {why}", axial.join(name).display()))
    .collect();
    assert_eq!(msgs, expected);
    assert!(dataset
        .problems()
        .iter()
        .all(|p| p.severity == Severity::Warning));
    assert_eq!(dataset.split_exams(Split::Train).count(), 3);
}

#[test]
fn labels_without_volumes_and_volumes_without_labels_are_warnings() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    // Case 9 is labelled but has no volumes; case 2 has volumes but no ACL label.
    write(&dir.path().join("train-acl.csv"), "0,0\n1,1\n9,1\n");
    write(
        &dir.path().join("train-abnormal.csv"),
        "0,1\n1,1\n2,0\n0009,1\n",
    );
    let dataset = Dataset::open(dir.path()).expect("open");
    let abnormal = dir.path().join("train-abnormal.csv");
    let acl = dir.path().join("train-acl.csv");
    let train = dir.path().join("train");
    assert_eq!(
        messages(dataset.problems()),
        [
            format!(
                "{}:4: case 0009 is labelled but has no volume in {}",
                abnormal.display(),
                train.display()
            ),
            format!(
                "{}: case 0002 has volumes but no row in this file",
                acl.display()
            ),
        ]
    );
    assert!(dataset.is_usable());
    assert_eq!(
        dataset
            .exam(Split::Train, 2)
            .expect("exam")
            .labels
            .get(Task::Acl),
        None
    );
}

#[test]
fn bad_csv_rows_and_duplicates_are_errors_in_the_dataset() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    write(
        &dir.path().join("valid-meniscus.csv"),
        "1130,0\n1131,maybe\n1130,1\n",
    );
    let dataset = Dataset::open(dir.path()).expect("open");
    let csv = dir.path().join("valid-meniscus.csv");
    let msgs = messages(dataset.problems());
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(msgs[0].starts_with(&format!(
        "{}:2: bad row \"1131,maybe\": label \"maybe\" is not 0 or 1",
        csv.display()
    )));
    assert_eq!(
        msgs[1],
        format!(
            "{}:3: case 1130 appears twice, on lines 1 and 3: expected each case once",
            csv.display()
        )
    );
    // The bad row's case then has no label, which is reported too.
    assert_eq!(
        msgs[2],
        format!(
            "{}: case 1131 has volumes but no row in this file",
            csv.display()
        )
    );
    assert_eq!(dataset.problems()[0].line, Some(2));
    assert_eq!(dataset.problems()[0].file.as_deref(), Some(csv.as_path()));
    assert_eq!(dataset.problems()[1].severity, Severity::Error);
    assert!(!dataset.is_usable());
    // The good rows are kept.
    let exam = dataset.exam(Split::Valid, 1130).expect("exam");
    assert_eq!(exam.labels.get(Task::Meniscus), Some(false));
}

#[test]
fn phantom_masks_are_attached_not_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    write(&dir.path().join("phantom.toml"), "seed = 1\n");
    let mask = write(
        &dir.path().join("train/masks/sagittal/0001.npy"),
        u8_volume(19, 4, 2),
    );
    write(
        &dir.path().join("train/masks/README"),
        "odd things in masks are not problems",
    );
    let dataset = Dataset::open(dir.path()).expect("open");
    assert!(
        dataset.problems().is_empty(),
        "{:#?}",
        messages(dataset.problems())
    );
    assert_eq!(dataset.split_exams(Split::Train).count(), 3);
    let exam = dataset.exam(Split::Train, 1).expect("exam");
    assert_eq!(exam.mask_path(Plane::Sagittal), Some(mask.as_path()));
    assert_eq!(exam.mask_path(Plane::Axial), None);
    let loaded = exam
        .load_mask(Plane::Sagittal)
        .expect("readable")
        .expect("a mask");
    assert_eq!(loaded.data[[0, 0, 0]], 2);
}

#[test]
fn a_flat_folder_without_labels() {
    let dir = tempfile::tempdir().expect("temp dir");
    for plane in ["axial", "coronal", "sagittal"] {
        for id in [3u32, 10] {
            write(
                &dir.path().join(plane).join(format!("{id:04}.npy")),
                u8_volume(20, 4, 0),
            );
        }
    }
    let dataset = Dataset::open(dir.path()).expect("open");
    assert_eq!(dataset.layout(), Layout::Flat);
    assert!(
        dataset.problems().is_empty(),
        "{:#?}",
        messages(dataset.problems())
    );
    assert_eq!(dataset.splits(), [Split::Flat]);
    let exam = dataset.exam(Split::Flat, 10).expect("exam");
    assert_eq!(exam.labels, Default::default());
    assert!(dataset.label_sources().is_empty());
    assert_eq!(exam.load(Plane::Axial).expect("load").slices(), 20);
}

#[test]
fn a_flat_folder_with_its_own_labels() {
    let dir = tempfile::tempdir().expect("temp dir");
    for plane in ["axial", "coronal", "sagittal"] {
        write(
            &dir.path().join(plane).join("0003.npy"),
            u8_volume(20, 4, 0),
        );
    }
    write(&dir.path().join("acl.csv"), "3,1\n");
    let dataset = Dataset::open(dir.path()).expect("open");
    assert!(
        dataset.problems().is_empty(),
        "{:#?}",
        messages(dataset.problems())
    );
    let exam = dataset.exam(Split::Flat, 3).expect("exam");
    assert_eq!(exam.labels.get(Task::Acl), Some(true));
    assert_eq!(exam.labels.get(Task::Meniscus), None);
    assert!(dataset.has_labels(Split::Flat, Task::Acl));
    assert!(!dataset.has_labels(Split::Flat, Task::Meniscus));
}

#[test]
fn pointing_at_mrnet_valid_uses_the_csvs_beside_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    let valid = dir.path().join("valid");
    let dataset = Dataset::open(&valid).expect("open");
    assert_eq!(dataset.layout(), Layout::Flat);
    assert!(
        dataset.problems().is_empty(),
        "{:#?}",
        messages(dataset.problems())
    );
    assert_eq!(dataset.exams().len(), 2);
    let exam = dataset.exam(Split::Flat, 1130).expect("exam");
    assert_eq!(exam.labels.get(Task::Acl), Some(true));
    assert_eq!(
        dataset.label_sources()[0].path,
        dir.path().join("valid-abnormal.csv")
    );
    // A local CSV wins over the one beside, which is reported as ignored.
    write(&valid.join("acl.csv"), "1130,0\n1131,0\n");
    let dataset = Dataset::open(&valid).expect("open");
    assert_eq!(
        messages(dataset.problems()),
        [format!(
            "{}: ignored: {} takes precedence",
            dir.path().join("valid-acl.csv").display(),
            valid.join("acl.csv").display()
        )]
    );
    let exam = dataset.exam(Split::Flat, 1130).expect("exam");
    assert_eq!(exam.labels.get(Task::Acl), Some(false));
}

#[test]
fn a_missing_folder_and_a_folder_without_exams_are_hard_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nowhere");
    let err = Dataset::open(&missing).expect_err("missing");
    assert!(matches!(err, DatasetError::NotFound { .. }));
    assert_eq!(
        err.to_string(),
        format!("dataset folder {} does not exist", missing.display())
    );

    let file = write(&dir.path().join("file"), "x");
    let err = Dataset::open(&file).expect_err("a file");
    assert!(err
        .to_string()
        .ends_with("is not a folder: expected a dataset folder"));

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    let err = Dataset::open(&empty).expect_err("empty");
    assert!(matches!(err, DatasetError::NoExams { .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "no exams in {0}: expected {0}/{{train,valid}}/{{axial,coronal,sagittal}}/NNNN.npy",
            empty.display()
        )),
        "{msg}"
    );

    // Plane folders holding only misnamed files: still no exams, and the reason is shown.
    write(&empty.join("train/axial/1.npy"), u8_volume(1, 1, 0));
    let msg = Dataset::open(&empty).expect_err("no exams").to_string();
    assert!(
        msg.contains("train/axial/1.npy: ignored: expected NNNN.npy"),
        "{msg}"
    );
}

#[test]
fn only_one_split_present() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    fs::remove_dir_all(dir.path().join("train")).expect("remove");
    let dataset = Dataset::open(dir.path()).expect("open");
    let msgs = messages(dataset.problems());
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert!(msgs[0].ends_with(&format!(
        "train-abnormal.csv: labels for 3 cases but no exams in {}",
        dir.path().join("train").display()
    )));
    assert!(dataset.is_usable());
}

// ---- kneecam dataset summary ---------------------------------------------------------------

#[test]
fn summary_of_a_good_dataset_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    write(
        &dir.path().join("valid/axial/1132.npy"),
        npy_bytes(1, &dict("<i2", "(20, 3, 5)"), &[0; 20 * 3 * 5 * 2]),
    );
    let out = kneecam()
        .args(["dataset", "summary"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"(?m)^split\s+exams\s+axial\s+coronal\s+sagittal\s+masks$")
                .expect("re"),
        )
        .stdout(predicate::str::is_match(r"(?m)^train\s+3\s+3\s+3\s+3\s+0$").expect("re"))
        .stdout(predicate::str::is_match(r"(?m)^valid\s+3\s+3\s+2\s+2\s+0$").expect("re"))
        .stdout(
            predicate::str::is_match(r"(?m)^train-abnormal\.csv\s+3\s+3\s+2 \(66\.7%\)$")
                .expect("re"),
        )
        .stdout(
            predicate::str::is_match(r"(?m)^train/axial\s+3\s+17–19\s+4×4\s+uint8$").expect("re"),
        )
        .stdout(
            predicate::str::is_match(
                r"(?m)^valid/axial\s+3\s+17–20\s+4×4 \(2\), 3×5 \(1\)\s+uint8 \(2\), int16 \(1\)$",
            )
            .expect("re"),
        )
        .stdout(predicate::str::contains(
            "note     valid/axial: in-plane size is not MRNet's 256×256 for all 3 volumes",
        ))
        .stdout(predicate::str::contains(
            "note     valid/axial: not uint8, min-max scaled to 0–255 per series on load: \
             1 of 3 volumes: 1132 int16",
        ))
        .stdout(predicate::str::contains("problems 0 errors, "))
        .stdout(predicate::str::contains("usable: yes"));
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("case 1132 has volumes but no row in this file"),
        "{text}"
    );
}

#[test]
fn summary_of_a_broken_dataset_lists_the_problems_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    mrnet_dataset(dir.path());
    write(&dir.path().join("train-acl.csv"), "0,0\n1,1\n2,x\n");
    let mut short = u8_volume(18, 4, 0);
    short.truncate(200);
    write(&dir.path().join("train/coronal/0000.npy"), short);
    write(&dir.path().join("train/sagittal/0002.npy.bak"), "x");
    kneecam()
        .args(["dataset", "summary"])
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("problems 2 errors, 2 warnings"))
        .stdout(predicate::str::contains("train-acl.csv:3: bad row \"2,x\""))
        .stdout(predicate::str::contains(
            "train/coronal/0000.npy: truncated: shape (18, 4, 4) of uint8 needs 288 bytes of data after the 128-byte header, the file has 72",
        ))
        .stdout(predicate::str::contains(
            "case 0002 has volumes but no row in this file",
        ))
        .stdout(predicate::str::contains("0002.npy.bak: ignored"))
        .stdout(predicate::str::is_match(r"(?m)^train/coronal\s+2\s").expect("re"))
        .stdout(predicate::str::contains("usable: no (2 errors)"));
}

#[test]
fn summary_of_a_missing_folder_fails_with_its_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    kneecam()
        .args(["dataset", "summary"])
        .arg(dir.path().join("nowhere"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nowhere does not exist"));
}
