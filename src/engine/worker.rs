//! The engine thread: owns the device's models, serves one request at a time, and between
//! (and inside) requests drains its command channel so the newest request wins.
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tch::Device;
use tracing::{debug, warn};

use super::message::{
    CamRequest, EngineError, EngineEvent, EngineResult, EngineStatus, ExamScores, Loader, ModelKey,
    Notify, RequestId, ScoreRequest, ScoreResult, Timings,
};
use super::score;
use super::slots::{Queued, Slots, Work};
use crate::cam::{self, Explanation, Placement};
use crate::model::cache::ModelCache;
use crate::model::loaded::LoadedModel;

pub(crate) enum Command {
    Submit(Box<Queued>),
    Cancel(RequestId),
    /// Drop one cached model, or all of them.
    Invalidate(Option<ModelKey>),
    Status,
    Shutdown,
}

/// The request being computed, and what arrived for it meanwhile.
struct Running {
    id: RequestId,
    cancelled: bool,
    /// The model out of its cache while in use, and the device it is on.
    in_use: Option<(ModelKey, Device)>,
    /// The model in use was invalidated meanwhile: do not cache it afterwards.
    invalidated: bool,
}

pub(crate) struct Worker {
    device: Device,
    loader: Loader,
    notify: Notify,
    commands: Receiver<Command>,
    models: ModelCache,
    /// CPU copies of models the device had no memory for (empty when the device is the CPU).
    fallback_models: ModelCache,
    slots: Slots,
    running: Option<Running>,
    stopping: bool,
    finished: u64,
}

impl Worker {
    pub fn new(
        device: Device,
        loader: Loader,
        notify: Notify,
        commands: Receiver<Command>,
    ) -> Self {
        Worker {
            device,
            loader,
            notify,
            commands,
            models: ModelCache::new(),
            fallback_models: ModelCache::new(),
            slots: Slots::default(),
            running: None,
            stopping: false,
            finished: 0,
        }
    }

    /// Serves requests until told to shut down (or every handle is gone). Blocks on the
    /// channel when there is nothing to do.
    pub fn run(mut self) {
        debug!(device = ?self.device, "engine started");
        loop {
            self.drain();
            if self.stopping {
                break;
            }
            if let Some(job) = self.slots.next() {
                self.serve(job);
                continue;
            }
            match self.commands.recv() {
                Ok(command) => self.handle(command),
                Err(_) => break,
            }
        }
        // Requests sent before the shutdown but not yet read still get their result.
        self.drain();
        for job in self.slots.drain() {
            self.drop_job(job, EngineError::ShutDown);
        }
        debug!(finished = self.finished, "engine stopped");
    }

    /// Handles every command already queued, without blocking.
    fn drain(&mut self) {
        while let Ok(command) = self.commands.try_recv() {
            self.handle(command);
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Submit(job) => {
                let job = *job;
                debug!(id = %job.id, priority = ?job.priority(), "request queued");
                let by = job.id;
                if self.stopping {
                    self.drop_job(job, EngineError::ShutDown);
                } else if let Some(old) = self.slots.push(job) {
                    self.drop_job(old, EngineError::Superseded(by));
                }
            }
            Command::Cancel(id) => {
                if let Some(job) = self.slots.cancel(id) {
                    self.drop_job(job, EngineError::Cancelled);
                } else if let Some(running) = self.running.as_mut().filter(|r| r.id == id) {
                    debug!(%id, "running request cancelled");
                    running.cancelled = true;
                }
            }
            Command::Invalidate(key) => {
                self.models.forget(key);
                self.fallback_models.forget(key);
                if let Some(running) = self.running.as_mut() {
                    let hit = running
                        .in_use
                        .is_some_and(|(used, _)| key.is_none_or(|key| key == used));
                    running.invalidated |= hit;
                }
                debug!(?key, "model cache invalidated");
            }
            Command::Status => {
                let status = self.status();
                (self.notify)(EngineEvent::Status(status));
            }
            Command::Shutdown => self.stopping = true,
        }
    }

    fn status(&self) -> EngineStatus {
        let mut models = self.models.keys();
        let mut cpu_fallback_models = self.fallback_models.keys();
        if let Some(running) = self.running.as_ref().filter(|r| !r.invalidated) {
            match running.in_use {
                Some((key, device)) if device == self.device => models.push(key),
                Some((key, _)) => cpu_fallback_models.push(key),
                None => {}
            }
        }
        models.sort();
        cpu_fallback_models.sort();
        EngineStatus {
            device: self.device,
            running: self.running.as_ref().map(|r| r.id),
            pending: self.slots.waiting(),
            models,
            cpu_fallback_models,
            finished: self.finished,
        }
    }

