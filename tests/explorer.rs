//! The explorer without a terminal: actions on the state alone, then the real engine (CPU
//! libtorch, the shipped demo models) on a small phantom cohort drawn into ratatui's
//! TestBackend and compared with insta snapshots.
use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kneecam::cam::{Explanation, Method};
use kneecam::config::Config;
use kneecam::data::geometry::VolumeGeometry;
use kneecam::data::{PerTaskPlane, Plane, Task};
use kneecam::engine::{EngineResult, Priority, RequestId, Timings};
use kneecam::model::loaded::LoadError;
use kneecam::model::manifest::Combiner;
use kneecam::tui::action::Action;
use kneecam::tui::app::{
    App, CamKey, Case, Confusion, Effect, Filter, Info, ModelFacts, Msg, Series, SeriesRef,
};
use kneecam::tui::{ui, Driver, Event};
use ndarray::Array3;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui_image::picker::Picker;

#[path = "support/explorer.rs"]
mod support;

#[path = "explorer/triage.rs"]
mod triage;

#[path = "explorer/cursor.rs"]
mod cursor;

#[path = "explorer/truth.rs"]
mod truth;

#[path = "explorer/graphics.rs"]
mod graphics;
use support::PATIENCE;

/// libtorch is seeded and threaded per process: one real-engine test at a time.
static ENGINE: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------- state alone

fn case(name: &str, acl: bool, probability: f32) -> Case {
    Case {
        name: name.into(),
        labels: [Some(true), Some(acl), Some(false)],
        planes: PerTaskPlane::from_fn(|_, _| Some(probability)),
        failed: None,
        split: kneecam::data::Split::Valid,
        series: Default::default(),
    }
}

/// The state with a stand-in for the driver: series are read at once (`slices` each),
/// every submission gets the next id and is recorded; scores are never answered.
struct Fake {
    app: App,
    slices: usize,
    next_id: u64,
    submitted: Vec<(RequestId, CamKey, Priority)>,
    cancelled: Vec<RequestId>,
    loads: Vec<(usize, Plane)>,
    /// Where verdicts go (the real SQLite store, written at once); None: they are kept.
    reviews: Option<kneecam::review::sqlite::SqliteStore>,
    writes: Vec<kneecam::review::writer::WriteJob>,
    /// What each series read says of its geometry (None: MRNet `.npy`, none).
    geometry: Option<GeometryOf>,
}

/// The geometry a series (case, plane, series index) of `slices` slices is read with.
type GeometryOf = fn(SeriesRef, usize) -> Result<Option<Arc<VolumeGeometry>>, String>;

impl Fake {
    fn new(app: App) -> Fake {
        Fake::with(app, 4, None)
    }

    /// `slices` per series, each read with the geometry `geometry` gives it.
    fn with(app: App, slices: usize, geometry: Option<GeometryOf>) -> Fake {
        let mut fake = Fake {
            app,
            slices,
            next_id: 0,
            submitted: Vec::new(),
            cancelled: Vec::new(),
            loads: Vec::new(),
            reviews: None,
            writes: Vec::new(),
            geometry,
        };
        fake.send(Msg::Resize(120, 40));
        fake
    }

    /// Hands `msg` to the state and carries out its effects, as the driver does.
    fn send(&mut self, msg: Msg) {
        let mut queue = VecDeque::from([msg]);
        while let Some(msg) = queue.pop_front() {
            for effect in self.app.update(msg) {
                queue.extend(self.carry_out(effect));
            }
        }
    }

    fn carry_out(&mut self, effect: Effect) -> Vec<Msg> {
        match effect {
            Effect::LoadSeries(wanted) => wanted
                .into_iter()
                .map(|which| {
                    self.loads.push((which.case, which.plane));
                    let plain = series(self.slices);
                    let outcome = match self.geometry {
                        None => plain,
                        Some(geometry) => {
                            Series::with_geometry(plain.volume, None, geometry(which, self.slices))
                        }
                    };
                    Msg::SeriesLoaded {
                        which,
                        outcome: Ok(outcome),
                    }
                })
                .collect(),
            Effect::Submit(key, priority) => {
                let id = self.id();
                self.submitted.push((id, key, priority));
                vec![Msg::Submitted {
                    key,
                    priority,
                    outcome: Ok(id),
                }]
            }
            Effect::Cancel(id) => {
                self.cancelled.push(id);
                Vec::new()
            }
            Effect::Score(case) => vec![Msg::ScoreSubmitted {
                case,
                outcome: Ok(self.id()),
            }],
            Effect::Export(_) => Vec::new(),
            Effect::Review(job) => self.review(*job),
        }
    }

