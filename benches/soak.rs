//! Soak run: a release ferrocache with `-m 64` under long mixed load
//! for a fixed time, every reply checked.
//!
//! `cargo bench --bench soak -- --secs 600` (default 600 seconds; `--workers N`,
//! default 6). Opt-in: never part of the test suite.
//!
//! Load, from several threads at once:
//! - workers speaking text, meta and binary (each connection picks one),
//!   doing get, multiget, set, cas (gets + cas), delete and incr on keys the
//!   worker owns, plus get/set on a small key space every worker shares;
//! - value sizes from 48 bytes to 900 KB, and now and then one above `-I`
//!   (1 MiB), which must be refused (`SERVER_ERROR object too large for
//!   cache`, binary status 0x03);
//! - a working set of gigabytes against 64 MB, so eviction never stops;
//! - connection churn: workers reconnect every few hundred requests, drop the
//!   connection at random (also in the middle of a value, or with a reply
//!   unread), and a churn thread opens and closes short connections;
//! - an occasional `flush_all`.
//!
//! Values check themselves: `<key> <version> <len> ` + filler + a 16-digit
//! hex FNV-1a checksum of everything before it, and the client flags carry
//! the version. A worker remembers the last version it wrote to each of its
//! keys, so a read must return exactly that version or a miss (eviction,
//! flush, delete): an older version is a stale read. Counters are checked the
//! same way: an incr returns the previous value plus the delta, or starts
//! again from zero after a miss.
//!
//! Every second the server's RSS and open file descriptors are sampled. The
//! report gives ops, errors by kind (expected ones apart), RSS against the
//! bound itemised in docs/memory.md, fds, evictions and wrong values. The
//! process exits non-zero when any check fails.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::loadgen::{mix, Rng};

const MEM_MB: u64 = 64;
const THREADS: u64 = 4;
/// `-I`, the default 1 MiB.
const ITEM_MAX: usize = 1 << 20;
/// Largest ordinary value (well below `-I` minus the item header and key).
const VALUE_MAX: usize = 900_000;
/// Smallest value: room for the header and the checksum.
const VALUE_MIN: usize = 48;
const KEYS_PER_WORKER: u64 = 50_000;
/// Share of requests aimed at the first keys of a worker, so reads hit.
const HOT_KEYS: u64 = 1_500;
const SHARED_KEYS: u64 = 1_000;
const COUNTERS: u64 = 64;
const IO_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Text,
    Meta,
    Binary,
}

