//! Binary frames → [`Request`]s. Pure, allocation-free, panic-free.

use super::{opcode::*, Header, Status, HEADER_LEN, MAGIC_REQUEST, MAX_SMALL_BODY};
use crate::protocol::{ArithOp, KeyList, Limits, Request, StatsGroup, StoreMode, KEY_MAX_LENGTH};

/// Outcome of parsing the front of a read buffer as a binary frame.
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A whole request of `consumed` bytes.
    Request {
        header: Header,
        request: Request<'a>,
        consumed: usize,
    },
    /// A store whose value exceeds the item limit: drop `consumed` bytes
    /// (header, extras, key) now and `swallow` more as they arrive, then
    /// execute `request` (a [`Request::StoreTooLarge`]).
    Oversized {
        header: Header,
        request: Request<'a>,
        consumed: usize,
        swallow: usize,
    },
    /// More bytes are needed; nothing is consumed.
    Incomplete,
    /// Answer `status` for the request in `header`; drop `consumed` bytes
    /// now and `swallow` more as they arrive; close after the reply when
    /// `close` is set.
    Error {
        header: Header,
        status: Status,
        consumed: usize,
        swallow: usize,
        close: bool,
    },
    /// The frame does not start with the request magic: close at once.
    BadMagic,
}

/// What an opcode's frame must look like.
#[derive(Clone, Copy)]
enum Shape {
    /// Extras length allowed (`a` or `b`).
    Extras(u8, u8),
}

