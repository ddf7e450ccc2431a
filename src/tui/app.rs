//! The explorer's state. Messages come in ([`Msg`]: keys, mouse, resizes, loaded series,
//! engine results, exports); [`App::update`] is the only thing that changes the state, and it
//! returns the [`Effect`]s the driver must carry out (read series, submit or cancel engine
//! work, export). Nothing here touches the terminal, the engine or the disk, so tests drive
//! it with messages alone and look at the effects. Drawing reads it through `&App`.
use std::collections::HashMap;
use std::sync::Arc;

use crate::cam::Explanation;
use crate::config::Config;
use crate::data::{Plane, Task};
use crate::engine::RequestId;
use crate::model::manifest::Combiner;

use super::cache::Lru;
use super::keymap::KeyMap;

mod cursor;
mod input;
#[cfg(any(test, feature = "invariants"))]
mod invariants;
mod list;
mod message;
mod requests;
mod review;
mod series;
mod slices;
mod truth;

pub use cursor::{Cursor, CursorView, CURSOR_STEP};
pub use list::{verdict_mark, Case, Confusion, Filter, Search, Sort};
pub use message::{Effect, Msg};
pub use requests::{CamKey, InFlight};
pub use review::{Mark, NoteEditor, ReviewStart};
pub use series::{Series, SeriesError, SeriesInfo, SeriesRef, Volume};
pub use truth::{is_lesion, GroundTruth, TruthView};

pub use crate::config::Display;

/// Facts about the session shown in the status line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Info {
    pub device: String,
    pub models: String,
    pub data: String,
    pub protocol: String,
    /// Why graphics fell back (tmux passthrough off, say).
    pub protocol_note: Option<String>,
    /// How images fill cells, so that a click maps to the pixel drawn there.
    pub raster: crate::tui::images::Raster,
    /// eval-cam's per-exam results (`view --eval-report`), shown with the ground truth.
    pub eval: crate::cam::report::EvalResults,
}

/// What the models folder says about each task and plane.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelFacts {
    /// How each task's three plane probabilities combine.
    pub combiners: [Option<Combiner>; 3],
    /// The class whose evidence is mapped, per task and plane; None where no model exists.
    pub positive_class: crate::data::PerTaskPlane<Option<usize>>,
}

impl ModelFacts {
    /// Every task and plane has a model mapping class 1, and no combiner.
    pub fn every_model() -> ModelFacts {
        ModelFacts {
            combiners: [None; 3],
            positive_class: crate::data::PerTaskPlane::from_fn(|_, _| Some(1)),
        }
    }
}

/// The explorer's whole state; only [`App::update`] changes it.
pub struct App {
    cases: Vec<Case>,
    models: ModelFacts,
    keymap: KeyMap,
    info: Info,
    task: Task,
    plane: Plane,
    /// Indices into `cases` in list order, after filter, search and sort.
    view: Vec<usize>,
    /// Position in `view`.
    selected: usize,
    /// The slice the user chose per plane during this visit of the exam; None: the view's own
    /// choice (the top-contributing slice when known, else the middle one).
    chosen_slices: [Option<usize>; 3],
    /// The linked 3-D cursor, on the selected exam.
    cursor: Option<cursor::Cursor>,
    /// The series shown per (case, plane) where it is not the dataset's choice (index 0).
    series_shown: HashMap<(usize, Plane), usize>,
    display: Display,
    /// Lesion outlines from the ground-truth masks (`M`).
    truth_shown: bool,
    threshold: f32,
    filter: Filter,
    sort: Sort,
    search: Search,
    help: bool,
    cams: Lru<CamKey, Arc<Explanation>>,
    cam_errors: HashMap<CamKey, String>,
    /// Loaded series of the exams around the selection, or why they could not be read.
    volumes: Lru<SeriesRef, Result<Series, SeriesError>>,
    /// Series asked of the loader and not yet answered.
    loading: Vec<SeriesRef>,
    interactive: Option<InFlight>,
    prefetch: Option<InFlight>,
    /// The exam being scored for the list, and its request once the engine took it.
    scoring: Option<(usize, Option<RequestId>)>,
    /// Per case: its scores came (or its scoring failed).
    scored: Vec<bool>,
    /// The last failure the engine reported, shown until the next success.
    worker_error: Option<String>,
    /// A one-off message for the status line (export done, say).
    message: Option<String>,
    /// Terminal size in cells.
    size: (u16, u16),
    /// Advances while the engine works, for the spinner.
    tick: u64,
    /// The reader's verdicts (triage), when a review database was given.
    reviews: review::Reviews,
    quit: bool,
}

/// Loaded series kept (the selection and its two neighbours need nine; a series cycled away
/// from stays while there is room).
const VOLUME_SLOTS: usize = 12;

