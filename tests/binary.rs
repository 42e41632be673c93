//! The binary protocol over real sockets: exact frames for every opcode,
//! quiet variants, CAS, status codes, bad input, `-B`, and libmemcached's
//! `memccapable -b`.

mod common;
use common::frames::{request as req, response as resp};
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const GET: u8 = 0x00;
const SET: u8 = 0x01;
const ADD: u8 = 0x02;
const REPLACE: u8 = 0x03;
const DELETE: u8 = 0x04;
const INCR: u8 = 0x05;
const DECR: u8 = 0x06;
const QUIT: u8 = 0x07;
const FLUSH: u8 = 0x08;
const GETQ: u8 = 0x09;
const NOOP: u8 = 0x0a;
const VERSION: u8 = 0x0b;
const GETK: u8 = 0x0c;
const GETKQ: u8 = 0x0d;
const APPEND: u8 = 0x0e;
const PREPEND: u8 = 0x0f;
const STAT: u8 = 0x10;
const SETQ: u8 = 0x11;
const ADDQ: u8 = 0x12;
const DELETEQ: u8 = 0x14;
const INCRQ: u8 = 0x15;
const QUITQ: u8 = 0x17;
const TOUCH: u8 = 0x1c;
const GAT: u8 = 0x1d;
const GATQ: u8 = 0x1e;
const GATK: u8 = 0x23;

fn set_extras(flags: u32, exptime: u32) -> Vec<u8> {
    let mut e = flags.to_be_bytes().to_vec();
    e.extend_from_slice(&exptime.to_be_bytes());
    e
}

fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    let mut e = delta.to_be_bytes().to_vec();
    e.extend_from_slice(&initial.to_be_bytes());
    e.extend_from_slice(&exptime.to_be_bytes());
    e
}

/// One response frame: (opcode, status, opaque, cas, extras, key, value).
type Rsp = (u8, u16, u32, u64, Vec<u8>, Vec<u8>, Vec<u8>);

fn read_frame(c: &mut Conn) -> Rsp {
    let h = c.read_exact_n(24);
    assert_eq!(h[0], 0x81, "bad magic in {}", esc_short(&h));
    let kl = u16::from_be_bytes([h[2], h[3]]) as usize;
    let el = h[4] as usize;
    let st = u16::from_be_bytes([h[6], h[7]]);
    let bl = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
    let opq = u32::from_be_bytes(h[12..16].try_into().unwrap());
    let cas = u64::from_be_bytes(h[16..24].try_into().unwrap());
    let body = c.read_exact_n(bl);
    (
        h[1],
        st,
        opq,
        cas,
        body[..el].to_vec(),
        body[el..el + kl].to_vec(),
        body[el + kl..].to_vec(),
    )
}

/// Stores `key` with SET and returns its CAS unique.
fn bset(c: &mut Conn, key: &[u8], flags: u32, value: &[u8]) -> u64 {
    c.send(&req(SET, key, &set_extras(flags, 0), value, 0, 0));
    let r = read_frame(c);
    assert_eq!((r.0, r.1), (SET, 0), "{r:?}");
    assert_ne!(r.3, 0);
    r.3
}

fn noop() -> Vec<u8> {
    req(NOOP, b"", b"", b"", 0xabcd, 0)
}

fn noop_reply() -> Vec<u8> {
    resp(NOOP, 0, 0xabcd, 0, b"", b"", b"")
}

#[test]
fn get_set_getk_exact_frames() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        &req(GET, b"missing", b"", b"", 7, 0),
        &resp(GET, 1, 7, 0, b"", b"", b"Not found"),
    );
    c.roundtrip(
        &req(GETK, b"missing", b"", b"", 8, 0),
        &resp(GETK, 1, 8, 0, b"", b"missing", b""),
    );
    let cas = bset(&mut c, b"k", 0xdeadbeef, b"hello");
    c.roundtrip(
        &req(GET, b"k", b"", b"", 9, 0),
        &resp(GET, 0, 9, cas, &0xdeadbeefu32.to_be_bytes(), b"", b"hello"),
    );
    c.roundtrip(
        &req(GETK, b"k", b"", b"", 10, 0),
        &resp(
            GETK,
            0,
            10,
            cas,
            &0xdeadbeefu32.to_be_bytes(),
            b"k",
            b"hello",
        ),
    );
    // A binary key may contain a space; text and binary share one store.
    bset(&mut c, b"a b", 0, b"spaced");
    let mut t = s.conn();
    t.roundtrip(b"get k\r\n", b"VALUE k 3735928559 5\r\nhello\r\nEND\r\n");
}

