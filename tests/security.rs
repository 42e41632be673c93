//! One test per claim of `docs/security.md`: what an unauthenticated client,
//! an authenticated user and a network client can and cannot do under each
//! configuration (no auth, `-Y`, `-S`, `-Z`, mTLS, cluster admin rules),
//! that UDP stays off, that secrets never reach the log, and that a client
//! cannot pin server resources by closing half-way through a request.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

const PASSWORD: &str = "Zebra-Horse-42";
const WRONG: &str = "Wrong-Horse-99";

/// A fresh temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "ferrocache-security-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A binary request frame.
fn req(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
    frames::request(op, key, extras, value, opaque, 0)
}

/// A binary response frame with no extras or key.
fn resp(op: u8, status: u16, opaque: u32, value: &[u8]) -> Vec<u8> {
    frames::response(op, status, opaque, 0, &[], &[], value)
}

/// `config get cluster` on an authenticated text connection.
fn config_get(c: &mut Conn) -> Vec<u8> {
    c.send(b"config get cluster\r\n");
    c.read_until(b"END\r\n")
}

/// The text authentication `set` for `user` and `pass`.
fn login(user: &str, pass: &str) -> String {
    let data = format!("{user} {pass}");
    format!("set a 0 0 {}\r\n{data}\r\n", data.len())
}

fn plain_auth(user: &str, pass: &str, opaque: u32) -> Vec<u8> {
    req(
        0x21,
        b"PLAIN",
        b"",
        format!("\0{user}\0{pass}").as_bytes(),
        opaque,
    )
}

/// A connection from a chosen local address (127.0.0.x).
fn conn_from(local: &str, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&format!("{local}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.connect(&to.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Sends `request` and reads until the reply ends with `term`.
fn ask(s: &mut TcpStream, request: &[u8], term: &[u8]) -> Vec<u8> {
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(term) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}; so far {}", esc_short(&got)),
        }
    }
    got
}

// ---------------------------------------------------------------- UDP

#[test]
fn udp_is_refused_at_start_up() {
    for port in ["1", "11211"] {
        let mut cmd = Command::new(ferrocache_bin());
        cmd.args(["-p", "0", "-l", "127.0.0.1", "-U", port]);
        let (status, _, stderr) = run_with_timeout(cmd, Duration::from_secs(10));
        assert!(!status.success(), "-U {port} started");
        assert!(
            stderr.contains("-U: UDP is not supported; only -U 0 is accepted"),
            "{stderr}"
        );
    }
}

/// Socket inodes of a /proc/net table.
fn inodes(table: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(9)?.to_string(), f.get(3)?.to_string()))
        })
        .collect()
}

#[test]
fn no_udp_socket_is_open() {
    let s = Server::start_ferrocache(&["-U", "0", "-t", "2"], 1);
    let mine: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    // The method sees the server's sockets: its listener is a TCP socket in
    // state LISTEN (0A).
    let tcp: Vec<(String, String)> = inodes("tcp").into_iter().chain(inodes("tcp6")).collect();
    assert!(
        tcp.iter().any(|(i, st)| mine.contains(i) && st == "0A"),
        "listener not found among {mine:?}"
    );
    for table in ["udp", "udp6", "udplite", "udplite6"] {
        for (inode, _) in inodes(table) {
            assert!(!mine.contains(&inode), "UDP socket {inode} open in {table}");
        }
    }
}

// ------------------------------------------------ unauthenticated clients

/// Text requests that must all be refused before authentication. Each one
/// would change or reveal something if it were served.
fn text_requests() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "get k\r\n",
        "gets k\r\n",
        "gat 0 k\r\n",
        "get AmazonElastiCache:cluster\r\n",
        "config get cluster\r\n",
        "config set cluster 0 22\r\n1\nevil|10.6.6.6|11211\n\r\n",
        "config delete cluster\r\n",
        "cluster sync 5\r\nhello\r\n",
        "stats\r\n",
        "stats settings\r\n",
        "stats cachedump 1 0\r\n",
        "stats conns\r\n",
        "version\r\n",
        "verbosity 2\r\n",
        "flush_all\r\n",
        "shutdown\r\n",
        "cache_memlimit 8\r\n",
        "refresh_certs\r\n",
        "lru_crawler metadump all\r\n",
        "mg k v\r\n",
        "mn\r\n",
        "ms k 1\r\nx\r\n",
        "md k\r\n",
        "ma n\r\n",
        "me k\r\n",
        "incr n 1\r\n",
        "delete k\r\n",
        "touch k 0\r\n",
        "add alice 0 0 20\r\nalice Zebra-Horse-42\r\n",
        "append k 0 0 1\r\nx\r\n",
        "quit\r\n",
        "no-such-command\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut long = b"get ".to_vec();
    long.extend(vec![b'k'; 3000]);
    long.extend_from_slice(b"\r\n");
    v.push(long);
    v
}

