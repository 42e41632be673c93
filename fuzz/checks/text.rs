//! Feeds arbitrary bytes to the text parser the way a connection would:
//! split into reads, parsed until incomplete, honouring `consumed`,
//! `swallow` and `close`. Checks that parsing never panics, always makes
//! progress, never reports more than it was given, that the outcome does
//! not depend on where the reads were split, that a parsed request is
//! parsed identically from exactly its own bytes and with more bytes
//! appended, and that a prefix of an incomplete buffer is incomplete too.
//!
//! Shared by the fuzz target `text` and by `tests/fuzz_regressions.rs`,
//! which replays the inputs under `fuzz/regressions/text/`.

include!("reparse.rs");

use ferrocache::protocol::{text, Limits, Parsed};

/// What a connection did with one parse result.
#[derive(Debug, PartialEq)]
enum Step {
    Request(usize),
    /// Not the consumed count: a rejected oversized block is consumed as far
    /// as it is buffered, which depends on the split.
    Invalid {
        quiet: bool,
    },
    Closed,
}

/// Bytes a client might send right after a request.
const TAILS: [&[u8]; 3] = [b"get k\r\n", b"\r\n\r\n", b"\xff garbage"];

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
                Parsed::Request { consumed, .. } => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    check_reparse!(|b| text::parse(b, limits), &buf, consumed, TAILS);
                    steps.push(Step::Request(consumed));
                    buf.drain(..consumed);
                }
                Parsed::Oversized {
                    consumed,
                    swallow: more,
                    ..
                } => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    assert!(more == 0 || consumed == buf.len());
                    steps.push(Step::Invalid { quiet: false });
                    buf.drain(..consumed);
                    swallow = more;
                }
                Parsed::Invalid {
                    error,
                    consumed,
                    swallow: more,
                    close,
                    quiet,
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
                    steps.push(Step::Invalid { quiet });
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
    // The first two bytes choose small limits (so "too large" and the line
    // rules are reachable) and a split point.
    let (head, input) = data.split_at(data.len().min(2));
    let limits = Limits {
        item_size_max: usize::from(head.first().copied().unwrap_or(0)) * 4,
        max_get_line: 2048 + usize::from(head.get(1).copied().unwrap_or(0)) * 16,
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
