//! ElastiCache's binary configuration opcodes (0x60–0x68) over real sockets:
//! exact reply frames, quiet variants, `CONFIG_SET`/`CONFIG_DELETE` against
//! the same state as the text `config` commands, the admin rule, and bad
//! frames.

mod common;
use common::*;
use std::time::Duration;

const NOOP: u8 = 0x0a;
const CONFIG_GET: u8 = 0x60;
const CONFIG_GETQ: u8 = 0x61;
const CONFIG_GETK: u8 = 0x62;
const CONFIG_GETKQ: u8 = 0x63;
const CONFIG_SET: u8 = 0x64;
const CONFIG_SETQ: u8 = 0x65;
const CONFIG_DELETE: u8 = 0x66;
const CONFIG_DELETEQ: u8 = 0x67;
const CONFIG_LIST: u8 = 0x68;

const NOT_FOUND: u16 = 0x01;
const EINVAL: u16 = 0x04;
const AUTH_ERROR: u16 = 0x20;

fn req(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
    frames::request(op, key, extras, value, opaque, 0)
}

fn resp(op: u8, status: u16, opaque: u32, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    frames::response(op, status, opaque, 0, extras, key, value)
}

/// An error reply with memcached's message for `status`.
fn error(op: u8, status: u16, opaque: u32) -> Vec<u8> {
    let message: &[u8] = match status {
        NOT_FOUND => b"Not found",
        EINVAL => b"Invalid arguments",
        AUTH_ERROR => b"Auth failure.",
        _ => unreachable!(),
    };
    resp(op, status, opaque, b"", b"", message)
}

fn noop() -> Vec<u8> {
    req(NOOP, b"", b"", b"", 0xabcd)
}

fn noop_reply() -> Vec<u8> {
    resp(NOOP, 0, 0xabcd, b"", b"", b"")
}

/// A CONFIG_SET(Q) of `cluster` with flags `flags` and `payload`.
fn set(op: u8, payload: &str, flags: u32, opaque: u32) -> Vec<u8> {
    req(
        op,
        b"cluster",
        &flags.to_be_bytes(),
        payload.as_bytes(),
        opaque,
    )
}

/// A node that lists itself as `localhost|127.0.0.1|<port>`.
fn node(extra: &[&str]) -> Server {
    let mut args = vec!["--cluster-host", "localhost"];
    args.extend_from_slice(extra);
    Server::start_ferrocache(&args, 1)
}

fn own_entry(s: &Server) -> String {
    format!("localhost|127.0.0.1|{}", s.port())
}

/// The payload `config get cluster` answers on the text protocol.
fn text_payload(s: &Server) -> String {
    let mut t = s.conn();
    t.send(b"config get cluster\r\n");
    let reply = String::from_utf8(t.read_until(b"END\r\n")).unwrap();
    let (head, rest) = reply.split_once("\r\n").unwrap();
    let payload = rest.strip_suffix("\r\nEND\r\n").unwrap();
    assert_eq!(head, format!("CONFIG cluster 0 {}", payload.len()));
    payload.to_string()
}

/// The version and node list of a payload.
fn parse_payload(p: &str) -> (u64, String) {
    let (v, list) = p.split_once('\n').unwrap();
    (
        v.parse().unwrap(),
        list.strip_suffix('\n').unwrap().to_string(),
    )
}

#[test]
fn config_gets_exact_frames_and_quiet_misses() {
    let s = node(&[]);
    let payload = format!("1\n{}\n", own_entry(&s));
    assert_eq!(text_payload(&s), payload);
    let p = payload.as_bytes();
    let flags = [0u8; 4];
    let mut c = s.conn();
    c.roundtrip(
        &req(CONFIG_GET, b"cluster", b"", b"", 1),
        &resp(CONFIG_GET, 0, 1, &flags, b"", p),
    );
    c.roundtrip(
        &req(CONFIG_GETQ, b"cluster", b"", b"", 2),
        &resp(CONFIG_GETQ, 0, 2, &flags, b"", p),
    );
    c.roundtrip(
        &req(CONFIG_GETK, b"cluster", b"", b"", 3),
        &resp(CONFIG_GETK, 0, 3, &flags, b"cluster", p),
    );
    c.roundtrip(
        &req(CONFIG_GETKQ, b"cluster", b"", b"", 4),
        &resp(CONFIG_GETKQ, 0, 4, &flags, b"cluster", p),
    );
    // Unknown keys miss: "not found", with the key for GETK, and nothing
    // at all for the quiet variants (NOOP shows they were answered).
    c.roundtrip(
        &req(CONFIG_GET, b"other", b"", b"", 5),
        &error(CONFIG_GET, NOT_FOUND, 5),
    );
    c.roundtrip(
        &req(CONFIG_GETK, b"other", b"", b"", 6),
        &resp(CONFIG_GETK, NOT_FOUND, 6, b"", b"other", b""),
    );
    let mut b = req(CONFIG_GETQ, b"other", b"", b"", 7);
    b.extend(req(CONFIG_GETKQ, b"other", b"", b"", 8));
    b.extend(noop());
    c.roundtrip(&b, &noop_reply());
    // A pipeline of hits and misses answers in order.
    let mut b = req(CONFIG_GETKQ, b"other", b"", b"", 9);
    b.extend(req(CONFIG_GETKQ, b"cluster", b"", b"", 10));
    b.extend(noop());
    let mut want = resp(CONFIG_GETKQ, 0, 10, &flags, b"cluster", p);
    want.extend(noop_reply());
    c.roundtrip(&b, &want);
}

