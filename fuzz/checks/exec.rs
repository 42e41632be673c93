//! Bytes → parse → execute → encode, in-process, against a real
//! `storage::Cache` with a small memory limit: the path of a connection
//! without its socket. Catches panics (and, under the sanitizer, memory
//! errors in the slab storage) beyond the parsers.
//!
//! Input: two header bytes, then the stream a client sends. The first
//! header byte picks the server settings (page size and memory limit,
//! `-M`, `-C`, growth factor, automove, crawler, `-F`), the second where
//! the stream is split into two reads and how far the clock jumps between
//! them (the housekeeper's maintenance runs after the jump). The stream's
//! first byte chooses the codec as a connection does (0x80 = binary).
//!
//! The connection is registered from 127.0.0.1, so the administrative
//! commands (`config set|delete cluster`, `cluster sync`) are reachable.
//! A sink reports "full" after a few kilobytes so multi-key reads pause and
//! resume.
//!
//! Checks, besides "no panic": every text reply ends in `\r\n`; binary
//! output is a sequence of well-formed response frames; the cache never
//! allocates beyond the largest memory limit it was given, and live items
//! never take more bytes than it allocated.
//!
//! Shared by the fuzz target `exec` and by `tests/fuzz_regressions.rs`,
//! which replays the inputs under `fuzz/regressions/exec/`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ferrocache::config::Settings;
use ferrocache::exec::{self, Context, Outcome, Sink};
use ferrocache::protocol::binary::{self, Frame, Reply, Status};
use ferrocache::protocol::{text, Limits, Parsed, Request, Response};
use ferrocache::state::{ConnEntry, ServerState};

/// Output after which a sink says it is full (the server's is 256 KiB).
const FULL: usize = 4096;
const CONN: u64 = 1;

struct TextSink<'a> {
    out: &'a mut Vec<u8>,
    quiet: bool,
}

impl Sink for TextSink<'_> {
    fn reply(&mut self, response: &Response<'_>) {
        if !self.quiet {
            let before = self.out.len();
            text::encode(response, self.out);
            // metadump lines end in a bare LF, as memcached's do.
            let end: &[u8] = match response {
                Response::MetadumpItem { .. } => b"\n",
                _ => b"\r\n",
            };
            assert!(
                self.out.len() == before || self.out.ends_with(end),
                "text reply not terminated: {response:?}"
            );
        }
    }

    fn is_full(&self) -> bool {
        self.out.len() >= FULL
    }
}

struct BinarySink<'a, 'k> {
    out: &'a mut Vec<u8>,
    reply: Reply<'k>,
}

impl Sink for BinarySink<'_, '_> {
    fn reply(&mut self, response: &Response<'_>) {
        self.reply.encode(response, self.out);
    }

    fn is_full(&self) -> bool {
        self.out.len() >= FULL
    }

    fn cas(&mut self, cas: u64) {
        self.reply.set_cas(cas);
    }
}

/// Checks that `out` is a sequence of complete binary response frames.
fn check_binary_output(out: &[u8]) {
    let mut at = 0;
    while at < out.len() {
        let h = &out[at..];
        assert!(h.len() >= binary::HEADER_LEN, "truncated response header");
        assert_eq!(h[0], binary::MAGIC_RESPONSE);
        let key_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let extras_len = usize::from(h[4]);
        let body_len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        assert!(key_len + extras_len <= body_len, "lengths exceed the body");
        at += binary::HEADER_LEN + body_len;
        assert!(at <= out.len(), "truncated response body");
    }
}

/// Server settings chosen by one byte.
fn settings(b: u8) -> Settings {
    let mut s = Settings {
        threads: 1,
        ..Settings::default()
    };
    // The smallest limits `-m`/`-I` allow, and two far smaller ones (the
    // storage takes any) so that short inputs fill memory and evict.
    let (mem, page) = match b & 3 {
        0 => (2 << 20, 1 << 20),
        1 => (1 << 20, 1 << 10),
        2 => (16 << 10, 1 << 10),
        _ => (64 << 10, 4 << 10),
    };
    s.cache.mem_limit = mem;
    s.cache.item_size_max = page;
    s.cache.hashpower = 12;
    s.cache.evict = b & 4 == 0;
    s.cache.use_cas = b & 8 == 0;
    s.cache.growth_factor = if b & 16 == 0 { 1.25 } else { 1.01 };
    s.cache.slab_automove = if b & 32 == 0 { 1 } else { 2 };
    s.cache.lru_crawler = b & 64 == 0;
    s.flush_enabled = b & 128 == 0;
    s
}

/// The per-connection state the server keeps between reads.
struct Conn {
    /// The codec, fixed by the first byte.
    binary: Option<bool>,
    swallow: usize,
    resume: usize,
}

