//! Faults and hostile paths, with real parts: outputs aimed inside a dataset or models folder
//! (the binary refuses them and writes nothing there), a full and a read-only file system (a
//! real tmpfs, see `support/small_disk.rs`) under `cam`, `precompute`, the explorer's export
//! and its CAM store, and exam files that disappear or change while the explorer is open.
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Mutex;

use kneecam::config::Config;
use kneecam::data::dataset::Dataset;
use kneecam::data::Plane;
use kneecam::model::loaded::LoadError;
use kneecam::model::manifest::Manifest;
use kneecam::tui::action::Action;
use kneecam::tui::{Driver, Event};
use predicates::str::contains;

#[path = "support/binary.rs"]
mod binary;
use binary::kneecam;
use ratatui_image::picker::Picker;

#[path = "support/small_disk.rs"]
mod small_disk;
use small_disk::SmallDisk;

#[path = "support/explorer.rs"]
mod support;
use support::{own_cohort, PATIENCE};

#[path = "faults/reviews.rs"]
mod reviews;

/// libtorch is seeded and threaded per process: one real-engine test at a time.
static ENGINE: Mutex<()> = Mutex::new(());

/// A copy of the demo models folder (so that a failing refusal cannot write into the repo).
fn own_models(root: &Path) -> PathBuf {
    let from = kneecam::cli::demo::default_models();
    let to = root.join("models");
    std::fs::create_dir_all(&to).expect("models folder");
    for entry in std::fs::read_dir(&from).expect("demo models").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    to
}

/// Every path under `dir`, sorted, with sizes: to see that nothing was written there.
fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("listing").flatten() {
            let path = entry.path();
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push((path, size));
        }
    }
    found.sort();
    found
}

#[test]
fn outputs_inside_the_dataset_or_models_folder_are_refused_and_nothing_is_written() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let models = own_models(home.path());
    let before = (listing(&data), listing(&models));
    let exam = data.join("valid/sagittal/0000.npy");
    let dotted = home
        .path()
        .join("elsewhere/../cohorts")
        .join(data.file_name().expect("name"));
    let attempts: Vec<(Vec<String>, &str)> = vec![
        (
            args(
                &["predict", "--data"],
                &data,
                &models,
                &["--out"],
                &data.join("p.csv"),
            ),
            "--out",
        ),
        (
            args(
                &["predict", "--data"],
                &data,
                &models,
                &["--cache"],
                &models.join("cams"),
            )
            .into_iter()
            .chain([
                "--out".into(),
                home.path().join("p.csv").display().to_string(),
            ])
            .collect(),
            "--cache",
        ),
        (
            args(
                &["precompute", "--data"],
                &data,
                &models,
                &["--cache"],
                &dotted.join("c"),
            ),
            "--cache",
        ),
        (
            args(
                &["eval-cam", "--data"],
                &data,
                &models,
                &["--out"],
                &models.join("r.json"),
            ),
            "--out",
        ),
        (
            args(
                &["view", "--data"],
                &data,
                &models,
                &["--cache"],
                &data.join("valid/store"),
            ),
            "--cache",
        ),
        (
            vec![
                "cam".into(),
                "--model".into(),
                format!("{}:acl:sagittal", models.display()),
                "--exam".into(),
                exam.display().to_string(),
                "--out".into(),
                data.join("cams").display().to_string(),
            ],
            "--out",
        ),
        (
            vec![
                "demo".into(),
                "--print".into(),
                "--models".into(),
                models.display().to_string(),
                "--out".into(),
                models.join("pictures").display().to_string(),
            ],
            "--out",
        ),
        (
            vec![
                "train".into(),
                "--data".into(),
                data.display().to_string(),
                "--task".into(),
                "acl".into(),
                "--plane".into(),
                "sagittal".into(),
                "--out".into(),
                data.join("trained").display().to_string(),
            ],
            "--out",
        ),
    ];
    for (argv, flag) in attempts {
        let assert = kneecam(home.path()).args(&argv).assert().code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert!(
            stderr.contains(flag)
                && (stderr.contains("inside the dataset folder")
                    || stderr.contains("inside the models folder"))
                && stderr.contains("never writes into a dataset or models folder"),
            "{argv:?}:\n{stderr}"
        );
    }
    assert_eq!(
        (listing(&data), listing(&models)),
        before,
        "nothing written"
    );
}

