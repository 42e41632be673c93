//! Neutral [`Response`]s → binary response frames.

use super::{opcode::*, Header, Status, HEADER_LEN, MAGIC_RESPONSE};
use crate::protocol::response::StatValue;
use crate::protocol::{text, ClientError, Request, Response, ServerError};

/// Appends one response frame.
#[allow(clippy::too_many_arguments)]
pub fn write_frame(
    out: &mut Vec<u8>,
    opcode: u8,
    status: Status,
    opaque: u32,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let body = extras.len() + key.len() + value.len();
    out.reserve(HEADER_LEN + body);
    out.push(MAGIC_RESPONSE);
    out.push(opcode);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.push(extras.len() as u8);
    out.push(0);
    out.extend_from_slice(&(status as u16).to_be_bytes());
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// Encodes the responses to one binary request. It carries what the reply
/// frames need from the request: opcode, opaque, the quiet flag, the key
/// (GETK and GATK echo it, even on a miss) and the CAS unique of a write.
#[derive(Debug)]
pub struct Reply<'k> {
    header: Header,
    key: &'k [u8],
    /// A retrieval found its item.
    hit: bool,
    cas: u64,
    /// Scratch for a stat value.
    stat: Vec<u8>,
}

impl<'k> Reply<'k> {
    /// The reply context for `request`, which arrived with `header`.
    pub fn new(header: Header, request: &Request<'k>) -> Self {
        let key = match *request {
            Request::Get { keys, .. } => keys.iter().next().unwrap_or(b""),
            Request::ConfigGet { key } => key,
            _ => b"",
        };
        Reply {
            header,
            key,
            hit: false,
            cas: 0,
            stat: Vec::new(),
        }
    }

    /// The request's opcode.
    pub fn opcode(&self) -> u8 {
        self.header.opcode
    }

    /// Records the CAS unique of the item a write produced.
    pub fn set_cas(&mut self, cas: u64) {
        self.cas = cas;
    }

    fn frame(&self, out: &mut Vec<u8>, status: Status, cas: u64, ex: &[u8], key: &[u8], v: &[u8]) {
        write_frame(
            out,
            self.header.opcode,
            status,
            self.header.opaque,
            cas,
            ex,
            key,
            v,
        );
    }

    /// An error frame; never suppressed by a quiet opcode.
    pub fn error(&self, status: Status, out: &mut Vec<u8>) {
        self.frame(out, status, 0, b"", b"", status.message());
    }

    /// A frame with `status` and `value` as its body (SASL replies).
    pub fn value(&self, status: Status, value: &[u8], out: &mut Vec<u8>) {
        self.frame(out, status, 0, b"", b"", value);
    }

    /// An empty success frame, unless the opcode is quiet.
    fn ok(&self, cas: u64, out: &mut Vec<u8>) {
        if !self.header.quiet() {
            self.frame(out, Status::Success, cas, b"", b"", b"");
        }
    }

    fn retrieval(&self) -> bool {
        matches!(
            self.header.opcode,
            GET | GETQ | GETK | GETKQ | TOUCH | GAT | GATQ | GATK | GATKQ
        )
    }

    fn with_key(&self) -> bool {
        matches!(
            self.header.opcode,
            GETK | GETKQ | GATK | GATKQ | CONFIG_GETK | CONFIG_GETKQ
        )
    }

    fn config_get(&self) -> bool {
        matches!(
            self.header.opcode,
            CONFIG_GET | CONFIG_GETQ | CONFIG_GETK | CONFIG_GETKQ
        )
    }

    fn config(&self) -> bool {
        (CONFIG_GET..=CONFIG_LIST).contains(&self.header.opcode)
    }

    /// A miss of a retrieval: "not found", with the key for the K variants,
    /// nothing for the quiet ones.
    fn miss(&self, out: &mut Vec<u8>) {
        if self.header.quiet() {
            return;
        }
        if self.with_key() {
            self.frame(out, Status::KeyNotFound, 0, b"", self.key, b"");
        } else {
            self.error(Status::KeyNotFound, out);
        }
    }

