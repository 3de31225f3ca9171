//! Client frame decoding: arbitrary bytes must decode or be refused with a typed error; decoded
//! frames must survive encoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jrtc::testing::fuzzing::frame(data));
