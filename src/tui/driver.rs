//! Carries the state's effects out: events become messages for [`App::update`], and what it
//! returns (series to read, engine requests, exports) goes to the workers. The driver changes
//! no field of the state itself; it owns the encoded images, which are not state. The terminal
//! loop and the headless tests and benchmark drive the same `Driver`.
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui::layout::Rect;
use ratatui_image::picker::Picker;

use crate::cam::store::{CacheKey, Store};
use crate::cam::CamSpec;
use crate::data::dataset::Exam;
use crate::data::{PerTaskPlane, Plane, Task};
use crate::engine::{CacheRef, CamRequest, Engine, EngineEvent, ScoreRequest};
use crate::model::manifest::ModelEntry;
use crate::review::writer::{ReviewWriter, WriteEvent, WriteJob};
use crate::review::ReviewError;

use super::action::Action;
use super::app::{App, CamKey, Effect, Msg, Series, SeriesError, SeriesRef};
use super::export::{self, ExportError};
use super::images::{self, Encoded, Encoder, Images};
use super::loader::{self, SeriesLoader};
use super::ui;

/// Everything the explorer reacts to, from every source, on one channel.
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    Engine(EngineEvent),
    Encoded(Encoded),
    SeriesLoaded {
        which: SeriesRef,
        outcome: Result<Series, SeriesError>,
    },
    Exported(Result<String, ExportError>),
    /// What the review writer did with a write.
    Review(WriteEvent),
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
    /// The manifest's entry for the model the engine loads, per task and plane.
    pub models: PerTaskPlane<Option<ModelEntry>>,
}

pub struct Driver {
    app: App,
    images: Images,
    exams: Vec<Exam>,
    engine: Engine,
    sink: ImageSink,
    series: SeriesLoader,
    export_folder: PathBuf,
    events: Sender<Event>,
    store: Option<StoreSetup>,
    reviews: Option<ReviewWriter>,
}

/// What a driver is made of.
pub struct Parts {
    pub app: App,
    pub images: Images,
    pub exams: Vec<Exam>,
    pub engine: Engine,
    pub sink: ImageSink,
    pub export_folder: PathBuf,
    pub events: Sender<Event>,
    /// Read before the engine computes (and filled by it).
    pub store: Option<StoreSetup>,
    /// Writes the verdicts (answers come as [`Event::Review`]).
    pub reviews: Option<ReviewWriter>,
}

