//! The memcached text protocol, as pure functions over byte buffers.
//!
//! Requests are appended to a caller-owned `Vec<u8>` so one buffer can carry several pipelined
//! commands and be written with a single syscall. Replies are parsed one unit at a time by
//! [`parse_reply`], which borrows from the input and reports how many bytes it consumed, or
//! `Ok(None)` when the buffer holds only a prefix. Nothing here touches sockets.
//!
//! ```
//! use ferrocache_client::protocol::{encode_storage, parse_reply, Reply, StorageVerb};
//!
//! let mut request = Vec::new();
//! encode_storage(&mut request, StorageVerb::Set, b"greeting", 5, 0, b"hello", None);
//! assert_eq!(request, b"set greeting 5 0 5\r\nhello\r\n");
//!
//! let (reply, used) = parse_reply(b"VALUE greeting 5 5\r\nhello\r\nEND\r\n").unwrap().unwrap();
//! assert_eq!(used, 27);
//! assert_eq!(
//!     reply,
//!     Reply::Value { key: b"greeting", flags: 5, cas: None, data: b"hello" }
//! );
//! ```

use std::fmt;
use std::io::Write as _;

/// Longest key memcached accepts.
pub const MAX_KEY_LEN: usize = 250;

/// Longest reply line accepted before the reply is declared garbage.
pub const MAX_LINE_LEN: usize = 8 * 1024;

/// Largest data block accepted in a `VALUE` reply; a garbage length must not make the client
/// buffer without bound.
pub const MAX_VALUE_LEN: usize = 1 << 30;

/// The storage commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageVerb {
    /// Store unconditionally.
    Set,
    /// Store only if the key does not exist.
    Add,
    /// Store only if the key exists.
    Replace,
    /// Append to an existing value.
    Append,
    /// Prepend to an existing value.
    Prepend,
    /// Store only if the CAS value still matches.
    Cas,
}

impl StorageVerb {
    /// The command word.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageVerb::Set => "set",
            StorageVerb::Add => "add",
            StorageVerb::Replace => "replace",
            StorageVerb::Append => "append",
            StorageVerb::Prepend => "prepend",
            StorageVerb::Cas => "cas",
        }
    }
}

/// The retrieval commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetrievalVerb {
    /// `get <keys>`.
    Get,
    /// `gets <keys>`: values with their CAS.
    Gets,
    /// `gat <exptime> <keys>`: get and touch.
    Gat(u32),
    /// `gats <exptime> <keys>`: get and touch, with CAS.
    Gats(u32),
}

/// Why a key cannot be sent.
pub fn check_key(key: &[u8]) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty key");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("longer than 250 bytes");
    }
    if key.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err("contains whitespace or control bytes");
    }
    Ok(())
}

