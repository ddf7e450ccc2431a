//! Networks, weights, manifests and the device they run on.
pub mod cache;
pub mod combine;
pub mod device;
pub mod libtorch;
pub mod loaded;
pub mod manifest;
pub mod metrics;
pub mod mrnet;
pub mod network;
pub mod onednn;
pub mod preprocess;
pub mod script;
pub mod tiny;
pub mod train;
pub mod vision;
pub mod weights;