impl Driver {
    /// Starts the series loader and sets the workers going for the state as it is.
    pub fn new(parts: Parts) -> std::io::Result<Driver> {
        let series = SeriesLoader::spawn(parts.events.clone(), parts.store.is_some())?;
        let mut driver = Driver {
            app: parts.app,
            images: parts.images,
            exams: parts.exams,
            engine: parts.engine,
            sink: parts.sink,
            series,
            export_folder: parts.export_folder,
            events: parts.events,
            store: parts.store,
            reviews: parts.reviews,
        };
        let (width, height) = driver.app.size();
        driver.dispatch(Msg::Resize(width, height));
        Ok(driver)
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    pub fn images(&self) -> &Images {
        &self.images
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// One event: a message for the state (an encoded image goes to the image cache).
    pub fn handle(&mut self, event: Event) {
        let msg = match event {
            Event::Key(key) => Msg::Key(key),
            Event::Mouse(mouse) => Msg::Mouse(mouse),
            Event::Resize(width, height) => Msg::Resize(width, height),
            Event::Engine(EngineEvent::Finished(result)) => Msg::Explained(result),
            Event::Engine(EngineEvent::Scored(result)) => Msg::Scored(result),
            Event::Engine(_) => return,
            Event::Encoded(encoded) => {
                let on_screen = self.wanted_images().contains(&encoded.key);
                match self.images.received(encoded, on_screen) {
                    Some(err) => Msg::Notice(err),
                    None => return,
                }
            }
            Event::SeriesLoaded { which, outcome } => Msg::SeriesLoaded { which, outcome },
            Event::Exported(outcome) => Msg::Exported(outcome),
            Event::Review(event) => Msg::Reviewed(event),
            Event::Terminate => Msg::Terminate,
        };
        self.dispatch(msg);
    }

    /// An action, as if its key was pressed.
    pub fn act(&mut self, action: Action) {
        self.dispatch(Msg::Action(action));
    }

    /// Time passed while the workers run.
    pub fn tick(&mut self) {
        self.dispatch(Msg::Tick);
    }

    /// Hands `msg` to the state and carries out what it asks, including the answers that
    /// come at once (the engine's ids).
    pub fn dispatch(&mut self, msg: Msg) {
        let mut queue = VecDeque::from([msg]);
        while let Some(msg) = queue.pop_front() {
            for effect in self.app.update(msg) {
                queue.extend(self.carry_out(effect));
            }
        }
    }

    fn carry_out(&mut self, effect: Effect) -> Option<Msg> {
        match effect {
            Effect::LoadSeries(wanted) => {
                let jobs = wanted
                    .into_iter()
                    .map(|which| {
                        let exam = self.exams.get(which.case);
                        let exam =
                            exam.and_then(|e| loader::exam_for(e, which.plane, which.series));
                        (which, exam)
                    })
                    .collect();
                self.series.want(jobs);
                None
            }
            Effect::Submit(key, priority) => {
                let request = self.cam_request(key, priority);
                let outcome = match request {
                    Some(request) => self.engine.submit(request),
                    None => Err(crate::engine::Stopped),
                };
                Some(Msg::Submitted {
                    key,
                    priority,
                    outcome,
                })
            }
            Effect::Cancel(id) => {
                // A stopped engine has nothing left to cancel.
                let _ = self.engine.cancel(id);
                None
            }
            Effect::Score(case) => {
                let outcome = match self.score_request(case) {
                    Some(request) => self.engine.score(request),
                    None => Err(crate::engine::Stopped),
                };
                Some(Msg::ScoreSubmitted { case, outcome })
            }
            Effect::Export(case) => self.export(case),
            Effect::Review(job) => {
                let id = job.id;
                let taken = self.reviews.as_ref().is_some_and(|w| w.submit(*job));
                (!taken).then_some(Msg::Reviewed(WriteEvent::Failed {
                    id,
                    error: ReviewError::Stopped,
                    retry_in: std::time::Duration::ZERO,
                }))
            }
        }
    }

    /// Stops the review writer after it tried what is pending once more (waiting at most
    /// `patience`); returns the writes that may not be stored (when the writer did not
    /// answer, every write the state has not seen stored).
    pub fn finish_reviews(&mut self, patience: Duration) -> Vec<WriteJob> {
        self.reviews
            .take()
            .and_then(|writer| writer.finish(patience))
            .unwrap_or_else(|| self.app.unstored())
    }

    fn cam_request(&self, key: CamKey, priority: crate::engine::Priority) -> Option<CamRequest> {
        let volume = self.app.volume_at(key.series_ref())?;
        Some(CamRequest {
            volume: Arc::clone(volume),
            task: key.task,
            plane: key.plane,
            spec: CamSpec {
                method: key.method,
                class: self.app.positive_class(key.task, key.plane),
                normalization: key.normalization,
            },
            priority,
            cache: self.cache_ref(key),
        })
    }

    /// Where `key`'s CAM sits in the store, when there is a store and both shas are known.
    fn cache_ref(&self, key: CamKey) -> Option<CacheRef> {
        let setup = self.store.as_ref()?;
        let entry = setup.models.get(key.task, key.plane).as_ref()?;
        let series = self.app.series_at(key.series_ref())?.as_ref().ok()?;
        let exam_sha256 = series.sha256.as_deref()?;
        Some(CacheRef {
            store: Arc::clone(&setup.store),
            key: CacheKey::for_model(entry, exam_sha256, key.method),
        })
    }

    fn score_request(&self, case: usize) -> Option<ScoreRequest> {
        let exam = self.exams.get(case)?.clone();
        let models = Task::ALL
            .into_iter()
            .flat_map(|task| Plane::ALL.map(|plane| (task, plane)))
            .filter(|&(task, plane)| self.app.has_model(task, plane))
            .map(|(task, plane)| {
                let entry = self
                    .store
                    .as_ref()
                    .and_then(|setup| setup.models.get(task, plane).clone());
                ((task, plane), entry)
            })
            .collect();
        Some(ScoreRequest {
            exam,
            models,
            store: self.store.as_ref().map(|setup| Arc::clone(&setup.store)),
        })
    }

    fn export(&mut self, case: usize) -> Option<Msg> {
        let job = export::Job::from_app(&self.app, case, &self.exams, &self.export_folder);
        let events = self.events.clone();
        let spawned = std::thread::Builder::new()
            .name("kneecam-export".into())
            .spawn(move || {
                let _ = events.send(Event::Exported(export::run(job)));
            });
        spawned.err().map(|error| {
            Msg::Exported(Err(ExportError::Io {
                doing: "starting the export thread".into(),
                error,
            }))
        })
    }

    /// Brings the image encoder in line with the screen (the other workers follow every
    /// update of the state).
    pub fn sync(&mut self) {
        self.sync_images();
    }

    /// The image keys on screen now.
    pub fn wanted_images(&self) -> Vec<images::ImageKey> {
        let (width, height) = self.app.size();
        let Some(layout) = ui::layout(Rect::new(0, 0, width, height), &self.app) else {
            return Vec::new();
        };
        if self.app.help() {
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
        if !matches!(self.sink, ImageSink::Thread(_)) {
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
            .filter(|key| !self.images.store.contains(key) && !self.images.pending.contains(key))
            .collect();
        if wanted.is_empty() {
            return;
        }
        self.images.generation += 1;
        let generation = self.images.generation;
        for key in wanted {
            let Some(job) = images::job_for(&self.app, key, generation) else {
                continue;
            };
            match &self.sink {
                ImageSink::Thread(encoder) => {
                    if encoder.submit(job) {
                        self.images.pending.insert(key);
                    }
                }
                ImageSink::Inline(picker) => {
                    let image = Some(images::encode(picker, &job));
                    let on_screen = visible.contains(&key);
                    if let Some(err) = self.images.received(Encoded { key, image }, on_screen) {
                        self.dispatch(Msg::Notice(err));
                    }
                }
            }
        }
    }

    /// Drops every encoded image (they are encoded again when wanted).
    pub fn forget_images(&mut self) {
        self.images.store.clear();
    }

    /// Marks the images on screen as recently used, so the cache drops others first.
    pub fn touch_visible(&mut self) {
        for key in self.wanted_images() {
            self.images.store.touch(&key);
        }
    }

    /// Nothing computing, reading, encoding or scoring.
    pub fn is_settled(&self) -> bool {
        self.app.is_settled() && self.images.pending.is_empty()
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
                        "not settled after {patience:?}: engine {:?}, scoring {:?} ({} left), \
                         {} images",
                        self.app.in_flight(),
                        self.app.scoring(),
                        self.app.unscored(),
                        self.images.pending.len(),
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the event channel closed".into())
                }
            }
        }
        Ok(())
    }

    /// The exam behind list case `case`, if it is an exam of this session.
    pub fn exam(&self, case: usize) -> Option<&Exam> {
        self.exams.get(case)
    }

    pub fn planes_of(&self, case: usize) -> Vec<Plane> {
        self.exams
            .get(case)
            .map(|e| e.available_planes().collect())
            .unwrap_or_default()
    }

    /// The state's promises, and the image cache's (see [`App::check_invariants`]).
    #[cfg(any(test, feature = "invariants"))]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.app.check_invariants()?;
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
