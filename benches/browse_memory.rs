//! Peak memory while browsing a 1,250-exam cohort (MRNet's size) in the explorer, headless:
//! the real engine on the CPU with the demo models and a CAM store, halfblocks images, one
//! "next patient" after another through every exam, overlays computed or read from the store.
//!
//! The cohort is the 60-exam demo cohort linked 1,250 times over (hard links: no disk), with
//! its own label files, so the list, the scorer and the caches see 1,250 exams. Prints the
//! resident memory after the first 50 exams and at the end, and the peak.
//!
//!   cargo bench --bench browse_memory
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use kneecam::config::Config;
use kneecam::data::dataset::Dataset;
use kneecam::data::phantom::CohortSpec;
use kneecam::data::{exam_file_name, Plane, Task};
use kneecam::tui::action::Action;
use ratatui_image::picker::Picker;

#[path = "../tests/support/explorer.rs"]
mod support;

const EXAMS: u32 = 1250;
const PATIENCE: Duration = Duration::from_secs(600);

fn status(field: &str) -> usize {
    let text = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mb(bytes: usize) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// `EXAMS` exams in MRNet's layout (all valid), each a hard link to one of the demo exams;
/// also returns the demo cohort's folder.
fn linked_cohort(root: &Path) -> (PathBuf, PathBuf) {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browse-memory");
    let spec = CohortSpec {
        cases: 60,
        valid: 60,
        seed: kneecam::cli::demo::DEMO_SEED,
    };
    let source_dir = kneecam::cli::demo::ensure_cohort(&cache, &spec).expect("the demo cohort");
    let source = Dataset::open(&source_dir).expect("opens");
    let out = root.join("cohort");
    let mut labels = [String::new(), String::new(), String::new()];
    for id in 0..EXAMS {
        let exam = &source.exams()[id as usize % source.exams().len()];
        for plane in Plane::ALL {
            let dir = out.join("valid").join(plane.name());
            std::fs::create_dir_all(&dir).expect("mkdir");
            let from = exam.path(plane).expect("a series");
            std::fs::hard_link(from, dir.join(exam_file_name(id))).expect("link");
        }
        for task in Task::ALL {
            let label = u8::from(exam.labels.get(task).unwrap_or(false));
            labels[task.index()].push_str(&format!("{id:04},{label}\n"));
        }
    }
    for task in Task::ALL {
        std::fs::write(
            out.join(format!("valid-{}.csv", task.name())),
            &labels[task.index()],
        )
        .expect("labels");
    }
    (out, source_dir)
}

fn main() {
    let root = tempfile::tempdir().expect("tempdir");
    let (cohort, source) = linked_cohort(root.path());
    let models = kneecam::cli::demo::default_models();
    let store = root.path().join("store");
    // The store first (as `kneecam precompute` would fill it on a real cohort), so the list's
    // scoring and the overlays read it: this measures browsing, not computing.
    let precompute = kneecam::cli::Cli::try_parse_from([
        "kneecam".as_ref(),
        "--device".as_ref(),
        "cpu".as_ref(),
        "precompute".as_ref(),
        "--data".as_ref(),
        source.as_os_str(),
        "--models".as_ref(),
        models.as_os_str(),
        "--cache".as_ref(),
        store.as_os_str(),
    ] as [&std::ffi::OsStr; 10])
    .expect("arguments");
    kneecam::cli::run(precompute).expect("precompute");
    let dataset = Dataset::open(&cohort).expect("the linked cohort opens");
    assert_eq!(dataset.exams().len(), EXAMS as usize);
    let session = support::session(&cohort, Config::defaults(), root.path(), Some(&store));
    let (mut driver, inbox) =
        kneecam::tui::start_headless(session, Picker::halfblocks()).expect("starts");
    driver.handle(kneecam::tui::Event::Resize(120, 40));
    let started = Instant::now();
    let mut after_warm_up = 0;
    for step in 0..EXAMS {
        driver.act(Action::NextPatient);
        driver.act(Action::NextSlice);
        driver.settle(&inbox, PATIENCE).expect("settles");
        if step == 50 {
            after_warm_up = status("VmRSS:");
        }
    }
    let end = status("VmRSS:");
    println!(
        "browsed {EXAMS} exams in {:.0} s: RSS {} after 50 exams, {} at the end, peak {}",
        started.elapsed().as_secs_f64(),
        mb(after_warm_up),
        mb(end),
        mb(status("VmHWM:"))
    );
}
