//! Fuzz target: see `fuzz/checks/binary.rs` for what it feeds and checks.
//!
//! Run with `cargo +nightly fuzz run binary fuzz/corpus/binary fuzz/seeds/binary -- -dict=fuzz/binary.dict`
//! (the seeds are read-only inputs; new finds go to the first directory).

#![no_main]

#[path = "../checks/binary.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
