//! The bundled client over TLS against real ferrocache nodes (`-Z`) with certificates made at
//! test time: the whole API on a three-node cluster discovered over TLS, TLS with SASL,
//! certificate problems as typed errors, the server name override, and client certificates
//! (mTLS). An ignored test measures throughput of text, binary, TLS and TLS+SASL.

#[path = "common/pki.rs"]
mod pki;
#[path = "../client/tests/support/mod.rs"]
#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocache_client::{
    Client, ClientBuilder, Error, Mechanism, NodeState, Protocol, TlsConfig, TlsConnector,
    TlsErrorKind,
};
use pki::Ca;
use rcgen::ExtendedKeyUsagePurpose;
use support::{free_port, suites, wait_until, ServerProcess};

fn ferrocache() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferrocache"))
}

/// A fresh directory for certificates, keys and node files.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferrocache-client-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Server arguments for TLS with a certificate for `names` signed by `ca`.
fn tls_args(dir: &Dir, ca: &Ca, names: &[&str]) -> Vec<String> {
    let (cert, key) = ca.leaf(names, &[ExtendedKeyUsagePurpose::ServerAuth]);
    let cert = dir.write("server.pem", &cert);
    let key = dir.write("server.key", &key);
    // Nodes with peers verify them over TLS against this CA.
    let peers_ca = dir.write("cluster-ca.pem", &ca.pem());
    vec![
        "-Z".into(),
        "-o".into(),
        format!("ssl_chain_cert={cert},ssl_key={key},cluster_ca_cert={peers_ca}"),
    ]
}

/// Timeouts generous enough for a loaded machine running debug builds.
fn builder() -> ClientBuilder {
    Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(5))
}

fn connector(tls: TlsConfig) -> Arc<TlsConnector> {
    Arc::new(tls.build().unwrap())
}

fn start(args: &[String]) -> ServerProcess {
    ServerProcess::start_with(ferrocache(), "127.0.0.1", free_port(), args)
        .expect("ferrocache started")
}

/// Waits until the node answers a binary `version` (allowed before SASL authentication)
/// through `tls`: a node with a cluster file accepts connections before it serves them.
fn wait_serving(node: &ServerProcess, tls: &Arc<TlsConnector>) {
    let client = Client::builder()
        .server(&node.address())
        .connector(tls.clone())
        .protocol(Protocol::Binary)
        .read_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || client
        .version()
        .is_ok_and(|v| v[0].1.is_ok())));
}

/// `count` TLS nodes listing each other in one node file.
fn tls_cluster(dir: &Dir, mut args: Vec<String>, count: usize) -> Vec<ServerProcess> {
    let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
    let list: String = ports
        .iter()
        .map(|p| format!("localhost|127.0.0.1|{p}\n"))
        .collect();
    let file = dir.write("nodes.txt", &list);
    args.extend(["--cluster-file".into(), file]);
    ports
        .iter()
        .map(|&port| {
            ServerProcess::start_with(ferrocache(), "127.0.0.1", port, &args)
                .unwrap_or_else(|| panic!("ferrocache on port {port} did not start"))
        })
        .collect()
}

#[test]
fn whole_api_over_tls_on_a_discovered_cluster() {
    let dir = Dir::new();
    let ca = Ca::new("cluster CA");
    // Seeds are addressed by IP, discovered nodes by their hostname.
    let nodes = tls_cluster(&dir, tls_args(&dir, &ca, &["localhost", "127.0.0.1"]), 3);
    let tls = connector(TlsConfig::new().ca_pem(ca.pem()));
    for node in &nodes {
        wait_serving(node, &tls);
    }

    let client = builder()
        .seed(&nodes[0].address())
        .connector(tls.clone())
        .build()
        .unwrap();
    assert_eq!(
        client.config_version(),
        Some(1),
        "{:?}",
        client.discovery_error()
    );
    let mut names: Vec<String> = client.nodes().into_iter().map(|n| n.name).collect();
    names.sort();
    let mut want: Vec<String> = nodes
        .iter()
        .map(|n| format!("localhost:{}", n.port))
        .collect();
    want.sort();
    assert_eq!(names, want);
    suites::cluster_wide_commands_and_multi_get(&client);
    suites::single_key_operations(&client);
    // Polls go over TLS as well (through the nodes' pooled connections).
    assert!(!client.refresh().unwrap());

    // The binary protocol over TLS, discovery included (CONFIG_GET).
    let binary = builder()
        .seed(&nodes[1].address())
        .connector(tls)
        .protocol(Protocol::Binary)
        .build()
        .unwrap();
    assert_eq!(
        binary.config_version(),
        Some(1),
        "{:?}",
        binary.discovery_error()
    );
    let keys: Vec<String> = (0..100).map(|i| format!("tls:{i}")).collect();
    for key in &keys {
        binary.set(key, key, 1, 0).unwrap();
    }
    let got = client.get_multi(&keys).unwrap();
    assert_eq!(got.items.len(), 100);
    let got = binary.get_multi(&keys).unwrap();
    assert_eq!(got.items.len(), 100);
    assert!(got.items.iter().all(|(k, item)| &item.value == k));
}

