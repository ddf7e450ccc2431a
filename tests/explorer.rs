//! The explorer without a terminal: actions on the state alone, then the real engine (CPU
//! libtorch, the shipped demo models) on a small phantom cohort drawn into ratatui's
//! TestBackend and compared with insta snapshots.
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use kneecam::cam::{Explanation, Method};
use kneecam::config::Config;
use kneecam::data::{Plane, Task};
use kneecam::engine::{EngineResult, Priority, RequestId, Timings};
use kneecam::model::manifest::Combiner;
use kneecam::tui::action::Action;
use kneecam::tui::app::{App, Case, EngineCommand, Filter, Info};
use kneecam::tui::{ui, Driver, Event};
use ndarray::Array3;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui_image::picker::Picker;

#[path = "support/explorer.rs"]
mod support;
use support::PATIENCE;

/// libtorch is seeded and threaded per process: one real-engine test at a time.
static ENGINE: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------- state alone

fn case(name: &str, acl: bool, probability: f32) -> Case {
    Case {
        name: name.into(),
        labels: [Some(true), Some(acl), Some(false)],
        planes: [[Some(probability); 3]; 3],
        failed: None,
    }
}

/// Five exams whose combined ACL probability is the plane probability itself (a combiner
/// that averages: weights 1/3 on the logit scale would not; this one is the identity on p=0
/// or 1 and monotone between).
fn small_app() -> App {
    let cases = vec![
        case("0000", true, 0.9),  // TP at 0.5
        case("0001", true, 0.2),  // FN
        case("0002", false, 0.7), // FP
        case("0003", false, 0.1), // TN
        case("0004", false, 0.45),
    ];
    let mut app = App::new(cases, &Config::defaults(), Info::default());
    let identity = Combiner {
        axial: 0.0,
        coronal: 0.0,
        sagittal: 4.0,
        intercept: -2.0,
    };
    app.combiners = [Some(identity); 3];
    app.refresh_view();
    app
}

fn volume(slices: usize) -> Arc<Array3<u8>> {
    Arc::new(Array3::zeros((slices, 16, 16)))
}

#[test]
fn filters_cycle_through_the_confusion_cells_and_labels() {
    let mut app = small_app();
    assert_eq!(app.view.len(), 5);
    // sigmoid(4p - 2) >= 0.5 exactly when p >= 0.5.
    let counts = app.confusion_counts();
    assert_eq!(counts, [1, 1, 1, 2], "TP FN FP TN");
    let mut seen = Vec::new();
    for _ in 0..7 {
        app.apply(Action::NextFilter);
        seen.push((app.filter, app.view.len()));
    }
    assert_eq!(
        seen,
        vec![
            (Filter::Cell(kneecam::tui::app::Confusion::TruePositive), 1),
            (Filter::Cell(kneecam::tui::app::Confusion::FalseNegative), 1),
            (Filter::Cell(kneecam::tui::app::Confusion::FalsePositive), 1),
            (Filter::Cell(kneecam::tui::app::Confusion::TrueNegative), 2),
            (Filter::Label(true), 2),
            (Filter::Label(false), 3),
            (Filter::All, 5),
        ]
    );
}

#[test]
fn the_threshold_moves_badges_and_counts() {
    let mut app = small_app();
    for _ in 0..2 {
        app.apply(Action::ThresholdDown);
    }
    assert!((app.threshold - 0.4).abs() < 1e-6, "{}", app.threshold);
    // 0004 (p 0.45, negative) becomes a false positive.
    assert_eq!(app.confusion_counts(), [1, 1, 2, 1]);
    for _ in 0..30 {
        app.apply(Action::ThresholdUp);
    }
    assert_eq!(app.threshold, 1.0, "clamped");
    assert_eq!(app.confusion_counts(), [0, 2, 0, 3]);
}

#[test]
fn sort_and_search_keep_the_selected_exam() {
    let mut app = small_app();
    app.apply(Action::NextPatient);
    assert_eq!(app.cases[app.current().expect("selected")].name, "0001");
    app.apply(Action::NextSort); // by probability, highest first
    let names: Vec<&str> = app
        .view
        .iter()
        .map(|&c| app.cases[c].name.as_str())
        .collect();
    assert_eq!(names, ["0000", "0002", "0004", "0001", "0003"]);
    assert_eq!(app.cases[app.current().expect("selected")].name, "0001");
    app.apply(Action::NextSort); // closeness to 0.5
    let names: Vec<&str> = app
        .view
        .iter()
        .map(|&c| app.cases[c].name.as_str())
        .collect();
    assert_eq!(names[0], "0004");

    app.apply(Action::Search);
    for c in "0003".chars() {
        app.search_input(crossterm::event::KeyCode::Char(c));
    }
    assert_eq!(app.view.len(), 1);
    app.search_input(crossterm::event::KeyCode::Esc);
    assert_eq!(app.view.len(), 5);
}

