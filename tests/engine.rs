//! The engine thread with real libtorch on the CPU and random-weight MRNets. Deterministic:
//! a test holds the worker inside the loader (a gate) while it queues requests, so what the
//! worker sees when it next reads its channel is fixed, never a matter of timing.
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kneecam::cam::{CamSpec, Method, Normalization};
use kneecam::data::{Plane, Task};
use kneecam::engine::{
    CamRequest, Engine, EngineError, EngineEvent, EngineResult, EngineStatus, Loader, ModelKey,
    Priority, RequestId, ScoreRequest, Stopped,
};
use kneecam::model::loaded::{LoadError, LoadedModel};
use kneecam::model::mrnet::Mrnet;
use kneecam::model::network::Network;
use kneecam::model::preprocess::Preprocess;
use ndarray::Array3;
use tch::Device;

/// Long enough never to fire on a working engine; it only turns a bug into a failure
/// instead of a hang.
const PATIENCE: Duration = Duration::from_secs(60);

const GATED: ModelKey = (Task::Acl, Plane::Sagittal);
const PLAIN: ModelKey = (Task::Acl, Plane::Coronal);
const OTHER: ModelKey = (Task::Meniscus, Plane::Axial);
const FAILING: ModelKey = (Task::Abnormal, Plane::Coronal);
const PANICKING: ModelKey = (Task::Abnormal, Plane::Axial);

/// An engine whose loader makes random MRNets, records each call, blocks on a gate for
/// `GATED` until released, returns an error for `FAILING` and panics for `PANICKING`.
struct Harness {
    // Fields drop in order: the gate first, so a failing test never leaves the worker (and
    // the engine's drop, which joins it) waiting on the gate.
    release: Option<Sender<()>>,
    entered: Receiver<ModelKey>,
    engine: Option<Engine>,
    events: Receiver<EngineEvent>,
    loads: Arc<Mutex<Vec<ModelKey>>>,
    volume: Arc<Array3<u8>>,
}

/// A random-weight MRNet on `device`, as a loader gives it.
fn random_mrnet(device: Device) -> LoadedModel {
    LoadedModel {
        network: Network::Mrnet(Mrnet::new(device, 2)),
        preprocess: Preprocess::Raw,
        label: "a random MRNet".into(),
        sha256: String::new(),
    }
}

fn test_loader(
    loads: Arc<Mutex<Vec<ModelKey>>>,
    entered: Sender<ModelKey>,
    release: Receiver<()>,
) -> Loader {
    Box::new(move |key, device| {
        loads.lock().expect("loads").push(key);
        if key == GATED {
            entered.send(key).expect("the test waits for the loader");
            // A dropped gate (a failing test) lets the loader go on.
            let _ = release.recv();
        }
        if key == FAILING {
            return Err(LoadError::Other("no weights for abnormal/coronal".into()));
        }
        if key == PANICKING {
            panic!("the loader exploded for {}/{}", key.0, key.1);
        }
        Ok(random_mrnet(device))
    })
}

impl Harness {
    fn new() -> Harness {
        let loads = Arc::new(Mutex::new(Vec::new()));
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let loader = test_loader(loads.clone(), entered_tx, release_rx);
        let (engine, events) = Engine::with_channel(Device::Cpu, loader).expect("engine");
        // A small series: a job takes milliseconds on the CPU.
        let volume =
            Array3::from_shape_fn((3, 64, 64), |(s, r, c)| ((s * 7 + r * 3 + c) % 251) as u8);
        Harness {
            release: Some(release),
            entered,
            engine: Some(engine),
            events,
            loads,
            volume: Arc::new(volume),
        }
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine still running")
    }

    fn request(&self, key: ModelKey, priority: Priority) -> CamRequest {
        contrib_request(&self.volume, key, priority)
    }

    fn submit(&self, key: ModelKey, priority: Priority) -> RequestId {
        self.engine()
            .submit(self.request(key, priority))
            .expect("submit")
    }

    /// Submits a request for the gated model and returns once the worker is inside its
    /// loader: the worker reads nothing more until `release`.
    fn occupy(&self) -> RequestId {
        let id = self.submit(GATED, Priority::Interactive);
        let key = self
            .entered
            .recv_timeout(PATIENCE)
            .expect("the loader is entered");
        assert_eq!(key, GATED);
        id
    }

