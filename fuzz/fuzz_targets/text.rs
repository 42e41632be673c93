//! Fuzz target: see `fuzz/checks/text.rs` for what it feeds and checks.
//!
//! Run with `cargo +nightly fuzz run text fuzz/corpus/text fuzz/seeds/text -- -dict=fuzz/text.dict`
//! (the seeds are read-only inputs; new finds go to the first directory).

#![no_main]

#[path = "../checks/text.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