#[test]
fn patient_and_slice_moves_stay_in_bounds() {
    let mut app = small_app();
    app.apply(Action::PrevPatient);
    assert_eq!(app.selected, 0);
    for _ in 0..10 {
        app.apply(Action::NextPatient);
    }
    assert_eq!(app.selected, 4);
    let case = app.current().expect("selected");
    for plane in Plane::ALL {
        app.volume_loaded(case, plane, Ok(volume(7)));
    }
    assert_eq!(
        app.slices[app.plane.index()],
        3,
        "the middle slice until a CAM comes"
    );
    app.apply(Action::Forward5);
    assert_eq!(app.slices[app.plane.index()], 6);
    app.apply(Action::NextSlice);
    assert_eq!(app.slices[app.plane.index()], 6);
    app.apply(Action::FirstSlice);
    app.apply(Action::PrevSlice);
    assert_eq!(app.slices[app.plane.index()], 0);
    app.apply(Action::LastSlice);
    assert_eq!(app.slices[app.plane.index()], 6);
    app.apply(Action::Back5);
    assert_eq!(app.slices[app.plane.index()], 1);
    app.apply(Action::Axial);
    assert_eq!(app.plane, Plane::Axial);
    app.apply(Action::NextPlane);
    assert_eq!(app.plane, Plane::Coronal);
}

fn explanation(scores: Vec<f32>) -> Explanation {
    let slices = scores.len();
    Explanation {
        logits: vec![0.0, 1.0],
        probability: 0.73,
        class: 1,
        raw: Array3::zeros((slices, 2, 2)),
        scores,
        maps: Array3::zeros((slices, 16, 16)),
        bias: 0.0,
    }
}

fn result(id: RequestId, key: kneecam::tui::app::CamKey, scores: Vec<f32>) -> EngineResult {
    EngineResult {
        id,
        task: key.task,
        plane: key.plane,
        spec: kneecam::cam::CamSpec {
            method: key.method,
            class: Some(1),
            normalization: key.normalization,
        },
        priority: Priority::Interactive,
        outcome: Ok(explanation(scores)),
        timings: Timings::default(),
    }
}

/// Submits what the plan asks (after reading the series it wants, as the driver does), with
/// ids from `next_id`; returns the interactive submissions.
fn follow_plan(app: &mut App, next_id: &mut u64) -> Vec<(RequestId, kneecam::tui::app::CamKey)> {
    for (case, plane) in app.wanted_volumes() {
        app.volume_loaded(case, plane, Ok(volume(4)));
    }
    let mut submitted = Vec::new();
    for command in app.plan() {
        match command {
            EngineCommand::Submit(key, priority) => {
                *next_id += 1;
                app.submitted(key, priority, RequestId(*next_id));
                if priority == Priority::Interactive {
                    submitted.push((RequestId(*next_id), key));
                }
            }
            EngineCommand::Cancel(id) => app.cancelled(id),
        }
    }
    submitted
}

#[test]
fn newest_request_wins_when_keys_outrun_the_engine() {
    let mut app = small_app();
    let mut next_id = 0;
    let first = follow_plan(&mut app, &mut next_id);
    assert_eq!(first.len(), 1, "one interactive request at a time");
    let (stale_id, stale_key) = first[0];
    assert_eq!((stale_key.case, stale_key.plane), (0, Plane::Sagittal));

    // Three patients on before the engine answers: the old request is cancelled, only the
    // newest exam's is in flight.
    for _ in 0..3 {
        app.apply(Action::NextPatient);
        follow_plan(&mut app, &mut next_id);
    }
    let (live_id, live_key) = app.interactive.expect("a request in flight");
    assert_eq!(live_key.case, app.current().expect("selected"));
    assert_ne!(live_id, stale_id);

    // The stale answer arrives late: dropped, nothing cached for it.
    app.engine_result(result(stale_id, stale_key, vec![0.0, 1.0, 0.0, 0.0]));
    assert!(app.cams.peek(&stale_key).is_none());
    assert_eq!(app.interactive.map(|(id, _)| id), Some(live_id));

    // The live answer lands, the view jumps to its top-contributing slice (contrib).
    app.engine_result(result(live_id, live_key, vec![0.0, -1.0, 2.0, 0.5]));
    assert!(app.explanation(Plane::Sagittal).is_some());
    assert_eq!(app.slices[Plane::Sagittal.index()], 2);

    // Strip navigation over the contributions.
    app.apply(Action::NextPositiveSlice);
    assert_eq!(app.slices[Plane::Sagittal.index()], 3);
    app.apply(Action::PrevPositiveSlice);
    assert_eq!(app.slices[Plane::Sagittal.index()], 2);
    app.apply(Action::FirstSlice);
    app.apply(Action::TopSlice);
    assert_eq!(app.slices[Plane::Sagittal.index()], 2);

    // The method changes: the next plan asks for the new method's CAM of the same plane.
    app.apply(Action::NextMethod);
    let next = follow_plan(&mut app, &mut next_id);
    assert_eq!(next[0].1.method, Method::GradCam);
    assert_eq!(next[0].1.plane, Plane::Sagittal);
}