    fn serve(&mut self, job: Queued) {
        debug!(
            id = %job.id,
            priority = ?job.priority(),
            queued_ms = millis(job.submitted.elapsed()),
            "request started"
        );
        self.running = Some(Running {
            id: job.id,
            cancelled: false,
            in_use: None,
            invalidated: false,
        });
        let mut timings = Timings::default();
        match job.work {
            Work::Cam(request) => {
                (self.notify)(EngineEvent::Started {
                    id: job.id,
                    task: request.task,
                    plane: request.plane,
                });
                let outcome = self.explain(&request, &mut timings);
                let outcome = self.unless_cancelled(outcome);
                self.finish_cam(job.id, request, outcome, timings);
            }
            Work::Score(request) => {
                let outcome = self.score(&request, &mut timings);
                let outcome = self.unless_cancelled(outcome);
                self.finish_score(job.id, outcome, timings);
            }
        }
    }

    /// A cancellation that arrived while the last stage ran still discards the result.
    fn unless_cancelled<R>(&mut self, outcome: Result<R, EngineError>) -> Result<R, EngineError> {
        self.drain();
        match self.running.take() {
            Some(running) if running.cancelled => Err(EngineError::Cancelled),
            _ => outcome,
        }
    }

    fn explain(
        &mut self,
        request: &CamRequest,
        timings: &mut Timings,
    ) -> Result<Explanation, EngineError> {
        let (slices, height, width) = request.volume.dim();
        if slices == 0 || height == 0 || width == 0 {
            return Err(EngineError::EmptyVolume {
                slices,
                height,
                width,
            });
        }
        if let Some(explained) = stored(request, timings) {
            return Ok(explained);
        }
        self.with_model(request.key(), timings, |model, timings| {
            explain_with(model, request, timings)
        })
    }

    fn score(
        &mut self,
        request: &ScoreRequest,
        timings: &mut Timings,
    ) -> Result<ExamScores, EngineError> {
        let store = request.store.as_deref();
        score::exam_scores(&request.exam, &request.models, store, |key, volume| {
            self.checkpoint()?;
            self.with_model(key, timings, |model, _| probability_with(model, volume))
        })
    }

    /// Runs `work` with the model for `key` on the engine's device; when the device runs out
    /// of memory, once more with a CPU copy (the next request tries the device again).
    fn with_model<R>(
        &mut self,
        key: ModelKey,
        timings: &mut Timings,
        mut work: impl FnMut(&LoadedModel, &mut Timings) -> Result<R, EngineError>,
    ) -> Result<R, EngineError> {
        match self.with_model_on(self.device, key, timings, &mut work) {
            Err(err) if self.device != Device::Cpu && err.is_out_of_memory() => {
                warn!("{err}; computing this request on the CPU");
                // The cached device models hold the memory: they go, so the next request
                // finds the device as free as it can be.
                self.models.forget(None);
                timings.cpu_fallback = true;
                self.checkpoint()?;
                self.with_model_on(Device::Cpu, key, timings, &mut work)
            }
            Ok(done) => {
                if self.device != Device::Cpu {
                    // The device works for this model again: its CPU copy is not needed.
                    self.fallback_models.forget(Some(key));
                }
                Ok(done)
            }
            other => other,
        }
    }

    /// Loads (or reuses) `key`'s model on `device` and runs `work` with it there.
    fn with_model_on<R>(
        &mut self,
        device: Device,
        key: ModelKey,
        timings: &mut Timings,
        work: &mut impl FnMut(&LoadedModel, &mut Timings) -> Result<R, EngineError>,
    ) -> Result<R, EngineError> {
        let fallback = device != self.device;
        let cached = self.cache(fallback).take(key);
        let model = match cached {
            Some(model) => model,
            None => {
                let started = Instant::now();
                let loaded = self.load(key, device);
                timings.load_model_ms += millis(started.elapsed());
                loaded?
            }
        };
        if let Some(running) = self.running.as_mut() {
            running.in_use = Some((key, device));
            running.invalidated = false;
        }
        let outcome = self.checkpoint().and_then(|()| work(&model, timings));
        // A model invalidated while in use is not kept: the next request loads it afresh.
        let invalidated = self.running.as_mut().is_some_and(|running| {
            running.in_use = None;
            running.invalidated
        });
        if !invalidated {
            self.cache(fallback).put(key, model);
        }
        outcome
    }

    fn cache(&mut self, fallback: bool) -> &mut ModelCache {
        if fallback {
            &mut self.fallback_models
        } else {
            &mut self.models
        }
    }

