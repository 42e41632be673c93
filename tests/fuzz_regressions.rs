//! Fuzzing finds, kept: every input that once made a fuzz target fail is
//! committed under `fuzz/regressions/<target>/` and replayed here, in the
//! default test run, through the very checks the fuzz target runs
//! (`fuzz/checks/<target>.rs`, included below). The seed corpora
//! (`fuzz/seeds/<target>/`) are replayed too, so a check that stops holding
//! for ordinary input shows up without a fuzzer. Where a find was reachable
//! over the network, a test below sends it to the binary over a socket.
//!
//! To keep a new find: minimise it (`cargo +nightly fuzz tmin <target>
//! <crash file>`), copy the result into `fuzz/regressions/<target>/`, fix
//! the bug. See `fuzz/README.md`.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Conn, Server};
use ferrocache::cluster::state::VERSION_MAX;

#[path = "../fuzz/checks/binary.rs"]
mod binary;
#[path = "../fuzz/checks/client_payload.rs"]
mod client_payload;
#[path = "../fuzz/checks/cluster.rs"]
mod cluster;
#[path = "../fuzz/checks/exec.rs"]
mod exec;
#[path = "../fuzz/checks/meta.rs"]
mod meta;
#[path = "../fuzz/checks/sasl.rs"]
mod sasl;
#[path = "../fuzz/checks/text.rs"]
mod text;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every committed regression and seed of `target`;
/// returns how many regressions there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let regressions = files(&root.join("regressions").join(target));
    let seeds = files(&root.join("seeds").join(target));
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for path in regressions.iter().chain(&seeds) {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: {} fails its check again", path.display());
        }
    }
    regressions.len()
}

#[test]
fn text_parser() {
    replay("text", text::run);
}

#[test]
fn meta_parser() {
    replay("meta", meta::run);
}

#[test]
fn binary_parser() {
    replay("binary", binary::run);
}

#[test]
fn parse_execute_encode() {
    replay("exec", exec::run);
}

#[test]
fn sasl_sessions_and_user_databases() {
    replay("sasl", sasl::run);
}

#[test]
fn cluster_parsers_and_sync_merge() {
    replay("cluster", cluster::run);
}

#[test]
fn client_config_reply_parser() {
    replay("client_payload", client_payload::run);
}

/// `config get cluster`: the published version and node list.
fn published(c: &mut Conn) -> (u64, String) {
    c.send(b"config get cluster\r\n");
    let header = String::from_utf8(c.read_line()).unwrap();
    let len: usize = header
        .strip_prefix("CONFIG cluster 0 ")
        .and_then(|l| l.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("unexpected reply {header:?}"));
    let payload = String::from_utf8(c.read_exact_n(len)).unwrap();
    c.expect(b"\r\nEND\r\n");
    let (version, nodes) = payload.trim_end().split_once('\n').unwrap();
    (version.parse().unwrap(), nodes.to_string())
}

/// Sends `cluster sync` with `state`; returns the reply's first line and,
/// when the sync was accepted, the replica the server answered with.
fn sync(c: &mut Conn, state: &str) -> (String, Option<ferrocache::cluster::state::Replica>) {
    c.send(format!("cluster sync {}\r\n{state}\r\n", state.len()).as_bytes());
    let header = String::from_utf8(c.read_line()).unwrap();
    let Some(len) = header
        .strip_prefix("CLUSTER ")
        .and_then(|l| l.trim_end().parse::<usize>().ok())
    else {
        return (header, None);
    };
    let reply = c.read_exact_n(len);
    c.expect(b"\r\nEND\r\n");
    (
        header,
        Some(ferrocache::cluster::wire::decode(&reply).unwrap()),
    )
}

