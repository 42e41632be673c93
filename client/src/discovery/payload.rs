//! Parsing of the cluster configuration served by `config get cluster` (and by the legacy
//! `get AmazonElastiCache:cluster`).
//!
//! Pure functions over byte slices: nothing here reads sockets or keeps state, so the same
//! code serves the poller, tests and fuzzing. The payload is
//!
//! ```text
//! <version>\n
//! <host>|<ip>|<port> <host>|<ip>|<port> ...\n
//! ```
//!
//! The parser is lenient where servers are known to differ harmlessly (a missing final `\n`,
//! runs of spaces, `\r\n` line ends, an empty IP field) and strict where leniency would hide a
//! broken server: the declared length must match the data block exactly, the version must be a
//! positive integer, and an empty node list is an error rather than "no nodes" — a client that
//! applied it would drop every server at once.

use std::net::IpAddr;

use crate::ring::{Identity, Server};

/// Key of the configuration in `config get cluster` replies.
pub const CONFIG_KEY: &str = "cluster";

/// Key of the configuration for engines that only support the legacy `get`.
pub const LEGACY_KEY: &str = "AmazonElastiCache:cluster";

/// Largest payload accepted, memcached's default item size limit. A garbage length must not
/// make the client buffer without bound.
pub const MAX_PAYLOAD_LEN: usize = 1024 * 1024;

/// Longest header line accepted before giving up on finding its end.
const MAX_HEADER_LEN: usize = 512;

/// A parsed cluster configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Increases on every membership change; never 0.
    pub version: u64,
    /// The nodes, in the order the server listed them (never empty).
    pub nodes: Vec<Node>,
}

impl ClusterConfig {
    /// Whether this configuration should replace the one held at `current`.
    ///
    /// Only a strictly greater version wins: equal or lower versions are stale answers from a
    /// node that has not caught up yet, and applying them would flap membership.
    pub fn supersedes(&self, current: Option<u64>) -> bool {
        match current {
            Some(held) => self.version > held,
            None => true,
        }
    }

    /// The nodes as ring servers of weight 1, named by `identity`.
    pub fn servers(&self, identity: Identity) -> Vec<Server> {
        self.nodes.iter().map(|n| n.server(identity)).collect()
    }
}

/// One `host|ip|port` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// Hostname; may start with a digit, its shape is not checked.
    pub host: String,
    /// IP address, absent when the entry is `host||port`.
    pub ip: Option<IpAddr>,
    /// TCP port, never 0.
    pub port: u16,
}

impl Node {
    /// This node as a ring server of weight 1, named by `identity`.
    pub fn server(&self, identity: Identity) -> Server {
        Server {
            host: self.host.clone(),
            ip: self.ip,
            port: self.port,
            weight: 1,
            identity,
        }
    }
}

/// Which command the reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyForm {
    /// `CONFIG cluster <flags> <len>` (engines >= 1.4.14).
    Config,
    /// `VALUE AmazonElastiCache:cluster <flags> <len>` (legacy `get`).
    Legacy,
}

/// A complete configuration reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The configuration it carried.
    pub config: ClusterConfig,
    /// Which command form it answered.
    pub form: ReplyForm,
    /// Bytes of the input taken by the reply, through `END\r\n`.
    pub consumed: usize,
}

/// Why a payload was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Hostnames and numbers are ASCII; anything else is corruption.
    #[error("payload is not valid UTF-8")]
    NotUtf8,
    /// The payload has no version line.
    #[error("payload has no version line")]
    MissingVersion,
    /// The version is not a positive decimal integer.
    #[error("invalid config version {0:?}: expected a positive integer")]
    InvalidVersion(String),
    /// The node list is missing or empty.
    #[error("payload lists no nodes")]
    NoNodes,
    /// One node entry is malformed.
    #[error("invalid node {node:?}: {reason}")]
    InvalidNode {
        /// The entry as received.
        node: String,
        /// What is wrong with it.
        reason: NodeError,
    },
    /// Non-blank text follows the node list.
    #[error("unexpected data after the node list: {0:?}")]
    TrailingData(String),
}

/// What is wrong with a `host|ip|port` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// Not exactly three `|`-separated fields.
    #[error("expected host|ip|port")]
    Fields,
    /// The hostname field is empty.
    #[error("empty hostname")]
    EmptyHost,
    /// The IP field is neither empty nor an IP address.
    #[error("invalid IP address")]
    Ip,
    /// The port is not a decimal number in 1..=65535.
    #[error("invalid port")]
    Port,
}

/// Why a configuration reply was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// `ERROR`: the server does not know `config get`; retry with the legacy `get`.
    #[error("server does not support the config command")]
    UnknownCommand,
    /// `END` without a value: the node holds no cluster configuration.
    #[error("no cluster configuration is stored")]
    NotFound,
    /// `CLIENT_ERROR <message>`.
    #[error("client error: {0}")]
    ClientError(String),
    /// `SERVER_ERROR <message>`.
    #[error("server error: {0}")]
    ServerError(String),
    /// A reply line that is neither a configuration nor an error.
    #[error("unexpected reply line {0:?}")]
    UnexpectedLine(String),
    /// The header names another key.
    #[error("reply is for key {0:?}, not the cluster configuration")]
    WrongKey(String),
    /// The header does not have the `<verb> <key> <flags> <len>` shape.
    #[error("malformed reply header {0:?}")]
    BadHeader(String),
    /// The declared length exceeds [`MAX_PAYLOAD_LEN`].
    #[error("declared payload length {0} exceeds the limit")]
    TooLarge(usize),
    /// The data block is not followed by `\r\n`, so the declared length is wrong.
    #[error("declared length does not match the data block")]
    LengthMismatch,
    /// Something other than `END` follows the data block.
    #[error("expected END after the data block, got {0:?}")]
    MissingEnd(String),
    /// The data block is not a valid payload.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// Parses a payload (`<version>\n<nodes>\n`).
