//! Cluster membership between nodes that require authentication (`-Y`,
//! `-S`): peers log in with `--cluster-credentials` before `cluster sync`,
//! and a node without (or with wrong) credentials is refused, says so, and
//! never joins.

mod cluster_support;
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cluster_support::*;

const USERS: &str = "node:peer-secret\napp:app-secret\n";

/// `config get cluster` on a connection that logged in as `app` first.
fn config_as_app(node: &Node) -> Option<(u64, String)> {
    let mut s = TcpStream::connect_timeout(&node.addr(), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"set auth 0 0 14\r\napp app-secret\r\nconfig get cluster\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !(buf.starts_with(b"STORED\r\n") && buf.ends_with(b"END\r\n")) {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(parse_config(&buf[b"STORED\r\n".len()..]))
}

/// Polls until every node lists exactly `want`.
fn converge(nodes: &[&Node], want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let seen: Vec<_> = nodes.iter().map(|n| config_as_app(n)).collect();
        if seen
            .iter()
            .all(|s| s.as_ref().is_some_and(|(_, l)| l == want))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence on {want:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls a node's log for `needle`.
fn wait_for_log(node: &Node, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = node.stderr();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "no {needle:?} in log:\n{log}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn joined_pair(mode: &str, creds: &str) -> (TempDir, Node, Node) {
    let dir = TempDir::new("cluster-auth");
    let users = dir.path("users");
    let creds_file = dir.path("creds");
    write_atomic(&users, USERS);
    write_atomic(&creds_file, creds);
    let auth: Vec<&str> = match mode {
        "-Y" => vec!["-Y", users.to_str().unwrap()],
        _ => vec!["-S", "--sasl-db", users.to_str().unwrap()],
    };
    let mut a = Node::new("127.0.0.1", &auth);
    a.start();
    let join = a.hostport();
    let mut extra = auth.clone();
    extra.extend([
        "--join",
        &join,
        "--cluster-credentials",
        creds_file.to_str().unwrap(),
    ]);
    let mut b = Node::new("127.0.0.2", &extra);
    b.start();
    (dir, a, b)
}

#[test]
fn peers_log_in_under_ascii_auth() {
    let (_dir, a, b) = joined_pair("-Y", "node:peer-secret\n");
    converge(
        &[&a, &b],
        &list(&[a.entry(), b.entry()]),
        Duration::from_secs(3),
    );
}

#[test]
fn peers_log_in_under_sasl() {
    let (_dir, a, b) = joined_pair("-S", "node:peer-secret\n");
    converge(
        &[&a, &b],
        &list(&[a.entry(), b.entry()]),
        Duration::from_secs(3),
    );
    let log = a.stderr() + &b.stderr();
    assert!(
        !log.contains("peer-secret"),
        "the secret reached a log:\n{log}"
    );
}

#[test]
fn wrong_credentials_are_refused_and_reported() {
    let (_dir, a, b) = joined_pair("-Y", "node:wrong\n");
    let log = wait_for_log(&b, "login refused");
    assert!(!log.contains("wrong"), "the secret reached the log:\n{log}");
    // The refusal is the peer's answer, so the join has been decided.
    assert_eq!(config_as_app(&a).unwrap().1, a.entry());
    assert_eq!(config_as_app(&b).unwrap().1, b.entry());
}

#[test]
fn a_node_without_credentials_is_warned_and_refused() {
    let dir = TempDir::new("cluster-auth-none");
    let users = dir.path("users");
    write_atomic(&users, USERS);
    let mut a = Node::new("127.0.0.1", &["-Y", users.to_str().unwrap()]);
    a.start();
    let join = a.hostport();
    let mut b = Node::new(
        "127.0.0.2",
        &["-Y", users.to_str().unwrap(), "--join", &join],
    );
    b.start();
    assert!(
        b.stderr().contains("--cluster-credentials"),
        "{}",
        b.stderr()
    );
    wait_for_log(&b, "CLIENT_ERROR unauthenticated");
    assert_eq!(config_as_app(&a).unwrap().1, a.entry());
}

#[test]
fn malformed_credentials_stop_start_up_without_echoing_them() {
    let dir = TempDir::new("cluster-auth-bad");
    let creds = dir.path("creds");
    write_atomic(&creds, "just-a-secret-token\n");
    let out = std::process::Command::new(common::ferrocache_bin())
        .args(["-p", "0", "--cluster-credentials", creds.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--cluster-credentials"), "{err}");
    assert!(!err.contains("just-a-secret-token"), "{err}");
}
