//! TLS (`-Z`) with certificates generated at test time: text and binary
//! over TLS, `notls:` listeners, plaintext/TLS mix-ups, client certificates
//! (mTLS), `refresh_certs`, TLS with SASL, a handshake that never completes
//! next to working clients, `ssl_min_version`, and real clients (pymemcache
//! with an `ssl` context, `openssl s_client`).

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pki::Ca;
use rcgen::ExtendedKeyUsagePurpose;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A CA and what it signed, written to a fresh directory.
struct Pki {
    dir: PathBuf,
}

/// A leaf for localhost signed by `ca`: (cert PEM, key PEM).
fn leaf(ca: &Ca, client: bool) -> (String, String) {
    let purpose = if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    };
    ca.leaf(&["localhost", "127.0.0.1"], &[purpose])
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "ferrocache-tls-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Pki { dir }
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// Server certificate + key signed by a fresh CA; returns the CA.
    fn server(&self) -> Ca {
        let ca = Ca::new("ferrocache test CA");
        let (cert, key) = leaf(&ca, false);
        self.write("server.pem", &cert);
        self.write("server.key", &key);
        self.write("ca.pem", &ca.cert.pem());
        ca
    }

    fn ssl_opts(&self) -> String {
        format!(
            "ssl_chain_cert={},ssl_key={}",
            self.path("server.pem"),
            self.path("server.key")
        )
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client_config(
    ca_pem: &str,
    client: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
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

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn tls_connect(addr: std::net::SocketAddr, cfg: Arc<ClientConfig>) -> Tls {
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let conn = ClientConnection::new(cfg, ServerName::try_from("localhost").unwrap()).unwrap();
    StreamOwned::new(conn, sock)
}

/// Sends `send` and reads until `want` has arrived (or fails). The reply
/// must start with `want`; anything after it in the same read is dropped.
fn tls_roundtrip(s: &mut Tls, send: &[u8], want: &[u8]) -> Result<(), String> {
    s.write_all(send).map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want.len() {
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("closed after {}", esc(&got))),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{e} after {}", esc(&got))),
        }
    }
    if !got.starts_with(want) {
        return Err(format!("expected {} got {}", esc(want), esc(&got)));
    }
    Ok(())
}

fn tls13_12() -> Vec<&'static rustls::SupportedProtocolVersion> {
    vec![&rustls::version::TLS13, &rustls::version::TLS12]
}

#[test]
fn text_and_binary_over_tls_with_a_notls_listener() {
    let pki = Pki::new();
    let ca = pki.server();
    let s = Server::start_ferrocache(
        &[
            "-l",
            "127.0.0.1,notls:127.0.0.2",
            "-Z",
            "-o",
            &pki.ssl_opts(),
        ],
        2,
    );
    let cfg = client_config(&ca.cert.pem(), None, &tls13_12());
    let mut c = tls_connect(s.addrs()[0], cfg.clone());
    tls_roundtrip(&mut c, b"set k 0 0 5\r\nhello\r\n", b"STORED\r\n").unwrap();
    tls_roundtrip(&mut c, b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n").unwrap();
    // A large value crosses many records both ways.
    let big = vec![b'x'; 300_000];
    let mut set = b"set big 0 0 300000\r\n".to_vec();
    set.extend_from_slice(&big);
    set.extend_from_slice(b"\r\n");
    tls_roundtrip(&mut c, &set, b"STORED\r\n").unwrap();
    let mut want = b"VALUE big 0 300000\r\n".to_vec();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"\r\nEND\r\n");
    tls_roundtrip(&mut c, b"get big\r\n", &want).unwrap();
    // Binary over TLS: the first plaintext byte picks the codec.
    let mut b = tls_connect(s.addrs()[0], cfg);
    let mut noop = vec![0x80, 0x0a];
    noop.extend_from_slice(&[0; 22]);
    let mut reply = vec![0x81, 0x0a];
    reply.extend_from_slice(&[0; 22]);
    tls_roundtrip(&mut b, &noop, &reply).unwrap();
    // The notls listener speaks plain TCP to the same store.
    let mut p = Conn::connect(s.addrs()[1]);
    p.roundtrip(b"get k\r\n", b"VALUE k 0 5\r\nhello\r\nEND\r\n");
    let st = p.stats("settings");
    assert_eq!(st["ssl_enabled"], "yes");
    assert_eq!(st["ssl_min_version"], "tlsv1.2");
    assert!(p.stats("").contains_key("ssl_handshake_errors"));
}