/// `cluster sync` carrying numbers at the top of `u64` (the `cluster`
/// target's find): merging them overflowed, which panicked the worker in
/// debug builds and, in release builds, wrapped the next version around to
/// a small one that every client would ignore. Numbers above 2^53 − 1 are
/// now refused, and at that ceiling versions saturate. Loopback may
/// administer by default, so this connection counts as a known peer.
#[test]
fn cluster_sync_with_numbers_at_the_top_of_u64() {
    ferrocache_only!();
    let server = Server::start(&[]);
    let mut c = server.conn();
    c.set_timeout(Duration::from_secs(10));
    let (v1, me) = published(&mut c);
    assert_eq!(v1, 1);
    let other = "other|127.0.0.9|1";
    let state = |max: u64| {
        format!(
            "ferrocache-cluster 1\npublished 1 {me}\nbase 5 {me} {other}\nmax {max}\n\
             node {max} 0 {max} 1 0 {me}\n"
        )
    };
    let (header, _) = sync(&mut c, &state(u64::MAX));
    assert_eq!(header, "CLIENT_ERROR cluster state line 4: bad number\r\n");
    assert_eq!(published(&mut c), (1, me.clone()));
    let (header, _) = sync(&mut c, &state(VERSION_MAX + 1));
    assert_eq!(header, "CLIENT_ERROR cluster state line 4: bad number\r\n");
    // At the ceiling itself the new list is published at the ceiling: not
    // above it (peers would refuse it), not a wrapped-around small number.
    let (_, theirs) = sync(&mut c, &state(VERSION_MAX));
    assert_eq!(theirs.unwrap().published.version, VERSION_MAX);
    let (version, nodes) = published(&mut c);
    assert_eq!(version, VERSION_MAX);
    let mut got: Vec<&str> = nodes.split(' ').collect();
    got.sort();
    let mut want = [me.as_str(), other];
    want.sort();
    assert_eq!(got, want);
    // The connection and the server carry on.
    c.roundtrip(b"version\r\n", b"VERSION ");
}

/// `config set cluster` with a version above 2^53 − 1 is refused.
#[test]
fn config_set_refuses_versions_clients_cannot_compare() {
    ferrocache_only!();
    let server = Server::start(&[]);
    let mut c = server.conn();
    let (_, me) = published(&mut c);
    for version in [VERSION_MAX + 1, u64::MAX] {
        let payload = format!("{version}\n{me}\n");
        c.roundtrip(
            format!("config set cluster 0 {}\r\n{payload}\r\n", payload.len()).as_bytes(),
            b"CLIENT_ERROR bad cluster configuration: version must be a positive integer up to \
              9007199254740991\r\n",
        );
    }
    let payload = format!("{VERSION_MAX}\n{me}\n");
    c.roundtrip(
        format!("config set cluster 0 {}\r\n{payload}\r\n", payload.len()).as_bytes(),
        b"STORED\r\n",
    );
    assert_eq!(published(&mut c), (VERSION_MAX, me));
}

/// A binary request frame: `op`, key, value, no extras.
fn binary_request(op: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    common::frames::request(op, key, &[], value, 0, 0)
}

/// Reads one binary response: (opcode, status, body).
fn binary_response(c: &mut Conn) -> (u8, u16, Vec<u8>) {
    let h = c.read_exact_n(24);
    assert_eq!(h[0], 0x81);
    let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
    (h[1], u16::from_be_bytes([h[6], h[7]]), c.read_exact_n(len))
}

/// SCRAM messages with an attribute shorter than `a=` (the `sasl` target's
/// finds): rsasl indexed past their end and panicked the worker thread, for
/// a client that had not authenticated. They are refused like any other
/// malformed message, and the connection and server carry on.
#[test]
fn malformed_scram_messages_over_a_socket() {
    ferrocache_only!();
    const AUTH: u8 = 0x21;
    const STEP: u8 = 0x22;
    const VERSION: u8 = 0x0b;
    const AUTH_ERROR: u16 = 0x20;
    const AUTH_CONTINUE: u16 = 0x21;
    let dir = std::env::temp_dir().join(format!("ferrocache-fuzz-sasl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("users");
    std::fs::write(&db, "alice:s3cret\n").unwrap();
    let server = Server::start(&["-S", "--sasl-db", db.to_str().unwrap()]);
    let mut c = server.conn();
    c.set_timeout(Duration::from_secs(10));
    for first in [&b"n, "[..], b"n,,", b"n,,n=alice,,r=x", b"n,a,n=alice,r=x"] {
        c.send(&binary_request(AUTH, b"SCRAM-SHA-1", first));
        assert_eq!(binary_response(&mut c).1, AUTH_ERROR, "{first:?}");
    }
    for last in [&b"c=biws,,"[..], b"", b"c=biws,r=x,p=y,"] {
        c.send(&binary_request(AUTH, b"SCRAM-SHA-256", b"n,,n=alice,r=abc"));
        assert_eq!(binary_response(&mut c).1, AUTH_CONTINUE);
        c.send(&binary_request(STEP, b"SCRAM-SHA-256", last));
        assert_eq!(binary_response(&mut c).1, AUTH_ERROR, "{last:?}");
    }
    c.send(&binary_request(AUTH, b"PLAIN", b"\0alice\0s3cret"));
    assert_eq!(
        binary_response(&mut c),
        (AUTH, 0, b"Authenticated".to_vec())
    );
    c.send(&binary_request(VERSION, b"", b""));
    assert_eq!(binary_response(&mut c).1, 0);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
