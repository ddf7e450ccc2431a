//! The review database under faults: a full disk, a read-only file system, files that are not
//! kneecam's review database or are of a newer schema. Verdicts stay pending and are retried;
//! nothing stored is lost; a file kneecam must refuse is refused at start, byte for byte as it
//! was.
use std::path::Path;
use std::time::{Duration, Instant};

use kneecam::config::Config;
use kneecam::review::sqlite::SqliteStore;
use kneecam::review::{Query, ReviewStore};
use kneecam::tui::action::Action;
use kneecam::tui::{Driver, Event};
use predicates::str::contains;
use ratatui_image::picker::Picker;
use std::sync::mpsc::Receiver;

use super::small_disk::SmallDisk;
use super::{kneecam, own_cohort, own_models, support, ENGINE, PATIENCE};

fn stored(db: &Path) -> usize {
    SqliteStore::open_read_only(db)
        .expect("the database opens")
        .verdicts(&Query::default())
        .expect("reads")
        .len()
}

/// Handles events until `done` holds of the state (or fails after `patience`).
fn until(driver: &mut Driver, inbox: &Receiver<Event>, done: impl Fn(&Driver) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done(driver) {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = inbox.recv_timeout(left).expect("the awaited state came");
        driver.handle(event);
    }
}

fn status(driver: &Driver) -> String {
    let screen = support::text(&support::draw(driver));
    screen.lines().last().unwrap_or_default().to_string()
}

#[test]
fn verdicts_on_a_full_disk_stay_pending_and_are_stored_when_it_has_room_again() {
    let Some(disk) = SmallDisk::mount(1024) else {
        return;
    };
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let db = disk.path().join("reviews.sqlite");
    let mut session = support::session(&data, Config::defaults(), home.path(), None);
    support::with_reviews(&mut session, &data, home.path(), &db, "ann");
    let (mut driver, inbox) = support::start(session, Picker::halfblocks(), (160, 40));

    driver.act(Action::Unsure);
    until(&mut driver, &inbox, |d| d.app().pending_writes().0 == 0);
    assert_eq!(stored(&db), 1);

    disk.fill();
    driver.act(Action::Unsure);
    until(&mut driver, &inbox, |d| {
        d.app().pending_writes().1.is_some()
    });
    let line = status(&driver);
    assert!(line.contains("not stored"), "{line}");
    assert!(line.contains("disk is full"), "{line}");
    // The explorer goes on, and the next verdict queues behind the failed one.
    driver.act(Action::Unsure);
    assert_eq!(driver.app().pending_writes().0, 2);
    disk.empty();
    until(&mut driver, &inbox, |d| d.app().pending_writes().0 == 0);
    assert_eq!(stored(&db), 3, "both retried, in order, none lost");

    assert!(driver.finish_reviews(Duration::from_secs(5)).is_empty());
    driver.app().check_invariants().expect("invariants");
}

/// A file system cannot be remounted read-only under an open database (the kernel refuses
/// while files are open for writing), and root ignores file permissions: the read-only file
/// is a real SQLite connection opened read-only, as SQLite opens a file its user may not
/// write, until the third reopen finds it writable.
#[test]
fn verdicts_on_a_read_only_database_stay_pending_and_are_stored_once_it_is_writable() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let db = home.path().join("shared").join("reviews.sqlite");
    let mut session = support::session(&data, Config::defaults(), home.path(), None);
    support::with_reviews(&mut session, &data, home.path(), &db, "ann");
    let setup = session.reviews.as_mut().expect("reviews on");
    setup.store = Box::new(SqliteStore::open_read_only(&db).expect("opens"));
    let reopened = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (count, path) = (reopened.clone(), db.clone());
    setup.reopen = Box::new(move || {
        let attempt = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let store = if attempt < 2 {
            SqliteStore::open_read_only(&path)?
        } else {
            SqliteStore::open(&path)?
        };
        Ok(Box::new(store) as Box<dyn ReviewStore>)
    });
    let (mut driver, inbox) = support::start(session, Picker::halfblocks(), (160, 40));

    driver.act(Action::Unsure);
    until(&mut driver, &inbox, |d| {
        d.app().pending_writes().1.is_some()
    });
    let line = status(&driver);
    assert!(line.contains("reviews.sqlite: read-only"), "{line}");
    driver.act(Action::Unsure);
    until(&mut driver, &inbox, |d| d.app().pending_writes().0 == 0);
    assert_eq!(stored(&db), 2, "both stored once writable");
    assert!(reopened.load(std::sync::atomic::Ordering::SeqCst) >= 3);
    driver.app().check_invariants().expect("invariants");
}

/// Runs `kneecam view` on `reviews` and checks it is refused naming the file and `expected`,
/// the file unchanged.
fn refused(reviews: &Path, expected: &str) {
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let models = own_models(home.path());
    let before = std::fs::read(reviews).expect("readable");
    kneecam(home.path())
        .args(["view", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(&models)
        .arg("--reviews")
        .arg(reviews)
        .assert()
        .code(2)
        .stderr(contains(reviews.display().to_string()))
        .stderr(contains(expected));
    assert_eq!(
        std::fs::read(reviews).expect("readable"),
        before,
        "untouched"
    );
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = format!("{}{suffix}", reviews.display());
        assert!(!Path::new(&side).exists(), "{side} was created");
    }
}

#[test]
fn a_review_file_that_is_not_kneecams_or_is_newer_is_refused_at_start_and_left_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.sqlite");
    std::fs::write(&text, "reader,exam\nann,0001\n".repeat(200)).expect("written");
    refused(&text, "not a SQLite database");

    let other = dir.path().join("other.sqlite");
    let connection = rusqlite::Connection::open(&other).expect("opens");
    connection
        .execute_batch("CREATE TABLE patients (id INTEGER, name TEXT);")
        .expect("created");
    drop(connection);
    refused(&other, "not kneecam's reviews (its tables: patients)");

    let newer = dir.path().join("newer.sqlite");
    drop(SqliteStore::open(&newer).expect("created"));
    let connection = rusqlite::Connection::open(&newer).expect("opens");
    connection
        .execute_batch("PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;")
        .expect("set");
    drop(connection);
    refused(&newer, "written by a newer kneecam (review schema 99");
}

#[test]
fn a_review_database_inside_the_dataset_is_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = own_cohort(home.path());
    let models = own_models(home.path());
    kneecam(home.path())
        .args(["view", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(&models)
        .arg("--reviews")
        .arg(data.join("reviews.sqlite"))
        .assert()
        .code(2)
        .stderr(contains("--reviews"))
        .stderr(contains("inside the dataset folder"));
    assert!(!data.join("reviews.sqlite").exists());
}
