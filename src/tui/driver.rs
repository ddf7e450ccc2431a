//! Glue between the state and the workers: turns events into actions and results, keeps the
//! engine and the encoder fed with what the state wants. The terminal loop and the headless
//! tests and benchmark drive the same `Driver`.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use ratatui_image::picker::Picker;

use crate::cam::store::{CacheKey, Store};
use crate::cam::CamSpec;
use crate::data::dataset::Exam;
use crate::data::Plane;
use crate::engine::{CacheRef, CamRequest, Engine, EngineEvent};
use crate::model::manifest::ModelEntry;

use super::action::Action;
use super::app::{App, CamKey, Effect, EngineCommand};
use super::images::{self, Encoded, Encoder};
use super::{export, ui};

/// Plane probabilities of one exam: [task][plane].
pub type Scores = [[Option<f32>; 3]; 3];

/// Everything the explorer reacts to, from every source, on one channel.
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    Engine(EngineEvent),
    Encoded(Encoded),
    Scored(usize, Result<Scores, String>),
    Exported(Result<String, String>),
    /// SIGTERM, SIGHUP or SIGINT: leave cleanly.
    Terminate,
}

/// Where images get encoded: a thread (the terminal) or inline (tests, benchmark).
pub enum ImageSink {
    Thread(Encoder),
    Inline(Picker),
}

/// The CAM store and what its keys need to know about each (task, plane) model.
#[derive(Clone)]
pub struct StoreSetup {
    pub store: Arc<Store>,
    /// Per [task][plane]: the manifest's entry for the model the engine loads.
    pub models: [[Option<ModelEntry>; 3]; 3],
}

pub struct Driver {
    pub app: App,
    exams: Vec<Exam>,
    engine: Engine,
    images: ImageSink,
    export_folder: PathBuf,
    events: Sender<Event>,
    /// Exams still being scored in the background.
    pub scoring: usize,
    store: Option<StoreSetup>,
    /// sha256 of each loaded series' file, for the store's keys.
    exam_sha256: HashMap<(usize, Plane), String>,
    /// Dropped after the engine (fields drop in order), stopping the scoring thread.
    pub scorer: Option<super::ScorerHandle>,
}

impl Driver {
    pub fn new(
        app: App,
        exams: Vec<Exam>,
        engine: Engine,
        images: ImageSink,
        export_folder: PathBuf,
        events: Sender<Event>,
    ) -> Driver {
        Driver {
            app,
            exams,
            engine,
            images,
            export_folder,
            events,
            scoring: 0,
            store: None,
            exam_sha256: HashMap::new(),
            scorer: None,
        }
    }

