//! Resource limits: -c (connections), -M (no eviction), eviction under a small -m, slab
//! rebalancing when value sizes shift, idle_timeout.

mod common;
use common::*;
use std::time::{Duration, Instant};

const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";

/// Opens a connection and tells whether the server accepted it for service.
fn try_conn(s: &Server) -> Option<Conn> {
    let mut c = s.conn();
    // A rejected connection is told so at once (before its request is read), then closed.
    c.send(b"version\r\n");
    let line = c.read_line();
    if line.starts_with(b"VERSION ") {
        return Some(c);
    }
    assert_eq!(esc(&line), esc(TOO_MANY), "unexpected first line");
    c.expect_closed();
    None
}

#[test]
fn connection_limit() {
    let limit = 30;
    let s = Server::start(&["-c", &limit.to_string()]);
    let mut open = Vec::new();
    let mut rejected = 0;
    for _ in 0..limit + 5 {
        match try_conn(&s) {
            Some(c) => {
                assert_eq!(
                    rejected, 0,
                    "a connection was accepted after one was rejected"
                );
                open.push(c);
            }
            None => rejected += 1,
        }
    }
    assert!(
        rejected >= 5,
        "no connection beyond -c {limit} was rejected"
    );
    if is_memcached() {
        // memcached keeps some descriptors in reserve, so it serves fewer than -c clients.
        assert!(!open.is_empty() && open.len() <= limit);
    } else {
        assert_eq!(
            open.len(),
            limit,
            "ferrocache serves exactly -c client connections"
        );
    }
    let st = open[0].stats("");
    assert_eq!(st["rejected_connections"], rejected.to_string());
    // Closing one frees a slot.
    let n = open.len();
    open.pop();
    let mut c = open.pop().unwrap();
    drop(c.stats(""));
    assert!(
        wait_until(Duration::from_secs(5), || c.stat("curr_connections")
            as usize
            == n - 1),
        "closed connection still counted"
    );
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    while got < 2 && Instant::now() < deadline {
        if let Some(c) = try_conn(&s) {
            open.push(c);
            got += 1;
        }
    }
    assert_eq!(got, 2, "freed slots were not reusable");
}

#[test]
fn no_eviction_mode_reports_out_of_memory() {
    let s = Server::start(&["-m", "8", "-M"]);
    let mut c = s.conn();
    let val = vec![b'x'; 100_000];
    let mut stored = 0;
    let mut first_err = None;
    for i in 0..200 {
        c.send(&store_cmd("set", &format!("k{i}"), 0, 0, &val, ""));
        let line = c.read_line();
        if line == b"STORED\r\n" {
            assert!(first_err.is_none(), "stored after memory ran out");
            stored += 1;
        } else {
            assert_eq!(
                esc(&line),
                esc(b"SERVER_ERROR out of memory storing object\r\n")
            );
            first_err.get_or_insert(i);
        }
    }
    assert!(first_err.is_some(), "8 MB held 20 MB without evicting");
    assert!(stored >= 40, "only {stored} x 100 KB fit in 8 MB");
    // Nothing was evicted: every stored key is still there.
    for i in 0..stored {
        assert!(
            c.get(&format!("k{i}")).is_some(),
            "k{i} was evicted under -M"
        );
    }
    assert_eq!(c.stat("evictions"), 0);
    // Deleting makes room again.
    for i in 0..10 {
        c.roundtrip(format!("delete k{i}\r\n").as_bytes(), b"DELETED\r\n");
    }
    c.send(&store_cmd("set", "again", 0, 0, &val, ""));
    c.expect(b"STORED\r\n");
}

#[test]
fn eviction_keeps_recent_keys() {
    let s = Server::start(&["-m", "8"]);
    let mut c = s.conn();
    let val = vec![b'x'; 100_000];
    for i in 0..300 {
        c.send(&store_cmd("set", &format!("k{i}"), 0, 0, &val, ""));
        c.expect(b"STORED\r\n");
    }
    for i in 290..300 {
        assert_eq!(
            c.get(&format!("k{i}")).as_deref(),
            Some(&val[..]),
            "recent key k{i} was evicted"
        );
    }
    assert!(c.get("k0").is_none(), "30 MB of values fit in 8 MB?");
    let st = c.stats("");
    assert!(st["evictions"].parse::<u64>().unwrap() > 0);
    // None of the evicted items had been read.
    assert_eq!(st["evicted_unfetched"], st["evictions"]);
    assert!(st["bytes"].parse::<u64>().unwrap() <= 8 * 1024 * 1024);
}

#[test]
fn recently_read_keys_survive_eviction() {
    let s = Server::start(&["-m", "8"]);
    let mut c = s.conn();
    let val = vec![b'x'; 50_000];
    c.send(&store_cmd("set", "hot", 0, 0, &val, ""));
    c.expect(b"STORED\r\n");
    for i in 0..600 {
        c.send(&store_cmd("set", &format!("k{i}"), 0, 0, &val, ""));
        c.expect(b"STORED\r\n");
        if i % 20 == 0 {
            assert!(
                c.get("hot").is_some(),
                "frequently read key evicted after {i} writes"
            );
        }
    }
}

#[test]
fn slab_rebalancing_after_size_shift() {
    let s = Server::start(&["-m", "16"]);
    let mut c = s.conn();
    // Fill memory with small values (about 28 MB worth, so the small class owns everything).
    let small = vec![b's'; 100];
    let mut batch = Vec::new();
    for i in 0..150_000 {
        batch.extend(store_cmd("set", &format!("s{i}"), 0, 0, &small, "noreply"));
        if batch.len() > 1 << 20 {
            c.send(&batch);
            batch.clear();
        }
    }
    c.send(&batch);
    c.roundtrip(b"version\r\n", b"VERSION ");
    c.read_line();
    // Then switch to 10 KB values.
    let big = vec![b'b'; 10 * 1024];
    let n = 3000;
    for i in 0..n {
        c.send(&store_cmd("set", &format!("b{i}"), 0, 0, &big, ""));
        c.expect(b"STORED\r\n");
    }
    let mut hits = 0;
    for i in n - 50..n {
        if let Some(v) = c.get(&format!("b{i}")) {
            assert_eq!(v, big);
            hits += 1;
        }
    }
    assert!(
        hits >= 45,
        "only {hits} of the 50 most recent 10 KB values are retrievable"
    );
}

#[test]
fn idle_timeout_closes_idle_connections() {
    let s = Server::start(&["-o", "idle_timeout=2"]);
    let mut idle = s.conn();
    idle.roundtrip(b"version\r\n", b"VERSION ");
    idle.read_line();
    let start = Instant::now();
    let mut busy = s.conn();
    let (_, closed) = {
        // Keep the other connection active while waiting.
        let mut closed = false;
        while start.elapsed() < Duration::from_secs(10) {
            busy.roundtrip(b"version\r\n", b"VERSION ");
            busy.read_line();
            let (got, c) = idle.read_to_close(Duration::from_millis(250));
            assert!(got.is_empty(), "idle connection got {}", esc(&got));
            if c {
                closed = true;
                break;
            }
        }
        ((), closed)
    };
    assert!(
        closed,
        "idle connection still open after 10 s with idle_timeout=2"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
    // The active connection survived.
    busy.roundtrip(b"version\r\n", b"VERSION ");
}