    fn release(&self) {
        self.release
            .as_ref()
            .expect("gate")
            .send(())
            .expect("the loader waits on the gate");
    }

    fn next_event(&self) -> EngineEvent {
        self.events.recv_timeout(PATIENCE).expect("an engine event")
    }

    /// The next `n` results, in the order they came; `Started` events are skipped.
    fn results(&self, n: usize) -> Vec<EngineResult> {
        let mut results = Vec::new();
        while results.len() < n {
            if let EngineEvent::Finished(result) = self.next_event() {
                results.push(*result);
            }
        }
        results
    }

    fn result(&self) -> EngineResult {
        self.results(1).remove(0)
    }

    /// Every event up to and including the answer to a status request.
    fn until_status(&self) -> (Vec<EngineEvent>, EngineStatus) {
        let mut before = Vec::new();
        loop {
            match self.next_event() {
                EngineEvent::Status(status) => return (before, status),
                event => before.push(event),
            }
        }
    }

    fn loads(&self) -> Vec<ModelKey> {
        self.loads.lock().expect("loads").clone()
    }
}

/// A `contrib` request (exam normalisation, the top class) for `key`'s model.
fn contrib_request(volume: &Arc<Array3<u8>>, key: ModelKey, priority: Priority) -> CamRequest {
    CamRequest {
        volume: volume.clone(),
        task: key.0,
        plane: key.1,
        spec: CamSpec {
            method: Method::Contrib,
            class: None,
            normalization: Normalization::Exam,
        },
        priority,
        cache: None,
    }
}

fn by_id(results: Vec<EngineResult>) -> HashMap<RequestId, EngineResult> {
    results
        .into_iter()
        .map(|result| (result.id, result))
        .collect()
}

fn assert_done(result: &EngineResult) {
    match &result.outcome {
        Ok(explanation) => {
            assert_eq!(
                explanation.maps.dim(),
                (3, 64, 64),
                "maps at the slice size"
            );
            assert_eq!(explanation.scores.len(), 3);
            assert!((0.0..=1.0).contains(&explanation.probability));
        }
        Err(error) => panic!("request {} failed: {error}", result.id),
    }
}

#[test]
fn a_request_is_explained_with_its_echo_and_timings() {
    let h = Harness::new();
    assert_eq!(h.engine().device(), Device::Cpu);
    assert_eq!(h.engine().device_name(), "CPU");
    let id = h.submit(PLAIN, Priority::Interactive);
    assert_eq!(id, RequestId(1));
    match h.next_event() {
        EngineEvent::Started {
            id: started,
            task,
            plane,
        } => {
            assert_eq!((started, task, plane), (id, PLAIN.0, PLAIN.1));
        }
        other => panic!("expected Started, got {other:?}"),
    }
    let result = h.result();
    assert_eq!(
        (result.id, result.task, result.plane),
        (id, PLAIN.0, PLAIN.1)
    );
    assert_eq!(result.spec.method, Method::Contrib);
    assert_eq!(result.priority, Priority::Interactive);
    assert_done(&result);
    assert!(result.timings.load_model_ms > 0.0, "{:?}", result.timings);
    assert!(
        result.timings.forward_ms > 0.0 && result.timings.cam_ms > 0.0,
        "{:?}",
        result.timings
    );
}

#[test]
fn the_newest_interactive_request_wins_and_the_ones_in_between_are_superseded() {
    let h = Harness::new();
    let first = h.occupy();
    let queued: Vec<RequestId> = (1..=4)
        .map(|_| h.submit(PLAIN, Priority::Interactive))
        .collect();
    h.release();
    let results = h.results(5);
    let done: Vec<RequestId> = results
        .iter()
        .filter(|r| !r.is_dropped())
        .map(|r| r.id)
        .collect();
    assert_eq!(
        done,
        vec![first, queued[3]],
        "only the running and the newest are computed"
    );
    let results = by_id(results);
    assert_done(&results[&first]);
    for pair in queued.windows(2) {
        match results[&pair[0]].outcome {
            Err(EngineError::Superseded(by)) => assert_eq!(by, pair[1]),
            ref other => panic!("{} should be superseded, got {other:?}", pair[0]),
        }
        assert!(results[&pair[0]].is_dropped());
    }
    assert_done(&results[&queued[3]]);
    assert_eq!(
        h.loads(),
        vec![GATED, PLAIN],
        "superseded requests load nothing"
    );
}

