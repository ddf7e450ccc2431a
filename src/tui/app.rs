//! The explorer's state, and how actions and results change it. Nothing here touches the
//! terminal, the engine or the disk except through what the caller passes in, so tests drive
//! it with actions alone.
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ndarray::Array3;

use crate::cam::colormap::Colormap;
use crate::cam::{Explanation, Method, Normalization};
use crate::config::Config;
use crate::data::{Plane, Task};
use crate::engine::{EngineError, EngineResult, Priority, RequestId};
use crate::model::manifest::Combiner;

use super::action::Action;
use super::cache::Lru;
use super::images::Images;
use super::keymap::KeyMap;

/// One exam in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub labels: [Option<bool>; 3],
    /// P(positive) per [task][plane], as they become known.
    pub planes: [[Option<f32>; 3]; 3],
    /// Why this exam could not be scored, if it could not.
    pub failed: Option<String>,
}

/// A cell of the confusion matrix at the current threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confusion {
    TruePositive,
    FalseNegative,
    FalsePositive,
    TrueNegative,
}

impl Confusion {
    pub const ALL: [Confusion; 4] = [
        Confusion::TruePositive,
        Confusion::FalseNegative,
        Confusion::FalsePositive,
        Confusion::TrueNegative,
    ];

    pub fn of(label: bool, probability: f32, threshold: f32) -> Confusion {
        match (label, probability >= threshold) {
            (true, true) => Confusion::TruePositive,
            (true, false) => Confusion::FalseNegative,
            (false, true) => Confusion::FalsePositive,
            (false, false) => Confusion::TrueNegative,
        }
    }

    pub fn badge(self) -> &'static str {
        match self {
            Confusion::TruePositive => "TP",
            Confusion::FalseNegative => "FN",
            Confusion::FalsePositive => "FP",
            Confusion::TrueNegative => "TN",
        }
    }
}

/// Which exams the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Cell(Confusion),
    Label(bool),
}

impl Filter {
    const CYCLE: [Filter; 7] = [
        Filter::All,
        Filter::Cell(Confusion::TruePositive),
        Filter::Cell(Confusion::FalseNegative),
        Filter::Cell(Confusion::FalsePositive),
        Filter::Cell(Confusion::TrueNegative),
        Filter::Label(true),
        Filter::Label(false),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Cell(cell) => cell.badge(),
            Filter::Label(true) => "positive",
            Filter::Label(false) => "negative",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Id,
    /// Highest combined probability first.
    Probability,
    /// Closest to the threshold first: the hard calls.
    Closeness,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Id => "id",
            Sort::Probability => "probability",
            Sort::Closeness => "closeness",
        }
    }
}

pub use crate::config::Display;

/// One CAM the explorer wants: an exam's plane under one task's model and one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CamKey {
    pub case: usize,
    pub task: Task,
    pub plane: Plane,
    pub method: Method,
    pub normalization: Normalization,
}

/// What to tell the engine, worked out from the state by [`App::plan`].
#[derive(Debug, Clone, PartialEq)]
pub enum EngineCommand {
    Submit(CamKey, Priority),
    Cancel(RequestId),
}

/// What the caller must do after an action that the state cannot do itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Export(usize),
}

/// Facts about the session shown in the status line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Info {
    pub device: String,
    pub models: String,
    pub data: String,
    pub protocol: String,
    /// Why graphics fell back (tmux passthrough off, say).
    pub protocol_note: Option<String>,
}

/// The search prompt: typing narrows the list by exam id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Search {
    pub editing: bool,
    pub query: String,
}

pub type Volume = Arc<Array3<u8>>;

/// Loaded series kept (the selection and its two neighbours need nine).
const VOLUME_SLOTS: usize = 12;

