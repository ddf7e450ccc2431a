//! What crosses the engine's channels: plain data only (no tensors, no models).
use std::fmt;
use std::sync::Arc;

use ndarray::Array3;

use crate::cam::store::{CacheKey, Store};
use crate::cam::{CamError, CamSpec, Explanation};
use crate::data::{Plane, Task};
use crate::model::network::Network;
use crate::model::preprocess::Preprocess;

/// Which model a request needs: one per task and plane, as MRNet trains them.
pub type ModelKey = (Task, Plane);

/// Builds the model for a key on the engine's device. Called on the engine thread (so the
/// tensors it makes never leave it), once per key until the cache is invalidated; an `Err`
/// is the message shown to people.
pub type Loader =
    Box<dyn FnMut(ModelKey, tch::Device) -> Result<(Network, Preprocess), String> + Send>;

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

/// Interactive requests (what is on screen) always run before prefetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    Interactive,
    Prefetch,
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
    #[error("could not load the {} {} model: {message}", .key.0, .key.1)]
    Load { key: ModelKey, message: String },
    #[error("the series is empty ({slices}×{height}×{width})")]
    EmptyVolume {
        slices: usize,
        height: usize,
        width: usize,
    },
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
    /// The device ran out of memory (libtorch's CUDA allocator says "CUDA out of memory";
    /// other backends "out of memory"): worth retrying on the CPU.
    pub fn is_out_of_memory(&self) -> bool {
        let says_so = is_out_of_memory;
        match self {
            EngineError::Load { message, .. } | EngineError::Panicked { message, .. } => {
                says_so(message)
            }
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
        matches!(
            self.outcome,
            Err(EngineError::Superseded(_) | EngineError::Cancelled | EngineError::ShutDown)
        )
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
