//! What crosses the engine's channels: plain data only (no tensors, no models).
use std::fmt;
use std::sync::Arc;

use ndarray::Array3;

use crate::cam::store::{CacheKey, Store};
use crate::cam::{CamError, CamSpec, Explanation};
use crate::data::dataset::Exam;
use crate::data::{PerTaskPlane, Plane, Task};
use crate::model::loaded::{LoadError, LoadedModel, TooSmall};
use crate::model::manifest::ModelEntry;

pub use crate::model::cache::ModelKey;

/// Builds the model for a key on the engine's device. Called on the engine thread (so the
/// tensors it makes never leave it), once per key until the cache is invalidated.
pub type Loader = Box<dyn FnMut(ModelKey, tch::Device) -> Result<LoadedModel, LoadError> + Send>;

/// Receives every event the engine emits, on the engine thread; typically it forwards into
/// the caller's own event channel. It should return quickly and not panic.
pub type Notify = Box<dyn FnMut(EngineEvent) + Send>;

/// A request's id: handed out by [`crate::engine::Engine::submit`], increasing from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Interactive requests (what is on screen) run first, then prefetches, then background
/// work (scoring the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Interactive,
    Prefetch,
    Background,
}

impl Priority {
    pub const ALL: [Priority; 3] = [
        Priority::Interactive,
        Priority::Prefetch,
        Priority::Background,
    ];
}

/// What to compute: the CAM of one plane's series for one task's model.
#[derive(Debug, Clone)]
pub struct CamRequest {
    /// The plane's series, (slices, height, width).
    pub volume: Arc<Array3<u8>>,
    pub task: Task,
    pub plane: Plane,
    pub spec: CamSpec,
    pub priority: Priority,
    /// Where the result may already be (and is then kept): the CAM store and this request's
    /// key in it. The key names the model the loader gives for this request's task and plane.
    pub cache: Option<CacheRef>,
}

/// A request's place in the CAM store.
#[derive(Debug, Clone)]
pub struct CacheRef {
    pub store: Arc<Store>,
    pub key: CacheKey,
}

impl CamRequest {
    pub fn key(&self) -> ModelKey {
        (self.task, self.plane)
    }
}

/// What to score: one exam's P(positive) for every model asked for, each plane's series read
/// once (by the engine) and each result taken from the CAM store when it is there. Scoring
/// runs in the background lane, below prefetches; a newer score request takes the waiting one's
/// place.
#[derive(Debug, Clone)]
pub struct ScoreRequest {
    pub exam: Exam,
    /// The models to run, with their manifest entries when the store may hold their results.
    pub models: Vec<(ModelKey, Option<ModelEntry>)>,
    pub store: Option<Arc<Store>>,
}

/// One exam's scores: P(positive) per task and plane, for the models that could run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExamScores {
    pub probabilities: PerTaskPlane<Option<f32>>,
    /// Planes whose series could not be read, and why (the others are still scored).
    pub unreadable: Vec<String>,
    /// How many came from the CAM store.
    pub from_store: usize,
    /// The sha256 of each plane's series file read for this, when a store was given.
    pub sha256: [Option<String>; 3],
}

/// The one answer every score request gets.
#[derive(Debug)]
pub struct ScoreResult {
    pub id: RequestId,
    pub outcome: Result<ExamScores, EngineError>,
}

/// Where a request's time went, in milliseconds (0 for a stage that did not run; loading is 0
/// when the model was cached).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    pub load_model_ms: f64,
    /// Preprocessing and the forward pass (features and logits).
    pub forward_ms: f64,
    /// The CAM from the forward pass, and its transfer to the host.
    pub cam_ms: f64,
    /// The result came from the CAM store: no model, no forward pass.
    pub from_store: bool,
    /// The engine's device ran out of memory for this request, which was then computed on
    /// the CPU (the next request tries the device again).
    pub cpu_fallback: bool,
}

