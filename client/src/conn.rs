//! Connections to one node: opening, timeouts, buffered request/reply exchange.
//!
//! Opening a connection goes through a [`Connector`]. The default, [`TcpConnector`], opens a
//! plain TCP stream with `TCP_NODELAY` and the configured timeouts. Transport security and
//! authentication plug in here: a connector may wrap the TCP stream in TLS and run a SASL
//! exchange before handing the stream to the client, which only needs `Read + Write`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::{parse_reply, Reply};

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

/// Opens streams to nodes. Implement it to add TLS or authentication.
pub trait Connector: Send + Sync + fmt::Debug {
    /// Opens a stream to `endpoint`, honouring `timeouts`.
    fn connect(&self, endpoint: &Endpoint, timeouts: &Timeouts) -> io::Result<Box<dyn Stream>>;
}

/// Plain TCP with `TCP_NODELAY`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect(&self, endpoint: &Endpoint, timeouts: &Timeouts) -> io::Result<Box<dyn Stream>> {
        let mut last = None;
        for addr in endpoint.resolve()? {
            match TcpStream::connect_timeout(&addr, timeouts.connect) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(timeouts.read))?;
                    stream.set_write_timeout(Some(timeouts.write))?;
                    return Ok(Box::new(stream));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
    }
}

/// Initial size of a connection's read buffer.
const READ_CHUNK: usize = 16 * 1024;

/// An open connection with its read buffer.
#[derive(Debug)]
pub struct Connection {
    stream: Box<dyn Stream>,
    node: std::sync::Arc<str>,
    buf: Vec<u8>,
    /// Start of unread bytes in `buf`.
    start: usize,
    /// End of valid bytes in `buf`.
    end: usize,
    /// Whether a reply byte has been read since the last request was written.
    pub(crate) replied: bool,
}

impl Connection {
    /// Opens a connection to `endpoint` through `connector`.
    pub fn open(
        connector: &dyn Connector,
        endpoint: &Endpoint,
        node: std::sync::Arc<str>,
        timeouts: &Timeouts,
    ) -> Result<Connection> {
        let stream = connector
            .connect(endpoint, timeouts)
            .map_err(|source| Error::Connect {
                node: node.to_string(),
                source,
            })?;
        Ok(Connection::from_stream(stream, node))
    }

    /// Wraps an already open stream; `node` names it in errors.
    pub fn from_stream(stream: Box<dyn Stream>, node: std::sync::Arc<str>) -> Connection {
        Connection {
            stream,
            node,
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
