//! A closed-loop load generator for memcached-compatible servers.
//!
//! Model: `threads` OS threads share `conns` blocking TCP connections (each
//! thread drives `conns / threads` of them). In one turn a thread writes a
//! batch of `pipeline` requests on every one of its connections, then reads
//! every reply. So each connection has `pipeline` requests in flight, and a
//! thread costs two syscalls per connection per turn — cheap enough to share
//! two cores with the server under test. A request's latency runs from the
//! write of its batch to the parse of its reply, recorded in an HDR
//! histogram.
//!
//! Every value is a pure function of its key (length and bytes), so any
//! reply can be checked exactly no matter which connection wrote the key
//! last: a wrong key, flags, length, data or reply line fails the run.
//!
//! Protocols: [`Protocol::Text`], [`Protocol::Meta`] and
//! [`Protocol::Binary`]. Another codec is added by giving [`Protocol`] a
//! variant and teaching `encode_get`, `encode_set` and `parse_reply` its wire
//! format; nothing else knows about bytes.

use std::collections::VecDeque;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Wire protocol spoken by the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// memcached's text protocol: `get k1 k2`, `set k 0 0 n`.
    Text,
    /// The meta commands: `mg <key> v f k` (several keys: each with `q`,
    /// then `mn`), `ms <key> <len>`.
    Meta,
    /// The binary protocol: GETK (several keys: GETKQ each, then NOOP),
    /// SET with flags 0 and no expiry.
    Binary,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Protocol::Text),
            "meta" => Ok(Protocol::Meta),
            "binary" => Ok(Protocol::Binary),
            _ => Err(format!("unknown protocol {s}")),
        }
    }
}

/// How keys are drawn from the key space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyDist {
    Uniform,
    /// Zipf with this skew (rank 1 is the hottest key).
    Zipf(f64),
}

impl std::str::FromStr for KeyDist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "uniform" {
            return Ok(KeyDist::Uniform);
        }
        if let Some(v) = s.strip_prefix("zipf:") {
            let skew: f64 = v.parse().map_err(|_| format!("bad zipf skew {v}"))?;
            if skew.is_nan() || skew <= 0.0 {
                return Err("zipf skew must be > 0".into());
            }
            return Ok(KeyDist::Zipf(skew));
        }
        Err(format!("key distribution {s}: uniform | zipf:<skew>"))
    }
}

/// Value sizes; the size of a key's value is a function of the key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueSize {
    Fixed(usize),
    /// Uniform in `[lo, hi]`.
    Uniform(usize, usize),
    /// Log-uniform in `[lo, hi]`: as many values of 10–100 bytes as of
    /// 100–1000 bytes.
    LogUniform(usize, usize),
}

impl ValueSize {
    pub fn max(&self) -> usize {
        match *self {
            ValueSize::Fixed(n) => n,
            ValueSize::Uniform(_, h) | ValueSize::LogUniform(_, h) => h,
        }
    }

    /// Size of key `id`'s value.
    #[inline]
    pub fn of(&self, id: u64) -> usize {
        let h = mix(id ^ 0x5bd1_e995);
        match *self {
            ValueSize::Fixed(n) => n,
            ValueSize::Uniform(l, hi) => l + (h % (hi - l + 1) as u64) as usize,
            ValueSize::LogUniform(l, hi) => {
                let u = (h >> 11) as f64 / (1u64 << 53) as f64;
                let (a, b) = ((l.max(1) as f64).ln(), (hi as f64).ln());
                ((a + u * (b - a)).exp() as usize).clamp(l, hi)
            }
        }
    }
}

impl std::str::FromStr for ValueSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let range = |r: &str| -> Result<(usize, usize), String> {
            let (a, b) = r.split_once('-').ok_or(format!("range {r}: lo-hi"))?;
            let (a, b) = (
                a.parse().map_err(|_| format!("bad size {a}"))?,
                b.parse().map_err(|_| format!("bad size {b}"))?,
            );
            if a > b || b == 0 {
                return Err(format!("range {r}: need 0 < lo <= hi"));
            }
            Ok((a, b))
        };
        if let Some(r) = s.strip_prefix("uniform:") {
            let (a, b) = range(r)?;
            return Ok(ValueSize::Uniform(a, b));
        }
        if let Some(r) = s.strip_prefix("loguniform:") {
            let (a, b) = range(r)?;
            return Ok(ValueSize::LogUniform(a, b));
        }
        s.parse()
            .map(ValueSize::Fixed)
            .map_err(|_| format!("value size {s}: N | uniform:lo-hi | loguniform:lo-hi"))
    }
}