#[test]
fn interactive_requests_run_before_prefetches_and_a_newer_prefetch_displaces_the_older() {
    let h = Harness::new();
    let first = h.occupy();
    let prefetch_old = h.submit(OTHER, Priority::Prefetch);
    let prefetch = h.submit(OTHER, Priority::Prefetch);
    let interactive = h.submit(PLAIN, Priority::Interactive);
    h.release();
    let mut started = Vec::new();
    let mut finished = Vec::new();
    while finished.len() < 4 {
        match h.next_event() {
            EngineEvent::Started { id, .. } => started.push(id),
            EngineEvent::Finished(result) => finished.push(*result),
            EngineEvent::Scored(_) | EngineEvent::Status(_) => {}
        }
    }
    assert_eq!(started, vec![first, interactive, prefetch]);
    let order: Vec<RequestId> = finished.iter().map(|r| r.id).collect();
    assert_eq!(order, vec![prefetch_old, first, interactive, prefetch]);
    assert!(matches!(finished[0].outcome, Err(EngineError::Superseded(by)) if by == prefetch));
    for result in &finished[1..] {
        assert_done(result);
    }
    assert_eq!(finished[3].priority, Priority::Prefetch);
}

#[test]
fn cancelling_drops_a_waiting_request_and_discards_a_running_one() {
    let h = Harness::new();
    let running = h.occupy();
    let waiting = h.submit(PLAIN, Priority::Interactive);
    let prefetch = h.submit(OTHER, Priority::Prefetch);
    h.engine().cancel(waiting).expect("cancel");
    h.engine().cancel(running).expect("cancel");
    h.engine()
        .cancel(RequestId(999))
        .expect("an unknown id is ignored");
    h.release();
    let results = h.results(3);
    let order: Vec<RequestId> = results.iter().map(|r| r.id).collect();
    assert_eq!(order, vec![waiting, running, prefetch]);
    assert!(matches!(results[0].outcome, Err(EngineError::Cancelled)));
    assert!(matches!(results[1].outcome, Err(EngineError::Cancelled)));
    assert_eq!(
        results[1].timings.forward_ms, 0.0,
        "a request cancelled while loading skips the forward pass"
    );
    assert_done(&results[2]);
    // The cancelled request's model was loaded; it stays cached.
    h.engine().request_status().expect("status");
    let (_, status) = h.until_status();
    assert_eq!(
        status.models,
        vec![GATED, OTHER],
        "sorted by task, then plane"
    );
}

#[test]
fn a_cancel_at_any_moment_still_gives_exactly_one_result() {
    let h = Harness::new();
    let id = h.submit(PLAIN, Priority::Interactive);
    // Whenever the worker reads the cancel (before the request starts, while it runs, or
    // after it ended) the request ends once: Cancelled, or Done when the cancel came too late.
    h.engine().cancel(id).expect("cancel");
    let result = h.result();
    assert_eq!(result.id, id);
    assert!(
        matches!(result.outcome, Ok(_) | Err(EngineError::Cancelled)),
        "{:?}",
        result.outcome
    );
    h.engine().request_status().expect("status");
    let (events, status) = h.until_status();
    assert!(events.is_empty(), "one result per request: {events:?}");
    assert_eq!(status.finished, 1);
}