#[test]
fn config_list_answers_the_configuration_keys() {
    let s = node(&[]);
    let mut c = s.conn();
    c.roundtrip(
        &req(CONFIG_LIST, b"", b"", b"", 0x0102_0304),
        &resp(CONFIG_LIST, 0, 0x0102_0304, b"", b"", b"cluster"),
    );
}

#[test]
fn config_set_from_loopback_is_seen_by_the_text_protocol() {
    let s = node(&[]);
    let me = own_entry(&s);
    let mut c = s.conn();

    let list = format!("{me} other|10.1.1.1|11211");
    c.roundtrip(
        &set(CONFIG_SET, &format!("5\n{list}\n"), 0, 11),
        &resp(CONFIG_SET, 0, 11, b"", b"", b""),
    );
    // The text protocol of the same node and the binary get agree.
    let after = text_payload(&s);
    let (v1, got) = parse_payload(&after);
    assert_eq!(got, list);
    assert!(v1 >= 5, "{after:?}");
    c.roundtrip(
        &req(CONFIG_GET, b"cluster", b"", b"", 12),
        &resp(CONFIG_GET, 0, 12, &[0; 4], b"", after.as_bytes()),
    );

    // SETQ is silent on success; flags are accepted as for a text set.
    let list2 = format!("a|10.1.1.2|11211 {me}");
    let mut b = set(CONFIG_SETQ, &format!("{}\n{list2}\n", v1 + 1), 7, 13);
    b.extend(noop());
    c.roundtrip(&b, &noop_reply());
    let (v2, got) = parse_payload(&text_payload(&s));
    assert_eq!(got, list2);
    assert!(v2 > v1);
}

#[test]
fn bad_config_set_payloads_are_refused_and_change_nothing() {
    let s = node(&[]);
    let me = own_entry(&s);
    let mut c = s.conn();
    c.roundtrip(
        &set(CONFIG_SET, &format!("5\n{me}\n"), 0, 1),
        &resp(CONFIG_SET, 0, 1, b"", b"", b""),
    );
    let before = text_payload(&s);
    let (v, _) = parse_payload(&before);
    let refused = [
        format!("{v}\n{me} b|10.0.0.1|1\n"), // version not above
        format!("{}\na|1.2.3.4\n", v + 100), // no port
        format!("{}\na||70000\n", v + 100),  // port out of range
        format!("{}\na|x|1\n", v + 100),     // bad IP
        format!("{}\na|1.2.3.4|1 b|1.2.3.4|1\n", v + 100), // duplicate
        format!("{}\n\n", v + 100),          // no node
    ];
    for (i, payload) in refused.iter().enumerate() {
        // The quiet variant answers errors too.
        for op in [CONFIG_SET, CONFIG_SETQ] {
            let opaque = 100 + i as u32;
            c.roundtrip(&set(op, payload, 0, opaque), &error(op, EINVAL, opaque));
        }
    }
    // A key other than `cluster`.
    c.roundtrip(
        &req(CONFIG_SET, b"other", &[0; 4], b"9\na||1\n", 200),
        &error(CONFIG_SET, NOT_FOUND, 200),
    );
    c.roundtrip(
        &req(CONFIG_DELETE, b"other", b"", b"", 201),
        &error(CONFIG_DELETE, NOT_FOUND, 201),
    );
    assert_eq!(text_payload(&s), before);
}

