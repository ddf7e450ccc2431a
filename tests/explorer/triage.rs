//! Triage on the state: verdict keys, the advance, undo, notes, the review filters and the
//! progress, written to a real SQLite database in a temporary folder.
use crossterm::event::KeyCode;
use kneecam::config::Config;
use kneecam::data::Task;
use kneecam::review::sqlite::SqliteStore;
use kneecam::review::writer::{WriteEvent, WriteOp};
use kneecam::review::{DatasetRef, Query, ReviewError, ReviewStore, Truth, Verdict};
use kneecam::tui::action::Action;
use kneecam::tui::app::{App, Filter, Msg, ReviewStart};

use super::{small_state, Fake};

const FINGERPRINT: &str = "sha256:test-cohort";

fn dataset() -> DatasetRef {
    DatasetRef {
        fingerprint: FINGERPRINT.into(),
        path: "/data/cohort".into(),
    }
}

fn start(reader: &str, existing: Vec<Verdict>) -> ReviewStart {
    ReviewStart {
        reader: reader.into(),
        dataset: dataset(),
        models_fingerprint: "sha256:models".into(),
        existing,
        store: "reviews.sqlite".into(),
    }
}

/// The five-exam app (0000 TP, 0001 FN, 0002 FP, 0003 TN, 0004 TN at 0.5) reviewing as
/// `reader`, its verdicts going to the database at `db`.
fn reviewing(db: &std::path::Path, reader: &str, config: Config) -> Fake {
    let store = SqliteStore::open(db).expect("the database opens");
    let existing = store
        .verdicts(&Query {
            dataset_fingerprint: Some(FINGERPRINT.into()),
            task: None,
            reader: Some(reader.into()),
        })
        .expect("reads");
    let app = small_state(config).with_reviews(start(reader, existing));
    let mut fake = Fake::new(app);
    fake.reviews = Some(store);
    fake
}

fn stored(db: &std::path::Path) -> Vec<Verdict> {
    SqliteStore::open_read_only(db)
        .expect("opens")
        .verdicts(&Query::default())
        .expect("reads")
}

fn truths(fake: &Fake) -> Vec<Option<Truth>> {
    (0..fake.app.cases().len())
        .map(|case| fake.app.mark(case, Task::Acl).map(|m| m.truth))
        .collect()
}

fn press(fake: &mut Fake, c: char) {
    fake.key(KeyCode::Char(c));
    fake.app.check_invariants().expect("invariants");
}

