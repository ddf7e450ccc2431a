//! Two readers at once on one review database, each in their own explorer in a real
//! pseudo-terminal (tmux): their verdicts interleave, both explorers stay responsive, and the
//! database holds every verdict of both.
use std::path::Path;

use kneecam::data::phantom::{self, CohortSpec};
use kneecam::review::sqlite::SqliteStore;
use kneecam::review::{Query, ReviewStore, Truth};

use crate::terminal_restore::have_tmux;
use crate::tmux::{line_in, wait_for, Tmux};

const KNEECAM: &str = env!("CARGO_BIN_EXE_kneecam");

fn explorer_script(home: &Path, data: &Path, db: &Path, reader: &str) -> String {
    let file = |name: &str| home.join(format!("{reader}-{name}"));
    format!(
        "env KNEECAM_CACHE_DIR='{cache}' KNEECAM_DATA_DIR='{state}' KNEECAM_CONFIG_DIR='{config}' \
         '{KNEECAM}' --device cpu view --data '{data}' --models '{models}' --reader {reader} \
         --reviews '{db}' 2> '{err}'; echo $? > '{rc}'; sleep 600",
        cache = home.join("cache").display(),
        state = file("state").display(),
        config = home.join("config").display(),
        data = data.display(),
        models = kneecam::cli::demo::default_models().display(),
        db = db.display(),
        err = file("stderr").display(),
        rc = file("rc").display(),
    )
}

/// How many verdicts the database holds from `reader` (0 while it cannot be read).
fn stored_by(db: &Path, reader: &str) -> usize {
    SqliteStore::open_read_only(db)
        .and_then(|store| store.verdicts(&Query::default()))
        .map_or(0, |all| all.iter().filter(|v| v.reader == reader).count())
}

