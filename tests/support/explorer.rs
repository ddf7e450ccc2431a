//! The headless explorer for tests and benches (each crate includes this file with
//! `#[path]`): the demo cohort, the demo models, the real engine on the CPU, a TestBackend.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::OnceLock;
use std::time::Duration;

use kneecam::config::Config;
use kneecam::data::dataset::Dataset;
use kneecam::data::phantom::CohortSpec;
use kneecam::model::manifest::Manifest;
use kneecam::paths::Folders;
use kneecam::tui::Session;
use kneecam::tui::{ui, Driver, Event};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use ratatui_image::picker::Picker;

/// Long enough never to fire on a working explorer; it turns a hang into a failure.
pub const PATIENCE: Duration = Duration::from_secs(120);

fn demo_spec() -> CohortSpec {
    CohortSpec {
        cases: 8,
        valid: 8,
        seed: kneecam::cli::demo::DEMO_SEED,
    }
}

/// The 8-exam demo cohort (seed 2026), generated once under Cargo's temp folder and shared
/// by every test and bench crate (`ensure_cohort` renames it into place whole).
pub fn demo_cohort() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer-cohort");
        kneecam::cli::demo::ensure_cohort(&cache, &demo_spec()).expect("the cohort")
    })
}

/// A private copy of the demo cohort under `root`, for tests that delete or change files
/// (copied from the shared one: generating it again costs seconds).
pub fn own_cohort(root: &Path) -> PathBuf {
    let shared = demo_cohort();
    let name = shared.file_name().expect("the cohort's folder name");
    let own = root.join("cohorts").join(name);
    copy_tree(shared, &own);
    own
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a folder for the copy");
    for entry in std::fs::read_dir(from).expect("the cohort lists") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("its type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copied");
        }
    }
}

/// kneecam's folders, all under `root`.
pub fn folders(root: &Path) -> Folders {
    Folders {
        config: root.join("config"),
        cache: root.join("cache"),
        data: root.join("data"),
    }
}

/// The explorer's session on `data` with the demo models (the CAM store at `store`, if any).
pub fn session(data: &Path, config: Config, root: &Path, store: Option<&Path>) -> Session {
    let models = kneecam::cli::demo::default_models();
    let dataset = Dataset::open(data).expect("the cohort opens");
    let manifest = Manifest::load(&models).expect("the demo manifest");
    kneecam::cli::view::session(
        &dataset,
        &models,
        manifest,
        tch::Device::Cpu,
        config,
        &folders(root),
        store,
    )
}

/// The session on the demo cohort with models that never load: every CAM fails, naming the
/// weights file.
pub fn failing_session(root: &Path) -> Session {
    let mut session = session(demo_cohort(), Config::defaults(), root, None);
    session.loader = Box::new(|(task, plane), _| {
        Err(kneecam::model::loaded::LoadError::Other(format!(
            "{task}-{plane}.safetensors: not a safetensors file"
        )))
    });
    session
}

/// Handles events until the shown plane's image with its overlay is encoded; `seen` sees
/// each event first.
pub fn until_overlay(driver: &mut Driver, inbox: &Receiver<Event>, mut seen: impl FnMut(&Event)) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        driver.sync();
        let ready = driver
            .wanted_images()
            .iter()
            .all(|key| key.overlay.is_some() && driver.images().store.contains(key));
        if ready {
            return;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let event = inbox.recv_timeout(left).expect("the overlay arrives");
        seen(&event);
        driver.handle(event);
    }
}

/// Turns on triage in `session` (made by [`session`] on `data`): `reader`'s verdicts go to
/// the review database `db`, opened as `kneecam view --reviews` opens it.
pub fn with_reviews(session: &mut Session, data: &Path, root: &Path, db: &Path, reader: &str) {
    let args = kneecam::cli::view::ReviewArgs {
        reader: Some(reader.into()),
        reviews: Some(db.to_path_buf()),
    };
    let dataset = Dataset::open(data).expect("the cohort opens");
    let models = kneecam::cli::demo::default_models();
    let setup = kneecam::cli::view::reviews::setup(&args, &folders(root), &dataset, &models)
        .expect("the review database opens");
    session.reviews = Some(setup);
}

/// Starts `session` headless at `size` cells and settles it: the list scored, the first
/// exam's CAMs computed, its images encoded.
pub fn start(mut session: Session, picker: Picker, size: (u16, u16)) -> (Driver, Receiver<Event>) {
    session.info.models = "models/demo".into();
    let (mut driver, inbox) = kneecam::tui::start_headless(session, picker).expect("starts");
    driver.handle(Event::Resize(size.0, size.1));
    driver.settle(&inbox, PATIENCE).expect("settles");
    (driver, inbox)
}

/// One frame of the app, drawn into a TestBackend of its size.
pub fn draw(driver: &Driver) -> Buffer {
    let (width, height) = driver.app().size();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal
        .draw(|frame| ui::draw(frame, driver.app(), driver.images()))
        .expect("draws");
    terminal.backend().buffer().clone()
}

/// The buffer as text, one line per row, trailing spaces trimmed.
pub fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut text = String::new();
    for y in area.top()..area.bottom() {
        let line: String = (area.left()..area.right())
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}