#[test]
fn add_replace_append_prepend_status_codes() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        &req(REPLACE, b"x", &set_extras(0, 0), b"v", 1, 0),
        &resp(REPLACE, 1, 1, 0, b"", b"", b"Not found"),
    );
    c.roundtrip(
        &req(APPEND, b"x", b"", b"v", 2, 0),
        &resp(APPEND, 5, 2, 0, b"", b"", b"Not stored."),
    );
    c.send(&req(ADD, b"x", &set_extras(0, 0), b"mid", 3, 0));
    let r = read_frame(&mut c);
    assert_eq!((r.0, r.1, r.2), (ADD, 0, 3));
    c.roundtrip(
        &req(ADD, b"x", &set_extras(0, 0), b"v", 4, 0),
        &resp(ADD, 2, 4, 0, b"", b"", b"Data exists for key."),
    );
    c.send(&req(APPEND, b"x", b"", b">", 5, 0));
    assert_eq!(read_frame(&mut c).1, 0);
    c.send(&req(PREPEND, b"x", b"", b"<", 6, 0));
    let cas = read_frame(&mut c).3;
    c.roundtrip(
        &req(GET, b"x", b"", b"", 7, 0),
        &resp(GET, 0, 7, cas, &[0; 4], b"", b"<mid>"),
    );
}

#[test]
fn cas_on_set_and_delete() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let cas = bset(&mut c, b"k", 0, b"v1");
    c.roundtrip(
        &req(SET, b"k", &set_extras(0, 0), b"v2", 1, cas + 1),
        &resp(SET, 2, 1, 0, b"", b"", b"Data exists for key."),
    );
    c.roundtrip(
        &req(SET, b"absent", &set_extras(0, 0), b"v2", 2, 99),
        &resp(SET, 1, 2, 0, b"", b"", b"Not found"),
    );
    c.send(&req(SET, b"k", &set_extras(0, 0), b"v2", 3, cas));
    let r = read_frame(&mut c);
    assert_eq!(r.1, 0);
    let cas2 = r.3;
    assert_ne!(cas2, cas);
    c.roundtrip(
        &req(DELETE, b"k", b"", b"", 4, cas),
        &resp(DELETE, 2, 4, 0, b"", b"", b"Data exists for key."),
    );
    c.roundtrip(
        &req(DELETE, b"k", b"", b"", 5, cas2),
        &resp(DELETE, 0, 5, 0, b"", b"", b""),
    );
    c.roundtrip(
        &req(DELETE, b"k", b"", b"", 6, 0),
        &resp(DELETE, 1, 6, 0, b"", b"", b"Not found"),
    );
}

#[test]
fn incr_decr_with_initial_value_and_no_create() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        &req(INCR, b"n", &arith_extras(1, 0, 0xffff_ffff), b"", 1, 0),
        &resp(INCR, 1, 1, 0, b"", b"", b"Not found"),
    );
    c.send(&req(INCR, b"n", &arith_extras(1, 10, 0), b"", 2, 0));
    let r = read_frame(&mut c);
    assert_eq!((r.1, r.6.clone()), (0, 10u64.to_be_bytes().to_vec()));
    c.send(&req(INCR, b"n", &arith_extras(5, 10, 0), b"", 3, 0));
    let r = read_frame(&mut c);
    assert_eq!(r.6, 15u64.to_be_bytes().to_vec());
    assert_ne!(r.3, 0);
    c.send(&req(DECR, b"n", &arith_extras(100, 0, 0), b"", 4, 0));
    assert_eq!(read_frame(&mut c).6, 0u64.to_be_bytes().to_vec());
    bset(&mut c, b"text", 0, b"abc");
    c.roundtrip(
        &req(INCR, b"text", &arith_extras(1, 0, 0), b"", 5, 0),
        &resp(
            INCR,
            6,
            5,
            0,
            b"",
            b"",
            b"Non-numeric server-side value for incr or decr",
        ),
    );
    // The created counter reads back as decimal text.
    let mut t = s.conn();
    t.send(b"get n\r\n");
    assert!(t.read_until(b"END\r\n").starts_with(b"VALUE n 0 "));
}