/// Why a request produced no explanation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the series is empty ({slices}×{height}×{width})")]
    EmptyVolume {
        slices: usize,
        height: usize,
        width: usize,
    },
    /// Checked before libtorch sees the series.
    #[error(transparent)]
    TooSmall(#[from] TooSmall),
    #[error(transparent)]
    Cam(#[from] CamError),
    /// A panic inside the request (libtorch errors surface as panics in tch); the engine
    /// carries on with the next request.
    #[error("panicked while {during}: {message}")]
    Panicked {
        during: &'static str,
        message: String,
    },
    /// Cancelled before it started, or while it ran (its result is discarded).
    #[error("cancelled")]
    Cancelled,
    /// A newer request of the same priority took its place before it started.
    #[error("superseded by request {0}")]
    Superseded(RequestId),
    /// The engine was shutting down.
    #[error("the engine shut down")]
    ShutDown,
}

/// Whether a libtorch error message says the device ran out of memory (CUDA's allocator:
/// "CUDA out of memory"; other backends: "out of memory").
pub fn is_out_of_memory(message: &str) -> bool {
    message.to_ascii_lowercase().contains("out of memory")
}

impl EngineError {
    /// Superseded, cancelled or shut down: nobody wants the answer any more.
    pub fn is_dropped(&self) -> bool {
        matches!(
            self,
            EngineError::Superseded(_) | EngineError::Cancelled | EngineError::ShutDown
        )
    }

    /// The device ran out of memory (libtorch's CUDA allocator says "CUDA out of memory";
    /// other backends "out of memory"): worth retrying on the CPU.
    pub fn is_out_of_memory(&self) -> bool {
        let says_so = is_out_of_memory;
        match self {
            EngineError::Panicked { message, .. } => says_so(message),
            EngineError::Load(err) => says_so(&err.to_string()),
            EngineError::Cam(err) => says_so(&err.to_string()),
            _ => false,
        }
    }
}

/// The one result every submitted request gets, whatever happened to it.
#[derive(Debug)]
pub struct EngineResult {
    pub id: RequestId,
    pub task: Task,
    pub plane: Plane,
    pub spec: CamSpec,
    pub priority: Priority,
    pub outcome: Result<Explanation, EngineError>,
    pub timings: Timings,
}

impl EngineResult {
    pub fn explanation(&self) -> Option<&Explanation> {
        self.outcome.as_ref().ok()
    }

    /// Superseded, cancelled or shut down: nobody wants it any more, nothing went wrong.
    pub fn is_dropped(&self) -> bool {
        self.outcome
            .as_ref()
            .err()
            .is_some_and(EngineError::is_dropped)
    }
}

/// The worker's state, as it answers [`crate::engine::Engine::request_status`].
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStatus {
    pub device: tch::Device,
    /// The request being computed when the status was taken.
    pub running: Option<RequestId>,
    /// Waiting requests, the one that runs next first.
    pub pending: Vec<(RequestId, Priority)>,
    /// Cached models on the engine's device, sorted.
    pub models: Vec<ModelKey>,
    /// CPU copies of models the device had no memory for, sorted.
    pub cpu_fallback_models: Vec<ModelKey>,
    /// Results emitted so far (of any outcome).
    pub finished: u64,
}

/// Everything the engine tells its caller.
#[derive(Debug)]
pub enum EngineEvent {
    /// A request left the queue and is being computed.
    Started {
        id: RequestId,
        task: Task,
        plane: Plane,
    },
    Finished(Box<EngineResult>),
    Scored(Box<ScoreResult>),
    Status(EngineStatus),
}

/// The engine thread is gone (shut down, or it died); nothing can be sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the engine has stopped")]
pub struct Stopped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_is_recognised_in_libtorchs_words() {
        for message in [
            "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)",
            "CUDA error: out of memory",
            "HIP out of memory. Tried to allocate 20.00 MiB",
            "MPS backend out of memory",
        ] {
            assert!(is_out_of_memory(message), "{message}");
        }
        assert!(!is_out_of_memory(
            "Given input size: (256x1x1). Calculated output size: (256x0x0)"
        ));
    }
}
