//! Connections to one node: opening, timeouts, buffered request/reply exchange.
//!
//! Opening a connection goes through a [`Connector`]. The default, [`TcpConnector`], opens a
//! plain TCP stream with `TCP_NODELAY` and the configured timeouts;
//! [`TlsConnector`](crate::tls::TlsConnector) wraps it in TLS. Once the stream is open, the
//! connection's [`Session`] applies: it fixes the [`Protocol`] the connection speaks and, with
//! [`Credentials`], runs a SASL exchange before the connection is used.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{Error, Result, TlsError};
use crate::protocol::{parse_reply, Reply};

/// The protocol a connection speaks. memcached fixes it per connection by the first byte, and
/// serves SASL only over the binary protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The text protocol (`get`, `set`, …).
    #[default]
    Text,
    /// The binary protocol (24-byte headers); required for SASL.
    Binary,
}

/// A SASL mechanism the client can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN`: the password is sent as is (use it over TLS only).
    Plain,
    /// `SCRAM-SHA-1`: salted challenge-response; the password never crosses the wire and the
    /// server proves it knows the password too.
    ScramSha1,
    /// `SCRAM-SHA-256`: like SCRAM-SHA-1 with SHA-256.
    ScramSha256,
}

impl Mechanism {
    /// The IANA name sent on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    /// The mechanism named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        [
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SASL user name and password, and optionally the mechanism to use (by default the best
/// one the server offers: SCRAM-SHA-256, then SCRAM-SHA-1, then PLAIN).
///
/// The password never appears in `Debug` output or in errors:
///
/// ```
/// use ferrocache_client::Credentials;
///
/// let creds = Credentials::new("alice", "s3cret");
/// assert!(!format!("{creds:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
    mechanism: Option<Mechanism>,
}

impl Credentials {
    /// A user name and password; the mechanism is negotiated.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
            mechanism: None,
        }
    }

    /// Uses `mechanism` only, instead of the best one offered.
    pub fn with_mechanism(mut self, mechanism: Mechanism) -> Credentials {
        self.mechanism = Some(mechanism);
        self
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The mechanism chosen in the settings, if any.
    pub fn mechanism(&self) -> Option<Mechanism> {
        self.mechanism
    }

    #[cfg_attr(not(feature = "sasl"), allow(dead_code))]
    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// What every new connection does once its stream is open: the protocol it speaks and the
/// credentials it authenticates with. Reconnects (after errors, for probes and discovery
/// polls) go through the same steps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// The protocol spoken.
    pub protocol: Protocol,
    /// SASL credentials; authentication runs right after connecting. Requires
    /// [`Protocol::Binary`].
    pub credentials: Option<Credentials>,
}

/// Timeouts applied to every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the TCP connection (per resolved address).
    pub connect: Duration,
    /// Each read while waiting for a reply.
    pub read: Duration,
    /// Each write of a request.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(500),
            read: Duration::from_secs(1),
            write: Duration::from_secs(1),
        }
    }
}

/// A byte stream to a node (plain TCP, or TCP wrapped by a [`Connector`]).
pub trait Stream: Read + Write + Send + fmt::Debug {}

impl<T: Read + Write + Send + fmt::Debug> Stream for T {}

/// Where a node can be reached.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Hostname, resolved on every connect when `ip` is absent.
    pub host: String,
    /// Address announced by discovery; used as is when present.
    pub ip: Option<std::net::IpAddr>,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// The socket addresses to try, in order. Hostnames are resolved anew on every call, so
    /// an endpoint whose DNS record moves is followed.
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        if let Some(ip) = self.ip {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} resolves to no address", self.host),
            ));
        }
        Ok(addrs)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Opens streams to nodes: [`TcpConnector`], [`TlsConnector`](crate::tls::TlsConnector), or
/// your own (a proxy, another TLS stack, memcached's ASCII authentication). Report TLS
/// failures as [`TlsError::into_io`] to have them surface as
/// [`Error::Tls`]. SASL does not belong here: set
/// [`Session::credentials`] (or [`ClientBuilder::credentials`](crate::ClientBuilder::credentials)).
pub trait Connector: Send + Sync + fmt::Debug {
    /// Opens a stream to `endpoint`, honouring `timeouts`.
    fn connect(&self, endpoint: &Endpoint, timeouts: &Timeouts) -> io::Result<Box<dyn Stream>>;
}

/// Plain TCP with `TCP_NODELAY`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl TcpConnector {
    /// Opens a TCP stream to the first address of `endpoint` that accepts, with
    /// `TCP_NODELAY` and the read and write timeouts set.
    pub fn connect_tcp(endpoint: &Endpoint, timeouts: &Timeouts) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in endpoint.resolve()? {
            match TcpStream::connect_timeout(&addr, timeouts.connect) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(timeouts.read))?;
                    stream.set_write_timeout(Some(timeouts.write))?;
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
    }
}

impl Connector for TcpConnector {
    fn connect(&self, endpoint: &Endpoint, timeouts: &Timeouts) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(Self::connect_tcp(endpoint, timeouts)?))
    }
}

/// Initial size of a connection's read buffer.
const READ_CHUNK: usize = 16 * 1024;

/// An open connection with its read buffer.
#[derive(Debug)]
pub struct Connection {
    stream: Box<dyn Stream>,
    node: std::sync::Arc<str>,
    protocol: Protocol,
    buf: Vec<u8>,
    /// Start of unread bytes in `buf`.
    start: usize,
    /// End of valid bytes in `buf`.
    end: usize,
    /// Whether a reply byte has been read since the last request was written.
    pub(crate) replied: bool,
}

