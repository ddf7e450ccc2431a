//! `kneecam review summary|export|merge` on real review databases (built through the store,
//! hand-made verdicts) in temporary folders, through the real binary.
use std::path::Path;

use assert_cmd::Command;
use kneecam::data::dataset::Dataset;
use kneecam::data::npy::write_u8_volume;
use kneecam::data::{Split, Task};
use kneecam::review::sqlite::SqliteStore;
use kneecam::review::{DatasetRef, ReviewStore, Truth, Undo, Verdict};
use ndarray::Array3;
use predicates::prelude::*;

mod merge;

fn kneecam(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kneecam").expect("kneecam binary");
    cmd.env("KNEECAM_DATA_DIR", home.join("data"))
        .env("KNEECAM_CACHE_DIR", home.join("cache"))
        .env("KNEECAM_CONFIG_DIR", home.join("config"));
    cmd
}

fn dataset_ref(name: &str) -> DatasetRef {
    DatasetRef {
        fingerprint: format!("sha256:{name}"),
        path: format!("/data/{name}"),
    }
}

/// `reader`'s verdict on train exam `exam` for `task`, recorded at `at` ms; the model called
/// it positive.
fn verdict(reader: &str, exam: u32, task: Task, truth: Truth, at: i64) -> Verdict {
    Verdict {
        uid: format!("{reader}-{exam:04}-{task}-{at}"),
        dataset: dataset_ref("cohort"),
        split: Split::Train,
        exam: format!("{exam:04}"),
        task,
        reader: reader.into(),
        truth,
        note: None,
        probability: Some(0.75),
        model_call: Some(true),
        threshold: 0.5,
        label: None,
        models_fingerprint: "sha256:models".into(),
        method: "gradcam".into(),
        seconds: 12.0,
        recorded_at: at,
    }
}

/// A review database at `path` holding `verdicts`.
fn database(path: &Path, verdicts: &[Verdict]) {
    let mut store = SqliteStore::open(path).expect("create the database");
    for v in verdicts {
        store.record(v).expect("record");
    }
}

/// Two readers on 50 acl cases, the textbook table: yes/yes 20, yes/no 5, no/yes 10, no/no 15
/// (p_o 0.70, κ 0.40).
fn textbook() -> Vec<Verdict> {
    let (p, n) = (Truth::Positive, Truth::Negative);
    let mut verdicts = Vec::new();
    let mut exam = 0;
    for (a, b, count) in [(p, p, 20), (p, n, 5), (n, p, 10), (n, n, 15)] {
        for _ in 0..count {
            verdicts.push(verdict("ann", exam, Task::Acl, a, 1_000));
            verdicts.push(verdict("bob", exam, Task::Acl, b, 1_000));
            exam += 1;
        }
    }
    verdicts
}

