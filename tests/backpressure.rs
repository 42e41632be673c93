//! A client that sends requests but does not read the replies must not make
//! the server buffer without bound: once a bounded amount of output is
//! queued the server stops reading from that client (and pauses a long
//! multiget between keys) until it drains. Meanwhile other clients are served,
//! and when the slow client finally reads, every reply arrives intact.

mod common;

use std::time::Duration;

use common::*;

const VALUE_LEN: usize = 512 * 1024;

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// Waits until the server stops writing to `slow`: the bytes waiting in its
/// socket stop growing. Returns how many there are.
fn wait_for_writes_to_stall(slow: &Conn) -> usize {
    let mut last = slow.unread_bytes();
    let mut stable = 0;
    assert!(
        wait_until(Duration::from_secs(20), || {
            let now = slow.unread_bytes();
            if now == last && now > 0 {
                stable += 1;
            } else {
                stable = 0;
                last = now;
            }
            stable >= 5
        }),
        "the server kept writing"
    );
    last
}

fn value() -> Vec<u8> {
    (0..VALUE_LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Reads one `VALUE big 0 <n>` reply and its `END`, checking every byte.
fn expect_big_value(c: &mut Conn, val: &[u8]) {
    c.expect(format!("VALUE big 0 {}\r\n", val.len()).as_bytes());
    let data = c.read_exact_n(val.len());
    assert!(data == val, "value corrupted");
    c.expect(b"\r\n");
}

#[test]
fn pipelined_gets_from_a_client_that_does_not_read_stay_bounded() {
    if is_memcached() {
        return; // memcached buffers such replies without bound
    }
    let s = Server::start(&["-m", "64"]);
    let val = value();
    let mut setup = s.conn();
    setup.send(&store_cmd("set", "big", 0, 0, &val, ""));
    setup.expect(b"STORED\r\n");
    let before = rss(s.pid());

    // 400 replies of 512 KiB = 200 MiB that nobody reads yet.
    const GETS: usize = 400;
    let mut slow = s.conn();
    slow.send(&b"get big\r\n".repeat(GETS));

    let written = wait_for_writes_to_stall(&slow);
    assert!(
        written < GETS * VALUE_LEN / 4,
        "the server wrote {written} bytes to a client that reads nothing"
    );
    let mut probe = s.conn();
    let grown = rss(s.pid()).saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "RSS grew by {} MiB while replies were held back",
        grown >> 20
    );

    // Others are still served while the slow client sits there.
    probe.roundtrip(b"set other 0 0 2\r\nok\r\n", b"STORED\r\n");
    probe.roundtrip(b"get other\r\n", b"VALUE other 0 2\r\nok\r\nEND\r\n");

    // Now the slow client reads: every reply, in order, byte for byte.
    slow.set_timeout(Duration::from_secs(30));
    for _ in 0..GETS {
        expect_big_value(&mut slow, &val);
        slow.expect(b"END\r\n");
    }
    slow.roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn one_huge_multiget_pauses_between_keys() {
    if is_memcached() {
        return;
    }
    let s = Server::start(&["-m", "64"]);
    let val = value();
    let mut setup = s.conn();
    setup.send(&store_cmd("set", "big", 0, 0, &val, ""));
    setup.expect(b"STORED\r\n");
    let before = rss(s.pid());

    // One request whose reply is 300 × 512 KiB = 150 MiB.
    const KEYS: usize = 300;
    let mut line = b"get".to_vec();
    for _ in 0..KEYS {
        line.extend_from_slice(b" big");
    }
    line.extend_from_slice(b"\r\n");
    let mut slow = s.conn();
    slow.send(&line);

    wait_for_writes_to_stall(&slow);
    let mut probe = s.conn();
    let grown = rss(s.pid()).saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "RSS grew by {} MiB for one unread multiget",
        grown >> 20
    );
    probe.roundtrip(b"get nope\r\n", b"END\r\n");

    slow.set_timeout(Duration::from_secs(30));
    for _ in 0..KEYS {
        expect_big_value(&mut slow, &val);
    }
    slow.expect(b"END\r\n");
    slow.roundtrip(b"version\r\n", b"VERSION ");
}
