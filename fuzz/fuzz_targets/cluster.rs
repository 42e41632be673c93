//! Fuzz target: see `fuzz/checks/cluster.rs` for what it feeds and checks.
//!
//! Run with `cargo +nightly fuzz run cluster fuzz/corpus/cluster fuzz/seeds/cluster -- -dict=fuzz/cluster.dict`.

#![no_main]

#[path = "../checks/cluster.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