#[test]
fn tls_and_sasl_together() {
    let dir = Dir::new();
    let ca = Ca::new("sasl CA");
    let db = dir.write("users", "alice:s3cret\n");
    let mut args = tls_args(&dir, &ca, &["localhost", "127.0.0.1"]);
    args.extend(["-S".into(), "--sasl-db".into(), db]);
    let nodes = tls_cluster(&dir, args, 1);
    let tls = connector(TlsConfig::new().ca_pem(ca.pem()));
    wait_serving(&nodes[0], &tls);

    for mechanism in [Mechanism::ScramSha256, Mechanism::Plain] {
        let client = builder()
            .seed(&nodes[0].address())
            .connector(tls.clone())
            .credentials(
                ferrocache_client::Credentials::new("alice", "s3cret").with_mechanism(mechanism),
            )
            .build()
            .unwrap();
        assert_eq!(
            client.config_version(),
            Some(1),
            "{:?}",
            client.discovery_error()
        );
        client.set("k", mechanism.name(), 0, 0).unwrap();
        assert_eq!(
            client.get("k").unwrap().unwrap().value,
            mechanism.name().as_bytes()
        );
    }
    let client = builder()
        .server(&nodes[0].address())
        .connector(tls.clone())
        .sasl("alice", "s3cret")
        .build()
        .unwrap();
    suites::single_key_operations(&client);

    let wrong = builder()
        .server(&nodes[0].address())
        .connector(tls)
        .sasl("alice", "s3cre")
        .build()
        .unwrap();
    assert!(matches!(wrong.get("k"), Err(Error::Auth { .. })));
}

#[test]
fn certificate_problems_are_typed_tls_errors() {
    let dir = Dir::new();
    let ca = Ca::new("right CA");
    let other = Ca::new("other CA");
    // The certificate names only cache.internal.
    let server = start(&tls_args(&dir, &ca, &["cache.internal"]));
    let plain = start(&[]);

    let tls_error = |client: &Client| match client.get("k") {
        Err(Error::Tls { node, source }) => {
            assert!(node.starts_with("127.0.0.1:"), "{node}");
            source.kind
        }
        other => panic!("{other:?}"),
    };
    let client_for = |server: &ServerProcess, tls: TlsConfig| {
        builder()
            .server(&server.address())
            .connector(connector(tls))
            .build()
            .unwrap()
    };

    // An untrusted issuer; retried more often than the failure limit, it never ejects.
    let untrusted = client_for(&server, TlsConfig::new().ca_pem(other.pem()));
    for _ in 0..4 {
        assert_eq!(tls_error(&untrusted), TlsErrorKind::Certificate);
    }
    assert_eq!(untrusted.nodes()[0].state, NodeState::Up);

    // The right issuer, but 127.0.0.1 is not a name in the certificate.
    let wrong_name = client_for(&server, TlsConfig::new().ca_pem(ca.pem()));
    assert_eq!(tls_error(&wrong_name), TlsErrorKind::Certificate);

    // The name override makes it match.
    let ca_file = dir.write("ca.pem", &ca.pem());
    let named = client_for(
        &server,
        TlsConfig::new()
            .ca_file(&ca_file)
            .server_name("cache.internal"),
    );
    named.set("k", "v", 0, 0).unwrap();
    assert_eq!(named.get("k").unwrap().unwrap().value, b"v");

    // TLS to a plaintext port.
    let to_plain = client_for(&plain, TlsConfig::new().ca_pem(ca.pem()));
    assert_eq!(tls_error(&to_plain), TlsErrorKind::Handshake);

    // Unusable settings are reported when the connector is built.
    for bad in [
        TlsConfig::new(),
        TlsConfig::new().ca_pem("not a certificate"),
        TlsConfig::new().ca_file(dir.0.join("missing.pem")),
        TlsConfig::new()
            .ca_pem(ca.pem())
            .client_cert_pem(ca.pem(), "not a key"),
        TlsConfig::new().ca_pem(ca.pem()).server_name("bad name!"),
    ] {
        assert!(matches!(bad.build(), Err(Error::Config(_))));
    }
}