pub struct App {
    pub cases: Vec<Case>,
    pub combiners: [Option<Combiner>; 3],
    /// The class whose evidence is mapped per [task][plane]; None where no model exists.
    pub positive_class: [[Option<usize>; 3]; 3],
    pub keymap: KeyMap,
    pub info: Info,
    pub task: Task,
    pub plane: Plane,
    /// Indices into `cases` in list order, after filter, search and sort.
    pub view: Vec<usize>,
    /// Position in `view`.
    pub selected: usize,
    /// The slice shown per plane.
    pub slices: [usize; 3],
    /// Per plane: jump to the top-contributing slice when its CAM arrives (until the user
    /// moves the slice themselves).
    pub auto_slice: [bool; 3],
    pub display: Display,
    pub threshold: f32,
    pub filter: Filter,
    pub sort: Sort,
    pub search: Search,
    pub help: bool,
    pub cams: Lru<CamKey, Arc<Explanation>>,
    pub cam_errors: HashMap<CamKey, String>,
    /// Loaded series of the exams around the selection: (case, plane) → volume or error.
    pub volumes: Lru<(usize, Plane), Result<Volume, String>>,
    /// Encoded terminal images.
    pub images: Images,
    pub interactive: Option<(RequestId, CamKey)>,
    pub prefetch: Option<(RequestId, CamKey)>,
    /// The last failure the engine reported, shown until the next success.
    pub worker_error: Option<String>,
    /// A one-off message for the status line (export done, say).
    pub message: Option<String>,
    /// Terminal size in cells.
    pub size: (u16, u16),
    /// Advances while the engine works, for the spinner.
    pub tick: u64,
    pub quit: bool,
}

impl App {
    pub fn new(cases: Vec<Case>, config: &Config, info: Info) -> App {
        let view = &config.view;
        let mut app = App {
            cases,
            combiners: [None; 3],
            positive_class: [[Some(1); 3]; 3],
            keymap: config.keymap.clone(),
            info,
            task: view.task,
            plane: Plane::Sagittal,
            view: Vec::new(),
            selected: 0,
            slices: [0; 3],
            auto_slice: [true; 3],
            display: view.display,
            threshold: view.threshold,
            filter: Filter::All,
            sort: Sort::Id,
            search: Search::default(),
            help: false,
            cams: Lru::new(config.cam_cache_bytes),
            cam_errors: HashMap::new(),
            volumes: Lru::new(VOLUME_SLOTS),
            images: Images::new(config.image_cache_entries),
            interactive: None,
            prefetch: None,
            worker_error: None,
            message: None,
            size: (120, 40),
            tick: 0,
            quit: false,
        };
        app.refresh_view();
        app
    }

    /// The selected exam's index in `cases`.
    pub fn current(&self) -> Option<usize> {
        self.view.get(self.selected).copied()
    }

    pub fn combined(&self, case: usize, task: Task) -> Option<f32> {
        let combiner = self.combiners[task.index()]?;
        combiner.combine(self.cases.get(case)?.planes[task.index()])
    }

    /// The exam's confusion cell for the current task and threshold, when label and
    /// probability are both known.
    pub fn confusion(&self, case: usize) -> Option<Confusion> {
        let label = self.cases.get(case)?.labels[self.task.index()]?;
        let probability = self.combined(case, self.task)?;
        Some(Confusion::of(label, probability, self.threshold))
    }

