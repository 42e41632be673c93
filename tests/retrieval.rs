//! get / gets / gat / gats, multigets, CAS values usable by `cas`.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn get_miss_is_just_end() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"get nope\r\n", b"END\r\n");
    c.roundtrip(b"gets nope\r\n", b"END\r\n");
}

#[test]
fn get_without_key_is_error() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"get\r\n", b"ERROR\r\n");
    c.roundtrip(b"gets\r\n", b"ERROR\r\n");
    c.roundtrip(b"gat\r\n", b"ERROR\r\n");
    c.roundtrip(b"gats\r\n", b"ERROR\r\n");
}

#[test]
fn multiget_in_request_order_skipping_misses() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("a", 1, 0, b"A");
    c.set_full("b", 2, 0, b"BB");
    c.roundtrip(
        b"get b nope a b\r\n",
        b"VALUE b 2 2\r\nBB\r\nVALUE a 1 1\r\nA\r\nVALUE b 2 2\r\nBB\r\nEND\r\n",
    );
    // Extra spaces between keys are tolerated.
    c.roundtrip(
        b"get   a    b  \r\n",
        b"VALUE a 1 1\r\nA\r\nVALUE b 2 2\r\nBB\r\nEND\r\n",
    );
}

#[test]
fn gets_returns_cas_usable_by_cas() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("a", 3, 0, b"one");
    c.send(b"gets a\r\n");
    let line = String::from_utf8(c.read_line()).unwrap();
    let parts: Vec<&str> = line.trim_end().split(' ').collect();
    assert_eq!(&parts[..4], ["VALUE", "a", "3", "3"], "line {line:?}");
    let cas: u64 = parts[4].parse().expect("cas is a u64");
    c.expect(b"one\r\nEND\r\n");
    c.roundtrip(
        format!("cas a 4 0 3 {cas}\r\ntwo\r\n").as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get a\r\n", b"VALUE a 4 3\r\ntwo\r\nEND\r\n");
}

#[test]
fn gets_cas_values_are_distinct_per_item() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for i in 0..20 {
        c.set(&format!("k{i}"), b"same");
    }
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    c.send(format!("gets {}\r\n", keys.join(" ")).as_bytes());
    let r = c.read_get_reply();
    assert_eq!(r.len(), 20);
    let cas: std::collections::HashSet<u64> = r.iter().map(|x| x.3.unwrap()).collect();
    assert_eq!(cas.len(), 20, "CAS values must be unique");
    assert!(!cas.contains(&0));
}

#[test]
fn multiget_of_thousands_of_keys() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let n = 5000;
    // Store every other key, pipelined with noreply.
    let mut batch = Vec::new();
    for i in (0..n).step_by(2) {
        batch.extend(store_cmd(
            "set",
            &format!("key:{i:05}"),
            i as u32,
            0,
            format!("val{i}").as_bytes(),
            "noreply",
        ));
    }
    c.send(&batch);
    let mut line = b"get".to_vec();
    for i in 0..n {
        line.extend_from_slice(format!(" key:{i:05}").as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    assert!(
        line.len() > 40_000,
        "the request line is far over 2048 bytes"
    );
    c.send(&line);
    let r = c.read_get_reply();
    assert_eq!(r.len(), n / 2);
    for (j, (k, f, v, cas)) in r.iter().enumerate() {
        let i = j * 2;
        assert_eq!(k, format!("key:{i:05}").as_bytes());
        assert_eq!(*f, i as u32);
        assert_eq!(v, format!("val{i}").as_bytes());
        assert!(cas.is_none());
    }
    // Same with gets.
    line.splice(0..3, b"gets".iter().copied());
    c.send(&line);
    let r = c.read_get_reply();
    assert_eq!(r.len(), n / 2);
    assert!(r.iter().all(|x| x.3.is_some()));
}

#[test]
fn gat_returns_value_and_updates_ttl() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("t", 5, 1, b"val");
    c.roundtrip(b"gat 100 t nope\r\n", b"VALUE t 5 3\r\nval\r\nEND\r\n");
    // Without the touch the item would expire after 1 s; observe it still alive after ~2.2 s.
    std::thread::sleep(Duration::from_millis(2200));
    c.roundtrip(b"get t\r\n", b"VALUE t 5 3\r\nval\r\nEND\r\n");
}

