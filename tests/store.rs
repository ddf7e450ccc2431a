//! The CAM store with the real engine (CPU libtorch): a result is kept, the next request for
//! it comes from the store with the same explanation, a corrupt entry is recomputed; and
//! 1,000 consecutive CAM requests do not grow the process's memory.
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kneecam::cam::store::{CacheKey, Precision, Store};
use kneecam::cam::{CamSpec, Method, Normalization};
use kneecam::data::{Plane, Task};
use kneecam::engine::{CacheRef, CamRequest, Engine, EngineEvent, EngineResult, Priority};
use kneecam::model::loaded::LoadedModel;
use kneecam::model::network::Network;
use kneecam::model::preprocess::Preprocess;
use kneecam::model::tiny::Tiny;
use ndarray::Array3;
use tch::Device;

const PATIENCE: Duration = Duration::from_secs(60);
/// libtorch is seeded per process: one test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn engine() -> (Engine, Receiver<EngineEvent>) {
    tch::manual_seed(7);
    Engine::with_channel(
        Device::Cpu,
        Box::new(|_, device| {
            Ok(LoadedModel {
                network: Network::Tiny(Tiny::new(device, 2)),
                preprocess: Preprocess::Raw,
                label: "a random tiny net".into(),
                sha256: String::new(),
            })
        }),
    )
    .expect("engine")
}

fn volume() -> Arc<Array3<u8>> {
    Arc::new(Array3::from_shape_fn((6, 64, 64), |(s, r, c)| {
        ((s * 31 + r * 7 + c * 3) % 251) as u8
    }))
}

fn request(method: Method, cache: Option<CacheRef>) -> CamRequest {
    CamRequest {
        volume: volume(),
        task: Task::Acl,
        plane: Plane::Sagittal,
        spec: CamSpec {
            method,
            class: Some(1),
            normalization: Normalization::Exam,
        },
        priority: Priority::Interactive,
        cache,
    }
}

fn result(events: &Receiver<EngineEvent>) -> EngineResult {
    loop {
        match events.recv_timeout(PATIENCE).expect("a result") {
            EngineEvent::Finished(result) => return *result,
            _ => continue,
        }
    }
}

fn key(method: Method) -> CacheKey {
    CacheKey {
        model_sha256: "1".repeat(64),
        exam_sha256: "2".repeat(64),
        method,
        class: 1,
        preprocess: Preprocess::Raw,
    }
}

#[test]
fn results_are_kept_and_served_from_the_store() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(Store::new(dir.path(), Precision::F32));
    let (engine, events) = engine();
    let cache = CacheRef {
        store: Arc::clone(&store),
        key: key(Method::Contrib),
    };
    engine
        .submit(request(Method::Contrib, Some(cache.clone())))
        .expect("submit");
    let computed = result(&events);
    assert!(!computed.timings.from_store);
    assert!(store.path(&cache.key).is_file(), "the result was kept");

    // Served from the store: same explanation, other normalisations too.
    engine
        .submit(request(Method::Contrib, Some(cache.clone())))
        .expect("submit");
    let served = result(&events);
    assert!(served.timings.from_store);
    assert_eq!(served.timings.forward_ms, 0.0);
    let (a, b) = (
        computed.explanation().expect("computed"),
        served.explanation().expect("served"),
    );
    assert_eq!(a.logits, b.logits);
    assert_eq!(a.scores, b.scores);
    assert_eq!(a.maps, b.maps);

    // A corrupt entry is not shown: the engine recomputes and replaces it.
    std::fs::write(store.path(&cache.key), b"KCAM garbage").expect("corrupt");
    engine
        .submit(request(Method::Contrib, Some(cache.clone())))
        .expect("submit");
    let recomputed = result(&events);
    assert!(!recomputed.timings.from_store);
    assert_eq!(recomputed.explanation().expect("ok").maps, a.maps);
    assert!(store.get(&cache.key).expect("sound again").is_some());
}

#[test]
fn an_unwritable_store_still_gives_the_result() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    // A file where the store's folder should be: every write fails.
    let blocked = dir.path().join("store");
    std::fs::write(&blocked, b"not a folder").expect("file");
    let (engine, events) = engine();
    let cache = CacheRef {
        store: Arc::new(Store::new(&blocked, Precision::F16)),
        key: key(Method::Cam),
    };
    engine
        .submit(request(Method::Cam, Some(cache)))
        .expect("submit");
    assert!(result(&events).explanation().is_some());
}

/// Resident memory in bytes, from /proc (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[test]
fn a_thousand_cam_requests_do_not_grow_memory() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (engine, events) = engine();
    let run = |n: usize| {
        for i in 0..n {
            let method = Method::ALL[i % Method::ALL.len()];
            engine.submit(request(method, None)).expect("submit");
            assert!(result(&events).explanation().is_some());
        }
    };
    run(200);
    let warm = rss();
    run(1000);
    let after = rss();
    let growth = after.saturating_sub(warm);
    eprintln!(
        "RSS after warm-up {:.1} MB, after 1,000 more requests {:.1} MB",
        warm as f64 / 1e6,
        after as f64 / 1e6
    );
    assert!(
        growth < warm / 10,
        "memory grew by {:.1} MB over 1,000 requests (from {:.1} MB)",
        growth as f64 / 1e6,
        warm as f64 / 1e6
    );
}