fn args(head: &[&str], data: &Path, models: &Path, flag: &[&str], target: &Path) -> Vec<String> {
    let mut argv: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    argv.push(data.display().to_string());
    argv.push("--models".into());
    argv.push(models.display().to_string());
    argv.extend(flag.iter().map(|s| s.to_string()));
    argv.push(target.display().to_string());
    argv
}

fn no_temporary_files(disk: &SmallDisk) {
    let contents = disk.contents();
    assert!(
        contents.iter().all(|name| !name.contains(".tmp")),
        "half-written files left: {contents:?}"
    );
}

#[test]
fn cam_on_a_full_disk_fails_naming_the_file_and_leaves_no_half_written_file() {
    let Some(disk) = SmallDisk::mount(512) else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    disk.fill();
    let out = disk.path().join("out");
    kneecam(home.path())
        .args([
            "cam",
            "--png",
            "--model",
            "models/demo:acl:sagittal",
            "--exam",
        ])
        .arg(data.join("valid/sagittal/0000.npy"))
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(contains("No space left on device"))
        .stderr(contains(out.display().to_string()));
    no_temporary_files(&disk);
}

#[test]
fn precompute_into_a_full_or_read_only_store_fails_clearly_and_leaves_no_partial_entry() {
    let Some(disk) = SmallDisk::mount(512) else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let store = disk.path().join("store");
    let precompute = |expect: &str| {
        kneecam(home.path())
            .args([
                "precompute",
                "--methods",
                "cam",
                "--models",
                "models/demo",
                "--data",
            ])
            .arg(&data)
            .arg("--cache")
            .arg(&store)
            .assert()
            .code(1)
            .stderr(contains(expect))
            .stderr(contains(store.display().to_string()));
    };
    disk.fill();
    precompute("No space left on device");
    no_temporary_files(&disk);
    disk.make_read_only();
    precompute("Read-only file system");
}

// ---------------------------------------------------------------- the explorer

/// The explorer (real engine, demo models, halfblocks) on `data`, settled on the first exam.
fn explorer(
    data: &Path,
    config: Config,
    root: &Path,
    store: Option<&Path>,
) -> (Driver, Receiver<Event>) {
    let session = support::session(data, config, root, store);
    support::start(session, Picker::halfblocks(), (120, 40))
}

fn screen(driver: &Driver) -> String {
    support::text(&support::draw(driver))
}

fn export(driver: &mut Driver, inbox: &Receiver<Event>) -> Result<String, String> {
    driver.act(Action::Export);
    loop {
        match inbox.recv_timeout(PATIENCE).expect("an export result") {
            Event::Exported(outcome) => {
                let said = outcome
                    .as_ref()
                    .map(String::clone)
                    .map_err(|e| e.to_string());
                driver.handle(Event::Exported(outcome));
                return said;
            }
            other => driver.handle(other),
        }
    }
}

fn next_patient_works(driver: &mut Driver, inbox: &Receiver<Event>) {
    let before = driver.app().current();
    driver.act(Action::NextPatient);
    driver.settle(inbox, PATIENCE).expect("settles");
    assert_ne!(driver.app().current(), before, "moved on");
    assert!(
        driver.app().explanation(Plane::Sagittal).is_some(),
        "the next exam's CAM is computed"
    );
}

