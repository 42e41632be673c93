//! Third-party auto-discovery clients against a real ferrocache cluster:
//! memcache-plus (Node.js), elasticache-auto-discovery and
//! django-elastipymemcache (Python). Each discovers every node from one
//! node and stores and reads keys through them; the Python clients also
//! see a node that joins while they poll.
//!
//! The clients are installed by `tests/interop/cluster-deps.sh`; without
//! them these tests fail with that hint rather than pass silently.

mod cluster_support;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use cluster_support::*;

const HINT: &str = "run tests/interop/cluster-deps.sh from the repository root";

/// Fails (never skips) when a runtime is missing.
fn require(program: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{program} is not installed: install it, then {HINT}");
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Three nodes on 127.0.0.1-3 that list themselves by IP (memcache-plus
/// connects to the host field, which must therefore resolve).
fn cluster() -> Vec<Node> {
    let mut a = Node::new("127.0.0.1", &["--cluster-host", "127.0.0.1"]);
    a.start();
    let join = a.hostport();
    let mut nodes = vec![a];
    for i in 2..=3 {
        let ip = format!("127.0.0.{i}");
        let mut n = Node::new(&ip, &["--join", &join, "--cluster-host", &ip]);
        n.start();
        nodes.push(n);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    Watch::default().converge(&refs, None, Duration::from_secs(2));
    nodes
}

/// Every node served some of the client's writes.
fn assert_every_node_used(nodes: &[Node]) {
    for n in nodes {
        let stats = String::from_utf8(n.ask(b"stats\r\n")).unwrap();
        let sets: u64 = stats
            .lines()
            .find_map(|l| l.strip_prefix("STAT cmd_set "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert!(sets > 0, "{} stored nothing", n.addr());
    }
}

#[test]
fn memcache_plus_discovers_every_node() {
    require("node");
    let node_modules = root().join("target/interop/node/node_modules");
    assert!(
        node_modules.join("memcache-plus/package.json").exists(),
        "memcache-plus is not installed: {HINT}"
    );
    let nodes = cluster();
    let out = common::run_with_timeout(
        {
            let mut c = Command::new("node");
            c.arg(root().join("tests/interop/cluster_memcache_plus.js"))
                .arg(nodes[1].hostport())
                .arg("3")
                .env("NODE_PATH", &node_modules);
            c
        },
        Duration::from_secs(15),
    );
    assert!(
        out.0.success(),
        "memcache-plus failed: {}\n{}",
        out.1,
        out.2
    );
    let mut want: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}:{}", n.ip, n.port))
        .collect();
    want.sort();
    assert_eq!(out.1.trim(), format!("DISCOVERED {}", want.join(" ")));
    assert_every_node_used(&nodes);
}

#[test]
fn python_clients_discover_every_node_and_see_a_join() {
    require("python3");
    let probe = Command::new("python3")
        .args([
            "-c",
            "import elasticache_auto_discovery, django_elastipymemcache",
        ])
        .output()
        .expect("python3");
    assert!(
        probe.status.success(),
        "elasticache-auto-discovery / django-elastipymemcache missing: {HINT}"
    );
    let mut nodes = cluster();
    let mut child = Command::new("python3")
        .arg(root().join("tests/interop/cluster_python.py"))
        .arg(nodes[2].hostport())
        .arg("3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert_eq!(ready, "READY 3");
    assert_every_node_used(&nodes);

    let ip = "127.0.0.4";
    let join = nodes[0].hostport();
    let mut d = Node::new(ip, &["--join", &join, "--cluster-host", ip]);
    d.start();
    nodes.push(d);
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"joined\n")
        .unwrap();
    let seen = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    let status = child.wait().unwrap();
    assert!(status.success(), "python clients failed: {seen}");
    let mut want: Vec<String> = nodes.iter().map(Node::entry).collect();
    want.sort();
    assert_eq!(seen, format!("SEEN 4 {}", want.join(" ")));
    let used = String::from_utf8(nodes[3].ask(b"stats\r\n")).unwrap();
    assert!(
        !used.contains("STAT cmd_set 0\r\n"),
        "the joined node got no keys"
    );
}
