//! The bundled client against real ferrocache nodes: every operation, multi-get across
//! nodes, the pool bound, and a node killed under load and restarted.

#[path = "../client/tests/support/mod.rs"]
#[macro_use]
mod support;

use std::path::Path;

use ferrocache_client::{FailoverMode, FailurePolicy};
use support::{suites, ServerProcess};

fn ferrocache() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferrocache"))
}

fn nodes(n: usize) -> Vec<ServerProcess> {
    (0..n).map(|_| ServerProcess::start(ferrocache())).collect()
}

#[test]
fn single_key_operations() {
    suites::single_key_operations(&suites::client_for(&nodes(1)));
}

#[test]
fn cluster_wide_commands_and_multi_get() {
    suites::cluster_wide_commands_and_multi_get(&suites::client_for(&nodes(3)));
}

#[test]
fn pool_stays_bounded_under_many_threads() {
    suites::pool_stays_bounded_under_many_threads(&nodes(2));
}

#[test]
fn kill_under_load_eject() {
    suites::kill_and_return(ferrocache(), FailoverMode::Eject);
}

#[test]
fn kill_under_load_redistribute() {
    suites::kill_and_return(ferrocache(), FailoverMode::Redistribute);
}

#[test]
fn kill_under_load_default_policy() {
    suites::kill_and_return_with(ferrocache(), FailurePolicy::default());
}

#[test]
fn huge_multi_get() {
    suites::huge_multi_get(&suites::client_for(&nodes(1)));
}
