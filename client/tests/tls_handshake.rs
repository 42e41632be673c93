//! The TLS connector against peers that break the handshake: one that closes at once, one
//! that never answers, one that answers in plaintext. Each fails within the timeouts with a
//! typed error; none hangs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ferrocache_client::{Client, Error, TlsConfig, TlsErrorKind};

fn ca_pem() -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

/// A listener whose connections get `behaviour`; returns its address.
fn peer(behaviour: fn(std::net::TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || behaviour(stream));
        }
    });
    address
}

fn tls_client(address: &str) -> Client {
    Client::builder()
        .server(address)
        .connector(Arc::new(TlsConfig::new().ca_pem(ca_pem()).build().unwrap()))
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

#[test]
fn broken_handshakes_fail_fast_and_typed() {
    // Closes at once.
    let closing = peer(drop);
    match tls_client(&closing).get("k") {
        Err(Error::Connect { source, .. }) => {
            assert!(
                matches!(
                    source.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ),
                "{source:?}"
            )
        }
        other => panic!("{other:?}"),
    }

    // Reads the hello and says nothing: the read timeout ends it.
    let silent = peer(|mut s| {
        let mut buf = [0u8; 4096];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let started = Instant::now();
    assert!(matches!(
        tls_client(&silent).get("k"),
        Err(Error::Connect { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Answers like a text server: not TLS.
    let plaintext = peer(|mut s| {
        let mut buf = [0u8; 4096];
        if s.read(&mut buf).is_ok() {
            let _ = s.write_all(b"ERROR\r\n");
            let _ = s.read(&mut buf);
        }
    });
    match tls_client(&plaintext).get("k") {
        Err(Error::Tls { source, .. }) => assert_eq!(source.kind, TlsErrorKind::Handshake),
        other => panic!("{other:?}"),
    }
}