pub fn parse_payload(payload: &[u8]) -> Result<ClusterConfig, PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotUtf8)?;
    let mut lines = text.split('\n').map(str::trim);

    let version = match lines.next() {
        Some("") | None => return Err(PayloadError::MissingVersion),
        Some(v) => parse_version(v)?,
    };
    let nodes = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(parse_node)
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err(PayloadError::NoNodes);
    }
    if let Some(extra) = lines.find(|l| !l.is_empty()) {
        return Err(PayloadError::TrailingData(extra.to_owned()));
    }
    Ok(ClusterConfig { version, nodes })
}

/// Parses a full reply to `config get cluster` or `get AmazonElastiCache:cluster`.
///
/// Returns `Ok(None)` while `buf` holds only a prefix of a valid reply, so a caller can read
/// more and retry. Error replies (`ERROR`, `CLIENT_ERROR`, `SERVER_ERROR`, a bare `END`) map
/// to their own [`ReplyError`] variants so the caller can fall back or retry elsewhere.
pub fn parse_reply(buf: &[u8]) -> Result<Option<Reply>, ReplyError> {
    let Some((header, mut at)) = line(buf) else {
        if buf.len() > MAX_HEADER_LEN {
            return Err(ReplyError::BadHeader(lossy(&buf[..MAX_HEADER_LEN])));
        }
        return Ok(None);
    };
    // The same bound whether or not the line end has arrived yet: otherwise
    // a long header would be refused or accepted depending on how the reply
    // was split into reads.
    // (`at - 1`: the bytes before the `\n`, as counted while it is missing.)
    if at - 1 > MAX_HEADER_LEN {
        return Err(ReplyError::BadHeader(lossy(&buf[..MAX_HEADER_LEN])));
    }
    let (form, len) = parse_header(header)?;

    let Some(data) = buf.get(at..at + len) else {
        return Ok(None);
    };
    at += len;
    match buf.get(at..at + 2) {
        Some(b"\r\n") => at += 2,
        Some(_) => return Err(ReplyError::LengthMismatch),
        None if b"\r".starts_with(&buf[at..]) => return Ok(None),
        None => return Err(ReplyError::LengthMismatch),
    }

    match line(&buf[at..]) {
        Some((b"END", used)) => at += used,
        Some((other, _)) => return Err(ReplyError::MissingEnd(lossy(other))),
        None if b"END\r\n".starts_with(&buf[at..]) => return Ok(None),
        None => return Err(ReplyError::MissingEnd(lossy(&buf[at..]))),
    }

    Ok(Some(Reply {
        config: parse_payload(data)?,
        form,
        consumed: at,
    }))
}

/// The first line of `buf` without its `\n` or `\r\n`, and the bytes it spans.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let text = &buf[..end];
    Some((text.strip_suffix(b"\r").unwrap_or(text), end + 1))
}

fn parse_header(header: &[u8]) -> Result<(ReplyForm, usize), ReplyError> {
    let text = std::str::from_utf8(header).map_err(|_| ReplyError::BadHeader(lossy(header)))?;
    let text = text.trim_end();
    let mut words = text.split_ascii_whitespace();
    let (form, expected_key) = match words.next() {
        Some("CONFIG") => (ReplyForm::Config, CONFIG_KEY),
        Some("VALUE") => (ReplyForm::Legacy, LEGACY_KEY),
        Some("END") if words.next().is_none() => return Err(ReplyError::NotFound),
        Some("ERROR") if words.next().is_none() => return Err(ReplyError::UnknownCommand),
        Some("CLIENT_ERROR") => return Err(ReplyError::ClientError(rest(text))),
        Some("SERVER_ERROR") => return Err(ReplyError::ServerError(rest(text))),
        _ => return Err(ReplyError::UnexpectedLine(text.to_owned())),
    };
    let bad = || ReplyError::BadHeader(text.to_owned());
    let (Some(key), Some(flags), Some(len), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad());
    };
    if key != expected_key {
        return Err(ReplyError::WrongKey(key.to_owned()));
    }
    decimal::<u32>(flags).ok_or_else(bad)?;
    let len = decimal::<usize>(len).ok_or_else(bad)?;
    if len > MAX_PAYLOAD_LEN {
        return Err(ReplyError::TooLarge(len));
    }
    Ok((form, len))
}

fn parse_version(text: &str) -> Result<u64, PayloadError> {
    match decimal::<u64>(text) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(PayloadError::InvalidVersion(text.to_owned())),
    }
}

fn parse_node(entry: &str) -> Result<Node, PayloadError> {
    let invalid = |reason| PayloadError::InvalidNode {
        node: entry.to_owned(),
        reason,
    };
    let mut fields = entry.split('|');
    let (Some(host), Some(ip), Some(port), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(invalid(NodeError::Fields));
    };
    if host.is_empty() {
        return Err(invalid(NodeError::EmptyHost));
    }
    let ip = match ip {
        "" => None,
        ip => Some(ip.parse().map_err(|_| invalid(NodeError::Ip))?),
    };
    let port = match decimal::<u16>(port) {
        Some(p) if p > 0 => p,
        _ => return Err(invalid(NodeError::Port)),
    };
    Ok(Node {
        host: host.to_owned(),
        ip,
        port,
    })
}

/// Digits only: `str::parse` would also accept a leading `+`.
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The text after the first word of a line.
fn rest(line: &str) -> String {
    line.split_once(' ')
        .map_or("", |(_, rest)| rest)
        .trim()
        .to_owned()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
