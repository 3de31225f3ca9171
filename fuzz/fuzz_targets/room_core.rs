//! The server core and client sessions driven by arbitrary action sequences, with every
//! invariant checked after each step.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jrtc::testing::fuzzing::core(data));