#[test]
fn results_for_other_exams_never_evict_the_shown_exams_cams() {
    let mut app = small_app();
    let one_entry = 16 * 4 + 4 * 16 * 16 + 4; // raw f32 + maps u8 + scores, 4 slices
    app.cams = kneecam::tui::cache::Lru::new(2 * one_entry + 10);
    let mut next_id = 0;
    let (id, key) = follow_plan(&mut app, &mut next_id)[0];
    app.engine_result(result(id, key, vec![0.0, 1.0, 0.0, 0.0]));
    // Two neighbours' CAMs land in a cache with room for two.
    for case in [1, 4] {
        let other = app.cam_key(case, Plane::Sagittal, Method::Contrib);
        let other_id = RequestId(100 + case as u64);
        app.submitted(other, Priority::Prefetch, other_id);
        let mut prefetched = result(other_id, other, vec![1.0, 0.0, 0.0, 0.0]);
        prefetched.priority = Priority::Prefetch;
        app.engine_result(prefetched);
        assert!(app.cams.peek(&other).is_some());
    }
    assert!(
        app.explanation(Plane::Sagittal).is_some(),
        "the shown exam's CAM is still cached"
    );
}

#[test]
fn a_result_computed_on_the_cpu_after_the_device_ran_out_of_memory_says_so() {
    let mut app = small_app();
    app.info.device = "CUDA 0 (NVIDIA H100)".into();
    let mut next_id = 0;
    let (id, key) = follow_plan(&mut app, &mut next_id)[0];
    let mut fell_back = result(id, key, vec![0.0, 1.0, 0.0, 0.0]);
    fell_back.timings.cpu_fallback = true;
    app.engine_result(fell_back);
    assert!(app.explanation(key.plane).is_some(), "the result is shown");
    let message = app.message.clone().unwrap_or_default();
    assert!(
        message.contains("CUDA 0 (NVIDIA H100) ran out of memory; computed on the CPU"),
        "{message}"
    );
}

#[test]
fn display_actions_cycle_and_clamp() {
    let mut app = small_app();
    let opacity = app.display.opacity;
    app.apply(Action::OpacityUp);
    assert!(app.display.opacity > opacity);
    for _ in 0..20 {
        app.apply(Action::OpacityDown);
    }
    assert_eq!(app.display.opacity, 0.0);
    let colormap = app.display.colormap;
    for _ in 0..4 {
        app.apply(Action::NextColormap);
    }
    assert_eq!(app.display.colormap, colormap, "four colormaps");
    app.apply(Action::ToggleOverlay);
    assert!(!app.display.overlay);
    app.apply(Action::NextTask);
    assert_eq!(app.task, Task::Meniscus);
    app.size = (100, 40);
    app.apply(Action::ThreePlane);
    assert!(!app.display.three_plane, "too narrow");
    assert!(app.message.as_deref().unwrap_or("").contains("columns"));
    app.size = (160, 40);
    app.apply(Action::ThreePlane);
    assert!(app.display.three_plane);
    app.apply(Action::Help);
    assert!(app.help);
    app.apply(Action::Quit);
    assert!(app.quit);
}

// ---------------------------------------------------------------- real engine, TestBackend

/// The explorer on the demo cohort with the demo models, settled: list scored, the first
/// exam's CAMs computed, images encoded as halfblocks.
fn explorer(size: (u16, u16), config: Config, root: &Path) -> (Driver, Receiver<Event>) {
    let session = support::session(support::demo_cohort(), config, root, None);
    support::start(session, Picker::halfblocks(), size)
}

