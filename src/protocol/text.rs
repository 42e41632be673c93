//! The memcached text protocol codec (classic commands; meta commands share
//! its framing). `parse` is a pure function of the bytes at the front of a
//! read buffer; `encode` appends a reply to a write buffer.

use super::{Limits, Parsed, Response};

/// Parses the first request at the front of `buf`.
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let _ = (buf, limits);
    todo!("text parser")
}

/// Appends the text encoding of `response` to `out`.
pub fn encode(response: &Response<'_>, out: &mut Vec<u8>) {
    let _ = (response, out);
    todo!("text encoder")
}
