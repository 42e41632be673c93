//! The binary protocol against Debian's memcached: every operation with the text protocol's
//! error semantics, a pipelined multi-get (GETKQ + NOOP) across three instances, and
//! discovery over binary falling back from CONFIG_GET (unknown to memcached) to a GET of
//! the legacy `AmazonElastiCache:cluster` key.
//!
//! Needs `memcached` (tests/interop/client-deps.sh); fails without it
//! (`FERROCACHE_SKIP_INTEROP=1` skips).

mod support;

use std::time::Duration;

use ferrocache_client::discovery::{fetch_from, ReplyError, ReplyForm};
use ferrocache_client::{Client, Endpoint, Error, Protocol, Session, Timeouts};
use support::{memcached_path, suites, ServerProcess};

fn binary_client(servers: &[ServerProcess]) -> Client {
    Client::builder()
        .servers(servers.iter().map(ServerProcess::address))
        .protocol(Protocol::Binary)
        .read_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[test]
fn every_operation_over_binary() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let server = ServerProcess::start(&path);
    suites::single_key_operations(&binary_client(std::slice::from_ref(&server)));
}

#[test]
fn multi_get_and_cluster_commands_over_binary() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let servers: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::start(&path)).collect();
    let client = binary_client(&servers);
    suites::cluster_wide_commands_and_multi_get(&client);
    // A stats group by key.
    let settings = client.stats_group(Some("settings")).unwrap();
    assert!(settings.iter().all(|(_, s)| s
        .as_ref()
        .unwrap()
        .iter()
        .any(|(name, _)| name == "maxconns")));
    // A multi-get larger than a socket buffer, with misses between hits.
    let keys: Vec<String> = (0..5000).map(|i| format!("many:{i}")).collect();
    for key in keys.iter().step_by(2) {
        client.set(key, vec![b'v'; 300], 0, 0).unwrap();
    }
    let got = client.get_multi(&keys).unwrap();
    assert!(got.failed.is_empty());
    assert_eq!(got.items.len(), 2500);
    // The pooled connections stayed in sync.
    assert_eq!(client.get("many:0").unwrap().unwrap().value.len(), 300);
}

#[test]
fn discovery_over_binary_falls_back_to_the_legacy_key() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let server = ServerProcess::start(&path);
    let payload = format!("7\nlocalhost|127.0.0.1|{}\n", server.port);
    Client::new([server.address()])
        .unwrap()
        .set("AmazonElastiCache:cluster", &payload, 0, 0)
        .unwrap();
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        ip: None,
        port: server.port,
    };
    let session = Session {
        protocol: Protocol::Binary,
        credentials: None,
    };
    let (config, form) = fetch_from(&endpoint, &Timeouts::default(), None, &session).unwrap();
    assert_eq!((config.version, form), (7, ReplyForm::Legacy));
    assert_eq!(config.nodes[0].port, server.port);

    let client = Client::builder()
        .seed(&server.address())
        .protocol(Protocol::Binary)
        .build()
        .unwrap();
    assert_eq!(
        client.config_version(),
        Some(7),
        "{:?}",
        client.discovery_error()
    );
    client.set("k", "v", 0, 0).unwrap();
    assert_eq!(client.get("k").unwrap().unwrap().value, b"v");

    // Without the legacy key, CONFIG_GET is tried: memcached does not know it and says so at
    // once instead of waiting for the read timeout.
    let bare = ServerProcess::start(&path);
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        ip: None,
        port: bare.port,
    };
    let timeouts = Timeouts {
        read: Duration::from_secs(10),
        ..Timeouts::default()
    };
    let started = std::time::Instant::now();
    match fetch_from(&endpoint, &timeouts, None, &session) {
        Err(Error::Discovery {
            source: ReplyError::UnknownCommand,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn huge_multi_get_over_binary() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let server = ServerProcess::start(&path);
    suites::huge_multi_get(&binary_client(std::slice::from_ref(&server)));
}
