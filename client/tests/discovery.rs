//! The configuration payload and replies, as ferrocache and ElastiCache nodes send them.

use std::net::IpAddr;

use ferrocache_client::discovery::{
    parse_payload, parse_reply, ClusterConfig, Node, NodeError, PayloadError, ReplyError, ReplyForm,
};
use ferrocache_client::{Identity, Naming, Ring};

const LOCAL: &[u8] = b"CONFIG cluster 0 80\r\n1\nlocalhost|127.0.0.1|39211 localhost|127.0.0.1|39212 localhost|127.0.0.1|39213\n\r\nEND\r\n";

const CAPTURE: &[u8] = b"CONFIG cluster 0 191\r\n1\ntest1.rtstcw.0001.apne1.cache.amazonaws.com|172.31.12.60|11211 test1.rtstcw.0002.apne1.cache.amazonaws.com|172.31.3.240|11211 test1.rtstcw.0003.apne1.cache.amazonaws.com|172.31.10.26|11211\n\r\nEND\r\n";

fn node(host: &str, ip: Option<&str>, port: u16) -> Node {
    Node {
        host: host.to_owned(),
        ip: ip.map(|ip| ip.parse::<IpAddr>().unwrap()),
        port,
    }
}

fn payload_err(payload: &str) -> PayloadError {
    parse_payload(payload.as_bytes()).unwrap_err()
}

fn reply_err(reply: &[u8]) -> ReplyError {
    parse_reply(reply).unwrap_err()
}

#[test]
fn local_three_nodes() {
    let reply = parse_reply(LOCAL).unwrap().unwrap();
    assert_eq!(reply.consumed, LOCAL.len());
    assert_eq!(reply.form, ReplyForm::Config);
    assert_eq!(
        reply.config,
        ClusterConfig {
            version: 1,
            nodes: (39211..=39213)
                .map(|p| node("localhost", Some("127.0.0.1"), p))
                .collect(),
        }
    );
}

#[test]
fn elasticache_capture() {
    let reply = parse_reply(CAPTURE).unwrap().unwrap();
    assert_eq!(reply.consumed, CAPTURE.len());
    let nodes = &reply.config.nodes;
    assert_eq!(nodes.len(), 3);
    assert_eq!(
        nodes[1],
        node(
            "test1.rtstcw.0002.apne1.cache.amazonaws.com",
            Some("172.31.3.240"),
            11211
        )
    );

    // Hashing by IP (AWS Java) and by hostname (AWS PHP) are different rings.
    let by_ip = reply.config.servers(Identity::Ip);
    assert_eq!(
        by_ip[2].point_name(Naming::Spymemcached),
        "172.31.10.26:11211"
    );
    let by_host = reply.config.servers(Identity::Hostname);
    assert_eq!(
        by_host[0].point_name(Naming::Libmemcached),
        "test1.rtstcw.0001.apne1.cache.amazonaws.com"
    );
    Ring::new(&by_ip, Naming::Spymemcached).unwrap();
}

#[test]
fn legacy_get_reply() {
    let payload = b"12\nlocalhost|127.0.0.1|39211\n";
    let mut reply = format!("VALUE AmazonElastiCache:cluster 0 {}\r\n", payload.len()).into_bytes();
    reply.extend_from_slice(payload);
    reply.extend_from_slice(b"\r\nEND\r\n");
    let parsed = parse_reply(&reply).unwrap().unwrap();
    assert_eq!(parsed.form, ReplyForm::Legacy);
    assert_eq!(parsed.config.version, 12);
    assert_eq!(parsed.consumed, reply.len());
}

#[test]
fn every_prefix_is_incomplete() {
    for end in 0..LOCAL.len() {
        assert_eq!(
            parse_reply(&LOCAL[..end]),
            Ok(None),
            "prefix of {end} bytes"
        );
    }
}

#[test]
fn trailing_bytes_are_left_for_the_next_reply() {
    let mut buf = LOCAL.to_vec();
    buf.extend_from_slice(b"VERSION 1.6.21\r\n");
    let reply = parse_reply(&buf).unwrap().unwrap();
    assert_eq!(reply.consumed, LOCAL.len());
}

#[test]
fn length_is_strict() {
    // Counting the payload without its final newline, or one byte too many.
    let short = b"CONFIG cluster 0 79\r\n1\nlocalhost|127.0.0.1|39211 localhost|127.0.0.1|39212 localhost|127.0.0.1|39213\n\r\nEND\r\n";
    assert_eq!(reply_err(short), ReplyError::LengthMismatch);
    let long = b"CONFIG cluster 0 81\r\n1\nlocalhost|127.0.0.1|39211 localhost|127.0.0.1|39212 localhost|127.0.0.1|39213\n\r\nEND\r\n";
    assert_eq!(reply_err(long), ReplyError::LengthMismatch);
    assert!(matches!(
        reply_err(b"CONFIG cluster 0 99999999\r\n"),
        ReplyError::TooLarge(99_999_999)
    ));
}

#[test]
fn missing_trailing_newline_is_tolerated() {
    let reply = b"CONFIG cluster 0 27\r\n2\nlocalhost|127.0.0.1|39211\r\nEND\r\n";
    let parsed = parse_reply(reply).unwrap().unwrap();
    assert_eq!(parsed.config.version, 2);
    assert_eq!(parsed.config.nodes.len(), 1);
}

#[test]
fn extra_whitespace_is_tolerated() {
    let config =
        parse_payload(b" 3 \r\n  a|10.0.0.1|11211   b|10.0.0.2|11211\t\r\n\n  \n").unwrap();
    assert_eq!(config.version, 3);
    assert_eq!(
        config.nodes,
        [
            node("a", Some("10.0.0.1"), 11211),
            node("b", Some("10.0.0.2"), 11211)
        ]
    );
}