#[test]
fn verdict_keys_record_against_the_models_call_and_advance_to_the_next_unreviewed_exam() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reviews.sqlite");
    let mut fake = reviewing(&db, "ann", Config::defaults());
    assert_eq!(fake.selected_name(), "0000");
    assert_eq!(fake.app.progress(), (0, 5));
    press(&mut fake, 'a'); // 0000: the model says positive; ann agrees
    assert_eq!(fake.selected_name(), "0001");
    press(&mut fake, 'd'); // 0001: the model says negative (0.2); ann says positive
    press(&mut fake, 'a'); // 0002: the model says positive (0.7), the label is negative
    press(&mut fake, 'u'); // 0003
    assert_eq!(fake.selected_name(), "0004");
    assert_eq!(
        truths(&fake),
        vec![
            Some(Truth::Positive),
            Some(Truth::Positive),
            Some(Truth::Positive),
            Some(Truth::Unsure),
            None
        ]
    );
    assert_eq!(fake.app.progress(), (4, 5));
    assert_eq!(fake.app.pending_writes(), (0, None), "every write answered");

    // What the database holds: each verdict with the call it was given against.
    let rows = stored(&db);
    assert_eq!(rows.len(), 4);
    let second = rows.iter().find(|v| v.exam == "0001").expect("0001 stored");
    assert_eq!(second.truth, Truth::Positive);
    assert_eq!(second.model_call, Some(false));
    assert!((second.probability.expect("p") - 0.2).abs() < 0.05);
    assert_eq!(second.label, Some(true));
    assert_eq!(second.reader, "ann");
    assert_eq!(second.task, Task::Acl);
    assert_eq!(second.threshold, 0.5);
    assert_eq!(second.method, "contrib");
    assert_eq!(second.dataset, dataset());
    assert_eq!(second.models_fingerprint, "sha256:models");
    assert!(second.seconds >= 0.0 && second.recorded_at > 0);

    // The review filters, worked out from the verdicts.
    let listed = |fake: &mut Fake, filter: Filter| {
        while fake.app.filter() != filter {
            fake.act(Action::NextFilter);
        }
        fake.app.check_invariants().expect("invariants");
        fake.names()
    };
    assert_eq!(listed(&mut fake, Filter::Unreviewed), vec!["0004"]);
    assert_eq!(listed(&mut fake, Filter::DisagreesWithModel), vec!["0001"]);
    assert_eq!(listed(&mut fake, Filter::DisagreesWithLabel), vec!["0002"]);
    listed(&mut fake, Filter::All);

    // The last one: nothing is left to advance to, and the reader is told.
    while fake.selected_name() != "0004" {
        fake.act(Action::NextPatient);
    }
    press(&mut fake, 'd');
    assert_eq!(fake.selected_name(), "0004");
    let message = fake.app.message().expect("a message");
    assert!(message.contains("every listed exam has your"), "{message}");
    assert_eq!(fake.app.progress(), (5, 5));
}

#[test]
fn under_the_unreviewed_filter_a_verdict_takes_the_exam_out_and_the_next_one_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fake = reviewing(&dir.path().join("r.sqlite"), "ann", Config::defaults());
    while fake.app.filter() != Filter::Unreviewed {
        fake.act(Action::NextFilter);
    }
    while fake.app.selected() > 0 {
        fake.act(Action::PrevPatient);
    }
    press(&mut fake, 'a');
    assert_eq!(fake.names(), vec!["0001", "0002", "0003", "0004"]);
    assert_eq!(fake.selected_name(), "0001");
    press(&mut fake, 'u');
    assert_eq!(fake.selected_name(), "0002");
}

#[test]
fn undo_takes_back_the_readers_last_verdicts_in_turn_and_goes_back_to_each_exam() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reviews.sqlite");
    let mut fake = reviewing(&db, "ann", Config::defaults());
    press(&mut fake, 'a');
    press(&mut fake, 'd');
    assert_eq!(fake.selected_name(), "0002");
    press(&mut fake, 'z');
    assert_eq!(fake.selected_name(), "0001");
    assert_eq!(fake.app.mark(1, Task::Acl), None);
    press(&mut fake, 'z');
    assert_eq!(fake.selected_name(), "0000");
    assert_eq!(truths(&fake), vec![None; 5]);
    press(&mut fake, 'z');
    assert!(fake
        .app
        .message()
        .expect("said")
        .contains("no verdict of yours"));
    assert!(stored(&db).is_empty(), "both undone in the database");
    let history = SqliteStore::open_read_only(&db)
        .expect("opens")
        .contents()
        .expect("reads");
    assert_eq!((history.verdicts.len(), history.undos.len()), (2, 2));
}

#[test]
fn a_later_verdict_supersedes_the_earlier_and_both_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reviews.sqlite");
    let mut fake = reviewing(&db, "ann", Config::defaults());
    press(&mut fake, 'a');
    fake.act(Action::PrevPatient);
    press(&mut fake, 'd');
    assert_eq!(
        fake.app.mark(0, Task::Acl).map(|m| m.truth),
        Some(Truth::Negative)
    );
    let all = stored(&db);
    assert_eq!(all.len(), 2, "history kept");
    let latest = kneecam::review::latest(&all);
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].truth, Truth::Negative);
    // Undo goes back to the earlier verdict, not to none.
    press(&mut fake, 'z');
    assert_eq!(
        fake.app.mark(0, Task::Acl).map(|m| m.truth),
        Some(Truth::Positive)
    );
}

