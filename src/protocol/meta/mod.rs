//! The memcached meta protocol (`mg`, `ms`, `md`, `ma`, `me`, `mn`).
//!
//! Meta commands share the text protocol's line framing (the text parser
//! hands lines starting with a meta command to [`parse_command`]) and the
//! same store. A meta command is a two-letter verb, a key, (for `ms`) a data
//! length, and single-letter flags, some carrying a token (`T30`, `Oabc`).
//! Replies are a two-letter code followed by the requested return flags in
//! the order the client sent them.
//!
//! The parser is a pure, allocation-free function of the bytes; it turns
//! every flag error into memcached's exact `CLIENT_ERROR`, so `exec` only
//! ever sees well-formed requests. `docs/compat.md` (section "Meta
//! protocol") lists what was checked against memcached 1.6.18 and where we
//! follow newer memcached releases instead.

mod base64;
mod encode;
mod parse;
#[cfg(test)]
mod tests;

pub use base64::{decode as decode_base64, encode as encode_base64};
pub use encode::{encode, encode_debug};
pub use parse::parse_command;

/// Longest opaque token, counting its `O` (memcached rejects longer ones).
pub const OPAQUE_MAX_TOKEN: usize = 32;

/// memcached tokenizes at most this many words of a meta line; a line with
/// more is refused with "options flags (are) too long".
pub const MAX_TOKENS: usize = 19;

/// Which meta verb a reply answers; it decides which return flags apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaCmd {
    Get,
    Set,
    Delete,
    Arith,
}

/// Reply codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaStatus {
    /// `HD`: success without a value.
    Stored,
    /// `VA <len>`: success with a value.
    Value,
    /// `EN`: miss (`mg`).
    Miss,
    /// `NS`: not stored.
    NotStored,
    /// `EX`: CAS mismatch.
    Exists,
    /// `NF`: not found.
    NotFound,
}

/// A key as sent: plain, or base64 (`b`) to be decoded before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaKey<'a> {
    /// The key token as it appeared on the line (echoed by `k`).
    pub raw: &'a [u8],
    /// The token is base64; the parser checked that it decodes.
    pub base64: bool,
}

impl<'a> MetaKey<'a> {
    /// The key the store sees: `raw`, or its decoding written into `buf`.
    pub fn bytes<'b>(&self, buf: &'b mut [u8; crate::protocol::KEY_MAX_LENGTH]) -> &'b [u8]
    where
        'a: 'b,
    {
        if !self.base64 {
            return self.raw;
        }
        let n = decode_base64(self.raw, buf).unwrap_or(0);
        &buf[..n]
    }
}

/// How `ms` combines the new value with a stored one (`M<mode>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaSetMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
}

/// The flags of one meta command, validated by the parser.
///
/// Only the raw flag text and a bit per letter are kept; token values are
/// read back from the text when asked for. That keeps [`Request`] small
/// (a request travels by value through the connection loop) and the
/// encoder needs the raw tokens anyway, to echo them in request order.
///
/// [`Request`]: crate::protocol::Request
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaFlags<'a> {
    /// The flag part of the line, as sent (space separated).
    pub tokens: &'a [u8],
    /// One bit per flag letter present.
    seen: u64,
}

impl<'a> MetaFlags<'a> {
    /// Flags whose syntax the parser checked.
    pub(crate) fn validated(tokens: &'a [u8], seen: u64) -> Self {
        MetaFlags { tokens, seen }
    }

    pub(crate) fn bit(flag: u8) -> u64 {
        match flag {
            b'a'..=b'z' => 1 << (flag - b'a'),
            b'A'..=b'Z' => 1 << (26 + flag - b'A'),
            _ => 0,
        }
    }

    /// Whether the flag letter `flag` was sent.
    pub fn has(&self, flag: u8) -> bool {
        self.seen & Self::bit(flag) != 0
    }

    /// Quiet mode (`q`).
    pub fn quiet(&self) -> bool {
        self.has(b'q')
    }

