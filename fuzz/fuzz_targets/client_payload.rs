//! Fuzz target: see `fuzz/checks/client_payload.rs` for what it feeds and checks.
//!
//! Run with `cargo +nightly fuzz run client_payload fuzz/corpus/client_payload fuzz/seeds/client_payload -- -dict=fuzz/client_payload.dict`.

#![no_main]

#[path = "../checks/client_payload.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
