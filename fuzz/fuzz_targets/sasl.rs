//! Fuzz target: see `fuzz/checks/sasl.rs` for what it feeds and checks.
//!
//! Run with `cargo +nightly fuzz run sasl fuzz/corpus/sasl fuzz/seeds/sasl -- -dict=fuzz/sasl.dict`.

#![no_main]

#[path = "../checks/sasl.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
