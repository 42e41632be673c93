//! Node failures under load: errors stay on the dead node's keys, the node is ejected, and
//! readmitted by probes once it is back. Timings are printed (`--nocapture`) and bounded.

mod support;

use std::time::{Duration, Instant};

use ferrocache_client::{Client, Error, FailoverMode, FailurePolicy, NodeState};
use support::suites::{client, kill_and_return, kill_and_return_with, state};
use support::{memcached_path, wait_until, Action, Responder, ServerProcess};

#[test]
fn kill_under_load_eject() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    kill_and_return(&path, FailoverMode::Eject);
}

#[test]
fn kill_under_load_redistribute() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    kill_and_return(&path, FailoverMode::Redistribute);
}

#[test]
fn kill_under_load_default_policy() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    kill_and_return_with(&path, FailurePolicy::default());
}

#[test]
fn kill_under_load_fail_fast() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    kill_and_return(&path, FailoverMode::FailFast);
}

#[test]
fn hanging_node_times_out_and_is_ejected() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let live: Vec<ServerProcess> = (0..2).map(|_| ServerProcess::start(&path)).collect();
    // Accepts connections, reads requests, never answers (probes included).
    let hanging = Responder::start(|_| Action::Silent);
    let mut addresses: Vec<String> = live.iter().map(ServerProcess::address).collect();
    addresses.push(hanging.address());
    // A read timeout that a busy machine's memcached always meets, so that only the hanging
    // node times out.
    let read_timeout = Duration::from_secs(1);
    let client = Client::builder()
        .servers(&addresses)
        .failure_policy(support::suites::policy(FailoverMode::Eject))
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(read_timeout)
        .build()
        .unwrap();

    let keys: Vec<String> = (0..200).map(|i| format!("hang:{i}")).collect();
    let hung: Vec<&String> = keys
        .iter()
        .filter(|k| client.locate(k).unwrap().owner == hanging.address())
        .collect();
    assert!(!hung.is_empty());

    // A multi-get returns the live nodes' keys and reports the hanging node's keys, within
    // about one read timeout.
    for key in &keys {
        if !hung.contains(&key) {
            client.set(key, "v", 0, 0).unwrap();
        }
    }
    let started = Instant::now();
    let multi = client.get_multi(&keys).unwrap();
    assert!(
        started.elapsed() < read_timeout + Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(multi.items.len(), keys.len() - hung.len());
    assert_eq!(multi.failed.len(), 1);
    assert_eq!(multi.failed[0].node, hanging.address());
    assert_eq!(multi.failed[0].keys.len(), hung.len());
    assert!(matches!(multi.failed[0].error, Error::Timeout { .. }));

    let started = Instant::now();
    let error = client.get(hung[0]).unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    let one_timeout = started.elapsed();
    assert!(
        one_timeout < read_timeout + Duration::from_millis(500),
        "{one_timeout:?}"
    );
    // Failure limit reached: fast-fail without waiting.
    let started = Instant::now();
    assert!(matches!(
        client.get(hung[0]),
        Err(Error::NodeFailing { .. })
    ));
    assert!(started.elapsed() < Duration::from_millis(50));
    // The failing probe ejects it and the ring is rebuilt; its keys then live elsewhere.
    assert!(wait_until(Duration::from_secs(5), || {
        state(&client, &hanging.address()) == NodeState::Ejected
            && client
                .locate(hung[0])
                .unwrap()
                .route
                .is_ok_and(|node| node != hanging.address())
    }));
    for key in &keys {
        client.set(key, "v", 0, 0).unwrap();
        assert_eq!(client.get(key).unwrap().unwrap().value, b"v");
    }
    eprintln!("hanging node: one request times out after {one_timeout:?}");
    // Connections to the hanging node never exceed the pool size.
    for node in client.nodes() {
        assert!(node.connections.1 <= 4, "{node:?}");
    }
}

#[test]
fn ejection_is_capped() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let mut servers: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::start(&path)).collect();
    let addresses: Vec<String> = servers.iter().map(ServerProcess::address).collect();
    let client = client(&addresses, FailoverMode::Eject);
    servers[0].kill();
    servers[1].kill();
    let keys: Vec<String> = (0..300).map(|i| format!("cap:{i}")).collect();
    // Drive failures until both dead nodes are out of `Up`.
    assert!(wait_until(Duration::from_secs(5), || {
        for key in &keys {
            let _ = client.get(key);
        }
        client.nodes()[..2].iter().all(|n| n.state != NodeState::Up)
    }));
    // Give the probes time to run a few rounds, then check the cap: 3 nodes × 0.5 → 1.
    let probes_ran = wait_until(Duration::from_secs(5), || {
        client
            .nodes()
            .iter()
            .filter(|n| n.state == NodeState::Ejected)
            .count()
            == 1
    });
    assert!(probes_ran);
    for _ in 0..5 {
        client.probe_now();
        let states: Vec<NodeState> = client.nodes().iter().map(|n| n.state).collect();
        let ejected = states.iter().filter(|s| **s == NodeState::Ejected).count();
        assert_eq!(ejected, 1, "{states:?}");
        assert_eq!(states[2], NodeState::Up);
    }
    // The live node still serves its own keys.
    let live_keys = keys
        .iter()
        .filter(|k| client.locate(k).unwrap().owner == addresses[2]);
    for key in live_keys {
        client.set(key, "v", 0, 0).unwrap();
    }
}