#[test]
fn a_panic_inside_a_request_becomes_its_error_and_the_worker_carries_on() {
    kneecam::panics::install_hook();
    let h = Harness::new();
    let panicked = h.submit(PANICKING, Priority::Interactive);
    let result = h.result();
    assert_eq!(result.id, panicked);
    match &result.outcome {
        Err(EngineError::Panicked { during, message }) => {
            assert_eq!(*during, "loading the model");
            assert_eq!(message, "the loader exploded for abnormal/axial");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(!result.is_dropped());
    assert_done(&h.result_of(PLAIN));
    // A panicking load caches nothing: the loader is asked again.
    h.submit(PANICKING, Priority::Interactive);
    assert!(matches!(
        h.result().outcome,
        Err(EngineError::Panicked { .. })
    ));
    assert_eq!(h.loads(), vec![PANICKING, PLAIN, PANICKING]);
}

#[test]
fn a_series_too_small_for_the_network_is_refused_in_plain_words_and_the_next_one_succeeds() {
    let h = Harness::new();
    // AlexNet's pooling cannot shrink 16 pixels that far: refused before libtorch sees it.
    let tiny = CamRequest {
        volume: Arc::new(Array3::zeros((1, 16, 16))),
        ..h.request(PLAIN, Priority::Interactive)
    };
    h.engine().submit(tiny).expect("submit");
    let result = h.result();
    match &result.outcome {
        Err(err @ EngineError::TooSmall { .. }) => assert_eq!(
            err.to_string(),
            "the series of 16×16 px is smaller than the model's input needs (at least 63×63 px)"
        ),
        other => panic!("expected TooSmall, got {other:?}"),
    }
    let gradcam = CamRequest {
        spec: CamSpec {
            method: Method::GradCam,
            class: Some(1),
            normalization: Normalization::Exam,
        },
        ..h.request(PLAIN, Priority::Interactive)
    };
    h.engine().submit(gradcam).expect("submit");
    assert_done(&h.result());
}

#[test]
fn a_libtorch_panic_in_the_forward_pass_is_an_error_and_leaves_grad_mode_on() {
    kneecam::panics::install_hook();
    let net = Network::Mrnet(Mrnet::new(Device::Cpu, 2));
    let small = tch::Tensor::zeros([1, 3, 16, 16], (tch::Kind::Float, Device::Cpu));
    let err = kneecam::cam::forward(&net, &small).expect_err("libtorch refuses 16 px");
    assert!(err.to_string().contains("refused the input"), "{err}");
    assert!(
        !err.to_string().contains('\n'),
        "one line, not libtorch's trace: {err}"
    );
    let w = tch::Tensor::ones([2], (tch::Kind::Float, Device::Cpu)).set_requires_grad(true);
    let y = (&w * 3.0).sum(tch::Kind::Float);
    assert!(
        y.requires_grad(),
        "grad mode is on again after the caught panic"
    );
}

#[test]
fn the_smallest_input_side_of_each_native_network_is_what_libtorch_takes() {
    kneecam::panics::install_hook();
    let tiny = kneecam::model::tiny::Tiny::new(Device::Cpu, 2);
    let networks = [
        (Network::Mrnet(Mrnet::new(Device::Cpu, 2)), 63),
        (Network::Tiny(tiny), 14),
    ];
    for (net, expected) in networks {
        let min = net.min_input_side().expect("known for native networks");
        assert_eq!(min, expected);
        let side = |s: usize| {
            tch::Tensor::zeros([1, 3, s as i64, s as i64], (tch::Kind::Float, Device::Cpu))
        };
        assert!(
            kneecam::cam::forward(&net, &side(min)).is_ok(),
            "{min} px is taken"
        );
        assert!(
            kneecam::cam::forward(&net, &side(min - 1)).is_err(),
            "{} px is not",
            min - 1
        );
    }
}

#[test]
fn an_empty_series_is_refused_before_loading() {
    let h = Harness::new();
    let empty = CamRequest {
        volume: Arc::new(Array3::zeros((0, 64, 64))),
        ..h.request(PLAIN, Priority::Interactive)
    };
    h.engine().submit(empty).expect("submit");
    let result = h.result();
    assert!(matches!(
        result.outcome,
        Err(EngineError::EmptyVolume {
            slices: 0,
            height: 64,
            width: 64
        })
    ));
    assert!(h.loads().is_empty());
}

#[test]
fn a_loader_error_becomes_the_requests_error_and_is_not_cached() {
    let h = Harness::new();
    h.submit(FAILING, Priority::Interactive);
    let result = h.result();
    match &result.outcome {
        Err(error @ EngineError::Load(LoadError::Other(message))) => {
            assert_eq!(message, "no weights for abnormal/coronal");
            assert_eq!(
                error.to_string(),
                "no weights for abnormal/coronal",
                "said once"
            );
        }
        other => panic!("expected a load error, got {other:?}"),
    }
    assert_done(&h.result_of(PLAIN));
    h.submit(FAILING, Priority::Interactive);
    assert!(matches!(h.result().outcome, Err(EngineError::Load(_))));
    assert_eq!(h.loads(), vec![FAILING, PLAIN, FAILING]);
}

#[test]
fn models_are_loaded_once_per_key_until_invalidated() {
    let h = Harness::new();
    let first = h.result_of(PLAIN);
    assert!(first.timings.load_model_ms > 0.0);
    for key in [OTHER, PLAIN, PLAIN, OTHER] {
        let result = h.result_of(key);
        assert_done(&result);
        if result.id.0 > 2 {
            assert_eq!(
                result.timings.load_model_ms, 0.0,
                "a cached model takes no loading"
            );
        }
    }
    assert_eq!(h.loads(), vec![PLAIN, OTHER]);
    h.engine().invalidate(PLAIN).expect("invalidate");
    assert_done(&h.result_of(PLAIN));
    assert_done(&h.result_of(OTHER));
    assert_eq!(h.loads(), vec![PLAIN, OTHER, PLAIN]);
    h.engine().reload().expect("reload");
    h.engine().request_status().expect("status");
    let (_, status) = h.until_status();
    assert!(status.models.is_empty(), "{status:?}");
    assert_done(&h.result_of(OTHER));
    assert_done(&h.result_of(PLAIN));
    assert_eq!(h.loads(), vec![PLAIN, OTHER, PLAIN, OTHER, PLAIN]);
}

#[test]
fn a_model_invalidated_while_in_use_is_not_cached_afterwards() {
    let h = Harness::new();
    let running = h.occupy();
    h.engine().invalidate(GATED).expect("invalidate");
    h.release();
    let result = h.result();
    assert_eq!(result.id, running);
    assert_done(&result);
    h.submit(GATED, Priority::Interactive);
    assert_eq!(
        h.entered.recv_timeout(PATIENCE).expect("loaded again"),
        GATED
    );
    h.release();
    assert_done(&h.result());
    assert_eq!(h.loads(), vec![GATED, GATED]);
}

#[test]
fn status_reports_the_running_request_the_queue_and_the_cache() {
    let h = Harness::new();
    h.engine().request_status().expect("status");
    let (_, idle) = h.until_status();
    assert_eq!(idle.device, Device::Cpu);
    assert_eq!(
        (idle.running, idle.pending.clone(), idle.finished),
        (None, vec![], 0)
    );
    let running = h.occupy();
    let prefetch = h.submit(OTHER, Priority::Prefetch);
    let interactive = h.submit(PLAIN, Priority::Interactive);
    h.engine().request_status().expect("status");
    h.release();
    // Answered at the running request's stage boundary, right after its model loaded.
    let (_, busy) = h.until_status();
    assert_eq!(busy.running, Some(running));
    assert_eq!(
        busy.pending,
        vec![
            (interactive, Priority::Interactive),
            (prefetch, Priority::Prefetch)
        ]
    );
    assert_eq!(busy.models, vec![GATED]);
    assert_eq!(h.results(3).len(), 3);
    h.engine().request_status().expect("status");
    let (_, after) = h.until_status();
    assert_eq!((after.running, after.finished), (None, 3));
    assert_eq!(after.models, vec![PLAIN, GATED, OTHER]);
}

#[test]
fn stop_ends_the_running_request_at_its_next_stage_and_everything_waiting() {
    let mut h = Harness::new();
    let running = h.occupy();
    let waiting = h.submit(PLAIN, Priority::Prefetch);
    h.engine().stop();
    assert_eq!(
        h.engine()
            .submit(h.request(PLAIN, Priority::Interactive))
            .err(),
        Some(Stopped)
    );
    h.release();
    let results = h.results(2);
    assert_eq!((results[0].id, results[1].id), (running, waiting));
    assert!(results
        .iter()
        .all(|r| matches!(r.outcome, Err(EngineError::ShutDown))));
    drop(h.engine.take());
    assert_eq!(
        h.events.recv_timeout(PATIENCE).err(),
        Some(RecvTimeoutError::Disconnected),
        "the worker (and its notify) is gone"
    );
}

#[test]
fn dropping_the_engine_waits_for_the_running_stage_then_joins() {
    let mut h = Harness::new();
    let running = h.occupy();
    let engine = h.engine.take().expect("engine");
    let (dropped_tx, dropped) = mpsc::channel();
    let dropper = std::thread::spawn(move || {
        drop(engine);
        let _ = dropped_tx.send(());
    });
    h.release();
    dropped.recv_timeout(PATIENCE).expect("the drop returns");
    dropper.join().expect("the dropping thread");
    // Whether the shutdown was read before or after the load finished, the request got
    // exactly one result, and the worker's end closed the event channel.
    let mut finished = Vec::new();
    loop {
        match h.events.recv_timeout(PATIENCE) {
            Ok(EngineEvent::Finished(result)) => finished.push(*result),
            Ok(_) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("the engine thread is still alive"),
        }
    }
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].id, running);
    assert!(matches!(
        finished[0].outcome,
        Ok(_) | Err(EngineError::ShutDown)
    ));
}