/// Sends every pre-authentication request on its own connection, checks
/// each gets `CLIENT_ERROR unauthenticated` and a close, then checks with an
/// authenticated connection that nothing happened.
fn check_text_refusals(s: &mut Server, auth_line: &[u8]) {
    let mut admin = s.conn();
    admin.roundtrip(auth_line, b"STORED\r\n");
    admin.roundtrip(b"set k 0 0 5\r\nhello\r\n", b"STORED\r\n");
    let config_before = config_get(&mut admin);
    for r in text_requests() {
        let mut c = s.conn();
        c.send(&r);
        c.expect(b"CLIENT_ERROR unauthenticated\r\n");
        c.expect_closed();
    }
    // Nothing was flushed, deleted, changed or shut down.
    assert!(s.is_running());
    let mut c = s.conn();
    c.roundtrip(auth_line, b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n");
    c.roundtrip(b"get alice\r\n", b"END\r\n");
    assert_eq!(config_get(&mut c), config_before);
    let st = c.stats("");
    assert_eq!(st["cmd_flush"], "0");
    let settings = c.stats("settings");
    assert_eq!(settings["verbosity"], "0");
    assert_eq!(settings["maxbytes"], (64u64 << 20).to_string());
}

#[test]
fn unauthenticated_text_clients_get_nothing_under_dash_y() {
    ferrocache_only!();
    let d = Dir::new("y");
    let f = d.write("auth", &format!("alice:{PASSWORD}\n"));
    let mut s = Server::start(&["-Y", &f, "-A"]);
    check_text_refusals(&mut s, login("alice", PASSWORD).as_bytes());
}

#[test]
fn unauthenticated_text_clients_get_nothing_under_dash_s() {
    ferrocache_only!();
    let d = Dir::new("s");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let mut s = Server::start(&["-S", "--sasl-db", &f, "-A"]);
    check_text_refusals(&mut s, login("alice", PASSWORD).as_bytes());
}

#[test]
fn unauthenticated_binary_clients_get_only_version_and_mechanisms() {
    ferrocache_only!();
    let d = Dir::new("sb");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let mut s = Server::start(&["-S", "--sasl-db", &f, "-A"]);
    let mut c = s.conn();
    c.send(&plain_auth("alice", PASSWORD, 1));
    c.expect(&resp(0x21, 0, 1, b"Authenticated"));
    c.send(&req(0x01, b"k", &[0; 8], b"hello", 2));
    let h = c.read_exact_n(24);
    assert_eq!((h[1], h[6], h[7]), (0x01, 0, 0));

    // Allowed before authentication, as memcached: VERSION and the
    // mechanism list (a client needs them to pick a mechanism).
    let mut c = s.conn();
    c.send(&req(0x0b, b"", b"", b"", 3));
    c.expect(&resp(0x0b, 0, 3, b"1.6.21"));
    c.send(&req(0x20, b"", b"", b"", 4));
    c.expect(&resp(0x20, 0, 4, b"SCRAM-SHA-256 SCRAM-SHA-1 PLAIN"));

    // (opcode, key, extras, value)
    type Case<'a> = (u8, &'a [u8], Vec<u8>, &'a [u8]);
    let cases: Vec<Case> = vec![
        (0x00, b"k", vec![], b""),          // GET
        (0x0c, b"k", vec![], b""),          // GETK
        (0x01, b"k", vec![0; 8], b"x"),     // SET
        (0x04, b"k", vec![], b""),          // DELETE
        (0x05, b"n", vec![0; 20], b""),     // INCR
        (0x07, b"", vec![], b""),           // QUIT
        (0x08, b"", vec![], b""),           // FLUSH
        (0x0a, b"", vec![], b""),           // NOOP
        (0x10, b"", vec![], b""),           // STAT
        (0x10, b"settings", vec![], b""),   // STAT settings
        (0x1b, b"", vec![0, 0, 0, 2], b""), // VERBOSITY
        (0x1c, b"k", vec![0; 4], b""),      // TOUCH
        (0x1d, b"k", vec![0; 4], b""),      // GAT
        (0x60, b"cluster", vec![], b""),    // CONFIG_GET
        (0x64, b"cluster", vec![0; 4], b"1\nevil|10.6.6.6|11211\n"),
        (0x66, b"cluster", vec![], b""), // CONFIG_DELETE
        (0x68, b"", vec![], b""),        // CONFIG_LIST
        (0xee, b"", vec![], b""),        // unknown opcode
    ];
    for (op, key, extras, value) in cases {
        let mut c = s.conn();
        c.send(&req(op, key, &extras, value, 9));
        c.expect(&resp(op, 0x20, 9, b"Auth failure."));
        c.expect_closed();
    }
    assert!(s.is_running());
    let mut c = s.conn();
    c.send(&plain_auth("alice", PASSWORD, 1));
    c.expect(&resp(0x21, 0, 1, b"Authenticated"));
    c.send(&req(0x00, b"k", b"", b"", 5));
    let h = c.read_exact_n(24);
    assert_eq!((h[1], h[6], h[7]), (0x00, 0, 0), "the key survived");
    let body = c.read_exact_n(u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize);
    assert_eq!(&body[4..], b"hello");
}

#[test]
fn binary_under_dash_y_alone_serves_version_and_nothing_else() {
    ferrocache_only!();
    let d = Dir::new("yb");
    let f = d.write("auth", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-Y", &f]);
    let mut c = s.conn();
    c.send(&req(0x0b, b"", b"", b"", 3));
    c.expect(&resp(0x0b, 0, 3, b"1.6.21"));
    // No SASL behind -Y: PLAIN with the right password is still refused.
    c.send(&plain_auth("alice", PASSWORD, 4));
    c.expect(&resp(0x21, 0x20, 4, b"Auth failure."));
    c.send(&req(0x00, b"k", b"", b"", 5));
    c.expect(&resp(0x00, 0x20, 5, b"Auth failure."));
    c.expect_closed();
}

// ------------------------------------------------------ authenticated users

#[test]
fn authenticated_users_and_operator_commands() {
    ferrocache_only!();
    let d = Dir::new("ops");
    let f = d.write("auth", &format!("alice:{PASSWORD}\n"));
    let login = login("alice", PASSWORD);
    // -F: flush_all refused; no -A: shutdown refused.
    let mut s = Server::start(&["-Y", &f, "-F"]);
    let mut c = s.conn();
    c.roundtrip(login.as_bytes(), b"STORED\r\n");
    c.roundtrip(b"set k 0 0 1\r\nv\r\n", b"STORED\r\n");
    c.roundtrip(b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n");
    c.roundtrip(b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n");
    c.roundtrip(b"refresh_certs\r\n", b"ERROR\r\n");
    // Any authenticated user may list keys, raise the log level and
    // shrink the cache (as in memcached): there are no roles.
    c.roundtrip(b"stats cachedump 1 0\r\n", b"ITEM k [1 b; 0 s]\r\nEND\r\n");
    c.send(b"lru_crawler metadump all\r\n");
    let dump = c.read_until(b"END\r\n");
    assert!(dump.starts_with(b"key=k exp=-1 la="), "{dump:?}");
    c.roundtrip(b"verbosity 1\r\n", b"OK\r\n");
    c.roundtrip(b"cache_memlimit 100\r\n", b"OK\r\n");
    assert_eq!(c.stats("settings")["maxbytes"], (100u64 << 20).to_string());
    // Authentication is no admin right: the cluster list stays as it is
    // for a client outside --cluster-admin (loopback by default, so shown
    // with a server whose rule excludes it below).
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    assert!(s.is_running());
    drop(c);

    let mut s2 = Server::start(&["-Y", &f, "-A", "--cluster-admin", "10.0.0.0/8"]);
    let mut c = s2.conn();
    c.roundtrip(login.as_bytes(), b"STORED\r\n");
    c.roundtrip(
        b"config set cluster 0 22\r\n1\nevil|10.6.6.6|11211\n\r\n",
        b"CLIENT_ERROR cluster configuration changes are not allowed from this client\r\n",
    );
    c.roundtrip(b"flush_all\r\n", b"OK\r\n");
    // With -A an authenticated user may stop the server.
    c.send(b"shutdown\r\n");
    c.expect_closed();
    assert!(s2.wait_exit(Duration::from_secs(10)).is_some());
    let _ = s.is_running();
}

// ------------------------------------------------- cluster administration

const FORGED: &[u8] = b"ferrocache-cluster 1\npublished 999999 evil|10.6.6.6|11211\nbase 999999 evil|10.6.6.6|11211\nmax 999999\n";

fn sync_request() -> Vec<u8> {
    let mut v = format!("cluster sync {}\r\n", FORGED.len()).into_bytes();
    v.extend_from_slice(FORGED);
    v.extend_from_slice(b"\r\n");
    v
}

#[test]
fn cluster_changes_need_an_admin_or_node_address() {
    ferrocache_only!();
    // A node file lists this node (127.0.0.2) and a peer at 127.0.0.4;
    // admins: 10/8 only.
    let d = Dir::new("cluster");
    let port = free_port().to_string();
    let file = d.write(
        "nodes",
        &format!("node2|127.0.0.2|{port}\nnode4|127.0.0.4|{port}\n"),
    );
    let s = Server::start_ferrocache(
        &[
            "-l",
            "127.0.0.2",
            "-p",
            &port,
            "--cluster-host",
            "node2",
            "--cluster-file",
            &file,
            "--cluster-admin",
            "10.0.0.0/8",
        ],
        1,
    );
    let not_allowed: &[u8] =
        b"CLIENT_ERROR cluster configuration changes are not allowed from this client\r\n";
    let get = |c: &mut TcpStream| ask(c, b"config get cluster\r\n", b"END\r\n");
    let mut c = conn_from("127.0.0.3", s.addr());
    let before = get(&mut c);
    assert!(find(&before, b"|127.0.0.2|").is_some(), "{}", esc(&before));
    let set = b"config set cluster 0 22\r\n1\nevil|10.6.6.6|11211\n\r\n";
    assert_eq!(ask(&mut c, set, b"\r\n"), not_allowed);
    assert_eq!(
        ask(&mut c, b"config delete cluster\r\n", b"\r\n"),
        not_allowed
    );
    // A forged node-to-node exchange from an address that is no node's.
    assert_eq!(ask(&mut c, &sync_request(), b"\r\n"), not_allowed);
    assert_eq!(get(&mut c), before);
    // Binary CONFIG_SET from the same address: auth error, nothing changes.
    let mut b = conn_from("127.0.0.3", s.addr());
    let want = resp(0x64, 0x20, 7, b"Auth failure.");
    b.write_all(&req(
        0x64,
        b"cluster",
        &[0; 4],
        b"1\nevil|10.6.6.6|11211\n",
        7,
    ))
    .unwrap();
    let mut got = vec![0u8; want.len()];
    b.read_exact(&mut got).unwrap();
    assert_eq!(got, want);
    assert_eq!(get(&mut c), before);

    // The exchange trusts the addresses of listed nodes: a process that can
    // connect from such an address can rewrite the list (documented in
    // docs/security.md).
    let mut n = conn_from("127.0.0.4", s.addr());
    let reply = ask(&mut n, &sync_request(), b"END\r\n");
    assert!(reply.starts_with(b"CLUSTER "), "{}", esc_short(&reply));
    assert!(wait_until(Duration::from_secs(5), || find(
        &get(&mut c),
        b"evil|10.6.6.6|11211"
    )
    .is_some()));
}

#[test]
fn cluster_commands_do_not_bypass_authentication() {
    ferrocache_only!();
    // Client and node share 127.0.0.1: admin by address and a known node,
    // so only authentication stands in the way.
    let d = Dir::new("cy");
    let f = d.write("auth", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-Y", &f]);
    for r in [
        sync_request(),
        b"config get cluster\r\n".to_vec(),
        b"config delete cluster\r\n".to_vec(),
        b"config set cluster 0 22\r\n1\nevil|10.6.6.6|11211\n\r\n".to_vec(),
    ] {
        let mut c = s.conn();
        c.send(&r);
        c.expect(b"CLIENT_ERROR unauthenticated\r\n");
        c.expect_closed();
    }
    let mut c = s.conn();
    c.roundtrip(login("alice", PASSWORD).as_bytes(), b"STORED\r\n");
    let list = config_get(&mut c);
    assert!(find(&list, b"evil").is_none(), "{}", esc(&list));
    // After authentication the address rules apply as without auth: this
    // address may administer (there is nothing administered to delete).
    c.roundtrip(b"config delete cluster\r\n", b"NOT_FOUND\r\n");
}

// ------------------------------------------------------------- secrets

#[test]
fn secrets_never_reach_the_log() {
    ferrocache_only!();
    let d = Dir::new("log");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-S", "--sasl-db", &f, "-vv"]);
    // Binary PLAIN: wrong, then right.
    let mut b = s.conn();
    b.send(&plain_auth("alice", WRONG, 1));
    b.expect(&resp(0x21, 0x20, 1, b"Auth failure."));
    b.send(&plain_auth("alice", PASSWORD, 2));
    b.expect(&resp(0x21, 0, 2, b"Authenticated"));
    // Text: wrong, malformed (a password without user), then right.
    let mut t = s.conn();
    t.roundtrip(
        login("alice", WRONG).as_bytes(),
        b"CLIENT_ERROR authentication failure\r\n",
    );
    t.roundtrip(
        format!("set a 0 0 {}\r\n{PASSWORD}\r\n", PASSWORD.len()).as_bytes(),
        b"CLIENT_ERROR bad authentication token format\r\n",
    );
    t.roundtrip(login("alice", PASSWORD).as_bytes(), b"STORED\r\n");
    t.roundtrip(b"stats\r\n", b"STAT pid ");
    // The log has the events...
    assert!(
        wait_until(Duration::from_secs(5), || {
            let e = s.stderr();
            e.matches("authentication failure from 127.0.0.1").count() == 3
                && e.contains("SASL PLAIN authenticated alice")
        }),
        "{}",
        s.stderr()
    );
    assert!(s.stderr().contains("<"), "connection ids are logged");
    // ...and none of the secrets, in clear or base64.
    let b64 = base64::engine::general_purpose::STANDARD;
    let log = s.stderr();
    for secret in [PASSWORD, WRONG] {
        for form in [
            secret.to_string(),
            b64.encode(secret),
            b64.encode(format!("\0alice\0{secret}")),
            b64.encode(format!("alice {secret}")),
        ] {
            assert!(!log.contains(&form), "{form:?} logged:\n{log}");
        }
    }
    // The failure lines name no user either.
    for l in log.lines().filter(|l| l.contains("authentication failure")) {
        assert!(!l.contains("alice"), "{l}");
    }
}

#[test]
fn a_malformed_user_database_is_refused_without_echoing_it() {
    let d = Dir::new("baddb");
    for text in [
        format!("alice {PASSWORD}\n"),
        format!("alice:{PASSWORD}\n:{PASSWORD}\n"),
    ] {
        let f = d.write("users", &text);
        for flag in ["-S", "-Y"] {
            let mut cmd = Command::new(ferrocache_bin());
            cmd.args(["-p", "0", "-l", "127.0.0.1", flag]);
            if flag == "-S" {
                cmd.args(["--sasl-db", &f]);
            } else {
                cmd.arg(&f);
            }
            let (status, out, err) = run_with_timeout(cmd, Duration::from_secs(10));
            assert!(!status.success(), "{flag} {text:?} started");
            assert!(err.contains("line "), "{err}");
            assert!(!err.contains(PASSWORD) && !out.contains(PASSWORD), "{err}");
        }
    }
}

#[test]
fn failed_authentications_are_counted() {
    ferrocache_only!();
    let d = Dir::new("count");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-S", "--sasl-db", &f]);
    let mut b = s.conn();
    for i in 0..5 {
        b.send(&plain_auth("alice", WRONG, i));
        b.expect(&resp(0x21, 0x20, i, b"Auth failure."));
    }
    let mut t = s.conn();
    t.roundtrip(login("alice", PASSWORD).as_bytes(), b"STORED\r\n");
    let st = t.stats("");
    assert_eq!(st["auth_cmds"], "6");
    assert_eq!(st["auth_errors"], "5");
}

// ------------------------------------------------------------------ TLS

mod tls {
    use super::*;
    pub use common::pki::Ca;
    use rcgen::ExtendedKeyUsagePurpose;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

    pub fn ca() -> Ca {
        Ca::new("security CA")
    }

    pub fn leaf(ca: &Ca, client: bool) -> (String, String) {
        let purpose = if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        };
        ca.leaf(&["localhost"], &[purpose])
    }

    /// Server files in `d`; returns the `-o` options and the CA.
    pub fn server_files(d: &Dir, mtls: bool) -> (String, Ca) {
        let ca = ca();
        let (cert, key) = leaf(&ca, false);
        let mut o = format!(
            "ssl_chain_cert={},ssl_key={}",
            d.write("server.pem", &cert),
            d.write("server.key", &key)
        );
        if mtls {
            o.push_str(&format!(
                ",ssl_ca_cert={},ssl_verify_mode=2",
                d.write("ca.pem", &ca.cert.pem())
            ));
        }
        (o, ca)
    }

    pub fn config(ca: &Ca, client: Option<(String, String)>) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.der().clone()).unwrap();
        let b = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match client {
            Some((cert, key)) => b
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .map(|c| c.unwrap())
                        .collect(),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        })
    }

    /// Sends `version` over TLS; returns what came back before an error
    /// or the close.
    pub fn version(addr: SocketAddr, cfg: Arc<ClientConfig>) -> Vec<u8> {
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let conn = ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
        let mut s = StreamOwned::new(conn, sock);
        if s.write_all(b"version\r\n").is_err() {
            return Vec::new();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            match s.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => return got,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.ends_with(b"\r\n") {
                        return got;
                    }
                }
            }
        }
    }
}

