//! The engine thread: owns the device's models, serves one request at a time, and between
//! (and inside) requests drains its command channel so the newest request wins.
use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tch::Device;
use tracing::{debug, warn};

use super::message::{
    EngineError, EngineEvent, EngineResult, EngineStatus, Loader, ModelKey, Notify, RequestId,
    Timings,
};
use super::slots::{Queued, Slots};
use crate::cam::{self, Explanation, Placement};
use crate::model::network::Network;
use crate::model::preprocess::Preprocess;

pub(crate) enum Command {
    Submit(Queued),
    Cancel(RequestId),
    /// Drop one cached model, or all of them.
    Invalidate(Option<ModelKey>),
    Status,
    Shutdown,
}

struct Loaded {
    network: Network,
    preprocess: Preprocess,
}

/// The request being computed, and what arrived for it meanwhile.
struct Running {
    id: RequestId,
    key: ModelKey,
    cancelled: bool,
    /// Where its model is loaded (out of the cache while in use), once it is.
    model_on: Option<Device>,
    /// Its model was invalidated while it ran: do not cache it afterwards.
    invalidated: bool,
}

pub(crate) struct Worker {
    device: Device,
    loader: Loader,
    notify: Notify,
    commands: Receiver<Command>,
    models: HashMap<ModelKey, Loaded>,
    /// CPU copies of models the device had no memory for (empty when the device is the CPU).
    fallback_models: HashMap<ModelKey, Loaded>,
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
            models: HashMap::new(),
            fallback_models: HashMap::new(),
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
            self.finish(job, Err(EngineError::ShutDown), Timings::default());
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
                debug!(id = %job.id, priority = ?job.request.priority, "request queued");
                let by = job.id;
                if self.stopping {
                    self.finish(job, Err(EngineError::ShutDown), Timings::default());
                } else if let Some(old) = self.slots.push(job) {
                    self.finish(old, Err(EngineError::Superseded(by)), Timings::default());
                }
            }
            Command::Cancel(id) => {
                if let Some(job) = self.slots.cancel(id) {
                    self.finish(job, Err(EngineError::Cancelled), Timings::default());
                } else if let Some(running) = self.running.as_mut().filter(|r| r.id == id) {
                    debug!(%id, "running request cancelled");
                    running.cancelled = true;
                }
            }
            Command::Invalidate(key) => {
                match key {
                    Some(key) => {
                        self.models.remove(&key);
                        self.fallback_models.remove(&key);
                    }
                    None => {
                        self.models.clear();
                        self.fallback_models.clear();
                    }
                }
                if let Some(running) = self.running.as_mut() {
                    running.invalidated |= key.is_none_or(|key| key == running.key);
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
        let mut models: Vec<ModelKey> = self.models.keys().copied().collect();
        let mut cpu_fallback_models: Vec<ModelKey> = self.fallback_models.keys().copied().collect();
        if let Some(running) = self.running.as_ref().filter(|r| !r.invalidated) {
            match running.model_on {
                Some(device) if device == self.device => models.push(running.key),
                Some(_) => cpu_fallback_models.push(running.key),
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
        let request = &job.request;
        let key = request.key();
        debug!(
            id = %job.id,
            task = %request.task,
            plane = %request.plane,
            method = %request.spec.method,
            queued_ms = millis(job.submitted.elapsed()),
            "request started"
        );
        self.running = Some(Running {
            id: job.id,
            key,
            cancelled: false,
            model_on: None,
            invalidated: false,
        });
        (self.notify)(EngineEvent::Started {
            id: job.id,
            task: request.task,
            plane: request.plane,
        });
        let mut timings = Timings::default();
        let outcome = self.compute(&job, &mut timings);
        // A cancellation that arrived while the last stage ran still discards the result.
        self.drain();
        let outcome = match self.running.take() {
            Some(running) if running.cancelled => Err(EngineError::Cancelled),
            _ => outcome,
        };
        self.finish(job, outcome, timings);
    }

    fn compute(&mut self, job: &Queued, timings: &mut Timings) -> Result<Explanation, EngineError> {
        let (slices, height, width) = job.request.volume.dim();
        if slices == 0 || height == 0 || width == 0 {
            return Err(EngineError::EmptyVolume {
                slices,
                height,
                width,
            });
        }
        if let Some(explained) = self.stored(job, timings) {
            return Ok(explained);
        }
        let outcome = self.compute_on(self.device, job, timings);
        match outcome {
            Err(err) if self.device != Device::Cpu && err.is_out_of_memory() => {
                warn!(id = %job.id, "{err}; computing this request on the CPU");
                // The cached device models hold the memory: they go, so the next request
                // finds the device as free as it can be.
                self.models.clear();
                timings.cpu_fallback = true;
                self.checkpoint()?;
                self.compute_on(Device::Cpu, job, timings)
            }
            Ok(explained) => {
                // The device works for this model again: its CPU copy is no longer needed.
                self.fallback_models.remove(&job.request.key());
                Ok(explained)
            }
            other => other,
        }
    }

    /// Loads (or reuses) the request's model on `device` and explains the request there.
    fn compute_on(
        &mut self,
        device: Device,
        job: &Queued,
        timings: &mut Timings,
    ) -> Result<Explanation, EngineError> {
        let key = job.request.key();
        let fallback = device != self.device;
        let cached = if fallback {
            self.fallback_models.remove(&key)
        } else {
            self.models.remove(&key)
        };
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
            running.model_on = Some(device);
        }
        let outcome = self
            .checkpoint()
            .and_then(|()| self.explain(&model, device, job, timings));
        // A model invalidated while in use is not kept: the next request loads it afresh.
        if let Some(running) = self.running.as_mut() {
            running.model_on = None;
            if !running.invalidated {
                let models = if fallback {
                    &mut self.fallback_models
                } else {
                    &mut self.models
                };
                models.insert(key, model);
            }
        }
        outcome
    }

    /// The request's result from the CAM store, when it is there and sound. A corrupt entry
    /// is logged and recomputed (and replaced).
    fn stored(&self, job: &Queued, timings: &mut Timings) -> Option<Explanation> {
        let cache = job.request.cache.as_ref()?;
        let started = Instant::now();
        match cache.store.get(&cache.key) {
            Ok(Some(entry)) if entry.raw.dim().0 == job.request.volume.dim().0 => {
                let spec = &job.request.spec;
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

    /// Keeps a computed result in the CAM store; a store that cannot be written is logged,
    /// the result still goes out.
    fn keep(&self, job: &Queued, explained: &Explanation, placement: Placement) {
        if let Some(cache) = &job.request.cache {
            let entry = crate::cam::store::Entry::from_explanation(explained, placement);
            if let Err(err) = cache.store.put(&cache.key, &entry) {
                warn!("CAM store: {err}");
            }
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

    fn load(&mut self, key: ModelKey, device: Device) -> Result<Loaded, EngineError> {
        let loader = &mut self.loader;
        match guarded(|| loader(key, device)) {
            Ok(Ok((network, preprocess))) => {
                debug!(task = %key.0, plane = %key.1, "model loaded");
                Ok(Loaded {
                    network,
                    preprocess,
                })
            }
            Ok(Err(message)) => Err(EngineError::Load { key, message }),
            Err(message) => Err(EngineError::Panicked {
                during: "loading the model",
                message,
            }),
        }
    }

    fn explain(
        &self,
        model: &Loaded,
        device: Device,
        job: &Queued,
        timings: &mut Timings,
    ) -> Result<Explanation, EngineError> {
        let volume = &*job.request.volume;
        let (_, height, width) = volume.dim();
        let outcome = guarded(|| {
            let started = Instant::now();
            let x = tch::no_grad(|| model.preprocess.input(volume, device));
            let pass = cam::forward(&model.network, &x)?;
            let forward_ms = millis(started.elapsed());
            let started = Instant::now();
            let placement = Placement {
                window: model.preprocess.window(height, width),
                slice: (height, width),
            };
            let explained =
                cam::explain_forward(&model.network, &pass, &job.request.spec, placement)?;
            Ok::<_, cam::CamError>((explained, forward_ms, millis(started.elapsed())))
        });
        match outcome {
            Ok(Ok((explained, forward_ms, cam_ms))) => {
                timings.forward_ms = forward_ms;
                timings.cam_ms = cam_ms;
                let placement = Placement {
                    window: model.preprocess.window(height, width),
                    slice: (height, width),
                };
                self.keep(job, &explained, placement);
                Ok(explained)
            }
            Ok(Err(err)) => Err(err.into()),
            Err(message) => Err(EngineError::Panicked {
                during: "computing the CAM",
                message,
            }),
        }
    }

    fn finish(&mut self, job: Queued, outcome: Result<Explanation, EngineError>, timings: Timings) {
        let id = job.id;
        match &outcome {
            Ok(explained) => debug!(
                %id,
                probability = explained.probability,
                load_model_ms = timings.load_model_ms,
                forward_ms = timings.forward_ms,
                cam_ms = timings.cam_ms,
                "request done"
            ),
            Err(
                error @ (EngineError::Superseded(_)
                | EngineError::Cancelled
                | EngineError::ShutDown),
            ) => debug!(%id, "request dropped: {error}"),
            Err(error) => warn!(%id, "request failed: {error}"),
        }
        self.finished += 1;
        let request = job.request;
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
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

thread_local! {
    /// Set while this thread runs a request's guarded work, for [`install_panic_filter`].
    static IN_REQUEST: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work`, turning a panic into its message. The panic hook still runs; see
/// [`install_panic_filter`].
///
/// Grad mode is per thread, and `tch::no_grad` does not restore it when its closure panics:
/// the work runs with grad mode on (libtorch's default, which `cam::explain` expects), and the
/// mode from before is restored afterwards, panic or not.
fn guarded<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    let grad_mode = tch::no_grad_guard();
    IN_REQUEST.with(|flag| flag.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| tch::with_grad(work)));
    IN_REQUEST.with(|flag| flag.set(false));
    drop(grad_mode);
    outcome.map_err(|payload| panic_message(payload.as_ref()))
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Keeps panics caught inside engine requests away from the process's panic hook.
///
/// A caught panic still runs the hook first, and the default hook prints to stderr (over the
/// explorer's screen), while `ratatui::init`'s restores the terminal. With this filter, a
/// panic inside an engine request is only logged (`warn`), as it is reported in the request's
/// result anyway; every other panic goes to the hook installed before. Call it after any other
/// hook is installed (after `ratatui::init`); calling it again is harmless.
pub fn install_panic_filter() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if IN_REQUEST.with(Cell::get) {
            let location = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            warn!(
                "engine request panicked{location}: {}",
                panic_message(info.payload())
            );
        } else {
            previous(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_come_from_str_and_string_payloads() {
        assert_eq!(guarded(|| 7), Ok(7));
        install_panic_filter();
        let literal = guarded::<()>(|| panic!("literal"));
        assert_eq!(literal, Err("literal".to_string()));
        let formatted = guarded::<()>(|| panic!("formatted {}", 42));
        assert_eq!(formatted, Err("formatted 42".to_string()));
        let other = guarded::<()>(|| std::panic::panic_any(3u8));
        assert_eq!(other, Err("a panic without a message".to_string()));
        assert!(
            !IN_REQUEST.with(Cell::get),
            "the flag is reset after a panic"
        );
    }
}