    /// The flag tokens, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.tokens.split(|&b| b == b' ').filter(|t| !t.is_empty())
    }

    /// The text after the letter of flag `flag`, if it was sent.
    pub fn arg(&self, flag: u8) -> Option<&'a [u8]> {
        if !self.has(flag) {
            return None;
        }
        self.iter().find(|t| t[0] == flag).map(|t| &t[1..])
    }

    fn int(&self, flag: u8) -> Option<i64> {
        self.arg(flag).and_then(parse::parse_i32).map(i64::from)
    }

    fn uint(&self, flag: u8) -> Option<u64> {
        self.arg(flag).and_then(parse::parse_u64)
    }

    /// `C<cas>`: compare.
    pub fn compare_cas(&self) -> Option<u64> {
        self.uint(b'C')
    }

    /// `E<cas>`: the CAS to give a modified item.
    pub fn new_cas(&self) -> Option<u64> {
        self.uint(b'E')
    }

    /// `F<flags>`: client flags to store (0 when absent).
    pub fn client_flags(&self) -> u32 {
        self.uint(b'F')
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    }

    /// `T<ttl>`: new TTL.
    pub fn ttl(&self) -> Option<i64> {
        self.int(b'T')
    }

    /// `N<ttl>`: vivify on miss with this TTL.
    pub fn vivify(&self) -> Option<i64> {
        self.int(b'N')
    }

    /// `R<ttl>`: win the recache when the TTL left is below this.
    pub fn recache(&self) -> Option<i64> {
        self.int(b'R')
    }

    /// `J<n>`: `ma` initial value on vivify (0 when absent).
    pub fn initial(&self) -> u64 {
        self.uint(b'J').unwrap_or(0)
    }

    /// `D<n>`: `ma` delta (1 when absent).
    pub fn delta(&self) -> u64 {
        self.uint(b'D').unwrap_or(1)
    }

    /// `M<mode>`: the mode letter.
    pub fn mode(&self) -> Option<u8> {
        self.arg(b'M').and_then(|a| a.first().copied())
    }

    /// The `ms` mode; the parser accepted only valid letters.
    pub fn set_mode(&self) -> MetaSetMode {
        match self.mode() {
            Some(b'E') => MetaSetMode::Add,
            Some(b'R') => MetaSetMode::Replace,
            Some(b'A') => MetaSetMode::Append,
            Some(b'P') => MetaSetMode::Prepend,
            _ => MetaSetMode::Set,
        }
    }

    /// Whether `ma` decrements (`MD`, `M-`).
    pub fn decrement(&self) -> bool {
        matches!(self.mode(), Some(b'D' | b'd' | b'-'))
    }
}

/// What a reply reports about the item (`c f h l s t`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaItemInfo {
    pub cas: u64,
    pub client_flags: u32,
    /// Value length.
    pub size: usize,
    /// The item had been read before this request (`h`).
    pub hit_before: bool,
    /// Seconds since the previous access (`l`).
    pub last_access: u32,
    /// TTL left before this request, −1 for none.
    pub ttl: i64,
    /// TTL left once `T` was applied (reported by a `t` after the `T`).
    pub ttl_touched: i64,
    /// TTL of an item created by `N` (reported by a `t` after the `N`).
    pub ttl_vivified: Option<i64>,
}

/// One meta reply line (and value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaReply<'a> {
    pub cmd: MetaCmd,
    pub status: MetaStatus,
    pub flags: &'a MetaFlags<'a>,
    pub key: MetaKey<'a>,
    pub item: MetaItemInfo,
    /// The value for `VA`.
    pub value: &'a [u8],
    /// `W`: this client won the right to recache.
    pub won: bool,
    /// `X`: the item is stale.
    pub stale: bool,
    /// `Z`: a win was already handed out.
    pub win_sent: bool,
}

/// `me` reply: an item's internals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaDebugReply<'a> {
    pub key: &'a [u8],
    /// Seconds left, −1 for none.
    pub exp: i64,
    /// Seconds since the last access.
    pub la: u32,
    pub cas: u64,
    pub fetched: bool,
    pub class: u8,
    pub size: usize,
}
