//! The bundled client with SASL against real ferrocache nodes started with `-S --sasl-db`:
//! every mechanism over the binary protocol, the whole API on a three-node cluster found by
//! discovery, salted user entries, wrong credentials as typed errors that serve no data and
//! eject nothing, and re-authentication on every new connection.

#[path = "../client/tests/support/mod.rs"]
#[macro_use]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ferrocache_client::conn::Connection;
use ferrocache_client::discovery::{fetch_config, fetch_form, ReplyForm};
use ferrocache_client::{
    Client, Credentials, Endpoint, Error, FailurePolicy, Mechanism, NodeState, Protocol, Session,
    TcpConnector, Timeouts,
};
use support::{free_port, suites, wait_until, ServerProcess};

fn ferrocache() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferrocache"))
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> Dir {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ferrocache-client-auth-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
}

/// A salted `user:$scram$…` entry made by `ferrocache-saslpasswd`.
fn salted_entry(user: &str, password: &str) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_ferrocache-saslpasswd"));
    let mut child = Command::new(bin)
        .args(["-i", "64", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let entry = String::from_utf8(out.stdout).unwrap();
    assert!(entry.starts_with(&format!("{user}:$scram$")), "{entry}");
    entry
}

/// A user database with `alice` (clear text) and `bob` (salted).
fn user_db(dir: &Dir) -> String {
    let path = dir.0.join("users");
    let text = format!("alice:s3cret\n{}", salted_entry("bob", "hunter2"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn sasl_args(db: &str) -> Vec<String> {
    vec!["-S".into(), "--sasl-db".into(), db.into()]
}

/// `count` nodes that list each other through one node file, all requiring SASL.
fn sasl_cluster(dir: &Dir, db: &str, count: usize) -> Vec<ServerProcess> {
    let file = dir.0.join("nodes.txt");
    let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
    let list: String = ports
        .iter()
        .map(|p| format!("localhost|127.0.0.1|{p}\n"))
        .collect();
    std::fs::write(&file, list).unwrap();
    let nodes: Vec<ServerProcess> = ports
        .iter()
        .map(|&port| {
            let mut args = sasl_args(db);
            args.extend(["--cluster-file".into(), file.display().to_string()]);
            ServerProcess::start_with(ferrocache(), "127.0.0.1", port, &args)
                .unwrap_or_else(|| panic!("ferrocache on port {port} did not start"))
        })
        .collect();
    // A node accepts connections before it serves them: it first asks its peers for the
    // cluster state (which SASL nodes refuse each other, so that takes the agent's timeouts).
    for node in &nodes {
        assert!(
            wait_until(Duration::from_secs(10), || serves(&node.address())),
            "{} does not serve",
            node.address()
        );
    }
    nodes
}

/// Whether the node answers a binary VERSION (allowed before authentication).
fn serves(address: &str) -> bool {
    builder()
        .server(address)
        .protocol(Protocol::Binary)
        .read_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
        .version()
        .is_ok_and(|v| v[0].1.is_ok())
}

/// Timeouts generous enough for a loaded machine running debug builds (SCRAM hashing).
fn builder() -> ferrocache_client::ClientBuilder {
    Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(5))
}

fn discovering(seed: &ServerProcess, credentials: Credentials) -> Client {
    let client = builder()
        .seed(&seed.address())
        .credentials(credentials)
        .build()
        .unwrap();
    assert!(
        client.config_version().is_some(),
        "{:?}",
        client.discovery_error()
    );
    assert_eq!(client.nodes().len(), 3);
    client
}

fn stat(client: &Client, name: &str) -> u64 {
    let stats = client.stats().unwrap();
    stats
        .iter()
        .map(|(_, s)| {
            s.as_ref()
                .unwrap()
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, v)| v.parse::<u64>().unwrap())
        })
        .sum()
}

#[test]
fn whole_api_over_sasl_on_a_discovered_cluster() {
    let dir = temp_dir();
    let db = user_db(&dir);
    let nodes = sasl_cluster(&dir, &db, 3);

    // Negotiated (SCRAM-SHA-256, the best the server offers) with a salted entry.
    let client = discovering(&nodes[1], Credentials::new("bob", "hunter2"));
    suites::cluster_wide_commands_and_multi_get(&client);
    suites::single_key_operations(&client);
    // A poll through the nodes' authenticated pooled connections.
    assert!(!client.refresh().unwrap());

    // Both binary forms on one authenticated connection, which stays in step: ElastiCache's
    // CONFIG_GET (0x60, with a NOOP behind it) and the legacy key.
    let endpoint = Endpoint {
        host: "127.0.0.1".into(),
        ip: None,
        port: nodes[0].port,
    };
    let session = Session {
        protocol: Protocol::Binary,
        credentials: Some(Credentials::new("alice", "s3cret").with_mechanism(Mechanism::Plain)),
    };
    let mut conn = Connection::open(
        &TcpConnector,
        &endpoint,
        endpoint.to_string().into(),
        &Timeouts::default(),
        &session,
    )
    .unwrap();
    let config = fetch_form(&mut conn, ReplyForm::Config).unwrap();
    assert_eq!((config.version, config.nodes.len()), (1, 3));
    assert_eq!(fetch_form(&mut conn, ReplyForm::Config).unwrap(), config);
    assert_eq!(fetch_form(&mut conn, ReplyForm::Legacy).unwrap(), config);
    assert_eq!(fetch_config(&mut conn).unwrap().0, config);

    // Each mechanism, for a clear-text and a salted entry: set on one client, read back
    // across the cluster with a pipelined multi-get on another. (SCRAM against a clear-text
    // entry costs 4096 PBKDF2 rounds per login, slow in debug builds: done once.)
    let keys: Vec<String> = (0..60).map(|i| format!("session:{i}")).collect();
    for (mechanism, user, password) in [
        (Mechanism::Plain, "alice", "s3cret"),
        (Mechanism::Plain, "bob", "hunter2"),
        (Mechanism::ScramSha1, "bob", "hunter2"),
        (Mechanism::ScramSha256, "bob", "hunter2"),
        (Mechanism::ScramSha1, "alice", "s3cret"),
    ] {
        let creds = Credentials::new(user, password).with_mechanism(mechanism);
        let writer = discovering(&nodes[0], creds.clone());
        for key in &keys {
            writer
                .set(key, format!("{mechanism}/{user}"), 7, 0)
                .unwrap();
        }
        let reader = discovering(&nodes[2], creds);
        let got = reader.get_multi(&keys).unwrap();
        assert!(got.failed.is_empty(), "{:?}", got.failed);
        assert_eq!(got.items.len(), keys.len());
        let want = format!("{mechanism}/{user}");
        assert!(got
            .items
            .values()
            .all(|item| item.value == want.as_bytes() && item.flags == 7));
    }
}

#[test]
fn wrong_credentials_are_typed_errors_and_serve_nothing() {
    let dir = temp_dir();
    let db = user_db(&dir);
    let server = ServerProcess::start_with(ferrocache(), "127.0.0.1", free_port(), &sasl_args(&db))
        .expect("ferrocache -S");
    let good = builder()
        .server(&server.address())
        .sasl("alice", "s3cret")
        .build()
        .unwrap();
    good.set("secret", "data", 0, 0).unwrap();

    for (user, password, mechanism) in [
        ("bob", "wrong", None),
        ("alice", "wrong", Some(Mechanism::Plain)),
        ("bob", "hunter3", Some(Mechanism::ScramSha1)),
        ("mallory", "s3cret", Some(Mechanism::ScramSha256)),
    ] {
        let mut creds = Credentials::new(user, password);
        if let Some(m) = mechanism {
            creds = creds.with_mechanism(m);
        }
        let client = builder()
            .server(&server.address())
            .credentials(creds)
            .failure_policy(FailurePolicy {
                failure_limit: 2,
                ..FailurePolicy::default()
            })
            .build()
            .unwrap();
        // More attempts than the failure limit: every one reports the refusal, none ejects
        // the node or turns into a fast-fail.
        for _ in 0..2 {
            match client.get("secret") {
                Err(Error::Auth { node, message }) => {
                    assert_eq!(node, server.address());
                    assert!(message.contains(user), "{message}");
                    assert!(!message.contains(password), "{message}");
                }
                other => panic!("{user}/{mechanism:?}: {other:?}"),
            }
            assert!(matches!(
                client.set("secret", "overwritten", 0, 0),
                Err(Error::Auth { .. })
            ));
        }
        let multi = client.get_multi(&["secret"]).unwrap();
        assert!(multi.items.is_empty());
        assert!(matches!(multi.failed[0].error, Error::Auth { .. }));
        assert_eq!(client.nodes()[0].state, NodeState::Up);
        // The client's debug output does not show the password.
        assert!(!format!("{client:?}").contains(password));
    }
    // The right credentials still find the data untouched.
    assert_eq!(good.get("secret").unwrap().unwrap().value, b"data");

    // Discovery with wrong credentials: no servers, with the reason.
    let discovering = builder()
        .seed(&server.address())
        .credentials(Credentials::new("alice", "nope").with_mechanism(Mechanism::Plain))
        .build()
        .unwrap();
    match discovering.get("secret") {
        Err(Error::NoServers(why)) => assert!(why.contains("authentication"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(discovering
        .discovery_error()
        .unwrap()
        .contains("refused user \"alice\""));

    // Text protocol without credentials: the server refuses, and says so.
    let anonymous = Client::new([server.address()]).unwrap();
    assert!(anonymous.get("secret").is_err());

    // Text protocol cannot carry SASL.
    assert!(matches!(
        builder()
            .server(&server.address())
            .protocol(Protocol::Text)
            .sasl("alice", "s3cret")
            .build(),
        Err(Error::Config(_))
    ));
}

#[test]
fn credentials_against_a_server_without_sasl() {
    let server = ServerProcess::start(ferrocache());
    let client = builder()
        .server(&server.address())
        .sasl("alice", "s3cret")
        .build()
        .unwrap();
    match client.get("k") {
        Err(Error::Auth { message, .. }) => {
            assert!(message.contains("does not offer SASL"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // The binary protocol alone works.
    let binary = builder()
        .server(&server.address())
        .protocol(Protocol::Binary)
        .build()
        .unwrap();
    suites::single_key_operations(&binary);
}

#[test]
fn every_new_connection_authenticates_again() {
    let dir = temp_dir();
    let db = user_db(&dir);
    let port = free_port();
    let mut server =
        ServerProcess::start_with(ferrocache(), "127.0.0.1", port, &sasl_args(&db)).unwrap();
    let client = builder()
        .server(&server.address())
        .sasl("bob", "hunter2")
        .pool_size(1)
        .failure_policy(FailurePolicy {
            failure_limit: 1,
            probe_interval: Duration::from_millis(20),
            max_probe_interval: Duration::from_millis(50),
            ..FailurePolicy::default()
        })
        .build()
        .unwrap();
    client.set("n", "text", 0, 0).unwrap();
    let before = stat(&client, "auth_cmds");
    // A refused incr leaves the connection out of the pool; the next request opens and
    // authenticates a new one.
    assert!(matches!(client.incr("n", 1), Err(Error::ClientError(_))));
    assert_eq!(client.get("n").unwrap().unwrap().value, b"text");
    assert!(stat(&client, "auth_cmds") > before);

    // The node restarts: the probe and the requests after it authenticate anew.
    server.kill();
    assert!(client.get("n").is_err());
    server.restart();
    assert!(wait_until(Duration::from_secs(5), || {
        client.probe_now();
        client.nodes()[0].state == NodeState::Up
    }));
    client.set("n", "again", 0, 0).unwrap();
    assert_eq!(client.get("n").unwrap().unwrap().value, b"again");

    // The node comes back without bob in its user database: the probe finds it up and
    // readmits it, and requests report the refusal instead of failing fast without a reason.
    server.kill();
    assert!(client.get("n").is_err());
    assert_ne!(client.nodes()[0].state, NodeState::Up);
    std::fs::write(&db, "alice:s3cret\n").unwrap();
    server.restart();
    assert!(wait_until(Duration::from_secs(5), || {
        client.probe_now();
        client.nodes()[0].state == NodeState::Up
    }));
    assert!(matches!(client.get("n"), Err(Error::Auth { .. })));
}