#[test]
fn plaintext_on_tls_and_tls_on_plaintext_fail_cleanly() {
    let pki = Pki::new();
    let ca = pki.server();
    let s = Server::start_ferrocache(
        &[
            "-l",
            "127.0.0.1,notls:127.0.0.2",
            "-Z",
            "-o",
            &pki.ssl_opts(),
        ],
        2,
    );
    // Plaintext to the TLS listener: never answered in plaintext, closed.
    let mut c = Conn::connect(s.addrs()[0]);
    c.send(b"get k\r\nversion\r\n");
    let (got, closed) = c.read_to_close(Duration::from_secs(5));
    assert!(closed, "left open");
    assert!(!got.windows(3).any(|w| w == b"END"), "{}", esc(&got));
    // TLS to the plain listener: the handshake fails on the client side.
    let cfg = client_config(&ca.cert.pem(), None, &tls13_12());
    let mut t = tls_connect(s.addrs()[1], cfg.clone());
    assert!(tls_roundtrip(&mut t, b"version\r\n", b"VERSION").is_err());
    drop(t);
    // Both listeners still serve.
    let mut t = tls_connect(s.addrs()[0], cfg);
    tls_roundtrip(&mut t, b"set h 0 0 1\r\nv\r\n", b"STORED\r\n").unwrap();
    let mut p = Conn::connect(s.addrs()[1]);
    p.roundtrip(b"get h\r\n", b"VALUE h 0 1\r\nv\r\nEND\r\n");
    assert!(p.stat("ssl_handshake_errors") >= 1);
}

