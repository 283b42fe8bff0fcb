#![no_main]
//! Fuzz target: see `drover::fuzzing::yaml_loader`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| drover::fuzzing::yaml_loader(data));
