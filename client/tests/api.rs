//! Every operation against real memcached instances (Debian's memcached 1.6).

mod support;

use support::suites;
use support::{memcached_path, ServerProcess};

fn cluster(n: usize) -> Option<Vec<ServerProcess>> {
    let path = memcached_path()?;
    Some((0..n).map(|_| ServerProcess::start(&path)).collect())
}

#[test]
fn single_key_operations() {
    let Some(servers) = cluster(1) else {
        return require!(false, "memcached");
    };
    suites::single_key_operations(&suites::client_for(&servers));
}

#[test]
fn cluster_wide_commands_and_multi_get() {
    let Some(servers) = cluster(3) else {
        return require!(false, "memcached");
    };
    suites::cluster_wide_commands_and_multi_get(&suites::client_for(&servers));
}

#[test]
fn pool_stays_bounded_under_many_threads() {
    let Some(servers) = cluster(2) else {
        return require!(false, "memcached");
    };
    suites::pool_stays_bounded_under_many_threads(&servers);
}

#[test]
fn huge_multi_get() {
    let Some(servers) = cluster(1) else {
        return require!(false, "memcached");
    };
    suites::huge_multi_get(&suites::client_for(&servers));
}
