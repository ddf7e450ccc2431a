//! kneecam's integration tests that can share one process, as one test binary: each test
//! binary links libtorch, and linking is much of the test build's time. Each module is what was
//! a file of its own under tests/. The tests that measure the process (memory in engine.rs,
//! soak.rs, store.rs) and those being reworked elsewhere stay binaries of their own.
#[path = "../support/binary.rs"]
mod binary;
mod cam;
mod caught_panic;
mod checkpoints;
mod cli;
mod commands;
mod dataset;
mod demo;
mod demo_models;
mod error_chains;
mod fuzz_corpus;
mod libtorch;
mod linkage;
mod manifest;
mod phantom;
mod py_fixtures;
mod review_cli;
mod studies;
mod synth_formats;
mod terminal;
mod terminal_restore;
mod tmux;
mod training;
mod two_readers;
mod view_cli;
mod vision;
mod weights;

/// libtorch's random generator is global to the process and the tests run in parallel threads:
/// every test here that builds a network (random initial weights) builds it under this one lock,
/// seeding first when it wants the same weights every time.
pub fn torch_rng<T>(seed: Option<i64>, build: impl FnOnce() -> T) -> T {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(seed) = seed {
        tch::manual_seed(seed);
    }
    build()
}
