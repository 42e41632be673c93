//! Side by side: one scripted session is sent to ferrocache and to a fresh memcached (same
//! flags), step by step, and the replies are compared byte for byte after a small set of
//! normalisations (documented in docs/compat.md, "Side-by-side normalisations").
//!
//! Session files live in tests/side_by_side/. Format:
//! - blank lines and lines starting with `#` are ignored;
//! - `@reconnect` closes both connections and opens fresh ones (this also happens by itself
//!   after a step that ends with a close);
//! - `@args <flags>` (before the first step) gives both servers extra flags;
//! - every other line is one step, sent as one write after unescaping `\r \n \t \0 \\ \xNN`
//!   and expanding `{N*c}` into N copies of the character c; `\r\n` is appended unless the
//!   line already ends with a newline or ends with `\!` (send without a line end);
//!   `$CAS` becomes the CAS value of the most recent `VALUE … <cas>` (or meta `c<cas>`) that
//!   server sent.
//!
//! Reading a step's reply: after every complete step the same barrier is sent to both servers
//! (store a private key with `noreply`, then `get` it); everything received before the
//! barrier's reply is the step's reply, on both sides, whatever the timing. A step that ends
//! without a line end (`\!`) gets no barrier (it would become part of the line): memcached's
//! reply is read until a quiet period or a close, and the subject's until it ends like
//! memcached's. The barrier key appears only in `stats` figures, which are normalised away.
//!
//! `SBS_TRACE=1` prints each step's reference reply and timing on stderr.

mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(30);
const FIRST_BYTE: Duration = Duration::from_millis(400);
const SLOW_SIDE_LIMIT: Duration = Duration::from_secs(3);
const DIVERGED_QUIET: Duration = Duration::from_millis(100);
const PARTIAL_FIRST_BYTE: Duration = Duration::from_secs(1);
const BARRIER_LIMIT: Duration = Duration::from_secs(10);

/// Sent after every complete step: its reply marks the end of the step's own reply, so the
/// comparison does not depend on timing. (A key of its own, stored again each time because the
/// session may flush.)
const BARRIER: &[u8] = b"set __sbs_barrier 0 0 1 noreply\r\nB\r\nget __sbs_barrier\r\n";
const BARRIER_REPLY: &[u8] = b"VALUE __sbs_barrier 0 1\r\nB\r\nEND\r\n";

struct Step {
    line_no: usize,
    raw: String,
    kind: StepKind,
}

enum StepKind {
    /// Bytes to send, and whether the step deliberately ends without a line end.
    Send(Vec<u8>, bool),
    Reconnect,
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => {
                i += 1;
                match b[i] {
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'0' => out.push(0),
                    b'\\' => out.push(b'\\'),
                    b'x' => {
                        let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                        out.push(
                            u8::from_str_radix(h, 16)
                                .unwrap_or_else(|_| panic!("bad \\x escape in {s}")),
                        );
                        i += 2;
                    }
                    c => panic!("unknown escape \\{} in {s}", c as char),
                }
                i += 1;
            }
            b'{' => {
                let end = s[i..]
                    .find('}')
                    .map(|e| e + i)
                    .unwrap_or_else(|| panic!("unclosed {{ in {s}"));
                let inner = &s[i + 1..end];
                let (n, c) = inner
                    .split_once('*')
                    .unwrap_or_else(|| panic!("bad repeat {{{inner}}}"));
                let n: usize = n.parse().unwrap();
                let c = unescape(c);
                for _ in 0..n {
                    out.extend_from_slice(&c);
                }
                i = end + 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn parse_session(text: &str) -> (Vec<String>, Vec<Step>) {
    let mut args = Vec::new();
    let mut steps = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(a) = line.strip_prefix("@args ") {
            assert!(steps.is_empty(), "@args must come before the first step");
            args.extend(a.split_whitespace().map(String::from));
        } else if line.trim() == "@reconnect" {
            steps.push(Step {
                line_no: n + 1,
                raw: line.to_string(),
                kind: StepKind::Reconnect,
            });
        } else {
            let (bytes, partial) = match line.strip_suffix("\\!") {
                Some(partial) => (unescape(partial), true),
                None => {
                    let mut b = unescape(line);
                    if !b.ends_with(b"\n") {
                        b.extend_from_slice(b"\r\n");
                    }
                    (b, false)
                }
            };
            steps.push(Step {
                line_no: n + 1,
                raw: line.to_string(),
                kind: StepKind::Send(bytes, partial),
            });
        }
    }
    (args, steps)
}

/// Per-server state for normalisation: CAS values are renamed in order of first appearance.
#[derive(Default)]
struct Side {
    cas_names: HashMap<String, usize>,
    last_cas: Option<String>,
}

impl Side {
    /// A copy that shares the CAS numbering so far, for normalising without side effects.
    fn clone_numbering(&self) -> Side {
        Side {
            cas_names: self.cas_names.clone(),
            last_cas: None,
        }
    }