#[test]
fn a_note_typed_in_the_status_line_goes_with_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reviews.sqlite");
    let mut fake = reviewing(&db, "ann", Config::defaults());
    press(&mut fake, 'i');
    for c in "partial, tear?".chars() {
        fake.key(KeyCode::Char(c));
    }
    // Keys go to the note while it is edited: 'a' and 'q' are text.
    fake.key(KeyCode::Char('q'));
    assert!(!fake.app.quit());
    fake.key(KeyCode::Backspace);
    fake.key(KeyCode::Enter);
    assert!(fake.app.note_editor().is_none());
    assert!(stored(&db).is_empty(), "a note alone is not a verdict");
    press(&mut fake, 'a');
    assert_eq!(stored(&db)[0].note.as_deref(), Some("partial, tear?"));

    // On an exam with a verdict, a kept note records the verdict again with it.
    fake.act(Action::PrevPatient);
    press(&mut fake, 'i');
    for _ in 0..20 {
        fake.key(KeyCode::Backspace);
    }
    for c in "intact".chars() {
        fake.key(KeyCode::Char(c));
    }
    fake.key(KeyCode::Esc);
    assert_eq!(stored(&db).len(), 1, "Esc cancels");
    press(&mut fake, 'i');
    fake.key(KeyCode::Char('!'));
    fake.key(KeyCode::Enter);
    let rows = stored(&db);
    assert_eq!(rows.len(), 2);
    let latest = kneecam::review::latest(&rows);
    assert_eq!(latest[0].note.as_deref(), Some("partial, tear?!"));
    assert_eq!(latest[0].truth, Truth::Positive);
    assert_eq!(latest[0].model_call, Some(true));
}

#[test]
fn opening_the_explorer_again_resumes_at_the_first_unreviewed_exam() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reviews.sqlite");
    let mut fake = reviewing(&db, "ann", Config::defaults());
    press(&mut fake, 'a');
    press(&mut fake, 'a');
    drop(fake);
    let again = reviewing(&db, "ann", Config::defaults());
    assert_eq!(again.selected_name(), "0002");
    assert_eq!(again.app.progress(), (2, 5));
    again.app.check_invariants().expect("invariants");
    // Another reader starts from the top: verdicts are per reader.
    let other = reviewing(&db, "bob", Config::defaults());
    assert_eq!(other.selected_name(), "0000");
    assert_eq!(other.app.progress(), (0, 5));
}

#[test]
fn the_advance_rule_is_configurable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |rule: &str| {
        Config::parse_layer(
            &format!("[review]\nadvance = \"{rule}\"\n"),
            std::path::Path::new("test.toml"),
        )
        .expect("valid")
    };
    let mut stay = reviewing(&dir.path().join("a.sqlite"), "ann", config("stay"));
    press(&mut stay, 'a');
    assert_eq!(stay.selected_name(), "0000");
    let mut next = reviewing(&dir.path().join("b.sqlite"), "ann", config("next"));
    next.act(Action::NextPatient);
    press(&mut next, 'a'); // 0001, then on to 0002
    assert_eq!(next.selected_name(), "0002");
    next.act(Action::PrevPatient);
    next.act(Action::PrevPatient);
    press(&mut next, 'a'); // 0000: next goes to 0001, reviewed or not
    assert_eq!(next.selected_name(), "0001");
    let err = Config::parse_layer(
        "[review]\nadvance = \"skip\"\n",
        std::path::Path::new("bad.toml"),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("review.advance"), "{err}");
}

