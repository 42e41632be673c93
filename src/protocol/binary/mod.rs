//! The memcached binary protocol codec.
//!
//! Every frame is a 24-byte header (magic `0x80` for requests, `0x81` for
//! responses) followed by extras, key and value whose lengths the header
//! announces. [`parse`] is a pure function of the bytes at the front of a
//! read buffer: it borrows key and value, allocates nothing, never panics,
//! and tells *incomplete* from *invalid*. It maps each opcode onto the
//! protocol-neutral [`Request`] model; [`Reply`] turns the neutral
//! [`Response`]s that `exec` emits back into binary frames, using the header
//! context of the request (opcode, opaque, quiet flag, key for GETK).
//!
//! The codec owns framing only. Whether a request is allowed (SASL gating,
//! `-F`) is decided by the connection and `exec`.

mod encode;
mod parse;
#[cfg(test)]
mod tests;

pub use encode::{write_frame, Reply};
pub use parse::{parse, Frame};

use crate::protocol::Request;

/// First byte of every request frame.
pub const MAGIC_REQUEST: u8 = 0x80;
/// First byte of every response frame.
pub const MAGIC_RESPONSE: u8 = 0x81;
/// Size of a frame header.
pub const HEADER_LEN: usize = 24;
/// Largest body accepted for a frame that carries no value (SASL payloads
/// included); anything larger is refused without being buffered.
pub const MAX_SMALL_BODY: usize = 64 * 1024;

/// Opcodes (memcached's `PROTOCOL_BINARY_CMD_*`).
pub mod opcode {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
    /// ElastiCache's configuration opcodes (auto discovery). They carry the
    /// same requests as the text `config get|set|delete <key>`; the only key
    /// is `cluster`. Gets answer like GET (4-byte flags extras, the payload
    /// as value), the K variants echo the key, sets take 4 bytes of flags as
    /// extras and answer like SET, deletes like DELETE; the Q variants are
    /// quiet on a miss (gets) or on success (sets, deletes). CONFIG_LIST
    /// answers the configuration keys as its value (`cluster`).
    pub const CONFIG_GET: u8 = 0x60;
    pub const CONFIG_GETQ: u8 = 0x61;
    pub const CONFIG_GETK: u8 = 0x62;
    pub const CONFIG_GETKQ: u8 = 0x63;
    pub const CONFIG_SET: u8 = 0x64;
    pub const CONFIG_SETQ: u8 = 0x65;
    pub const CONFIG_DELETE: u8 = 0x66;
    pub const CONFIG_DELETEQ: u8 = 0x67;
    pub const CONFIG_LIST: u8 = 0x68;
}

/// Response status codes (memcached's `PROTOCOL_BINARY_RESPONSE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    Success = 0x00,
    KeyNotFound = 0x01,
    KeyExists = 0x02,
    TooLarge = 0x03,
    InvalidArguments = 0x04,
    NotStored = 0x05,
    NonNumeric = 0x06,
    AuthError = 0x20,
    AuthContinue = 0x21,
    UnknownCommand = 0x81,
    OutOfMemory = 0x82,
}

impl Status {
    /// The body memcached sends with an error status.
    pub fn message(self) -> &'static [u8] {
        match self {
            Status::Success => b"",
            Status::KeyNotFound => b"Not found",
            Status::KeyExists => b"Data exists for key.",
            Status::TooLarge => b"Too large.",
            Status::InvalidArguments => b"Invalid arguments",
            Status::NotStored => b"Not stored.",
            Status::NonNumeric => b"Non-numeric server-side value for incr or decr",
            Status::AuthError => b"Auth failure.",
            Status::AuthContinue => b"",
            Status::UnknownCommand => b"Unknown command",
            Status::OutOfMemory => b"Out of memory",
        }
    }
}

/// The fields of a request header the reply needs, plus its lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Header {
    pub opcode: u8,
    pub key_len: u16,
    pub extras_len: u8,
    pub data_type: u8,
    pub vbucket: u16,
    pub body_len: u32,
    pub opaque: u32,
    pub cas: u64,
}

impl Header {
    /// Reads a header from the first 24 bytes (caller checks the length).
    pub fn read(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            opcode: b[1],
            key_len: u16::from_be_bytes([b[2], b[3]]),
            extras_len: b[4],
            data_type: b[5],
            vbucket: u16::from_be_bytes([b[6], b[7]]),
            body_len: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            opaque: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            cas: u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
        }
    }

    /// Whether the opcode is a quiet variant (no reply on the uninteresting
    /// outcome).
    pub fn quiet(&self) -> bool {
        use opcode::*;
        matches!(
            self.opcode,
            GETQ | GETKQ
                | SETQ
                | ADDQ
                | REPLACEQ
                | DELETEQ
                | INCREMENTQ
                | DECREMENTQ
                | QUITQ
                | FLUSHQ
                | APPENDQ
                | PREPENDQ
                | GATQ
                | GATKQ
                | CONFIG_GETQ
                | CONFIG_GETKQ
                | CONFIG_SETQ
                | CONFIG_DELETEQ
        )
    }
}

/// Whether the request is one that may be served before SASL
/// authentication (memcached: list mechanisms, auth, step and version).
pub fn allowed_before_auth(opcode: u8) -> bool {
    matches!(
        opcode,
        opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP | opcode::VERSION
    )
}

/// A parsed request that the connection answers itself instead of `exec`.
pub fn is_sasl(request: &Request<'_>) -> bool {
    matches!(
        request,
        Request::SaslListMechs | Request::SaslAuth { .. } | Request::SaslStep { .. }
    )
}