#[test]
fn export_to_a_full_then_read_only_disk_is_an_error_and_the_explorer_goes_on() {
    let Some(disk) = SmallDisk::mount(512) else {
        return;
    };
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let mut config = Config::defaults();
    config.export_folder = Some(disk.path().join("exports"));
    let (mut driver, inbox) = explorer(&data, config, home.path(), None);

    disk.fill();
    let full = export(&mut driver, &inbox).expect_err("the disk is full");
    assert!(full.contains("No space left on device"), "{full}");
    assert!(screen(&driver).contains("No space left on device"));
    no_temporary_files(&disk);
    next_patient_works(&mut driver, &inbox);

    disk.make_read_only();
    let read_only = export(&mut driver, &inbox).expect_err("read-only");
    assert!(read_only.contains("Read-only file system"), "{read_only}");
    next_patient_works(&mut driver, &inbox);
}

#[test]
fn a_cam_store_on_a_full_disk_is_passed_over_and_the_cams_still_show() {
    let Some(disk) = SmallDisk::mount(512) else {
        return;
    };
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let store = disk.path().join("store");
    std::fs::create_dir_all(&store).expect("store folder");
    disk.fill();
    let (mut driver, inbox) = explorer(&data, Config::defaults(), home.path(), Some(&store));
    assert!(driver.app().explanation(Plane::Sagittal).is_some());
    next_patient_works(&mut driver, &inbox);
    no_temporary_files(&disk);
}

#[test]
fn exam_files_that_disappear_or_change_while_open_show_an_error_and_the_others_work() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let (mut driver, inbox) = explorer(&data, Config::defaults(), home.path(), None);
    assert_eq!(driver.app().current(), Some(0));
    let sagittal = |id: &str| data.join("valid/sagittal").join(format!("{id}.npy"));
    std::fs::remove_file(sagittal("0003")).expect("delete");
    std::fs::write(sagittal("0005"), b"PK\x03\x04 not an array any more").expect("overwrite");

    for case in 1..8 {
        driver.act(Action::NextPatient);
        driver.settle(&inbox, PATIENCE).expect("settles");
        assert_eq!(driver.app().current(), Some(case));
        let volume = driver.app().series(case, Plane::Sagittal).expect("read");
        let text = screen(&driver);
        match case {
            3 => {
                let err = volume.as_ref().expect_err("gone").to_string();
                assert!(
                    err.contains("0003.npy") && err.contains("No such file"),
                    "{err}"
                );
                assert!(text.contains("0003.npy: cannot read"), "{text}");
            }
            5 => {
                let err = volume.as_ref().expect_err("changed").to_string();
                assert!(
                    err.contains("0005.npy") && err.contains("not a .npy file"),
                    "{err}"
                );
                assert!(text.contains("0005.npy: not a .npy"), "{text}");
            }
            _ => {
                assert!(volume.is_ok(), "exam {case}");
                assert!(
                    driver.app().explanation(Plane::Sagittal).is_some(),
                    "exam {case}"
                );
            }
        }
        // The other planes of a damaged exam still work.
        if case == 3 {
            driver.act(Action::NextPlane);
            driver.settle(&inbox, PATIENCE).expect("settles");
            assert!(driver
                .app()
                .visible_planes()
                .iter()
                .any(|p| { driver.app().explanation(*p).is_some() }));
            // Round the plane tabs back to sagittal.
            driver.act(Action::NextPlane);
            driver.act(Action::NextPlane);
        }
    }
}

// ---------------------------------------------------------------- escape sequences in files

const CLEAR_SCREEN: &str = "\u{1b}[2J\u{1b}]0;owned\u{7}";

/// A safetensors file of zero-filled f32 tensors.
fn safetensors(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<usize>() * 4;
        header.insert(
            name.to_string(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes] }),
        );
        offset += bytes;
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.resize(file.len() + offset, 0);
    std::fs::write(path, file).expect("write");
}

fn assert_no_escape(output: &[u8], context: &str) {
    let text = String::from_utf8_lossy(output);
    assert!(
        !output.contains(&0x1b) && !output.contains(&0x07),
        "{context}: raw control bytes reach the terminal: {text:?}"
    );
}