    /// Encodes one neutral response.
    pub fn encode(&mut self, response: &Response<'_>, out: &mut Vec<u8>) {
        match *response {
            Response::Value {
                flags, cas, data, ..
            } => {
                self.hit = true;
                let key = if self.with_key() { self.key } else { b"" };
                let value = if self.header.opcode == TOUCH {
                    b""
                } else {
                    data
                };
                self.frame(
                    out,
                    Status::Success,
                    cas.unwrap_or(0),
                    &flags.to_be_bytes(),
                    key,
                    value,
                );
            }
            // ElastiCache's binary CONFIG_GET*: the payload as a value with
            // flags, like a GET hit.
            Response::Config { payload, .. } => {
                self.hit = true;
                let key = if self.with_key() { self.key } else { b"" };
                self.frame(out, Status::Success, 0, &[0; 4], key, payload);
            }
            Response::ConfigKeys(keys) => self.frame(out, Status::Success, 0, b"", b"", keys),
            Response::End if self.config_get() => {}
            Response::End if self.retrieval() => {
                if !self.hit {
                    self.miss(out);
                }
            }
            // The end of a stats report (and `stats reset`): an empty frame.
            Response::End | Response::Reset => {
                self.frame(out, Status::Success, 0, b"", b"", b"");
            }
            Response::Stored => self.ok(self.cas, out),
            Response::NotStored => self.error(
                match self.header.opcode {
                    ADD | ADDQ => Status::KeyExists,
                    REPLACE | REPLACEQ => Status::KeyNotFound,
                    _ => Status::NotStored,
                },
                out,
            ),
            Response::Exists => self.error(Status::KeyExists, out),
            Response::NotFound => self.error(Status::KeyNotFound, out),
            Response::Deleted | Response::Touched => self.ok(0, out),
            Response::Ok => {
                if self.header.opcode == NOOP {
                    self.frame(out, Status::Success, 0, b"", b"", b"");
                } else {
                    self.ok(0, out);
                }
            }
            Response::Number(n) => {
                if !self.header.quiet() {
                    self.frame(out, Status::Success, self.cas, b"", b"", &n.to_be_bytes());
                }
            }
            Response::Version(v) => {
                self.frame(out, Status::Success, 0, b"", b"", v.as_bytes());
            }
            Response::Stat { name, value } => {
                let mut text = std::mem::take(&mut self.stat);
                text.clear();
                put_stat(&mut text, value);
                self.frame(out, Status::Success, 0, b"", name.as_bytes(), &text);
                self.stat = text;
            }
            // An unknown configuration key: a miss for the gets, an error
            // for the others.
            Response::Error if self.config_get() => self.miss(out),
            Response::Error => self.error(
                if self.header.opcode == STAT || self.config() {
                    Status::KeyNotFound
                } else {
                    Status::UnknownCommand
                },
                out,
            ),
            Response::ClientError(ClientError::NonNumericValue) => {
                self.error(Status::NonNumeric, out)
            }
            // memcached answers a refused flush with an auth error.
            Response::ClientError(ClientError::FlushDisabled)
            | Response::ClientError(ClientError::Unauthenticated)
            | Response::ClientError(ClientError::AuthenticationFailure)
            | Response::ClientError(ClientError::ClusterNotAdmin) => {
                self.error(Status::AuthError, out)
            }
            Response::ClientError(_)
            | Response::ClientErrorText(_)
            | Response::CacheDumpItem { .. }
            | Response::MetadumpItem { .. }
            | Response::ClusterState(_)
            | Response::ErrorMsg(_)
            | Response::Line(_) => self.error(Status::InvalidArguments, out),
            Response::ServerError(ServerError::ObjectTooLarge) => self.error(Status::TooLarge, out),
            Response::ServerError(_) => self.error(Status::OutOfMemory, out),
            // Meta replies answer meta requests, which no binary frame carries.
            Response::Meta(_) | Response::MetaDebug(_) | Response::MetaNoop => {
                self.error(Status::UnknownCommand, out)
            }
        }
    }
}

fn put_stat(out: &mut Vec<u8>, value: StatValue<'_>) {
    text::put_stat_value(out, value);
}