#[test]
fn missing_ip_and_numeric_hostnames() {
    let config = parse_payload(b"1\n0node.example||11211 1-2-3|::1|11212\n").unwrap();
    assert_eq!(
        config.nodes,
        [
            node("0node.example", None, 11211),
            node("1-2-3", Some("::1"), 11212)
        ]
    );
    // Without an IP, an IP identity falls back to the hostname.
    let servers = config.servers(Identity::Ip);
    assert_eq!(servers[0].point_name(Naming::Libmemcached), "0node.example");
}

#[test]
fn version_must_be_a_positive_integer() {
    for bad in ["0", "-1", "+1", "1.0", "v1", "18446744073709551616"] {
        assert_eq!(
            payload_err(&format!("{bad}\na|1.2.3.4|11211\n")),
            PayloadError::InvalidVersion(bad.to_owned()),
            "{bad}"
        );
    }
    assert_eq!(payload_err(""), PayloadError::MissingVersion);
    assert_eq!(
        payload_err("\na|1.2.3.4|11211\n"),
        PayloadError::MissingVersion
    );
}

#[test]
fn bad_payloads() {
    assert_eq!(payload_err("1\n"), PayloadError::NoNodes);
    assert_eq!(payload_err("1"), PayloadError::NoNodes);
    assert_eq!(payload_err("1\n \n"), PayloadError::NoNodes);
    assert_eq!(
        payload_err("1\na|1.2.3.4|11211\nb|1.2.3.5|11211\n"),
        PayloadError::TrailingData("b|1.2.3.5|11211".to_owned())
    );
    assert_eq!(
        parse_payload(b"1\n\xff|1.2.3.4|11211\n"),
        Err(PayloadError::NotUtf8)
    );
    let cases = [
        ("a|1.2.3.4", NodeError::Fields),
        ("a|1.2.3.4|11211|x", NodeError::Fields),
        ("|1.2.3.4|11211", NodeError::EmptyHost),
        ("a|1.2.3|11211", NodeError::Ip),
        ("a|1.2.3.4|0", NodeError::Port),
        ("a|1.2.3.4|65536", NodeError::Port),
        ("a|1.2.3.4|+1", NodeError::Port),
        ("a|1.2.3.4|", NodeError::Port),
    ];
    for (entry, reason) in cases {
        assert_eq!(
            payload_err(&format!("1\nok|1.2.3.4|11211 {entry}\n")),
            PayloadError::InvalidNode {
                node: entry.to_owned(),
                reason
            },
            "{entry}"
        );
    }
}

#[test]
fn error_replies() {
    assert_eq!(reply_err(b"ERROR\r\n"), ReplyError::UnknownCommand);
    assert_eq!(reply_err(b"END\r\n"), ReplyError::NotFound);
    assert_eq!(
        reply_err(b"CLIENT_ERROR bad command line format\r\n"),
        ReplyError::ClientError("bad command line format".to_owned())
    );
    assert_eq!(
        reply_err(b"SERVER_ERROR out of memory\r\n"),
        ReplyError::ServerError("out of memory".to_owned())
    );
    assert_eq!(
        reply_err(b"STORED\r\n"),
        ReplyError::UnexpectedLine("STORED".to_owned())
    );
    assert_eq!(
        reply_err(b"VALUE foo 0 1\r\nx\r\nEND\r\n"),
        ReplyError::WrongKey("foo".to_owned())
    );
    assert_eq!(
        reply_err(b"CONFIG cluster 0\r\n"),
        ReplyError::BadHeader("CONFIG cluster 0".to_owned())
    );
    assert_eq!(
        reply_err(b"CONFIG cluster x 5\r\n"),
        ReplyError::BadHeader("CONFIG cluster x 5".to_owned())
    );
    assert_eq!(
        reply_err(b"CONFIG cluster 0 2\r\n1\n\r\nEND\r\n"),
        ReplyError::Payload(PayloadError::NoNodes)
    );
    assert_eq!(
        reply_err(b"CONFIG cluster 0 14\r\n1\na|1.2.3.4|1\r\nEND\r\nEND\r\n").to_string(),
        "declared length does not match the data block"
    );
    assert_eq!(
        reply_err(b"CONFIG cluster 0 13\r\n1\na|1.2.3.4|1\r\nENDX\r\n"),
        ReplyError::MissingEnd("ENDX".to_owned())
    );
    assert_eq!(
        reply_err(b"CONFIG cluster 0 13\r\n1\na|1.2.3.4|1\r\nEXD"),
        ReplyError::MissingEnd("EXD".to_owned())
    );
}

#[test]
fn newer_versions_supersede() {
    let config = parse_payload(b"5\na|1.2.3.4|11211\n").unwrap();
    assert!(config.supersedes(None));
    assert!(config.supersedes(Some(4)));
    assert!(!config.supersedes(Some(5)));
    assert!(!config.supersedes(Some(6)));
}

/// Random and mutated configuration replies never panic the parser.
#[test]
fn random_input_never_panics() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut buf = LOCAL.to_vec();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % buf.len();
            match next() % 3 {
                0 => buf[at] = next() as u8,
                1 => buf.truncate(at.max(1)),
                _ => buf.insert(at, b"|\n 0"[(next() % 4) as usize]),
            }
        }
        if let Ok(Some(reply)) = parse_reply(&buf) {
            assert!(reply.consumed <= buf.len());
            assert!(reply.config.version > 0 && !reply.config.nodes.is_empty());
        }
    }
}