    /// Between stages: reads what arrived meanwhile; the running request stops here when it
    /// was cancelled or the engine is shutting down.
    fn checkpoint(&mut self) -> Result<(), EngineError> {
        self.drain();
        if self.stopping {
            Err(EngineError::ShutDown)
        } else if self.running.as_ref().is_some_and(|r| r.cancelled) {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn load(&mut self, key: ModelKey, device: Device) -> Result<LoadedModel, EngineError> {
        let loader = &mut self.loader;
        match guarded(|| loader(key, device)) {
            Ok(Ok(model)) => {
                debug!(task = %key.0, plane = %key.1, "model loaded");
                Ok(model)
            }
            Ok(Err(err)) => Err(EngineError::Load(err)),
            Err(message) => Err(EngineError::Panicked {
                during: "loading the model",
                message,
            }),
        }
    }

    /// Ends a request that never ran (superseded, cancelled, shut down).
    fn drop_job(&mut self, job: Queued, why: EngineError) {
        match job.work {
            Work::Cam(request) => self.finish_cam(job.id, request, Err(why), Timings::default()),
            Work::Score(_) => self.finish_score(job.id, Err(why), Timings::default()),
        }
    }

    fn finish_cam(
        &mut self,
        id: RequestId,
        request: CamRequest,
        outcome: Result<Explanation, EngineError>,
        timings: Timings,
    ) {
        self.finished += 1;
        log_outcome(id, &outcome, &timings);
        (self.notify)(EngineEvent::Finished(Box::new(EngineResult {
            id,
            task: request.task,
            plane: request.plane,
            spec: request.spec,
            priority: request.priority,
            outcome,
            timings,
        })));
    }

    fn finish_score(
        &mut self,
        id: RequestId,
        outcome: Result<ExamScores, EngineError>,
        timings: Timings,
    ) {
        self.finished += 1;
        log_outcome(id, &outcome, &timings);
        (self.notify)(EngineEvent::Scored(Box::new(ScoreResult { id, outcome })));
    }
}

fn log_outcome<R>(id: RequestId, outcome: &Result<R, EngineError>, timings: &Timings) {
    match outcome {
        Ok(_) => debug!(
            %id,
            load_model_ms = timings.load_model_ms,
            forward_ms = timings.forward_ms,
            cam_ms = timings.cam_ms,
            "request done"
        ),
        Err(error) if error.is_dropped() => debug!(%id, "request dropped: {error}"),
        Err(error) => warn!(%id, "request failed: {error}"),
    }
}

/// The request's result from the CAM store, when it is there and sound. A corrupt entry is
/// logged and recomputed (and replaced).
fn stored(request: &CamRequest, timings: &mut Timings) -> Option<Explanation> {
    let cache = request.cache.as_ref()?;
    let started = Instant::now();
    match cache.store.get(&cache.key) {
        Ok(Some(entry)) if entry.raw.dim().0 == request.volume.dim().0 => {
            let spec = &request.spec;
            let explained = guarded(|| entry.explain(spec.method, spec.normalization)).ok()?;
            timings.cam_ms = millis(started.elapsed());
            timings.from_store = true;
            Some(explained)
        }
        Ok(_) => None,
        Err(err) => {
            warn!("CAM store: {err}; recomputing");
            None
        }
    }
}

/// Keeps a computed result in the CAM store; a store that cannot be written is logged, the
/// result still goes out.
fn keep(request: &CamRequest, explained: &Explanation, placement: Placement) {
    if let Some(cache) = &request.cache {
        let entry = crate::cam::store::Entry::from_explanation(explained, placement);
        if let Err(err) = cache.store.put(&cache.key, &entry) {
            warn!("CAM store: {err}");
        }
    }
}

fn explain_with(
    model: &LoadedModel,
    request: &CamRequest,
    timings: &mut Timings,
) -> Result<Explanation, EngineError> {
    let volume = &*request.volume;
    model.check_input(volume)?;
    let (_, height, width) = volume.dim();
    let device = model.device();
    let placement = Placement {
        window: model.preprocess.window(height, width),
        slice: (height, width),
    };
    let outcome = guarded(|| {
        let started = Instant::now();
        let x = tch::no_grad(|| model.preprocess.input(volume, device));
        let pass = cam::forward(&model.network, &x)?;
        let forward_ms = millis(started.elapsed());
        let started = Instant::now();
        let explained = cam::explain_forward(&model.network, &pass, &request.spec, placement)?;
        Ok::<_, cam::CamError>((explained, forward_ms, millis(started.elapsed())))
    });
    match outcome {
        Ok(Ok((explained, forward_ms, cam_ms))) => {
            timings.forward_ms = forward_ms;
            timings.cam_ms = cam_ms;
            keep(request, &explained, placement);
            Ok(explained)
        }
        Ok(Err(err)) => Err(err.into()),
        Err(message) => Err(EngineError::Panicked {
            during: "computing the CAM",
            message,
        }),
    }
}

fn probability_with(model: &LoadedModel, volume: &ndarray::Array3<u8>) -> Result<f32, EngineError> {
    model.check_input(volume)?;
    match guarded(|| tch::no_grad(|| model.probability(volume))) {
        Ok(outcome) => outcome.map_err(EngineError::from),
        Err(message) => Err(EngineError::Panicked {
            during: "scoring",
            message,
        }),
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs `work`, turning a panic into its message, with nothing printed (see
/// [`crate::panics`]).
///
/// Grad mode is per thread, and `tch::no_grad` does not restore it when its closure panics:
/// the work runs with grad mode on (libtorch's default, which `cam::explain` expects), and the
/// mode from before is restored afterwards, panic or not.
fn guarded<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    let grad_mode = tch::no_grad_guard();
    let outcome = crate::panics::catch(|| tch::with_grad(work));
    drop(grad_mode);
    outcome
}