#[test]
fn a_plaintext_client_on_a_tls_listener_gets_no_data() {
    ferrocache_only!();
    let d = Dir::new("tls");
    let (opts, ca) = tls::server_files(&d, false);
    let s = Server::start(&["-Z", "-o", &opts, "-v"]);
    let mut c = s.conn();
    c.send(b"set k 0 0 1\r\nv\r\nget k\r\nversion\r\nstats\r\n");
    let (got, closed) = c.read_to_close(Duration::from_secs(5));
    assert!(closed, "still open");
    // At most a TLS alert record (content type 21), never a reply.
    assert!(got.is_empty() || got[0] == 0x15, "{}", esc_short(&got));
    for word in [&b"STORED"[..], b"VALUE", b"VERSION", b"STAT", b"END"] {
        assert!(find(&got, word).is_none(), "{}", esc_short(&got));
    }
    // And nothing was stored.
    let reply = tls::version(s.addr(), tls::config(&ca, None));
    assert!(reply.starts_with(b"VERSION "), "{}", esc_short(&reply));
    // With -v the refusal is logged with the client's address.
    wait_log(&s, "TLS error from 127.0.0.1: ", 0);
}

#[test]
fn mtls_refuses_a_client_without_a_certificate() {
    ferrocache_only!();
    let d = Dir::new("mtls");
    let (opts, ca) = tls::server_files(&d, true);
    let s = Server::start(&["-Z", "-o", &opts]);
    let no_cert = tls::version(s.addr(), tls::config(&ca, None));
    assert!(no_cert.is_empty(), "{}", esc_short(&no_cert));
    // A certificate from another CA: refused too.
    let other = tls::ca();
    let foreign = tls::version(s.addr(), tls::config(&ca, Some(tls::leaf(&other, true))));
    assert!(foreign.is_empty(), "{}", esc_short(&foreign));
    // The control: a certificate from the configured CA is served.
    let ok = tls::version(s.addr(), tls::config(&ca, Some(tls::leaf(&ca, true))));
    assert!(ok.starts_with(b"VERSION "), "{}", esc_short(&ok));
}

