//! One node of the published list: `<host>|<ip>|<port>`, the token shared by
//! the node file, the `config get cluster` payload and node-to-node state.
//!
//! Parsing is a pure function of a string so it can be fuzzed; it is strict
//! about what would break clients (empty host, port 0 or above 65535, bytes
//! that would split a token) and lenient about nothing else: hostnames may
//! start with a digit, and the IP field may be empty.

use std::fmt;
use std::net::IpAddr;

/// Longest hostname accepted (DNS limit).
pub const HOST_MAX_LENGTH: usize = 253;

/// A node as clients see it. The derived order (host, then ip, then port)
/// is the order of the published list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeEntry {
    pub host: String,
    /// Textual IP address, or empty when only the hostname is known.
    pub ip: String,
    pub port: u16,
}

/// Why a `host|ip|port` token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("'{0}' is not host|ip|port")]
    Shape(String),
    #[error("'{0}': empty hostname")]
    EmptyHost(String),
    #[error("'{0}': invalid hostname")]
    BadHost(String),
    #[error("'{0}': invalid IP address")]
    BadIp(String),
    #[error("'{0}': port must be a number from 1 to 65535")]
    BadPort(String),
}

/// Where a node is reached: its IP if it has one, else its hostname, plus
/// the port. Two entries with the same endpoint are the same node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub addr: String,
    pub port: u16,
}

impl NodeEntry {
    /// Parses one `host|ip|port` token.
    pub fn parse(token: &str) -> Result<NodeEntry, NodeError> {
        let shape = || NodeError::Shape(token.to_string());
        let mut parts = token.split('|');
        let (host, ip, port) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(i), Some(p), None) => (h, i, p),
            _ => return Err(shape()),
        };
        if host.is_empty() {
            return Err(NodeError::EmptyHost(token.to_string()));
        }
        if host.len() > HOST_MAX_LENGTH || !host.bytes().all(valid_host_byte) {
            return Err(NodeError::BadHost(token.to_string()));
        }
        // One text per address, so that `2001:DB8::1` and `2001:db8:0::1` are
        // the same node and clients see the usual spelling.
        let ip = match ip {
            "" => String::new(),
            text => match text.parse::<IpAddr>() {
                Ok(addr) => addr.to_string(),
                Err(_) => return Err(NodeError::BadIp(token.to_string())),
            },
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(NodeError::BadPort(token.to_string())),
        };
        Ok(NodeEntry {
            host: host.to_string(),
            ip,
            port,
        })
    }

    pub fn endpoint(&self) -> Endpoint {
        // An IPv4-mapped IPv6 address reaches the same socket as the IPv4 one.
        let addr = match self.ip.parse::<IpAddr>() {
            Ok(ip) => ip.to_canonical().to_string(),
            Err(_) if self.ip.is_empty() => self.host.to_ascii_lowercase(),
            Err(_) => self.ip.clone(),
        };
        Endpoint {
            addr,
            port: self.port,
        }
    }
}

impl fmt::Display for NodeEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}|{}", self.host, self.ip, self.port)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.addr.contains(':') {
            write!(f, "[{}]:{}", self.addr, self.port)
        } else {
            write!(f, "{}:{}", self.addr, self.port)
        }
    }
}

/// Letters, digits, `-`, `.` and `_` (seen in container names). Anything
/// else, notably spaces and `|`, would corrupt the payload.
fn valid_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

/// Parses a space-separated list of tokens, refusing duplicates (two entries
/// with the same endpoint). The result is in published order.
pub fn parse_list(line: &str) -> Result<Vec<NodeEntry>, ListError> {
    let mut nodes = Vec::new();
    for token in line.split(' ').filter(|t| !t.is_empty()) {
        nodes.push(NodeEntry::parse(token)?);
    }
    sort_unique(nodes)
}

/// Why a list of nodes was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("duplicate node {0}")]
    Duplicate(String),
    #[error("no nodes")]
    Empty,
}

/// Sorts into published order and refuses two entries for one endpoint.
pub fn sort_unique(mut nodes: Vec<NodeEntry>) -> Result<Vec<NodeEntry>, ListError> {
    if nodes.is_empty() {
        return Err(ListError::Empty);
    }
    let mut seen = std::collections::HashSet::new();
    for n in &nodes {
        if !seen.insert(n.endpoint()) {
            return Err(ListError::Duplicate(n.to_string()));
        }
    }
    nodes.sort();
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(host: &str, ip: &str, port: u16) -> NodeEntry {
        NodeEntry {
            host: host.into(),
            ip: ip.into(),
            port,
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            NodeEntry::parse("a.b|10.0.0.1|11211"),
            Ok(n("a.b", "10.0.0.1", 11211))
        );
        assert_eq!(NodeEntry::parse("1node||7"), Ok(n("1node", "", 7)));
        assert_eq!(NodeEntry::parse("h|::1|7"), Ok(n("h", "::1", 7)));
        for bad in [
            "",
            "h",
            "h|1.2.3.4",
            "h|1.2.3.4|1|x",
            "|1.2.3.4|1",
            "h|x|1",
            "h||0",
            "h||65536",
            "h||-1",
            "h||+1",
            "h||",
            "h h||1",
            "é||1",
        ] {
            assert!(NodeEntry::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_is_host_then_ip_then_port() {
        let l = parse_list("b|1.1.1.1|3 a|2.2.2.2|1 a|1.1.1.1|2  a|1.1.1.1|1").unwrap();
        let s: Vec<String> = l.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            s,
            ["a|1.1.1.1|1", "a|1.1.1.1|2", "a|2.2.2.2|1", "b|1.1.1.1|3"]
        );
    }

    #[test]
    fn ip_addresses_are_spelled_one_way() {
        assert_eq!(
            NodeEntry::parse("h|2001:DB8:0:0::1|7"),
            Ok(n("h", "2001:db8::1", 7))
        );
        assert_eq!(NodeEntry::parse("h|0:0::1|7"), Ok(n("h", "::1", 7)));
        assert!(matches!(
            parse_list("a|2001:db8::1|1 b|2001:DB8:0::1|1"),
            Err(ListError::Duplicate(_))
        ));
        assert!(matches!(
            parse_list("a|10.0.0.1|1 b|::ffff:10.0.0.1|1"),
            Err(ListError::Duplicate(_))
        ));
        assert!(parse_list("a|10.0.0.1|1 b|10.0.0.1|2").is_ok());
    }

    #[test]
    fn duplicates_by_endpoint() {
        assert!(matches!(
            parse_list("a|1.1.1.1|1 b|1.1.1.1|1"),
            Err(ListError::Duplicate(_))
        ));
        assert!(matches!(
            parse_list("a||1 A||1"),
            Err(ListError::Duplicate(_))
        ));
        assert!(parse_list("a||1 a|1.1.1.1|1").is_ok());
        assert_eq!(parse_list(" "), Err(ListError::Empty));
    }
}