fn stdout_of(cmd: &mut Command) -> String {
    let output = cmd.output().expect("run kneecam");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed: {stderr}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A small MRNet-layout dataset: train 0000–0002, all three planes, acl labels 1, 0, 0.
fn mrnet_dataset(root: &Path) -> DatasetRef {
    for id in 0..3u32 {
        for plane in ["axial", "coronal", "sagittal"] {
            let dir = root.join("train").join(plane);
            std::fs::create_dir_all(&dir).expect("folder");
            let volume =
                Array3::from_shape_fn((20, 8, 8), |(s, r, c)| (s + r + c + id as usize) as u8);
            write_u8_volume(&dir.join(format!("{id:04}.npy")), &volume).expect("write exam");
        }
    }
    std::fs::write(root.join("train-acl.csv"), "0,1\n1,0\n2,0\n").expect("labels");
    DatasetRef::of(&Dataset::open(root).expect("open the dataset"))
}

#[test]
fn summary_prints_kappa_agreement_and_disagreements() {
    let home = tempfile::tempdir().expect("temp dir");
    let reviews = home.path().join("reviews.sqlite");
    database(&reviews, &textbook());
    let out = stdout_of(
        kneecam(home.path())
            .args(["review", "summary", "--reviews"])
            .arg(&reviews),
    );
    assert!(
        out.contains("dataset  /data/cohort  sha256:cohort"),
        "{out}"
    );
    assert!(
        out.contains("κ ann / bob: 0.400 (n 50, observed agreement 0.700)"),
        "{out}"
    );
    // ann said positive 25 times, the model every time.
    let ann = out
        .lines()
        .find(|l| l.trim_start().starts_with("ann "))
        .expect("ann's row");
    assert!(ann.contains("0.500 (25/50)"), "{ann}");
    assert!(ann.contains("12.0"), "{ann}");
    assert!(out.contains("disagreements (15):"), "{out}");
    assert!(
        out.contains("0020 train acl: ann positive, bob negative"),
        "{out}"
    );
    assert!(!out.contains("0000 train acl:"), "{out}");
}

#[test]
fn undone_and_superseded_verdicts_are_not_counted() {
    let home = tempfile::tempdir().expect("temp dir");
    let reviews = home.path().join("reviews.sqlite");
    let undone = verdict("ann", 2, Task::Acl, Truth::Positive, 1_000);
    database(
        &reviews,
        &[
            verdict("ann", 1, Task::Acl, Truth::Positive, 1_000),
            // ann changed her mind: only this one counts.
            verdict("ann", 1, Task::Acl, Truth::Negative, 2_000),
            verdict("bob", 1, Task::Acl, Truth::Negative, 1_500),
            undone.clone(),
            verdict("bob", 2, Task::Acl, Truth::Negative, 1_500),
        ],
    );
    SqliteStore::open(&reviews)
        .expect("open")
        .undo(&Undo {
            verdict_uid: undone.uid,
            reader: "ann".into(),
            undone_at: 3_000,
        })
        .expect("undo");
    let out = stdout_of(
        kneecam(home.path())
            .args(["review", "summary", "--reviews"])
            .arg(&reviews),
    );
    let ann = out
        .lines()
        .find(|l| l.trim_start().starts_with("ann "))
        .expect("ann's row");
    let cells: Vec<&str> = ann.split_whitespace().collect();
    assert_eq!(&cells[..5], ["ann", "1", "0", "1", "0"], "{out}");
    assert!(
        out.contains("κ ann / bob: n/a (n 1, observed agreement 1.000)"),
        "{out}"
    );
    assert!(!out.contains("disagreements"), "{out}");
}

#[test]
fn summary_with_data_counts_against_the_dataset_and_its_current_labels() {
    let home = tempfile::tempdir().expect("temp dir");
    let data = home.path().join("cohort");
    let reference = mrnet_dataset(&data);
    let on = |mut v: Verdict| {
        v.dataset = reference.clone();
        v
    };
    // Recorded with label negative; the dataset now says 1 for case 0.
    let mut first = on(verdict("ann", 0, Task::Acl, Truth::Positive, 1_000));
    first.label = Some(false);
    let mut elsewhere = verdict("ann", 1, Task::Acl, Truth::Positive, 1_000);
    elsewhere.dataset = dataset_ref("other");
    let reviews = home.path().join("reviews.sqlite");
    database(
        &reviews,
        &[
            first,
            on(verdict("ann", 1, Task::Acl, Truth::Negative, 1_000)),
            elsewhere,
        ],
    );
    let out = stdout_of(
        kneecam(home.path())
            .args(["review", "summary", "--reviews"])
            .arg(&reviews)
            .arg("--data")
            .arg(&data),
    );
    assert!(out.contains(&reference.fingerprint), "{out}");
    assert!(!out.contains("sha256:other"), "{out}");
    let ann = out
        .lines()
        .find(|l| l.trim_start().starts_with("ann "))
        .expect("ann's row");
    let cells: Vec<&str> = ann.split_whitespace().collect();
    assert_eq!(&cells[..5], ["ann", "2/3", "1", "1", "0"], "{out}");
    // Against the model (positive both times): 1 of 2; against the labels now: 2 of 2.
    assert!(
        ann.contains("0.500 (1/2)") && ann.contains("1.000 (2/2)"),
        "{ann}"
    );
}

#[test]
fn the_default_database_is_in_the_data_folder() {
    let home = tempfile::tempdir().expect("temp dir");
    database(
        &home.path().join("data/reviews.sqlite"),
        &[verdict("ann", 1, Task::Meniscus, Truth::Unsure, 1_000)],
    );
    let out = stdout_of(kneecam(home.path()).args(["review", "summary"]));
    assert!(out.contains("meniscus"), "{out}");
}

#[test]
fn csv_export_keeps_the_latest_verdict_and_quotes_notes() {
    let home = tempfile::tempdir().expect("temp dir");
    let reviews = home.path().join("reviews.sqlite");
    let mut latest = verdict("ann", 1, Task::Acl, Truth::Negative, 1_796_126_661_123);
    latest.note = Some("intact, \"probably\"\nrecheck".into());
    database(
        &reviews,
        &[verdict("ann", 1, Task::Acl, Truth::Positive, 1_000), latest],
    );
    let out = home.path().join("verdicts.csv");
    let printed = stdout_of(
        kneecam(home.path())
            .args(["review", "export", "--reviews"])
            .arg(&reviews)
            .arg("--out")
            .arg(&out),
    );
    assert!(printed.contains("1 verdicts written"), "{printed}");
    let text = std::fs::read_to_string(&out).expect("read the export");
    assert_eq!(
        text,
        "uid,dataset_fingerprint,dataset_path,split,exam,task,reader,verdict,note,probability,\
         model_call,threshold,label,models_fingerprint,method,seconds,recorded_at\n\
         ann-0001-acl-1796126661123,sha256:cohort,/data/cohort,train,0001,acl,ann,negative,\
         \"intact, \"\"probably\"\"\nrecheck\",0.75,positive,0.5,,sha256:models,gradcam,12,\
         2026-12-01T12:04:21.123Z\n"
    );
    // Refused without --force, the file left as it was; replaced with it.
    std::fs::write(&out, "mine").expect("write");
    kneecam(home.path())
        .args(["review", "export", "--reviews"])
        .arg(&reviews)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(out.display().to_string())
                .and(predicate::str::contains("--force")),
        );
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "mine");
    kneecam(home.path())
        .args(["review", "export", "--force", "--reviews"])
        .arg(&reviews)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&out).expect("read"), text);
}

