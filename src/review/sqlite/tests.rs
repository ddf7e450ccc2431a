//! The SQLite store on real files in temporary folders.
use crate::data::Split;
use std::path::Path;

use super::*;
use crate::data::Task;
use crate::review::summary::tests::verdict;

fn store(path: &Path) -> SqliteStore {
    SqliteStore::open(path).expect("open the review database")
}

/// The files in `dir`, by name.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn open_creates_the_database_and_its_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("new/reviews.sqlite");
    let store = store(&path);
    assert!(path.is_file());
    assert_eq!(store.verdicts(&Query::default()).expect("verdicts"), []);
    drop(store);
    assert!(is_review_database(&path));
    assert_eq!(listing(&dir.path().join("new")), ["reviews.sqlite"]);
}

#[test]
fn reopening_keeps_the_verdicts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reviews.sqlite");
    let mut first = verdict("ann", 7, Task::Acl, Truth::Positive);
    first.note = Some("torn, \"clearly\"\nsee slice 12".into());
    first.label = Some(false);
    first.probability = None;
    store(&path).record(&first).expect("record");
    let reopened = store(&path);
    assert_eq!(
        reopened.verdicts(&Query::default()).expect("read"),
        [first.clone()]
    );
    let read_only = SqliteStore::open_read_only(&path).expect("read only");
    assert_eq!(read_only.contents().expect("contents").verdicts, [first]);
}

#[test]
fn recording_one_uid_twice_keeps_one_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = store(&dir.path().join("reviews.sqlite"));
    let v = verdict("ann", 7, Task::Acl, Truth::Positive);
    store.record(&v).expect("record");
    store.record(&v).expect("record again (a retried write)");
    assert_eq!(store.contents().expect("contents").verdicts.len(), 1);
    let added = store
        .import(&Contents {
            verdicts: vec![v.clone(), verdict("bob", 7, Task::Acl, Truth::Negative)],
            undos: vec![],
        })
        .expect("import");
    assert_eq!(added, (1, 0));
}

#[test]
fn an_undo_hides_a_verdict_from_verdicts_but_contents_keeps_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = store(&dir.path().join("reviews.sqlite"));
    let kept = verdict("ann", 1, Task::Acl, Truth::Positive);
    let undone = verdict("ann", 2, Task::Acl, Truth::Negative);
    store.record(&kept).expect("record");
    store.record(&undone).expect("record");
    let undo = Undo {
        verdict_uid: undone.uid.clone(),
        reader: "ann".into(),
        undone_at: 5_000,
    };
    store.undo(&undo).expect("undo");
    store.undo(&undo).expect("undo again");
    assert_eq!(
        store.verdicts(&Query::default()).expect("read"),
        std::slice::from_ref(&kept)
    );
    let contents = store.contents().expect("contents");
    assert_eq!(contents.verdicts, [kept, undone]);
    assert_eq!(contents.undos, [undo]);
}

#[test]
fn queries_pick_dataset_task_and_reader() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = store(&dir.path().join("reviews.sqlite"));
    let mut other = verdict("bob", 1, Task::Meniscus, Truth::Positive);
    other.dataset.fingerprint = "sha256:other".into();
    let all = [
        verdict("ann", 1, Task::Acl, Truth::Positive),
        verdict("bob", 1, Task::Acl, Truth::Negative),
        other,
    ];
    for v in &all {
        store.record(v).expect("record");
    }
    let count = |query: Query| store.verdicts(&query).expect("read").len();
    assert_eq!(count(Query::default()), 3);
    assert_eq!(
        count(Query {
            task: Some(Task::Acl),
            ..Query::default()
        }),
        2
    );
    assert_eq!(
        count(Query {
            reader: Some("bob".into()),
            dataset_fingerprint: Some("sha256:test".into()),
            ..Query::default()
        }),
        1
    );
}

#[test]
fn a_verdict_on_a_flat_folder_reads_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = store(&dir.path().join("reviews.sqlite"));
    let mut flat = verdict("ann", 3, Task::Abnormal, Truth::Unsure);
    flat.split = Split::Flat;
    store.record(&flat).expect("record");
    assert_eq!(store.verdicts(&Query::default()).expect("read"), [flat]);
}

/// `open` and `open_read_only` refuse `path` with an error `is`, leaving it byte-identical and
/// nothing beside it.
fn refused_untouched(path: &Path, is: fn(&ReviewError) -> bool) {
    let before = std::fs::read(path).expect("read");
    let dir = path.parent().expect("folder");
    let files = listing(dir);
    for opened in [SqliteStore::open(path), SqliteStore::open_read_only(path)] {
        match opened {
            Err(e) if is(&e) => {
                assert!(e.to_string().contains(&path.display().to_string()), "{e}");
            }
            Err(e) => panic!("the wrong error: {e:?}"),
            Ok(_) => panic!("{} was opened", path.display()),
        }
        assert_eq!(
            std::fs::read(path).expect("read"),
            before,
            "the file changed"
        );
        assert_eq!(listing(dir), files);
    }
    assert!(!is_review_database(path));
}

#[test]
fn random_bytes_are_not_a_database_and_stay_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notes.sqlite");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, bytes).expect("write");
    refused_untouched(&path, |e| matches!(e, ReviewError::NotDatabase(_)));
}

#[test]
fn another_apps_database_is_foreign_and_stays_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("other.sqlite");
    let other = Connection::open(&path).expect("create");
    other
        .execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
        .expect("fill");
    drop(other);
    refused_untouched(
        &path,
        |e| matches!(e, ReviewError::Foreign { detail, .. } if detail.contains("contacts")),
    );
}

#[test]
fn a_newer_schema_is_refused_and_stays_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reviews.sqlite");
    store(&path)
        .record(&verdict("ann", 1, Task::Acl, Truth::Positive))
        .expect("record");
    let newer = Connection::open(&path).expect("open");
    newer.pragma_update(None, "user_version", 99).expect("set");
    drop(newer);
    refused_untouched(
        &path,
        |e| matches!(e, ReviewError::Newer { found: 99, known, .. } if *known == SCHEMA_VERSION),
    );
}

#[test]
fn two_writers_in_two_threads_lose_nothing() {
    const EACH: u32 = 200;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reviews.sqlite");
    drop(store(&path));
    std::thread::scope(|scope| {
        for reader in ["ann", "bob"] {
            let path = &path;
            scope.spawn(move || {
                let mut store = store(path);
                for exam in 0..EACH {
                    let mut v = verdict(reader, exam, Task::Acl, Truth::Positive);
                    v.uid = crate::review::identity::new_uid(reader);
                    store.record(&v).expect("record");
                }
            });
        }
    });
    let all = store(&path).contents().expect("contents").verdicts;
    assert_eq!(all.len(), 2 * EACH as usize);
    let uids: std::collections::HashSet<_> = all.iter().map(|v| &v.uid).collect();
    assert_eq!(uids.len(), all.len());
}

#[test]
fn reading_leaves_nothing_beside_the_file_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reviews.sqlite");
    let v = verdict("ann", 1, Task::Acl, Truth::Positive);
    store(&path).record(&v).expect("record");
    let before = std::fs::read(&path).expect("read");
    let mut reader = SqliteStore::open_read_only(&path).expect("open read-only");
    assert_eq!(reader.verdicts(&Query::default()).expect("read"), [v]);
    let refused = reader.record(&verdict("bob", 1, Task::Acl, Truth::Positive));
    assert!(refused.is_err(), "a read-only store wrote");
    drop(reader);
    assert_eq!(std::fs::read(&path).expect("read"), before);
    assert_eq!(listing(dir.path()), ["reviews.sqlite"]);
}