/// `<verb> <key> <flags> <exptime> <bytes> [<cas>]\r\n<data>\r\n`. `cas` is written only for
/// [`StorageVerb::Cas`].
pub fn encode_storage(
    out: &mut Vec<u8>,
    verb: StorageVerb,
    key: &[u8],
    flags: u32,
    exptime: u32,
    data: &[u8],
    cas: Option<u64>,
) {
    out.extend_from_slice(verb.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    // Writing to a Vec cannot fail.
    let _ = write!(out, " {flags} {exptime} {}", data.len());
    if let (StorageVerb::Cas, Some(cas)) = (verb, cas) {
        let _ = write!(out, " {cas}");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// `get|gets|gat <exptime>|gats <exptime> <key> <key> …\r\n`.
pub fn encode_retrieval<K: AsRef<[u8]>>(out: &mut Vec<u8>, verb: RetrievalVerb, keys: &[K]) {
    match verb {
        RetrievalVerb::Get => out.extend_from_slice(b"get"),
        RetrievalVerb::Gets => out.extend_from_slice(b"gets"),
        RetrievalVerb::Gat(exptime) => {
            let _ = write!(out, "gat {exptime}");
        }
        RetrievalVerb::Gats(exptime) => {
            let _ = write!(out, "gats {exptime}");
        }
    }
    for key in keys {
        out.push(b' ');
        out.extend_from_slice(key.as_ref());
    }
    out.extend_from_slice(b"\r\n");
}

/// `delete <key>\r\n`.
pub fn encode_delete(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(b"delete ");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\n");
}

/// `incr|decr <key> <delta>\r\n`.
pub fn encode_arith(out: &mut Vec<u8>, incr: bool, key: &[u8], delta: u64) {
    out.extend_from_slice(if incr { b"incr " } else { b"decr " });
    out.extend_from_slice(key);
    let _ = write!(out, " {delta}\r\n");
}

/// `touch <key> <exptime>\r\n`.
pub fn encode_touch(out: &mut Vec<u8>, key: &[u8], exptime: u32) {
    out.extend_from_slice(b"touch ");
    out.extend_from_slice(key);
    let _ = write!(out, " {exptime}\r\n");
}

/// `flush_all [<delay>]\r\n`.
pub fn encode_flush_all(out: &mut Vec<u8>, delay: Option<u32>) {
    match delay {
        Some(delay) => {
            let _ = write!(out, "flush_all {delay}\r\n");
        }
        None => out.extend_from_slice(b"flush_all\r\n"),
    }
}

/// `version\r\n`.
pub fn encode_version(out: &mut Vec<u8>) {
    out.extend_from_slice(b"version\r\n");
}

/// `stats [<group>]\r\n`.
pub fn encode_stats(out: &mut Vec<u8>, group: Option<&str>) {
    match group {
        Some(group) => {
            let _ = write!(out, "stats {group}\r\n");
        }
        None => out.extend_from_slice(b"stats\r\n"),
    }
}

/// One reply unit. A retrieval answer is a sequence of `Value`s closed by `End`; a `stats`
/// answer a sequence of `Stat`s closed by `End`; everything else is a single unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `STORED`
    Stored,
    /// `NOT_STORED`
    NotStored,
    /// `EXISTS`
    Exists,
    /// `NOT_FOUND`
    NotFound,
    /// `DELETED`
    Deleted,
    /// `TOUCHED`
    Touched,
    /// `OK`
    Ok,
    /// `END`
    End,
    /// `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`
    Value {
        /// The key.
        key: &'a [u8],
        /// Client flags.
        flags: u32,
        /// CAS unique, present in `gets`/`gats` answers.
        cas: Option<u64>,
        /// The data block.
        data: &'a [u8],
    },
    /// The decimal result of `incr`/`decr`.
    Number(u64),
    /// `STAT <name> <value>`
    Stat {
        /// Statistic name.
        name: &'a str,
        /// Its value, as text.
        value: &'a str,
    },
    /// `VERSION <text>`
    Version(&'a str),
    /// `ERROR`
    Error,
    /// `CLIENT_ERROR <message>`
    ClientError(&'a str),
    /// `SERVER_ERROR <message>`
    ServerError(&'a str),
}

/// A reply that cannot be parsed; the connection is out of sync and must be closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Parses one reply unit from the front of `buf`.
///
/// Returns the reply and the bytes it spans, `Ok(None)` if `buf` holds only a prefix of a
/// reply, or an error if the bytes cannot be a reply.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    let Some(end) = buf.iter().take(MAX_LINE_LEN).position(|&b| b == b'\n') else {
        if buf.len() >= MAX_LINE_LEN {
            return Err(ProtocolError(format!(
                "reply line longer than {MAX_LINE_LEN} bytes"
            )));
        }
        return Ok(None);
    };
    let line = &buf[..end];
    let Some(line) = line.strip_suffix(b"\r") else {
        return Err(bad("reply line not terminated by \\r\\n", line));
    };
    let used = end + 1;
    let reply = match line {
        b"STORED" => Reply::Stored,
        b"NOT_STORED" => Reply::NotStored,
        b"EXISTS" => Reply::Exists,
        b"NOT_FOUND" => Reply::NotFound,
        b"DELETED" => Reply::Deleted,
        b"TOUCHED" => Reply::Touched,
        b"OK" => Reply::Ok,
        b"END" => Reply::End,
        b"ERROR" => Reply::Error,
        _ => return parse_word_reply(buf, line, used),
    };
    Ok(Some((reply, used)))
}

fn parse_word_reply<'a>(
    buf: &'a [u8],
    line: &'a [u8],
    used: usize,
) -> Result<Option<(Reply<'a>, usize)>, ProtocolError> {
    if !line.is_empty() && line.iter().all(u8::is_ascii_digit) {
        let n = ascii(line)
            .parse()
            .map_err(|_| bad("number out of range", line))?;
        return Ok(Some((Reply::Number(n), used)));
    }
    let text = std::str::from_utf8(line).map_err(|_| bad("reply is not UTF-8", line))?;
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    let reply = match word {
        "VALUE" => return parse_value(buf, line, rest, used),
        "STAT" => {
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            Reply::Stat { name, value }
        }
        "VERSION" => Reply::Version(rest),
        "CLIENT_ERROR" => Reply::ClientError(rest),
        "SERVER_ERROR" => Reply::ServerError(rest),
        _ => return Err(bad("unexpected reply", line)),
    };
    Ok(Some((reply, used)))
}

fn parse_value<'a>(
    buf: &'a [u8],
    line: &[u8],
    rest: &'a str,
    used: usize,
) -> Result<Option<(Reply<'a>, usize)>, ProtocolError> {
    let mut words = rest.split(' ');
    let (Some(key), Some(flags), Some(len), cas, None) = (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) else {
        return Err(bad("malformed VALUE line", line));
    };
    let flags = decimal::<u32>(flags).ok_or_else(|| bad("bad flags in VALUE line", line))?;
    let len = decimal::<usize>(len).ok_or_else(|| bad("bad length in VALUE line", line))?;
    if len > MAX_VALUE_LEN {
        return Err(bad("value length over the limit", line));
    }
    let cas = match cas {
        None => None,
        Some(cas) => Some(decimal::<u64>(cas).ok_or_else(|| bad("bad cas in VALUE line", line))?),
    };
    if key.is_empty() {
        return Err(bad("empty key in VALUE line", line));
    }
    let Some(block) = buf.get(used..used + len + 2) else {
        return Ok(None);
    };
    if &block[len..] != b"\r\n" {
        return Err(bad("data block does not match its declared length", line));
    }
    let reply = Reply::Value {
        key: key.as_bytes(),
        flags,
        cas,
        data: &block[..len],
    };
    Ok(Some((reply, used + len + 2)))
}

fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("")
}