impl Connection {
    /// Opens a connection to `endpoint` through `connector` and sets it up as `session`
    /// says (protocol, SASL authentication).
    pub fn open(
        connector: &dyn Connector,
        endpoint: &Endpoint,
        node: std::sync::Arc<str>,
        timeouts: &Timeouts,
        session: &Session,
    ) -> Result<Connection> {
        let stream =
            connector.connect(endpoint, timeouts).map_err(|source| {
                match TlsError::from_io(&source) {
                    Some(tls) => Error::Tls {
                        node: node.to_string(),
                        source: tls,
                    },
                    None => Error::Connect {
                        node: node.to_string(),
                        source,
                    },
                }
            })?;
        let mut conn = Connection::from_stream(stream, node);
        conn.protocol = session.protocol;
        if let Some(credentials) = &session.credentials {
            if session.protocol != Protocol::Binary {
                return Err(Error::Config(
                    "SASL authentication needs the binary protocol".into(),
                ));
            }
            crate::auth::authenticate(&mut conn, credentials)?;
        }
        Ok(conn)
    }

    /// Wraps an already open stream speaking the text protocol; `node` names it in errors.
    pub fn from_stream(stream: Box<dyn Stream>, node: std::sync::Arc<str>) -> Connection {
        Connection {
            stream,
            node,
            protocol: Protocol::Text,
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            replied: false,
        }
    }

    /// `host:port` of the peer.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The protocol the connection speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Switches the protocol of a connection made with [`from_stream`](Self::from_stream)
    /// (before anything was sent).
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// Sends `request` in full.
    pub fn send(&mut self, request: &[u8]) -> Result<()> {
        self.replied = false;
        self.stream
            .write_all(request)
            .and_then(|()| self.stream.flush())
            .map_err(|e| Error::from_io(&self.node, e))
    }

    /// Reads until `parse` recognises a complete unit at the front of the buffer, consumes
    /// it and returns what `parse` made of it.
    ///
    /// `parse` returns `Ok(None)` while it needs more bytes. Its errors are returned as is;
    /// after an error the connection is out of sync and must be dropped.
    pub fn read_with<T>(
        &mut self,
        mut parse: impl FnMut(&[u8]) -> Result<Option<(T, usize)>>,
    ) -> Result<T> {
        loop {
            if self.end > self.start {
                if let Some((value, used)) = parse(&self.buf[self.start..self.end])? {
                    self.start += used;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                    }
                    return Ok(value);
                }
            }
            self.fill()?;
        }
    }

    /// Reads one frame of the binary protocol and hands it to `f`.
    pub fn read_frame<T>(&mut self, mut f: impl FnMut(crate::binary::Frame<'_>) -> T) -> Result<T> {
        let node = self.node.clone();
        self.read_with(|buf| match crate::binary::parse_frame(buf) {
            Ok(Some((frame, used))) => Ok(Some((f(frame), used))),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::Protocol {
                node: node.to_string(),
                message: e.to_string(),
            }),
        })
    }

    /// Reads one reply unit of the text protocol and hands it to `f`.
    pub fn read_reply<T>(&mut self, mut f: impl FnMut(Reply<'_>) -> T) -> Result<T> {
        let node = self.node.clone();
        self.read_with(|buf| match parse_reply(buf) {
            Ok(Some((reply, used))) => Ok(Some((f(reply), used))),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::Protocol {
                node: node.to_string(),
                message: e.0,
            }),
        })
    }

    /// Reads more bytes into the buffer, growing or compacting it as needed.
    fn fill(&mut self) -> Result<()> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
        }
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    return Err(Error::Closed {
                        node: self.node.to_string(),
                    })
                }
                Ok(n) => {
                    self.end += n;
                    self.replied = true;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::from_io(&self.node, e)),
            }
        }
    }

    /// Drops everything buffered but not yet consumed.
    pub(crate) fn discard_buffered(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Whether bytes were left unread in the buffer (a reply that was not fully consumed).
    pub(crate) fn has_leftover(&self) -> bool {
        self.end > self.start
    }

    /// Shrinks a buffer that grew for a large value back to its initial size.
    pub(crate) fn shrink(&mut self) {
        if !self.has_leftover() && self.buf.len() > READ_CHUNK {
            self.buf.truncate(READ_CHUNK);
            self.buf.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let creds = Credentials::new("alice", "pa55word").with_mechanism(Mechanism::ScramSha1);
        let session = Session {
            protocol: Protocol::Binary,
            credentials: Some(creds.clone()),
        };
        let builder = crate::Client::builder()
            .server("127.0.0.1:1")
            .credentials(creds);
        for shown in [
            format!("{session:?}"),
            format!("{builder:?}"),
            format!("{session:#?}"),
        ] {
            assert!(!shown.contains("pa55word"), "{shown}");
            assert!(
                shown.contains("alice") && shown.contains("<redacted>"),
                "{shown}"
            );
        }
        let client = builder.build().unwrap();
        assert!(!format!("{client:?}").contains("pa55word"));
    }

    #[test]
    fn mechanism_names() {
        for m in [
            Mechanism::Plain,
            Mechanism::ScramSha1,
            Mechanism::ScramSha256,
        ] {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(Mechanism::from_name(&m.name().to_lowercase()), Some(m));
        }
        assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
    }
}