// ------------------------------------------------------ resource pinning

#[test]
fn a_client_that_closes_mid_request_frees_its_connection() {
    ferrocache_only!();
    let s = Server::start(&[]);
    let mut watch = s.conn();
    for i in 0..20 {
        // An established connection (one request answered), then a partial
        // value, or a complete noreply command, and the close in one go.
        let mut c = s.conn();
        c.roundtrip(b"version\r\n", b"VERSION ");
        let tail: &[u8] = if i % 2 == 0 {
            b"set half 0 0 100\r\nabc"
        } else {
            b"set whole 0 0 1 noreply\r\nx\r\n"
        };
        c.send(tail);
        c.stream.shutdown(Shutdown::Both).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(5), || watch.stat("curr_connections")
            == 1),
        "connections left open: {}",
        watch.stat("curr_connections")
    );
    watch.roundtrip(b"get whole\r\n", b"VALUE whole 0 1\r\nx\r\nEND\r\n");
    watch.roundtrip(b"get half\r\n", b"END\r\n");
}

#[test]
fn unauthenticated_clients_cannot_make_the_server_buffer_values() {
    ferrocache_only!();
    let d = Dir::new("preauth");
    // The longest credential the database takes (1024-byte user and
    // secret) still fits what an unauthenticated connection may send.
    let user = "u".repeat(1024);
    let pass = "p".repeat(1024);
    let f = d.write("users", &format!("{user}:{pass}\nalice:{PASSWORD}\n"));
    let s = Server::start(&["-S", "--sasl-db", &f]);
    let mut c = s.conn();
    c.roundtrip(login(&user, &pass).as_bytes(), b"STORED\r\n");
    let mut b = s.conn();
    b.send(&plain_auth(&user, &pass, 1));
    b.expect(&resp(0x21, 0, 1, b"Authenticated"));

    // A text `set` announcing a large value: refused once 8 KiB of it are
    // buffered, not after the whole value.
    let mut c = s.conn();
    let mut big = b"set a 0 0 1000000\r\n".to_vec();
    big.extend(vec![b'x'; 20_000]);
    c.send(&big);
    c.expect(b"CLIENT_ERROR unauthenticated\r\n");
    c.expect_closed();
    // The same with a binary SET frame.
    let mut b = s.conn();
    let frame = req(0x01, b"k", &[0; 8], &vec![b'x'; 1_000_000], 3);
    b.send(&frame[..20_000]);
    b.expect(&resp(0x01, 0x20, 3, b"Auth failure."));
    b.expect_closed();
    // After authentication large values are fine.
    let mut c = s.conn();
    c.roundtrip(login("alice", PASSWORD).as_bytes(), b"STORED\r\n");
    let mut set = b"set k 0 0 100000\r\n".to_vec();
    set.extend(vec![b'x'; 100_000]);
    set.extend_from_slice(b"\r\n");
    c.roundtrip(&set, b"STORED\r\n");
}

