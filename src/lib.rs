//! kneecam: explain MRNet-style knee-MRI classifiers with class activation maps, in the terminal.
pub mod cam;
pub mod cli;
pub mod config;
pub mod data;
pub mod digest;
pub mod engine;
pub mod fsutil;
pub mod logging;
pub mod model;
pub mod panics;
pub mod paths;
pub mod review;
pub mod rng;
pub mod tui;
