//! Discovery over real sockets: a scripted endpoint serves exact configuration bytes (the
//! ones in autodiscovery.md, and broken variants), the client polls it.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocache_client::discovery::ReplyError;
use ferrocache_client::{Client, ClientBuilder, Error, Identity};
use support::{
    config_reply, entry, free_port, memcached_path, wait_until, Action, Responder, ServerProcess,
};

/// The example of autodiscovery.md, byte for byte.
const DOC_EXAMPLE: &[u8] = b"CONFIG cluster 0 80\r\n1\nlocalhost|127.0.0.1|39211 localhost|127.0.0.1|39212 localhost|127.0.0.1|39213\n\r\nEND\r\n";

fn fast(seed: &str) -> ClientBuilder {
    Client::builder()
        .seed(seed)
        .connect_timeout(Duration::from_millis(200))
        .read_timeout(Duration::from_millis(300))
        .write_timeout(Duration::from_millis(300))
        .discovery_retry_interval(Duration::from_millis(20))
        .poll_interval(Duration::from_secs(3600))
}

fn ports(client: &Client) -> Vec<String> {
    client.nodes().into_iter().map(|n| n.name).collect()
}

/// An endpoint answering `config get cluster` with `reply`, `version` with a version.
fn endpoint(reply: Vec<u8>) -> Responder {
    Responder::start(move |line| match line {
        "config get cluster" => Action::Send(reply.clone()),
        "version" => Action::Send(b"VERSION 1.6.21\r\n".to_vec()),
        _ => Action::Send(b"ERROR\r\n".to_vec()),
    })
}

#[test]
fn documented_reply_bytes() {
    let seed = endpoint(DOC_EXAMPLE.to_vec());
    // Named by IP, the nodes are `127.0.0.1:3921x` on the ring, as in ketama.md's vector.
    let client = fast(&seed.address())
        .identity(Identity::Ip)
        .build()
        .unwrap();
    assert_eq!(client.config_version(), Some(1));
    assert_eq!(
        ports(&client),
        ["localhost:39211", "localhost:39212", "localhost:39213"]
    );
    // The ring over the discovered nodes is the one of ketama.md's three-server vector.
    for (key, port) in [("key0", 39212), ("key1", 39213), ("key5", 39211)] {
        assert_eq!(
            client.locate(key).unwrap().owner,
            format!("localhost:{port}")
        );
    }
    assert_eq!(seed.requests(), ["config get cluster"]);

    // Named by hostname (the default), the same list is another ring.
    let by_host = fast(&seed.address()).build().unwrap();
    let differ = (0..1000)
        .map(|i| format!("key{i}"))
        .filter(|k| by_host.locate(k).unwrap().owner != client.locate(k).unwrap().owner)
        .count();
    assert!(differ > 300, "{differ}");
}

#[test]
fn legacy_get_after_error() {
    let payload = format!("3\n{}\n", entry(40001));
    let legacy = format!(
        "VALUE AmazonElastiCache:cluster 0 {}\r\n{payload}\r\nEND\r\n",
        payload.len()
    );
    let seed = Responder::start(move |line| match line {
        "get AmazonElastiCache:cluster" => Action::Send(legacy.clone().into_bytes()),
        _ => Action::Send(b"ERROR\r\n".to_vec()),
    });
    let client = fast(&seed.address()).build().unwrap();
    assert_eq!(client.config_version(), Some(3));
    assert_eq!(ports(&client), ["localhost:40001"]);
    assert_eq!(
        seed.requests(),
        ["config get cluster", "get AmazonElastiCache:cluster"]
    );
}

#[test]
fn discovered_nodes_serve_requests() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let nodes: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::start(&path)).collect();
    let entries: Vec<String> = nodes.iter().map(|n| entry(n.port)).collect();
    let seed = endpoint(config_reply(1, &entries));
    let client = fast(&seed.address()).build().unwrap();
    for i in 0..300 {
        client.set(format!("d{i}"), "x", 0, 0).unwrap();
    }
    // The keys are spread over all three discovered nodes.
    for (node, stats) in client.stats().unwrap() {
        let items = stats
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == "curr_items")
            .unwrap()
            .1;
        assert!(items.parse::<u32>().unwrap() > 30, "{node}: {items}");
    }
    // memcached nodes answer ERROR to `config get` and END to the legacy get: every poll
    // falls through the nodes to the seed, and the list stays.
    assert!(!client.refresh().unwrap());
    assert_eq!(client.config_version(), Some(1));
}

