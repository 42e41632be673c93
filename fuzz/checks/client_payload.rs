//! The client's parsers of cluster configuration replies
//! (`ferrocache_client::discovery::{parse_payload, parse_reply}`): what a
//! client reads from any node it polls, so a broken or hostile node must
//! not be able to crash it.
//!
//! The input is used three ways: as a payload, as a whole reply, and
//! wrapped into a well-formed `CONFIG cluster` reply (so mutations of the
//! payload reach the payload parser through the reply parser too).
//!
//! Checks, besides "no panic":
//! - an accepted payload has a positive version and at least one node with
//!   a port, and rendering it again parses to the same configuration;
//! - a reply that parses takes no more than it was given, parses the same
//!   from exactly its own bytes and with more bytes appended, and every
//!   shorter prefix of it asks for more input rather than failing;
//! - "need more input" and errors stay so when bytes are appended (errors)
//!   or removed (need more input);
//! - whatever the server's `config set cluster` parser accepts, the server
//!   renders, and the client reads back with the same version and nodes.
//!
//! Shared by the fuzz target `client_payload` and by `tests/fuzz_regressions.rs`,
//! which replays the inputs under `fuzz/regressions/client_payload/`.

use ferrocache_client::discovery::{parse_payload, parse_reply, ClusterConfig};

/// Header lines longer than this are refused before their end is seen
/// (the parser's own bound).
const MAX_HEADER_LEN: usize = 512;

const TAILS: [&[u8]; 3] = [b"END\r\n", b"CONFIG cluster 0 1\r\n", b"\xff\r\n"];

fn render(c: &ClusterConfig) -> Vec<u8> {
    let nodes: Vec<String> = c
        .nodes
        .iter()
        .map(|n| {
            let ip = n.ip.map(|ip| ip.to_string()).unwrap_or_default();
            format!("{}|{}|{}", n.host, ip, n.port)
        })
        .collect();
    format!("{}\n{}\n", c.version, nodes.join(" ")).into_bytes()
}

fn payload(data: &[u8]) {
    if let Ok(c) = parse_payload(data) {
        assert!(c.version > 0);
        assert!(!c.nodes.is_empty());
        assert!(c.nodes.iter().all(|n| n.port > 0 && !n.host.is_empty()));
        assert_eq!(parse_payload(&render(&c)), Ok(c));
    }
}

fn reply(buf: &[u8]) {
    let header_len = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    match parse_reply(buf) {
        Ok(Some(r)) => {
            assert!(r.consumed > 0 && r.consumed <= buf.len());
            let own = &buf[..r.consumed];
            assert_eq!(parse_reply(own), Ok(Some(r.clone())));
            for tail in TAILS {
                let longer = [own, tail].concat();
                assert_eq!(parse_reply(&longer), Ok(Some(r.clone())));
            }
            // However the reply is split into reads, the client waits for
            // the rest rather than failing.
            for cut in 0..r.consumed {
                assert_eq!(parse_reply(&own[..cut]), Ok(None), "prefix of {cut} bytes");
            }
        }
        Ok(None) => {
            assert!(buf.len() <= MAX_HEADER_LEN || header_len < buf.len());
            assert_eq!(parse_reply(&buf[..buf.len() / 2]), Ok(None));
        }
        Err(_) => {
            for tail in TAILS {
                assert!(parse_reply(&[buf, tail].concat()).is_err());
            }
        }
    }
}

/// What the server accepts and serves, the client reads back.
fn server_to_client(data: &[u8]) {
    let Ok((version, nodes)) = ferrocache::cluster::payload::parse(data) else {
        return;
    };
    let served = ferrocache::cluster::payload::render(version, &nodes);
    let c = parse_payload(&served).expect("the client refuses what the server serves");
    assert_eq!(c.version, version);
    assert_eq!(c.nodes.len(), nodes.len());
    for (n, s) in c.nodes.iter().zip(&nodes) {
        assert_eq!(n.host, s.host);
        assert_eq!(n.ip, (!s.ip.is_empty()).then(|| s.ip.parse().unwrap()));
        assert_eq!(n.port, s.port);
    }
}

/// Runs one input; panics on a violated check.
pub fn run(data: &[u8]) {
    payload(data);
    reply(data);
    let mut wrapped = format!("CONFIG cluster 0 {}\r\n", data.len()).into_bytes();
    wrapped.extend_from_slice(data);
    wrapped.extend_from_slice(b"\r\nEND\r\n");
    reply(&wrapped);
    server_to_client(data);
}