    fn cas_token(&mut self, v: &str) -> String {
        let n = self.cas_names.len() + 1;
        let id = *self.cas_names.entry(v.to_string()).or_insert(n);
        format!("<cas{id}>")
    }

    /// Applies the documented normalisations to a reply. Data blocks are skipped by length so
    /// that value bytes are never rewritten.
    fn normalise(&mut self, reply: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        let mut in_stats = false;
        while i < reply.len() {
            let end = match find(&reply[i..], b"\n") {
                Some(p) => i + p + 1,
                None => {
                    out.extend_from_slice(&reply[i..]);
                    break;
                }
            };
            let line = &reply[i..end];
            i = end;
            let text = String::from_utf8_lossy(line).to_string();
            // Rule 2: a block of STAT lines collapses to one marker line.
            if text.starts_with("STAT ") {
                if !in_stats {
                    out.extend_from_slice(b"STAT <stats>\r\n");
                    in_stats = true;
                }
                continue;
            }
            in_stats = false;
            // Rule 1: the version string.
            if text.starts_with("VERSION ") && text.ends_with("\r\n") {
                out.extend_from_slice(b"VERSION <version>\r\n");
                continue;
            }
            if text.starts_with("VALUE ") && text.ends_with("\r\n") {
                let parts: Vec<&str> = text.trim_end_matches("\r\n").split(' ').collect();
                if parts.len() == 4 || parts.len() == 5 {
                    let mut data: &[u8] = &[];
                    let mut data_len = parts[3].to_string();
                    if let Ok(len) = parts[3].parse::<usize>() {
                        let data_end = (i + len + 2).min(reply.len());
                        data = &reply[i..data_end];
                        i = data_end;
                        // Rule 4: a number that incr/decr left padded with spaces.
                        if let Some(body) = data.strip_suffix(b"\r\n") {
                            let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
                            if digits > 0
                                && digits < body.len()
                                && body[digits..].iter().all(|&b| b == b' ')
                            {
                                data = &data[..digits];
                                data_len = digits.to_string();
                            }
                        }
                    }
                    let mut l = format!("{} {} {} {}", parts[0], parts[1], parts[2], data_len);
                    // Rule 3: CAS unique values.
                    if parts.len() == 5 {
                        self.last_cas = Some(parts[4].to_string());
                        l.push(' ');
                        l.push_str(&self.cas_token(parts[4]));
                    }
                    l.push_str("\r\n");
                    out.extend_from_slice(l.as_bytes());
                    out.extend_from_slice(data);
                    if data.len() == data_len.parse::<usize>().unwrap_or(usize::MAX) {
                        out.extend_from_slice(b"\r\n");
                    }
                    continue;
                }
            }
            // Rule 3 for meta replies: `c<cas>` return flags.
            let meta_codes = ["HD", "VA", "EN", "NS", "EX", "NF"];
            let first = text.split(' ').next().unwrap_or("").trim_end();
            if meta_codes.contains(&first) && text.ends_with("\r\n") {
                let toks: Vec<String> = text
                    .trim_end_matches("\r\n")
                    .split(' ')
                    .map(|t| {
                        if t.len() > 1
                            && t.starts_with('c')
                            && t[1..].bytes().all(|b| b.is_ascii_digit())
                        {
                            self.last_cas = Some(t[1..].to_string());
                            format!("c{}", self.cas_token(&t[1..]))
                        } else {
                            t.to_string()
                        }
                    })
                    .collect();
                let l = toks.join(" ") + "\r\n";
                out.extend_from_slice(l.as_bytes());
                // A VA line is followed by its data block.
                if first == "VA" {
                    if let Some(len) = toks.get(1).and_then(|t| t.parse::<usize>().ok()) {
                        let data_end = (i + len + 2).min(reply.len());
                        out.extend_from_slice(&reply[i..data_end]);
                        i = data_end;
                    }
                }
                continue;
            }
            out.extend_from_slice(line);
        }
        out
    }
}

/// Replaces `$CAS` with the side's last seen CAS value (only when the step uses it).
fn fill_cas(b: &[u8], side: &Side) -> Vec<u8> {
    let Some(cas) = &side.last_cas else {
        return b.to_vec();
    };
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"$CAS") {
            out.extend_from_slice(cas.as_bytes());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

struct Reply {
    bytes: Vec<u8>,
    closed: bool,
}

/// Reads up to the barrier's reply (which is removed), or until the connection closes.
fn read_to_barrier(c: &mut Conn) -> Reply {
    let deadline = Instant::now() + BARRIER_LIMIT;
    let mut bytes = Vec::new();
    loop {
        if bytes.ends_with(BARRIER_REPLY) {
            bytes.truncate(bytes.len() - BARRIER_REPLY.len());
            return Reply {
                bytes,
                closed: false,
            };
        }
        let (got, closed) = c.read_some(Duration::from_millis(100));
        bytes.extend(got);
        if closed {
            return Reply {
                bytes,
                closed: true,
            };
        }
        if Instant::now() > deadline {
            bytes.extend_from_slice(b" <no reply to the barrier>");
            return Reply {
                bytes,
                closed: false,
            };
        }
    }
}

/// Reads until `QUIET` passes without data (waiting up to `first` for the first byte).
fn read_reply_quiet(c: &mut Conn, first: Duration) -> Reply {
    let mut bytes = Vec::new();
    loop {
        let wait = if bytes.is_empty() { first } else { QUIET };
        let (got, closed) = c.read_some(wait);
        let had = !got.is_empty();
        bytes.extend(got);
        if closed {
            return Reply {
                bytes,
                closed: true,
            };
        }
        if !had {
            return Reply {
                bytes,
                closed: false,
            };
        }
    }
}

/// Reads until the normalised reply is at least as long as `want_norm` and ends with the same
/// last line (or the connection closes, or a time limit passes), then a quiet period.
fn read_reply_like(c: &mut Conn, side: &Side, want: &Reply, want_norm: &[u8]) -> Reply {
    if want.bytes.is_empty() {
        if want.closed {
            let deadline = Instant::now() + SLOW_SIDE_LIMIT;
            let mut bytes = Vec::new();
            while Instant::now() < deadline {
                let (got, closed) = c.read_some(Duration::from_millis(50));
                bytes.extend(got);
                if closed {
                    return Reply {
                        bytes,
                        closed: true,
                    };
                }
            }
            return Reply {
                bytes,
                closed: false,
            };
        }
        return read_reply_quiet(c, FIRST_BYTE);
    }
    let last_line = {
        let t = &want_norm[..want_norm.len().saturating_sub(1)];
        let start = t
            .iter()
            .rposition(|&b| b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(0);
        want_norm[start..].to_vec()
    };
    let deadline = Instant::now() + SLOW_SIDE_LIMIT;
    let mut bytes = Vec::new();
    loop {
        let (got, closed) = c.read_some(Duration::from_millis(50));
        bytes.extend(got);
        if closed {
            return Reply {
                bytes,
                closed: true,
            };
        }
        if !bytes.is_empty() {
            // Normalise a scratch copy so CAS numbering is not disturbed.
            let mut scratch = Side {
                cas_names: side.cas_names.clone(),
                last_cas: None,
            };
            let norm = scratch.normalise(&bytes);
            if norm.ends_with(&last_line) && norm.len() >= want_norm.len() {
                break;
            }
            // Already different from the reference (beyond a partly received line): no need
            // to wait for the time limit, just collect what else arrives.
            let complete = norm
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|p| p + 1)
                .unwrap_or(0);
            if !want_norm.starts_with(&norm[..complete]) {
                let extra = read_reply_quiet(c, DIVERGED_QUIET);
                bytes.extend(extra.bytes);
                return Reply {
                    bytes,
                    closed: extra.closed,
                };
            }
        }
        if Instant::now() > deadline {
            return Reply {
                bytes,
                closed: false,
            };
        }
    }
    let extra = read_reply_quiet(c, QUIET);
    bytes.extend(extra.bytes);
    Reply {
        bytes,
        closed: extra.closed,
    }
}

fn run_session(file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/side_by_side")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (args, steps) = parse_session(&text);
    run_steps(file, &args, &steps);
}

/// Sends `steps` to a fresh memcached and a fresh subject and compares every reply.
fn run_steps(name: &str, args: &[String], steps: &[Step]) {
    let file = name;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    require_memcached();
    let reference = Server::start_kind(Target::Memcached, &args);
    let subject = Server::start_kind(target(), &args);
    let (mut rc, mut sc) = (reference.conn(), subject.conn());
    let (mut rs, mut ss) = (Side::default(), Side::default());
    let mut mismatches = Vec::new();
    for step in steps {
        match &step.kind {
            StepKind::Reconnect => {
                rc = reference.conn();
                sc = subject.conn();
            }
            StepKind::Send(bytes, partial) => {
                let rb = fill_cas(bytes, &rs);
                let sb = fill_cas(bytes, &ss);
                let r_ok = rc.try_send(&rb);
                let s_ok = sc.try_send(&sb);
                let t0 = Instant::now();
                let (want, got);
                if *partial {
                    want = read_reply_quiet(&mut rc, PARTIAL_FIRST_BYTE);
                    let want_norm = rs.clone_numbering().normalise(&want.bytes);
                    got = read_reply_like(&mut sc, &ss, &want, &want_norm);
                } else {
                    rc.try_send(BARRIER);
                    sc.try_send(BARRIER);
                    want = read_to_barrier(&mut rc);
                    got = read_to_barrier(&mut sc);
                }
                if std::env::var("SBS_TRACE").is_ok() {
                    eprintln!(
                        "{:?} line {} {}",
                        t0.elapsed(),
                        step.line_no,
                        esc_short(&want.bytes)
                    );
                }
                let want_norm = rs.normalise(&want.bytes);
                let got_norm = ss.normalise(&got.bytes);
                let show = |r: &Reply, n: &[u8], ok: bool| {
                    format!(
                        "{}{}{}",
                        esc_short(n),
                        if r.closed { " <closed>" } else { "" },
                        if ok { "" } else { " <write failed>" }
                    )
                };
                if want_norm != got_norm || want.closed != got.closed {
                    mismatches.push(format!(
                        "line {}: {}\n    memcached: {}\n    subject:   {}",
                        step.line_no,
                        step.raw,
                        show(&want, &want_norm, r_ok),
                        show(&got, &got_norm, s_ok)
                    ));
                }
                // After a close (on either side), carry on with fresh connections.
                if want.closed || got.closed {
                    rc = reference.conn();
                    sc = subject.conn();
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} steps of {file} differ from memcached:\n{}",
        mismatches.len(),
        steps.len(),
        mismatches.join("\n")
    );
}

#[test]
fn classic_text_session_matches_memcached() {
    run_session("session.txt");
}

#[test]
fn error_session_matches_memcached() {
    run_session("errors.txt");
}

#[test]
fn switches_session_matches_memcached() {
    run_session("switches.txt");
}

#[test]
fn meta_session_matches_memcached() {
    run_session("meta.txt");
}

#[test]
fn normalisation_rules() {
    let mut s = Side::default();
    let n = s.normalise(b"VERSION 1.6.18\r\nSTAT pid 1\r\nSTAT x y\r\nEND\r\nVALUE k 0 3 77\r\nabc\r\nVALUE j 0 3 78\r\nVERSION 9\r\nVALUE k 0 1 77\r\nz\r\nEND\r\nHD c78\r\n");
    assert_eq!(
        esc(&n),
        esc(b"VERSION <version>\r\nSTAT <stats>\r\nEND\r\nVALUE k 0 3 <cas1>\r\nabc\r\nVALUE j 0 3 <cas2>\r\nVERSION 9\r\nVALUE k 0 1 <cas1>\r\nz\r\nEND\r\nHD c<cas2>\r\n")
    );
    assert_eq!(s.last_cas.as_deref(), Some("78"));
    let n = Side::default().normalise(b"VALUE n 0 3\r\n99 \r\nVALUE m 0 3\r\n 99\r\nEND\r\n");
    assert_eq!(
        esc(&n),
        esc(b"VALUE n 0 2\r\n99\r\nVALUE m 0 3\r\n 99\r\nEND\r\n")
    );
    assert_eq!(unescape(r"a\r\n{3*x}\x00\\"), b"a\r\nxxx\0\\");
}

/// A small deterministic generator (xorshift64*), so random sessions are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a, T: ?Sized>(&mut self, xs: &[&'a T]) -> &'a T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One random step from a grammar of classic text commands, valid and invalid. Nothing in it
/// depends on time passing or on memory pressure. Arithmetic only touches `n` (which only ever
/// holds numbers) and `t` (never a number), because memcached pads a shortened number with
/// spaces or not depending on thread timing (rule 4 hides that only for whole values). `n` also
/// stays below 2^63: on a stored value at or above it memcached's answer depends on the memory
/// behind the item (docs/compat.md), so `incr` never takes the 2^64−1 delta.
///
/// Over-long keys only appear in steps that are a single command: when memcached rejects a
/// multiget for a too-long key it also drops the replies to earlier commands of the same read,
/// so the outcome of a pipeline would depend on how the bytes were split into reads
/// (docs/compat.md).
fn random_step(rng: &mut Rng, alone: bool) -> Vec<u8> {
    let keys: &[&str] = &["a", "b", "c", "big", "k:1", "\x01k"];
    let values: &[&[u8]] = &[
        b"",
        b"1",
        b"10",
        b"99",
        b"abc",
        b"18446744073709551615",
        b"a\r\nb\0c",
        b" 12",
        b"-5",
        b"END\r\nVALUE x 0 1\r\n",
    ];
    let numbers: &[&str] = &["0", "9", "10", "99", "100", "4611686018427387904"];
    let flags: &[&str] = &["0", "0", "0", "0", "1", "4294967295", "abc", "-1"];
    let exptimes: &[&str] = &["0", "0", "0", "0", "0", "0", "-1", "1000", "2592000", "abc"];
    let deltas: &[&str] = &[
        "0",
        "1",
        "5",
        "18446744073709551615",
        "abc",
        "-1",
        "18446744073709551616",
    ];
    let key = |rng: &mut Rng| match rng.next() % 40 {
        0 => "k".repeat(250),
        1 if alone => "k".repeat(251),
        2..=4 => "n".to_string(),
        5 => "t".to_string(),
        _ => rng.pick(keys).to_string(),
    };
    let noreply = |rng: &mut Rng| if rng.chance(15) { " noreply" } else { "" };
    let mut out = Vec::new();
    match rng.next() % 15 {
        0..=3 => {
            let verb = rng.pick(&["set", "add", "replace", "append", "prepend", "cas"]);
            let k = rng.pick(keys);
            let v = rng.pick(values);
            // Mostly the right length; sometimes a wrong one.
            let len = if rng.chance(90) {
                v.len()
            } else {
                (v.len() + 1).saturating_sub((rng.next() % 3) as usize)
            };
            let cas = if verb == "cas" {
                if rng.chance(70) {
                    " $CAS".to_string()
                } else {
                    format!(" {}", rng.next() % 1000)
                }
            } else {
                String::new()
            };
            let nr = noreply(rng);
            out.extend(
                format!(
                    "{verb} {k} {} {} {len}{cas}{nr}\r\n",
                    rng.pick(flags),
                    rng.pick(exptimes)
                )
                .bytes(),
            );
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        4 => {
            // Well-formed writes: numbers into n, text into t, and now and then a large value
            // (a large value after a rejected command line would be read as an over-long line,
            // and memcached's reply then depends on how the bytes were split into reads).
            let verb = rng.pick(&["set", "add", "replace"]);
            let (k, v) = match rng.next() % 5 {
                0 => ("t".to_string(), b"abc".to_vec()),
                1 => (rng.pick(keys).to_string(), vec![b'L'; 100_000]),
                _ => ("n".to_string(), rng.pick(numbers).as_bytes().to_vec()),
            };
            out.extend(format!("{verb} {k} 5 0 {}{}\r\n", v.len(), noreply(rng)).bytes());
            out.extend_from_slice(&v);
            out.extend_from_slice(b"\r\n");
        }
        5..=7 => {
            let verb = rng.pick(&["get", "gets", "gat 0", "gats 1000", "get", "gets"]);
            out.extend(verb.bytes());
            for _ in 0..1 + rng.next() % 4 {
                out.push(b' ');
                out.extend(key(rng).bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        8..=9 => {
            let verb = rng.pick(&["incr", "decr"]);
            let k = rng.pick(&["n", "n", "n", "t", "nope"]);
            let nr = noreply(rng);
            let delta = match rng.pick(deltas) {
                "18446744073709551615" if verb == "incr" => "4294967296",
                d => d,
            };
            out.extend(format!("{verb} {k} {delta}{nr}\r\n").bytes());
        }
        10 => {
            let k = key(rng);
            let nr = noreply(rng);
            out.extend(format!("delete {k}{nr}\r\n").bytes());
        }
        11 => {
            let k = key(rng);
            let nr = noreply(rng);
            out.extend(format!("touch {k} {}{nr}\r\n", rng.pick(exptimes)).bytes());
        }
        12 => {
            let junk: &[&[u8]] = &[
                b"",
                b"GET a",
                b"bogus",
                b"set a",
                b"incr",
                b"\x00\xff",
                b"get \x00",
                b"flush_all abc",
                b"verbosity",
                b"gets",
            ];
            out.extend_from_slice(rng.pick(junk));
            out.extend_from_slice(b"\r\n");
        }
        13 => out.extend_from_slice(rng.pick(&[
            &b"flush_all\r\n"[..],
            b"version\r\n",
            b"stats\r\n",
            b"verbosity 1\r\n",
        ])),
        _ => {
            // Several commands in one write.
            let a = random_step(rng, false);
            let b = random_step(rng, false);
            out.extend(a);
            out.extend(b);
        }
    }
    out
}

fn random_session(seed: u64, n: usize) {
    let mut rng = Rng(seed);
    let steps: Vec<Step> = (0..n)
        .map(|i| {
            let bytes = random_step(&mut rng, true);
            Step {
                line_no: i + 1,
                raw: esc_short(&bytes),
                kind: StepKind::Send(bytes, false),
            }
        })
        .collect();
    run_steps(&format!("random session {seed:#x}"), &[], &steps);
}

#[test]
fn random_session_1_matches_memcached() {
    random_session(0x9e37_79b9_7f4a_7c15, 1500);
}

#[test]
fn random_session_2_matches_memcached() {
    random_session(0x1234_5678_9abc_def1, 1500);
}

#[test]
fn random_session_3_matches_memcached() {
    random_session(0x0bad_cafe_f00d_d00d, 1500);
}
