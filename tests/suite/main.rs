//! kneecam's integration tests that can share one process, as one test binary: each test
//! binary links libtorch, and linking is much of the test build's time. Each module is what was
//! a file of its own under tests/. The tests that measure the process (memory in engine.rs,
//! soak.rs, store.rs) and those being reworked elsewhere stay binaries of their own.
mod cam;
mod cli;
mod commands;
mod dataset;
mod demo;
mod demo_models;
mod fuzz_corpus;
mod libtorch;
mod linkage;
mod manifest;
mod phantom;
mod terminal;
mod terminal_restore;
mod training;
mod view_cli;
mod weights;