#[test]
fn unreachable_at_start_then_discovered() {
    // Reserve a port, then close it: connections are refused until the endpoint appears.
    let port = free_port();
    let started = Instant::now();
    let client = fast(&format!("127.0.0.1:{port}")).build().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(client.config_version(), None);
    match client.get("k") {
        Err(Error::NoServers(why)) => {
            assert!(why.contains("discovery has not succeeded"), "{why}");
            assert!(why.contains("cannot connect"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(client.refresh(), Err(Error::Connect { .. })));

    // The endpoint comes up: the background retries find it without any call from us.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let reply = config_reply(7, &[entry(40002)]);
    let _seed = Responder::bind(listener, move |line| match line {
        "config get cluster" => Action::Send(reply.clone()),
        _ => Action::Send(b"ERROR\r\n".to_vec()),
    });
    assert!(wait_until(Duration::from_secs(10), || client
        .config_version()
        .is_some()));
    assert_eq!(client.config_version(), Some(7));
    assert_eq!(client.discovery_error(), None);
    // Requests are routed now (the node itself does not exist: a connect error, not NoServers).
    assert!(matches!(client.get("k"), Err(Error::Connect { .. })));
}

#[test]
fn bad_replies_keep_the_last_good_list() {
    let good = config_reply(5, &[entry(40011), entry(40012)]);
    let seed = endpoint(good.clone());
    let client = fast(&seed.address()).build().unwrap();
    assert_eq!(client.config_version(), Some(5));
    let before = ports(&client);

    let truncated = good[..good.len() - 9].to_vec();
    type Case = (&'static str, Action, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        (
            "truncated then closed",
            Action::SendAndClose(truncated),
            |e| matches!(e, Error::Closed { .. }),
        ),
        (
            "length too short",
            Action::Send(b"CONFIG cluster 0 10\r\n6\nlocalhost|127.0.0.1|1\n\r\nEND\r\n".to_vec()),
            |e| {
                matches!(
                    e,
                    Error::Discovery {
                        source: ReplyError::LengthMismatch,
                        ..
                    }
                )
            },
        ),
        (
            "length too long, then silence",
            Action::Send(b"CONFIG cluster 0 99\r\n6\nlocalhost|127.0.0.1|1\n\r\nEND\r\n".to_vec()),
            |e| matches!(e, Error::Timeout { .. }),
        ),
        (
            "empty node list",
            Action::Send(b"CONFIG cluster 0 3\r\n6\n\n\r\nEND\r\n".to_vec()),
            |e| {
                matches!(
                    e,
                    Error::Discovery {
                        source: ReplyError::Payload(_),
                        ..
                    }
                )
            },
        ),
        (
            "version 0",
            Action::Send(config_reply(0, &[entry(1)])),
            |e| matches!(e, Error::Discovery { .. }),
        ),
        (
            "bad port",
            Action::Send(config_reply(6, &["localhost|127.0.0.1|99999".into()])),
            |e| matches!(e, Error::Discovery { .. }),
        ),
        (
            "bad ip",
            Action::Send(config_reply(6, &["localhost|300.1.1.1|1".into()])),
            |e| matches!(e, Error::Discovery { .. }),
        ),
        (
            "garbage",
            Action::Send(b"\x00\xff\xfe garbage\r\n".to_vec()),
            |e| matches!(e, Error::Discovery { .. }),
        ),
        (
            "server error",
            Action::Send(b"SERVER_ERROR out of memory\r\n".to_vec()),
            |e| {
                matches!(
                    e,
                    Error::Discovery {
                        source: ReplyError::ServerError(_),
                        ..
                    }
                )
            },
        ),
        (
            "huge declared length",
            Action::Send(b"CONFIG cluster 0 99999999999\r\n".to_vec()),
            |e| matches!(e, Error::Discovery { .. }),
        ),
        ("accepts and never answers", Action::Silent, |e| {
            matches!(e, Error::Timeout { .. })
        }),
        ("closes at once", Action::SendAndClose(Vec::new()), |e| {
            matches!(e, Error::Closed { .. })
        }),
    ];
    for (name, action, expected) in cases {
        seed.script(move |_| action.clone());
        let started = Instant::now();
        // The listed nodes do not exist; the seed is the only endpoint that answers.
        let error = client.refresh().expect_err(name);
        assert!(expected(&error), "{name}: {error:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{name}");
        assert_eq!(client.config_version(), Some(5), "{name}");
        assert_eq!(ports(&client), before, "{name}");
        assert!(client.discovery_error().is_some(), "{name}");
    }

    // Versions going backwards, or equal with another list, are ignored.
    for (version, nodes) in [(4, vec![entry(40099)]), (5, vec![entry(40098)])] {
        let reply = config_reply(version, &nodes);
        seed.script(move |_| Action::Send(reply.clone()));
        assert!(!client.refresh().unwrap(), "version {version}");
        assert_eq!(ports(&client), before);
    }

    // A strictly newer version is applied.
    let reply = config_reply(6, &[entry(40012), entry(40013), entry(40014)]);
    seed.script(move |_| Action::Send(reply.clone()));
    assert!(client.refresh().unwrap());
    assert_eq!(client.config_version(), Some(6));
    assert_eq!(
        ports(&client),
        ["localhost:40012", "localhost:40013", "localhost:40014"]
    );
}

#[test]
fn live_nodes_round_robin_seed_last() {
    // Three nodes that each serve the configuration (as every ferrocache node does).
    let version = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let nodes: Vec<Responder> = (0..3)
        .map(|_| Responder::start(|_| Action::Send(b"ERROR\r\n".to_vec())))
        .collect();
    let entries: Vec<String> = nodes.iter().map(|n| entry(n.port)).collect();
    for node in &nodes {
        let (entries, version) = (entries.clone(), version.clone());
        node.script(move |line| match line {
            "config get cluster" => {
                Action::Send(config_reply(version.load(Ordering::SeqCst), &entries))
            }
            "version" => Action::Send(b"VERSION 1.6.21\r\n".to_vec()),
            _ => Action::Send(b"ERROR\r\n".to_vec()),
        });
    }
    let seed = {
        let (entries, version) = (entries.clone(), version.clone());
        Responder::start(move |_| {
            Action::Send(config_reply(version.load(Ordering::SeqCst), &entries))
        })
    };
    let client = fast(&seed.address()).build().unwrap();
    assert_eq!(seed.count("config get cluster"), 1);

    for _ in 0..9 {
        assert!(!client.refresh().unwrap());
    }
    let asked: Vec<usize> = nodes
        .iter()
        .map(|n| n.count("config get cluster"))
        .collect();
    assert_eq!(asked, [3, 3, 3], "nodes are asked in turn");
    assert_eq!(
        seed.count("config get cluster"),
        1,
        "seed only as last resort"
    );
    // Polls reuse pooled connections: one per node, none per poll.
    let accepted: Vec<usize> = nodes
        .iter()
        .map(|n| n.accepted.load(Ordering::SeqCst))
        .collect();
    assert_eq!(accepted, [1, 1, 1]);

    // Two nodes stop answering: the next poll tries the two it picks, then the seed.
    nodes[0].script(|_| Action::Silent);
    nodes[1].script(|_| Action::SendAndClose(Vec::new()));
    nodes[2].script(|_| Action::Send(b"SERVER_ERROR busy\r\n".to_vec()));
    version.store(2, Ordering::SeqCst);
    assert!(client.refresh().unwrap());
    assert_eq!(client.config_version(), Some(2));
    assert_eq!(seed.count("config get cluster"), 2);
}

#[test]
fn static_list_needs_no_discovery() {
    let client = Client::new(["127.0.0.1:1", "127.0.0.1:2"]).unwrap();
    assert_eq!(client.config_version(), None);
    assert!(matches!(client.refresh(), Err(Error::Config(_))));
    assert_eq!(ports(&client), ["127.0.0.1:1", "127.0.0.1:2"]);
    assert!(matches!(Client::builder().build(), Err(Error::Config(_))));
    assert!(matches!(Client::new(["nope:"]), Err(Error::Config(_))));
    assert!(matches!(
        Client::builder().seed("bad:port:x").build(),
        Err(Error::Config(_))
    ));
}

#[test]
fn silent_seed_does_not_block_construction() {
    let seed = Responder::start(|_| Action::Silent);
    let started = Instant::now();
    let client = fast(&seed.address()).build().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(client.get("k"), Err(Error::NoServers(_))));
    assert!(client.discovery_error().unwrap().contains("timed out"));
}

#[test]
fn background_polls_follow_changes() {
    let seed = endpoint(config_reply(1, &[entry(40021)]));
    let client = fast(&seed.address())
        .poll_interval(Duration::from_millis(50))
        .poll_jitter(0.5)
        .build()
        .unwrap();
    assert_eq!(client.config_version(), Some(1));
    let reply = config_reply(2, &[entry(40021), entry(40022)]);
    seed.script(move |line| match line {
        "config get cluster" => Action::Send(reply.clone()),
        _ => Action::Send(b"ERROR\r\n".to_vec()),
    });
    // No refresh() call: the background thread picks the new version up.
    assert!(wait_until(Duration::from_secs(5), || client
        .config_version()
        == Some(2)));
    assert_eq!(ports(&client), ["localhost:40021", "localhost:40022"]);
    // Dropping the client stops the polling (a poll already under way may still finish).
    drop(client);
    let polls = seed.count("config get cluster");
    let quiet = !wait_until(Duration::from_millis(300), || {
        seed.count("config get cluster") > polls + 1
    });
    assert!(quiet, "polls continued after the client was dropped");
}

#[test]
fn rejected_reply_does_not_poison_the_pooled_connection() {
    // One node that serves the configuration; the seed answers only at start-up.
    let node = Responder::start(|_| Action::Send(b"ERROR\r\n".to_vec()));
    let node_entry = entry(node.port);
    let first = config_reply(1, std::slice::from_ref(&node_entry));
    let seed = Responder::start(move |_| Action::SendAndClose(first.clone()));
    let client = fast(&seed.address()).build().unwrap();
    assert_eq!(client.config_version(), Some(1));
    seed.script(|_| Action::Send(b"ERROR\r\n".to_vec()));

    // The node's reply declares fewer bytes than it sends: rejected, with bytes left over.
    node.script(|_| {
        Action::Send(b"CONFIG cluster 0 10\r\n2\nlocalhost|127.0.0.1|1\n\r\nEND\r\n".to_vec())
    });
    assert!(client.refresh().is_err());
    // Then it answers correctly: the leftover bytes must not be read as this reply.
    let good = config_reply(2, &[node_entry.clone(), entry(40031)]);
    node.script(move |line| match line {
        "config get cluster" => Action::Send(good.clone()),
        _ => Action::Send(b"ERROR\r\n".to_vec()),
    });
    assert!(client.refresh().unwrap());
    assert_eq!(client.config_version(), Some(2));
    assert_eq!(
        node.accepted.load(Ordering::SeqCst),
        2,
        "a fresh connection"
    );
}

/// Wraps the TCP connector and records what it is asked to connect to.
#[derive(Debug, Default)]
struct Recording {
    asked: std::sync::Mutex<Vec<ferrocache_client::Endpoint>>,
}

impl ferrocache_client::Connector for Recording {
    fn connect(
        &self,
        endpoint: &ferrocache_client::Endpoint,
        timeouts: &ferrocache_client::Timeouts,
    ) -> std::io::Result<Box<dyn ferrocache_client::conn::Stream>> {
        self.asked.lock().unwrap().push(endpoint.clone());
        ferrocache_client::Connector::connect(&ferrocache_client::TcpConnector, endpoint, timeouts)
    }
}

#[test]
fn seed_names_are_resolved_on_every_use_through_the_connector() {
    // The listed node does not exist, so every poll falls back to the seed.
    let seed = endpoint(config_reply(1, &[entry(40041)]));
    let recording = Arc::new(Recording::default());
    let client = fast(&format!("localhost:{}", seed.port))
        .connector(recording.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        assert!(!client.refresh().unwrap());
    }
    let asked = recording.asked.lock().unwrap().clone();
    let seed_uses: Vec<_> = asked.iter().filter(|e| e.port == seed.port).collect();
    // Start-up plus three polls, each handing the connector the name, not a cached address.
    assert_eq!(seed_uses.len(), 4, "{asked:?}");
    assert!(seed_uses
        .iter()
        .all(|e| e.host == "localhost" && e.ip.is_none()));
    // Discovered nodes are reached at the IP their config line announced.
    assert!(asked
        .iter()
        .any(|e| e.port == 40041 && e.ip == Some("127.0.0.1".parse().unwrap())));
}
