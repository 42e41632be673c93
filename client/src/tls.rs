//! TLS connections (`tls` feature), with rustls and its `ring` crypto provider.
//!
//! [`TlsConfig`] collects the trusted CA certificates (a PEM file or PEM bytes), an optional
//! client certificate and key for servers that require one (mTLS), and an optional server
//! name. [`TlsConfig::build`] makes a [`TlsConnector`] for
//! [`ClientBuilder::connector`](crate::ClientBuilder::connector); every connection (requests,
//! probes, discovery polls and seeds) then goes through TLS.
//!
//! The name checked against the server's certificate is the endpoint's host: for discovered
//! nodes the hostname of their `host|ip|port` entry (the IP is only used to connect), for
//! static servers and seeds the host as written. A host that is an IP address is checked as
//! an IP address. [`TlsConfig::server_name`] overrides it for every node (useful when all
//! nodes share one certificate name).
//!
//! Handshake failures surface as [`Error::Tls`] with a
//! [`TlsErrorKind`]: `Certificate` when the server's certificate is not
//! trusted, `Refused` when the server ends the session with an alert (say, it wants a client
//! certificate), `Handshake` otherwise.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ferrocache_client::{Client, TlsConfig};
//!
//! let tls = TlsConfig::new()
//!     .ca_file("/etc/ferrocache/ca.pem")
//!     .client_cert_files("/etc/ferrocache/client.pem", "/etc/ferrocache/client.key")
//!     .build()?;
//! let client = Client::builder()
//!     .seed("cache.cfg.example.internal:11211")
//!     .connector(Arc::new(tls))
//!     .build()?;
//! client.set("session:1", b"payload", 0, 1800)?;
//! # Ok::<(), ferrocache_client::Error>(())
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::conn::{Connector, Endpoint, Stream, TcpConnector, Timeouts};
use crate::error::{Error, Result, TlsError, TlsErrorKind};

/// Where PEM data comes from.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Pem {
    fn load(&self, what: &str) -> Result<Vec<u8>> {
        match self {
            Pem::Bytes(bytes) => Ok(bytes.clone()),
            Pem::File(path) => std::fs::read(path)
                .map_err(|e| Error::Config(format!("reading {what} {}: {e}", path.display()))),
        }
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => write!(f, "{}", path.display()),
            Pem::Bytes(bytes) => write!(f, "<{} bytes of PEM>", bytes.len()),
        }
    }
}

/// Settings of a [`TlsConnector`]. Errors (unreadable files, bad PEM) are reported by
/// [`build`](Self::build).
#[derive(Clone, Debug, Default)]
pub struct TlsConfig {
    roots: Vec<Pem>,
    client: Option<(Pem, Pem)>,
    server_name: Option<String>,
}

impl TlsConfig {
    /// No trusted CA yet; add at least one.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// Trusts the CA certificates in the PEM file at `path` (all of them).
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> TlsConfig {
        self.roots.push(Pem::File(path.as_ref().to_owned()));
        self
    }

    /// Trusts the CA certificates in `pem`.
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> TlsConfig {
        self.roots.push(Pem::Bytes(pem.as_ref().to_vec()));
        self
    }

    /// Presents the certificate chain in the PEM file `cert` with the private key in the PEM
    /// file `key` to servers that ask for a client certificate.
    pub fn client_cert_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> TlsConfig {
        self.client = Some((
            Pem::File(cert.as_ref().to_owned()),
            Pem::File(key.as_ref().to_owned()),
        ));
        self
    }

