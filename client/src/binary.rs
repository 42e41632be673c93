//! The memcached binary protocol, as pure functions over byte buffers.
//!
//! Every frame is a 24-byte header followed by extras, key and value. Requests start with the
//! magic byte `0x80`, replies with `0x81`. Requests are appended to a caller-owned `Vec<u8>`;
//! replies are parsed one frame at a time by [`parse_frame`], which borrows from the input,
//! reports how many bytes the frame spans, returns `Ok(None)` for a prefix and a typed
//! [`FrameError`] for bytes that cannot be a reply frame. Nothing here touches sockets.
//!
//! SASL authentication is only defined over this protocol, so a client configured with
//! credentials speaks it on every connection.
//!
//! ```
//! use ferrocache_client::binary::{encode, opcode, parse_frame, Status};
//!
//! let mut request = Vec::new();
//! encode::get(&mut request, opcode::GET, b"k", 7);
//! assert_eq!(request.len(), 24 + 1);
//! assert_eq!(&request[..2], &[0x80, 0x00]);
//!
//! // A hit: 4 bytes of flags as extras, the value, the CAS unique in the header.
//! let reply = [
//!     0x81, 0x00, 0, 0, 4, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9,
//!     0, 0, 0, 5, b'v', b'a', b'l',
//! ];
//! let (frame, used) = parse_frame(&reply).unwrap().unwrap();
//! assert_eq!(used, reply.len());
//! assert_eq!(frame.status, Status::SUCCESS);
//! assert_eq!((frame.flags(), frame.cas, frame.value), (Some(5), 9, &b"val"[..]));
//! ```

use std::fmt;

/// Size of a frame header.
pub const HEADER_LEN: usize = 24;
/// First byte of every request frame.
pub const MAGIC_REQUEST: u8 = 0x80;
/// First byte of every reply frame.
pub const MAGIC_RESPONSE: u8 = 0x81;
/// Largest reply body accepted; a garbage length must not make the client buffer without
/// bound.
pub const MAX_BODY_LEN: usize = (1 << 30) + 512;

/// Opcodes used by the client (memcached's `PROTOCOL_BINARY_CMD_*`, and ElastiCache's
/// configuration get).
pub mod opcode {
    /// Get a value.
    pub const GET: u8 = 0x00;
    /// Store unconditionally (or by CAS when the header carries one).
    pub const SET: u8 = 0x01;
    /// Store if absent.
    pub const ADD: u8 = 0x02;
    /// Store if present.
    pub const REPLACE: u8 = 0x03;
    /// Delete a key.
    pub const DELETE: u8 = 0x04;
    /// Increment a counter.
    pub const INCREMENT: u8 = 0x05;
    /// Decrement a counter.
    pub const DECREMENT: u8 = 0x06;
    /// Invalidate every item.
    pub const FLUSH: u8 = 0x08;
    /// No operation; its reply closes a run of quiet requests.
    pub const NOOP: u8 = 0x0a;
    /// Server version.
    pub const VERSION: u8 = 0x0b;
    /// Get with the key echoed.
    pub const GETK: u8 = 0x0c;
    /// Quiet get with the key echoed: no reply on a miss.
    pub const GETKQ: u8 = 0x0d;
    /// Append to a value.
    pub const APPEND: u8 = 0x0e;
    /// Prepend to a value.
    pub const PREPEND: u8 = 0x0f;
    /// Statistics, one frame per statistic, closed by a frame with an empty key.
    pub const STAT: u8 = 0x10;
    /// Reset the expiration time.
    pub const TOUCH: u8 = 0x1c;
    /// Get and touch.
    pub const GAT: u8 = 0x1d;
    /// List the SASL mechanisms.
    pub const SASL_LIST_MECHS: u8 = 0x20;
    /// Start a SASL exchange.
    pub const SASL_AUTH: u8 = 0x21;
    /// Continue a SASL exchange.
    pub const SASL_STEP: u8 = 0x22;
    /// ElastiCache's configuration get (key `cluster`).
    pub const CONFIG_GET: u8 = 0x60;
}

