//! Networks, weights and the device they run on.
pub mod device;
pub mod libtorch;