    /// Like [`client_cert_files`](Self::client_cert_files), from PEM bytes.
    pub fn client_cert_pem(mut self, cert: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> TlsConfig {
        self.client = Some((
            Pem::Bytes(cert.as_ref().to_vec()),
            Pem::Bytes(key.as_ref().to_vec()),
        ));
        self
    }

    /// Checks every server's certificate against `name` instead of the endpoint's host.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// Loads the certificates and makes the connector.
    pub fn build(self) -> Result<TlsConnector> {
        let mut roots = RootCertStore::empty();
        for pem in &self.roots {
            let bytes = pem.load("CA certificates")?;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert =
                    cert.map_err(|e| Error::Config(format!("CA certificates {pem:?}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::Config(format!("CA certificate in {pem:?}: {e}")))?;
                found += 1;
            }
            if found == 0 {
                return Err(Error::Config(format!("no certificate in {pem:?}")));
            }
        }
        if roots.is_empty() {
            return Err(Error::Config(
                "TLS needs at least one trusted CA certificate".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS settings: {e}")))?
            .with_root_certificates(roots);
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let cert_bytes = cert.load("client certificate")?;
                let chain = CertificateDer::pem_slice_iter(&cert_bytes)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| Error::Config(format!("client certificate {cert:?}: {e}")))?;
                if chain.is_empty() {
                    return Err(Error::Config(format!("no certificate in {cert:?}")));
                }
                let key_bytes = key.load("client key")?;
                // The error names the file, never its content.
                let key = PrivateKeyDer::from_pem_slice(&key_bytes)
                    .map_err(|e| Error::Config(format!("client key {key:?}: {e}")))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::Config(format!("client certificate and key: {e}")))?
            }
        };
        let server_name = self
            .server_name
            .map(|name| {
                ServerName::try_from(name.clone())
                    .map_err(|_| Error::Config(format!("invalid TLS server name {name:?}")))
            })
            .transpose()?;
        Ok(TlsConnector {
            config: Arc::new(config),
            server_name,
        })
    }
}

/// Opens TCP connections wrapped in TLS; see the [module documentation](self).
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl TlsConnector {
    /// A connector from a rustls configuration made elsewhere (own verifier, other roots).
    /// Server names come from the endpoints unless `server_name` is given.
    pub fn from_rustls(
        config: Arc<ClientConfig>,
        server_name: Option<ServerName<'static>>,
    ) -> Self {
        TlsConnector {
            config,
            server_name,
        }
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .field(
                "client_auth",
                &self.config.client_auth_cert_resolver.has_certs(),
            )
            .finish()
    }
}

impl Connector for TlsConnector {
    fn connect(&self, endpoint: &Endpoint, timeouts: &Timeouts) -> io::Result<Box<dyn Stream>> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => ServerName::try_from(endpoint.host.clone()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{:?} is not a valid TLS server name", endpoint.host),
                )
            })?,
        };
        let mut sock = TcpConnector::connect_tcp(endpoint, timeouts)?;
        let mut conn =
            ClientConnection::new(self.config.clone(), name).map_err(|e| classify(e).into_io())?;
        // Complete the handshake here, so certificate problems surface when connecting.
        while conn.is_handshaking() {
            if conn.complete_io(&mut sock).map_err(map_io)? == (0, 0) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the TLS handshake",
                ));
            }
        }
        Ok(Box::new(TlsStream(StreamOwned::new(conn, sock))))
    }
}

/// A TLS session over TCP whose errors carry a [`TlsError`].
struct TlsStream(StreamOwned<ClientConnection, TcpStream>);

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.0.sock.peer_addr().ok())
            .field("version", &self.0.conn.protocol_version())
            .finish()
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(map_io)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(map_io)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(map_io)
    }
}

/// Replaces a rustls error inside `err` by a [`TlsError`]; other I/O errors pass.
fn map_io(err: io::Error) -> io::Error {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => classify(tls.clone()).into_io(),
        None => err,
    }
}

fn classify(err: rustls::Error) -> TlsError {
    let kind = match err {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            TlsErrorKind::Certificate
        }
        rustls::Error::AlertReceived(_) => TlsErrorKind::Refused,
        _ => TlsErrorKind::Handshake,
    };
    TlsError {
        kind,
        message: err.to_string(),
    }
}
