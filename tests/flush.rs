//! flush_all: immediate, delayed, noreply, and disabled by -F.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn flush_all_invalidates_everything() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for i in 0..50 {
        c.set(&format!("k{i}"), b"v");
    }
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    for i in 0..50 {
        c.roundtrip(format!("get k{i}\r\n").as_bytes(), b"END\r\n");
    }
    c.roundtrip(b"add k1 0 0 1\r\nn\r\n", b"STORED\r\n");
    c.roundtrip(b"get k1\r\n", b"VALUE k1 0 1\r\nn\r\nEND\r\n");
}

#[test]
fn flush_all_zero_and_noreply() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("a", b"v");
    c.roundtrip(b"flush_all 0\r\n", b"OK\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    c.set("a", b"v");
    c.send(b"flush_all noreply\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    c.set("a", b"v");
    c.send(b"flush_all 0 noreply\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
}

#[test]
fn flush_all_bad_delay() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("a", b"v");
    c.roundtrip(
        b"flush_all abc\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
    );
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn flush_all_with_delay() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("before", b"v");
    c.roundtrip(b"flush_all 2\r\n", b"OK\r\n");
    // Still there right after the command.
    c.roundtrip(b"get before\r\n", b"VALUE before 0 1\r\nv\r\nEND\r\n");
    assert!(
        wait_until(Duration::from_secs(5), || c.get("before").is_none()),
        "delayed flush never took effect"
    );
    // Items stored after the flush moment live on. The clock has one-second resolution and an
    // item stored within the flush second counts as older than the flush, so step past it.
    std::thread::sleep(Duration::from_millis(1100));
    c.set("after", b"w");
    std::thread::sleep(Duration::from_millis(1100));
    c.roundtrip(b"get after\r\n", b"VALUE after 0 1\r\nw\r\nEND\r\n");
}

#[test]
fn flush_all_counts_cmd_flush() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let before = c.stat("cmd_flush");
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    c.send(b"flush_all noreply\r\n");
    assert_eq!(c.stat("cmd_flush"), before + 2);
}

#[test]
fn flush_disabled_with_dash_f() {
    let s = Server::start(&["-F"]);
    let mut c = s.conn();
    c.set("a", b"v");
    c.roundtrip(b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n");
    c.roundtrip(
        b"flush_all 10\r\n",
        b"CLIENT_ERROR flush_all not allowed\r\n",
    );
    c.send(b"flush_all noreply\r\n");
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn get_flushed_stat() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("a", b"v");
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    c.roundtrip(b"get a\r\n", b"END\r\n");
    assert_eq!(c.stat("get_flushed"), 1);
}
