//! Administrative commands and process lifecycle: version, verbosity, cache_memlimit,
//! shutdown (with and without -A), SIGTERM/SIGINT.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn version_reply_shape() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let line = c.cmd("version");
    assert!(
        line.starts_with("VERSION ") && line.ends_with("\r\n"),
        "{line:?}"
    );
    let v = &line[8..line.len() - 2];
    assert!(
        !v.is_empty() && v.chars().all(|ch| ch.is_ascii_digit() || ch == '.'),
        "non-numeric version {v:?}"
    );
    // Extra tokens are ignored.
    c.roundtrip(b"version extra\r\n", line.as_bytes());
}

#[test]
fn verbosity() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"verbosity 1\r\n", b"OK\r\n");
    c.roundtrip(b"verbosity 0\r\n", b"OK\r\n");
    c.send(b"verbosity 1 noreply\r\n");
    c.roundtrip(b"verbosity 0 noreply\r\nversion\r\n", b"VERSION ");
    c.read_line();
    c.roundtrip(b"verbosity\r\n", b"ERROR\r\n");
    c.roundtrip(
        b"verbosity abc\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
}

#[test]
fn cache_memlimit() {
    let s = Server::start(&["-m", "64"]);
    let mut c = s.conn();
    c.roundtrip(b"cache_memlimit 100\r\n", b"OK\r\n");
    assert_eq!(c.stat("limit_maxbytes"), 100 * 1024 * 1024);
    c.send(b"cache_memlimit 80 noreply\r\n");
    assert_eq!(c.stat("limit_maxbytes"), 80 * 1024 * 1024);
    c.roundtrip(b"cache_memlimit\r\n", b"ERROR\r\n");
    c.roundtrip(b"cache_memlimit abc\r\n", b"ERROR\r\n");
}

#[test]
fn cache_memlimit_too_small() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        b"cache_memlimit 0\r\n",
        b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
    );
    c.roundtrip(
        b"cache_memlimit 7\r\n",
        b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
    );
    c.roundtrip(b"cache_memlimit 8\r\n", b"OK\r\n");
}

#[test]
fn shutdown_disabled_without_dash_a() {
    let mut s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.roundtrip(b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n");
    c.roundtrip(b"shutdown graceful\r\n", b"ERROR: shutdown not enabled\r\n");
    assert!(s.is_running());
    assert_server_healthy(&s, "k", b"v");
}

#[test]
fn shutdown_with_dash_a_exits_cleanly() {
    let mut s = Server::start(&["-A"]);
    let mut c = s.conn();
    c.send(b"shutdown\r\n");
    c.expect_closed();
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit after shutdown");
    assert_eq!(st.code(), Some(0), "exit status {st:?}");
}

#[test]
fn shutdown_graceful_with_dash_a() {
    let mut s = Server::start(&["-A"]);
    let mut c = s.conn();
    c.send(b"shutdown graceful\r\n");
    c.expect_closed();
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("server did not exit after shutdown graceful");
    assert_eq!(st.code(), Some(0), "exit status {st:?}");
}

#[test]
fn shutdown_bad_mode() {
    let mut s = Server::start(&["-A"]);
    let mut c = s.conn();
    c.roundtrip(
        b"shutdown now\r\n",
        b"CLIENT_ERROR invalid shutdown mode\r\n",
    );
    c.roundtrip(
        b"shutdown 1 2\r\n",
        b"CLIENT_ERROR invalid shutdown mode\r\n",
    );
    assert!(s.is_running());
}

#[test]
fn sigterm_exits_zero() {
    let mut s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    s.signal(libc::SIGTERM);
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("server ignored SIGTERM");
    assert_eq!(st.code(), Some(0), "exit status {st:?}");
    let (_, closed) = c.read_to_close(Duration::from_secs(5));
    assert!(closed, "client connection left open after exit");
}

#[test]
fn sigint_exits_zero() {
    let mut s = Server::start(&[]);
    let _c = s.conn();
    s.signal(libc::SIGINT);
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("server ignored SIGINT");
    assert_eq!(st.code(), Some(0), "exit status {st:?}");
}

#[test]
fn sigterm_flushes_pending_replies() {
    // Replies the server has already produced must reach the client before it exits.
    let mut s = Server::start(&[]);
    let mut c = s.conn();
    let big = vec![b'q'; 512 * 1024];
    c.set("big", &big);
    c.send(b"get big\r\nget big\r\nget big\r\nget big\r\n");
    // Wait for the first bytes so the request has been executed, then terminate.
    c.expect(b"VALUE big 0 524288\r\n");
    s.signal(libc::SIGTERM);
    let (rest, closed) = c.read_to_close(Duration::from_secs(10));
    let mut want = big.clone();
    want.extend_from_slice(b"\r\nEND\r\n");
    for _ in 0..3 {
        want.extend_from_slice(b"VALUE big 0 524288\r\n");
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\nEND\r\n");
    }
    assert!(closed);
    assert_eq!(rest.len(), want.len(), "replies cut short by shutdown");
    assert!(rest == want, "reply bytes differ");
    let st = s
        .wait_exit(Duration::from_secs(10))
        .expect("server ignored SIGTERM");
    assert_eq!(st.code(), Some(0));
}
