//! TLS with rustls: the server configuration built from the `ssl_*`
//! settings (reloadable with `refresh_certs`), and the non-blocking
//! transport helpers the connection uses.
//!
//! A TLS connection is a `rustls::ServerConnection` driven by the worker that
//! owns the socket: records are read and written only when the socket is
//! ready, so a slow or stalled handshake never blocks the worker's other
//! connections. Plain-TCP connections never touch this module.
//!
//! Never: blocks on a socket, logs key material, or reads certificate files
//! outside start-up and `refresh_certs`.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::clock::RelTime;
use crate::config::TlsSettings;

/// Plaintext plus records rustls may hold per connection before a write
/// reports "would block" (memcached's `ssl_wbuf_size` is 16 KB; a little
/// more keeps large values flowing).
const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// The server's TLS state, shared by all workers.
pub struct Tls {
    settings: TlsSettings,
    config: ArcSwap<ServerConfig>,
    /// `ssl_handshake_errors`.
    pub handshake_errors: AtomicU64,
    /// Relative time of the last certificate load.
    pub loaded_at: AtomicU32,
}

fn err(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

fn build(s: &TlsSettings) -> Result<ServerConfig, String> {
    let chain = s
        .chain_cert
        .as_ref()
        .ok_or("-Z needs a certificate: -o ssl_chain_cert=FILE")?;
    let certs = CertificateDer::pem_file_iter(chain)
        .map_err(|e| err("cannot read the certificate chain", chain, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err("cannot read the certificate chain", chain, e))?;
    if certs.is_empty() {
        return Err(err("no certificate in", chain, "empty chain"));
    }
    let key_path = s.key.as_ref().unwrap_or(chain);
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| err("cannot read the private key", key_path, e))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if s.min_version >= 3 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = if s.verify_mode == 0 {
        builder.with_no_client_auth()
    } else {
        let ca = s
            .ca_cert
            .as_ref()
            .ok_or("-o ssl_verify_mode above 0 needs -o ssl_ca_cert=FILE")?;
        let mut roots = RootCertStore::empty();
        for c in
            CertificateDer::pem_file_iter(ca).map_err(|e| err("cannot read the CA file", ca, e))?
        {
            let c = c.map_err(|e| err("cannot read the CA file", ca, e))?;
            roots
                .add(c)
                .map_err(|e| err("bad CA certificate in", ca, e))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if s.verify_mode == 1 {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        builder.with_client_cert_verifier(
            verifier
                .build()
                .map_err(|e| format!("client certificate verification: {e}"))?,
        )
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    config.alpn_protocols.clear();
    Ok(config)
}

impl Tls {
    /// Loads certificates and keys; errors name the file and the problem.
    pub fn load(settings: &TlsSettings, now: RelTime) -> Result<Tls, String> {
        if settings.min_version < 2 {
            eprintln!(
                "ferrocache: ssl_min_version {}: TLS 1.0 and 1.1 are not supported; using tlsv1.2",
                settings.min_version_name()
            );
        }
        let config = build(settings)?;
        Ok(Tls {
            settings: settings.clone(),
            config: ArcSwap::from_pointee(config),
            handshake_errors: AtomicU64::new(0),
            loaded_at: AtomicU32::new(now),
        })
    }

    /// Reads the certificate files again, for [`Tls::install`]; nothing
    /// changes until then, so a caller can load several before swapping.
    pub fn load_files(&self) -> Result<Arc<ServerConfig>, String> {
        build(&self.settings).map(Arc::new)
    }

    /// Serves new sessions with `config`; sessions already made keep theirs.
    pub fn install(&self, config: Arc<ServerConfig>, now: RelTime) {
        self.config.store(config);
        self.loaded_at.store(now, Ordering::Relaxed);
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// A server-side session for a new connection.
    pub fn accept(&self) -> io::Result<Box<ServerConnection>> {
        let mut conn = ServerConnection::new(self.config.load_full())
            .map_err(|e| io::Error::other(e.to_string()))?;
        conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Ok(Box::new(conn))
    }
}

/// Writes the records rustls has queued. Ok(()) also when the socket would
/// block; the rest goes out on the next writable event.
pub fn flush<S: Write>(tls: &mut ServerConnection, sock: &mut S) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads plaintext, pulling and processing records as needed (handshake
/// included). Ok(0) is the end of the stream; WouldBlock means the socket
/// has nothing more for now.
pub fn read<S: Read + Write>(
    tls: &mut ServerConnection,
    sock: &mut S,
    buf: &mut [u8],
    handshake_errors: &AtomicU64,
) -> io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match tls.read_tls(sock) {
            Ok(0) => return Ok(0),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    if tls.is_handshaking() {
                        handshake_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    // Best effort: tell the peer why (the alert is queued).
                    let _ = flush(tls, sock);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                // Handshake messages and other records the peer is owed.
                flush(tls, sock)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Encrypts as much of `buf` as rustls will buffer and writes what the
/// socket takes. WouldBlock when nothing could be accepted.
pub fn write<S: Write>(tls: &mut ServerConnection, sock: &mut S, buf: &[u8]) -> io::Result<usize> {
    flush(tls, sock)?;
    let n = tls.writer().write(buf)?;
    flush(tls, sock)?;
    if n == 0 && !buf.is_empty() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(n)
}
