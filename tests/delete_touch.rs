//! delete and touch.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn delete_hit_and_miss() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.roundtrip(b"delete k\r\n", b"DELETED\r\n");
    c.roundtrip(b"get k\r\n", b"END\r\n");
    c.roundtrip(b"delete k\r\n", b"NOT_FOUND\r\n");
}

#[test]
fn delete_noreply() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.send(b"delete k noreply\r\n");
    c.send(b"delete k noreply\r\n");
    c.roundtrip(b"get k\r\n", b"END\r\n");
}

#[test]
fn delete_legacy_zero_time_is_accepted() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.roundtrip(b"delete k 0\r\n", b"DELETED\r\n");
    c.set("k", b"v");
    c.roundtrip(b"delete k 0 noreply\r\nget k\r\n", b"END\r\n");
}

#[test]
fn delete_bad_arguments() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    let usage: &[u8] = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    c.roundtrip(b"delete k 5\r\n", usage);
    c.roundtrip(b"delete a b c\r\n", usage);
    c.roundtrip(b"delete\r\n", b"ERROR\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn add_after_delete_works() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.roundtrip(b"delete k\r\n", b"DELETED\r\n");
    c.roundtrip(b"add k 0 0 1\r\nw\r\n", b"STORED\r\n");
}

#[test]
fn touch_hit_and_miss() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"touch k 10\r\n", b"NOT_FOUND\r\n");
    c.set("k", b"v");
    c.roundtrip(b"touch k 10\r\n", b"TOUCHED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn touch_noreply() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.send(b"touch k 10 noreply\r\n");
    c.send(b"touch nope 10 noreply\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn touch_bad_arguments() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.roundtrip(b"touch k\r\n", b"ERROR\r\n");
    c.roundtrip(
        b"touch k abc\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
    );
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn touch_extends_life() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("k", 0, 1, b"v");
    c.roundtrip(b"touch k 100\r\n", b"TOUCHED\r\n");
    std::thread::sleep(Duration::from_millis(2200));
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn touch_shortens_life() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.roundtrip(b"touch k 1\r\n", b"TOUCHED\r\n");
    assert!(
        wait_until(Duration::from_secs(4), || c.get("k").is_none()),
        "touched item never expired"
    );
}

#[test]
fn touch_negative_expires_now() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.roundtrip(b"touch k -1\r\n", b"TOUCHED\r\n");
    c.roundtrip(b"get k\r\n", b"END\r\n");
}

#[test]
fn touch_keeps_cas() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    let (_, cas) = c.gets("k").unwrap();
    c.roundtrip(b"touch k 100\r\n", b"TOUCHED\r\n");
    assert_eq!(c.gets("k").unwrap().1, cas);
}