#[test]
fn a_stalled_handshake_does_not_block_the_worker() {
    let pki = Pki::new();
    let ca = pki.server();
    let s = Server::start(&["-t", "1", "-Z", "-o", &pki.ssl_opts()]);
    // Half a ClientHello, then silence; and a connection that sends nothing.
    let mut stalled = TcpStream::connect(s.addr()).unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let _silent = TcpStream::connect(s.addr()).unwrap();
    let cfg = client_config(&ca.cert.pem(), None, &tls13_12());
    let started = Instant::now();
    for i in 0..5 {
        let mut c = tls_connect(s.addr(), cfg.clone());
        tls_roundtrip(
            &mut c,
            format!("set k{i} 0 0 1\r\nv\r\n").as_bytes(),
            b"STORED\r\n",
        )
        .unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn client_certificates_mtls() {
    let pki = Pki::new();
    let ca = pki.server();
    let client_ca = Ca::new("client CA");
    pki.write("client-ca.pem", &client_ca.cert.pem());
    let (ccert, ckey) = leaf(&client_ca, true);
    let other = Ca::new("someone else");
    let (ocert, okey) = leaf(&other, true);
    let opts = format!(
        "{},ssl_ca_cert={},ssl_verify_mode=3",
        pki.ssl_opts(),
        pki.path("client-ca.pem")
    );
    let s = Server::start(&["-Z", "-o", &opts]);
    let good = client_config(&ca.cert.pem(), Some((&ccert, &ckey)), &tls13_12());
    let mut c = tls_connect(s.addr(), good);
    tls_roundtrip(&mut c, b"version\r\n", b"VERSION ").unwrap();
    for (what, cfg) in [
        (
            "no certificate",
            client_config(&ca.cert.pem(), None, &tls13_12()),
        ),
        (
            "certificate from another CA",
            client_config(&ca.cert.pem(), Some((&ocert, &okey)), &tls13_12()),
        ),
    ] {
        let mut c = tls_connect(s.addr(), cfg);
        let r = tls_roundtrip(&mut c, b"version\r\n", b"VERSION ");
        assert!(r.is_err(), "{what} accepted");
    }
    // Mode 1 (request): a certificate is optional.
    let opts1 = opts.replace("ssl_verify_mode=3", "ssl_verify_mode=1");
    let s1 = Server::start(&["-Z", "-o", &opts1]);
    let mut c = tls_connect(s1.addr(), client_config(&ca.cert.pem(), None, &tls13_12()));
    tls_roundtrip(&mut c, b"version\r\n", b"VERSION ").unwrap();
}

#[test]
fn refresh_certs_reloads_without_restart() {
    let pki = Pki::new();
    let ca1 = pki.server();
    let s = Server::start_ferrocache(
        &[
            "-l",
            "127.0.0.1,notls:127.0.0.2",
            "-Z",
            "-o",
            &pki.ssl_opts(),
        ],
        2,
    );
    let cfg1 = client_config(&ca1.cert.pem(), None, &tls13_12());
    let mut c = tls_connect(s.addrs()[0], cfg1.clone());
    tls_roundtrip(&mut c, b"version\r\n", b"VERSION ").unwrap();
    // New files from another CA; the running server still shows the old.
    let ca2 = pki.server();
    let cfg2 = client_config(&ca2.cert.pem(), None, &tls13_12());
    let mut old = tls_connect(s.addrs()[0], cfg1.clone());
    tls_roundtrip(&mut old, b"version\r\n", b"VERSION ").unwrap();
    let mut p = Conn::connect(s.addrs()[1]);
    p.roundtrip(b"refresh_certs\r\n", b"OK\r\n");
    let mut new = tls_connect(s.addrs()[0], cfg2);
    tls_roundtrip(&mut new, b"version\r\n", b"VERSION ").unwrap();
    let mut stale = tls_connect(s.addrs()[0], cfg1);
    assert!(tls_roundtrip(&mut stale, b"version\r\n", b"VERSION ").is_err());
    // Established connections carry on.
    tls_roundtrip(&mut c, b"version\r\n", b"VERSION ").unwrap();
    // A broken file: refused, the loaded certificate stays.
    pki.write("server.pem", "not a certificate\n");
    p.roundtrip(
        b"refresh_certs\r\n",
        b"ERROR: failed to refresh certificates\r\n",
    );
    let cfg2 = client_config(&ca2.cert.pem(), None, &tls13_12());
    let mut still = tls_connect(s.addrs()[0], cfg2);
    tls_roundtrip(&mut still, b"version\r\n", b"VERSION ").unwrap();
    // Without -Z the command is unknown.
    let plain = Server::start(&[]);
    plain.conn().roundtrip(b"refresh_certs\r\n", b"ERROR\r\n");
}

#[test]
fn refresh_certs_takes_the_cluster_certificates_with_the_servers_or_neither() {
    let pki = Pki::new();
    let ca1 = pki.server();
    let cluster_ca = pki.write("cluster-ca.pem", &ca1.cert.pem());
    let opts = format!("{},cluster_ca_cert={cluster_ca}", pki.ssl_opts());
    let s = Server::start_ferrocache(&["-l", "127.0.0.1,notls:127.0.0.2", "-Z", "-o", &opts], 2);
    let cfg1 = client_config(&ca1.cert.pem(), None, &tls13_12());
    let mut p = Conn::connect(s.addrs()[1]);
    // New server files, but a cluster CA file without a certificate: the
    // server's new files are not taken either.
    let ca2 = pki.server();
    let cfg2 = client_config(&ca2.cert.pem(), None, &tls13_12());
    pki.write("cluster-ca.pem", "not a certificate\n");
    p.roundtrip(
        b"refresh_certs\r\n",
        b"ERROR: failed to refresh certificates\r\n",
    );
    let mut old = tls_connect(s.addrs()[0], cfg1.clone());
    tls_roundtrip(&mut old, b"version\r\n", b"VERSION ").unwrap();
    let mut early = tls_connect(s.addrs()[0], cfg2.clone());
    assert!(tls_roundtrip(&mut early, b"version\r\n", b"VERSION ").is_err());
    let log = s.stderr();
    assert!(
        log.contains(&format!(
            "refresh_certs failed: cluster TLS: no CA certificate in {cluster_ca}: empty file"
        )),
        "{log}"
    );
    // Mended, both are taken.
    pki.write("cluster-ca.pem", &ca2.cert.pem());
    p.roundtrip(b"refresh_certs\r\n", b"OK\r\n");
    let mut new = tls_connect(s.addrs()[0], cfg2);
    tls_roundtrip(&mut new, b"version\r\n", b"VERSION ").unwrap();
    let mut stale = tls_connect(s.addrs()[0], cfg1);
    assert!(tls_roundtrip(&mut stale, b"version\r\n", b"VERSION ").is_err());
}

#[test]
fn tls_and_sasl_together() {
    let pki = Pki::new();
    let ca = pki.server();
    let users = pki.write("users", "alice:s3cret\n");
    let s = Server::start(&["-Z", "-o", &pki.ssl_opts(), "-S", "--sasl-db", &users]);
    let cfg = client_config(&ca.cert.pem(), None, &tls13_12());
    let frame = |op: u8, key: &[u8], value: &[u8]| frames::request(op, key, &[], value, 0, 0);
    let status =
        |op: u8, st: u8, value: &[u8]| frames::response(op, st.into(), 0, 0, &[], &[], value);
    let mut c = tls_connect(s.addr(), cfg.clone());
    tls_roundtrip(
        &mut c,
        &frame(0x21, b"PLAIN", b"\0alice\0wrong"),
        &status(0x21, 0x20, b"Auth failure."),
    )
    .unwrap();
    tls_roundtrip(
        &mut c,
        &frame(0x21, b"PLAIN", b"\0alice\0s3cret"),
        &status(0x21, 0, b"Authenticated"),
    )
    .unwrap();
    tls_roundtrip(&mut c, &frame(0x0a, b"", b""), &status(0x0a, 0, b"")).unwrap();
    let mut u = tls_connect(s.addr(), cfg);
    tls_roundtrip(
        &mut u,
        &frame(0x0a, b"", b""),
        &status(0x0a, 0x20, b"Auth failure."),
    )
    .unwrap();
}

#[test]
fn ssl_min_version_tls13_refuses_tls12() {
    let pki = Pki::new();
    let ca = pki.server();
    let opts = format!("{},ssl_min_version=3", pki.ssl_opts());
    let s = Server::start(&["-Z", "-o", &opts]);
    let v12 = client_config(&ca.cert.pem(), None, &[&rustls::version::TLS12]);
    let mut c = tls_connect(s.addr(), v12);
    assert!(tls_roundtrip(&mut c, b"version\r\n", b"VERSION ").is_err());
    let v13 = client_config(&ca.cert.pem(), None, &[&rustls::version::TLS13]);
    let mut c = tls_connect(s.addr(), v13);
    tls_roundtrip(&mut c, b"version\r\n", b"VERSION ").unwrap();
}

#[test]
fn bad_tls_settings_refuse_to_start() {
    let pki = Pki::new();
    pki.server();
    let bad_key = format!(
        "ssl_chain_cert={},ssl_key={}",
        pki.path("server.pem"),
        pki.path("ca.pem")
    );
    let cases: Vec<Vec<String>> = vec![
        vec!["-Z".into()],
        vec![
            "-Z".into(),
            "-o".into(),
            "ssl_chain_cert=/nonexistent.pem".into(),
        ],
        vec!["-Z".into(), "-o".into(), bad_key],
        vec![
            "-Z".into(),
            "-o".into(),
            format!("{},ssl_verify_mode=2", pki.ssl_opts()),
        ],
        vec![
            "-Z".into(),
            "-o".into(),
            format!("{},ssl_verify_mode=7", pki.ssl_opts()),
        ],
    ];
    for args in cases {
        let out = Command::new(ferrocache_bin())
            .args(["-p", "0", "-l", "127.0.0.1"])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        assert!(!out.stderr.is_empty());
    }
}

fn require(check: &mut Command, what: &str) {
    let ok = check.output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "{what} is not installed; run `sh tests/interop/auth-deps.sh` (as root) to install it"
    );
}

#[test]
fn pymemcache_with_an_ssl_context() {
    require(
        Command::new("python3").args(["-c", "import pymemcache"]),
        "pymemcache (pip)",
    );
    let pki = Pki::new();
    pki.server();
    let s = Server::start(&["-Z", "-o", &pki.ssl_opts()]);
    let script = r#"
import ssl, sys
from pymemcache.client.base import Client
ctx = ssl.create_default_context(cafile=sys.argv[2])
c = Client(("127.0.0.1", int(sys.argv[1])), tls_context=ctx)
c.set("py", "tls")
assert c.get("py") == b"tls", c.get("py")
assert c.incr("n", 1) is None
c.close()
print("PASS")
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, &s.port().to_string(), &pki.path("ca.pem")]);
    let (st, out, err) = run_with_timeout(cmd, Duration::from_secs(20));
    assert!(st.success() && out.contains("PASS"), "{out}{err}");
}

