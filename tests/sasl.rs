//! SASL authentication over the binary protocol (`-S`): mechanisms, the
//! user database forms, pre-authentication gating, refusals of bad input,
//! and the `auth_cmds`/`auth_errors` counters.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Cursor, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rsasl::mechname::Mechname;
use rsasl::prelude::{SASLClient, SASLConfig, State};

const GET: u8 = 0x00;
const SET: u8 = 0x01;
const NOOP: u8 = 0x0a;
const VERSION: u8 = 0x0b;
const STAT: u8 = 0x10;
const LIST_MECHS: u8 = 0x20;
const AUTH: u8 = 0x21;
const STEP: u8 = 0x22;

fn req(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
    frames::request(op, key, extras, value, opaque, 0)
}

fn resp(op: u8, status: u16, opaque: u32, value: &[u8]) -> Vec<u8> {
    frames::response(op, status, opaque, 0, &[], &[], value)
}

/// (opcode, status, value)
fn read_frame(c: &mut Conn) -> (u8, u16, Vec<u8>) {
    let h = c.read_exact_n(24);
    assert_eq!(h[0], 0x81, "{}", esc_short(&h));
    let bl = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
    let kl = u16::from_be_bytes([h[2], h[3]]) as usize;
    let el = h[4] as usize;
    let body = c.read_exact_n(bl);
    (
        h[1],
        u16::from_be_bytes([h[6], h[7]]),
        body[el + kl..].to_vec(),
    )
}

fn auth_failure(op: u8, opaque: u32) -> Vec<u8> {
    resp(op, 0x20, opaque, b"Auth failure.")
}

/// A user database in a fresh temporary directory.
struct Db {
    dir: PathBuf,
}