#[test]
fn quiet_variants_answer_only_what_matters() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut batch = Vec::new();
    batch.extend(req(GETQ, b"nope", b"", b"", 1, 0));
    batch.extend(req(SETQ, b"q", &set_extras(3, 0), b"val", 2, 0));
    batch.extend(req(ADDQ, b"q", &set_extras(0, 0), b"x", 3, 0)); // fails: answered
    batch.extend(req(GETKQ, b"q", b"", b"", 4, 0)); // hit: answered
    batch.extend(req(INCRQ, b"q", &arith_extras(1, 0, 0), b"", 5, 0)); // non-numeric
    batch.extend(req(DELETEQ, b"q", b"", b"", 6, 0)); // success: silent
    batch.extend(req(DELETEQ, b"q", b"", b"", 7, 0)); // miss: answered
    batch.extend(noop());
    c.send(&batch);
    let r = read_frame(&mut c);
    assert_eq!((r.0, r.1, r.2), (ADDQ, 2, 3));
    let r = read_frame(&mut c);
    assert_eq!((r.0, r.1, r.2), (GETKQ, 0, 4));
    assert_eq!(
        (r.4, r.5, r.6),
        (3u32.to_be_bytes().to_vec(), b"q".to_vec(), b"val".to_vec())
    );
    let r = read_frame(&mut c);
    assert_eq!((r.0, r.1, r.2), (INCRQ, 6, 5));
    let r = read_frame(&mut c);
    assert_eq!((r.0, r.1, r.2), (DELETEQ, 1, 7));
    c.expect(&noop_reply());
}

#[test]
fn touch_gat_gatk() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let cas = bset(&mut c, b"t", 5, b"bar");
    let ex = 100u32.to_be_bytes();
    c.roundtrip(
        &req(TOUCH, b"t", &ex, b"", 1, 0),
        &resp(TOUCH, 0, 1, cas, &5u32.to_be_bytes(), b"", b""),
    );
    c.roundtrip(
        &req(GAT, b"t", &ex, b"", 2, 0),
        &resp(GAT, 0, 2, cas, &5u32.to_be_bytes(), b"", b"bar"),
    );
    c.roundtrip(
        &req(GATK, b"t", &ex, b"", 3, 0),
        &resp(GATK, 0, 3, cas, &5u32.to_be_bytes(), b"t", b"bar"),
    );
    c.roundtrip(
        &req(GATK, b"none", &ex, b"", 4, 0),
        &resp(GATK, 1, 4, 0, b"", b"none", b""),
    );
    c.roundtrip(
        &req(TOUCH, b"none", &ex, b"", 5, 0),
        &resp(TOUCH, 1, 5, 0, b"", b"", b"Not found"),
    );
    let mut q = req(GATQ, b"none", &ex, b"", 6, 0);
    q.extend(noop());
    c.roundtrip(&q, &noop_reply());
    // A touch into the past expires the item.
    c.roundtrip(
        &req(TOUCH, b"t", &u32::MAX.to_be_bytes()[..], b"", 7, 0),
        &resp(TOUCH, 0, 7, cas, &5u32.to_be_bytes(), b"", b""),
    );
}

#[test]
fn version_noop_stat_flush_quit() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send(&req(VERSION, b"", b"", b"", 1, 0));
    let r = read_frame(&mut c);
    assert_eq!((r.0, r.1, r.2), (VERSION, 0, 1));
    assert!(r.6.starts_with(b"1.6."), "{}", esc(&r.6));
    c.roundtrip(&noop(), &noop_reply());
    // STAT with a group key, one frame per line and an empty terminator.
    c.send(&req(STAT, b"settings", b"", b"", 2, 0));
    let mut names = Vec::new();
    loop {
        let r = read_frame(&mut c);
        assert_eq!((r.0, r.1, r.2), (STAT, 0, 2));
        if r.5.is_empty() {
            assert!(r.6.is_empty());
            break;
        }
        names.push(String::from_utf8(r.5).unwrap());
    }
    assert!(names.iter().any(|n| n == "binding_protocol"), "{names:?}");
    c.roundtrip(
        &req(STAT, b"bogus", b"", b"", 3, 0),
        &resp(STAT, 1, 3, 0, b"", b"", b"Not found"),
    );
    bset(&mut c, b"f", 0, b"v");
    c.roundtrip(
        &req(FLUSH, b"", b"", b"", 4, 0),
        &resp(FLUSH, 0, 4, 0, b"", b"", b""),
    );
    c.roundtrip(
        &req(GET, b"f", b"", b"", 5, 0),
        &resp(GET, 1, 5, 0, b"", b"", b"Not found"),
    );
    c.roundtrip(
        &req(QUIT, b"", b"", b"", 6, 0),
        &resp(QUIT, 0, 6, 0, b"", b"", b""),
    );
    c.expect_closed();
    let mut q = s.conn();
    q.send(&req(QUITQ, b"", b"", b"", 7, 0));
    q.expect_closed();
}