/// The screen as text, with the images' cells replaced by '#' (their halfblock glyphs depend
/// on the last bits of the CAM; `coloured_cells` checks their colours).
fn screen(driver: &Driver) -> String {
    let mut buffer = support::draw(driver);
    if let Some(layout) = ui::layout(buffer.area, &driver.app) {
        for pane in &layout.panes {
            mask(&mut buffer, pane.image);
        }
    }
    support::text(&buffer)
}

fn mask(buffer: &mut Buffer, area: Rect) {
    for y in area.y..area.y + area.height {
        for x in area.x..area.x + area.width {
            let cell = &mut buffer[(x, y)];
            if cell.bg != ratatui::style::Color::Reset {
                cell.set_symbol("#");
            }
        }
    }
}

/// Cells of `area` whose colours are not gray: the heatmap.
fn coloured_cells(driver: &Driver, area: Rect) -> usize {
    let buffer = support::draw(driver);
    let mut count = 0;
    for y in area.y..area.y + area.height {
        for x in area.x..area.x + area.width {
            let cell = &buffer[(x, y)];
            for colour in [cell.fg, cell.bg] {
                if let ratatui::style::Color::Rgb(r, g, b) = colour {
                    if r.max(g).max(b) - r.min(g).min(b) > 60 {
                        count += 1;
                    }
                }
            }
        }
    }
    count
}

fn image_area(driver: &Driver) -> Rect {
    let (width, height) = driver.app.size;
    let layout = ui::layout(Rect::new(0, 0, width, height), &driver.app).expect("fits");
    layout.panes[0].image
}

#[test]
fn main_screen_with_overlay_and_without() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox) = explorer((120, 40), Config::defaults(), root.path());
    // The demo's first ACL-positive exam.
    while driver.app.cases[driver.app.current().expect("selected")].name != "0002" {
        driver.act(Action::NextPatient);
    }
    driver.settle(&inbox, PATIENCE).expect("settles");
    insta::assert_snapshot!("main_screen", screen(&driver));
    let with_overlay = coloured_cells(&driver, image_area(&driver));
    driver.act(Action::ToggleOverlay);
    driver.settle(&inbox, PATIENCE).expect("settles");
    let without = coloured_cells(&driver, image_area(&driver));
    assert!(
        with_overlay > 200 && without == 0,
        "coloured cells: {with_overlay} with the overlay, {without} without"
    );

    // The mouse: a click on the list's fifth row selects it, the wheel moves the slice.
    let click = |kind, column, row| {
        Event::Mouse(crossterm::event::MouseEvent {
            kind,
            column,
            row,
            modifiers: crossterm::event::KeyModifiers::NONE,
        })
    };
    use crossterm::event::{MouseButton, MouseEventKind};
    let rows = 2; // border and column header
    driver.handle(click(MouseEventKind::Down(MouseButton::Left), 5, rows + 4));
    assert_eq!(driver.app.selected, 4);
    driver.settle(&inbox, PATIENCE).expect("settles");
    let slice = driver.app.slices[driver.app.plane.index()];
    driver.handle(click(MouseEventKind::ScrollDown, 60, 10));
    driver.handle(click(MouseEventKind::ScrollDown, 60, 10));
    driver.handle(click(MouseEventKind::ScrollUp, 60, 10));
    assert_eq!(driver.app.slices[driver.app.plane.index()], slice + 1);
    driver.handle(click(MouseEventKind::Down(MouseButton::Left), 60, 10));
    assert_eq!(
        driver.app.selected, 4,
        "a click outside the list selects nothing"
    );
}

#[test]
fn three_plane_view() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox) = explorer((160, 40), Config::defaults(), root.path());
    driver.act(Action::ThreePlane);
    driver.settle(&inbox, PATIENCE).expect("settles");
    assert!(driver.app.display.three_plane);
    for plane in Plane::ALL {
        assert!(driver.app.explanation(plane).is_some(), "{plane} computed");
    }
    insta::assert_snapshot!("three_plane", screen(&driver));
}

#[test]
fn help_overlay_lists_every_binding() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox) = explorer((120, 40), Config::defaults(), root.path());
    driver.act(Action::Help);
    driver.settle(&inbox, PATIENCE).expect("settles");
    let text = screen(&driver);
    for (action, _, description) in Action::ALL {
        assert!(
            text.contains(description),
            "{action:?} missing from the help"
        );
    }
    insta::assert_snapshot!("help", text);
    // A short terminal gets two columns, every binding still there.
    driver.app.size = (100, 20);
    let text = screen(&driver);
    for (action, _, description) in Action::ALL {
        let start: String = description.chars().take(20).collect();
        assert!(
            text.contains(&start),
            "{action:?} missing from the short help:\n{text}"
        );
    }
}