#[test]
fn dropping_an_idle_engine_joins_its_thread() {
    let mut h = Harness::new();
    assert_done(&h.result_of(PLAIN));
    drop(h.engine.take());
    assert_eq!(
        h.events.recv_timeout(PATIENCE).err(),
        Some(RecvTimeoutError::Disconnected)
    );
}

impl Harness {
    /// Submits one interactive request and waits for its result.
    fn result_of(&self, key: ModelKey) -> EngineResult {
        let id = self.submit(key, Priority::Interactive);
        let result = self.result();
        assert_eq!(result.id, id);
        result
    }
}

#[test]
fn the_handle_and_everything_it_sends_can_cross_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_and_sync::<Engine>();
    send::<EngineEvent>();
    send::<CamRequest>();
}

/// What libtorch's CUDA allocator says when it is out of memory.
const CUDA_OOM: &str = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total \
                        capacity; 78.90 GiB already allocated)";

/// An engine on `Cuda(0)` whose loader cannot place any model on the GPU (it says what the
/// CUDA allocator says), so every request meets the device's out-of-memory error; on the CPU
/// it gives real random MRNets, except for `FAILING`, whose GPU error is not about memory.
/// No CUDA is touched: the worker reaches the device only through the loader.
fn out_of_memory_engine() -> (Engine, Receiver<EngineEvent>, Arc<Mutex<Vec<Device>>>) {
    let devices = Arc::new(Mutex::new(Vec::new()));
    let seen = devices.clone();
    let loader: Loader = Box::new(move |key, device| {
        seen.lock().expect("devices").push(device);
        match (key, device) {
            (FAILING, Device::Cuda(_)) => {
                Err(LoadError::Other("no weights for abnormal/coronal".into()))
            }
            (_, Device::Cuda(_)) => Err(LoadError::Other(CUDA_OOM.into())),
            _ => Ok(random_mrnet(device)),
        }
    });
    let (engine, events) = Engine::with_channel(Device::Cuda(0), loader).expect("engine");
    (engine, events, devices)
}