#[test]
fn mrnet_export_is_a_label_file_kneecam_reads() {
    let home = tempfile::tempdir().expect("temp dir");
    let reviews = home.path().join("reviews.sqlite");
    let (p, n, u) = (Truth::Positive, Truth::Negative, Truth::Unsure);
    let mut verdicts = Vec::new();
    for (exam, truths) in [
        (12, [p, p, p]), // unanimous
        (3, [n, n, u]),  // unanimous
        (7, [p, n, p]),  // majority
        (4, [p, n, u]),  // tie
        (5, [u, u, u]),  // unsure only
    ] {
        for (reader, truth) in ["ann", "bob", "cat"].into_iter().zip(truths) {
            verdicts.push(verdict(reader, exam, Task::Acl, truth, 1_000));
        }
    }
    verdicts.push(verdict("ann", 9, Task::Meniscus, p, 1_000));
    database(&reviews, &verdicts);
    let out = home.path().join("train-acl.csv");
    let printed = stdout_of(
        kneecam(home.path())
            .args([
                "review",
                "export",
                "--format",
                "mrnet",
                "--task",
                "acl",
                "--reviews",
            ])
            .arg(&reviews)
            .arg("--out")
            .arg(&out),
    );
    assert!(
        printed.contains(
            "acl: 3 cases written (2 unanimous, 1 by majority), 1 tie and 1 unsure-only left out"
        ),
        "{printed}"
    );
    let bytes = std::fs::read(&out).expect("read");
    assert_eq!(String::from_utf8_lossy(&bytes), "0003,0\n0007,1\n0012,1\n");
    let labels = kneecam::data::labels::parse_labels(&out, &bytes);
    assert!(labels.errors.is_empty(), "{:?}", labels.errors);
    assert_eq!((labels.len(), labels.positives()), (3, 2));

    // Without --task, a folder of {task}.csv.
    let folder = home.path().join("labels");
    stdout_of(
        kneecam(home.path())
            .args(["review", "export", "--format", "mrnet", "--reviews"])
            .arg(&reviews)
            .arg("--out")
            .arg(&folder),
    );
    assert_eq!(listing(&folder), ["acl.csv", "meniscus.csv"]);
    assert_eq!(
        std::fs::read_to_string(folder.join("meniscus.csv")).expect("read"),
        "0009,1\n"
    );
}

#[test]
fn mrnet_export_refuses_mixed_datasets_without_data() {
    let home = tempfile::tempdir().expect("temp dir");
    let data = home.path().join("cohort");
    let reference = mrnet_dataset(&data);
    let mut ours = verdict("ann", 1, Task::Acl, Truth::Positive, 1_000);
    ours.dataset = reference.clone();
    let reviews = home.path().join("reviews.sqlite");
    database(
        &reviews,
        &[ours, verdict("ann", 2, Task::Acl, Truth::Negative, 1_000)],
    );
    let out = home.path().join("acl.csv");
    let export = |data: Option<&Path>| {
        let mut cmd = kneecam(home.path());
        cmd.args([
            "review",
            "export",
            "--format",
            "mrnet",
            "--task",
            "acl",
            "--reviews",
        ])
        .arg(&reviews)
        .arg("--out")
        .arg(&out);
        if let Some(data) = data {
            cmd.arg("--data").arg(data);
        }
        cmd
    };
    export(None).assert().code(2).stderr(
        predicate::str::contains("pass --data")
            .and(predicate::str::contains("sha256:cohort"))
            .and(predicate::str::contains(&reference.fingerprint))
            .and(predicate::str::contains(data.display().to_string())),
    );
    assert!(!out.exists());
    export(Some(&data)).assert().success();
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "0001,1\n");
    // Never into the dataset folder.
    kneecam(home.path())
        .args([
            "review",
            "export",
            "--format",
            "mrnet",
            "--task",
            "acl",
            "--reviews",
        ])
        .arg(&reviews)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(data.join("train-acl.csv"))
        .assert()
        .code(2);
    assert_eq!(
        std::fs::read_to_string(data.join("train-acl.csv")).expect("read"),
        "0,1\n1,0\n2,0\n"
    );
}