// ------------------------------------------------------ guessing passwords

/// The `auth_throttled` counter of a server, read over an authenticated
/// text connection.
fn throttled(s: &Server) -> String {
    let mut t = s.conn();
    t.roundtrip(login("alice", PASSWORD).as_bytes(), b"STORED\r\n");
    t.stats("")["auth_throttled"].clone()
}

#[test]
fn sasl_guessing_is_throttled_per_address() {
    ferrocache_only!();
    let d = Dir::new("throttle-sasl");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&[
        "-S",
        "--sasl-db",
        &f,
        "-o",
        "auth_fail_burst=3,auth_fail_rate=1",
    ]);
    let failure = |op| resp(op, 0x20, 7, b"Auth failure.");
    let mut guesser = conn_from("127.0.0.2", s.addr());
    for _ in 0..3 {
        let got = ask(
            &mut guesser,
            &plain_auth("alice", WRONG, 7),
            b"Auth failure.",
        );
        assert_eq!(got, failure(0x21));
    }
    // The budget is spent: even the right password is refused unchecked,
    // with the same reply, on this connection and on a new one.
    let got = ask(
        &mut guesser,
        &plain_auth("alice", PASSWORD, 7),
        b"Auth failure.",
    );
    assert_eq!(got, failure(0x21));
    let mut again = conn_from("127.0.0.2", s.addr());
    let got = ask(
        &mut again,
        &plain_auth("alice", PASSWORD, 7),
        b"Auth failure.",
    );
    assert_eq!(got, failure(0x21));
    // Another address is not affected.
    let mut other = conn_from("127.0.0.3", s.addr());
    let got = ask(
        &mut other,
        &plain_auth("alice", PASSWORD, 7),
        b"Authenticated",
    );
    assert_eq!(got, resp(0x21, 0, 7, b"Authenticated"));
    assert_eq!(throttled(&s), "2");
}

