//! Feeds arbitrary bytes to the meta codec through the shared line framing,
//! split into two reads, and checks that parsing never panics, always makes
//! progress, never reports more than it was given, gives the same outcome
//! whatever the split, parses a request identically from exactly its own
//! bytes and with more bytes appended, and never completes a request from
//! a prefix of an incomplete buffer. Every parsed meta request is then answered
//! with each reply shape, so the encoder sees every flag combination too.
//!
//! Shared by the fuzz target `meta` and by `tests/fuzz_regressions.rs`,
//! which replays the inputs under `fuzz/regressions/meta/`.

include!("reparse.rs");

use ferrocache::protocol::meta::{
    encode, MetaCmd, MetaFlags, MetaItemInfo, MetaKey, MetaReply, MetaStatus,
};
use ferrocache::protocol::{text, Limits, Parsed, Request, KEY_MAX_LENGTH};

#[derive(Debug, PartialEq)]
enum Step {
    Request(usize),
    Invalid,
    Closed,
}

/// Answers a parsed meta request with every status, checking the framing of
/// the encoded reply.
fn answer(key: MetaKey<'_>, flags: &MetaFlags<'_>, out: &mut Vec<u8>) {
    let mut buf = [0u8; KEY_MAX_LENGTH];
    let decoded = key.bytes(&mut buf);
    assert!(!decoded.is_empty() && decoded.len() <= KEY_MAX_LENGTH);
    let item = MetaItemInfo {
        cas: u64::MAX,
        client_flags: flags.client_flags(),
        size: 3,
        hit_before: true,
        last_access: 7,
        ttl: flags.ttl().unwrap_or(-1),
        ttl_touched: flags.vivify().unwrap_or(-1),
        ttl_vivified: flags.recache(),
    };
    for cmd in [MetaCmd::Get, MetaCmd::Set, MetaCmd::Delete, MetaCmd::Arith] {
        for status in [
            MetaStatus::Stored,
            MetaStatus::Value,
            MetaStatus::Miss,
            MetaStatus::NotStored,
            MetaStatus::Exists,
            MetaStatus::NotFound,
        ] {
            out.clear();
            encode(
                &MetaReply {
                    cmd,
                    status,
                    flags,
                    key,
                    item,
                    value: b"abc",
                    won: true,
                    stale: true,
                    win_sent: true,
                },
                out,
            );
            assert!(out.ends_with(b"\r\n"));
            assert_eq!(
                out.iter().filter(|&&b| b == b'\n').count(),
                1 + usize::from(status == MetaStatus::Value)
            );
        }
    }
}

/// Bytes a client might send right after a request.
const TAILS: [&[u8]; 3] = [b"mn\r\n", b"\r\n\r\n", b"\xff garbage"];

fn serve(chunks: &[&[u8]], limits: &Limits) -> Vec<Step> {
    let mut buf = Vec::new();
    let mut swallow = 0usize;
    let mut steps = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        let skip = swallow.min(chunk.len());
        swallow -= skip;
        buf.extend_from_slice(&chunk[skip..]);
        loop {
            match text::parse(&buf, limits) {
                Parsed::Incomplete => {
                    // Less input never completes a request.
                    let half = &buf[..buf.len() / 2];
                    assert_eq!(text::parse(half, limits), Parsed::Incomplete);
                    break;
                }
                Parsed::Request { request, consumed } => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    check_reparse!(|b| text::parse(b, limits), &buf, consumed, TAILS);
                    match request {
                        Request::MetaGet { key, flags }
                        | Request::MetaDelete { key, flags }
                        | Request::MetaArith { key, flags }
                        | Request::MetaSet { key, flags, .. } => answer(key, &flags, &mut out),
                        _ => {}
                    }
                    steps.push(Step::Request(consumed));
                    buf.drain(..consumed);
                }
                Parsed::Oversized {
                    consumed,
                    swallow: more,
                    ..
                } => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    steps.push(Step::Invalid);
                    buf.drain(..consumed);
                    swallow = more;
                }
                Parsed::Invalid {
                    error,
                    consumed,
                    swallow: more,
                    close,
                    ..
                } => {
                    out.clear();
                    text::encode(&error, &mut out);
                    assert!(out.ends_with(b"\r\n"));
                    if close {
                        steps.push(Step::Closed);
                        return steps;
                    }
                    assert!(consumed > 0 && consumed <= buf.len());
                    assert!(more == 0 || consumed == buf.len());
                    steps.push(Step::Invalid);
                    buf.drain(..consumed);
                    swallow = more;
                }
            }
        }
    }
    steps
}

/// Runs one input; panics on a violated check.
pub fn run(data: &[u8]) {
    // The first byte picks a meta verb to start with (so most inputs reach
    // the meta parser), the second a small item limit and a split point.
    let (head, input) = data.split_at(data.len().min(2));
    let verb: &[u8] = match head.first().copied().unwrap_or(0) % 7 {
        0 => b"mg ",
        1 => b"ms ",
        2 => b"md ",
        3 => b"ma ",
        4 => b"me ",
        5 => b"mn",
        _ => b"",
    };
    let input = [verb, input].concat();
    let limits = Limits {
        item_size_max: usize::from(head.get(1).copied().unwrap_or(0)) * 4,
        ..Limits::default()
    };
    let split = usize::from(head.get(1).copied().unwrap_or(0)) * 7 % (input.len() + 1);
    let whole = serve(&[&input], &limits);
    let (a, b) = input.split_at(split);
    assert_eq!(serve(&[a, b], &limits), whole);
    // With a bound on values still arriving, what a split buffer parses to
    // depends on the split by design (a value's refusal comes as soon as
    // its header is read), so only `serve`'s own checks apply.
    let bounded = Limits {
        pending_value_max: usize::from(head.get(1).copied().unwrap_or(0)) % 32,
        ..limits
    };
    serve(&[a, b], &bounded);
}