    /// Reads CAMs from the store first and keeps what the engine computes there.
    pub fn with_store(mut self, store: Option<StoreSetup>) -> Driver {
        self.store = store;
        self
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Applies one event to the state.
    pub fn handle(&mut self, event: Event) {
        match event {
            Event::Key(key) => self.key(key),
            Event::Mouse(mouse) => self.mouse(mouse),
            Event::Resize(width, height) => self.app.size = (width, height),
            Event::Engine(EngineEvent::Finished(result)) => self.app.engine_result(*result),
            Event::Engine(_) => {}
            Event::Encoded(encoded) => {
                let on_screen = self.wanted_images().contains(&encoded.key);
                if let Some(err) = self.app.images.received(encoded, on_screen) {
                    self.app.message = Some(err);
                }
            }
            Event::Scored(case, outcome) => {
                self.scoring = self.scoring.saturating_sub(1);
                self.app.scored(case, outcome);
            }
            Event::Exported(outcome) => {
                self.app.message = Some(match outcome {
                    Ok(text) => text,
                    Err(err) => {
                        tracing::warn!("export failed: {err}");
                        // The cause (the OS's words, last) first: the status line is one row.
                        let cause = err.rsplit(": ").next().unwrap_or(&err);
                        format!("export failed: {cause} — {err}")
                    }
                })
            }
            Event::Terminate => self.app.quit = true,
        }
    }

    fn key(&mut self, key: KeyEvent) {
        if key.kind == crossterm::event::KeyEventKind::Release {
            return;
        }
        let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers == KeyModifiers::CONTROL;
        if self.app.search.editing && !ctrl_c {
            self.app.search_input(key.code);
            return;
        }
        if self.app.help && key.code == KeyCode::Esc {
            self.app.help = false;
            return;
        }
        match self.app.keymap.action(&key) {
            Some(action) => self.act(action),
            None if ctrl_c => self.app.quit = true,
            None => {}
        }
    }

    /// Applies an action and carries out what it asks of the outside world.
    pub fn act(&mut self, action: Action) {
        if let Some(Effect::Export(case)) = self.app.apply(action) {
            self.export(case);
        }
    }

    fn mouse(&mut self, mouse: MouseEvent) {
        match mouse.kind {
            MouseEventKind::ScrollDown => self.act(Action::NextSlice),
            MouseEventKind::ScrollUp => self.act(Action::PrevSlice),
            MouseEventKind::Down(MouseButton::Left) => {
                let area = Rect::new(0, 0, self.app.size.0, self.app.size.1);
                if let Some(row) = ui::list_row_at(&self.app, area, mouse.column, mouse.row) {
                    self.app.select(row);
                }
            }
            _ => {}
        }
    }

    fn export(&mut self, case: usize) {
        let job = export::Job::from_app(&self.app, case, &self.exams, &self.export_folder);
        let events = self.events.clone();
        self.app.message = Some("exporting…".into());
        let spawned = std::thread::Builder::new()
            .name("kneecam-export".into())
            .spawn(move || {
                let _ = events.send(Event::Exported(export::run(job)));
            });
        if let Err(err) = spawned {
            self.app.message = Some(format!("export failed: {err}"));
        }
    }

    /// Brings the workers in line with the state: series read, engine requests submitted or
    /// cancelled, images encoded for what is on screen.
    pub fn sync(&mut self) {
        self.load_volumes();
        self.sync_engine();
        self.sync_images();
    }

    fn load_volumes(&mut self) {
        for (case, plane) in self.app.wanted_volumes() {
            let loaded = match self.exams.get(case) {
                // The file's sha256 names its CAM store entries; without a store it is not needed.
                Some(exam) if exam.path(plane).is_some() && self.store.is_some() => exam
                    .load_hashed(plane)
                    .map(|(volume, sha)| {
                        self.exam_sha256.insert((case, plane), sha);
                        Arc::new(volume.data)
                    })
                    .map_err(|e| e.to_string()),
                Some(exam) if exam.path(plane).is_some() => exam
                    .load(plane)
                    .map(|volume| Arc::new(volume.data))
                    .map_err(|e| e.to_string()),
                _ => Err(format!("no {plane} series")),
            };
            self.app.volume_loaded(case, plane, loaded);
        }
    }

    fn sync_engine(&mut self) {
        for command in self.app.plan() {
            match command {
                EngineCommand::Cancel(id) => {
                    // A stopped engine has nothing left to cancel.
                    let _ = self.engine.cancel(id);
                    self.app.cancelled(id);
                }
                EngineCommand::Submit(key, priority) => {
                    let Some(Ok(volume)) = self.app.volume(key.case, key.plane) else {
                        continue;
                    };
                    let request = CamRequest {
                        volume: Arc::clone(volume),
                        task: key.task,
                        plane: key.plane,
                        spec: CamSpec {
                            method: key.method,
                            class: self.app.positive_class[key.task.index()][key.plane.index()],
                            normalization: key.normalization,
                        },
                        priority,
                        cache: self.cache_ref(key),
                    };
                    match self.engine.submit(request) {
                        Ok(id) => self.app.submitted(key, priority, id),
                        Err(err) => {
                            self.app.worker_error = Some(err.to_string());
                            self.app.cam_errors.insert(key, err.to_string());
                        }
                    }
                }
            }
        }
    }

    /// Where `key`'s CAM sits in the store, when there is a store and both shas are known.
    fn cache_ref(&self, key: CamKey) -> Option<CacheRef> {
        let setup = self.store.as_ref()?;
        let entry = setup.models[key.task.index()][key.plane.index()].as_ref()?;
        let exam_sha256 = self.exam_sha256.get(&(key.case, key.plane))?;
        Some(CacheRef {
            store: Arc::clone(&setup.store),
            key: CacheKey::for_model(entry, exam_sha256, key.method),
        })
    }

    /// The image keys on screen now.
    pub fn wanted_images(&self) -> Vec<images::ImageKey> {
        let area = Rect::new(0, 0, self.app.size.0, self.app.size.1);
        let Some(layout) = ui::layout(area, &self.app) else {
            return Vec::new();
        };
        if self.app.help {
            return Vec::new();
        }
        layout
            .panes
            .iter()
            .filter_map(|pane| images::wanted_key(&self.app, pane.plane, pane.image))
            .collect()
    }

    /// The slices next to those on screen (±1, ±2), encoded ahead when images are encoded on
    /// a thread, so that holding a slice key finds them ready.
    fn neighbour_images(&self) -> Vec<images::ImageKey> {
        if !matches!(self.images, ImageSink::Thread(_)) {
            return Vec::new();
        }
        let mut keys = Vec::new();
        for key in self.wanted_images() {
            let count = self.app.slice_count(key.plane);
            for delta in [1isize, -1, 2, -2] {
                let slice = key.slice as isize + delta;
                if (0..count as isize).contains(&slice) {
                    keys.push(images::ImageKey {
                        slice: slice as usize,
                        ..key
                    });
                }
            }
        }
        keys
    }

    fn sync_images(&mut self) {
        let visible = self.wanted_images();
        let wanted: Vec<_> = visible
            .iter()
            .copied()
            .chain(self.neighbour_images())
            .filter(|key| {
                !self.app.images.store.contains(key) && !self.app.images.pending.contains(key)
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        self.app.images.generation += 1;
        let generation = self.app.images.generation;
        for key in wanted {
            let Some(job) = images::job_for(&self.app, key, generation) else {
                continue;
            };
            match &self.images {
                ImageSink::Thread(encoder) => {
                    if encoder.submit(job) {
                        self.app.images.pending.insert(key);
                    }
                }
                ImageSink::Inline(picker) => {
                    let image = Some(images::encode(picker, &job));
                    let on_screen = visible.contains(&key);
                    if let Some(err) = self.app.images.received(Encoded { key, image }, on_screen) {
                        self.app.message = Some(err);
                    }
                }
            }
        }
    }

    /// Marks the images on screen as recently used, so the cache drops others first.
    pub fn touch_visible(&mut self) {
        for key in self.wanted_images() {
            self.app.images.store.touch(&key);
        }
    }

    /// Nothing computing, encoding or scoring.
    pub fn is_settled(&self) -> bool {
        !self.app.is_busy() && self.app.images.pending.is_empty() && self.scoring == 0
    }

    /// Headless: handles events from `inbox` until everything settled (or `patience` ran out,
    /// which is an error naming what was still going on).
    pub fn settle(&mut self, inbox: &Receiver<Event>, patience: Duration) -> Result<(), String> {
        let deadline = Instant::now() + patience;
        self.sync();
        while !self.is_settled() {
            let left = deadline.saturating_duration_since(Instant::now());
            match inbox.recv_timeout(left) {
                Ok(event) => {
                    self.handle(event);
                    self.sync();
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "not settled after {patience:?}: engine {:?}/{:?}, {} images, {} exams \
                         scoring",
                        self.app.interactive,
                        self.app.prefetch,
                        self.app.images.pending.len(),
                        self.scoring
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the event channel closed".into())
                }
            }
        }
        Ok(())
    }

    /// The series of `case` for `plane`, if it is an exam of this session.
    pub fn exam(&self, case: usize) -> Option<&Exam> {
        self.exams.get(case)
    }

    pub fn planes_of(&self, case: usize) -> Vec<Plane> {
        self.exams
            .get(case)
            .map(|e| e.available_planes().collect())
            .unwrap_or_default()
    }
}