/// A reply status (memcached's `PROTOCOL_BINARY_RESPONSE_*`). Unknown codes are kept as they
/// are, so a newer server's status is reported rather than rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Status(pub u16);

impl Status {
    /// Success.
    pub const SUCCESS: Status = Status(0x00);
    /// Key not found.
    pub const KEY_NOT_FOUND: Status = Status(0x01);
    /// Key exists (CAS mismatch, or `add` of an existing key).
    pub const KEY_EXISTS: Status = Status(0x02);
    /// Value too large.
    pub const TOO_LARGE: Status = Status(0x03);
    /// Invalid arguments.
    pub const INVALID_ARGUMENTS: Status = Status(0x04);
    /// Item not stored (`append`/`prepend` of a missing key).
    pub const NOT_STORED: Status = Status(0x05);
    /// `incr`/`decr` on a non-numeric value.
    pub const NON_NUMERIC: Status = Status(0x06);
    /// Authentication required or failed.
    pub const AUTH_ERROR: Status = Status(0x20);
    /// SASL exchange continues.
    pub const AUTH_CONTINUE: Status = Status(0x21);
    /// Unknown command.
    pub const UNKNOWN_COMMAND: Status = Status(0x81);
    /// Out of memory.
    pub const OUT_OF_MEMORY: Status = Status(0x82);
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}

/// One reply frame, borrowing its body from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The opcode of the request it answers.
    pub opcode: u8,
    /// The status.
    pub status: Status,
    /// The opaque value of the request it answers.
    pub opaque: u32,
    /// The CAS unique (retrievals and writes).
    pub cas: u64,
    /// Extras (4 bytes of flags on a retrieval hit).
    pub extras: &'a [u8],
    /// Key (echoed by GETK/GETKQ; the statistic name in STAT replies).
    pub key: &'a [u8],
    /// Value (the item's data, a counter, a version, a statistic, an error message).
    pub value: &'a [u8],
}

impl Frame<'_> {
    /// The client flags of a retrieval hit: the first four bytes of extras.
    pub fn flags(&self) -> Option<u32> {
        let bytes: [u8; 4] = self.extras.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }
}

/// Bytes that cannot be a reply frame; the connection is out of sync and must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The first byte is not the reply magic `0x81`.
    #[error("bad magic byte {0:#04x} (expected 0x81)")]
    BadMagic(u8),
    /// Extras and key are longer than the whole body.
    #[error("extras ({extras}) and key ({key}) exceed the body length {body}")]
    BadLengths {
        /// Declared extras length.
        extras: u8,
        /// Declared key length.
        key: u16,
        /// Declared body length.
        body: u32,
    },
    /// The declared body is larger than [`MAX_BODY_LEN`].
    #[error("body length {0} over the limit")]
    TooLarge(u32),
    /// A well-formed frame that does not answer the request sent.
    #[error("unexpected reply: opcode {opcode:#04x}, status {status}")]
    Unexpected {
        /// Its opcode.
        opcode: u8,
        /// Its status.
        status: Status,
    },
    /// A reply value of the wrong size or content (e.g. a counter that is not 8 bytes).
    #[error("malformed {0} reply")]
    Malformed(&'static str),
}