#[test]
fn two_readers_in_two_explorers_write_to_one_database_at_once_and_lose_nothing() {
    if !have_tmux() {
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("cohort");
    let spec = CohortSpec {
        cases: 8,
        valid: 8,
        seed: 7,
    };
    phantom::write_cohort(&data, &spec, false, || {}).expect("the cohort");
    let db = home.path().join("team").join("reviews.sqlite");
    let tmux = Tmux::new(home.path());
    let readers = ["ann", "bob"];
    for reader in readers {
        tmux.start(
            reader,
            (140, 40),
            &explorer_script(home.path(), &data, &db, reader),
        );
    }
    let context = |reader: &str| {
        let err = home.path().join(format!("{reader}-stderr"));
        format!(
            "{}\nstderr: {}",
            tmux.screen(reader),
            std::fs::read_to_string(err).unwrap_or_default()
        )
    };
    // Every exam scored (agree and disagree need the model's call) and nothing computing.
    for reader in readers {
        wait_for(
            &format!("{reader}'s explorer to settle"),
            180,
            || context(reader),
            || {
                let screen = tmux.screen(reader);
                screen.contains("reviewed 0/8")
                    && screen.contains("idle")
                    && !screen.contains(" … ")
            },
        );
    }
    // Interleaved: each key to one explorer, then the other, without waiting.
    let keys = [
        ("ann", ["a", "d", "u", "a", "a", "d"]),
        ("bob", ["d", "u", "a", "a", "d", "u"]),
    ];
    for step in 0..6 {
        for (reader, theirs) in &keys {
            tmux.keys(reader, theirs[step]);
        }
    }
    for reader in readers {
        wait_for(
            &format!("{reader}'s six verdicts stored"),
            60,
            || context(reader),
            || {
                let screen = tmux.screen(reader);
                screen.contains("reviewed 6/8")
                    && !screen.contains("storing")
                    && !screen.contains("not stored")
                    && stored_by(&db, reader) == 6
            },
        );
        tmux.keys(reader, "q");
    }
    for reader in readers {
        let rc = home.path().join(format!("{reader}-rc"));
        wait_for(
            &format!("{reader} to quit"),
            30,
            || context(reader),
            || line_in(&rc).is_some(),
        );
        assert_eq!(line_in(&rc).as_deref(), Some("0"), "{}", context(reader));
        let err = std::fs::read_to_string(home.path().join(format!("{reader}-stderr")));
        assert_eq!(
            err.unwrap_or_default(),
            "",
            "nothing printed over the explorer"
        );
    }

    let store = SqliteStore::open_read_only(&db).expect("the shared database");
    let all = store.verdicts(&Query::default()).expect("reads");
    for (reader, theirs) in keys {
        // In list order (the advance goes down the list); keys sent within one millisecond
        // may share a time stamp.
        let mut mine: Vec<_> = all.iter().filter(|v| v.reader == reader).collect();
        mine.sort_by(|a, b| a.exam.cmp(&b.exam));
        assert_eq!(mine.len(), 6, "{reader}: {mine:#?}");
        let unsure = theirs.iter().filter(|k| **k == "u").count();
        assert_eq!(
            mine.iter().filter(|v| v.truth == Truth::Unsure).count(),
            unsure
        );
        let exams: std::collections::BTreeSet<_> = mine.iter().map(|v| v.exam.as_str()).collect();
        assert_eq!(exams.len(), 6, "six different exams, in list order");
        // Agree and disagree are relative to the model's call, recorded with each verdict.
        for (verdict, key) in mine.iter().zip(theirs) {
            let call = verdict.model_call.expect("scored before the verdict");
            match key {
                "a" => assert_eq!(verdict.truth.call(), Some(call)),
                "d" => assert_eq!(verdict.truth.call(), Some(!call)),
                _ => assert_eq!(verdict.truth, Truth::Unsure),
            }
        }
    }
    drop(store);

    // Ann comes back: the explorer opens at her first unreviewed exam, 0006.
    let rc = home.path().join("ann-rc");
    std::fs::remove_file(&rc).expect("the first rc goes");
    tmux.run(&["kill-session", "-t", "ann"]);
    tmux.start(
        "ann",
        (140, 40),
        &explorer_script(home.path(), &data, &db, "ann"),
    );
    wait_for(
        "ann's explorer again",
        180,
        || context("ann"),
        || {
            let screen = tmux.screen("ann");
            screen.contains("reviewed 6/8") && screen.contains("idle")
        },
    );
    tmux.keys("ann", "u");
    wait_for(
        "ann's seventh verdict",
        60,
        || context("ann"),
        || {
            let screen = tmux.screen("ann");
            screen.contains("reviewed 7/8")
                && !screen.contains("storing")
                && stored_by(&db, "ann") == 7
        },
    );
    tmux.keys("ann", "q");
    wait_for(
        "ann to quit again",
        30,
        || context("ann"),
        || line_in(&rc).is_some(),
    );
    let all = SqliteStore::open_read_only(&db)
        .expect("opens")
        .verdicts(&Query::default())
        .expect("reads");
    let last = all
        .iter()
        .filter(|v| v.reader == "ann")
        .max_by_key(|v| v.recorded_at);
    assert_eq!(
        last.map(|v| v.exam.as_str()),
        Some("0006"),
        "resumed at 0006"
    );

    exports_feed_training(home.path(), &data, &db);
}

/// `review export` as CSV has every verdict; as MRNet labels, a file `kneecam train` takes.
fn exports_feed_training(home: &Path, data: &Path, db: &Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(KNEECAM)
            .args(args)
            .env("KNEECAM_DATA_DIR", home.join("state"))
            .env("KNEECAM_CACHE_DIR", home.join("cache"))
            .env("KNEECAM_CONFIG_DIR", home.join("config"))
            .output()
            .expect("kneecam runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "kneecam {args:?}: {said}");
        said
    };
    let path = |p: &Path| p.to_str().expect("UTF-8 temporary path").to_string();
    let csv = home.join("verdicts.csv");
    run(&[
        "review",
        "export",
        "--reviews",
        &path(db),
        "--out",
        &path(&csv),
    ]);
    let rows = std::fs::read_to_string(&csv).expect("the CSV");
    assert_eq!(
        rows.lines().count(),
        1 + 13,
        "a header and 6 + 7 verdicts:\n{rows}"
    );

    let labels = home.join("acl-labels.csv");
    let said = run(&[
        "review",
        "export",
        "--reviews",
        &path(db),
        "--format",
        "mrnet",
        "--task",
        "acl",
        "--data",
        &path(data),
        "--out",
        &path(&labels),
    ]);
    assert!(said.contains("acl:"), "{said}");
    // A dataset whose ACL labels are the readers' consensus, its series the cohort's files.
    let relabelled = home.join("relabelled");
    for split in ["train", "valid"] {
        for plane in ["axial", "coronal", "sagittal"] {
            let from = data.join("valid").join(plane);
            let to = relabelled.join(split).join(plane);
            std::fs::create_dir_all(&to).expect("plane folder");
            for entry in std::fs::read_dir(&from).expect("listing").flatten() {
                std::fs::hard_link(entry.path(), to.join(entry.file_name())).expect("linked");
            }
        }
        std::fs::copy(&labels, relabelled.join(format!("{split}-acl.csv"))).expect("labels");
    }
    let models = home.join("retrained");
    run(&[
        "--device",
        "cpu",
        "train",
        "--data",
        &path(&relabelled),
        "--task",
        "acl",
        "--plane",
        "sagittal",
        "--arch",
        "tiny",
        "--epochs",
        "1",
        "--out",
        &path(&models),
    ]);
    assert!(models.join("acl-sagittal.safetensors").is_file());
}