/// When a run stops.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    Duration(Duration),
    /// Total requests over all connections.
    Requests(u64),
}

/// One load.
#[derive(Clone, Debug)]
pub struct Load {
    pub threads: usize,
    pub conns: usize,
    pub pipeline: usize,
    /// Fraction of requests that are sets (the rest are gets).
    pub set_frac: f64,
    pub keys: u64,
    /// Key ids are `key_base + 0..keys`, so loads with different value
    /// sizes can use disjoint keys on one server.
    pub key_base: u64,
    pub key_len: usize,
    pub dist: KeyDist,
    pub value: ValueSize,
    /// Keys per get request.
    pub multiget: usize,
    /// Set every key a get missed, as a cache-aside client does.
    pub fill_on_miss: bool,
    pub protocol: Protocol,
    pub stop: Stop,
    /// Requests (total) sent first and not measured.
    pub warmup: u64,
    pub seed: u64,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            threads: 2,
            conns: 50,
            pipeline: 1,
            set_frac: 0.1,
            keys: 100_000,
            key_base: 0,
            key_len: 32,
            dist: KeyDist::Uniform,
            value: ValueSize::Fixed(100),
            multiget: 1,
            fill_on_miss: false,
            protocol: Protocol::Text,
            stop: Stop::Duration(Duration::from_secs(5)),
            warmup: 0,
            seed: 1,
        }
    }
}

/// Results of a run.
#[derive(Clone, Debug)]
pub struct Report {
    pub elapsed: Duration,
    /// Requests answered (a multiget counts once).
    pub requests: u64,
    pub gets: u64,
    pub sets: u64,
    /// Keys asked for by gets, and how many were found.
    pub keys_asked: u64,
    pub hits: u64,
    /// `SERVER_ERROR` replies (e.g. out of memory): legal, but counted.
    pub server_errors: u64,
    pub latency: Histogram<u64>,
}

impl Report {
    pub fn ops_per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    pub fn hit_ratio(&self) -> f64 {
        if self.keys_asked == 0 {
            0.0
        } else {
            self.hits as f64 / self.keys_asked as f64
        }
    }
    /// Latency quantile in microseconds.
    pub fn latency_us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>10.0} req/s  {} req in {:.2}s (get {}, set {})  hit {:.2}% of {} keys  \
             p50 {:.0}us p99 {:.0}us p99.9 {:.0}us  server errors {}",
            self.ops_per_sec(),
            self.requests,
            self.elapsed.as_secs_f64(),
            self.gets,
            self.sets,
            self.hit_ratio() * 100.0,
            self.keys_asked,
            self.latency_us(0.5),
            self.latency_us(0.99),
            self.latency_us(0.999),
            self.server_errors
        )
    }
}

