//! Cluster exchanges over TLS: `-Z` nodes with no `notls:` listener keep
//! their list in sync (join, failure timeout), with client certificates
//! required (mTLS), with `--cluster-credentials` under `-S`; a node with a
//! certificate from another CA or for another address is refused and the
//! log says why; a peer that stalls mid-handshake does not hold the agent;
//! `-o cluster_tls=0` exchanges in clear on `notls:` listeners; start-up
//! refuses a TLS exchange it could not verify. Certificates are made at
//! test time with rcgen.

mod cluster_support;
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_support::*;
use common::pki::Ca;
use rcgen::ExtendedKeyUsagePurpose;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Node certificates serve both ends of an exchange.
const NODE: &[ExtendedKeyUsagePurpose] = &[
    ExtendedKeyUsagePurpose::ServerAuth,
    ExtendedKeyUsagePurpose::ClientAuth,
];

/// Certificates of one test, in its scratch directory.
struct Pki {
    dir: TempDir,
    ca: Ca,
    /// The test's own client certificate, to query mTLS nodes.
    client: (String, String),
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        let ca = Ca::new("ferrocache cluster CA");
        let client = ca.leaf(&["operator"], NODE);
        let pki = Pki { dir, ca, client };
        pki.write("ca.pem", &pki.ca.cert.pem());
        pki
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// `-Z -o …` for a node whose certificate, signed by `ca`, names
    /// `names`; peers are verified against this test's CA.
    fn node_args(&self, tag: &str, ca: &Ca, names: &[&str], extra_o: &str) -> Vec<String> {
        let (cert, key) = ca.leaf(names, NODE);
        let cert = self.write(&format!("{tag}.pem"), &cert);
        let key = self.write(&format!("{tag}.key"), &key);
        let ca_file = self.dir.path("ca.pem");
        let mut o = format!(
            "ssl_chain_cert={cert},ssl_key={key},cluster_ca_cert={}",
            ca_file.display()
        );
        if !extra_o.is_empty() {
            o.push(',');
            o.push_str(extra_o);
        }
        vec!["-Z".into(), "-o".into(), o]
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cert = CertificateDer::pem_slice_iter(self.client.0.as_bytes())
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_slice(self.client.1.as_bytes()).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(cert, key)
                .unwrap(),
        )
    }
}

/// A TLS node on `ip`: `Node` with its `-Z` options.
fn tls_node(pki: &Pki, tag: &str, ip: &str, extra_o: &str, extra: &[&str]) -> Node {
    let args = pki.node_args(tag, &pki.ca, &[ip], extra_o);
    let mut all: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    all.extend_from_slice(extra);
    Node::new(ip, &all)
}

