//! Text reply encoding: memcached's exact bytes, appended to a write buffer
//! without any allocation of our own.

use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::protocol::response::StatValue;
use crate::protocol::Response;

/// What memcached's `uriencode` escapes in metadump keys: all but letters,
/// digits and `-._~` (RFC 3986's unreserved characters), as `%XX`.
const URI_RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends the text encoding of `response` to `out`.
pub fn encode(response: &Response<'_>, out: &mut Vec<u8>) {
    match *response {
        Response::Value {
            key,
            flags,
            cas,
            data,
        } => {
            // "VALUE " + three or four numbers with separators + two CRLFs.
            out.reserve(key.len() + data.len() + 6 + 3 * 21 + 4);
            out.extend_from_slice(b"VALUE ");
            out.extend_from_slice(key);
            out.push(b' ');
            put_u64(out, u64::from(flags));
            out.push(b' ');
            put_u64(out, data.len() as u64);
            if let Some(cas) = cas {
                out.push(b' ');
                put_u64(out, cas);
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Response::End => out.extend_from_slice(b"END\r\n"),
        Response::Stored => out.extend_from_slice(b"STORED\r\n"),
        Response::NotStored => out.extend_from_slice(b"NOT_STORED\r\n"),
        Response::Exists => out.extend_from_slice(b"EXISTS\r\n"),
        Response::NotFound => out.extend_from_slice(b"NOT_FOUND\r\n"),
        Response::Deleted => out.extend_from_slice(b"DELETED\r\n"),
        Response::Touched => out.extend_from_slice(b"TOUCHED\r\n"),
        Response::Ok => out.extend_from_slice(b"OK\r\n"),
        Response::Reset => out.extend_from_slice(b"RESET\r\n"),
        Response::Number(n) => {
            put_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Response::Version(version) => line(out, b"VERSION ", version.as_bytes()),
        Response::Stat { name, value } => {
            out.extend_from_slice(b"STAT ");
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            put_stat_value(out, value);
            out.extend_from_slice(b"\r\n");
        }
        Response::Config { key, payload } => {
            out.reserve(key.len() + payload.len() + 40);
            out.extend_from_slice(b"CONFIG ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" 0 ");
            put_u64(out, payload.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(payload);
            out.extend_from_slice(b"\r\n");
        }
        // Only the binary protocol asks for it; one line if ever rendered.
        Response::ConfigKeys(keys) => line(out, b"", keys),
        Response::ClusterState(data) => {
            out.reserve(data.len() + 32);
            out.extend_from_slice(b"CLUSTER ");
            put_u64(out, data.len() as u64);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        Response::ClientErrorText(message) => line(out, b"CLIENT_ERROR ", message.as_bytes()),
        Response::Error => out.extend_from_slice(b"ERROR\r\n"),
        Response::ErrorMsg(message) => line(out, b"ERROR ", message.as_bytes()),
        Response::ClientError(error) => line(out, b"CLIENT_ERROR ", error.message().as_bytes()),
        Response::ServerError(error) => line(out, b"SERVER_ERROR ", error.message().as_bytes()),
        Response::Line(text) => line(out, b"", text.as_bytes()),
        Response::CacheDumpItem { key, bytes, expiry } => {
            out.extend_from_slice(b"ITEM ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" [");
            put_u64(out, bytes as u64);
            out.extend_from_slice(b" b; ");
            put_i64(out, expiry);
            out.extend_from_slice(b" s]\r\n");
        }
        Response::MetadumpItem {
            key,
            exptime,
            last_access,
            cas,
            fetched,
            class,
            size,
        } => {
            // memcached ends these lines with a bare LF; only `END` has CRLF.
            out.extend_from_slice(b"key=");
            for part in percent_encode(key, URI_RESERVED) {
                out.extend_from_slice(part.as_bytes());
            }
            out.extend_from_slice(b" exp=");
            put_i64(out, exptime);
            out.extend_from_slice(b" la=");
            put_i64(out, last_access);
            out.extend_from_slice(b" cas=");
            put_u64(out, cas);
            out.extend_from_slice(if fetched { b" fetch=yes" } else { b" fetch=no" });
            out.extend_from_slice(b" cls=");
            put_u64(out, u64::from(class));
            out.extend_from_slice(b" size=");
            put_u64(out, size as u64);
            out.push(b'\n');
        }
        Response::Meta(reply) => crate::protocol::meta::encode(reply, out),
        Response::MetaDebug(reply) => crate::protocol::meta::encode_debug(reply, out),
        Response::MetaNoop => out.extend_from_slice(b"MN\r\n"),
    }
}

fn line(out: &mut Vec<u8>, prefix: &[u8], text: &[u8]) {
    out.reserve(prefix.len() + text.len() + 2);
    out.extend_from_slice(prefix);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

pub(crate) fn put_stat_value(out: &mut Vec<u8>, value: StatValue<'_>) {
    match value {
        StatValue::U64(n) => put_u64(out, n),
        StatValue::I64(n) => {
            if n < 0 {
                out.push(b'-');
            }
            put_u64(out, n.unsigned_abs());
        }
        // memcached prints rusage with "%ld.%06ld".
        StatValue::Seconds { secs, micros } => {
            put_u64(out, secs);
            out.push(b'.');
            let mut digits = [b'0'; 20];
            let text = format_u64(u64::from(micros), &mut digits);
            for _ in text.len()..6 {
                out.push(b'0');
            }
            out.extend_from_slice(text);
        }
        StatValue::F2(x) => put_f2(out, x),
        StatValue::Text(text) => out.extend_from_slice(text.as_bytes()),
    }
}

/// `%.2f`. Rust's formatting rounds exactly like glibc's (correctly rounded,
/// ties to even); only the spelling of non-finite values differs.
fn put_f2(out: &mut Vec<u8>, x: f64) {
    use std::io::Write;
    if x.is_nan() {
        out.extend_from_slice(if x.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
    } else if x.is_infinite() {
        out.extend_from_slice(if x < 0.0 { b"-inf" } else { b"inf" });
    } else {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{x:.2}");
    }
}

/// Writes `n` in decimal.
fn put_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(format_u64(n, &mut digits));
}

fn put_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    put_u64(out, n.unsigned_abs());
}

/// Formats `n` into the end of `buf` (20 bytes hold `u64::MAX`) and returns
/// the digits, two at a time from a pair table.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut pos = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + n as u8;
    }
    &buf[pos..]
}