/// Parses one reply frame from the front of `buf`.
///
/// Returns the frame and the bytes it spans, `Ok(None)` if `buf` holds only a prefix of a
/// frame, or an error if the bytes cannot be a reply frame. Never panics.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(&magic) = buf.first() else {
        return Ok(None);
    };
    if magic != MAGIC_RESPONSE {
        return Err(FrameError::BadMagic(magic));
    }
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let be16 = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let key_len = be16(2);
    let extras_len = header[4];
    let status = Status(be16(6));
    let body_len = be32(8);
    let opaque = be32(12);
    let cas = (u64::from(be32(16)) << 32) | u64::from(be32(20));
    if body_len as usize > MAX_BODY_LEN {
        return Err(FrameError::TooLarge(body_len));
    }
    if usize::from(extras_len) + usize::from(key_len) > body_len as usize {
        return Err(FrameError::BadLengths {
            extras: extras_len,
            key: key_len,
            body: body_len,
        });
    }
    let end = HEADER_LEN + body_len as usize;
    let Some(body) = buf.get(HEADER_LEN..end) else {
        return Ok(None);
    };
    let (extras, rest) = body.split_at(usize::from(extras_len));
    let (key, value) = rest.split_at(usize::from(key_len));
    Ok(Some((
        Frame {
            opcode: header[1],
            status,
            opaque,
            cas,
            extras,
            key,
            value,
        },
        end,
    )))
}

/// Request encoders. Each appends one complete frame to `out`.
pub mod encode {
    use super::{opcode, HEADER_LEN, MAGIC_REQUEST};

    /// Appends a request frame with the given parts.
    pub fn frame(
        out: &mut Vec<u8>,
        opcode: u8,
        opaque: u32,
        cas: u64,
        extras: &[u8],
        key: &[u8],
        value: &[u8],
    ) {
        let body = extras.len() + key.len() + value.len();
        out.reserve(HEADER_LEN + body);
        out.push(MAGIC_REQUEST);
        out.push(opcode);
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.push(extras.len() as u8);
        out.push(0); // data type: raw bytes
        out.extend_from_slice(&[0, 0]); // vbucket
        out.extend_from_slice(&(body as u32).to_be_bytes());
        out.extend_from_slice(&opaque.to_be_bytes());
        out.extend_from_slice(&cas.to_be_bytes());
        out.extend_from_slice(extras);
        out.extend_from_slice(key);
        out.extend_from_slice(value);
    }

    /// GET, GETK or GETKQ of `key`.
    pub fn get(out: &mut Vec<u8>, op: u8, key: &[u8], opaque: u32) {
        frame(out, op, opaque, 0, b"", key, b"");
    }

    /// GAT: get and reset the expiration time.
    pub fn gat(out: &mut Vec<u8>, key: &[u8], exptime: u32, opaque: u32) {
        frame(
            out,
            opcode::GAT,
            opaque,
            0,
            &exptime.to_be_bytes(),
            key,
            b"",
        );
    }