#[test]
fn too_small_a_terminal_says_so() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (driver, _inbox) = explorer((50, 12), Config::defaults(), root.path());
    insta::assert_snapshot!("too_small", screen(&driver));
}

#[test]
fn an_empty_dataset_shows_an_empty_list() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let app = App::new(Vec::new(), &Config::defaults(), Info::default());
    let session = kneecam::tui::Session {
        app,
        exams: Vec::new(),
        device: tch::Device::Cpu,
        loader: Box::new(|_, _| Err("no models".into())),
        scorer: None,
        config: Config::defaults(),
        export_folder: root.path().join("exports"),
        store: None,
    };
    let (mut driver, inbox) =
        kneecam::tui::start_headless(session, Picker::halfblocks()).expect("starts");
    driver.app.info.models = "models/demo".into();
    driver.app.size = (100, 24);
    for action in [
        Action::NextPatient,
        Action::NextSlice,
        Action::Export,
        Action::TopSlice,
    ] {
        driver.act(action);
    }
    driver.settle(&inbox, PATIENCE).expect("settles");
    insta::assert_snapshot!("empty_dataset", screen(&driver));
}

#[test]
fn an_engine_error_is_shown_and_the_explorer_goes_on() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let mut session = support::session(
        support::demo_cohort(),
        Config::defaults(),
        root.path(),
        None,
    );
    session.loader = Box::new(|(task, plane), _| {
        Err(format!(
            "{task}-{plane}.safetensors: not a safetensors file"
        ))
    });
    session.scorer = None;
    let (mut driver, inbox) = support::start(session, Picker::halfblocks(), (120, 30));
    let text = screen(&driver);
    assert!(text.contains("CAM failed"), "{text}");
    assert!(driver.app.worker_error.is_some());
    insta::assert_snapshot!("engine_error", text);
    // The next patient is still browsable.
    driver.act(Action::NextPatient);
    driver.act(Action::NextSlice);
    driver.settle(&inbox, PATIENCE).expect("settles");
    assert_eq!(driver.app.selected, 1);
}

#[test]
fn the_explorer_keeps_its_cams_in_the_store_and_reads_them_back() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let store_dir = root.path().join("store");
    let open = || {
        let cohort = support::demo_cohort();
        let mut session =
            support::session(cohort, Config::defaults(), root.path(), Some(&store_dir));
        session.scorer = None;
        support::start(session, Picker::halfblocks(), (120, 40))
    };
    let (first, _inbox) = open();
    let kept = walk(&store_dir);
    // The first exam's three planes (contrib) and the neighbour prefetched.
    assert!(kept >= 3, "{kept} entries kept");
    let shown = first
        .app
        .explanation(Plane::Sagittal)
        .expect("computed")
        .clone();
    drop(first);
    // A second session finds them: nothing new computed for the same exams.
    let (second, _inbox) = open();
    assert_eq!(walk(&store_dir), kept);
    let again = second
        .app
        .explanation(Plane::Sagittal)
        .expect("from the store");
    assert_eq!(again.scores, shown.scores);
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        usize::from(e.path().extension().is_some_and(|x| x == "kcam"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn engine_and_scorer_agree_and_export_never_overwrites() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox) = explorer((120, 40), Config::defaults(), root.path());
    let case = driver.app.current().expect("selected");
    let from_engine = driver.app.explanation(Plane::Sagittal).expect("computed");
    let from_scorer = driver.app.cases[case].planes[Task::Acl.index()][Plane::Sagittal.index()];
    assert!(
        (from_scorer.expect("scored") - from_engine.probability).abs() < 1e-4,
        "scorer {from_scorer:?} vs engine {}",
        from_engine.probability
    );
    let exports = root.path().join("data").join("exports");
    for round in 0..2 {
        driver.act(Action::Export);
        let message = loop {
            match inbox.recv_timeout(PATIENCE).expect("an export result") {
                Event::Exported(outcome) => break outcome.expect("exported"),
                other => driver.handle(other),
            }
        };
        let folder = if round == 0 {
            exports.join("0000-acl-contrib")
        } else {
            exports.join("0000-acl-contrib-2")
        };
        assert!(message.contains(&folder.display().to_string()), "{message}");
        for plane in Plane::ALL {
            assert!(folder
                .join(plane.name())
                .join("cams")
                .join("0.png")
                .is_file());
            assert!(folder
                .join(plane.name())
                .join("slices")
                .join("0.png")
                .is_file());
        }
    }
}