#[test]
fn config_delete_and_deleteq() {
    let s = node(&[]);
    let me = own_entry(&s);
    let mut c = s.conn();
    let standalone = format!("{me}\n");
    // Nothing administered yet.
    c.roundtrip(
        &req(CONFIG_DELETE, b"cluster", b"", b"", 1),
        &error(CONFIG_DELETE, NOT_FOUND, 1),
    );
    c.roundtrip(
        &req(CONFIG_DELETEQ, b"cluster", b"", b"", 2),
        &error(CONFIG_DELETEQ, NOT_FOUND, 2),
    );

    c.roundtrip(
        &set(CONFIG_SET, &format!("5\n{me} b|10.0.0.1|1\n"), 0, 3),
        &resp(CONFIG_SET, 0, 3, b"", b"", b""),
    );
    let (v1, _) = parse_payload(&text_payload(&s));
    c.roundtrip(
        &req(CONFIG_DELETE, b"cluster", b"", b"", 4),
        &resp(CONFIG_DELETE, 0, 4, b"", b"", b""),
    );
    // The list falls back to the node itself, under a higher version.
    let (v2, list) = parse_payload(&text_payload(&s));
    assert_eq!(format!("{list}\n"), standalone);
    assert!(v2 > v1);
    c.roundtrip(
        &req(CONFIG_DELETE, b"cluster", b"", b"", 5),
        &error(CONFIG_DELETE, NOT_FOUND, 5),
    );

    // DELETEQ is silent on success.
    c.roundtrip(
        &set(
            CONFIG_SET,
            &format!("{}\n{me} c|10.0.0.3|1\n", v2 + 1),
            0,
            6,
        ),
        &resp(CONFIG_SET, 0, 6, b"", b"", b""),
    );
    let mut b = req(CONFIG_DELETEQ, b"cluster", b"", b"", 7);
    b.extend(noop());
    c.roundtrip(&b, &noop_reply());
    let (v3, list) = parse_payload(&text_payload(&s));
    assert_eq!(format!("{list}\n"), standalone);
    assert!(v3 > v2 + 1);
}

#[test]
fn a_client_outside_cluster_admin_cannot_change_the_list() {
    let s = node(&["--cluster-admin", "none"]);
    let me = own_entry(&s);
    let before = text_payload(&s);
    let mut c = s.conn();
    let payload = format!("50\n{me} evil|10.6.6.6|11211\n");
    c.roundtrip(
        &set(CONFIG_SET, &payload, 0, 1),
        &error(CONFIG_SET, AUTH_ERROR, 1),
    );
    c.roundtrip(
        &set(CONFIG_SETQ, &payload, 0, 2),
        &error(CONFIG_SETQ, AUTH_ERROR, 2),
    );
    c.roundtrip(
        &req(CONFIG_DELETE, b"cluster", b"", b"", 3),
        &error(CONFIG_DELETE, AUTH_ERROR, 3),
    );
    c.roundtrip(
        &req(CONFIG_DELETEQ, b"cluster", b"", b"", 4),
        &error(CONFIG_DELETEQ, AUTH_ERROR, 4),
    );
    // Reading stays open to everyone, and nothing changed.
    assert_eq!(text_payload(&s), before);
    c.roundtrip(
        &req(CONFIG_GET, b"cluster", b"", b"", 5),
        &resp(CONFIG_GET, 0, 5, &[0; 4], b"", before.as_bytes()),
    );
    // The connection is still usable.
    c.roundtrip(&noop(), &noop_reply());
}

#[test]
fn malformed_config_frames_get_einval_and_close() {
    let s = node(&[]);
    let me = own_entry(&s);
    let before = text_payload(&s);
    let good = format!("9\n{me} x|10.0.0.9|1\n");
    let bad: Vec<(u8, Vec<u8>)> = vec![
        // CONFIG_SET without flags, with 8 bytes of extras, without a key.
        (
            CONFIG_SET,
            req(CONFIG_SET, b"cluster", b"", good.as_bytes(), 1),
        ),
        (
            CONFIG_SETQ,
            req(CONFIG_SETQ, b"cluster", &[0; 8], good.as_bytes(), 1),
        ),
        (
            CONFIG_SET,
            req(CONFIG_SET, b"", &[0; 4], good.as_bytes(), 1),
        ),
        // Gets and deletes take a key and nothing else.
        (CONFIG_GET, req(CONFIG_GET, b"", b"", b"", 1)),
        (CONFIG_GETK, req(CONFIG_GETK, b"cluster", &[0; 4], b"", 1)),
        (CONFIG_GETQ, req(CONFIG_GETQ, b"cluster", b"", b"x", 1)),
        (CONFIG_DELETE, req(CONFIG_DELETE, b"", b"", b"", 1)),
        (
            CONFIG_DELETEQ,
            req(CONFIG_DELETEQ, b"cluster", b"", b"x", 1),
        ),
        // CONFIG_LIST takes nothing.
        (CONFIG_LIST, req(CONFIG_LIST, b"cluster", b"", b"", 1)),
    ];
    for (op, frame) in bad {
        let mut c = s.conn();
        c.set_timeout(Duration::from_secs(5));
        c.send(&frame);
        c.expect(&error(op, EINVAL, 1));
        c.expect_closed();
    }
    assert_eq!(text_payload(&s), before);
}
