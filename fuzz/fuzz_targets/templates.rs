#![no_main]
//! Fuzz target: see `drover::fuzzing::templates`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| drover::fuzzing::templates(data));
