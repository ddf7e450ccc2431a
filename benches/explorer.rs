//! The explorer, headless (TestBackend, the real engine on the CPU, the demo models, the
//! 8-exam demo cohort):
//! - next patient → overlay on screen, with the CAM cache emptied first (cold) and as the
//!   explorer really runs (the neighbours prefetched);
//! - one slice flip with the exam's CAMs cached: compose + encode + draw, for halfblocks and
//!   sixel at 100×40 cells, and the draw alone when the image is cached too.
//!
//! - triage (`explorer/triage.rs`): verdict key → the next unreviewed exam drawn, verdict →
//!   stored, with p50 / p99.
//!
//! Targets: next patient ≤ 150 ms with the tiny demo models; slice flip ≤ 16 ms; triage in
//! `explorer/triage.rs`.
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use criterion::{criterion_group, Criterion};
use kneecam::config::Config;
use kneecam::tui::action::Action;
use kneecam::tui::app::Msg;
use kneecam::tui::{ui, Driver, Event};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use ratatui_image::picker::{Picker, ProtocolType};

#[path = "../tests/support/explorer.rs"]
mod support;
use support::PATIENCE;
const SIZE: (u16, u16) = (100, 40);

fn explorer(picker: Picker, root: &Path) -> (Driver, Receiver<Event>) {
    let session = support::session(support::demo_cohort(), Config::defaults(), root, None);
    support::start(session, picker, SIZE)
}

fn until_overlay(driver: &mut Driver, inbox: &Receiver<Event>) {
    support::until_overlay(driver, inbox, |_| {});
}

fn draw(terminal: &mut Terminal<TestBackend>, driver: &Driver) {
    terminal
        .draw(|frame| ui::draw(frame, driver.app(), driver.images()))
        .expect("draws");
}

fn next_patient(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox) = explorer(Picker::halfblocks(), root.path());
    let mut terminal = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("terminal");
    let mut group = c.benchmark_group("explorer: next patient to overlay (tiny demo models, CPU)");
    group.sample_size(20);
    let mut forward = true;
    // Cold: the CAMs dropped and the explorer settled again (the shown exam and its
    // neighbours computed anew), then a jump two exams on, to one nobody prefetched.
    let mut step = |driver: &mut Driver, cold: bool| {
        if cold {
            driver.dispatch(Msg::ForgetCams);
        }
        driver.settle(&inbox, PATIENCE).expect("settles");
        let (selected, rows) = (driver.app().selected(), driver.app().view().len());
        let moves = if cold { 2 } else { 1 };
        if (forward && selected + moves >= rows) || (!forward && selected < moves) {
            forward = !forward;
        }
        let start = Instant::now();
        for _ in 0..moves {
            driver.act(if forward {
                Action::NextPatient
            } else {
                Action::PrevPatient
            });
        }
        until_overlay(driver, &inbox);
        draw(&mut terminal, driver);
        start.elapsed()
    };
    group.bench_function("cold (no CAM cached)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| step(&mut driver, true)).sum())
    });
    group.bench_function("prefetched (as the explorer runs)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| step(&mut driver, false)).sum())
    });
    group.finish();
}

fn slice_flip(c: &mut Criterion) {
    let mut group = c.benchmark_group("explorer: slice flip, CAMs cached, 100x40 cells");
    group.sample_size(30);
    for protocol in [ProtocolType::Halfblocks, ProtocolType::Sixel] {
        let root = tempfile::tempdir().expect("tempdir");
        let mut picker = Picker::halfblocks();
        picker.set_protocol_type(protocol);
        let (mut driver, inbox) = explorer(picker, root.path());
        let mut terminal = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("terminal");
        let name = kneecam::tui::protocol_name(protocol);
        let mut forward = true;
        let mut flip = |driver: &mut Driver, encode: bool| {
            if encode {
                driver.forget_images();
            }
            let start = Instant::now();
            driver.act(if forward {
                Action::NextSlice
            } else {
                Action::PrevSlice
            });
            forward = !forward;
            driver.sync();
            draw(&mut terminal, driver);
            start.elapsed()
        };
        driver.settle(&inbox, PATIENCE).expect("settles");
        group.bench_function(format!("{name}: compose + encode + draw"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| flip(&mut driver, true)).sum())
        });
        group.bench_function(format!("{name}: draw a cached image"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| flip(&mut driver, false)).sum())
        });
    }
    group.finish();
}

#[path = "explorer/triage.rs"]
mod triage;

criterion_group!(benches, next_patient, slice_flip);

fn main() {
    benches();
    triage::run();
    Criterion::default().configure_from_args().final_summary();
}