    /// TP, FN, FP, TN over every exam (not just the filtered ones).
    pub fn confusion_counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for case in 0..self.cases.len() {
            if let Some(cell) = self.confusion(case) {
                let slot = Confusion::ALL.iter().position(|c| *c == cell).unwrap_or(0);
                counts[slot] += 1;
            }
        }
        counts
    }

    pub fn volume(&self, case: usize, plane: Plane) -> Option<&Result<Volume, String>> {
        self.volumes.peek(&(case, plane))
    }

    /// Slices in the current exam's series for `plane` (0 while it is not loaded).
    pub fn slice_count(&self, plane: Plane) -> usize {
        self.current()
            .and_then(|case| self.volume(case, plane))
            .and_then(|v| v.as_ref().ok())
            .map_or(0, |v| v.dim().0)
    }

    pub fn cam_key(&self, case: usize, plane: Plane, method: Method) -> CamKey {
        CamKey {
            case,
            task: self.task,
            plane,
            method,
            normalization: self.display.normalization,
        }
    }

    /// The explanation for the current exam's `plane` with the current method, if it came.
    pub fn explanation(&self, plane: Plane) -> Option<&Arc<Explanation>> {
        let case = self.current()?;
        self.cams
            .peek(&self.cam_key(case, plane, self.display.method))
    }

    /// The `contrib` explanation (for the slice strip): exact per-slice contributions.
    pub fn contributions(&self, plane: Plane) -> Option<&Arc<Explanation>> {
        let case = self.current()?;
        self.cams.peek(&self.cam_key(case, plane, Method::Contrib))
    }

    pub fn cam_error(&self, plane: Plane) -> Option<&String> {
        let case = self.current()?;
        self.cam_errors
            .get(&self.cam_key(case, plane, self.display.method))
    }

    pub fn has_model(&self, task: Task, plane: Plane) -> bool {
        self.positive_class[task.index()][plane.index()].is_some()
    }

    /// The planes on screen: the current one, or all three in the three-plane view.
    pub fn visible_planes(&self) -> Vec<Plane> {
        if self.display.three_plane {
            Plane::ALL.to_vec()
        } else {
            vec![self.plane]
        }
    }

    pub fn is_busy(&self) -> bool {
        self.interactive.is_some() || self.prefetch.is_some()
    }

    /// Applies one action; some need the caller (exporting writes files).
    pub fn apply(&mut self, action: Action) -> Option<Effect> {
        self.message = None;
        match action {
            Action::NextPatient => self.select(self.selected.saturating_add(1)),
            Action::PrevPatient => self.select(self.selected.saturating_sub(1)),
            Action::NextSlice => self.move_slice(1),
            Action::PrevSlice => self.move_slice(-1),
            Action::Forward5 => self.move_slice(5),
            Action::Back5 => self.move_slice(-5),
            Action::FirstSlice => self.set_slice(0),
            Action::LastSlice => self.set_slice(usize::MAX),
            Action::TopSlice => self.jump_to_top(),
            Action::NextPositiveSlice => self.jump_positive(true),
            Action::PrevPositiveSlice => self.jump_positive(false),
            Action::NextPlane => self.plane = Plane::ALL[(self.plane.index() + 1) % 3],
            Action::Axial => self.plane = Plane::Axial,
            Action::Coronal => self.plane = Plane::Coronal,
            Action::Sagittal => self.plane = Plane::Sagittal,
            Action::NextTask => self.set_task(Task::ALL[(self.task.index() + 1) % 3]),
            Action::NextMethod => self.display.method = next_of(&Method::ALL, self.display.method),
            Action::NextNormalization => {
                self.display.normalization =
                    next_of(&Normalization::ALL, self.display.normalization)
            }
            Action::ToggleOverlay => self.display.overlay = !self.display.overlay,
            Action::OpacityUp => self.display.opacity = step(self.display.opacity, 0.1),
            Action::OpacityDown => self.display.opacity = step(self.display.opacity, -0.1),
            Action::NextColormap => {
                self.display.colormap = next_of(&Colormap::ALL, self.display.colormap)
            }
            Action::ThresholdDown => self.set_threshold(step(self.threshold, -0.05)),
            Action::ThresholdUp => self.set_threshold(step(self.threshold, 0.05)),
            Action::NextFilter => {
                self.filter = next_of(&Filter::CYCLE, self.filter);
                self.refresh_view();
            }
            Action::NextSort => {
                self.sort = next_of(&[Sort::Id, Sort::Probability, Sort::Closeness], self.sort);
                self.refresh_view();
            }
            Action::Search => self.search.editing = true,
            Action::ThreePlane => self.toggle_three_plane(),
            Action::RawBeside => self.display.raw_beside = !self.display.raw_beside,
            Action::Export => return self.current().map(Effect::Export),
            Action::Help => self.help = !self.help,
            Action::Quit => self.quit = true,
        }
        None
    }

    /// A character typed into the search prompt (Enter keeps the query, Esc clears it).
    pub fn search_input(&mut self, key: crossterm::event::KeyCode) {
        use crossterm::event::KeyCode;
        match key {
            KeyCode::Char(c) => self.search.query.push(c),
            KeyCode::Backspace => {
                self.search.query.pop();
            }
            KeyCode::Enter => self.search.editing = false,
            KeyCode::Esc => {
                self.search = Search::default();
            }
            _ => return,
        }
        self.refresh_view();
    }

    /// Selects the list row at `position` (clamped), e.g. from a mouse click.
    pub fn select(&mut self, position: usize) {
        if self.view.is_empty() {
            self.selected = 0;
            return;
        }
        let position = position.min(self.view.len() - 1);
        if position != self.selected {
            self.selected = position;
            self.slices = [0; 3];
            self.auto_slice = [true; 3];
        }
        self.center_unloaded_slices();
    }

    fn move_slice(&mut self, delta: isize) {
        let count = self.slice_count(self.plane);
        if count == 0 {
            return;
        }
        let current = self.slices[self.plane.index()] as isize;
        self.set_slice((current + delta).clamp(0, count as isize - 1) as usize);
    }

    fn set_slice(&mut self, slice: usize) {
        let count = self.slice_count(self.plane);
        self.auto_slice[self.plane.index()] = false;
        self.slices[self.plane.index()] = slice.min(count.saturating_sub(1));
    }

    fn jump_to_top(&mut self) {
        if let Some(scores) = self.strip_scores(self.plane) {
            let top = crate::model::network::top_class(&scores);
            self.set_slice(top);
        }
    }

    fn jump_positive(&mut self, forward: bool) {
        let Some(scores) = self.strip_scores(self.plane) else {
            return;
        };
        let here = self.slices[self.plane.index()];
        let found = if forward {
            (here + 1..scores.len()).find(|&s| scores[s] > 0.0)
        } else {
            (0..here).rev().find(|&s| scores[s] > 0.0)
        };
        if let Some(slice) = found {
            self.set_slice(slice);
        }
    }

    /// The scores behind the slice strip: `contrib` when it came, else the current method's.
    pub fn strip_scores(&self, plane: Plane) -> Option<Vec<f32>> {
        self.contributions(plane)
            .or_else(|| self.explanation(plane))
            .map(|e| e.scores.clone())
    }

    fn set_task(&mut self, task: Task) {
        self.task = task;
        self.auto_slice = [true; 3];
        self.refresh_view();
    }

    fn set_threshold(&mut self, threshold: f32) {
        self.threshold = threshold;
        self.refresh_view();
    }

    fn toggle_three_plane(&mut self) {
        if !self.display.three_plane && self.size.0 < super::ui::THREE_PLANE_MIN_WIDTH {
            self.message = Some(format!(
                "the three-plane view needs {} columns; the terminal has {}",
                super::ui::THREE_PLANE_MIN_WIDTH,
                self.size.0
            ));
            return;
        }
        self.display.three_plane = !self.display.three_plane;
    }

    /// Rebuilds the list after the filter, search, sort, task or threshold changed, keeping
    /// the selected exam selected when it is still listed.
    pub fn refresh_view(&mut self) {
        let keep = self.current();
        let query = self.search.query.trim().to_ascii_lowercase();
        let mut view: Vec<usize> = (0..self.cases.len())
            .filter(|&case| self.passes_filter(case))
            .filter(|&case| query.is_empty() || self.cases[case].name.contains(&query))
            .collect();
        self.sort_view(&mut view);
        self.view = view;
        self.selected = keep
            .and_then(|case| self.view.iter().position(|&c| c == case))
            .unwrap_or(0);
        if self.current() != keep {
            self.slices = [0; 3];
            self.auto_slice = [true; 3];
        }
    }

    fn passes_filter(&self, case: usize) -> bool {
        match self.filter {
            Filter::All => true,
            Filter::Cell(cell) => self.confusion(case) == Some(cell),
            Filter::Label(label) => self.cases[case].labels[self.task.index()] == Some(label),
        }
    }

    fn sort_view(&self, view: &mut [usize]) {
        // Unknown probabilities sort last, ties by exam id.
        let key = |case: &usize| -> f32 {
            match (self.sort, self.combined(*case, self.task)) {
                (_, None) => f32::INFINITY,
                (Sort::Probability, Some(p)) => -p,
                (Sort::Closeness, Some(p)) => (p - self.threshold).abs(),
                (Sort::Id, Some(_)) => 0.0,
            }
        };
        match self.sort {
            Sort::Id => view.sort_by(|a, b| self.cases[*a].name.cmp(&self.cases[*b].name)),
            _ => view.sort_by(|a, b| {
                key(a)
                    .total_cmp(&key(b))
                    .then_with(|| self.cases[*a].name.cmp(&self.cases[*b].name))
            }),
        }
    }

    /// Puts each plane's slice in the middle of its series until a CAM says better.
    fn center_unloaded_slices(&mut self) {
        for plane in Plane::ALL {
            let count = self.slice_count(plane);
            if self.auto_slice[plane.index()] && count > 0 {
                self.slices[plane.index()] = count / 2;
            }
        }
    }

    /// Stores a loaded series (or why it could not be read).
    pub fn volume_loaded(&mut self, case: usize, plane: Plane, volume: Result<Volume, String>) {
        let bytes = 1;
        // The series around the selection were maybe loaded long ago (lookups do not count as
        // uses): mark them used, so that this one drops others, never the selected exam's.
        for around in self.neighbourhood() {
            for plane in Plane::ALL {
                self.volumes.touch(&(around, plane));
            }
        }
        self.volumes.insert((case, plane), volume, bytes);
        if self.current() == Some(case) {
            self.center_unloaded_slices();
        }
    }

    /// Every (case, plane) whose series should be in memory: the selection and its neighbours.
    pub fn wanted_volumes(&self) -> Vec<(usize, Plane)> {
        self.neighbourhood()
            .into_iter()
            .flat_map(|case| Plane::ALL.map(|plane| (case, plane)))
            .filter(|key| self.volumes.peek(key).is_none())
            .collect()
    }

    /// The selected exam, then the next and the previous in the list.
    fn neighbourhood(&self) -> Vec<usize> {
        let mut around = Vec::new();
        for position in [
            Some(self.selected),
            self.selected.checked_add(1),
            self.selected.checked_sub(1),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(&case) = self.view.get(position) {
                if !around.contains(&case) {
                    around.push(case);
                }
            }
        }
        around
    }

    /// CAMs wanted now, most urgent first: the shown plane (its method, then `contrib` for
    /// the strip), then the exam's other planes.
    pub fn interactive_wants(&self) -> Vec<CamKey> {
        let Some(case) = self.current() else {
            return Vec::new();
        };
        let mut planes = vec![self.plane];
        planes.extend(Plane::ALL.into_iter().filter(|p| *p != self.plane));
        let mut wants = Vec::new();
        for plane in planes {
            wants.push(self.cam_key(case, plane, self.display.method));
            wants.push(self.cam_key(case, plane, Method::Contrib));
        }
        self.only_computable(wants)
    }

    /// CAMs to prefetch: the next and previous exams' planes, shown plane first.
    pub fn prefetch_wants(&self) -> Vec<CamKey> {
        let mut wants = Vec::new();
        for case in self.neighbourhood().into_iter().skip(1) {
            wants.push(self.cam_key(case, self.plane, self.display.method));
            for plane in Plane::ALL.into_iter().filter(|p| *p != self.plane) {
                wants.push(self.cam_key(case, plane, self.display.method));
            }
        }
        self.only_computable(wants)
    }

    fn only_computable(&self, wants: Vec<CamKey>) -> Vec<CamKey> {
        let mut seen = HashSet::new();
        wants
            .into_iter()
            .filter(|k| seen.insert(*k))
            .filter(|k| self.has_model(k.task, k.plane))
            .filter(|k| {
                !matches!(self.volumes.peek(&(k.case, k.plane)), Some(Err(_)))
                    && self.cases[k.case].failed.is_none()
            })
            .collect()
    }

    /// What the engine should do now: at most one request in flight per priority; a request
    /// nobody wants any more is cancelled, so the newest wish always wins.
    pub fn plan(&self) -> Vec<EngineCommand> {
        let interactive = self.interactive_wants();
        let prefetch = self.prefetch_wants();
        let in_flight: Vec<CamKey> = [self.interactive, self.prefetch]
            .into_iter()
            .flatten()
            .map(|(_, key)| key)
            .collect();
        let mut commands = Vec::new();
        for (slot, list, priority) in [
            (self.interactive, &interactive, Priority::Interactive),
            (self.prefetch, &prefetch, Priority::Prefetch),
        ] {
            if let Some((id, key)) = slot {
                // An interactive request must still be for what is on screen; a prefetch
                // may have become what is on screen.
                let keep = match priority {
                    Priority::Interactive => interactive.contains(&key),
                    Priority::Prefetch => interactive.contains(&key) || prefetch.contains(&key),
                };
                if keep {
                    continue;
                }
                commands.push(EngineCommand::Cancel(id));
            }
            let next = list.iter().find(|key| {
                self.cams.peek(key).is_none()
                    && !self.cam_errors.contains_key(key)
                    && !in_flight.contains(key)
                    && self.volumes.peek(&(key.case, key.plane)).is_some()
            });
            if let Some(key) = next {
                commands.push(EngineCommand::Submit(*key, priority));
            }
        }
        commands
    }

    /// Records what [`App::plan`]'s commands became.
    pub fn submitted(&mut self, key: CamKey, priority: Priority, id: RequestId) {
        let slot = match priority {
            Priority::Interactive => &mut self.interactive,
            Priority::Prefetch => &mut self.prefetch,
        };
        *slot = Some((id, key));
    }

    pub fn cancelled(&mut self, id: RequestId) {
        for slot in [&mut self.interactive, &mut self.prefetch] {
            if slot.is_some_and(|(i, _)| i == id) {
                *slot = None;
            }
        }
    }

    /// A result from the engine. Results of requests no longer in flight (cancelled,
    /// superseded) are dropped: only the newest request's answer is shown.
    pub fn engine_result(&mut self, result: EngineResult) {
        let Some(key) = self.take_in_flight(result.id) else {
            return;
        };
        match result.outcome {
            Ok(explanation) => {
                self.worker_error = None;
                if result.timings.cpu_fallback {
                    self.message = Some(format!(
                        "{} {}: the {} ran out of memory; computed on the CPU",
                        key.task, key.plane, self.info.device
                    ));
                }
                self.explained(key, explanation);
            }
            Err(err) if is_dropped(&err) => {}
            Err(err) => {
                let text = err.to_string();
                self.worker_error = Some(format!("{} {}: {text}", key.task, key.plane));
                self.cam_errors.insert(key, text);
            }
        }
    }

    fn take_in_flight(&mut self, id: RequestId) -> Option<CamKey> {
        [&mut self.interactive, &mut self.prefetch]
            .into_iter()
            .find(|slot| slot.is_some_and(|(i, _)| i == id))
            .and_then(|slot| slot.take())
            .map(|(_, key)| key)
    }

    fn explained(&mut self, key: CamKey, explanation: Explanation) {
        let before = self.combined(key.case, key.task);
        if let Some(case) = self.cases.get_mut(key.case) {
            case.planes[key.task.index()][key.plane.index()] = Some(explanation.probability);
        }
        let top = crate::model::network::top_class(&explanation.scores);
        let bytes = explanation.raw.len() * 4 + explanation.maps.len() + explanation.scores.len();
        // The shown exam's CAMs were maybe inserted long ago (lookups do not count as uses):
        // mark them used, so that a prefetched result drops others, never what is on screen.
        if let Some(case) = self.current() {
            for plane in Plane::ALL {
                for method in [self.display.method, Method::Contrib] {
                    let shown = self.cam_key(case, plane, method);
                    self.cams.touch(&shown);
                }
            }
        }
        self.cams.insert(key, Arc::new(explanation), bytes);
        let shown = self.current() == Some(key.case) && key.task == self.task;
        if shown && key.method == Method::Contrib && self.auto_slice[key.plane.index()] {
            self.slices[key.plane.index()] = top;
        }
        if before != self.combined(key.case, key.task) {
            self.refresh_view();
        }
    }

    /// Probabilities for one exam from the background scoring of the whole list.
    pub fn scored(&mut self, case: usize, outcome: Result<[[Option<f32>; 3]; 3], String>) {
        let Some(entry) = self.cases.get_mut(case) else {
            return;
        };
        match outcome {
            Ok(planes) => {
                for (known, new) in entry
                    .planes
                    .iter_mut()
                    .flatten()
                    .zip(planes.iter().flatten())
                {
                    *known = known.or(*new);
                }
            }
            Err(err) => entry.failed = Some(err),
        }
        self.refresh_view();
    }

    /// Checks what the state promises between events (the soak test calls it after each of
    /// thousands of random ones). Returns the first broken promise, named, with its values:
    ///
    /// - the list: `view` holds case indices in range, each once, exactly the exams the
    ///   filter and the search admit (worked out again here, not read from `view`), in the
    ///   sort's order; `selected` is a row of `view`, or 0 with nothing selected when the view
    ///   is empty;
    /// - the counts: TP + FN + FP + TN is the number of exams with both a label and a combined
    ///   probability for the task; without a search, a confusion-cell or label filter lists
    ///   exactly its count, and `all` lists every exam;
    /// - every probability known so far lies in 0–1;
    /// - per plane, the slice shown is within the selected exam's series when it is loaded;
    /// - threshold and opacity are finite and in 0–1; plane and task are tabs that exist;
    /// - in flight: at most one interactive and one prefetch request (by their type), with
    ///   different ids and keys, each for an exam of the list with a model for its task and
    ///   plane, and neither already cached nor already failed;
    /// - the kept series within their slots; each plane's last image is of that plane.
    pub fn check_invariants(&self) -> Result<(), String> {
        let cases = self.cases.len();
        let task = self.task.index();

        // The list: in range, no duplicates, exactly what filter and search admit.
        let query = self.search.query.trim().to_ascii_lowercase();
        let admits = |case: usize| -> bool {
            let by_filter = match self.filter {
                Filter::All => true,
                Filter::Cell(cell) => self.confusion(case) == Some(cell),
                Filter::Label(label) => self.cases[case].labels[task] == Some(label),
            };
            by_filter && (query.is_empty() || self.cases[case].name.contains(query.as_str()))
        };
        let mut listed = vec![false; cases];
        for (row, &case) in self.view.iter().enumerate() {
            if case >= cases {
                return Err(format!(
                    "view row {row} is case {case}, but there are {cases} cases"
                ));
            }
            if std::mem::replace(&mut listed[case], true) {
                return Err(format!("case {case} is listed twice (row {row})"));
            }
            if !admits(case) {
                return Err(format!(
                    "case {case} ({}) is listed, but filter {} with search {:?} (task {}, \
                     threshold {}) does not admit it",
                    self.cases[case].name,
                    self.filter.name(),
                    self.search.query,
                    self.task,
                    self.threshold
                ));
            }
        }
        if let Some(missing) = (0..cases).find(|&case| !listed[case] && admits(case)) {
            return Err(format!(
                "case {missing} ({}) passes filter {} with search {:?} but is not listed \
                 ({} of {cases} listed)",
                self.cases[missing].name,
                self.filter.name(),
                self.search.query,
                self.view.len()
            ));
        }

        // The list's order.
        let rank = |case: usize| -> f32 {
            match (self.sort, self.combined(case, self.task)) {
                (Sort::Id, _) => 0.0,
                (_, None) => f32::INFINITY,
                (Sort::Probability, Some(p)) => -p,
                (Sort::Closeness, Some(p)) => (p - self.threshold).abs(),
            }
        };
        for (row, pair) in self.view.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            let order = rank(a)
                .total_cmp(&rank(b))
                .then_with(|| self.cases[a].name.cmp(&self.cases[b].name));
            if order == Ordering::Greater {
                return Err(format!(
                    "rows {row} and {} (cases {a} {} and {b} {}) are out of {} order",
                    row + 1,
                    self.cases[a].name,
                    self.cases[b].name,
                    self.sort.name()
                ));
            }
        }

        // The selection.
        if self.view.is_empty() {
            if self.selected != 0 || self.current().is_some() {
                return Err(format!(
                    "the view is empty but row {} is selected",
                    self.selected
                ));
            }
        } else if self.selected >= self.view.len() {
            return Err(format!(
                "row {} is selected, but the view has {} rows",
                self.selected,
                self.view.len()
            ));
        }

        // The counts.
        let counts = self.confusion_counts();
        let known = (0..cases)
            .filter(|&case| {
                self.cases[case].labels[task].is_some() && self.combined(case, self.task).is_some()
            })
            .count();
        if counts.iter().sum::<usize>() != known {
            return Err(format!(
                "confusion counts {counts:?} (TP FN FP TN) add up to {}, but {known} exams have \
                 a label and a probability for {}",
                counts.iter().sum::<usize>(),
                self.task
            ));
        }
        if query.is_empty() {
            let expected = match self.filter {
                Filter::All => cases,
                Filter::Cell(cell) => {
                    counts[Confusion::ALL.iter().position(|c| *c == cell).unwrap_or(0)]
                }
                Filter::Label(label) => self
                    .cases
                    .iter()
                    .filter(|c| c.labels[task] == Some(label))
                    .count(),
            };
            if self.view.len() != expected {
                return Err(format!(
                    "filter {} lists {} exams, but its count is {expected}",
                    self.filter.name(),
                    self.view.len()
                ));
            }
        }
        for (case, entry) in self.cases.iter().enumerate() {
            for (t, planes) in entry.planes.iter().enumerate() {
                for (p, probability) in planes.iter().enumerate() {
                    if let Some(value) = probability.filter(|v| !(0.0..=1.0).contains(v)) {
                        return Err(format!(
                            "case {case} task {t} plane {p}: probability {value} is not in 0–1"
                        ));
                    }
                }
            }
        }

        // Slices, settings, tabs.
        for plane in Plane::ALL {
            let count = self.slice_count(plane);
            let slice = self.slices[plane.index()];
            if count > 0 && slice >= count {
                return Err(format!(
                    "{plane} slice {slice} is past the selected exam's {count} slices"
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is not in 0–1", self.threshold));
        }
        if !(0.0..=1.0).contains(&self.display.opacity) {
            return Err(format!("opacity {} is not in 0–1", self.display.opacity));
        }
        if Plane::ALL.get(self.plane.index()) != Some(&self.plane)
            || Task::ALL.get(task) != Some(&self.task)
        {
            return Err(format!(
                "plane {} or task {} is not a tab",
                self.plane, self.task
            ));
        }

        // Requests in flight.
        if let (Some((a, key_a)), Some((b, key_b))) = (self.interactive, self.prefetch) {
            if a == b || key_a == key_b {
                return Err(format!(
                    "interactive {a:?} {key_a:?} and prefetch {b:?} {key_b:?} are the same request"
                ));
            }
        }
        for (slot, in_flight) in [
            ("interactive", self.interactive),
            ("prefetch", self.prefetch),
        ] {
            let Some((id, key)) = in_flight else {
                continue;
            };
            let problem = if key.case >= cases {
                Some("its case is out of range")
            } else if !self.has_model(key.task, key.plane) {
                Some("there is no model for it")
            } else if self.cams.contains(&key) {
                Some("its CAM is already cached")
            } else if self.cam_errors.contains_key(&key) {
                Some("it already failed")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(format!(
                    "{slot} request {id:?} {key:?} in flight, but {problem}"
                ));
            }
        }

        // Caches.
        if self.volumes.len() > VOLUME_SLOTS {
            return Err(format!(
                "{} series kept, over the {VOLUME_SLOTS} slots",
                self.volumes.len()
            ));
        }
        for plane in Plane::ALL {
            if let Some(key) = self.images.last[plane.index()].filter(|k| k.plane != plane) {
                return Err(format!(
                    "the last {plane} image is of the {} plane",
                    key.plane
                ));
            }
        }
        Ok(())
    }
}

fn is_dropped(err: &EngineError) -> bool {
    matches!(
        err,
        EngineError::Superseded(_) | EngineError::Cancelled | EngineError::ShutDown
    )
}

fn next_of<T: Copy + PartialEq>(all: &[T], current: T) -> T {
    let position = all.iter().position(|x| *x == current).unwrap_or(0);
    all[(position + 1) % all.len()]
}

/// `value + delta` on a 0–1 scale, rounded to hundredths so repeated steps stay exact.
fn step(value: f32, delta: f32) -> f32 {
    ((value + delta).clamp(0.0, 1.0) * 100.0).round() / 100.0
}