/// Sends `req` over TLS (a node has no plain listener) and reads until the
/// reply ends with `end`; `None` on any failure.
fn tls_ask(pki: &Pki, node: &Node, req: &[u8], end: &[u8]) -> Option<Vec<u8>> {
    let sock = TcpStream::connect_timeout(&node.addr(), Duration::from_millis(500)).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let name = ServerName::try_from(node.ip.clone()).ok()?;
    let conn = ClientConnection::new(pki.client_config(), name).ok()?;
    let mut s = StreamOwned::new(conn, sock);
    s.write_all(req).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(end) {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

/// `config get cluster` over TLS; `None` on any failure. `login`: a text
/// login sent first.
fn tls_config(pki: &Pki, node: &Node, login: Option<&str>) -> Option<(u64, String)> {
    let mut req = Vec::new();
    if let Some(l) = login {
        req.extend_from_slice(format!("set auth 0 0 {}\r\n{l}\r\n", l.len()).as_bytes());
    }
    req.extend_from_slice(b"config get cluster\r\n");
    let buf = tls_ask(pki, node, &req, b"END\r\n")?;
    let reply = match login {
        Some(_) => buf.strip_prefix(b"STORED\r\n")?,
        None => &buf[..],
    };
    Some(parse_config(reply))
}

/// Polls every node over TLS until all list exactly `want` under one
/// version; checks on the way that no node's version goes down.
#[track_caller]
fn converge(pki: &Pki, nodes: &[&Node], login: Option<&str>, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    let mut last = vec![0u64; nodes.len()];
    loop {
        let seen: Vec<Option<(u64, String)>> =
            nodes.iter().map(|n| tls_config(pki, n, login)).collect();
        for (i, s) in seen.iter().enumerate() {
            if let Some((v, _)) = s {
                assert!(*v >= last[i], "{}: version went down", nodes[i].addr());
                last[i] = *v;
            }
        }
        let first = &seen[0];
        if first.as_ref().is_some_and(|(_, l)| l == want) && seen.iter().all(|s| s == first) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence on {want:?} within {within:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls a node's log for `needle`; returns the log.
#[track_caller]
fn wait_for_log(node: &Node, needle: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let log = node.stderr();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in log:\n{log}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_tls_cluster_converges_on_joins_and_failures() {
    let pki = Pki::new("cluster-tls");
    let timeout = ["--cluster-failure-timeout", "1"];
    let mut a = tls_node(&pki, "a", "127.0.0.1", "", &timeout);
    a.start();
    let join = a.hostport();
    let joining = [&timeout[..], &["--join", &join]].concat();
    let mut b = tls_node(&pki, "b", "127.0.0.2", "", &joining);
    b.start();
    converge(
        &pki,
        &[&a, &b],
        None,
        &list(&[a.entry(), b.entry()]),
        Duration::from_secs(3),
    );
    let mut c = tls_node(&pki, "c", "127.0.0.3", "", &joining);
    let t = Instant::now();
    c.start();
    let all = list(&[a.entry(), b.entry(), c.entry()]);
    converge(&pki, &[&a, &b, &c], None, &all, Duration::from_secs(3));
    eprintln!(
        "a 3rd node joining over TLS seen by every node after {:?} (start-up included)",
        t.elapsed()
    );
    // The node list travels only over TLS: nothing listens in clear.
    assert!(ask(a.addr(), b"config get cluster\r\n").map_or(true, |r| !r.starts_with(b"CONFIG")));
    c.kill();
    // Dropped by the failure timeout (1 s since anyone last heard it, up to
    // one 200 ms round before the kill), not at once.
    let t0 = Instant::now();
    converge(
        &pki,
        &[&a, &b],
        None,
        &list(&[a.entry(), b.entry()]),
        Duration::from_secs(4),
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t0.elapsed()
    );
    eprintln!(
        "kill -9 over TLS seen by every node after {:?} (timeout 1 s)",
        t0.elapsed()
    );
    let log = a.stderr() + &b.stderr();
    assert!(!log.contains("TLS handshake failed"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "{log}");
}

#[test]
fn mutual_tls_admits_the_cluster_and_refuses_a_foreign_ca() {
    let pki = Pki::new("cluster-mtls");
    let mtls =
        "ssl_verify_mode=3,ssl_ca_cert=".to_string() + pki.dir.path("ca.pem").to_str().unwrap();
    let mut a = tls_node(&pki, "a", "127.0.0.1", &mtls, &[]);
    a.start();
    let join = a.hostport();
    let mut b = tls_node(&pki, "b", "127.0.0.2", &mtls, &["--join", &join]);
    b.start();
    let pair = list(&[a.entry(), b.entry()]);
    converge(&pki, &[&a, &b], None, &pair, Duration::from_secs(3));

    // A node whose certificate comes from another CA trusts the cluster's
    // CA, but the members refuse its certificate: it never joins.
    let other = Ca::new("another CA");
    let mut args = pki.node_args("x", &other, &["127.0.0.3"], "");
    args.extend(["--join".into(), join.clone()]);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let mut x = Node::new("127.0.0.3", &args);
    x.start();
    let log = wait_for_log(&x, "TLS handshake failed", Duration::from_secs(5));
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap();
    assert!(
        line.starts_with(&format!(
            "cluster: {join}: TLS handshake failed: received fatal alert: "
        )),
        "{line}"
    );
    // The failure is logged after the round's exchange with `a` ended: had
    // `a` accepted the sync, it would list the node by now.
    assert!(!log.contains("joined via"), "{log}");
    converge(&pki, &[&a, &b], None, &pair, Duration::from_secs(1));
    let seen = tls_config(&pki, &a, None).unwrap().1;
    assert!(!seen.contains("127.0.0.3"), "{seen}");
    // The member counted the refused handshake.
    let stats = tls_ask(&pki, &a, b"stats\r\n", b"END\r\n").unwrap();
    let stats = String::from_utf8(stats).unwrap();
    let errors: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("STAT ssl_handshake_errors "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors >= 1, "{stats}");
}

#[test]
fn a_peer_certificate_is_checked_against_its_address_and_ca() {
    let pki = Pki::new("cluster-tls-names");
    let mut a = tls_node(&pki, "a", "127.0.0.1", "", &[]);
    a.start();
    let join = a.hostport();
    // Signed by the right CA, but for another address: the members reach
    // this node at 127.0.0.2 and refuse what it presents there.
    let mut args = pki.node_args("w", &pki.ca, &["127.0.0.9"], "");
    args.extend(["--join".into(), join.clone()]);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let mut w = Node::new("127.0.0.2", &args);
    w.start();
    let log = wait_for_log(&a, "TLS handshake failed", Duration::from_secs(5));
    let line = log
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap();
    assert!(
        line.starts_with(&format!(
            "cluster: {}: TLS handshake failed: invalid peer certificate: ",
            w.hostport()
        )),
        "{line}"
    );
    assert!(line.contains("127.0.0.2"), "{line}");

    // A node that trusts only its own CA refuses the cluster's members.
    let other = Ca::new("another CA");
    let (cert, key) = other.leaf(&["127.0.0.3"], NODE);
    let ca_file = pki.write("other-ca.pem", &other.cert.pem());
    let cert = pki.write("y.pem", &cert);
    let key = pki.write("y.key", &key);
    let o = format!("ssl_chain_cert={cert},ssl_key={key},cluster_ca_cert={ca_file}");
    let mut y = Node::new("127.0.0.3", &["-Z", "-o", &o, "--join", &join]);
    y.start();
    let log = wait_for_log(&y, "TLS handshake failed", Duration::from_secs(5));
    assert!(
        log.contains(&format!(
            "cluster: {join}: TLS handshake failed: invalid peer certificate: UnknownIssuer"
        )),
        "{log}"
    );
    let seen = tls_config(&pki, &a, None).unwrap().1;
    assert!(!seen.contains("127.0.0.3"), "{seen}");
}

#[test]
fn tls_with_sasl_and_cluster_credentials() {
    let pki = Pki::new("cluster-tls-sasl");
    let users = pki.write("users", "node:peer-secret\napp:app-secret\n");
    let creds = pki.write("creds", "node:peer-secret\n");
    let auth = ["-S", "--sasl-db", &users, "--cluster-credentials", &creds];
    let mut a = tls_node(&pki, "a", "127.0.0.1", "", &auth);
    a.start();
    let join = a.hostport();
    let mut b = tls_node(
        &pki,
        "b",
        "127.0.0.2",
        "",
        &[&auth[..], &["--join", &join]].concat(),
    );
    b.start();
    let pair = list(&[a.entry(), b.entry()]);
    converge(
        &pki,
        &[&a, &b],
        Some("app app-secret"),
        &pair,
        Duration::from_secs(3),
    );
    // Without the login a client sees nothing.
    assert_eq!(tls_config(&pki, &a, None), None);
    let log = a.stderr() + &b.stderr();
    assert!(!log.contains("peer-secret"), "{log}");
    assert!(!log.contains("TLS handshake failed"), "{log}");
}

/// Accepts connections on `ip` and answers each with the start of a TLS
/// record that never completes, one byte at a time, until dropped.
struct Trickler {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Trickler {
    fn start(ip: &str) -> Trickler {
        let l = TcpListener::bind((ip, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let flag = flag.clone();
                        std::thread::spawn(move || {
                            // A handshake record announcing 16 KiB, then
                            // one byte per 100 ms: each read succeeds well
                            // within the agent's per-read timeout.
                            let head = [0x16u8, 0x03, 0x03, 0x40, 0x00];
                            let mut bytes = head.iter().copied().chain(std::iter::repeat(0));
                            while !flag.load(Ordering::Relaxed) {
                                if s.write_all(&[bytes.next().unwrap()]).is_err() {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Trickler { port, stop }
    }
}

impl Drop for Trickler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_peer_stalling_mid_handshake_does_not_hold_the_agent() {
    let pki = Pki::new("cluster-tls-stall");
    let stall = Trickler::start("127.0.0.9");
    let mut a = tls_node(&pki, "a", "127.0.0.1", "", &[]);
    let mut b = tls_node(&pki, "b", "127.0.0.2", "", &[]);
    let nodes = pki.dir.path("nodes");
    let stalled = format!("stall|127.0.0.9|{}", stall.port);
    write_atomic(
        &nodes,
        &format!("{}\n{}\n{stalled}\n", a.entry(), b.entry()),
    );
    for n in [&mut a, &mut b] {
        n.args
            .extend(["--cluster-file".into(), nodes.to_str().unwrap().into()]);
    }
    let t0 = Instant::now();
    a.start();
    // The start-up pull gives up on the stalled peer at the deadline.
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    wait_for_log(
        &a,
        &format!(
            "cluster: 127.0.0.9:{}: TLS handshake failed: timed out",
            stall.port
        ),
        Duration::from_secs(4),
    );
    b.start();
    // Rounds go on: a change made on one node reaches the other.
    let all = list(&[a.entry(), b.entry(), stalled.clone()]);
    converge(&pki, &[&a, &b], None, &all, Duration::from_secs(4));
    let v = tls_config(&pki, &a, None).unwrap().0;
    let new = list(&[a.entry(), b.entry()]);
    let reply = tls_ask(&pki, &a, &config_set(v + 10, &new), b"\r\n");
    assert_eq!(reply.as_deref(), Some(&b"STORED\r\n"[..]));
    converge(&pki, &[&a, &b], None, &new, Duration::from_secs(4));
}

#[test]
fn cluster_tls_off_exchanges_in_clear_on_notls_listeners() {
    let pki = Pki::new("cluster-tls-off");
    let mut watch = Watch::default();
    let make = |tag: &str, tls_ip: &str, plain_ip: &str, o: &str, extra: &[&str]| {
        let port = free_port_on(plain_ip);
        let mut args: Vec<String> = [
            "-p",
            &port.to_string(),
            "-l",
            &format!("{tls_ip},notls:{plain_ip}"),
            "-t",
            "1",
            "-m",
            "16",
            "-v",
            "--cluster-host",
            "localhost",
            "--cluster-ip",
            plain_ip,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(pki.node_args(tag, &pki.ca, &[tls_ip], o));
        args.extend(extra.iter().map(|s| s.to_string()));
        Node {
            host: "localhost".into(),
            ip: plain_ip.into(),
            port,
            args,
            srv: None,
        }
    };
    let mut a = make("a", "127.0.0.1", "127.0.0.11", "cluster_tls=0", &[]);
    a.start();
    let join = a.hostport();
    let mut b = make(
        "b",
        "127.0.0.2",
        "127.0.0.12",
        "cluster_tls=0",
        &["--join", &join],
    );
    b.start();
    let pair = list(&[a.entry(), b.entry()]);
    watch.converge(&[&a, &b], Some(&pair), Duration::from_secs(3));
    // A node that kept the default speaks TLS to the plain listener: it is
    // refused, and says so instead of falling back to plain TCP.
    let mut c = make("c", "127.0.0.3", "127.0.0.13", "", &["--join", &join]);
    c.start();
    let log = wait_for_log(&c, "TLS handshake failed", Duration::from_secs(5));
    assert!(
        log.contains(&format!("cluster: {join}: TLS handshake failed: ")),
        "{log}"
    );
    watch.converge(&[&a, &b], Some(&pair), Duration::from_secs(1));
}

#[test]
fn start_up_refuses_a_tls_exchange_it_cannot_verify() {
    let pki = Pki::new("cluster-tls-startup");
    let (cert, key) = pki.ca.leaf(&["127.0.0.1"], NODE);
    let cert = pki.write("n.pem", &cert);
    let key = pki.write("n.key", &key);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::ferrocache_bin())
            .args(["-p", "0", "-l", "127.0.0.1"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let o = format!("ssl_chain_cert={cert},ssl_key={key}");
    // Peers configured, TLS on, no CA: refused, naming the options.
    let (ok, err) = run(&["-Z", "-o", &o, "--join", "127.0.0.1:1"]);
    assert!(!ok);
    assert!(
        err.contains("cluster_ca_cert") && err.contains("cluster_tls=0"),
        "{err}"
    );
    assert!(!err.contains("BEGIN"), "{err}");
    // cluster_tls=1 means presenting this node's certificate: it needs -Z.
    let (ok, err) = run(&["-o", "cluster_tls=1", "--join", "127.0.0.1:1"]);
    assert!(!ok);
    assert!(err.contains("-o cluster_tls=1 needs -Z"), "{err}");
    // An unreadable CA file is named.
    let (ok, err) = run(&[
        "-Z",
        "-o",
        &format!("{o},cluster_ca_cert=/nonexistent/ca.pem"),
    ]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    // The same keys in the TOML file.
    let toml = pki.write(
        "f.toml",
        "cluster_tls = true\ncluster_ca_cert = \"/nonexistent/toml-ca.pem\"\n",
    );
    let (ok, err) = run(&["--config", &toml]);
    assert!(!ok);
    assert!(err.contains("-o cluster_tls=1 needs -Z"), "{err}");
    let (ok, err) = run(&["--config", &toml, "-Z", "-o", &o]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/toml-ca.pem"), "{err}");
}

#[test]
fn sighup_reloads_the_certificates_used_with_peers() {
    let pki = Pki::new("cluster-tls-reload");
    let mut a = tls_node(&pki, "a", "127.0.0.1", "", &[]);
    a.start();
    let join = a.hostport();
    // `b` starts trusting the wrong CA, so it cannot verify `a`.
    let other = Ca::new("another CA");
    let trust = pki.write("b-trust.pem", &other.cert.pem());
    let (cert, key) = pki.ca.leaf(&["127.0.0.2"], NODE);
    let cert = pki.write("b.pem", &cert);
    let key = pki.write("b.key", &key);
    let o = format!("ssl_chain_cert={cert},ssl_key={key},cluster_ca_cert={trust}");
    let mut b = Node::new("127.0.0.2", &["-Z", "-o", &o, "--join", &join]);
    b.start();
    wait_for_log(&b, "UnknownIssuer", Duration::from_secs(5));
    assert_eq!(tls_config(&pki, &a, None).unwrap().1, a.entry());
    // The operator fixes the file and sends SIGHUP: the next round joins.
    write_atomic(Path::new(&trust), &pki.ca.cert.pem());
    b.srv.as_mut().unwrap().signal(libc::SIGHUP);
    wait_for_log(&b, "reloaded TLS certificates", Duration::from_secs(5));
    let pair = list(&[a.entry(), b.entry()]);
    converge(&pki, &[&a, &b], None, &pair, Duration::from_secs(3));
    assert!(b.stderr().contains("joined via"), "{}", b.stderr());
}