#[test]
fn text_guessing_is_throttled_per_address() {
    ferrocache_only!();
    let d = Dir::new("throttle-text");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-Y", &f, "-o", "auth_fail_burst=2,auth_fail_rate=1"]);
    let refused = b"CLIENT_ERROR authentication failure\r\n";
    let mut guesser = conn_from("127.0.0.2", s.addr());
    for pass in [WRONG, WRONG, PASSWORD] {
        let got = ask(&mut guesser, login("alice", pass).as_bytes(), b"\r\n");
        assert_eq!(got, refused, "{pass}");
    }
    assert_eq!(throttled(&s), "1");
}

#[test]
fn a_successful_login_restores_the_budget() {
    ferrocache_only!();
    let d = Dir::new("throttle-reset");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-Y", &f, "-o", "auth_fail_burst=2,auth_fail_rate=1"]);
    let mut c = conn_from("127.0.0.2", s.addr());
    let wrong = login("alice", WRONG);
    let right = login("alice", PASSWORD);
    let refused: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
    // One failure, a success, then two more failures that are still checked
    // (the third attempt shows they were: the right password gets through).
    assert_eq!(ask(&mut c, wrong.as_bytes(), b"\r\n"), refused);
    assert_eq!(ask(&mut c, right.as_bytes(), b"\r\n"), b"STORED\r\n");
    let mut d2 = conn_from("127.0.0.2", s.addr());
    assert_eq!(ask(&mut d2, wrong.as_bytes(), b"\r\n"), refused);
    assert_eq!(ask(&mut d2, right.as_bytes(), b"\r\n"), b"STORED\r\n");
    assert_eq!(throttled(&s), "0");
}

