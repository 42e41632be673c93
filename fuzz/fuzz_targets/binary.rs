//! Fuzz target: see `fuzz/checks/binary.rs` for what it feeds and checks.
//!
//! Run with `cargo +nightly fuzz run binary fuzz/seeds/binary`.

#![no_main]

#[path = "../checks/binary.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