/// splitmix64's finaliser: a cheap, well-mixed hash of a counter.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small fast generator (splitmix64 over a counter).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    /// Uniform in [0, 1).
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Exact Zipf sampling over ranks 1..=n by rejection-inversion (Hörmann and
/// Derflinger, 1996): invert the integral of the continuous density
/// x^-s, round, and accept with a cheap test; no table, O(1) per draw.
pub struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

impl Zipf {
    pub fn new(n: u64, s: f64) -> Self {
        let n = n as f64;
        let mut z = Zipf {
            n,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            cut: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(n + 0.5);
        z.cut = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// (e^x - 1) / x, accurate near 0.
    fn expm1_over_x(x: f64) -> f64 {
        if x.abs() > 1e-8 {
            x.exp_m1() / x
        } else {
            1.0 + x / 2.0 + x * x / 6.0
        }
    }

    /// ln(1 + x) / x, accurate near 0.
    fn ln1p_over_x(x: f64) -> f64 {
        if x.abs() > 1e-8 {
            x.ln_1p() / x
        } else {
            1.0 - x / 2.0 + x * x / 3.0
        }
    }

    /// Integral of x^-s from 1 to x (continuous in s at s = 1).
    fn h_integral(&self, x: f64) -> f64 {
        let l = x.ln();
        Self::expm1_over_x((1.0 - self.s) * l) * l
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral_inv(&self, y: f64) -> f64 {
        let t = (y * (1.0 - self.s)).max(-1.0);
        (Self::ln1p_over_x(t) * y).exp()
    }

    /// A rank in 1..=n.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.unit() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// Draws key ids in `0..keys`.
pub enum KeyGen {
    /// (keys, base)
    Uniform(u64, u64),
    /// Ranks are scattered over ids so hot keys are not neighbours.
    Zipf(Zipf, u64, u64),
}

impl KeyGen {
    pub fn new(keys: u64, dist: KeyDist, base: u64) -> Self {
        match dist {
            KeyDist::Uniform => KeyGen::Uniform(keys, base),
            KeyDist::Zipf(s) => KeyGen::Zipf(Zipf::new(keys, s), keys, base),
        }
    }
    #[inline]
    pub fn next(&self, rng: &mut Rng) -> u64 {
        match self {
            KeyGen::Uniform(n, base) => base + rng.below(*n),
            KeyGen::Zipf(z, n, base) => base + mix(z.sample(rng)) % n,
        }
    }
}

/// Writes key `id` as exactly `len` bytes: `k` and zero-padded decimal.
#[inline]
pub fn write_key(id: u64, len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + len, b'0');
    out[start] = b'k';
    let mut v = id;
    let mut i = start + len;
    while v > 0 && i > start + 1 {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// The bytes of every value: key `id`'s value of length n is
/// `pattern[id % 61 .. id % 61 + n]`.
pub struct Values {
    pattern: Vec<u8>,
    size: ValueSize,
}

impl Values {
    pub fn new(size: ValueSize) -> Self {
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345678";
        let pattern = (0..size.max() + 64)
            .map(|i| alphabet[i % alphabet.len()])
            .collect();
        Values { pattern, size }
    }
    #[inline]
    pub fn of(&self, id: u64) -> &[u8] {
        let off = (id % 61) as usize;
        &self.pattern[off..off + self.size.of(id)]
    }
}

/// A failed check or a broken connection.
#[derive(Debug)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for LoadError {
    fn from(e: std::io::Error) -> Self {
        LoadError(format!("i/o: {e}"))
    }
}

/// A request in flight.
#[derive(Clone, Copy)]
enum Kind {
    /// A get for `n` keys starting at `first` in the connection's key log.
    Get {
        first: usize,
        n: usize,
    },
    Set,
}

struct Conn {
    stream: TcpStream,
    /// Read buffer; bytes `rpos..rlen` are read and not yet parsed. Its
    /// length only grows (zero-filling spare capacity on every read would
    /// cost the client more than parsing).
    rbuf: Vec<u8>,
    rpos: usize,
    rlen: usize,
    wbuf: Vec<u8>,
    inflight: VecDeque<Kind>,
    /// Keys of the gets in flight, in order.
    keylog: Vec<u64>,
    /// Keys missed by a get, to set in the next batch (fill on miss).
    fills: Vec<u64>,
    /// When the batch in flight was written.
    sent: Instant,
}

/// What one reply parse produced.
enum Parsed {
    /// Need more bytes.
    Incomplete,
    /// A complete reply of `len` bytes: `hits` keys found (gets).
    Done { len: usize, hits: u64, error: bool },
}

#[derive(Default)]
struct Tally {
    requests: u64,
    gets: u64,
    sets: u64,
    keys_asked: u64,
    hits: u64,
    server_errors: u64,
}

/// Index of the first `\r\n`.
fn find_crlf(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &b[from..]) {
        let at = from + i;
        if at > 0 && b[at - 1] == b'\r' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// The id in a key's zero-padded digits.
fn key_id(digits: &[u8]) -> Option<u64> {
    let first = digits.iter().position(|&d| d != b'0');
    match first {
        None => digits.iter().all(|&d| d == b'0').then_some(0),
        Some(i) => parse_u64(&digits[i..]),
    }
}

const OP_SET: u8 = 0x01;
const OP_NOOP: u8 = 0x0a;
const OP_GETK: u8 = 0x0c;
const OP_GETKQ: u8 = 0x0d;

/// A binary request header; the key (and extras, value) follow.
fn bin_header(out: &mut Vec<u8>, op: u8, klen: usize, elen: usize, body: usize) {
    out.push(0x80);
    out.push(op);
    out.extend_from_slice(&(klen as u16).to_be_bytes());
    out.push(elen as u8);
    out.push(0); // data type
    out.extend_from_slice(&[0, 0]); // vbucket
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]); // opaque
    out.extend_from_slice(&[0; 8]); // cas
}

struct Shared<'a> {
    load: &'a Load,
    values: &'a Values,
}

impl Shared<'_> {
    fn encode_get(&self, conn: &mut Conn, ids: &[u64]) {
        match self.load.protocol {
            Protocol::Text => {
                conn.wbuf.extend_from_slice(b"get");
                for &id in ids {
                    conn.wbuf.push(b' ');
                    write_key(id, self.load.key_len, &mut conn.wbuf);
                }
                conn.wbuf.extend_from_slice(b"\r\n");
            }
            Protocol::Meta => {
                let quiet = ids.len() > 1;
                for &id in ids {
                    conn.wbuf.extend_from_slice(b"mg ");
                    write_key(id, self.load.key_len, &mut conn.wbuf);
                    conn.wbuf.extend_from_slice(if quiet {
                        b" v f k q\r\n"
                    } else {
                        b" v f k\r\n"
                    });
                }
                if quiet {
                    conn.wbuf.extend_from_slice(b"mn\r\n");
                }
            }
            Protocol::Binary => {
                let quiet = ids.len() > 1;
                for &id in ids {
                    let op = if quiet { OP_GETKQ } else { OP_GETK };
                    let at = conn.wbuf.len();
                    bin_header(&mut conn.wbuf, op, self.load.key_len, 0, self.load.key_len);
                    write_key(id, self.load.key_len, &mut conn.wbuf);
                    debug_assert_eq!(conn.wbuf.len() - at, 24 + self.load.key_len);
                }
                if quiet {
                    bin_header(&mut conn.wbuf, OP_NOOP, 0, 0, 0);
                }
            }
        }
    }

    fn encode_set(&self, conn: &mut Conn, id: u64) {
        let value = self.values.of(id);
        match self.load.protocol {
            Protocol::Text => {
                conn.wbuf.extend_from_slice(b"set ");
                write_key(id, self.load.key_len, &mut conn.wbuf);
                let _ = write!(conn.wbuf, " 0 0 {}\r\n", value.len());
                conn.wbuf.extend_from_slice(value);
                conn.wbuf.extend_from_slice(b"\r\n");
            }
            Protocol::Meta => {
                conn.wbuf.extend_from_slice(b"ms ");
                write_key(id, self.load.key_len, &mut conn.wbuf);
                let _ = write!(conn.wbuf, " {}\r\n", value.len());
                conn.wbuf.extend_from_slice(value);
                conn.wbuf.extend_from_slice(b"\r\n");
            }
            Protocol::Binary => {
                let klen = self.load.key_len;
                bin_header(&mut conn.wbuf, OP_SET, klen, 8, 8 + klen + value.len());
                conn.wbuf.extend_from_slice(&[0u8; 8]); // flags, expiry
                write_key(id, klen, &mut conn.wbuf);
                conn.wbuf.extend_from_slice(value);
            }
        }
    }

    /// Parses and checks the reply to `kind` at the front of `buf`.
    fn parse_reply(&self, kind: Kind, keys: &[u64], buf: &[u8]) -> Result<Parsed, LoadError> {
        match self.load.protocol {
            Protocol::Text => self.parse_text(kind, keys, buf),
            Protocol::Meta => self.parse_meta(kind, keys, buf),
            Protocol::Binary => self.parse_binary(kind, keys, buf),
        }
    }

    fn parse_binary(&self, kind: Kind, keys: &[u64], buf: &[u8]) -> Result<Parsed, LoadError> {
        let bad = |what: &str| Err(LoadError(format!("wrong binary reply: {what}")));
        let mut pos = 0;
        let mut hits = 0;
        let mut next = 0;
        loop {
            let Some(h) = buf.get(pos..pos + 24) else {
                return Ok(Parsed::Incomplete);
            };
            if h[0] != 0x81 {
                return bad(&format!("magic {:#x}", h[0]));
            }
            let op = h[1];
            let klen = u16::from_be_bytes([h[2], h[3]]) as usize;
            let elen = h[4] as usize;
            let status = u16::from_be_bytes([h[6], h[7]]);
            let body = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
            let end = pos + 24 + body;
            if buf.len() < end || klen + elen > body {
                if klen + elen > body {
                    return bad("lengths");
                }
                return Ok(Parsed::Incomplete);
            }
            let server_error = matches!(status, 0x82 | 0x84 | 0x85 | 0x86);
            let (first, n) = match kind {
                Kind::Set => {
                    return match (op, status) {
                        (OP_SET, 0) => Ok(Parsed::Done {
                            len: end,
                            hits: 0,
                            error: false,
                        }),
                        (OP_SET, _) if server_error => Ok(Parsed::Done {
                            len: end,
                            hits: 0,
                            error: true,
                        }),
                        _ => bad(&format!("set: opcode {op:#x} status {status:#x}")),
                    };
                }
                Kind::Get { first, n } => (first, n),
            };
            let quiet = n > 1;
            match (quiet, op, status) {
                (true, OP_NOOP, 0) => {
                    return Ok(Parsed::Done {
                        len: end,
                        hits,
                        error: false,
                    })
                }
                (false, OP_GETK, 1) => {
                    return Ok(Parsed::Done {
                        len: end,
                        hits: 0,
                        error: false,
                    })
                }
                (true, OP_GETKQ, 0) | (false, OP_GETK, 0) => {}
                _ => return bad(&format!("get: opcode {op:#x} status {status:#x}")),
            }
            if elen != 4 {
                return bad("get without 4 bytes of flags");
            }
            let flags = &buf[pos + 24..pos + 28];
            let key = &buf[pos + 28..pos + 28 + klen];
            let data = &buf[pos + 28 + klen..end];
            let flags: &[u8] = if flags == [0, 0, 0, 0] { b"0" } else { b"?" };
            let asked = &keys[first..first + n];
            if let Err(what) = self.check_value(asked, &mut next, key, flags, data) {
                return bad(&what);
            }
            hits += 1;
            pos = end;
            if !quiet {
                return Ok(Parsed::Done {
                    len: pos,
                    hits,
                    error: false,
                });
            }
        }
    }

    /// Checks a found value: key `k` must be the next asked key at or after
    /// `*next` (skipped ones missed), flags 0, data the key's value.
    fn check_value(
        &self,
        asked: &[u64],
        next: &mut usize,
        k: &[u8],
        flags: &[u8],
        data: &[u8],
    ) -> Result<(), String> {
        let got = (k.len() == self.load.key_len && k.first() == Some(&b'k'))
            .then(|| key_id(&k[1..]))
            .flatten();
        let mut found = None;
        if let Some(got) = got {
            while *next < asked.len() {
                *next += 1;
                if asked[*next - 1] == got {
                    found = Some(got);
                    break;
                }
            }
        }
        let Some(id) = found else {
            return Err("key not asked for or out of order".into());
        };
        if flags != b"0" {
            return Err("flags".into());
        }
        if data != self.values.of(id) {
            return Err("data".into());
        }
        Ok(())
    }

    fn parse_meta(&self, kind: Kind, keys: &[u64], buf: &[u8]) -> Result<Parsed, LoadError> {
        let bad = |what: &str, line: &[u8]| {
            Err(LoadError(format!(
                "wrong meta reply ({what}): {:?}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            )))
        };
        let done = |len: usize, hits: u64| {
            Ok(Parsed::Done {
                len,
                hits,
                error: false,
            })
        };
        let mut pos = 0;
        let mut hits = 0;
        let mut next = 0;
        loop {
            let Some(eol) = find_crlf(&buf[pos..]) else {
                return Ok(Parsed::Incomplete);
            };
            let line = &buf[pos..pos + eol];
            let after = pos + eol + 2;
            if line.starts_with(b"SERVER_ERROR") {
                return Ok(Parsed::Done {
                    len: after,
                    hits: 0,
                    error: true,
                });
            }
            let (first, n) = match kind {
                Kind::Set => {
                    return if line == b"HD" {
                        done(after, 0)
                    } else {
                        bad("ms", line)
                    };
                }
                Kind::Get { first, n } => (first, n),
            };
            let quiet = n > 1;
            // A miss may echo the request's flags (`EN k<key>`).
            if !quiet && (line == b"EN" || line.starts_with(b"EN ")) {
                return done(after, 0);
            }
            if quiet && line == b"MN" {
                return done(after, hits);
            }
            let mut parts = line.split(|&c| c == b' ');
            if parts.next() != Some(b"VA") {
                return bad("mg", line);
            }
            let Some(len) = parts.next().and_then(parse_u64) else {
                return bad("VA length", line);
            };
            let (mut flags, mut key) = (None, None);
            for p in parts {
                match p.first() {
                    Some(b'f') => flags = Some(&p[1..]),
                    Some(b'k') => key = Some(&p[1..]),
                    _ => {}
                }
            }
            let (Some(flags), Some(key)) = (flags, key) else {
                return bad("VA without f or k", line);
            };
            let data_end = after + len as usize;
            if buf.len() < data_end + 2 {
                return Ok(Parsed::Incomplete);
            }
            if &buf[data_end..data_end + 2] != b"\r\n" {
                return bad("data terminator", line);
            }
            let asked = &keys[first..first + n];
            if let Err(what) = self.check_value(asked, &mut next, key, flags, &buf[after..data_end])
            {
                return bad(&what, line);
            }
            hits += 1;
            pos = data_end + 2;
            if !quiet {
                return done(pos, hits);
            }
        }
    }

    fn parse_text(&self, kind: Kind, keys: &[u64], buf: &[u8]) -> Result<Parsed, LoadError> {
        let bad = |what: &str, line: &[u8]| {
            Err(LoadError(format!(
                "wrong reply ({what}): {:?}",
                String::from_utf8_lossy(&line[..line.len().min(200)])
            )))
        };
        let Some(eol) = find_crlf(buf) else {
            return Ok(Parsed::Incomplete);
        };
        let line = &buf[..eol];
        if line.starts_with(b"SERVER_ERROR") {
            return Ok(Parsed::Done {
                len: eol + 2,
                hits: 0,
                error: true,
            });
        }
        match kind {
            Kind::Set => {
                if line == b"STORED" {
                    Ok(Parsed::Done {
                        len: eol + 2,
                        hits: 0,
                        error: false,
                    })
                } else {
                    bad("set", line)
                }
            }
            Kind::Get { first, n } => {
                let asked = &keys[first..first + n];
                let mut next = 0; // index into `asked` of the next possible key
                let mut pos = 0;
                let mut hits = 0;
                loop {
                    let Some(eol) = find_crlf(&buf[pos..]) else {
                        return Ok(Parsed::Incomplete);
                    };
                    let line = &buf[pos..pos + eol];
                    if line == b"END" {
                        return Ok(Parsed::Done {
                            len: pos + eol + 2,
                            hits,
                            error: false,
                        });
                    }
                    let mut parts = line.split(|&c| c == b' ');
                    if parts.next() != Some(b"VALUE") {
                        return bad("get", line);
                    }
                    let (Some(k), Some(fl), Some(len)) = (parts.next(), parts.next(), parts.next())
                    else {
                        return bad("VALUE line", line);
                    };
                    let Some(len) = parse_u64(len) else {
                        return bad("VALUE length", line);
                    };
                    let data_start = pos + eol + 2;
                    let data_end = data_start + len as usize;
                    if buf.len() < data_end + 2 {
                        return Ok(Parsed::Incomplete);
                    }
                    if &buf[data_end..data_end + 2] != b"\r\n" {
                        return bad("data terminator", line);
                    }
                    let data = &buf[data_start..data_end];
                    if let Err(what) = self.check_value(asked, &mut next, k, fl, data) {
                        return bad(&what, line);
                    }
                    hits += 1;
                    pos = data_end + 2;
                }
            }
        }
    }
}

/// Sends `load` to `addr` and checks every reply.
pub fn run(addr: SocketAddr, load: &Load) -> Result<Report, LoadError> {
    assert!(load.threads > 0 && load.conns >= load.threads && load.pipeline > 0);
    let values = Values::new(load.value);
    let shared = Shared {
        load,
        values: &values,
    };
    // Warm-up first, then the measured run, so a request count means the
    // same on every server.
    if load.warmup > 0 {
        run_phase(
            addr,
            &shared,
            Stop::Requests(load.warmup),
            load.seed ^ 0xabcdef,
        )?;
    }
    run_phase(addr, &shared, load.stop, load.seed)
}

fn run_phase(
    addr: SocketAddr,
    shared: &Shared<'_>,
    stop: Stop,
    seed: u64,
) -> Result<Report, LoadError> {
    let load = shared.load;
    let start = Instant::now();
    let results: Vec<Result<(Tally, Histogram<u64>), LoadError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..load.threads)
            .map(|t| {
                let conns = load.conns / load.threads + usize::from(t < load.conns % load.threads);
                let stop = match stop {
                    Stop::Requests(n) => Stop::Requests(n * conns as u64 / load.conns as u64),
                    d => d,
                };
                s.spawn(move || drive(addr, shared, conns, stop, seed.wrapping_add(t as u64)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed();
    let mut tally = Tally::default();
    let mut latency = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for r in results {
        let (t, h) = r?;
        tally.requests += t.requests;
        tally.gets += t.gets;
        tally.sets += t.sets;
        tally.keys_asked += t.keys_asked;
        tally.hits += t.hits;
        tally.server_errors += t.server_errors;
        latency.add(&h).unwrap();
    }
    Ok(Report {
        elapsed,
        requests: tally.requests,
        gets: tally.gets,
        sets: tally.sets,
        keys_asked: tally.keys_asked,
        hits: tally.hits,
        server_errors: tally.server_errors,
        latency,
    })
}

fn connect(addr: SocketAddr) -> Result<TcpStream, LoadError> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(s)
}

/// One thread's share: `nconns` connections until `stop`.
fn drive(
    addr: SocketAddr,
    shared: &Shared<'_>,
    nconns: usize,
    stop: Stop,
    seed: u64,
) -> Result<(Tally, Histogram<u64>), LoadError> {
    let load = shared.load;
    let mut rng = Rng::new(mix(seed));
    let keygen = KeyGen::new(load.keys, load.dist, load.key_base);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut tally = Tally::default();
    let mut conns = Vec::with_capacity(nconns);
    for _ in 0..nconns {
        conns.push(Conn {
            stream: connect(addr)?,
            rbuf: vec![0; 64 * 1024],
            rpos: 0,
            rlen: 0,
            wbuf: Vec::with_capacity(16 * 1024),
            inflight: VecDeque::with_capacity(load.pipeline),
            keylog: Vec::new(),
            fills: Vec::new(),
            sent: Instant::now(),
        });
    }
    let deadline = match stop {
        Stop::Duration(d) => Some(Instant::now() + d),
        Stop::Requests(_) => None,
    };
    let mut budget = match stop {
        Stop::Requests(n) => n,
        Stop::Duration(_) => u64::MAX,
    };
    let mut ids = Vec::with_capacity(load.multiget);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) || budget == 0 {
            break;
        }
        // Write a batch on every connection.
        for c in conns.iter_mut() {
            c.wbuf.clear();
            c.keylog.clear();
            for _ in 0..load.pipeline {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                if let Some(id) = c.fills.pop() {
                    shared.encode_set(c, id);
                    c.inflight.push_back(Kind::Set);
                } else if load.set_frac > 0.0 && rng.unit() < load.set_frac {
                    let id = keygen.next(&mut rng);
                    shared.encode_set(c, id);
                    c.inflight.push_back(Kind::Set);
                } else {
                    ids.clear();
                    for _ in 0..load.multiget {
                        ids.push(keygen.next(&mut rng));
                    }
                    let first = c.keylog.len();
                    c.keylog.extend_from_slice(&ids);
                    shared.encode_get(c, &ids);
                    c.inflight.push_back(Kind::Get {
                        first,
                        n: ids.len(),
                    });
                }
            }
            if !c.wbuf.is_empty() {
                c.sent = Instant::now();
                c.stream.write_all(&c.wbuf)?;
            }
        }
        // Read every reply.
        for c in conns.iter_mut() {
            c.rpos = 0;
            c.rlen = 0;
            while let Some(&kind) = c.inflight.front() {
                let parsed = shared.parse_reply(kind, &c.keylog, &c.rbuf[c.rpos..c.rlen])?;
                match parsed {
                    Parsed::Incomplete => {
                        if c.rpos > 0 {
                            c.rbuf.copy_within(c.rpos..c.rlen, 0);
                            c.rlen -= c.rpos;
                            c.rpos = 0;
                        }
                        if c.rbuf.len() - c.rlen < 16 * 1024 {
                            let grown = c.rbuf.len() * 2;
                            c.rbuf.resize(grown, 0);
                        }
                        let n = c.stream.read(&mut c.rbuf[c.rlen..])?;
                        c.rlen += n;
                        if n == 0 {
                            return Err(LoadError("server closed the connection".into()));
                        }
                    }
                    Parsed::Done { len, hits, error } => {
                        c.rpos += len;
                        c.inflight.pop_front();
                        tally.requests += 1;
                        if error {
                            tally.server_errors += 1;
                        }
                        let ns = c.sent.elapsed().as_nanos() as u64;
                        let _ = hist.record(ns.max(1));
                        match kind {
                            Kind::Set => tally.sets += 1,
                            Kind::Get { first, n } => {
                                tally.gets += 1;
                                tally.keys_asked += n as u64;
                                tally.hits += hits;
                                if load.fill_on_miss && (hits as usize) < n {
                                    // Which keys missed is not tracked per key:
                                    // a cache-aside client sets every key it
                                    // did not get; with one key per get that
                                    // is exactly the missed key.
                                    if n == 1 {
                                        c.fills.push(c.keylog[first]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if c.rpos != c.rlen {
                return Err(LoadError("unexpected bytes after the last reply".into()));
            }
        }
    }
    Ok((tally, hist))
}

/// Stores keys `key_base + 0..keys` once (pipelined, several connections), so a
/// following read load hits. Checks every reply.
pub fn preload(addr: SocketAddr, load: &Load, keys: u64) -> Result<(), LoadError> {
    let values = Values::new(load.value);
    let parallel: u64 = 4;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..parallel)
            .map(|p| {
                let values = &values;
                s.spawn(move || -> Result<(), LoadError> {
                    let mut stream = connect(addr)?;
                    let mut reader = stream.try_clone()?;
                    let (lo, hi) = (
                        load.key_base + keys * p / parallel,
                        load.key_base + keys * (p + 1) / parallel,
                    );
                    // Replies are read on another thread so the pipeline
                    // never deadlocks on full socket buffers.
                    let expect = hi - lo;
                    let rd = std::thread::spawn(move || -> Result<u64, LoadError> {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut carry = Vec::new();
                        let mut got = 0u64;
                        let mut errors = 0u64;
                        while got < expect {
                            let n = reader.read(&mut buf)?;
                            if n == 0 {
                                return Err(LoadError("server closed during preload".into()));
                            }
                            carry.extend_from_slice(&buf[..n]);
                            let mut pos = 0;
                            while let Some(e) = find_crlf(&carry[pos..]) {
                                let line = &carry[pos..pos + e];
                                if line.starts_with(b"SERVER_ERROR") {
                                    errors += 1;
                                } else if line != b"STORED" {
                                    return Err(LoadError(format!(
                                        "preload: {:?}",
                                        String::from_utf8_lossy(line)
                                    )));
                                }
                                got += 1;
                                pos += e + 2;
                            }
                            carry.drain(..pos);
                        }
                        Ok(errors)
                    });
                    let mut w = Vec::with_capacity(256 * 1024);
                    let mut id = lo;
                    while id < hi {
                        w.clear();
                        while w.len() < 128 * 1024 && id < hi {
                            let v = values.of(id);
                            w.extend_from_slice(b"set ");
                            write_key(id, load.key_len, &mut w);
                            let _ = write!(w, " 0 0 {}\r\n", v.len());
                            w.extend_from_slice(v);
                            w.extend_from_slice(b"\r\n");
                            id += 1;
                        }
                        stream.write_all(&w)?;
                    }
                    rd.join().unwrap()?;
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap()?;
        }
        Ok(())
    })
}

/// Opens `n` connections, sends one request on each (so both servers have
/// set up whatever a used connection costs), and keeps them open.
pub fn idle_conns(addr: SocketAddr, n: usize) -> Result<Vec<TcpStream>, LoadError> {
    let mut v = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    for _ in 0..n {
        let mut s = connect(addr)?;
        s.write_all(b"get idle\r\n")?;
        let mut got = 0;
        while !buf[..got].ends_with(b"END\r\n") {
            let r = s.read(&mut buf[got..])?;
            if r == 0 {
                return Err(LoadError("server refused a connection".into()));
            }
            got += r;
        }
        v.push(s);
    }
    Ok(v)
}

/// `stats` as name → value.
pub fn stats(addr: SocketAddr) -> Result<Vec<(String, String)>, LoadError> {
    let mut s = connect(addr)?;
    s.write_all(b"stats\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !buf.ends_with(b"END\r\n") {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(LoadError("closed during stats".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf)
        .lines()
        .filter_map(|l| {
            let mut p = l.strip_prefix("STAT ")?.splitn(2, ' ');
            Some((p.next()?.to_string(), p.next()?.to_string()))
        })
        .collect())
}

/// One numeric `stats` value.
pub fn stat(addr: SocketAddr, name: &str) -> Result<u64, LoadError> {
    stats(addr)?
        .into_iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| LoadError(format!("no stat {name}")))
}