#[test]
fn unauthenticated_connections_close_after_auth_timeout() {
    ferrocache_only!();
    let d = Dir::new("auth-timeout");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-Y", &f, "-o", "auth_timeout=1"]);
    let mut authed = s.conn();
    authed.roundtrip(login("alice", PASSWORD).as_bytes(), b"STORED\r\n");
    let mut silent = s.conn();
    let mut trickling = s.conn();
    trickling.send(b"set a 0 0 1");
    // Closed once the clock passes accept + 1 s (a one-second sweep).
    silent.expect_closed();
    trickling.expect_closed();
    // The authenticated connection is still served.
    authed.roundtrip(b"get nothing\r\n", b"END\r\n");
}

// ------------------------------------------------------ changing passwords

/// Waits until the server's stderr has one more line containing `what`
/// than `before` lines did.
fn wait_log(s: &Server, what: &str, before: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let err = s.stderr();
        if err.matches(what).count() > before {
            return err;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no '{what}' in the log:\n{err}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn sighup_reloads_the_sasl_database_without_a_restart() {
    ferrocache_only!();
    const NEW: &str = "Lemur-Kettle-17";
    let d = Dir::new("reload-sasl");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-S", "--sasl-db", &f]);
    let mut kept = s.conn();
    kept.send(&plain_auth("alice", PASSWORD, 1));
    kept.expect(&resp(0x21, 0, 1, b"Authenticated"));
    kept.send(&req(0x0a, b"", b"", b"", 2));
    kept.expect(&resp(0x0a, 0, 2, b""));

    d.write("users", &format!("alice:{NEW}\nbob:{PASSWORD}\n"));
    s.signal(libc::SIGHUP);
    let log = wait_log(&s, "reloaded SASL database: 2 users", 0);
    assert!(!log.contains(NEW) && !log.contains("bob"), "{log}");
    let mut c = s.conn();
    c.send(&plain_auth("alice", PASSWORD, 3));
    c.expect(&resp(0x21, 0x20, 3, b"Auth failure."));
    c.send(&plain_auth("alice", NEW, 4));
    c.expect(&resp(0x21, 0, 4, b"Authenticated"));
    // The connection authenticated before the reload is still served.
    kept.send(&req(0x0a, b"", b"", b"", 5));
    kept.expect(&resp(0x0a, 0, 5, b""));

    // A malformed file changes nothing and is not echoed.
    d.write("users", &format!("alice {PASSWORD}\n"));
    s.signal(libc::SIGHUP);
    let log = wait_log(&s, "reload failed, the current users stay", 0);
    assert!(log.contains("line 1"), "{log}");
    assert!(!log.contains(&format!("alice {PASSWORD}")), "{log}");
    let mut c = s.conn();
    c.send(&plain_auth("alice", NEW, 6));
    c.expect(&resp(0x21, 0, 6, b"Authenticated"));
}

#[test]
fn sighup_reloads_the_text_auth_file_like_memcached() {
    ferrocache_only!();
    const NEW: &str = "Lemur-Kettle-17";
    let d = Dir::new("reload-ascii");
    let f = d.write("users", &format!("alice:{PASSWORD}\n"));
    let s = Server::start(&["-Y", &f]);
    let mut c = s.conn();
    c.roundtrip(login("alice", PASSWORD).as_bytes(), b"STORED\r\n");
    d.write("users", &format!("alice:{NEW}\n"));
    s.signal(libc::SIGHUP);
    wait_log(&s, "reloaded -Y file: 1 users", 0);
    let mut c = s.conn();
    c.roundtrip(
        login("alice", PASSWORD).as_bytes(),
        b"CLIENT_ERROR authentication failure\r\n",
    );
    c.roundtrip(login("alice", NEW).as_bytes(), b"STORED\r\n");
    // More than memcached's 8 entries: refused, the current file stays.
    let many: String = (0..9).map(|i| format!("u{i}:{NEW}\n")).collect();
    d.write("users", &many);
    s.signal(libc::SIGHUP);
    wait_log(&s, "at most 8 entries", 0);
    let mut c = s.conn();
    c.roundtrip(login("alice", NEW).as_bytes(), b"STORED\r\n");
}
