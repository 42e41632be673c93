//! Fuzz target: see `fuzz/checks/exec.rs` for what it feeds and checks.
//!
//! Run with `cargo +nightly fuzz run exec fuzz/corpus/exec fuzz/seeds/exec -- -dict=fuzz/exec.dict`.

#![no_main]

#[path = "../checks/exec.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