fn finished(events: &Receiver<EngineEvent>) -> EngineResult {
    loop {
        if let EngineEvent::Finished(result) = events.recv_timeout(PATIENCE).expect("an event") {
            return *result;
        }
    }
}

#[test]
fn a_device_out_of_memory_is_computed_on_the_cpu_and_the_next_request_tries_the_device_again() {
    let (engine, events, devices) = out_of_memory_engine();
    let volume = Arc::new(Array3::from_shape_fn((3, 64, 64), |(s, r, c)| {
        ((s * 7 + r * 3 + c) % 251) as u8
    }));
    let request = |key: ModelKey| contrib_request(&volume, key, Priority::Interactive);
    for round in 0..2 {
        engine.submit(request(PLAIN)).expect("submit");
        let result = finished(&events);
        assert_done(&result);
        assert!(
            result.timings.cpu_fallback,
            "round {round}: says it fell back"
        );
    }
    // The CPU copy is kept and reused; the GPU is tried again for each request.
    assert_eq!(
        *devices.lock().expect("devices"),
        vec![Device::Cuda(0), Device::Cpu, Device::Cuda(0)]
    );
    engine.request_status().expect("status");
    let status = loop {
        if let EngineEvent::Status(status) = events.recv_timeout(PATIENCE).expect("an event") {
            break status;
        }
    };
    assert_eq!(
        status.models,
        Vec::<ModelKey>::new(),
        "nothing on the device"
    );
    assert_eq!(status.cpu_fallback_models, vec![PLAIN]);

    // An error that is not about memory is the request's error, not retried elsewhere.
    engine.submit(request(FAILING)).expect("submit");
    let failed = finished(&events);
    match &failed.outcome {
        Err(err @ EngineError::Load(_)) => {
            assert!(!err.is_out_of_memory(), "{err}");
            assert!(!failed.timings.cpu_fallback);
        }
        other => panic!("expected the load error, got {other:?}"),
    }
    assert_eq!(
        devices.lock().expect("devices").last(),
        Some(&Device::Cuda(0))
    );
}

