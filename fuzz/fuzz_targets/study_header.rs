//! cargo fuzz target `study_header`: see kneecam_fuzz::run_study_header for what one input checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: kneecam_fuzz::TrackingAlloc = kneecam_fuzz::TrackingAlloc;

fuzz_target!(|data: &[u8]| kneecam_fuzz::run_study_header(data));