#[test]
fn unknown_opcode_answers_0x81_and_skips_the_body() {
    if is_memcached() {
        // memcached 1.6.18 waits for more bytes than the body before
        // answering, and has no CONFIG_GET (docs/compat.md).
        return;
    }
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut b = req(0x55, b"k", b"", b"vv", 9, 0);
    b.extend(noop());
    c.send(&b);
    c.expect(&resp(0x55, 0x81, 9, 0, b"", b"", b"Unknown command"));
    c.expect(&noop_reply());
    // CONFIG_GET answers like `config get cluster` (the other configuration
    // opcodes are in binary_config.rs); the opcode after them is unknown.
    c.send(&req(0x60, b"cluster", b"", b"", 1, 0));
    let r = read_frame(&mut c);
    assert_eq!((r.0, r.1, r.2, r.4.clone()), (0x60, 0, 1, vec![0; 4]));
    let mut t = s.conn();
    t.send(b"config get cluster\r\n");
    let text = t.read_until(b"END\r\n");
    let body = &text[text.iter().position(|&b| b == b'\n').unwrap() + 1..text.len() - 7];
    assert_eq!(esc(&r.6), esc(body));
    c.roundtrip(
        &req(0x60, b"other", b"", b"", 2, 0),
        &resp(0x60, 1, 2, 0, b"", b"", b"Not found"),
    );
    c.roundtrip(
        &req(0x69, b"cluster", b"", b"x", 3, 0),
        &resp(0x69, 0x81, 3, 0, b"", b"", b"Unknown command"),
    );
}

#[test]
fn invalid_frames_get_einval_and_close() {
    let s = Server::start(&[]);
    s.conn().set("after_invalid", b"ok");
    // GET with extras.
    let mut c = s.conn();
    c.roundtrip(
        &req(GET, b"k", b"abcd", b"", 1, 0),
        &resp(GET, 4, 1, 0, b"", b"", b"Invalid arguments"),
    );
    c.expect_closed();
    if is_memcached() {
        // memcached waits for the declared body in the next two cases.
        c = s.conn();
        c.roundtrip(
            &req(GET, &[b'k'; 251], b"", b"", 4, 0),
            &resp(GET, 4, 4, 0, b"", b"", b"Invalid arguments"),
        );
        c.expect_closed();
        assert_server_healthy(&s, "after_invalid", b"ok");
        return;
    }
    // Body length smaller than key + extras.
    let mut c = s.conn();
    let mut f = req(GET, b"abcde", b"", b"", 2, 0);
    f[8..12].copy_from_slice(&2u32.to_be_bytes());
    c.roundtrip(
        &f[..26],
        &resp(GET, 4, 2, 0, b"", b"", b"Invalid arguments"),
    );
    c.expect_closed();
    // A huge declared body on a frame without a value: refused at once.
    let mut c = s.conn();
    let mut f = req(GET, b"k", b"", b"", 3, 0);
    f[8..12].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    c.roundtrip(
        &f[..24],
        &resp(GET, 4, 3, 0, b"", b"", b"Invalid arguments"),
    );
    c.expect_closed();
    // Key longer than 250 bytes.
    let mut c = s.conn();
    c.roundtrip(
        &req(GET, &[b'k'; 251], b"", b"", 4, 0),
        &resp(GET, 4, 4, 0, b"", b"", b"Invalid arguments"),
    );
    c.expect_closed();
    assert_server_healthy(&s, "after_invalid", b"ok");
}

#[test]
fn wrong_magic_and_garbage_after_a_frame_close() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut b = noop();
    b.extend_from_slice(b"garbage that is not a frame");
    c.send(&b);
    c.expect(&noop_reply());
    c.expect_closed();
    let mut c = s.conn();
    c.send(&noop());
    c.expect(&noop_reply());
    let mut bad = noop();
    bad[0] = 0x81;
    c.send(&bad);
    c.expect_closed();
}

#[test]
fn too_large_value_is_refused_and_swallowed() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    bset(&mut c, b"big", 0, b"old");
    let value = vec![b'x'; 1024 * 1024 + 100];
    let f = req(SET, b"big", &set_extras(0, 0), &value, 1, 0);
    // Sent in pieces: the value is discarded as it arrives (ferrocache
    // answers as soon as the key is in; memcached after the value).
    c.send(&f[..40]);
    if !is_memcached() {
        c.expect(&resp(SET, 3, 1, 0, b"", b"", b"Too large."));
    }
    for chunk in f[40..].chunks(64 * 1024) {
        c.send(chunk);
    }
    if is_memcached() {
        c.expect(&resp(SET, 3, 1, 0, b"", b"", b"Too large."));
    }
    c.roundtrip(&noop(), &noop_reply());
    // As memcached, the refused set drops the old value.
    c.roundtrip(
        &req(GET, b"big", b"", b"", 2, 0),
        &resp(GET, 1, 2, 0, b"", b"", b"Not found"),
    );
}

