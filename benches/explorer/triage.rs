//! Triage speed, headless (TestBackend, the real engine on the CPU, the demo models, the
//! 8-exam demo cohort, a real review database in a temporary folder on this machine's disk):
//! - verdict key → the next unreviewed exam's slice drawn with its overlay, that exam
//!   prefetched (the explorer settled after the previous verdict, as a reader's pause does),
//!   its image composed and encoded after the key;
//! - verdict key → stored in the database (the writer thread's commit, synchronous = FULL);
//! - the verdict key's handling on the UI thread (it never waits for the database).
//!
//! Rounds of a verdict on every exam, then undo for every one, until `KNEECAM_TRIAGE_SAMPLES`
//! verdicts (default 160) were timed; prints p50, p99 and max of each, against the targets
//! (≤ 50 ms and ≤ 20 ms p99). Part of `cargo bench --bench explorer` (after criterion's
//! groups: criterion reports means, this needs percentiles).
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use kneecam::config::Config;
use kneecam::review::writer::WriteEvent;
use kneecam::tui::action::Action;
use kneecam::tui::{ui, Driver, Event};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use ratatui_image::picker::Picker;

use crate::support::{self, PATIENCE};

const SIZE: (u16, u16) = (100, 40);

/// Handles one event, keeping the commit times the writer reports.
fn handle(driver: &mut Driver, event: Event, stored: &mut Vec<Duration>) {
    if let Event::Review(WriteEvent::Stored { took, .. }) = &event {
        stored.push(*took);
    }
    driver.handle(event);
}

/// Until the shown plane's image with its overlay is encoded.
fn until_overlay(driver: &mut Driver, inbox: &Receiver<Event>, stored: &mut Vec<Duration>) {
    support::until_overlay(driver, inbox, |event| {
        if let Event::Review(WriteEvent::Stored { took, .. }) = event {
            stored.push(*took);
        }
    });
}

/// Every write answered (its commit time kept), then everything settled.
fn settle(driver: &mut Driver, inbox: &Receiver<Event>, stored: &mut Vec<Duration>) {
    while driver.app().pending_writes().0 > 0 {
        let event = inbox.recv_timeout(PATIENCE).expect("the write is answered");
        handle(driver, event, stored);
    }
    driver.settle(inbox, PATIENCE).expect("settles");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>, target: Option<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p99 = percentile(&samples, 0.99);
    let verdict = match target {
        Some(t) if p99 <= t => format!("  (target p99 ≤ {:.0} ms: met)", ms(t)),
        Some(t) => format!("  (target p99 ≤ {:.0} ms: NOT met)", ms(t)),
        None => String::new(),
    };
    println!(
        "{what:<58} n={:<4} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms{verdict}",
        samples.len(),
        ms(percentile(&samples, 0.5)),
        ms(p99),
        ms(*samples.last().expect("samples")),
    );
}

pub fn run() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run once, small.
    let quick = !std::env::args().any(|a| a == "--bench");
    let wanted: usize = std::env::var("KNEECAM_TRIAGE_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 8 } else { 160 });
    let root = tempfile::tempdir().expect("tempdir");
    let data = support::demo_cohort();
    let mut session = support::session(data, Config::defaults(), root.path(), None);
    let db = root.path().join("reviews.sqlite");
    support::with_reviews(&mut session, data, root.path(), &db, "bench");
    let (mut driver, inbox) = support::start(session, Picker::halfblocks(), SIZE);
    let mut terminal = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("terminal");
    let (mut to_next, mut on_ui, mut stored) = (Vec::new(), Vec::new(), Vec::new());
    let exams = driver.app().cases().len();
    while to_next.len() < wanted {
        for _ in 0..exams {
            settle(&mut driver, &inbox, &mut stored);
            // The next exam's image is composed and encoded after the key, as on a first
            // visit (later rounds would otherwise find it in the image cache).
            driver.forget_images();
            let start = Instant::now();
            driver.act(Action::Agree);
            on_ui.push(start.elapsed());
            until_overlay(&mut driver, &inbox, &mut stored);
            terminal
                .draw(|frame| ui::draw(frame, driver.app(), driver.images()))
                .expect("draws");
            to_next.push(start.elapsed());
        }
        settle(&mut driver, &inbox, &mut stored);
        assert_eq!(
            driver.app().progress(),
            (exams, exams),
            "every exam reviewed"
        );
        for _ in 0..exams {
            driver.act(Action::UndoVerdict);
            settle(&mut driver, &inbox, &mut stored);
        }
    }
    println!("triage, headless, demo models on the CPU, {SIZE:?} cells, halfblocks");
    report(
        "verdict key → next unreviewed exam drawn with overlay",
        to_next,
        Some(Duration::from_millis(50)),
    );
    report(
        "verdict or undo → stored in the database (writer thread)",
        stored,
        Some(Duration::from_millis(20)),
    );
    report("verdict key handled on the UI thread", on_ui, None);
}