fn s_client(port: u16, ca: &str, extra: &[&str]) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-ign_eof", "-verify_return_error"])
        .args(["-connect", &format!("127.0.0.1:{port}"), "-CAfile", ca])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"version\r\nquit\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn openssl_s_client_with_and_without_a_client_certificate() {
    require(Command::new("openssl").arg("version"), "openssl (apt)");
    let pki = Pki::new();
    pki.server();
    let client_ca = Ca::new("client CA");
    pki.write("client-ca.pem", &client_ca.cert.pem());
    let (ccert, ckey) = leaf(&client_ca, true);
    let cert = pki.write("client.pem", &ccert);
    let key = pki.write("client.key", &ckey);
    let opts = format!(
        "{},ssl_ca_cert={},ssl_verify_mode=3",
        pki.ssl_opts(),
        pki.path("client-ca.pem")
    );
    let s = Server::start(&["-Z", "-o", &opts]);
    let ca = pki.path("ca.pem");
    let ok = s_client(s.port(), &ca, &["-cert", &cert, "-key", &key]);
    assert!(ok.starts_with("VERSION "), "{ok}");
    let refused = s_client(s.port(), &ca, &[]);
    assert!(!refused.contains("VERSION"), "{refused}");
    let _ = Path::new(&ca);
}

#[test]
fn sighup_reloads_the_certificates() {
    let pki = Pki::new();
    let ca1 = pki.server();
    let s = Server::start_ferrocache(&["-l", "127.0.0.1", "-Z", "-o", &pki.ssl_opts()], 1);
    let cfg1 = client_config(&ca1.cert.pem(), None, &tls13_12());
    let mut c = tls_connect(s.addr(), cfg1.clone());
    tls_roundtrip(&mut c, b"version\r\n", b"VERSION ").unwrap();
    let ca2 = pki.server();
    s.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.stderr().contains("reloaded TLS certificates") {
        assert!(
            Instant::now() < deadline,
            "no reload logged:\n{}",
            s.stderr()
        );
        std::thread::yield_now();
    }
    let cfg2 = client_config(&ca2.cert.pem(), None, &tls13_12());
    let mut new = tls_connect(s.addr(), cfg2);
    tls_roundtrip(&mut new, b"version\r\n", b"VERSION ").unwrap();
    let mut stale = tls_connect(s.addr(), cfg1);
    assert!(tls_roundtrip(&mut stale, b"version\r\n", b"VERSION ").is_err());
    tls_roundtrip(&mut c, b"version\r\n", b"VERSION ").unwrap();
}
