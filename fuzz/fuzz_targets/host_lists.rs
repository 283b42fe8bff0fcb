#![no_main]
//! Fuzz target: see `drover::fuzzing::host_lists`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| drover::fuzzing::host_lists(data));