    /// Writes `job` to the store at once, as the writer thread would, and answers.
    fn review(&mut self, job: kneecam::review::writer::WriteJob) -> Vec<Msg> {
        use kneecam::review::writer::{WriteEvent, WriteOp};
        use kneecam::review::ReviewStore;
        self.writes.push(job.clone());
        let Some(store) = self.reviews.as_mut() else {
            return Vec::new();
        };
        let written = match &job.op {
            WriteOp::Record(verdict) => store.record(verdict),
            WriteOp::Undo(undo) => store.undo(undo),
        };
        let event = match written {
            Ok(()) => WriteEvent::Stored {
                id: job.id,
                took: std::time::Duration::ZERO,
            },
            Err(error) => WriteEvent::Failed {
                id: job.id,
                error,
                retry_in: std::time::Duration::from_secs(1),
            },
        };
        vec![Msg::Reviewed(event)]
    }

    fn id(&mut self) -> RequestId {
        self.next_id += 1;
        RequestId(self.next_id)
    }

    fn act(&mut self, action: Action) {
        self.send(Msg::Action(action));
    }

    fn key(&mut self, code: KeyCode) {
        self.send(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    /// The interactive request in flight.
    fn interactive(&self) -> Option<(RequestId, CamKey)> {
        let [interactive, _] = self.app.in_flight();
        interactive.map(|f| (f.id.expect("the engine said its id"), f.key))
    }

    /// Answers the request `id` (for `key`) with a CAM whose per-slice scores are `scores`.
    fn answer(&mut self, id: RequestId, key: CamKey, priority: Priority, scores: Vec<f32>) {
        let mut answer = result(id, key, scores);
        answer.priority = priority;
        self.send(Msg::Explained(Box::new(answer)));
    }

    fn names(&self) -> Vec<String> {
        let app = &self.app;
        app.view()
            .iter()
            .map(|&c| app.cases()[c].name.clone())
            .collect()
    }

    fn selected_name(&self) -> String {
        let app = &self.app;
        app.cases()[app.current().expect("selected")].name.clone()
    }
}

/// Five exams whose combined ACL probability is the plane probability itself (a combiner
/// that averages: weights 1/3 on the logit scale would not; this one is the identity on p=0
/// or 1 and monotone between).
fn small_app() -> Fake {
    small_app_with(Config::defaults())
}

fn small_app_with(config: Config) -> Fake {
    Fake::new(small_state(config))
}

/// The five exams' state, before any message.
fn small_state(config: Config) -> App {
    let cases = vec![
        case("0000", true, 0.9),  // TP at 0.5
        case("0001", true, 0.2),  // FN
        case("0002", false, 0.7), // FP
        case("0003", false, 0.1), // TN
        case("0004", false, 0.45),
    ];
    let identity = Combiner {
        axial: 0.0,
        coronal: 0.0,
        sagittal: 4.0,
        intercept: -2.0,
    };
    let models = ModelFacts {
        combiners: [Some(identity); 3],
        ..ModelFacts::every_model()
    };
    App::new(cases, models, &config, Info::default())
}

fn series(slices: usize) -> Series {
    Series::plain(Arc::new(Array3::zeros((slices, 16, 16))), None)
}

#[test]
fn filters_cycle_through_the_confusion_cells_and_labels() {
    let mut fake = small_app();
    assert_eq!(fake.app.view().len(), 5);
    // sigmoid(4p - 2) >= 0.5 exactly when p >= 0.5.
    let counts = fake.app.confusion_counts();
    assert_eq!(counts, [1, 1, 1, 2], "TP FN FP TN");
    let mut seen = Vec::new();
    for _ in 0..12 {
        fake.act(Action::NextFilter);
        seen.push((fake.app.filter(), fake.app.view().len()));
    }
    assert_eq!(
        seen,
        vec![
            // The model calls 0000 and 0002 positive at 0.5.
            (Filter::Call(true), 2),
            (Filter::Call(false), 3),
            (Filter::Cell(Confusion::TruePositive), 1),
            (Filter::Cell(Confusion::FalseNegative), 1),
            (Filter::Cell(Confusion::FalsePositive), 1),
            (Filter::Cell(Confusion::TrueNegative), 2),
            (Filter::Label(true), 2),
            (Filter::Label(false), 3),
            // No verdicts yet: every exam is unreviewed, none disagrees.
            (Filter::Unreviewed, 5),
            (Filter::DisagreesWithModel, 0),
            (Filter::DisagreesWithLabel, 0),
            (Filter::All, 5),
        ]
    );
    fake.app.check_invariants().expect("invariants");
}

#[test]
fn the_threshold_moves_badges_and_counts() {
    let mut fake = small_app();
    for _ in 0..2 {
        fake.act(Action::ThresholdDown);
    }
    let threshold = fake.app.threshold();
    assert!((threshold - 0.4).abs() < 1e-6, "{threshold}");
    // 0004 (p 0.45, negative) becomes a false positive.
    assert_eq!(fake.app.confusion_counts(), [1, 1, 2, 1]);
    for _ in 0..30 {
        fake.act(Action::ThresholdUp);
    }
    assert_eq!(fake.app.threshold(), 1.0, "clamped");
    assert_eq!(fake.app.confusion_counts(), [0, 2, 0, 3]);
}

#[test]
fn sort_and_search_keep_the_selected_exam() {
    let mut fake = small_app();
    fake.act(Action::NextPatient);
    assert_eq!(fake.selected_name(), "0001");
    fake.act(Action::NextSort); // by probability, highest first
    assert_eq!(fake.names(), ["0000", "0002", "0004", "0001", "0003"]);
    assert_eq!(fake.selected_name(), "0001");
    fake.act(Action::NextSort); // closeness to 0.5
    assert_eq!(fake.names()[0], "0004");

    // Search text is typed as keys: every input is a message.
    fake.act(Action::Search);
    for c in "0003".chars() {
        fake.key(KeyCode::Char(c));
    }
    assert_eq!(fake.app.view().len(), 1);
    assert_eq!(fake.app.search().query, "0003");
    fake.key(KeyCode::Backspace);
    assert_eq!(fake.app.view().len(), 5, "000 matches every exam");
    fake.key(KeyCode::Esc);
    assert_eq!(fake.app.view().len(), 5);
    assert!(!fake.app.search().editing);
    fake.app.check_invariants().expect("invariants");
}

#[test]
fn patient_and_slice_moves_stay_in_bounds() {
    let mut fake = small_app();
    fake.slices = 7;
    fake.act(Action::PrevPatient);
    assert_eq!(fake.app.selected(), 0);
    for _ in 0..10 {
        fake.act(Action::NextPatient);
    }
    assert_eq!(fake.app.selected(), 4);
    let plane = fake.app.plane();
    assert_eq!(
        fake.app.slice(plane),
        3,
        "the middle slice until a CAM comes"
    );
    fake.act(Action::Forward5);
    assert_eq!(fake.app.slice(plane), 6);
    fake.act(Action::NextSlice);
    assert_eq!(fake.app.slice(plane), 6);
    fake.act(Action::FirstSlice);
    fake.act(Action::PrevSlice);
    assert_eq!(fake.app.slice(plane), 0);
    fake.act(Action::LastSlice);
    assert_eq!(fake.app.slice(plane), 6);
    fake.act(Action::Back5);
    assert_eq!(fake.app.slice(plane), 1);
    fake.act(Action::Axial);
    assert_eq!(fake.app.plane(), Plane::Axial);
    fake.act(Action::NextPlane);
    assert_eq!(fake.app.plane(), Plane::Coronal);
    fake.app.check_invariants().expect("invariants");
}

#[test]
fn series_are_asked_of_the_loader_once_and_only_around_the_selection() {
    let mut fake = small_app();
    // The selection and its next neighbour: 2 exams × 3 planes, nothing read twice.
    assert_eq!(fake.loads.len(), 6, "{:?}", fake.loads);
    fake.act(Action::NextPatient);
    assert_eq!(fake.loads.len(), 9, "one new neighbour: {:?}", fake.loads);
    let mut unique = fake.loads.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), fake.loads.len(), "no series read twice");
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

fn result(id: RequestId, key: CamKey, scores: Vec<f32>) -> EngineResult {
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

#[test]
fn newest_request_wins_when_keys_outrun_the_engine() {
    let mut fake = small_app();
    let interactive: Vec<_> = fake
        .submitted
        .iter()
        .filter(|(_, _, p)| *p == Priority::Interactive)
        .collect();
    assert_eq!(interactive.len(), 1, "one interactive request at a time");
    let (stale_id, stale_key, _) = *interactive[0];
    assert_eq!((stale_key.case, stale_key.plane), (0, Plane::Sagittal));

    // Three patients on before the engine answers: the old request is cancelled, only the
    // newest exam's is in flight.
    for _ in 0..3 {
        fake.act(Action::NextPatient);
    }
    assert!(fake.cancelled.contains(&stale_id));
    let (live_id, live_key) = fake.interactive().expect("a request in flight");
    assert_eq!(live_key.case, fake.app.current().expect("selected"));
    assert_ne!(live_id, stale_id);

    // The stale answer arrives late: dropped, nothing cached for it.
    fake.answer(
        stale_id,
        stale_key,
        Priority::Interactive,
        vec![0.0, 1.0, 0.0, 0.0],
    );
    assert!(fake.app.cams().peek(&stale_key).is_none());
    assert_eq!(fake.interactive().map(|(id, _)| id), Some(live_id));

    // The live answer lands, the view jumps to its top-contributing slice (contrib).
    fake.answer(
        live_id,
        live_key,
        Priority::Interactive,
        vec![0.0, -1.0, 2.0, 0.5],
    );
    assert!(fake.app.explanation(Plane::Sagittal).is_some());
    assert_eq!(fake.app.slice(Plane::Sagittal), 2);

    // Strip navigation over the contributions.
    fake.act(Action::NextPositiveSlice);
    assert_eq!(fake.app.slice(Plane::Sagittal), 3);
    fake.act(Action::PrevPositiveSlice);
    assert_eq!(fake.app.slice(Plane::Sagittal), 2);
    fake.act(Action::FirstSlice);
    fake.act(Action::TopSlice);
    assert_eq!(fake.app.slice(Plane::Sagittal), 2);

    // The method changes: the state asks for the new method's CAM of the same plane.
    let before = fake.submitted.len();
    fake.act(Action::NextMethod);
    let (_, next, _) = fake.submitted[before];
    assert_eq!(next.method, Method::GradCam);
    assert_eq!(next.plane, Plane::Sagittal);
    fake.app.check_invariants().expect("invariants");
}

#[test]
fn an_exam_opens_at_its_top_contributing_slice_however_its_cam_came() {
    let mut fake = small_app();
    // The next exam's contrib is prefetched and answered while exam 0 is shown.
    let prefetched: Vec<(RequestId, CamKey)> = fake
        .submitted
        .iter()
        .filter(|(_, key, p)| *p == Priority::Prefetch && key.case == 1)
        .map(|(id, key, _)| (*id, *key))
        .collect();
    let (id, key) = prefetched[0];
    assert_eq!((key.plane, key.method), (Plane::Sagittal, Method::Contrib));
    fake.answer(id, key, Priority::Prefetch, vec![0.0, 0.0, 0.0, 3.0]);
    fake.act(Action::NextPatient);
    assert_eq!(fake.app.current(), Some(1));
    assert_eq!(
        fake.app.slice(Plane::Sagittal),
        3,
        "prefetched: its top slice"
    );

    // The user moves within the exam: that stays while it is shown...
    fake.act(Action::FirstSlice);
    assert_eq!(fake.app.slice(Plane::Sagittal), 0);
    // ...and a revisit opens at the top slice again.
    fake.act(Action::PrevPatient);
    fake.act(Action::NextPatient);
    assert_eq!(
        fake.app.slice(Plane::Sagittal),
        3,
        "revisited: its top slice"
    );

    // A task with no CAM yet: the middle slice, then its own top slice once it comes.
    fake.act(Action::NextTask);
    assert_eq!(fake.app.slice(Plane::Sagittal), 2, "middle of 4");
    let (id, key) = fake.interactive().expect("the new task's CAM asked for");
    assert_eq!(key.task, Task::Meniscus);
    fake.answer(id, key, Priority::Interactive, vec![1.0, 0.0, 0.0, 0.0]);
    assert_eq!(
        fake.app.slice(Plane::Sagittal),
        0,
        "computed now: its top slice"
    );
}

#[test]
fn results_for_other_exams_never_evict_the_shown_exams_cams() {
    let one_entry = 16 * 4 + 4 * 16 * 16 + 4; // raw f32 + maps u8 + scores, 4 slices
                                              // Room for the shown exam's three CAMs (three planes, contrib shown) and two more.
    let mut config = Config::defaults();
    config.cam_cache_bytes = 5 * one_entry + 10;
    let mut fake = small_app_with(config);
    for _ in 0..3 {
        let (id, key) = fake.interactive().expect("asked for");
        fake.answer(id, key, Priority::Interactive, vec![0.0, 1.0, 0.0, 0.0]);
    }
    assert!(fake.interactive().is_none(), "the shown exam complete");
    // Two prefetched CAMs of the neighbour land; then the cache is full of wanted CAMs, and
    // no more is prefetched (each would drop a wanted one, to be computed again: forever).
    for _ in 0..2 {
        let [_, prefetch] = fake.app.in_flight();
        let flight = prefetch.expect("a prefetch in flight");
        let id = flight.id.expect("its id");
        fake.answer(id, flight.key, Priority::Prefetch, vec![1.0, 0.0, 0.0, 0.0]);
    }
    assert_eq!(fake.app.in_flight()[1], None, "nothing more fits");
    for plane in Plane::ALL {
        assert!(
            fake.app.explanation(plane).is_some(),
            "the shown exam's {plane} CAM is still cached"
        );
    }
    fake.app.check_invariants().expect("invariants");
}

#[test]
fn a_result_computed_on_the_cpu_after_the_device_ran_out_of_memory_says_so() {
    let cases = vec![case("0000", true, 0.9)];
    let info = Info {
        device: "CUDA 0 (NVIDIA H100)".into(),
        ..Info::default()
    };
    let mut fake = Fake::new(App::new(
        cases,
        ModelFacts::every_model(),
        &Config::defaults(),
        info,
    ));
    let (id, key) = fake.interactive().expect("asked for");
    let mut fell_back = result(id, key, vec![0.0, 1.0, 0.0, 0.0]);
    fell_back.timings.cpu_fallback = true;
    fake.send(Msg::Explained(Box::new(fell_back)));
    assert!(
        fake.app.explanation(key.plane).is_some(),
        "the result is shown"
    );
    let message = fake.app.message().unwrap_or_default();
    assert!(
        message.contains("CUDA 0 (NVIDIA H100) ran out of memory; computed on the CPU"),
        "{message}"
    );
}

#[test]
fn display_actions_cycle_and_clamp() {
    let mut fake = small_app();
    let opacity = fake.app.display().opacity;
    fake.act(Action::OpacityUp);
    assert!(fake.app.display().opacity > opacity);
    for _ in 0..20 {
        fake.act(Action::OpacityDown);
    }
    assert_eq!(fake.app.display().opacity, 0.0);
    let colormap = fake.app.display().colormap;
    for _ in 0..4 {
        fake.act(Action::NextColormap);
    }
    assert_eq!(fake.app.display().colormap, colormap, "four colormaps");
    fake.act(Action::ToggleOverlay);
    assert!(!fake.app.display().overlay);
    fake.act(Action::NextTask);
    assert_eq!(fake.app.task(), Task::Meniscus);
    fake.send(Msg::Resize(100, 40));
    fake.act(Action::ThreePlane);
    assert!(!fake.app.display().three_plane, "too narrow");
    assert!(fake.app.message().unwrap_or("").contains("columns"));
    fake.send(Msg::Resize(160, 40));
    fake.act(Action::ThreePlane);
    assert!(fake.app.display().three_plane);
    fake.act(Action::Help);
    assert!(fake.app.help());
    fake.key(KeyCode::Esc);
    assert!(!fake.app.help(), "Esc closes the help");
    fake.act(Action::Quit);
    assert!(fake.app.quit());
}

#[test]
fn export_is_an_effect_and_its_outcome_a_message() {
    let mut fake = small_app();
    let effects = fake.app.update(Msg::Action(Action::Export));
    assert!(effects.contains(&Effect::Export(0)), "{effects:?}");
    assert_eq!(fake.app.message(), Some("exporting…"));
    fake.send(Msg::Exported(Ok("exported sagittal to /tmp/x".into())));
    assert_eq!(fake.app.message(), Some("exported sagittal to /tmp/x"));
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
    if let Some(layout) = ui::layout(buffer.area, driver.app()) {
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
    let (width, height) = driver.app().size();
    let layout = ui::layout(Rect::new(0, 0, width, height), driver.app()).expect("fits");
    layout.panes[0].image
}

#[test]
fn main_screen_with_overlay_and_without() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox) = explorer((120, 40), Config::defaults(), root.path());
    // The demo's first ACL-positive exam.
    while driver.app().cases()[driver.app().current().expect("selected")].name != "0002" {
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
    assert_eq!(driver.app().selected(), 4);
    driver.settle(&inbox, PATIENCE).expect("settles");
    let slice = driver.app().slice(driver.app().plane());
    driver.handle(click(MouseEventKind::ScrollDown, 60, 10));
    driver.handle(click(MouseEventKind::ScrollDown, 60, 10));
    driver.handle(click(MouseEventKind::ScrollUp, 60, 10));
    assert_eq!(driver.app().slice(driver.app().plane()), slice + 1);
    driver.handle(click(MouseEventKind::Down(MouseButton::Left), 60, 10));
    assert_eq!(
        driver.app().selected(),
        4,
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
    assert!(driver.app().display().three_plane);
    for plane in Plane::ALL {
        assert!(
            driver.app().explanation(plane).is_some(),
            "{plane} computed"
        );
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
    // A VT100-high terminal (24 rows) gets two columns, every binding still there.
    driver.handle(Event::Resize(100, 24));
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
    let session = kneecam::tui::Session {
        cases: Vec::new(),
        models: ModelFacts::every_model(),
        info: Info {
            models: "models/demo".into(),
            ..Info::default()
        },
        exams: Vec::new(),
        device: tch::Device::Cpu,
        loader: Box::new(|_, _| Err(LoadError::Other("no models".into()))),
        config: Config::defaults(),
        export_folder: root.path().join("exports"),
        store: None,
        reviews: None,
    };
    let (mut driver, inbox) =
        kneecam::tui::start_headless(session, Picker::halfblocks()).expect("starts");
    driver.handle(Event::Resize(100, 24));
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
    let session = support::failing_session(root.path());
    let (mut driver, inbox) = support::start(session, Picker::halfblocks(), (120, 30));
    let text = screen(&driver);
    assert!(text.contains("CAM failed"), "{text}");
    assert!(driver.app().worker_error().is_some());
    // The status line shows the last failure to arrive: a CAM's or the list scorer's,
    // whichever the engine answered last (timing). It says what failed either way.
    let (screen_above, status) = text.trim_end().rsplit_once('\n').expect("lines");
    assert!(
        status.contains("error: ") && status.contains(".safetensors: not a safetensors file"),
        "{status}"
    );
    insta::assert_snapshot!("engine_error", screen_above);
    // The next patient is still browsable.
    driver.act(Action::NextPatient);
    driver.act(Action::NextSlice);
    driver.settle(&inbox, PATIENCE).expect("settles");
    assert_eq!(driver.app().selected(), 1);
}

#[test]
fn the_explorer_keeps_its_cams_in_the_store_and_reads_them_back() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let store_dir = root.path().join("store");
    let open = || {
        let cohort = support::demo_cohort();
        let session = support::session(cohort, Config::defaults(), root.path(), Some(&store_dir));
        support::start(session, Picker::halfblocks(), (120, 40))
    };
    let (first, _inbox) = open();
    let kept = walk(&store_dir);
    // The first exam's three planes (contrib) and the neighbour prefetched.
    assert!(kept >= 3, "{kept} entries kept");
    let shown = first
        .app()
        .explanation(Plane::Sagittal)
        .expect("computed")
        .clone();
    drop(first);
    // A second session finds them: nothing new computed for the same exams.
    let (second, _inbox) = open();
    assert_eq!(walk(&store_dir), kept);
    let again = second
        .app()
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
    let case = driver.app().current().expect("selected");
    let from_engine = driver.app().explanation(Plane::Sagittal).expect("computed");
    let from_scorer = *driver.app().cases()[case]
        .planes
        .get(Task::Acl, Plane::Sagittal);
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
