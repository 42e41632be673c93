//! Feeds arbitrary bytes to the binary parser the way a connection would:
//! parsed until incomplete, honouring `consumed`, `swallow` and `close`,
//! with the input split into two reads. Checks that parsing never panics,
//! always makes progress, never consumes more than it was given, encodes a
//! reply for each outcome, that the outcome does not depend on the split,
//! that a frame parses identically from exactly its own bytes and with more
//! bytes appended, and that a prefix of an incomplete buffer is incomplete.
//!
//! Shared by the fuzz target `binary` and by `tests/fuzz_regressions.rs`,
//! which replays the inputs under `fuzz/regressions/binary/`.

include!("reparse.rs");

use ferrocache::protocol::binary::{self, Frame, Reply};
use ferrocache::protocol::{Limits, Request, Response};

#[derive(Debug, PartialEq)]
enum Step {
    Request(u8),
    Refused(u8),
    Closed,
}

/// Bytes a client might send right after a frame: a NOOP, garbage.
const TAILS: [&[u8]; 2] = [
    &[
        0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
    b"\x81\xff garbage",
];

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
            if swallow > 0 {
                let n = swallow.min(buf.len());
                buf.drain(..n);
                swallow -= n;
                if swallow > 0 {
                    break;
                }
            }
            match binary::parse(&buf, limits) {
                Frame::Incomplete => {
                    // Less input never completes a frame.
                    let half = &buf[..buf.len() / 2];
                    assert_eq!(binary::parse(half, limits), Frame::Incomplete);
                    break;
                }
                Frame::BadMagic => {
                    steps.push(Step::Closed);
                    return steps;
                }
                Frame::Request {
                    header,
                    request,
                    consumed,
                } => {
                    assert!(consumed >= binary::HEADER_LEN && consumed <= buf.len());
                    check_reparse!(|b| binary::parse(b, limits), &buf, consumed, TAILS);
                    let mut reply = Reply::new(header, &request);
                    reply.encode(&Response::End, &mut out);
                    steps.push(Step::Request(header.opcode));
                    buf.drain(..consumed);
                }
                Frame::Oversized {
                    header,
                    consumed,
                    swallow: more,
                    ..
                } => {
                    assert!(consumed <= buf.len());
                    steps.push(Step::Refused(header.opcode));
                    buf.drain(..consumed);
                    swallow = more;
                }
                Frame::Error {
                    header,
                    status,
                    consumed,
                    swallow: more,
                    close,
                } => {
                    Reply::new(header, &Request::Noop).error(status, &mut out);
                    if close {
                        steps.push(Step::Closed);
                        return steps;
                    }
                    assert!(consumed <= buf.len());
                    steps.push(Step::Refused(header.opcode));
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
    let (head, input) = data.split_at(data.len().min(2));
    let limits = Limits {
        item_size_max: usize::from(head.first().copied().unwrap_or(0)) * 4,
        max_get_line: 2048,
        ..Limits::default()
    };
    let split = usize::from(head.get(1).copied().unwrap_or(0)) * 7 % (input.len() + 1);
    let whole = serve(&[input], &limits);
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