impl Db {
    fn new(text: &str) -> Db {
        let dir = std::env::temp_dir().join(format!(
            "ferrocache-sasl-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("users"), text).unwrap();
        Db { dir }
    }
    fn path(&self) -> String {
        self.dir.join("users").to_string_lossy().into_owned()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

fn sasl_server(db: &Db) -> Server {
    Server::start(&["-S", "--sasl-db", &db.path()])
}

/// A SASL server without the failed-login throttle, for tests that fail on
/// purpose more often than it allows (the throttle is tested in
/// tests/security.rs).
fn sasl_server_unthrottled(db: &Db) -> Server {
    Server::start(&["-S", "--sasl-db", &db.path(), "-o", "auth_fail_burst=0"])
}

fn plain(c: &mut Conn, authzid: &str, user: &str, pass: &str) -> (u8, u16, Vec<u8>) {
    let msg = format!("{authzid}\0{user}\0{pass}");
    c.send(&req(AUTH, b"PLAIN", b"", msg.as_bytes(), 1));
    read_frame(c)
}

fn set_get_roundtrip(c: &mut Conn) {
    c.send(&req(SET, b"k", &[0; 8], b"v", 2));
    let r = read_frame(c);
    assert_eq!((r.0, r.1), (SET, 0));
    c.send(&req(GET, b"k", b"", b"", 3));
    let r = read_frame(c);
    assert_eq!((r.0, r.1, r.2), (GET, 0, b"v".to_vec()));
}

#[test]
fn list_mechs_and_version_before_auth() {
    let db = Db::new("alice:s3cret\n");
    let s = sasl_server(&db);
    let mut c = s.conn();
    c.roundtrip(
        &req(LIST_MECHS, b"", b"", b"", 4),
        &resp(LIST_MECHS, 0, 4, b"SCRAM-SHA-256 SCRAM-SHA-1 PLAIN"),
    );
    c.send(&req(VERSION, b"", b"", b"", 5));
    assert_eq!(read_frame(&mut c).1, 0);
}

#[test]
fn every_opcode_before_auth_is_refused_and_closes() {
    let db = Db::new("alice:s3cret\n");
    let s = sasl_server(&db);
    s.conn().send(b""); // server is up
    for op in (0u8..=0x24).chain([0x55, 0x60, 0xff]) {
        if matches!(op, LIST_MECHS | AUTH | STEP | VERSION) {
            continue;
        }
        let mut c = s.conn();
        // A plausible frame for the opcode: key and extras where expected.
        let (key, extras): (&[u8], &[u8]) = match op {
            0x01..=0x03 | 0x11..=0x13 => (b"k", &[0; 8]),
            0x05 | 0x06 | 0x15 | 0x16 => (b"k", &[0; 20]),
            0x1c..=0x1e | 0x23 | 0x24 => (b"k", &[0; 4]),
            0x00 | 0x04 | 0x09 | 0x0c | 0x0d | 0x0e | 0x0f | 0x14 | 0x19 | 0x1a => (b"k", b""),
            _ => (b"", b""),
        };
        c.send(&req(op, key, extras, b"", 9));
        c.expect(&auth_failure(op, 9));
        c.expect_closed();
    }
    // Text commands before auth: refused, nothing served.
    let text: &[&[u8]] = &[
        b"get k\r\n",
        b"gets k\r\n",
        b"gat 0 k\r\n",
        b"gats 0 k\r\n",
        b"add k 0 0 1\r\nv\r\n",
        b"replace k 0 0 1\r\nv\r\n",
        b"append k 0 0 1\r\nv\r\n",
        b"prepend k 0 0 1\r\nv\r\n",
        b"cas k 0 0 1 1\r\nv\r\n",
        b"delete k\r\n",
        b"incr k 1\r\n",
        b"decr k 1\r\n",
        b"touch k 0\r\n",
        b"flush_all\r\n",
        b"verbosity 1\r\n",
        b"cache_memlimit 100\r\n",
        b"shutdown\r\n",
        b"stats\r\n",
        b"stats settings\r\n",
        b"config get cluster\r\n",
        b"version\r\n",
        b"quit\r\n",
        b"refresh_certs\r\n",
        b"mg k v\r\n",
        b"ms k 1\r\nv\r\n",
        b"mn\r\n",
        b"bogus\r\n",
        b"set k 0 0 99999999\r\n",
    ];
    for &cmd in text {
        let mut c = s.conn();
        c.send(cmd);
        c.expect(b"CLIENT_ERROR unauthenticated\r\n");
        c.expect_closed();
    }
}

#[test]
fn plain_right_and_wrong_password() {
    let db = Db::new("alice:s3cret\n");
    let s = sasl_server(&db);
    let mut c = s.conn();
    assert_eq!(
        plain(&mut c, "", "alice", "wrong"),
        (AUTH, 0x20, b"Auth failure.".to_vec())
    );
    assert_eq!(plain(&mut c, "", "nobody", "s3cret").1, 0x20);
    // Failures leave the connection open for another try.
    assert_eq!(
        plain(&mut c, "", "alice", "s3cret"),
        (AUTH, 0, b"Authenticated".to_vec())
    );
    set_get_roundtrip(&mut c);
    // Authentication is per connection.
    let mut other = s.conn();
    other.send(&req(GET, b"k", b"", b"", 7));
    other.expect(&auth_failure(GET, 7));
    other.expect_closed();
    c.send(&req(STAT, b"", b"", b"", 8));
    let mut stats = std::collections::HashMap::new();
    loop {
        let h = c.read_exact_n(24);
        let kl = u16::from_be_bytes([h[2], h[3]]) as usize;
        let bl = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
        let body = c.read_exact_n(bl);
        if kl == 0 {
            break;
        }
        stats.insert(
            String::from_utf8(body[..kl].to_vec()).unwrap(),
            String::from_utf8(body[kl..].to_vec()).unwrap(),
        );
    }
    assert_eq!(stats["auth_cmds"], "3");
    assert_eq!(stats["auth_errors"], "2");
}

#[test]
fn authzid_must_match_the_user() {
    let db = Db::new("alice:s3cret\n");
    let s = sasl_server(&db);
    let mut c = s.conn();
    assert_eq!(plain(&mut c, "bob", "alice", "s3cret").1, 0x20);
    assert_eq!(plain(&mut c, "alice", "alice", "s3cret").1, 0);
}

#[test]
fn malformed_and_out_of_order_exchanges_are_refused() {
    let db = Db::new("alice:s3cret\n");
    let s = sasl_server_unthrottled(&db);
    let mut c = s.conn();
    // STEP without AUTH.
    c.roundtrip(
        &req(STEP, b"PLAIN", b"", b"\0alice\0s3cret", 1),
        &auth_failure(STEP, 1),
    );
    // Unknown and unsupported mechanisms.
    c.roundtrip(
        &req(AUTH, b"CRAM-MD5", b"", b"x", 2),
        &auth_failure(AUTH, 2),
    );
    c.roundtrip(
        &req(AUTH, b"NOT A MECH", b"", b"x", 3),
        &auth_failure(AUTH, 3),
    );
    // PLAIN payloads without separators, truncated, empty.
    for bad in [
        &b"alice s3cret"[..],
        b"\0alice",
        b"",
        b"\0\0",
        b"\xff\0\xfe\0\xfd",
    ] {
        c.roundtrip(&req(AUTH, b"PLAIN", b"", bad, 4), &auth_failure(AUTH, 4));
    }
    // SCRAM garbage and a STEP naming another mechanism.
    c.roundtrip(
        &req(AUTH, b"SCRAM-SHA-256", b"", b"garbage", 5),
        &auth_failure(AUTH, 5),
    );
    c.send(&req(
        AUTH,
        b"SCRAM-SHA-256",
        b"",
        b"n,,n=alice,r=abcdefgh",
        6,
    ));
    assert_eq!(read_frame(&mut c).1, 0x21);
    c.roundtrip(&req(STEP, b"PLAIN", b"", b"x", 7), &auth_failure(STEP, 7));
    // A SASL frame too large to be a credential: refused and closed.
    c.send(&req(AUTH, b"PLAIN", b"", &vec![b'a'; 100_000], 8));
    let r = read_frame(&mut c);
    assert_eq!(r.1, 0x04);
    c.expect_closed();
    // Still unauthenticated elsewhere, and the server is fine.
    let mut c = s.conn();
    assert_eq!(plain(&mut c, "", "alice", "s3cret").1, 0);
}

#[test]
fn thousands_of_failures_in_a_row() {
    let db = Db::new("alice:s3cret\n");
    let s = sasl_server_unthrottled(&db);
    let mut c = s.conn();
    let mut batch = Vec::new();
    for i in 0..3000u32 {
        batch.extend(req(
            AUTH,
            b"PLAIN",
            b"",
            format!("\0alice\0wrong{i}").as_bytes(),
            i,
        ));
    }
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&batch).unwrap());
    // Meanwhile another client works.
    let mut ok = s.conn();
    assert_eq!(plain(&mut ok, "", "alice", "s3cret").1, 0);
    set_get_roundtrip(&mut ok);
    for i in 0..3000u32 {
        c.expect(&auth_failure(AUTH, i));
    }
    writer.join().unwrap();
    assert_eq!(plain(&mut c, "", "alice", "s3cret").1, 0);
}

/// Runs a SCRAM exchange with rsasl's client; returns whether the server
/// accepted it (and checks the server's signature when it did).
fn scram(c: &mut Conn, mech: &str, user: &str, pass: &str) -> bool {
    let config = SASLConfig::with_credentials(None, user.into(), pass.into()).unwrap();
    let name = Mechname::parse(mech.as_bytes()).unwrap();
    let mut session = SASLClient::new(config).start_suggested(&[name]).unwrap();
    let mut out = Cursor::new(Vec::new());
    session.step(None, &mut out).unwrap();
    let mut op = AUTH;
    loop {
        c.send(&req(op, mech.as_bytes(), b"", out.get_ref(), 1));
        let (_, status, value) = read_frame(c);
        match status {
            0x21 => {
                out = Cursor::new(Vec::new());
                if session.step(Some(&value), &mut out).is_err() {
                    return false;
                }
                op = STEP;
            }
            0 => {
                // The server's final message carries its signature.
                let mut sink = Cursor::new(Vec::new());
                let st = session
                    .step(Some(&value), &mut sink)
                    .expect("server signature");
                assert!(matches!(st, State::Finished(_)));
                return true;
            }
            0x20 => return false,
            other => panic!("unexpected status {other:#x}"),
        }
    }
}

#[test]
fn scram_sha256_and_sha1() {
    let db = Db::new("alice:s3cret\n");
    let s = sasl_server(&db);
    for mech in ["SCRAM-SHA-256", "SCRAM-SHA-1"] {
        let mut c = s.conn();
        assert!(!scram(&mut c, mech, "alice", "wrong"), "{mech}");
        assert!(!scram(&mut c, mech, "mallory", "s3cret"), "{mech}");
        // Refused so far: still gated.
        let mut c2 = s.conn();
        assert!(scram(&mut c2, mech, "alice", "s3cret"), "{mech}");
        set_get_roundtrip(&mut c2);
        c.send(&req(NOOP, b"", b"", b"", 1));
        c.expect(&auth_failure(NOOP, 1));
    }
}

fn saslpasswd(user: &str, password: &str) -> String {
    let bin = ferrocache_bin().with_file_name("ferrocache-saslpasswd");
    let mut child = Command::new(&bin)
        .args(["-i", "64", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn salted_entries_serve_plain_and_scram() {
    let entry = saslpasswd("bob", "hunter2");
    assert!(entry.starts_with("bob:$scram$64$"), "{entry}");
    assert!(!entry.contains("hunter2"));
    let db = Db::new(&format!("alice:s3cret\n{entry}"));
    let s = sasl_server(&db);
    let mut c = s.conn();
    assert_eq!(plain(&mut c, "", "bob", "hunter3").1, 0x20);
    assert_eq!(plain(&mut c, "", "bob", "hunter2").1, 0);
    for mech in ["SCRAM-SHA-256", "SCRAM-SHA-1"] {
        let mut c = s.conn();
        assert!(!scram(&mut c, mech, "bob", "hunter3"));
        assert!(scram(&mut c, mech, "bob", "hunter2"));
    }
}

#[test]
fn memcached_sasl_pwdb_is_honoured() {
    let db = Db::new("carol:pw\n");
    let mut child = Command::new(ferrocache_bin())
        .args(["-p", "0", "-l", "127.0.0.1", "-S"])
        .env("MEMCACHED_SASL_PWDB", db.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("listening line").unwrap();
        if let Some(a) = line.strip_prefix("ferrocache listening on ") {
            break a.trim().parse().unwrap();
        }
    };
    let mut c = Conn::connect(addr);
    let ok = plain(&mut c, "", "carol", "pw").1;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ok, 0);
}

#[test]
fn sasl_without_a_user_database_refuses_to_start() {
    let out = Command::new(ferrocache_bin())
        .args(["-p", "0", "-l", "127.0.0.1", "-S"])
        .env_remove("MEMCACHED_SASL_PWDB")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("user database"), "{err}");
    let out = Command::new(ferrocache_bin())
        .args(["-p", "0", "-S", "--sasl-db", "/nonexistent/users"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn sasl_opcodes_without_dash_s_are_unknown() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        &req(LIST_MECHS, b"", b"", b"", 1),
        &resp(LIST_MECHS, 0x81, 1, b"Unknown command"),
    );
    let _ = Duration::from_secs(0);
}

#[test]
fn example_user_database_parses() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/sasl-users.example");
    let db = ferrocache::auth::UserDb::load(&path).unwrap();
    assert!(db.verify("alice", b"change-me"));
    assert!(db.verify("bob", b"example"));
    assert!(!db.verify("bob", b"Example"));
}
