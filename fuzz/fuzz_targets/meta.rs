//! Fuzz target: see `fuzz/checks/meta.rs` for what it feeds and checks.
//!
//! Run with `cargo +nightly fuzz run meta fuzz/corpus/meta fuzz/seeds/meta -- -dict=fuzz/meta.dict`
//! (the seeds are read-only inputs; new finds go to the first directory).

#![no_main]

#[path = "../checks/meta.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