    /// SET, ADD or REPLACE with flags and expiration time as extras; `cas` 0 means none.
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        out: &mut Vec<u8>,
        op: u8,
        key: &[u8],
        flags: u32,
        exptime: u32,
        value: &[u8],
        cas: u64,
        opaque: u32,
    ) {
        let mut extras = [0u8; 8];
        extras[..4].copy_from_slice(&flags.to_be_bytes());
        extras[4..].copy_from_slice(&exptime.to_be_bytes());
        frame(out, op, opaque, cas, &extras, key, value);
    }

    /// APPEND or PREPEND (no extras).
    pub fn concat(out: &mut Vec<u8>, op: u8, key: &[u8], value: &[u8], opaque: u32) {
        frame(out, op, opaque, 0, b"", key, value);
    }

    /// DELETE.
    pub fn delete(out: &mut Vec<u8>, key: &[u8], opaque: u32) {
        frame(out, opcode::DELETE, opaque, 0, b"", key, b"");
    }

    /// INCREMENT or DECREMENT by `delta`. The expiration `0xffffffff` tells the server not to
    /// create a missing counter, which gives the text protocol's `NOT_FOUND` semantics.
    pub fn arith(out: &mut Vec<u8>, incr: bool, key: &[u8], delta: u64, opaque: u32) {
        let mut extras = [0u8; 20];
        extras[..8].copy_from_slice(&delta.to_be_bytes());
        extras[16..].copy_from_slice(&u32::MAX.to_be_bytes());
        let op = if incr {
            opcode::INCREMENT
        } else {
            opcode::DECREMENT
        };
        frame(out, op, opaque, 0, &extras, key, b"");
    }

    /// TOUCH.
    pub fn touch(out: &mut Vec<u8>, key: &[u8], exptime: u32, opaque: u32) {
        frame(
            out,
            opcode::TOUCH,
            opaque,
            0,
            &exptime.to_be_bytes(),
            key,
            b"",
        );
    }

    /// FLUSH, with a delay as extras when given.
    pub fn flush(out: &mut Vec<u8>, delay: Option<u32>, opaque: u32) {
        match delay {
            Some(delay) => frame(
                out,
                opcode::FLUSH,
                opaque,
                0,
                &delay.to_be_bytes(),
                b"",
                b"",
            ),
            None => frame(out, opcode::FLUSH, opaque, 0, b"", b"", b""),
        }
    }

    /// A request without extras, key or value (VERSION, NOOP, SASL_LIST_MECHS).
    pub fn simple(out: &mut Vec<u8>, op: u8, opaque: u32) {
        frame(out, op, opaque, 0, b"", b"", b"");
    }

    /// STAT, of one group when given.
    pub fn stat(out: &mut Vec<u8>, group: Option<&str>, opaque: u32) {
        let key = group.map_or(&b""[..], str::as_bytes);
        frame(out, opcode::STAT, opaque, 0, b"", key, b"");
    }

    /// SASL_AUTH or SASL_STEP: the mechanism as key, the client's message as value.
    pub fn sasl(out: &mut Vec<u8>, op: u8, mechanism: &[u8], data: &[u8], opaque: u32) {
        frame(out, op, opaque, 0, b"", mechanism, data);
    }

    /// CONFIG_GET of `key` (ElastiCache discovery; the key is `cluster`).
    pub fn config_get(out: &mut Vec<u8>, key: &[u8], opaque: u32) {
        frame(out, opcode::CONFIG_GET, opaque, 0, b"", key, b"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(op: u8, key: u16, extras: u8, body: u32, opaque: u32, cas: u64) -> Vec<u8> {
        let mut v = vec![0x80, op];
        v.extend_from_slice(&key.to_be_bytes());
        v.push(extras);
        v.extend_from_slice(&[0, 0, 0]);
        v.extend_from_slice(&body.to_be_bytes());
        v.extend_from_slice(&opaque.to_be_bytes());
        v.extend_from_slice(&cas.to_be_bytes());
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn request_bytes() {
        let mut out = Vec::new();
        encode::get(&mut out, opcode::GET, b"key", 1);
        assert_eq!(out, cat(&[&header(0x00, 3, 0, 3, 1, 0), b"key"]));

        out.clear();
        encode::get(&mut out, opcode::GETKQ, b"k", 0x01020304);
        assert_eq!(out, cat(&[&header(0x0d, 1, 0, 1, 0x01020304, 0), b"k"]));

        out.clear();
        encode::gat(&mut out, b"k", 300, 2);
        assert_eq!(
            out,
            cat(&[&header(0x1d, 1, 4, 5, 2, 0), &[0, 0, 1, 44], b"k"])
        );

        out.clear();
        encode::store(&mut out, opcode::SET, b"k", 0xdeadbeef, 60, b"val", 0, 3);
        assert_eq!(
            out,
            cat(&[
                &header(0x01, 1, 8, 12, 3, 0),
                &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 60],
                b"k",
                b"val"
            ])
        );

        out.clear();
        encode::store(&mut out, opcode::SET, b"k", 0, 0, b"", u64::MAX - 1, 4);
        assert_eq!(
            out,
            cat(&[&header(0x01, 1, 8, 9, 4, u64::MAX - 1), &[0; 8], b"k"])
        );

        for (op, code) in [(opcode::ADD, 0x02), (opcode::REPLACE, 0x03)] {
            out.clear();
            encode::store(&mut out, op, b"a", 1, 2, b"x", 0, 0);
            assert_eq!(
                out,
                cat(&[
                    &header(code, 1, 8, 10, 0, 0),
                    &[0, 0, 0, 1, 0, 0, 0, 2],
                    b"a",
                    b"x"
                ])
            );
        }

        for (op, code) in [(opcode::APPEND, 0x0e), (opcode::PREPEND, 0x0f)] {
            out.clear();
            encode::concat(&mut out, op, b"a", b"xy", 5);
            assert_eq!(out, cat(&[&header(code, 1, 0, 3, 5, 0), b"a", b"xy"]));
        }

        out.clear();
        encode::delete(&mut out, b"gone", 6);
        assert_eq!(out, cat(&[&header(0x04, 4, 0, 4, 6, 0), b"gone"]));

        out.clear();
        encode::arith(&mut out, true, b"n", 5, 7);
        let mut extras = vec![0, 0, 0, 0, 0, 0, 0, 5];
        extras.extend_from_slice(&[0; 8]);
        extras.extend_from_slice(&[0xff; 4]);
        assert_eq!(out, cat(&[&header(0x05, 1, 20, 21, 7, 0), &extras, b"n"]));
        out.clear();
        encode::arith(&mut out, false, b"n", u64::MAX, 8);
        let mut extras = vec![0xff; 8];
        extras.extend_from_slice(&[0; 8]);
        extras.extend_from_slice(&[0xff; 4]);
        assert_eq!(out, cat(&[&header(0x06, 1, 20, 21, 8, 0), &extras, b"n"]));

        out.clear();
        encode::touch(&mut out, b"t", 10, 9);
        assert_eq!(
            out,
            cat(&[&header(0x1c, 1, 4, 5, 9, 0), &[0, 0, 0, 10], b"t"])
        );

        out.clear();
        encode::flush(&mut out, None, 0);
        assert_eq!(out, header(0x08, 0, 0, 0, 0, 0));
        out.clear();
        encode::flush(&mut out, Some(5), 0);
        assert_eq!(out, cat(&[&header(0x08, 0, 4, 4, 0, 0), &[0, 0, 0, 5]]));

        for op in [opcode::VERSION, opcode::NOOP, opcode::SASL_LIST_MECHS] {
            out.clear();
            encode::simple(&mut out, op, 0);
            assert_eq!(out, header(op, 0, 0, 0, 0, 0));
        }

        out.clear();
        encode::stat(&mut out, None, 0);
        assert_eq!(out, header(0x10, 0, 0, 0, 0, 0));
        out.clear();
        encode::stat(&mut out, Some("slabs"), 0);
        assert_eq!(out, cat(&[&header(0x10, 5, 0, 5, 0, 0), b"slabs"]));

        out.clear();
        encode::sasl(&mut out, opcode::SASL_AUTH, b"PLAIN", b"\0u\0p", 0);
        assert_eq!(
            out,
            cat(&[&header(0x21, 5, 0, 9, 0, 0), b"PLAIN", b"\0u\0p"])
        );
        out.clear();
        encode::sasl(&mut out, opcode::SASL_STEP, b"SCRAM-SHA-1", b"c=biws", 0);
        assert_eq!(
            out,
            cat(&[&header(0x22, 11, 0, 17, 0, 0), b"SCRAM-SHA-1", b"c=biws"])
        );

        out.clear();
        encode::config_get(&mut out, b"cluster", 0);
        assert_eq!(out, cat(&[&header(0x60, 7, 0, 7, 0, 0), b"cluster"]));
    }

    fn reply(op: u8, status: u16, cas: u64, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = vec![0x81, op];
        v.extend_from_slice(&(key.len() as u16).to_be_bytes());
        v.push(extras.len() as u8);
        v.push(0);
        v.extend_from_slice(&status.to_be_bytes());
        v.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
        v.extend_from_slice(&0xa1b2c3d4u32.to_be_bytes());
        v.extend_from_slice(&cas.to_be_bytes());
        v.extend_from_slice(extras);
        v.extend_from_slice(key);
        v.extend_from_slice(value);
        v
    }

    fn one(buf: &[u8]) -> Frame<'_> {
        let (frame, used) = parse_frame(buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(frame.opaque, 0xa1b2c3d4);
        frame
    }

    #[test]
    fn reply_kinds() {
        // A GETK hit: flags, key, value, CAS.
        let hit = reply(0x0c, 0, 77, &[0, 0, 0, 9], b"key", b"value");
        let f = one(&hit);
        assert_eq!(
            (f.opcode, f.status, f.cas, f.flags(), f.key, f.value),
            (
                0x0c,
                Status::SUCCESS,
                77,
                Some(9),
                &b"key"[..],
                &b"value"[..]
            )
        );
        // A miss with memcached's message.
        let miss = reply(0x00, 1, 0, b"", b"", b"Not found");
        let f = one(&miss);
        assert_eq!(
            (f.status, f.flags(), f.value),
            (Status::KEY_NOT_FOUND, None, &b"Not found"[..])
        );
        // A counter.
        let counter = reply(0x05, 0, 3, b"", b"", &42u64.to_be_bytes());
        let f = one(&counter);
        assert_eq!(f.value, 42u64.to_be_bytes());
        // A statistic and the empty closing frame.
        let stat = reply(0x10, 0, 0, b"", b"pid", b"123");
        let f = one(&stat);
        assert_eq!((f.key, f.value), (&b"pid"[..], &b"123"[..]));
        let end = reply(0x10, 0, 0, b"", b"", b"");
        let f = one(&end);
        assert!(f.key.is_empty() && f.value.is_empty());
        // SASL continue, auth error, unknown status kept as is.
        assert_eq!(
            one(&reply(0x21, 0x21, 0, b"", b"", b"r=x")).status,
            Status::AUTH_CONTINUE
        );
        assert_eq!(
            one(&reply(0x21, 0x20, 0, b"", b"", b"Auth failure.")).status,
            Status::AUTH_ERROR
        );
        assert_eq!(
            one(&reply(0x00, 0x1234, 0, b"", b"", b"")).status,
            Status(0x1234)
        );
        // Only the first frame is consumed.
        let two = [
            reply(0x0a, 0, 0, b"", b"", b""),
            reply(0x0b, 0, 0, b"", b"", b"1.6"),
        ]
        .concat();
        assert_eq!(parse_frame(&two).unwrap().unwrap().1, 24);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let full = reply(0x0c, 0, 1, &[0, 0, 0, 1], b"k", b"data");
        for cut in 0..full.len() {
            assert_eq!(parse_frame(&full[..cut]), Ok(None), "{cut}");
        }
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let mut bad = reply(0x00, 0, 0, b"", b"", b"");
        bad[0] = 0x80;
        assert_eq!(parse_frame(&bad), Err(FrameError::BadMagic(0x80)));
        assert_eq!(
            parse_frame(b"VALUE k 0 1\r\n"),
            Err(FrameError::BadMagic(b'V'))
        );
        // Extras plus key longer than the body.
        let mut bad = reply(0x00, 0, 0, &[0; 4], b"key", b"");
        bad[11] = 5;
        assert!(matches!(
            parse_frame(&bad),
            Err(FrameError::BadLengths {
                extras: 4,
                key: 3,
                body: 5
            })
        ));
        // A body length no reply can have is refused from the header alone.
        let mut bad = reply(0x00, 0, 0, b"", b"", b"");
        bad[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_frame(&bad), Err(FrameError::TooLarge(u32::MAX)));
    }

    #[test]
    fn random_input_never_panics() {
        let seed = reply(0x0c, 0, 1, &[0, 0, 0, 1], b"k", b"data");
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut buf = seed.clone();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % buf.len();
                buf[at] = next() as u8;
            }
            buf.truncate((next() as usize) % (buf.len() + 1));
            if let Ok(Some((_, used))) = parse_frame(&buf) {
                assert!(used <= buf.len());
            }
            let random: Vec<u8> = (0..next() % 64).map(|_| next() as u8).collect();
            let _ = parse_frame(&random);
        }
    }
}
