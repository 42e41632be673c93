//! The throughput cost of TLS: the same closed-loop load (each client sends
//! one `get` of a 100-byte value and waits for the reply; a 10 % share of
//! `set`s) over plain TCP and over TLS 1.3 against one ferrocache
//! (`-t 2`), plus the cost of a full TLS handshake per connection.
//!
//! `cargo bench --bench tls_throughput` (clients: env `TLS_CLIENTS`, default
//! 8; seconds per run: `TLS_SECONDS`, default 5). Certificates are made at
//! run time.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn connect(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> Box<dyn Stream> {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_nodelay(true).unwrap();
    match tls {
        None => Box::new(sock),
        Some(cfg) => {
            let c = ClientConnection::new(cfg.clone(), ServerName::try_from("localhost").unwrap())
                .unwrap();
            Box::new(StreamOwned::new(c, sock))
        }
    }
}

/// Reads until `end` ends the buffer.
fn read_until(s: &mut dyn Stream, buf: &mut Vec<u8>, end: &[u8]) {
    buf.clear();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(end) {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn load(addr: SocketAddr, tls: Option<Arc<ClientConfig>>, clients: u64, secs: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let tls = tls.clone();
            std::thread::spawn(move || {
                let mut s = connect(addr, tls.as_ref());
                let mut buf = Vec::new();
                let value = [b'v'; 100];
                let mut ops = 0u64;
                while Instant::now() < deadline {
                    for i in 0..100u64 {
                        let key = format!("key:{t}:{}", i % 50);
                        if i % 10 == 0 {
                            let mut req = format!("set {key} 0 0 100\r\n").into_bytes();
                            req.extend_from_slice(&value);
                            req.extend_from_slice(b"\r\n");
                            s.write_all(&req).unwrap();
                            read_until(&mut *s, &mut buf, b"\r\n");
                        } else {
                            s.write_all(format!("get {key}\r\n").as_bytes()).unwrap();
                            read_until(&mut *s, &mut buf, b"END\r\n");
                        }
                        ops += 1;
                    }
                }
                ops
            })
        })
        .collect();
    let ops: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    ops as f64 / secs as f64
}

fn handshakes(addr: SocketAddr, tls: Option<Arc<ClientConfig>>, secs: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut n = 0u64;
    let mut buf = Vec::new();
    while Instant::now() < deadline {
        let mut s = connect(addr, tls.as_ref());
        s.write_all(b"version\r\n").unwrap();
        read_until(&mut *s, &mut buf, b"\r\n");
        n += 1;
    }
    n as f64 / secs as f64
}

fn main() {
    let clients = env("TLS_CLIENTS", 8);
    let secs = env("TLS_SECONDS", 5);
    let dir = std::env::temp_dir().join(format!("ferrocache-tls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );

    let opts = format!(
        "ssl_chain_cert={},ssl_key={}",
        cert_path.display(),
        key_path.display()
    );
    let plain = support::ferrocache(&["-t", "2"]);
    let tls = support::ferrocache(&["-t", "2", "-Z", "-o", &opts]);

    let p = load(plain.addr, None, clients, secs);
    let t = load(tls.addr, Some(cfg.clone()), clients, secs);
    println!("request/reply, {clients} clients, {secs} s each (100-byte values, 90 % get):");
    println!("  plain TCP  {p:>10.0} ops/s");
    println!(
        "  TLS 1.3    {t:>10.0} ops/s   ({:.1} % of plain)",
        100.0 * t / p
    );
    let hp = handshakes(plain.addr, None, secs.min(3));
    let ht = handshakes(tls.addr, Some(cfg), secs.min(3));
    println!("new connection + one request, sequential:");
    println!("  plain TCP  {hp:>10.0} conns/s");
    println!("  TLS 1.3    {ht:>10.0} conns/s");
    let _ = std::fs::remove_dir_all(&dir);
}