#[test]
fn truncated_frame_then_disconnect_leaves_the_server_healthy() {
    let s = Server::start(&[]);
    s.conn().set("after_truncated", b"ok");
    for cut in [1, 10, 24, 30] {
        let mut c = s.conn();
        let f = req(SET, b"key", &set_extras(0, 0), b"value", 0, 0);
        c.send(&f[..cut]);
        drop(c);
    }
    assert_server_healthy(&s, "after_truncated", b"ok");
}

#[test]
fn pipeline_split_at_every_byte() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut b = req(SETQ, b"p", &set_extras(1, 0), b"v", 1, 0);
    b.extend(req(GETK, b"p", b"", b"", 2, 0));
    b.extend(noop());
    for byte in &b {
        c.send(std::slice::from_ref(byte));
    }
    let r = read_frame(&mut c);
    assert_eq!(
        (r.0, r.1, r.5, r.6),
        (GETK, 0, b"p".to_vec(), b"v".to_vec())
    );
    c.expect(&noop_reply());
}

#[test]
fn dash_b_restricts_the_protocol() {
    let s = Server::start(&["-B", "binary"]);
    let mut c = s.conn();
    c.roundtrip(&noop(), &noop_reply());
    if !is_memcached() {
        // A text line is a wrong magic: closed at once (memcached waits
        // for 24 bytes first).
        let mut t = s.conn();
        t.send(b"version\r\n");
        t.expect_closed();
    }

    let s = Server::start(&["-B", "ascii"]);
    let mut t = s.conn();
    t.roundtrip(b"version\r\n", b"VERSION ");
    t.read_line();
    let mut c = s.conn();
    c.send(&noop());
    c.send(b"\r\n");
    let (got, _) = c.read_some(Duration::from_secs(5));
    assert!(!got.is_empty() && got[0] != 0x81, "{}", esc_short(&got));
    assert_eq!(t.stats("settings")["binding_protocol"], "ascii");

    let s = Server::start(&["-B", "auto"]);
    let mut t = s.conn();
    assert_eq!(t.stats("settings")["binding_protocol"], "auto-negotiate");
}

#[test]
fn memccapable_binary_all_checks_pass() {
    assert!(
        Path::new("/usr/bin/memccapable").exists(),
        "/usr/bin/memccapable is not installed (apt-get install -y libmemcached-tools); {RUN_ALL_HINT}"
    );
    let s = Server::start(&[]);
    let mut cmd = Command::new("/usr/bin/memccapable");
    cmd.args(["-b", "-h", "127.0.0.1", "-p", &s.port().to_string()]);
    let (st, out, err) = run_with_timeout(cmd, Duration::from_secs(60));
    let passes = out
        .lines()
        .filter(|l| l.trim_end().ends_with("[pass]"))
        .count();
    assert!(!out.contains("[FAIL]"), "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(passes, 27, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("All tests passed"), "stdout:\n{out}");
    assert!(st.success(), "memccapable exit status {st:?}");
}

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap()
        * 1024
}

#[test]
fn an_unread_binary_pipeline_keeps_memory_bounded() {
    if is_memcached() {
        return;
    }
    const N: usize = 300;
    let s = Server::start(&["-m", "64"]);
    let mut c = s.conn();
    let value: Vec<u8> = (0..512 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    bset(&mut c, b"big", 0, &value);
    let before = rss(s.pid());
    // 300 GETKs of a 512 KB value (150 MB of replies), none read yet.
    let mut slow = s.conn();
    let batch: Vec<u8> = (0..N)
        .flat_map(|i| req(GETK, b"big", b"", b"", i as u32, 0))
        .collect();
    slow.send(&batch);
    // The server stops writing once the socket is full; meanwhile others
    // are served.
    let mut last = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let now = slow.unread_bytes();
            let stalled = now == last && now > 0;
            last = now;
            stalled
        }),
        "the server kept writing"
    );
    c.roundtrip(&noop(), &noop_reply());
    let grown = rss(s.pid()).saturating_sub(before);
    assert!(grown < 32 * 1024 * 1024, "server grew by {grown} bytes");
    // Every reply arrives, in order and intact.
    for i in 0..N {
        let r = read_frame(&mut slow);
        assert_eq!((r.0, r.1, r.2), (GETK, 0, i as u32));
        assert!(r.6 == value, "reply {i} corrupted");
    }
}