#[test]
fn the_next_unreviewed_exam_is_the_one_prefetched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fake = reviewing(&dir.path().join("r.sqlite"), "ann", Config::defaults());
    fake.act(Action::NextPatient);
    press(&mut fake, 'a'); // 0001
    press(&mut fake, 'a'); // 0002
    while fake.selected_name() != "0000" {
        fake.act(Action::PrevPatient);
    }
    let prefetched: Vec<usize> = fake.app.prefetch_wants().iter().map(|k| k.case).collect();
    assert_eq!(
        prefetched.first(),
        Some(&3),
        "0003 is where a verdict goes next"
    );
}

#[test]
fn without_a_model_call_agree_says_why_and_unsure_still_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reviews.sqlite");
    let config = Config::defaults();
    let cases = vec![kneecam::tui::app::Case {
        name: "0000".into(),
        split: kneecam::data::Split::Valid,
        labels: [None; 3],
        planes: Default::default(),
        failed: None,
        series: Default::default(),
    }];
    let app = App::new(
        cases,
        kneecam::tui::app::ModelFacts::every_model(),
        &config,
        Default::default(),
    );
    let mut fake = Fake::new(app.with_reviews(start("ann", Vec::new())));
    fake.reviews = Some(SqliteStore::open(&db).expect("opens"));
    press(&mut fake, 'a');
    let message = fake.app.message().expect("said");
    assert!(message.contains("no model call"), "{message}");
    assert!(stored(&db).is_empty());
    press(&mut fake, 'u');
    assert_eq!(stored(&db)[0].truth, Truth::Unsure);
    assert_eq!(stored(&db)[0].model_call, None);
}

#[test]
fn a_failed_write_stays_pending_is_shown_and_quitting_asks_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fake = reviewing(&dir.path().join("r.sqlite"), "ann", Config::defaults());
    fake.reviews = None; // the writer answers by hand below
    press(&mut fake, 'a');
    let id = fake.writes.last().expect("a write").id;
    assert!(matches!(fake.writes[0].op, WriteOp::Record(_)));
    assert_eq!(fake.app.pending_writes().0, 1);
    assert!(!fake.app.mark(0, Task::Acl).expect("marked").stored);
    fake.send(Msg::Reviewed(WriteEvent::Failed {
        id,
        error: ReviewError::Full("/srv/reviews.sqlite".into()),
        retry_in: std::time::Duration::from_secs(2),
    }));
    let (pending, error) = fake.app.pending_writes();
    assert_eq!(pending, 1);
    assert!(error.expect("shown").contains("the disk is full"));
    fake.key(KeyCode::Char('q'));
    assert!(!fake.app.quit(), "the first q warns");
    assert!(fake
        .app
        .message()
        .expect("warned")
        .contains("not stored yet"));
    fake.send(Msg::Reviewed(WriteEvent::Stored {
        id,
        took: std::time::Duration::from_millis(3),
    }));
    assert_eq!(fake.app.pending_writes(), (0, None));
    assert!(fake.app.mark(0, Task::Acl).expect("marked").stored);
    fake.app.check_invariants().expect("invariants");
    fake.key(KeyCode::Char('q'));
    assert!(fake.app.quit(), "nothing pending: q quits");
}

#[test]
fn the_positive_calls_are_triaged_with_verdict_keys_alone_and_the_end_is_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("reviews.sqlite");
    let mut fake = reviewing(&db, "ann", Config::defaults());
    while fake.app.filter() != Filter::Call(true) {
        fake.act(Action::NextFilter);
    }
    assert_eq!(fake.names(), vec!["0000", "0002"]);
    assert_eq!(fake.selected_name(), "0000");
    press(&mut fake, 'a');
    assert_eq!(fake.selected_name(), "0002");
    press(&mut fake, 'd');
    let message = fake.app.message().expect("said");
    assert!(message.contains("every listed exam has your"), "{message}");
    let exams: Vec<_> = stored(&db).into_iter().map(|v| (v.exam, v.truth)).collect();
    assert_eq!(
        exams,
        vec![
            ("0000".to_string(), Truth::Positive),
            ("0002".to_string(), Truth::Negative)
        ]
    );
}