/// The expected layout of a known opcode: (extras, key required/allowed,
/// value allowed). `None` for opcodes this codec does not serve.
fn layout(op: u8) -> Option<(Shape, KeyRule, bool)> {
    use KeyRule::*;
    let e = |n| Shape::Extras(n, n);
    Some(match op {
        GET | GETQ | GETK | GETKQ => (e(0), Required, false),
        TOUCH | GAT | GATQ | GATK | GATKQ => (e(4), Required, false),
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => (e(8), Required, true),
        APPEND | APPENDQ | PREPEND | PREPENDQ => (e(0), Required, true),
        DELETE | DELETEQ => (e(0), Required, false),
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => (e(20), Required, false),
        QUIT | QUITQ | NOOP | VERSION | SASL_LIST_MECHS => (e(0), Forbidden, false),
        FLUSH | FLUSHQ => (Shape::Extras(0, 4), Forbidden, false),
        STAT => (e(0), Optional, false),
        SASL_AUTH | SASL_STEP => (e(0), Required, true),
        CONFIG_GET | CONFIG_GETQ | CONFIG_GETK | CONFIG_GETKQ => (e(0), Required, false),
        CONFIG_SET | CONFIG_SETQ => (e(4), Required, true),
        CONFIG_DELETE | CONFIG_DELETEQ => (e(0), Required, false),
        CONFIG_LIST => (e(0), Forbidden, false),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum KeyRule {
    Required,
    Optional,
    Forbidden,
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn stats_group(key: &[u8]) -> StatsGroup<'_> {
    match key {
        b"" => StatsGroup::General,
        b"settings" => StatsGroup::Settings,
        b"items" => StatsGroup::Items,
        b"slabs" => StatsGroup::Slabs,
        b"sizes" => StatsGroup::Sizes,
        b"conns" => StatsGroup::Conns,
        b"reset" => StatsGroup::Reset,
        other => StatsGroup::Other(other),
    }
}

fn store_mode(op: u8) -> StoreMode {
    match op {
        ADD | ADDQ => StoreMode::Add,
        REPLACE | REPLACEQ => StoreMode::Replace,
        APPEND | APPENDQ => StoreMode::Append,
        PREPEND | PREPENDQ => StoreMode::Prepend,
        _ => StoreMode::Set,
    }
}

/// Parses one binary request frame from the front of `input`.
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Frame<'a> {
    match input.first() {
        None => return Frame::Incomplete,
        Some(&m) if m != MAGIC_REQUEST => return Frame::BadMagic,
        Some(_) => {}
    }
    let Some(head) = input.get(..HEADER_LEN) else {
        return Frame::Incomplete;
    };
    let mut raw = [0u8; HEADER_LEN];
    raw.copy_from_slice(head);
    let header = Header::read(&raw);
    let ext = header.extras_len as usize;
    let klen = header.key_len as usize;
    let body = header.body_len as usize;
    let invalid = Frame::Error {
        header,
        status: Status::InvalidArguments,
        consumed: HEADER_LEN,
        swallow: 0,
        close: true,
    };
    let Some((shape, key_rule, value_ok)) = layout(header.opcode) else {
        // Unknown (or not served) opcode: refuse it and skip its body.
        return Frame::Error {
            header,
            status: Status::UnknownCommand,
            consumed: HEADER_LEN,
            swallow: body,
            close: false,
        };
    };
    if ext + klen > body {
        return invalid;
    }
    let vlen = body - ext - klen;
    let Shape::Extras(e1, e2) = shape;
    if header.extras_len != e1 && header.extras_len != e2 {
        return invalid;
    }
    match key_rule {
        KeyRule::Required if klen == 0 => return invalid,
        KeyRule::Forbidden if klen != 0 => return invalid,
        _ => {}
    }
    if klen > KEY_MAX_LENGTH || (!value_ok && vlen != 0) {
        return invalid;
    }
    let is_store = matches!(
        header.opcode,
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ | APPEND | APPENDQ | PREPEND | PREPENDQ
    );
    if is_store && vlen > limits.item_size_max {
        let head_len = HEADER_LEN + ext + klen;
        let Some(key) = input.get(HEADER_LEN + ext..head_len) else {
            return Frame::Incomplete;
        };
        return Frame::Oversized {
            header,
            request: Request::StoreTooLarge {
                mode: store_mode(header.opcode),
                key,
                noreply: false,
            },
            consumed: head_len,
            swallow: vlen,
        };
    }
    if !is_store && vlen > MAX_SMALL_BODY {
        return invalid;
    }
    let total = HEADER_LEN + body;
    if is_store && vlen > limits.pending_value_max && input.len() < total {
        let head_len = HEADER_LEN + ext + klen;
        let Some(key) = input.get(HEADER_LEN + ext..head_len) else {
            return Frame::Incomplete;
        };
        return Frame::Oversized {
            header,
            request: Request::StoreNoMemory {
                mode: store_mode(header.opcode),
                key,
                noreply: false,
            },
            consumed: head_len,
            swallow: vlen,
        };
    }
    let Some(frame) = input.get(..total) else {
        return Frame::Incomplete;
    };
    let extras = &frame[HEADER_LEN..HEADER_LEN + ext];
    let key = &frame[HEADER_LEN + ext..HEADER_LEN + ext + klen];
    let value = &frame[HEADER_LEN + ext + klen..];
    let op = header.opcode;
    let request = match op {
        GET | GETQ | GETK | GETKQ => Request::Get {
            keys: KeyList::single(key),
            with_cas: true,
            touch: None,
        },
        TOUCH | GAT | GATQ | GATK | GATKQ => Request::Get {
            keys: KeyList::single(key),
            with_cas: true,
            touch: Some(i64::from(be32(extras))),
        },
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ | APPEND | APPENDQ | PREPEND | PREPENDQ => {
            let (flags, exptime) = if ext == 8 {
                (be32(extras), i64::from(be32(&extras[4..])))
            } else {
                (0, 0)
            };
            Request::Store {
                mode: store_mode(op),
                key,
                flags,
                exptime,
                cas: header.cas,
                value,
                noreply: false,
            }
        }
        DELETE | DELETEQ => Request::DeleteIf {
            key,
            cas: header.cas,
            noreply: false,
        },
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => {
            let delta = be64(extras);
            let initial = be64(&extras[8..]);
            let exptime = be32(&extras[16..]);
            Request::ArithEx {
                op: if matches!(op, INCREMENT | INCREMENTQ) {
                    ArithOp::Incr
                } else {
                    ArithOp::Decr
                },
                key,
                delta,
                create: (exptime != u32::MAX).then_some((initial, i64::from(exptime))),
                cas: header.cas,
                noreply: false,
            }
        }
        QUIT | QUITQ => Request::Quit,
        NOOP => Request::Noop,
        VERSION => Request::Version,
        FLUSH | FLUSHQ => Request::FlushAll {
            delay: if ext == 4 { i64::from(be32(extras)) } else { 0 },
            noreply: false,
        },
        STAT => Request::Stats {
            group: stats_group(key),
        },
        SASL_LIST_MECHS => Request::SaslListMechs,
        SASL_AUTH => Request::SaslAuth {
            mech: key,
            data: value,
        },
        SASL_STEP => Request::SaslStep {
            mech: key,
            data: value,
        },
        CONFIG_GET | CONFIG_GETQ | CONFIG_GETK | CONFIG_GETKQ => Request::ConfigGet { key },
        // Quiet variants are silenced by the reply, not by `noreply`: their
        // errors must still be answered.
        CONFIG_SET | CONFIG_SETQ => Request::ConfigSet {
            key,
            flags: be32(extras),
            value,
            noreply: false,
        },
        CONFIG_DELETE | CONFIG_DELETEQ => Request::ConfigDelete {
            key,
            noreply: false,
        },
        CONFIG_LIST => Request::ConfigList,
        _ => return invalid,
    };
    Frame::Request {
        header,
        request,
        consumed: total,
    }
}