#[test]
fn client_certificates() {
    let dir = Dir::new();
    let ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let client_ca_file = dir.write("client-ca.pem", &client_ca.pem());
    let mut args = tls_args(&dir, &ca, &["127.0.0.1"]);
    args[2] = format!("{},ssl_ca_cert={client_ca_file},ssl_verify_mode=3", args[2]);
    let server = start(&args);

    let (cert, key) = client_ca.leaf(&["client"], &[ExtendedKeyUsagePurpose::ClientAuth]);
    let with_cert = builder()
        .server(&server.address())
        .connector(connector(
            TlsConfig::new().ca_pem(ca.pem()).client_cert_files(
                dir.write("client.pem", &cert),
                dir.write("client.key", &key),
            ),
        ))
        .build()
        .unwrap();
    suites::single_key_operations(&with_cert);

    // Without a certificate the server ends the session with an alert.
    let without = builder()
        .server(&server.address())
        .connector(connector(TlsConfig::new().ca_pem(ca.pem())))
        .build()
        .unwrap();
    match without.get("k") {
        Err(Error::Tls { source, .. }) => assert_eq!(source.kind, TlsErrorKind::Refused),
        other => panic!("{other:?}"),
    }
    // A certificate from an issuer the server does not trust.
    let (cert, key) = ca.leaf(&["client"], &[ExtendedKeyUsagePurpose::ClientAuth]);
    let untrusted = builder()
        .server(&server.address())
        .connector(connector(
            TlsConfig::new().ca_pem(ca.pem()).client_cert_pem(cert, key),
        ))
        .build()
        .unwrap();
    match untrusted.get("k") {
        Err(Error::Tls { source, .. }) => assert_eq!(source.kind, TlsErrorKind::Refused),
        other => panic!("{other:?}"),
    }
}

/// Operations per second of `ops` alternating set/get pairs from one thread.
fn measure(client: &Client, ops: usize) -> f64 {
    let value = vec![b'x'; 100];
    client.set("warm", &value, 0, 0).unwrap();
    let started = Instant::now();
    for i in 0..ops / 2 {
        let key = format!("bench:{}", i % 1000);
        client.set(&key, &value, 0, 0).unwrap();
        assert!(client.get(&key).unwrap().is_some());
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

/// `cargo test --release --test client_tls throughput -- --ignored --nocapture`
#[test]
#[ignore = "measurement; run explicitly with --release"]
fn throughput() {
    let dir = Dir::new();
    let ca = Ca::new("bench CA");
    let db = dir.write("users", &{
        // A salted entry, as production databases have.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrocache-saslpasswd"))
            .args(["-i", "4096", "bench"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                writeln!(child.stdin.take().unwrap(), "pw")?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    });
    let plain = start(&[]);
    let sasl = start(&["-S".into(), "--sasl-db".into(), db.clone()]);
    let tls = start(&tls_args(&dir, &ca, &["127.0.0.1"]));
    let mut args = tls_args(&dir, &ca, &["127.0.0.1"]);
    args.extend(["-S".into(), "--sasl-db".into(), db]);
    let tls_sasl = start(&args);
    let connector = connector(TlsConfig::new().ca_pem(ca.pem()));
    let ops: usize = std::env::var("OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let cases: Vec<(&str, Client)> = vec![
        ("text", builder().server(&plain.address()).build().unwrap()),
        (
            "binary",
            builder()
                .server(&plain.address())
                .protocol(Protocol::Binary)
                .build()
                .unwrap(),
        ),
        (
            "binary+SASL",
            builder()
                .server(&sasl.address())
                .sasl("bench", "pw")
                .build()
                .unwrap(),
        ),
        (
            "TLS text",
            builder()
                .server(&tls.address())
                .connector(connector.clone())
                .build()
                .unwrap(),
        ),
        (
            "TLS binary",
            builder()
                .server(&tls.address())
                .connector(connector.clone())
                .protocol(Protocol::Binary)
                .build()
                .unwrap(),
        ),
        (
            "TLS+SASL",
            builder()
                .server(&tls_sasl.address())
                .connector(connector.clone())
                .sasl("bench", "pw")
                .build()
                .unwrap(),
        ),
    ];
    for (name, client) in &cases {
        // Best of three runs, each on the warm pooled connection.
        let best = (0..3).map(|_| measure(client, ops)).fold(0.0, f64::max);
        println!(
            "{name:12} {best:>9.0} ops/s ({ops} ops: set+get pairs, 100-byte values, 1 thread)"
        );
    }
    // Connection setup cost: a fresh connection (and handshake, and login) per request.
    for (name, client) in &cases {
        let started = Instant::now();
        let rounds = 200;
        for _ in 0..rounds {
            let fresh = builder()
                .server(&client.nodes()[0].name)
                .connector(match *name {
                    "TLS text" | "TLS binary" | "TLS+SASL" => connector.clone(),
                    _ => Arc::new(ferrocache_client::TcpConnector),
                })
                .protocol(if name.contains("text") {
                    Protocol::Text
                } else {
                    Protocol::Binary
                });
            let fresh = if name.contains("SASL") {
                fresh.sasl("bench", "pw")
            } else {
                fresh
            };
            fresh.build().unwrap().get("warm").unwrap();
        }
        println!(
            "{name:12} {:>9.2} ms per new connection + first get",
            started.elapsed().as_secs_f64() * 1000.0 / rounds as f64
        );
    }
}