// ---------------------------------------------------------------- scoring, the background lane

/// A flat dataset with one exam whose three planes are `volume`.
fn one_exam(dir: &Path, volume: &Array3<u8>) -> kneecam::data::dataset::Exam {
    for plane in Plane::ALL {
        let folder = dir.join(plane.name());
        std::fs::create_dir_all(&folder).expect("plane folder");
        kneecam::data::npy::write_u8_volume(&folder.join("0000.npy"), volume).expect("npy");
    }
    let dataset = kneecam::data::dataset::Dataset::open(dir).expect("opens");
    dataset.exams()[0].clone()
}

fn scored(h: &Harness) -> kneecam::engine::ScoreResult {
    loop {
        if let EngineEvent::Scored(result) = h.next_event() {
            return *result;
        }
    }
}

#[test]
fn scoring_runs_below_prefetches_and_agrees_with_the_cam_of_the_same_model() {
    let h = Harness::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let exam = one_exam(dir.path(), &h.volume);
    let score = |models: Vec<ModelKey>| ScoreRequest {
        exam: exam.clone(),
        models: models.into_iter().map(|key| (key, None)).collect(),
        store: None,
    };
    let first = h.occupy();
    let stale = h.engine().score(score(vec![PLAIN])).expect("score");
    let scoring = h.engine().score(score(vec![PLAIN, OTHER])).expect("score");
    let prefetch = h.submit(PLAIN, Priority::Prefetch);
    h.release();
    // The gated request, then the prefetch; the older score request was displaced.
    let mut order = Vec::new();
    let mut scores = None;
    while scores.is_none() {
        match h.next_event() {
            EngineEvent::Finished(result) => order.push(result.id),
            EngineEvent::Scored(result) if result.id == stale => {
                assert!(
                    matches!(result.outcome, Err(EngineError::Superseded(by)) if by == scoring)
                );
                order.push(stale);
            }
            EngineEvent::Scored(result) => {
                order.push(result.id);
                scores = Some(result.outcome.expect("scored"));
            }
            _ => {}
        }
    }
    assert_eq!(order, vec![stale, first, prefetch, scoring]);
    let scores = scores.expect("scores");
    let cam = h.result_of(PLAIN);
    let probability = cam.explanation().expect("done").probability;
    assert_eq!(
        *scores.probabilities.get(PLAIN.0, PLAIN.1),
        Some(probability)
    );
    assert!(scores.probabilities.get(OTHER.0, OTHER.1).is_some());
    assert_eq!(
        scores
            .probabilities
            .iter()
            .filter(|(_, _, p)| p.is_some())
            .count(),
        2
    );
    assert!(scores.unreadable.is_empty());
    // One model set: the scorer used the engine's cached models, loading nothing twice.
    let loads = h.loads();
    assert_eq!(
        loads.iter().filter(|k| **k == PLAIN).count(),
        1,
        "{loads:?}"
    );
}

#[test]
fn scoring_a_series_too_small_for_the_model_fails_in_plain_words() {
    let h = Harness::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let exam = one_exam(dir.path(), &Array3::zeros((20, 8, 8)));
    let request = ScoreRequest {
        exam,
        models: vec![(PLAIN, None)],
        store: None,
    };
    h.engine().score(request).expect("score");
    match scored(&h).outcome {
        Err(err @ EngineError::TooSmall(_)) => assert!(
            err.to_string()
                .contains("8×8 px is smaller than the model's input needs"),
            "{err}"
        ),
        other => panic!("expected TooSmall, got {other:?}"),
    }
}