#[test]
fn gats_returns_cas() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("t", 5, 0, b"val");
    let (_, cas) = c.gets("t").unwrap();
    c.roundtrip(
        b"gats 0 t\r\n",
        format!("VALUE t 5 3 {cas}\r\nval\r\nEND\r\n").as_bytes(),
    );
    // gat does not modify the item: the CAS stays usable.
    c.roundtrip(
        format!("cas t 0 0 1 {cas}\r\nx\r\n").as_bytes(),
        b"STORED\r\n",
    );
}

#[test]
fn gat_negative_exptime_expires_after_returning() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("t", b"v");
    c.roundtrip(b"gat -1 t\r\n", b"VALUE t 0 1\r\nv\r\nEND\r\n");
    c.roundtrip(b"get t\r\n", b"END\r\n");
}

#[test]
fn gat_bad_exptime() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("t", b"v");
    c.roundtrip(
        b"gat abc t\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
    );
    c.roundtrip(
        b"gats 1x t\r\n",
        b"CLIENT_ERROR invalid exptime argument\r\n",
    );
    c.roundtrip(b"get t\r\n", b"VALUE t 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn key_of_250_bytes_ok_251_rejected() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let k250 = "k".repeat(250);
    let k251 = "k".repeat(251);
    c.set(&k250, b"x");
    c.roundtrip(
        format!("get {k250}\r\n").as_bytes(),
        format!("VALUE {k250} 0 1\r\nx\r\nEND\r\n").as_bytes(),
    );
    c.roundtrip(
        format!("get {k251}\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\n",
    );
    // A too-long key anywhere in a multiget rejects the whole command: the values already
    // found are not sent.
    c.roundtrip(
        format!("get {k250} {k251}\r\n").as_bytes(),
        b"CLIENT_ERROR bad command line format\r\n",
    );
    c.roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn values_containing_protocol_text_are_not_confused() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("p", b"END\r\nVALUE p 0 1\r\n");
    c.set("q", b"q");
    c.roundtrip(
        b"get p q\r\n",
        b"VALUE p 0 18\r\nEND\r\nVALUE p 0 1\r\n\r\nVALUE q 0 1\r\nq\r\nEND\r\n",
    );
}

#[test]
fn multiget_of_large_values() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let keys: Vec<String> = (0..100).map(|i| format!("big{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        c.set_full(k, i as u32, 0, &vec![b'a' + (i % 26) as u8; 100_000]);
    }
    // 10 MB per reply, far more than socket buffers hold; on the connection that stored the
    // values, then on fresh ones.
    for round in 0..8 {
        let mut fresh;
        let c = if round % 2 == 0 {
            &mut c
        } else {
            fresh = s.conn();
            &mut fresh
        };
        c.send(format!("get {}\r\n", keys.join(" ")).as_bytes());
        let r = c.read_get_reply();
        assert_eq!(r.len(), 100, "round {round}");
        for (i, (k, f, v, _)) in r.iter().enumerate() {
            assert_eq!(k, keys[i].as_bytes());
            assert_eq!(*f, i as u32);
            assert!(v.len() == 100_000 && v.iter().all(|b| *b == b'a' + (i % 26) as u8));
        }
    }
}

#[test]
fn rejected_multiget_keeps_earlier_pipelined_replies() {
    // memcached 1.6.18 drops the replies to earlier commands of the same read here (the set
    // is still performed); ferrocache answers every command (docs/compat.md).
    ferrocache_only!();
    let s = Server::start(&[]);
    let mut c = s.conn();
    let long = "k".repeat(251);
    c.roundtrip(
        format!("version\r\nset a 0 0 1\r\nx\r\nget {long}\r\nget a\r\n").as_bytes(),
        b"VERSION ",
    );
    c.read_line();
    c.expect(b"STORED\r\nCLIENT_ERROR bad command line format\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
}
