#![no_main]
//! Fuzz target: see `drover::fuzzing::units`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| drover::fuzzing::units(data));