impl App {
    /// The state for `cases`, scored by the models `models` describes.
    pub fn new(cases: Vec<Case>, models: ModelFacts, config: &Config, info: Info) -> App {
        let view = &config.view;
        let scored = vec![false; cases.len()];
        let reviews = review::Reviews::new(cases.len(), config.advance);
        let mut app = App {
            cases,
            models,
            keymap: config.keymap.clone(),
            info,
            task: view.task,
            plane: Plane::Sagittal,
            view: Vec::new(),
            selected: 0,
            chosen_slices: [None; 3],
            cursor: None,
            series_shown: HashMap::new(),
            display: view.display,
            truth_shown: false,
            threshold: view.threshold,
            filter: Filter::All,
            sort: Sort::Id,
            search: Search::default(),
            help: false,
            cams: Lru::new(config.cam_cache_bytes),
            cam_errors: HashMap::new(),
            volumes: Lru::new(VOLUME_SLOTS),
            loading: Vec::new(),
            interactive: None,
            prefetch: None,
            scoring: None,
            scored,
            worker_error: None,
            message: None,
            size: (120, 40),
            tick: 0,
            reviews,
            quit: false,
        };
        app.refresh_view();
        app
    }

    /// Applies one message and returns what the driver must do: the message's own effects,
    /// then what the workers should do for the new state (series to read, engine requests to
    /// submit or cancel, an exam to score).
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut effects = self.apply_msg(msg);
        self.shown_now();
        effects.extend(self.plan());
        effects
    }

    fn apply_msg(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) => return self.key(key),
            Msg::Mouse(mouse) => return self.mouse(mouse),
            Msg::Action(action) => return self.act(action),
            Msg::Resize(width, height) => self.size = (width, height),
            Msg::SeriesLoaded { which, outcome } => self.series_loaded(which, outcome),
            Msg::Submitted {
                key,
                priority,
                outcome,
            } => self.submitted(key, priority, outcome),
            Msg::ScoreSubmitted { case, outcome } => self.score_submitted(case, outcome),
            Msg::Explained(result) => self.engine_result(*result),
            Msg::Scored(result) => self.scores_came(*result),
            Msg::Notice(text) => self.message = Some(text),
            Msg::Exported(outcome) => self.exported(outcome),
            Msg::ForgetCams => {
                self.cams.clear();
                self.cam_errors.clear();
            }
            Msg::Reviewed(event) => self.review_written(event),
            Msg::Tick => self.tick += 1,
            Msg::Terminate => self.quit = true,
        }
        Vec::new()
    }

    /// The selected exam's index in `cases`.
    pub fn current(&self) -> Option<usize> {
        self.view.get(self.selected).copied()
    }

    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    pub fn combiners(&self) -> &[Option<Combiner>; 3] {
        &self.models.combiners
    }

    pub fn keymap(&self) -> &KeyMap {
        &self.keymap
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    pub fn task(&self) -> Task {
        self.task
    }

    pub fn plane(&self) -> Plane {
        self.plane
    }

    /// Indices into [`App::cases`] in list order.
    pub fn view(&self) -> &[usize] {
        &self.view
    }

    /// The selected row of [`App::view`].
    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn display(&self) -> &Display {
        &self.display
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    pub fn filter(&self) -> Filter {
        self.filter
    }

    pub fn sort(&self) -> Sort {
        self.sort
    }

    pub fn search(&self) -> &Search {
        &self.search
    }

    pub fn help(&self) -> bool {
        self.help
    }

    pub fn worker_error(&self) -> Option<&str> {
        self.worker_error.as_deref()
    }

    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    pub fn size(&self) -> (u16, u16) {
        self.size
    }

    pub fn tick(&self) -> u64 {
        self.tick
    }

    pub fn quit(&self) -> bool {
        self.quit
    }

    /// The CAM cache (read-only): what has been computed or read from the store.
    pub fn cams(&self) -> &Lru<CamKey, Arc<Explanation>> {
        &self.cams
    }

    pub fn has_model(&self, task: Task, plane: Plane) -> bool {
        self.models.positive_class.get(task, plane).is_some()
    }

    pub fn positive_class(&self, task: Task, plane: Plane) -> Option<usize> {
        *self.models.positive_class.get(task, plane)
    }

    /// The planes on screen: the current one, or all three in the three-plane view.
    pub fn visible_planes(&self) -> Vec<Plane> {
        if self.display.three_plane {
            Plane::ALL.to_vec()
        } else {
            vec![self.plane]
        }
    }

    /// Anything asked of the engine or the loader and not answered yet.
    pub fn is_busy(&self) -> bool {
        self.interactive.is_some()
            || self.prefetch.is_some()
            || self.scoring.is_some()
            || !self.loading.is_empty()
    }

    /// Exams whose scores have not come yet.
    pub fn unscored(&self) -> usize {
        self.scored.iter().filter(|done| !**done).count()
    }

    /// Nothing in flight, and every exam scored (or failed).
    pub fn is_settled(&self) -> bool {
        !self.is_busy() && self.unscored() == 0
    }
}