impl Conn {
    /// Processes as much of `buf` as forms complete requests; returns the
    /// bytes consumed, or `None` when the connection closes.
    fn process(
        &mut self,
        buf: &[u8],
        cx: &Context<'_>,
        limits: &Limits,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        let mut pos = 0;
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(buf.len() - pos);
                pos += n;
                self.swallow -= n;
                if self.swallow > 0 {
                    return Some(pos);
                }
            }
            if pos == buf.len() {
                return Some(pos);
            }
            // The client reads everything between requests.
            if out.len() >= FULL {
                out.clear();
            }
            let binary = *self.binary.get_or_insert(buf[pos] == binary::MAGIC_REQUEST);
            let input = &buf[pos..];
            let step = if binary {
                self.binary_step(input, cx, limits, out)
            } else {
                self.text_step(input, cx, limits, out)
            };
            // `verbosity` may have been raised: keep the log quiet.
            cx.state.verbosity.store(0, Ordering::Relaxed);
            match step {
                Step::Consumed(n) => pos += n,
                Step::Incomplete => return Some(pos),
                // The client drains the output; the same request resumes.
                Step::Paused => out.clear(),
                Step::Close => return None,
            }
        }
    }

    fn text_step(
        &mut self,
        input: &[u8],
        cx: &Context<'_>,
        limits: &Limits,
        out: &mut Vec<u8>,
    ) -> Step {
        match text::parse(input, limits) {
            Parsed::Incomplete => Step::Incomplete,
            Parsed::Request { request, consumed } => {
                let mut sink = TextSink {
                    out,
                    quiet: request.noreply(),
                };
                match exec::execute(&request, self.resume, cx, &mut sink) {
                    Outcome::Done => {
                        self.resume = 0;
                        Step::Consumed(consumed)
                    }
                    Outcome::Close => Step::Close,
                    Outcome::Paused { next_key } => {
                        assert!(next_key > self.resume, "a paused read made no progress");
                        self.resume = next_key;
                        Step::Paused
                    }
                }
            }
            Parsed::Oversized {
                request,
                consumed,
                swallow,
            } => {
                let mut sink = TextSink {
                    out,
                    quiet: request.noreply(),
                };
                exec::execute(&request, 0, cx, &mut sink);
                self.swallow = swallow;
                Step::Consumed(consumed)
            }
            Parsed::Invalid {
                error,
                consumed,
                swallow,
                close,
                quiet,
            } => {
                if !quiet {
                    text::encode(&error, out);
                }
                if close {
                    return Step::Close;
                }
                self.swallow = swallow;
                Step::Consumed(consumed)
            }
        }
    }

    fn binary_step(
        &mut self,
        input: &[u8],
        cx: &Context<'_>,
        limits: &Limits,
        out: &mut Vec<u8>,
    ) -> Step {
        let start = out.len();
        let step = match binary::parse(input, limits) {
            Frame::Incomplete => Step::Incomplete,
            Frame::BadMagic => Step::Close,
            Frame::Error {
                header,
                status,
                consumed,
                swallow,
                close,
            } => {
                Reply::new(header, &Request::Noop).error(status, out);
                if close {
                    return Step::Close;
                }
                self.swallow = swallow;
                Step::Consumed(consumed)
            }
            Frame::Oversized {
                header,
                request,
                consumed,
                swallow,
            } => {
                let mut sink = BinarySink {
                    out,
                    reply: Reply::new(header, &request),
                };
                exec::execute(&request, 0, cx, &mut sink);
                self.swallow = swallow;
                Step::Consumed(consumed)
            }
            Frame::Request {
                header,
                request,
                consumed,
            } => {
                let mut sink = BinarySink {
                    out,
                    reply: Reply::new(header, &request),
                };
                if binary::is_sasl(&request) {
                    // Without -S the connection answers these itself.
                    sink.reply.error(Status::UnknownCommand, sink.out);
                    return Step::Consumed(consumed);
                }
                if request == Request::Quit {
                    sink.reply(&Response::Ok);
                }
                match exec::execute(&request, 0, cx, &mut sink) {
                    Outcome::Done | Outcome::Paused { .. } => Step::Consumed(consumed),
                    Outcome::Close => Step::Close,
                }
            }
        };
        check_binary_output(&out[start..]);
        step
    }
}

enum Step {
    Consumed(usize),
    Incomplete,
    Paused,
    Close,
}

/// Runs one input; panics on a violated check.
pub fn run(data: &[u8]) {
    let (head, input) = data.split_at(data.len().min(2));
    let config = head.first().copied().unwrap_or(0);
    let timing = head.get(1).copied().unwrap_or(0);
    let state = ServerState::new(settings(config));
    state.register_conn(
        CONN,
        ConnEntry {
            fd: -1,
            peer: "127.0.0.1:40000".into(),
            local: "127.0.0.1:11211".into(),
            last_cmd: Arc::new(AtomicU32::new(0)),
        },
    );
    let stats = state.threads[0].clone();
    let cx = Context {
        state: &state,
        stats: &stats,
        conn_id: CONN,
    };
    let limits = Limits {
        item_size_max: state.settings.cache.item_size_max,
        ..Limits::default()
    };
    let mut largest_limit = state.cache.stats().limit_maxbytes;

    let split = usize::from(timing & 0x1f) * 37 % (input.len() + 1);
    // 0, a few seconds, past a typical exptime, or past 30 days.
    let jump: i64 = match timing >> 5 {
        0 | 1 => 0,
        2 => 1,
        3 => 2,
        4 => 10,
        5 => 100,
        6 => 3_000,
        _ => 3_000_000,
    };
    let mut conn = Conn {
        binary: None,
        swallow: 0,
        resume: 0,
    };
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for (i, chunk) in [&input[..split], &input[split..]].into_iter().enumerate() {
        if i == 1 && jump > 0 {
            let now = i64::from(state.clock.now());
            state.clock.set_unix(state.clock.epoch() + now + jump);
            for _ in 0..4 {
                if !state.cache.maintain(state.clock.now()) {
                    break;
                }
            }
        }
        buf.extend_from_slice(chunk);
        let Some(consumed) = conn.process(&buf, &cx, &limits, &mut out) else {
            break;
        };
        buf.drain(..consumed);
        let s = state.cache.stats();
        largest_limit = largest_limit.max(s.limit_maxbytes);
        assert!(s.total_malloced <= largest_limit, "{s:?}");
        assert!(s.bytes <= s.total_malloced, "{s:?}");
    }
}
