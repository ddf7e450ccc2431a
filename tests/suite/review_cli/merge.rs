//! `kneecam review merge`, and files that are not review databases given to every command.
use std::path::PathBuf;

use kneecam::data::Task;
use kneecam::review::sqlite::SqliteStore;
use kneecam::review::{ReviewStore, Truth};
use predicates::prelude::*;

use super::{database, kneecam, listing, stdout_of, verdict};

#[test]
fn merge_keeps_a_shared_verdict_once_and_the_latest_wins() {
    let home = tempfile::tempdir().expect("temp dir");
    let inputs = home.path().join("inputs");
    let (a, b) = (inputs.join("a.sqlite"), inputs.join("b.sqlite"));
    let shared = verdict("bob", 1, Task::Acl, Truth::Positive, 1_000);
    database(
        &a,
        &[
            verdict("ann", 1, Task::Acl, Truth::Positive, 1_000),
            shared.clone(),
        ],
    );
    database(
        &b,
        &[shared, verdict("ann", 1, Task::Acl, Truth::Negative, 2_000)],
    );
    let before = (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    let merged_dir = home.path().join("merged");
    let into = merged_dir.join("all.sqlite");
    let out = stdout_of(
        kneecam(home.path())
            .args(["review", "merge"])
            .arg(&a)
            .arg(&b)
            .arg("--into")
            .arg(&into),
    );
    assert!(out.contains("a.sqlite: 2 of 2 verdicts new"), "{out}");
    assert!(out.contains("b.sqlite: 1 of 2 verdicts new"), "{out}");
    assert_eq!(
        listing(&merged_dir),
        ["all.sqlite"],
        "temporary or -wal/-shm files left"
    );
    assert_eq!(listing(&inputs), ["a.sqlite", "b.sqlite"]);
    assert_eq!(
        (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b")),
        before
    );
    let contents = SqliteStore::open_read_only(&into)
        .expect("merged")
        .contents()
        .expect("read");
    assert_eq!(contents.verdicts.len(), 3);

    // ann's later verdict wins in the export.
    let csv = home.path().join("merged.csv");
    stdout_of(
        kneecam(home.path())
            .args(["review", "export", "--reviews"])
            .arg(&into)
            .arg("--out")
            .arg(&csv),
    );
    let text = std::fs::read_to_string(&csv).expect("read");
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains(",ann,negative,"), "{text}");
    assert!(!text.contains(",ann,positive,"), "{text}");

    // Into an existing database, in place: nothing new the second time.
    let again = stdout_of(
        kneecam(home.path())
            .args(["review", "merge"])
            .arg(&b)
            .arg("--into")
            .arg(&into),
    );
    assert!(again.contains("0 verdicts and 0 undos added"), "{again}");
    assert_eq!(listing(&merged_dir), ["all.sqlite"]);
}

#[test]
fn merge_refuses_an_input_that_is_the_target_or_not_a_review_database() {
    let home = tempfile::tempdir().expect("temp dir");
    let a = home.path().join("a.sqlite");
    database(&a, &[verdict("ann", 1, Task::Acl, Truth::Positive, 1_000)]);
    kneecam(home.path())
        .args(["review", "merge"])
        .arg(&a)
        .arg("--into")
        .arg(home.path().join(".").join("a.sqlite"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("both an input and --into"));
    kneecam(home.path())
        .args(["review", "merge"])
        .arg(&a)
        .arg("--into")
        .arg(home.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a folder"));
    let notes = home.path().join("notes.txt");
    std::fs::write(&notes, "not a database, but someone's notes\n".repeat(200)).expect("write");
    let before = std::fs::read(&notes).expect("read");
    kneecam(home.path())
        .args(["review", "merge"])
        .arg(&a)
        .arg("--into")
        .arg(&notes)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(notes.display().to_string()));
    assert_eq!(std::fs::read(&notes).expect("read"), before);
}

#[test]
fn a_reviews_file_that_is_not_sqlite_is_bad_input_and_left_unchanged() {
    let home = tempfile::tempdir().expect("temp dir");
    let files = home.path().join("files");
    std::fs::create_dir(&files).expect("folder");
    let reviews: PathBuf = files.join("reviews.sqlite");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&reviews, &bytes).expect("write");
    let out = files.join("out.csv");
    for args in [
        vec!["review", "summary", "--reviews"],
        vec![
            "review",
            "export",
            "--out",
            out.to_str().expect("UTF-8"),
            "--reviews",
        ],
    ] {
        kneecam(home.path())
            .args(&args)
            .arg(&reviews)
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains(reviews.display().to_string())
                    .and(predicate::str::contains("not a SQLite database")),
            );
    }
    kneecam(home.path())
        .args(["review", "merge"])
        .arg(&reviews)
        .arg("--into")
        .arg(files.join("new.sqlite"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(reviews.display().to_string()));
    assert_eq!(std::fs::read(&reviews).expect("read"), bytes);
    assert_eq!(listing(&files), ["reviews.sqlite"]);
    // A missing file is named too.
    let missing = files.join("missing.sqlite");
    kneecam(home.path())
        .args(["review", "summary", "--reviews"])
        .arg(&missing)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(missing.display().to_string()));
    assert!(!missing.exists());
}
