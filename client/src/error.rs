//! Errors returned by [`Client`](crate::Client) operations.
//!
//! The variants fall into four groups, and [`Error::is_node_failure`] tells them apart:
//!
//! - **server replies** that are not a success (`NOT_STORED`, `EXISTS`, `NOT_FOUND`, `ERROR`,
//!   `CLIENT_ERROR …`, `SERVER_ERROR …`): the node is healthy, the request was refused;
//! - **node failures** (connect errors, timeouts, closed connections, garbled replies,
//!   fast-failed nodes): the node, not the request, is the problem;
//! - **routing and input** problems (no servers known yet, invalid keys);
//! - **settings the node rejects**: SASL refusals ([`Error::Auth`]) and TLS failures
//!   ([`Error::Tls`]). The node answered, so these are not node failures: they never eject it
//!   or make it fail fast, and every request reports them until the settings are fixed.

use std::io;

use crate::discovery::ReplyError;

/// Result alias for client operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `NOT_STORED`: the condition of `add`, `replace`, `append` or `prepend` did not hold.
    #[error("not stored")]
    NotStored,
    /// `EXISTS`: the item changed since its CAS value was read.
    #[error("cas mismatch: the item was modified")]
    Exists,
    /// `NOT_FOUND`: the item does not exist (`cas`, `delete`, `incr`, `decr`, `touch`).
    #[error("not found")]
    NotFound,
    /// `ERROR`: the server does not know the command.
    #[error("the server does not know the command")]
    UnknownCommand,
    /// `CLIENT_ERROR <message>`: the server rejected the request as malformed.
    #[error("client error from server: {0}")]
    ClientError(String),
    /// `SERVER_ERROR <message>`: the server could not carry out the request.
    #[error("server error: {0}")]
    ServerError(String),

    /// The client was configured with unusable settings (no servers or seeds, a bad address).
    #[error("invalid client configuration: {0}")]
    Config(String),

    /// The key is empty, longer than 250 bytes, or contains whitespace or control bytes.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),

    /// No server is known: discovery has not succeeded yet (the client keeps trying in the
    /// background) or every server was removed.
    #[error("no servers available: {0}")]
    NoServers(String),
    /// The node owning the key failed repeatedly and is skipped until a probe succeeds.
    #[error("node {node} is marked failing; not contacted until a probe succeeds")]
    NodeFailing {
        /// `host:port` of the node.
        node: String,
    },
    /// Opening a connection failed (refused, unreachable, DNS, connect timeout).
    #[error("cannot connect to {node}: {source}")]
    Connect {
        /// `host:port` of the node.
        node: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A read or write did not complete within its timeout.
    #[error("timed out waiting for {node}")]
    Timeout {
        /// `host:port` of the node.
        node: String,
    },
    /// The node closed the connection mid-reply.
    #[error("connection closed by {node}")]
    Closed {
        /// `host:port` of the node.
        node: String,
    },
    /// Another I/O error on an established connection.
    #[error("i/o error with {node}: {source}")]
    Io {
        /// `host:port` of the node.
        node: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Every pooled connection to the node stayed busy for the whole wait.
    #[error("no free connection to {node} within the pool wait timeout")]
    PoolTimeout {
        /// `host:port` of the node.
        node: String,
    },
    /// The node sent bytes that are not a valid reply to the request.
    #[error("protocol error from {node}: {message}")]
    Protocol {
        /// `host:port` of the node.
        node: String,
        /// What was wrong.
        message: String,
    },
    /// SASL authentication failed: wrong credentials, no common mechanism, a server that does
    /// not offer SASL, or a server whose proof of the password did not verify. The node is
    /// healthy, so this does not count towards marking it failing; every request (and every
    /// reconnect) tries again and reports this error until the credentials are fixed.
    #[error("authentication with {node} failed: {message}")]
    Auth {
        /// `host:port` of the node.
        node: String,
        /// What went wrong (never contains the password).
        message: String,
    },
    /// The TLS handshake failed, or the server ended the session with a TLS alert (for
    /// example a rejected or missing client certificate). Like [`Error::Auth`] this points
    /// at the settings rather than the node's health, so it does not eject the node.
    #[error("TLS with {node} failed: {source}")]
    Tls {
        /// `host:port` of the node.
        node: String,
        /// What went wrong.
        #[source]
        source: TlsError,
    },
    /// A configuration endpoint answered, but not with a usable cluster configuration.
    #[error("bad cluster configuration from {endpoint}: {source}")]
    Discovery {
        /// `host:port` of the endpoint asked.
        endpoint: String,
        /// Why the reply was rejected.
        #[source]
        source: ReplyError,
    },
}

impl Error {
    /// Whether the error says something about the node's health (it counts towards marking
    /// the node failing) rather than about the request.
    pub fn is_node_failure(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Timeout { .. }
                | Error::Closed { .. }
                | Error::Io { .. }
                | Error::Protocol { .. }
        )
    }

    /// Whether the server answered with `NOT_FOUND`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound)
    }

    /// The `host:port` of the node involved, for errors tied to one node.
    pub fn node(&self) -> Option<&str> {
        match self {
            Error::NodeFailing { node }
            | Error::Connect { node, .. }
            | Error::Timeout { node }
            | Error::Closed { node }
            | Error::Io { node, .. }
            | Error::PoolTimeout { node }
            | Error::Protocol { node, .. }
            | Error::Auth { node, .. }
            | Error::Tls { node, .. } => Some(node),
            Error::Discovery { endpoint, .. } => Some(endpoint),
            _ => None,
        }
    }

    /// Maps an I/O error on an open connection to the matching variant.
    pub(crate) fn from_io(node: &str, err: io::Error) -> Error {
        if let Some(tls) = TlsError::from_io(&err) {
            return Error::Tls {
                node: node.to_owned(),
                source: tls,
            };
        }
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
                node: node.to_owned(),
            },
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Error::Closed {
                node: node.to_owned(),
            },
            _ => Error::Io {
                node: node.to_owned(),
                source: err,
            },
        }
    }
}

/// Which part of TLS failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The server's certificate was rejected: unknown issuer, expired, or not valid for the
    /// server name.
    Certificate,
    /// The server refused the session with an alert (for example, it requires a client
    /// certificate, or rejected the one sent).
    Refused,
    /// Any other handshake or record failure (for example, the server does not speak TLS).
    Handshake,
}

/// A TLS failure. Connectors report it inside an [`io::Error`] (see
/// [`TlsError::into_io`]); the client turns it into [`Error::Tls`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TlsError {
    /// Which part failed.
    pub kind: TlsErrorKind,
    /// The TLS library's description.
    pub message: String,
}

impl TlsError {
    /// Wraps the error in an `io::Error`, the form a [`Connector`](crate::Connector) returns.
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// The `TlsError` carried by `err`, if any.
    pub fn from_io(err: &io::Error) -> Option<TlsError> {
        err.get_ref()?.downcast_ref::<TlsError>().cloned()
    }
}