#[test]
fn escape_sequences_inside_files_are_printed_escaped_not_obeyed() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let weights = home.path().join("evil.safetensors");
    let evil = format!("features.0.weight{CLEAR_SCREEN}");
    safetensors(
        &weights,
        &[
            ("classifier.weight", vec![2, 256]),
            ("classifier.bias", vec![2]),
            (&evil, vec![1]),
        ],
    );
    let assert = kneecam(home.path())
        .args(["cam", "--model"])
        .arg(&weights)
        .arg("--exam")
        .arg(data.join("valid/sagittal/0000.npy"))
        .arg("--out")
        .arg(home.path().join("out"))
        .assert()
        .code(2);
    let output = assert.get_output();
    assert_no_escape(&output.stderr, "a tensor name");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("\\u{1b}[2J"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    std::fs::write(
        data.join("valid-acl.csv"),
        format!("0000,1\n0001{CLEAR_SCREEN},0\n"),
    )
    .expect("labels");
    let summary = kneecam(home.path())
        .args(["dataset", "summary"])
        .arg(&data)
        .output()
        .expect("runs");
    assert_no_escape(&summary.stdout, "a CSV cell (stdout)");
    assert_no_escape(&summary.stderr, "a CSV cell (stderr)");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&summary.stdout),
        String::from_utf8_lossy(&summary.stderr)
    );
    assert!(all.contains("valid-acl.csv"), "{all}");
}

#[test]
fn an_escape_sequence_in_an_engine_error_never_reaches_a_screen_cell() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let mut session = support::session(&data, Config::defaults(), home.path(), None);
    session.loader = Box::new(|_, _| {
        Err(LoadError::Other(format!(
            "unexpected key features{CLEAR_SCREEN}"
        )))
    });
    let (driver, _inbox) = support::start(session, Picker::halfblocks(), (120, 40));
    let buffer = support::draw(&driver);
    let text = screen(&driver);
    assert!(text.contains("unexpected key features"), "{text}");
    for cell in buffer.content() {
        assert!(
            !cell.symbol().contains(char::is_control),
            "a control character in a cell: {:?}",
            cell.symbol()
        );
    }
}

// ---------------------------------------------------------------- oversized files

#[test]
fn oversized_manifests_configs_labels_and_exam_files_are_refused_without_reading_them_whole() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let models = own_models(home.path());
    let pad = |path: &Path, bytes: u64| {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open");
        let len = file.metadata().expect("metadata").len();
        file.set_len(len + bytes).expect("grow (sparse)");
    };

    pad(&models.join("manifest.toml"), 2 << 20);
    let err = Manifest::load(&models).expect_err("too big").to_string();
    assert!(
        err.contains("manifest.toml") && err.contains("larger than 1048576 bytes"),
        "{err}"
    );

    let config = home.path().join("big.toml");
    std::fs::write(&config, "").expect("config");
    pad(&config, 2 << 20);
    kneecam(home.path())
        .args(["view", "--models", "models/demo", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .assert()
        .code(2)
        .stderr(contains("big.toml"))
        .stderr(contains("larger than 1048576 bytes"));

    let labels = data.join("valid-acl.csv");
    pad(&labels, 65 << 20);
    let err = kneecam::data::labels::read_labels(&labels)
        .expect_err("too big")
        .to_string();
    assert!(
        err.contains("valid-acl.csv") && err.contains("larger than"),
        "{err}"
    );

    let dataset = Dataset::open(&data).expect("opens");
    let exam = &dataset.exams()[0];
    pad(&data.join("valid/sagittal/0000.npy"), 1 << 30);
    let err = exam
        .load_hashed(Plane::Sagittal)
        .expect_err("trailing bytes")
        .to_string();
    assert!(
        err.contains("0000.npy") && err.contains("1073741824 unexpected bytes"),
        "{err}"
    );
}