/// Counters shared by all threads: name → count.
#[derive(Default)]
struct Tally {
    map: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn add(&self, name: &str, n: u64) {
        *self
            .map
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_insert(0) += n;
    }
    fn get(&self, name: &str) -> u64 {
        self.map.lock().unwrap().get(name).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.map.lock().unwrap().clone()
    }
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A value that names its key, version and length and ends in a checksum.
fn make_value(key: &[u8], ver: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(key);
    let _ = write!(v, " {ver} {len} ");
    let body = len.saturating_sub(16).max(v.len());
    let seed = mix(ver ^ fnv(key));
    let mut block = [0u8; 64];
    for (i, b) in block.iter_mut().enumerate() {
        *b = b'a' + (mix(seed ^ i as u64) % 26) as u8;
    }
    while v.len() < body {
        let n = (body - v.len()).min(64);
        v.extend_from_slice(&block[..n]);
    }
    let sum = fnv(&v);
    let _ = write!(v, "{sum:016x}");
    v
}

/// Checks a value read for `key`: returns its version or what is wrong.
fn check_value(key: &[u8], flags: u32, data: &[u8]) -> Result<u64, String> {
    if data.len() < 16 + key.len() + 4 {
        return Err(format!("short value ({} bytes)", data.len()));
    }
    let (body, sum) = data.split_at(data.len() - 16);
    let want = format!("{:016x}", fnv(body));
    if sum != want.as_bytes() {
        return Err("checksum mismatch".into());
    }
    if !body.starts_with(key) || body[key.len()] != b' ' {
        return Err("value of another key".into());
    }
    let rest = &body[key.len() + 1..];
    let mut it = rest.splitn(3, |&b| b == b' ');
    let ver: u64 = parse(it.next()).ok_or("bad version")?;
    let len: usize = parse(it.next()).ok_or("bad length")?;
    if len != data.len() {
        return Err(format!("length {} announced {len}", data.len()));
    }
    if flags != ver as u32 {
        return Err(format!("flags {flags} for version {ver}"));
    }
    Ok(ver)
}

fn parse<T: std::str::FromStr>(b: Option<&[u8]>) -> Option<T> {
    std::str::from_utf8(b?).ok()?.parse().ok()
}

/// A failed request: the connection is broken or the reply was wrong.
#[derive(Debug)]
enum Fail {
    Io(String),
    Reply(String),
}

type R<T> = Result<T, Fail>;

fn io(e: std::io::Error) -> Fail {
    Fail::Io(e.to_string())
}

/// One hit of a read: (key, flags, data, cas).
type Hit = (Vec<u8>, u32, Vec<u8>, u64);

#[derive(Debug, PartialEq, Eq)]
enum StoreReply {
    Stored,
    Exists,
    NotFound,
    NotStored,
    TooLarge,
    /// No memory could be freed for the item's size class at once (memcached
    /// answers the same); the old value is gone.
    OutOfMemory,
}

struct Client {
    proto: Proto,
    r: BufReader<TcpStream>,
    w: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr, proto: Proto) -> R<Client> {
        let s = TcpStream::connect(addr).map_err(io)?;
        s.set_nodelay(true).map_err(io)?;
        s.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        s.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        let w = s.try_clone().map_err(io)?;
        Ok(Client {
            proto,
            r: BufReader::with_capacity(64 * 1024, s),
            w,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    fn send(&mut self) -> R<()> {
        let r = self.w.write_all(&self.buf).map_err(io);
        self.buf.clear();
        r
    }

    fn line(&mut self) -> R<Vec<u8>> {
        let mut l = Vec::new();
        self.r.read_until(b'\n', &mut l).map_err(io)?;
        if l.is_empty() {
            return Err(Fail::Io("connection closed".into()));
        }
        if !l.ends_with(b"\r\n") {
            return Err(Fail::Reply(format!("bad line {:?}", lossy(&l))));
        }
        l.truncate(l.len() - 2);
        Ok(l)
    }

    fn exact(&mut self, n: usize) -> R<Vec<u8>> {
        let mut v = vec![0; n];
        self.r.read_exact(&mut v).map_err(io)?;
        Ok(v)
    }

    fn data_block(&mut self, n: usize) -> R<Vec<u8>> {
        let mut v = self.exact(n + 2)?;
        if !v.ends_with(b"\r\n") {
            return Err(Fail::Reply("data block without CRLF".into()));
        }
        v.truncate(n);
        Ok(v)
    }

    // ---- binary framing ----

    fn bin_req(&mut self, op: u8, key: &[u8], extras: &[u8], value: &[u8], cas: u64, opaque: u32) {
        let body = extras.len() + key.len() + value.len();
        let b = &mut self.buf;
        b.extend_from_slice(&[0x80, op]);
        b.extend_from_slice(&(key.len() as u16).to_be_bytes());
        b.push(extras.len() as u8);
        b.extend_from_slice(&[0, 0, 0]);
        b.extend_from_slice(&(body as u32).to_be_bytes());
        b.extend_from_slice(&opaque.to_be_bytes());
        b.extend_from_slice(&cas.to_be_bytes());
        b.extend_from_slice(extras);
        b.extend_from_slice(key);
        b.extend_from_slice(value);
    }

    /// (opcode, status, extras, key, value, cas)
    #[allow(clippy::type_complexity)]
    fn bin_resp(&mut self) -> R<(u8, u16, Vec<u8>, Vec<u8>, Vec<u8>, u64)> {
        let h = self.exact(24)?;
        if h[0] != 0x81 {
            return Err(Fail::Reply(format!("bad response magic {:#x}", h[0])));
        }
        let kl = u16::from_be_bytes([h[2], h[3]]) as usize;
        let el = h[4] as usize;
        let status = u16::from_be_bytes([h[6], h[7]]);
        let bl = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
        let cas = u64::from_be_bytes(h[16..24].try_into().unwrap());
        if el + kl > bl || bl > 2 * ITEM_MAX {
            return Err(Fail::Reply("bad response lengths".into()));
        }
        let mut body = self.exact(bl)?;
        let value = body.split_off(el + kl);
        let key = body.split_off(el);
        Ok((h[1], status, body, key, value, cas))
    }

    // ---- operations ----

    /// Reads `keys` (with their CAS); misses are left out.
    fn get(&mut self, keys: &[Vec<u8>]) -> R<Vec<Hit>> {
        let mut hits = Vec::new();
        match self.proto {
            Proto::Text => {
                self.buf.extend_from_slice(b"gets");
                for k in keys {
                    self.buf.push(b' ');
                    self.buf.extend_from_slice(k);
                }
                self.buf.extend_from_slice(b"\r\n");
                self.send()?;
                loop {
                    let l = self.line()?;
                    if l == b"END" {
                        break;
                    }
                    let t: Vec<&[u8]> = l.split(|&b| b == b' ').collect();
                    if t.len() != 5 || t[0] != b"VALUE" {
                        return Err(Fail::Reply(format!("get: {:?}", lossy(&l))));
                    }
                    let key = t[1].to_vec();
                    let flags = parse(Some(t[2])).ok_or(Fail::Reply("get: flags".into()))?;
                    let len: usize = parse(Some(t[3])).ok_or(Fail::Reply("get: len".into()))?;
                    let cas = parse(Some(t[4])).ok_or(Fail::Reply("get: cas".into()))?;
                    let data = self.data_block(len)?;
                    hits.push((key, flags, data, cas));
                }
            }
            Proto::Meta => {
                for k in keys {
                    self.buf.extend_from_slice(b"mg ");
                    self.buf.extend_from_slice(k);
                    self.buf.extend_from_slice(b" k f c v q\r\n");
                }
                self.buf.extend_from_slice(b"mn\r\n");
                self.send()?;
                loop {
                    let l = self.line()?;
                    if l == b"MN" {
                        break;
                    }
                    let t: Vec<&[u8]> = l.split(|&b| b == b' ').collect();
                    if t.len() != 5 || t[0] != b"VA" {
                        return Err(Fail::Reply(format!("mg: {:?}", lossy(&l))));
                    }
                    let len: usize = parse(Some(t[1])).ok_or(Fail::Reply("mg: len".into()))?;
                    let mut key = None;
                    let mut flags = None;
                    let mut cas = None;
                    for f in &t[2..] {
                        match f[0] {
                            b'k' => key = Some(f[1..].to_vec()),
                            b'f' => flags = parse(Some(&f[1..])),
                            b'c' => cas = parse(Some(&f[1..])),
                            _ => {}
                        }
                    }
                    let (Some(key), Some(flags), Some(cas)) = (key, flags, cas) else {
                        return Err(Fail::Reply(format!("mg flags: {:?}", lossy(&l))));
                    };
                    let data = self.data_block(len)?;
                    hits.push((key, flags, data, cas));
                }
            }
            Proto::Binary => {
                for (i, k) in keys.iter().enumerate() {
                    // GETKQ: silent on a miss.
                    self.bin_req(0x0d, k, &[], &[], 0, i as u32);
                }
                self.bin_req(0x0a, &[], &[], &[], 0, u32::MAX);
                self.send()?;
                loop {
                    let (op, status, extras, key, value, cas) = self.bin_resp()?;
                    if op == 0x0a {
                        break;
                    }
                    if op != 0x0d || status != 0 || extras.len() != 4 {
                        return Err(Fail::Reply(format!("getkq: op {op:#x} status {status:#x}")));
                    }
                    let flags = u32::from_be_bytes(extras[..4].try_into().unwrap());
                    hits.push((key, flags, value, cas));
                }
            }
        }
        Ok(hits)
    }

    /// set (cas = 0) or cas; `cut` sends only that many bytes of the request
    /// and then drops the connection (the caller must not use it again).
    fn store(
        &mut self,
        key: &[u8],
        flags: u32,
        data: &[u8],
        cas: u64,
        cut: Option<f64>,
    ) -> R<StoreReply> {
        match self.proto {
            Proto::Text => {
                if cas == 0 {
                    let _ = write!(self.buf, "set {} {flags} 0 {}\r\n", lossy(key), data.len());
                } else {
                    let _ = write!(
                        self.buf,
                        "cas {} {flags} 0 {} {cas}\r\n",
                        lossy(key),
                        data.len()
                    );
                }
                self.buf.extend_from_slice(data);
                self.buf.extend_from_slice(b"\r\n");
            }
            Proto::Meta => {
                let _ = write!(self.buf, "ms {} {} F{flags} T0", lossy(key), data.len());
                if cas != 0 {
                    let _ = write!(self.buf, " C{cas}");
                }
                self.buf.extend_from_slice(b"\r\n");
                self.buf.extend_from_slice(data);
                self.buf.extend_from_slice(b"\r\n");
            }
            Proto::Binary => {
                let mut extras = [0u8; 8];
                extras[..4].copy_from_slice(&flags.to_be_bytes());
                self.bin_req(0x01, key, &extras, data, cas, 7);
            }
        }
        if let Some(frac) = cut {
            let n = ((self.buf.len() as f64 * frac) as usize).clamp(1, self.buf.len() - 1);
            let _ = self.w.write_all(&self.buf[..n]);
            self.buf.clear();
            let _ = self.w.shutdown(Shutdown::Both);
            return Ok(StoreReply::NotStored);
        }
        self.send()?;
        let reply = match self.proto {
            Proto::Text | Proto::Meta => {
                let l = self.line()?;
                match &l[..] {
                    b"STORED" | b"HD" => StoreReply::Stored,
                    b"EXISTS" | b"EX" => StoreReply::Exists,
                    b"NOT_FOUND" | b"NF" => StoreReply::NotFound,
                    b"NOT_STORED" | b"NS" => StoreReply::NotStored,
                    b"SERVER_ERROR object too large for cache" => StoreReply::TooLarge,
                    b"SERVER_ERROR out of memory storing object" => StoreReply::OutOfMemory,
                    _ => return Err(Fail::Reply(format!("store: {:?}", lossy(&l)))),
                }
            }
            Proto::Binary => {
                let (op, status, _, _, value, _) = self.bin_resp()?;
                match (op, status) {
                    (0x01, 0) => StoreReply::Stored,
                    (0x01, 2) => StoreReply::Exists,
                    (0x01, 1) => StoreReply::NotFound,
                    (0x01, 5) => StoreReply::NotStored,
                    (0x01, 3) if value == b"Too large." => StoreReply::TooLarge,
                    (0x01, 0x82) if value == b"Out of memory" => StoreReply::OutOfMemory,
                    _ => {
                        return Err(Fail::Reply(format!(
                            "binary set: op {op:#x} status {status:#x} {:?}",
                            lossy(&value)
                        )))
                    }
                }
            }
        };
        Ok(reply)
    }

    /// Returns whether the key was there.
    fn delete(&mut self, key: &[u8]) -> R<bool> {
        match self.proto {
            Proto::Text | Proto::Meta => {
                let verb = if self.proto == Proto::Text {
                    "delete"
                } else {
                    "md"
                };
                let _ = write!(self.buf, "{verb} {}\r\n", lossy(key));
                self.send()?;
                let l = self.line()?;
                match &l[..] {
                    b"DELETED" | b"HD" => Ok(true),
                    b"NOT_FOUND" | b"NF" => Ok(false),
                    _ => Err(Fail::Reply(format!("delete: {:?}", lossy(&l)))),
                }
            }
            Proto::Binary => {
                self.bin_req(0x04, key, &[], &[], 0, 9);
                self.send()?;
                match self.bin_resp()? {
                    (0x04, 0, ..) => Ok(true),
                    (0x04, 1, ..) => Ok(false),
                    (op, st, ..) => Err(Fail::Reply(format!("binary delete {op:#x} {st:#x}"))),
                }
            }
        }
    }

    /// incr by `delta`, creating the counter at 0 when missing. Returns the
    /// new value and whether the counter was created.
    fn incr(&mut self, key: &[u8], delta: u64) -> R<(u64, bool)> {
        match self.proto {
            Proto::Text | Proto::Meta => {
                if self.proto == Proto::Text {
                    let _ = write!(self.buf, "incr {} {delta}\r\n", lossy(key));
                } else {
                    let _ = write!(self.buf, "ma {} D{delta} v\r\n", lossy(key));
                }
                self.send()?;
                let l = self.line()?;
                let num = if self.proto == Proto::Meta && l.starts_with(b"VA ") {
                    let n: usize = parse(Some(&l[3..])).ok_or(Fail::Reply("ma len".into()))?;
                    self.data_block(n)?
                } else {
                    l.clone()
                };
                if l == b"NOT_FOUND" || l == b"NF" {
                    // Create it; another request may not race us (the
                    // counter belongs to this worker).
                    if self.proto == Proto::Text {
                        let _ = write!(self.buf, "add {} 0 0 1\r\n0\r\n", lossy(key));
                    } else {
                        let _ = write!(self.buf, "ms {} 1 ME\r\n0\r\n", lossy(key));
                    }
                    self.send()?;
                    let l = self.line()?;
                    return match &l[..] {
                        b"STORED" | b"HD" => Ok((0, true)),
                        _ => Err(Fail::Reply(format!("counter add: {:?}", lossy(&l)))),
                    };
                }
                let v = parse(Some(&num))
                    .ok_or_else(|| Fail::Reply(format!("incr: {:?}", lossy(&l))))?;
                Ok((v, false))
            }
            Proto::Binary => {
                let mut extras = [0u8; 20];
                extras[..8].copy_from_slice(&delta.to_be_bytes());
                // initial 0, exptime 0: created when missing.
                self.bin_req(0x05, key, &extras, &[], 0, 11);
                self.send()?;
                let (op, status, _, _, value, _) = self.bin_resp()?;
                if op != 0x05 || status != 0 || value.len() != 8 {
                    return Err(Fail::Reply(format!("binary incr {op:#x} {status:#x}")));
                }
                let v = u64::from_be_bytes(value[..8].try_into().unwrap());
                // The binary protocol does not say whether it created the
                // counter; 0 can only be a creation (delta > 0).
                Ok((v, v == 0))
            }
        }
    }

    fn flush_all(&mut self) -> R<()> {
        match self.proto {
            Proto::Text | Proto::Meta => {
                self.buf.extend_from_slice(b"flush_all\r\n");
                self.send()?;
                let l = self.line()?;
                if l != b"OK" {
                    return Err(Fail::Reply(format!("flush_all: {:?}", lossy(&l))));
                }
            }
            Proto::Binary => {
                self.bin_req(0x08, &[], &[], &[], 0, 13);
                self.send()?;
                match self.bin_resp()? {
                    (0x08, 0, ..) => {}
                    (op, st, ..) => {
                        return Err(Fail::Reply(format!("binary flush {op:#x} {st:#x}")))
                    }
                }
            }
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

/// What a worker knows about one of its keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Never written, deleted, or dropped by a refused write: only a miss.
    Absent,
    /// Last written version: that version or a miss.
    Ver(u64),
}

/// Hot keys (the first [`HOT_KEYS`] of a worker) hold values up to 2 KB,
/// so they mostly stay cached and reads check real data; the others take
/// any size up to [`VALUE_MAX`].
fn value_len(rng: &mut Rng, hot: bool) -> usize {
    if hot {
        return VALUE_MIN + rng.below(2_000) as usize;
    }
    let p = rng.below(1000);
    let (lo, hi) = match p {
        0..=599 => (VALUE_MIN, 256),
        600..=899 => (256, 8_192),
        900..=994 => (8_192, 131_072),
        _ => (131_072, VALUE_MAX),
    };
    lo + rng.below((hi - lo) as u64) as usize
}

struct Worker {
    id: u64,
    addr: SocketAddr,
    rng: Rng,
    tally: Arc<Tally>,
    ops: Arc<AtomicU64>,
    known: Vec<Known>,
    counters: Vec<Option<u64>>,
    ver: u64,
    conn: Option<Client>,
    left: u64,
}

impl Worker {
    fn key(&self, i: u64) -> Vec<u8> {
        format!("w{}:{i}", self.id).into_bytes()
    }

    fn pick(&mut self) -> u64 {
        if self.rng.below(2) == 0 {
            self.rng.below(HOT_KEYS)
        } else {
            self.rng.below(KEYS_PER_WORKER)
        }
    }

    fn client(&mut self) -> R<&mut Client> {
        if self.conn.is_none() || self.left == 0 {
            self.conn = None;
            let proto = match self.rng.below(3) {
                0 => Proto::Text,
                1 => Proto::Meta,
                _ => Proto::Binary,
            };
            self.conn = Some(Client::connect(self.addr, proto)?);
            self.tally.add("connects", 1);
            self.left = 1 + self.rng.below(600);
        }
        self.left -= 1;
        Ok(self.conn.as_mut().unwrap())
    }

    fn proto_name(&self) -> &'static str {
        match self.conn.as_ref().map(|c| c.proto) {
            Some(Proto::Text) => "text",
            Some(Proto::Meta) => "meta",
            Some(Proto::Binary) => "binary",
            None => "-",
        }
    }

    fn wrong(&self, what: &str, detail: String) {
        self.tally.add(&format!("WRONG {what}"), 1);
        eprintln!(
            "worker {} ({}): {what}: {detail}",
            self.id,
            self.proto_name()
        );
    }

    /// Checks hits against what this worker wrote.
    fn check_hits(&mut self, keys: &[(u64, Vec<u8>)], hits: &[Hit]) {
        let mut next = 0;
        for (key, flags, data, _) in hits {
            // Hits come back in request order; skip the misses.
            let Some(pos) = keys[next..].iter().position(|(_, k)| k == key) else {
                self.wrong("unrequested key", lossy(key));
                return;
            };
            let (i, _) = keys[next + pos];
            next += pos + 1;
            match check_value(key, *flags, data) {
                Err(e) => self.wrong("corrupt value", format!("{}: {e}", lossy(key))),
                Ok(v) => match self.known[i as usize] {
                    Known::Ver(w) if w == v => {}
                    Known::Ver(w) => self.wrong(
                        "stale value",
                        format!("{}: read {v}, wrote {w}", lossy(key)),
                    ),
                    Known::Absent => {
                        self.wrong("value after delete", format!("{}: read {v}", lossy(key)))
                    }
                },
            }
        }
    }

    fn step(&mut self) -> R<()> {
        let p = self.rng.below(10_000);
        match p {
            // get of one key
            0..=2999 => {
                let i = self.pick();
                let keys = vec![(i, self.key(i))];
                let ks: Vec<Vec<u8>> = keys.iter().map(|k| k.1.clone()).collect();
                let hits = self.client()?.get(&ks)?;
                self.tally.add(
                    if hits.is_empty() {
                        "get_miss"
                    } else {
                        "get_hit"
                    },
                    1,
                );
                self.check_hits(&keys, &hits);
            }
            // multiget
            3000..=3999 => {
                let n = 2 + self.rng.below(30);
                let mut keys = Vec::new();
                for _ in 0..n {
                    let i = self.pick();
                    if !keys.iter().any(|(j, _)| *j == i) {
                        keys.push((i, self.key(i)));
                    }
                }
                let ks: Vec<Vec<u8>> = keys.iter().map(|k| k.1.clone()).collect();
                let hits = self.client()?.get(&ks)?;
                self.tally.add("multiget", 1);
                self.tally.add("multiget_hits", hits.len() as u64);
                self.check_hits(&keys, &hits);
            }
            // set
            4000..=6799 => {
                let i = self.pick();
                let key = self.key(i);
                self.ver += 1;
                let ver = self.ver;
                let data = make_value(&key, ver, value_len(&mut self.rng, i < HOT_KEYS));
                let cut = (self.rng.below(200) == 0).then(|| self.rng.unit());
                let r = self.client()?.store(&key, ver as u32, &data, 0, cut)?;
                if cut.is_some() {
                    // Dropped mid-request: nothing was stored.
                    self.conn = None;
                    self.tally.add("disconnect_mid_value", 1);
                    return Ok(());
                }
                match r {
                    StoreReply::Stored => self.known[i as usize] = Known::Ver(ver),
                    StoreReply::OutOfMemory => {
                        self.known[i as usize] = Known::Absent;
                        self.tally.add("expected: out of memory", 1);
                    }
                    other => return Err(Fail::Reply(format!("set answered {other:?}"))),
                }
                self.tally.add("set", 1);
            }
            // oversized set: refused, and the old value is gone
            6800..=6809 => {
                let i = self.pick();
                let key = self.key(i);
                self.ver += 1;
                let len = ITEM_MAX + 1 + self.rng.below(512 * 1024) as usize;
                let ver = self.ver;
                let data = make_value(&key, ver, len);
                match self.client()?.store(&key, ver as u32, &data, 0, None)? {
                    StoreReply::TooLarge => {
                        self.known[i as usize] = Known::Absent;
                        self.tally.add("expected: too large", 1);
                    }
                    other => return Err(Fail::Reply(format!("oversized set answered {other:?}"))),
                }
            }
            // gets + cas
            6810..=7799 => {
                let i = self.pick();
                let key = self.key(i);
                let keys = vec![(i, key.clone())];
                let hits = self.client()?.get(std::slice::from_ref(&key))?;
                self.check_hits(&keys, &hits);
                let Some((_, _, _, cas)) = hits.first() else {
                    self.tally.add("cas_skipped_miss", 1);
                    return Ok(());
                };
                let cas = *cas;
                self.ver += 1;
                let ver = self.ver;
                let data = make_value(&key, ver, value_len(&mut self.rng, i < HOT_KEYS));
                match self.client()?.store(&key, ver as u32, &data, cas, None)? {
                    StoreReply::Stored => {
                        self.known[i as usize] = Known::Ver(ver);
                        self.tally.add("cas_stored", 1);
                    }
                    StoreReply::OutOfMemory => {
                        self.known[i as usize] = Known::Absent;
                        self.tally.add("expected: out of memory", 1);
                    }
                    // Evicted (or flushed) between the gets and the cas.
                    StoreReply::NotFound => {
                        self.known[i as usize] = Known::Absent;
                        self.tally.add("cas_not_found", 1);
                    }
                    other => return Err(Fail::Reply(format!("cas answered {other:?}"))),
                }
            }
            // delete
            7800..=8299 => {
                let i = self.pick();
                let key = self.key(i);
                let hit = self.client()?.delete(&key)?;
                self.known[i as usize] = Known::Absent;
                self.tally
                    .add(if hit { "delete_hit" } else { "delete_miss" }, 1);
            }
            // incr
            8300..=9199 => {
                let c = self.rng.below(COUNTERS);
                let key = format!("w{}:n{c}", self.id).into_bytes();
                let delta = 1 + self.rng.below(1000);
                let (v, created) = self.client()?.incr(&key, delta)?;
                let prev = self.counters[c as usize];
                let ok = match (created, prev) {
                    (true, _) => v == 0,
                    (false, Some(p)) => v == p.wrapping_add(delta),
                    // Never set by us (or lost): any number it could hold.
                    (false, None) => true,
                };
                if !ok {
                    self.wrong(
                        "counter",
                        format!("{}: {prev:?} + {delta} gave {v}", lossy(&key)),
                    );
                }
                self.counters[c as usize] = Some(v);
                self.tally.add("incr", 1);
            }
            // shared keys: any self-consistent value
            9200..=9899 => {
                let i = self.rng.below(SHARED_KEYS);
                let key = format!("shared:{i}").into_bytes();
                if self.rng.below(2) == 0 {
                    self.ver += 1;
                    let ver = self.ver | (self.id << 48);
                    let data = make_value(&key, ver, value_len(&mut self.rng, i % 2 == 0));
                    match self.client()?.store(&key, ver as u32, &data, 0, None)? {
                        StoreReply::Stored => self.tally.add("shared_set", 1),
                        StoreReply::OutOfMemory => self.tally.add("expected: out of memory", 1),
                        other => return Err(Fail::Reply(format!("shared set answered {other:?}"))),
                    }
                } else {
                    let hits = self.client()?.get(std::slice::from_ref(&key))?;
                    for (k, flags, data, _) in &hits {
                        if k != &key {
                            self.wrong("unrequested key", lossy(k));
                        } else if let Err(e) = check_value(k, *flags, data) {
                            self.wrong("corrupt value", format!("{}: {e}", lossy(k)));
                        }
                    }
                    self.tally.add("shared_get", 1);
                }
            }
            // drop the connection with a request unanswered
            9900..=9949 => {
                let i = self.pick();
                let key = self.key(i);
                let c = self.client()?;
                match c.proto {
                    Proto::Text => {
                        let _ = write!(c.buf, "get {}\r\n", lossy(&key));
                    }
                    Proto::Meta => {
                        let _ = write!(c.buf, "mg {} v\r\n", lossy(&key));
                    }
                    Proto::Binary => c.bin_req(0x0c, &key, &[], &[], 0, 3),
                }
                c.send()?;
                let _ = c.w.shutdown(Shutdown::Both);
                self.conn = None;
                self.tally.add("disconnect_reply_unread", 1);
            }
            // plain disconnect
            _ => {
                self.conn = None;
                self.tally.add("disconnect", 1);
            }
        }
        Ok(())
    }

    fn run(mut self, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            match self.step() {
                Ok(()) => {}
                Err(Fail::Io(e)) => {
                    self.tally
                        .add(&format!("UNEXPECTED io error ({})", self.proto_name()), 1);
                    eprintln!("worker {} ({}): io error: {e}", self.id, self.proto_name());
                    self.conn = None;
                }
                Err(Fail::Reply(e)) => {
                    self.tally
                        .add(&format!("UNEXPECTED reply ({})", self.proto_name()), 1);
                    eprintln!("worker {} ({}): {e}", self.id, self.proto_name());
                    self.conn = None;
                }
            }
            self.ops.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Opens short connections over and over: one request each, or none.
fn churn(addr: SocketAddr, tally: Arc<Tally>, ops: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mut rng = Rng::new(0xc4u64);
    while !stop.load(Ordering::Relaxed) {
        let r = (|| -> R<()> {
            let proto = if rng.below(2) == 0 {
                Proto::Text
            } else {
                Proto::Binary
            };
            let mut c = Client::connect(addr, proto)?;
            match rng.below(3) {
                0 => {}
                1 => {
                    if proto == Proto::Text {
                        c.buf.extend_from_slice(b"version\r\n");
                        c.send()?;
                        let l = c.line()?;
                        if !l.starts_with(b"VERSION ") {
                            return Err(Fail::Reply(format!("version: {:?}", lossy(&l))));
                        }
                    } else {
                        c.bin_req(0x0b, &[], &[], &[], 0, 1);
                        c.send()?;
                        let (op, st, ..) = c.bin_resp()?;
                        if (op, st) != (0x0b, 0) {
                            return Err(Fail::Reply("binary version".into()));
                        }
                    }
                }
                _ => {
                    // Half a command line, then gone.
                    c.buf.extend_from_slice(b"get soak-churn-ke");
                    c.send()?;
                }
            }
            Ok(())
        })();
        match r {
            Ok(()) => tally.add("churn_conns", 1),
            Err(e) => {
                tally.add("UNEXPECTED churn error", 1);
                eprintln!("churn: {e:?}");
            }
        }
        ops.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A `flush_all` every 20–60 seconds, over a random protocol.
fn flusher(addr: SocketAddr, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut rng = Rng::new(0xf1u64);
    let mut next = Instant::now() + Duration::from_secs(20 + rng.below(40));
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + Duration::from_secs(20 + rng.below(40));
        let proto = [Proto::Text, Proto::Meta, Proto::Binary][rng.below(3) as usize];
        match Client::connect(addr, proto).and_then(|mut c| c.flush_all()) {
            Ok(()) => tally.add("flush_all", 1),
            Err(e) => {
                tally.add("UNEXPECTED flush error", 1);
                eprintln!("flush_all: {e:?}");
            }
        }
    }
}

fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

fn main() {
    let mut secs: u64 = 600;
    let mut workers: u64 = 6;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => secs = it.next().and_then(|v| v.parse().ok()).expect("--secs N"),
            "--workers" => workers = it.next().and_then(|v| v.parse().ok()).expect("--workers N"),
            // `cargo bench` adds --bench; nothing else is expected.
            _ => {}
        }
    }
    let m = MEM_MB.to_string();
    let t = THREADS.to_string();
    let p = support::ferrocache(&["-m", &m, "-t", &t, "-c", "4096"]);
    let pid = p.pid();
    println!(
        "soak: ferrocache -m {MEM_MB} -t {THREADS} -c 4096, {workers} workers + churn + flush_all, {secs} s"
    );
    let tally = Arc::new(Tally::default());
    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let fd_start = fd_count(pid);
    let mut handles = Vec::new();
    for w in 0..workers {
        let worker = Worker {
            id: w,
            addr: p.addr,
            rng: Rng::new(mix(0x50a4 + w)),
            tally: tally.clone(),
            ops: ops.clone(),
            known: vec![Known::Absent; KEYS_PER_WORKER as usize],
            counters: vec![None; COUNTERS as usize],
            ver: 0,
            conn: None,
            left: 0,
        };
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || worker.run(stop)));
    }
    {
        let (t, o, s) = (tally.clone(), ops.clone(), stop.clone());
        handles.push(std::thread::spawn(move || churn(p.addr, t, o, s)));
        let (t, s) = (tally.clone(), stop.clone());
        handles.push(std::thread::spawn(move || flusher(p.addr, t, s)));
    }
    let start = Instant::now();
    let (mut rss_min, mut rss_max) = (u64::MAX, 0u64);
    let (mut fd_min, mut fd_max) = (u64::MAX, 0u64);
    let mut last_report = Instant::now();
    let mut last_ops = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        let rss = p.rss();
        // Skip the start-up moment when nothing is allocated yet.
        if start.elapsed() > Duration::from_secs(5) {
            rss_min = rss_min.min(rss);
        }
        rss_max = rss_max.max(rss);
        let fds = fd_count(pid);
        fd_min = fd_min.min(fds);
        fd_max = fd_max.max(fds);
        if last_report.elapsed() >= Duration::from_secs(60) {
            let now = ops.load(Ordering::Relaxed);
            println!(
                "  {:>4} s: {:>9} ops ({:.0}/s), RSS {:.1} MB, {} fds",
                start.elapsed().as_secs(),
                now,
                (now - last_ops) as f64 / last_report.elapsed().as_secs_f64(),
                rss as f64 / 1048576.0,
                fds
            );
            last_ops = now;
            last_report = Instant::now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Let the server close the connections the workers dropped.
    let fd_deadline = Instant::now() + Duration::from_secs(10);
    while fd_count(pid) > fd_start && Instant::now() < fd_deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let fd_end = fd_count(pid);
    let rss_end = p.rss();
    let stats: BTreeMap<String, String> = support::loadgen::stats(p.addr)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let stat = |k: &str| stats.get(k).cloned().unwrap_or_default();

    // The bound itemised in docs/memory.md for -m 64 -t 4: the pages, the
    // index at its worst (10 MB), the small FIFO (< 1 MB) and the ghost
    // table (0.5 MB), two 64 KiB scratch buffers per worker, and per
    // connection at most one value (-I) plus 256 KiB of queued output;
    // plus the binary, thread stacks and allocator slack, which the
    // memory_bound measurement puts at under 10 MB.
    let mb = 1u64 << 20;
    let conn_bound = (workers + 3) * (ITEM_MAX as u64 + 256 * 1024);
    let bound = MEM_MB * mb + 10 * mb + mb + mb / 2 + THREADS * 128 * 1024 + conn_bound + 10 * mb;

    let all = tally.snapshot();
    let total = ops.load(Ordering::Relaxed);
    let unexpected: u64 = all
        .iter()
        .filter(|(k, _)| k.starts_with("UNEXPECTED"))
        .map(|(_, v)| v)
        .sum();
    let wrong: u64 = all
        .iter()
        .filter(|(k, _)| k.starts_with("WRONG"))
        .map(|(_, v)| v)
        .sum();
    let f = |b: u64| b as f64 / mb as f64;
    println!("duration        {elapsed:.0} s");
    println!("ops             {total} ({:.0}/s)", total as f64 / elapsed);
    println!("counts:");
    for (k, v) in &all {
        println!("  {k:<36} {v}");
    }
    println!("unexpected errors {unexpected}");
    println!("wrong values      {wrong}");
    println!(
        "RSS             min {:.1} MB, max {:.1} MB, end {:.1} MB; bound {:.1} MB",
        f(rss_min),
        f(rss_max),
        f(rss_end),
        f(bound)
    );
    println!("fds             start {fd_start}, min {fd_min}, max {fd_max}, end {fd_end}");
    for k in [
        "evictions",
        "curr_items",
        "total_items",
        "curr_connections",
        "total_connections",
        "cmd_flush",
        "store_too_large",
        "hash_bytes",
    ] {
        println!("server {k:<24} {}", stat(k));
    }
    let evictions: u64 = stat("evictions").parse().unwrap_or(0);
    let mut failed = Vec::new();
    if unexpected > 0 {
        failed.push(format!("{unexpected} unexpected errors"));
    }
    if wrong > 0 {
        failed.push(format!("{wrong} wrong values"));
    }
    if rss_max > bound {
        failed.push(format!("RSS {:.1} MB above the bound", f(rss_max)));
    }
    if fd_end > fd_start {
        failed.push(format!("fds {fd_start} at the start, {fd_end} at the end"));
    }
    if evictions == 0 {
        failed.push("no evictions: the working set did not exceed -m".into());
    }
    if tally.get("expected: too large") == 0 && secs >= 60 {
        failed.push("no oversized value was sent".into());
    }
    if failed.is_empty() {
        println!("PASS");
    } else {
        println!("FAIL: {}", failed.join("; "));
        // exit() runs no destructors: stop the server first.
        drop(p);
        std::process::exit(1);
    }
}
