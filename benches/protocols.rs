//! One slice flip for each graphics protocol (halfblocks, sixel, kitty, iTerm2) at 100×40 cells
//! of 10×20 pixels: the explorer headless as `benches/explorer.rs` runs it (the real engine on
//! the CPU, the demo models, the 8-exam demo cohort, the exam's CAMs cached), each frame drawn by
//! the explorer's own `tui::draw_frame` through ratatui's crossterm backend into memory, so the
//! bytes are those a terminal would read (its own decoding and drawing not counted):
//! - a flip to a slice not encoded yet: the action, compose + encode + draw (the image cache
//!   emptied before each);
//! - a flip to a slice encoded before: the action and the draw (kitty then only places the
//!   image the terminal holds; sixel and iTerm2 send the whole image again).
//!
//! The bytes a flip writes are printed after the times, for each of the two slices flipped
//! between (sixel, PNG and halfblocks sizes depend on the picture).
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use criterion::Criterion;
use kneecam::config::Config;
use kneecam::tui::action::Action;
use kneecam::tui::{Driver, Event, Screen};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use ratatui_image::picker::{Picker, ProtocolType};

#[path = "../tests/support/explorer.rs"]
mod support;
#[path = "../tests/support/graphics.rs"]
mod wire;
use wire::Capture;

const SIZE: (u16, u16) = (100, 40);

const PROTOCOLS: [ProtocolType; 4] = [
    ProtocolType::Halfblocks,
    ProtocolType::Sixel,
    ProtocolType::Kitty,
    ProtocolType::Iterm2,
];

/// The explorer and its terminal in memory, flipping between two neighbouring slices.
struct Flipper {
    driver: Driver,
    _inbox: Receiver<Event>,
    terminal: Terminal<CrosstermBackend<Capture>>,
    written: Capture,
    area: Rect,
    last_layout: Option<Screen>,
    forward: bool,
    /// The bytes each flip wrote, since the last `take_bytes`.
    bytes: Vec<usize>,
}

impl Flipper {
    fn new(protocol: ProtocolType, root: &Path) -> Flipper {
        let session = support::session(support::demo_cohort(), Config::defaults(), root, None);
        // 10×20-pixel cells (`Picker::halfblocks`'s font size), the protocol forced.
        let mut picker = Picker::halfblocks();
        picker.set_protocol_type(protocol);
        let (driver, inbox) = support::start(session, picker, SIZE);
        let area = Rect::new(0, 0, SIZE.0, SIZE.1);
        let (terminal, written) = wire::capturing_terminal(area);
        let plane = driver.app().plane();
        let forward = driver.app().slice(plane) + 1 < driver.app().slice_count(plane);
        let mut flipper = Flipper {
            driver,
            _inbox: inbox,
            terminal,
            written,
            area,
            last_layout: None,
            forward,
            bytes: Vec::new(),
        };
        // The first frame clears the screen and draws everything: not a flip.
        flipper.frame();
        flipper.written.discard();
        flipper
    }

    /// One turn of the explorer's loop: the encoder in line with the screen, the frame drawn.
    fn frame(&mut self) {
        self.driver.sync();
        self.driver.touch_visible();
        kneecam::tui::draw_frame(
            &mut self.terminal,
            self.area,
            &self.driver,
            &mut self.last_layout,
        )
        .expect("draws");
    }

    /// One flip to the neighbouring slice and back on the next; every encoded image dropped
    /// first when `encode`.
    fn flip(&mut self, encode: bool) -> Duration {
        if encode {
            self.driver.forget_images();
        }
        let start = Instant::now();
        self.driver.act(if self.forward {
            Action::NextSlice
        } else {
            Action::PrevSlice
        });
        self.forward = !self.forward;
        self.frame();
        let took = start.elapsed();
        self.bytes.push(self.written.discard());
        took
    }

    /// The fewest and the most bytes a flip wrote since the last call: one for each of the
    /// two slices flipped between.
    fn take_bytes(&mut self) -> (usize, usize) {
        let bytes = std::mem::take(&mut self.bytes);
        let fewest = bytes.iter().copied().min().unwrap_or(0);
        (fewest, bytes.iter().copied().max().unwrap_or(0))
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut rows = Vec::new();
    let mut group = criterion.benchmark_group("protocols: slice flip, CAMs cached, 100x40 cells");
    group.sample_size(20);
    for protocol in PROTOCOLS {
        let name = kneecam::tui::protocol_name(protocol);
        let root = tempfile::tempdir().expect("tempdir");
        let mut flipper = Flipper::new(protocol, root.path());
        group.bench_function(format!("{name}: compose + encode + draw"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| flipper.flip(true)).sum())
        });
        let encoded = flipper.take_bytes();
        // Both slices encoded (and, for kitty, sent) before the second case is measured.
        flipper.flip(false);
        flipper.flip(false);
        flipper.take_bytes();
        group.bench_function(format!("{name}: draw, encoded before"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| flipper.flip(false)).sum())
        });
        rows.push((name, encoded, flipper.take_bytes()));
    }
    group.finish();
    println!("\nbytes written per slice flip at 100x40 cells (each of the two slices):");
    println!(
        "{:<12} {:>24} {:>24}",
        "protocol", "slice not encoded yet", "slice encoded before"
    );
    let range = |(fewest, most): (usize, usize)| format!("{fewest} / {most}");
    for (name, encoded, before) in rows {
        println!("{name:<12} {:>24} {:>24}", range(encoded), range(before));
    }
    criterion.final_summary();
}
