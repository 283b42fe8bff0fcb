#![no_main]
//! Fuzz target: see `drover::fuzzing::extra_vars`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| drover::fuzzing::extra_vars(data));
