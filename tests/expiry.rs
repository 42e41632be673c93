//! Expiration times: relative seconds, absolute unix times (the 30-day rule), negative values,
//! and 0 = never. Waits are short and poll with deadlines.

mod common;
use common::*;
use std::time::{Duration, Instant};

const THIRTY_DAYS: i64 = 60 * 60 * 24 * 30;

#[test]
fn relative_ttl_expires() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("k", 0, 1, b"v");
    c.set_full("forever", 0, 0, b"v");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    let start = Instant::now();
    assert!(
        wait_until(Duration::from_secs(4), || c.get("k").is_none()),
        "1 s item still there after 4 s"
    );
    // With a one-second clock the item lives at most ~2 s.
    assert!(
        start.elapsed() < Duration::from_millis(2600),
        "expired too late: {:?}",
        start.elapsed()
    );
    c.roundtrip(b"get forever\r\n", b"VALUE forever 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn ttl_is_not_cut_short() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("k", 0, 3, b"v");
    std::thread::sleep(Duration::from_millis(1200));
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn negative_exptime_is_immediately_expired() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"old");
    c.roundtrip(b"set k 0 -1 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"END\r\n");
    // add works on a key whose item is expired.
    c.roundtrip(b"add k 0 0 1\r\ny\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\ny\r\nEND\r\n");
}

#[test]
fn thirty_days_is_relative() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        format!("set k 0 {THIRTY_DAYS} 1\r\nx\r\n").as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn above_thirty_days_is_absolute() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    // 30 days + 1 s as an absolute unix time is in 1970: already expired.
    c.roundtrip(
        format!("set k 0 {} 1\r\nx\r\n", THIRTY_DAYS + 1).as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get k\r\n", b"END\r\n");
    // An absolute time in the past.
    c.roundtrip(
        format!("set k 0 {} 1\r\nx\r\n", unix_now() - 100).as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get k\r\n", b"END\r\n");
    // An absolute time in the future.
    c.roundtrip(
        format!("set k 0 {} 1\r\nx\r\n", unix_now() + 100).as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn absolute_time_expires() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        format!("set k 0 {} 1\r\nx\r\n", unix_now() + 2).as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n");
    assert!(
        wait_until(Duration::from_secs(5), || c.get("k").is_none()),
        "absolute expiry not honoured"
    );
}

#[test]
fn expired_items_are_gone_for_every_command() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for k in ["a", "b", "c", "d", "e", "f", "g"] {
        c.set_full(k, 0, 1, b"1");
    }
    assert!(wait_until(Duration::from_secs(4), || c.get("a").is_none()));
    c.roundtrip(b"get b\r\n", b"END\r\n");
    c.roundtrip(b"incr c 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"touch d 10\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"append e 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"replace f 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"delete g\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"add g 0 0 1\r\nx\r\n", b"STORED\r\n");
}

#[test]
fn non_numeric_exptime_is_rejected() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        b"set k 0 abc 1\r\nx\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(
        b"set k 0 1.5 1\r\nx\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(b"get k\r\n", b"END\r\n");
}

#[test]
fn get_expired_stat_counts_expired_reads() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("k", 0, 1, b"v");
    assert!(wait_until(Duration::from_secs(4), || c.get("k").is_none()));
    assert!(c.stat("get_expired") >= 1);
}