fn bad(what: &str, line: &[u8]) -> ProtocolError {
    let shown = &line[..line.len().min(80)];
    ProtocolError(format!("{what}: {:?}", String::from_utf8_lossy(shown)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(buf: &[u8]) -> Reply<'_> {
        let (reply, used) = parse_reply(buf).unwrap().unwrap();
        assert_eq!(used, buf.len(), "{:?}", String::from_utf8_lossy(buf));
        reply
    }

    #[test]
    fn storage_requests() {
        let mut out = Vec::new();
        encode_storage(&mut out, StorageVerb::Add, b"k", 0, 60, b"", None);
        assert_eq!(out, b"add k 0 60 0\r\n\r\n");
        out.clear();
        encode_storage(
            &mut out,
            StorageVerb::Cas,
            b"k",
            4294967295,
            0,
            b"a\r\nb",
            Some(18446744073709551615),
        );
        assert_eq!(
            out,
            b"cas k 4294967295 0 4 18446744073709551615\r\na\r\nb\r\n"
        );
        out.clear();
        // A CAS value on a non-cas verb is not sent.
        encode_storage(&mut out, StorageVerb::Prepend, b"k", 1, 2, b"x", Some(9));
        assert_eq!(out, b"prepend k 1 2 1\r\nx\r\n");
    }

    #[test]
    fn other_requests() {
        let mut out = Vec::new();
        encode_retrieval(&mut out, RetrievalVerb::Get, &[b"a", b"b"]);
        encode_retrieval(&mut out, RetrievalVerb::Gets, &["c"]);
        encode_retrieval(&mut out, RetrievalVerb::Gat(30), &["d"]);
        encode_retrieval(&mut out, RetrievalVerb::Gats(0), &["e"]);
        encode_delete(&mut out, b"f");
        encode_arith(&mut out, true, b"g", 1);
        encode_arith(&mut out, false, b"h", u64::MAX);
        encode_touch(&mut out, b"i", 10);
        encode_flush_all(&mut out, None);
        encode_flush_all(&mut out, Some(5));
        encode_version(&mut out);
        encode_stats(&mut out, None);
        encode_stats(&mut out, Some("slabs"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "get a b\r\ngets c\r\ngat 30 d\r\ngats 0 e\r\ndelete f\r\nincr g 1\r\n\
             decr h 18446744073709551615\r\ntouch i 10\r\nflush_all\r\nflush_all 5\r\n\
             version\r\nstats\r\nstats slabs\r\n"
        );
    }

    #[test]
    fn keys() {
        assert!(check_key(b"user:42").is_ok());
        assert!(check_key(&[b'k'; 250]).is_ok());
        assert!(check_key(&[b'k'; 251]).is_err());
        assert!(check_key(b"").is_err());
        for bad in [&b"a b"[..], b"a\r\n", b"a\0", b"\x7f", b"tab\t"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn simple_replies() {
        for (bytes, reply) in [
            (&b"STORED\r\n"[..], Reply::Stored),
            (b"NOT_STORED\r\n", Reply::NotStored),
            (b"EXISTS\r\n", Reply::Exists),
            (b"NOT_FOUND\r\n", Reply::NotFound),
            (b"DELETED\r\n", Reply::Deleted),
            (b"TOUCHED\r\n", Reply::Touched),
            (b"OK\r\n", Reply::Ok),
            (b"END\r\n", Reply::End),
            (b"ERROR\r\n", Reply::Error),
            (b"0\r\n", Reply::Number(0)),
            (b"18446744073709551615\r\n", Reply::Number(u64::MAX)),
            (b"VERSION 1.6.18\r\n", Reply::Version("1.6.18")),
            (
                b"CLIENT_ERROR bad data chunk\r\n",
                Reply::ClientError("bad data chunk"),
            ),
            (
                b"SERVER_ERROR out of memory storing object\r\n",
                Reply::ServerError("out of memory storing object"),
            ),
            (
                b"STAT curr_items 12\r\n",
                Reply::Stat {
                    name: "curr_items",
                    value: "12",
                },
            ),
            (
                b"STAT version 1.6.18 extra\r\n",
                Reply::Stat {
                    name: "version",
                    value: "1.6.18 extra",
                },
            ),
        ] {
            assert_eq!(one(bytes), reply);
        }
    }

    #[test]
    fn values() {
        assert_eq!(
            one(b"VALUE k 7 3 99\r\na\nb\r\n"),
            Reply::Value {
                key: b"k",
                flags: 7,
                cas: Some(99),
                data: b"a\nb"
            }
        );
        // The data block may contain anything, including what looks like a reply.
        assert_eq!(
            one(b"VALUE k 0 5\r\nEND\r\n\r\n"),
            Reply::Value {
                key: b"k",
                flags: 0,
                cas: None,
                data: b"END\r\n"
            }
        );
        // Only the first unit is consumed.
        let buf = b"VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n";
        let (_, used) = parse_reply(buf).unwrap().unwrap();
        assert_eq!(used, 16);
        assert_eq!(
            parse_reply(&buf[used..]).unwrap().unwrap().1,
            buf.len() - 21
        );
    }

    #[test]
    fn every_prefix_is_incomplete() {
        for full in [
            &b"VALUE key 1 5 3\r\nhello\r\n"[..],
            b"STORED\r\n",
            b"STAT pid 1\r\n",
            b"12\r\n",
        ] {
            for cut in 0..full.len() {
                assert_eq!(parse_reply(&full[..cut]), Ok(None), "{cut}");
            }
            assert!(parse_reply(full).unwrap().is_some());
        }
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            &b"STORED\n"[..],
            b"WHAT\r\n",
            b"stored\r\n",
            b"VALUE k 0\r\n",
            b"VALUE k x 1\r\na\r\n",
            b"VALUE k 0 -1\r\n",
            b"VALUE k 0 1 2 3\r\n",
            b"VALUE k 0 1 cas\r\n",
            b"VALUE k 0 99999999999\r\n",
            b"VALUE k 0 1\r\nab\r\n",
            b"VALUE k 0 1\r\na\n\n",
            b"99999999999999999999999\r\n",
            b"\xff\xfe\r\n",
            b"\r\n",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_reply(&[b'x'; MAX_LINE_LEN]).is_err());
        assert_eq!(parse_reply(&[b'x'; MAX_LINE_LEN - 1]), Ok(None));
    }

    /// Random and mutated replies never panic the parser, and a parsed unit never claims
    /// more bytes than it was given.
    #[test]
    fn random_input_never_panics() {
        let seeds: [&[u8]; 5] = [
            b"VALUE key 1 5 3\r\nhello\r\nEND\r\n",
            b"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n",
            b"CLIENT_ERROR bad data chunk\r\n",
            b"18446744073709551615\r\n",
            b"VERSION 1.6.21\r\n",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut buf = seeds[round % seeds.len()].to_vec();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % buf.len();
                match next() % 3 {
                    0 => buf[at] = next() as u8,
                    1 => buf.truncate(at),
                    _ => buf.insert(at, b"0 \r\n9"[(next() % 5) as usize]),
                }
                if buf.is_empty() {
                    break;
                }
            }
            if let Ok(Some((_, used))) = parse_reply(&buf) {
                assert!(used <= buf.len());
            }
            let random: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            let _ = parse_reply(&random);
        }
    }
}
