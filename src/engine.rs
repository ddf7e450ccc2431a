//! The engine: one std thread that owns the device and the loaded models, and turns CAM
//! requests into explanations, one at a time.
//!
//! Models are built on that thread by the caller's [`Loader`] and never leave it (tch tensors
//! are `Send` but not `Sync`); only plain buffers cross the channels. Scheduling follows
//! gitui's asyncjob: one running request plus one waiting slot per [`Priority`]. A newer
//! request takes the waiting slot of its priority, and the one it displaces ends
//! [`EngineError::Superseded`]; interactive requests run before prefetches. The worker blocks
//! on its channel when idle and, before each request and between a request's stages (loading
//! the model, then the forward pass and CAM), reads every command already queued, so a burst
//! of requests leaves only the newest waiting and a cancellation is seen promptly.
//!
//! Every submitted request gets exactly one answer ([`EngineResult`] for a CAM,
//! [`ScoreResult`] for scoring an exam), through the [`Notify`] callback given to
//! [`Engine::start`] (or the channel of [`Engine::with_channel`]): done, failed (loader error,
//! CAM error, a series too small for the model, a panic inside the request — caught silently,
//! and the worker carries on), or dropped (superseded, cancelled, shut down). The caller drops
//! the results of requests it no longer waits for by their ids (the explorer keeps the id of
//! the one request in flight per lane).
//!
//! The engine is the one owner of models: the explorer's CAMs, its prefetches and the scoring
//! of its list (the background lane) all go through it, so a GPU holds one set of weights and
//! every request has the out-of-memory fallback to the CPU.
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use tracing::warn;

mod message;
pub mod score;
mod slots;
mod worker;

pub use message::{
    is_out_of_memory, CacheRef, CamRequest, EngineError, EngineEvent, EngineResult, EngineStatus,
    ExamScores, Loader, ModelKey, Notify, Priority, RequestId, ScoreRequest, ScoreResult, Stopped,
    Timings,
};

use slots::{Queued, Work};
use worker::{Command, Worker};

/// The handle to the engine thread. Dropping it shuts the thread down and joins it: a request
/// being computed stops at its next stage boundary (a loader call or forward pass in progress
/// is waited for), and everything still waiting ends [`EngineError::ShutDown`].
#[derive(Debug)]
pub struct Engine {
    commands: Sender<Command>,
    worker: Option<JoinHandle<()>>,
    device: tch::Device,
    device_name: String,
    /// The last id handed out (0: none yet).
    last_id: AtomicU64,
    stopping: AtomicBool,
}

impl Engine {
    /// Starts the engine thread on `device`. `loader` and `notify` are called on that thread.
    pub fn start(device: tch::Device, loader: Loader, notify: Notify) -> io::Result<Engine> {
        let (commands, inbox) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("kneecam-engine".into())
            .spawn(move || Worker::new(device, loader, notify, inbox).run())?;
        Ok(Engine {
            commands,
            worker: Some(worker),
            device,
            device_name: crate::model::device::describe(device),
            last_id: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        })
    }

    /// [`Engine::start`] with the events delivered on a channel of their own.
    pub fn with_channel(
        device: tch::Device,
        loader: Loader,
    ) -> io::Result<(Engine, Receiver<EngineEvent>)> {
        let (events, receiver) = mpsc::channel();
        let notify: Notify = Box::new(move |event| {
            // The receiver gone means nobody is listening any more; nothing to do.
            let _ = events.send(event);
        });
        Ok((Engine::start(device, loader, notify)?, receiver))
    }

    /// Queues a request and returns its id (ids increase with each call).
    pub fn submit(&self, request: CamRequest) -> Result<RequestId, Stopped> {
        self.enqueue(Work::Cam(request))
    }

    /// Queues an exam to score in the background lane (below prefetches: a newer score request
    /// displaces the waiting one) and returns its id. The answer is [`EngineEvent::Scored`].
    pub fn score(&self, request: ScoreRequest) -> Result<RequestId, Stopped> {
        self.enqueue(Work::Score(Box::new(request)))
    }

    fn enqueue(&self, work: Work) -> Result<RequestId, Stopped> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Stopped);
        }
        let id = RequestId(self.last_id.fetch_add(1, Ordering::SeqCst) + 1);
        let queued = Queued {
            id,
            work,
            submitted: Instant::now(),
        };
        self.send(Command::Submit(Box::new(queued)))?;
        Ok(id)
    }

    /// Cancels a request: a waiting one ends [`EngineError::Cancelled`] at once (when the
    /// worker reads the command), a running one stops at its next stage boundary and ends
    /// `Cancelled` too. Unknown or finished ids are ignored.
    pub fn cancel(&self, id: RequestId) -> Result<(), Stopped> {
        self.send(Command::Cancel(id))
    }

    /// Drops the cached model for `key`; the next request for it calls the loader again.
    pub fn invalidate(&self, key: ModelKey) -> Result<(), Stopped> {
        self.send(Command::Invalidate(Some(key)))
    }

    /// Drops every cached model (after the weights changed on disk, say).
    pub fn reload(&self) -> Result<(), Stopped> {
        self.send(Command::Invalidate(None))
    }

    /// Asks for an [`EngineEvent::Status`]; it comes after every command sent before it has
    /// been read (while a request runs, at its next stage boundary).
    pub fn request_status(&self) -> Result<(), Stopped> {
        self.send(Command::Status)
    }

    /// Tells the worker to stop without waiting for it (dropping the handle waits); later
    /// submissions fail with [`Stopped`].
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // A worker already gone has stopped anyway.
        let _ = self.commands.send(Command::Shutdown);
    }

    pub fn device(&self) -> tch::Device {
        self.device
    }

    /// The device as shown to people, e.g. `CPU` or `cuda:0 (NVIDIA H100 80GB HBM3)`.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    fn send(&self, command: Command) -> Result<(), Stopped> {
        self.commands.send(command).map_err(|_| Stopped)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                warn!("the engine thread panicked");
            }
        }
    }
}
