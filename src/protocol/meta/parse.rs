//! Meta request parsing. Pure, allocation-free, and total: any bytes give a
//! request, `Incomplete`, or memcached's error for them.

use super::{MetaFlags, MetaKey, MAX_TOKENS, OPAQUE_MAX_TOKEN};
use crate::protocol::{ClientError, Limits, Parsed, Request, Response, KEY_MAX_LENGTH};

/// Which command a flag set belongs to; decides the error wording.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Set,
    Delete,
    Arith,
}

/// Parses a line whose first word is `command`, if it is a meta command.
///
/// `rest` is the line after the command word (without its terminator),
/// `buf` the whole read buffer and `next` the offset just past the line's
/// `\n`, where an `ms` data block starts.
pub fn parse_command<'a>(
    command: &[u8],
    rest: &'a [u8],
    buf: &'a [u8],
    next: usize,
    limits: &Limits,
) -> Option<Parsed<'a>> {
    Some(match command {
        b"mn" => request(Request::MetaNoop, next),
        b"me" => debug(rest, next),
        b"mg" => keyed(Verb::Get, rest, next),
        b"md" => keyed(Verb::Delete, rest, next),
        b"ma" => keyed(Verb::Arith, rest, next),
        b"ms" => set(rest, buf, next, limits),
        _ => return None,
    })
}

fn request(request: Request<'_>, consumed: usize) -> Parsed<'_> {
    Parsed::Request { request, consumed }
}

/// An error reply for input ending at `end`, of which `buf_len` bytes are
/// buffered; the rest (of a rejected `ms` data block) is swallowed later.
fn error(error: Response<'static>, end: usize, buf_len: usize) -> Parsed<'static> {
    let consumed = end.min(buf_len);
    Parsed::Invalid {
        error,
        consumed,
        swallow: end - consumed,
        close: false,
        quiet: false,
    }
}

fn client_error(e: ClientError, next: usize) -> Parsed<'static> {
    error(Response::ClientError(e), next, next)
}

/// Splits off the first space-separated word.
fn word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&b| b != b' ')?;
    let s = &s[start..];
    let end = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// Number of words in `s`, counting no further than `cap`.
fn count_words(s: &[u8], cap: usize) -> usize {
    let mut n = 0;
    let mut rest = s;
    while n < cap {
        let Some((_, r)) = word(rest) else { break };
        n += 1;
        rest = r;
    }
    n
}

/// `me <key> [b]`: memcached 1.6.18 looks only at the word after the key,
/// which makes the key base64 when it is exactly `b`; anything else is
/// ignored.
fn debug(rest: &[u8], next: usize) -> Parsed<'_> {
    let bad = || client_error(ClientError::BadCommandLineFormat, next);
    let Some((raw, flags)) = word(rest) else {
        return bad();
    };
    if raw.len() > KEY_MAX_LENGTH {
        return bad();
    }
    let base64 = matches!(word(flags), Some((b"b", _)));
    if base64 && super::decode_base64(raw, &mut [0u8; KEY_MAX_LENGTH]).is_none() {
        return bad();
    }
    request(
        Request::MetaDebug {
            key: MetaKey { raw, base64 },
        },
        next,
    )
}

/// `mg`, `md`, `ma`: `<key> <flags>*`.
fn keyed(verb: Verb, rest: &[u8], next: usize) -> Parsed<'_> {
    let Some((raw, flags)) = word(rest) else {
        return error(Response::Error, next, next);
    };
    if raw.len() > KEY_MAX_LENGTH {
        return client_error(ClientError::BadCommandLineFormat, next);
    }
    // The command and the key are two of the tokens.
    if count_words(flags, MAX_TOKENS - 1) > MAX_TOKENS - 2 {
        let e = if verb == Verb::Get {
            ClientError::MetaFlagsAreTooLong
        } else {
            ClientError::MetaFlagsTooLong
        };
        return client_error(e, next);
    }
    let (key, flags) = match flags_and_key(verb, raw, flags) {
        Ok(v) => v,
        Err(e) => return client_error(e, next),
    };
    let request = match verb {
        Verb::Get => Request::MetaGet { key, flags },
        Verb::Delete => Request::MetaDelete { key, flags },
        _ => Request::MetaArith { key, flags },
    };
    self::request(request, next)
}

/// `ms <key> <datalen> <flags>*` + data block.
fn set<'a>(rest: &'a [u8], buf: &'a [u8], next: usize, limits: &Limits) -> Parsed<'a> {
    let Some((raw, after_key)) = word(rest) else {
        return error(Response::Error, next, next);
    };
    let bad_format = || client_error(ClientError::BadCommandLineFormat, next);
    if raw.len() > KEY_MAX_LENGTH {
        return bad_format();
    }
    let Some((len_token, flags)) = word(after_key) else {
        return bad_format();
    };
    let len = match parse_i32(len_token) {
        Some(len) if len >= 0 => len as usize,
        _ => return bad_format(),
    };
    if count_words(flags, MAX_TOKENS - 2) > MAX_TOKENS - 3 {
        return client_error(ClientError::MetaFlagsTooLong, next);
    }
    let block_end = next + len + 2;
    let (key, flags) = match flags_and_key(Verb::Set, raw, flags) {
        Ok(v) => v,
        Err(e) => return error(Response::ClientError(e), block_end, buf.len()),
    };
    // Too large for an item, or, while its data is still arriving, for the
    // memory left to uploads: refused, its data swallowed.
    let refusal = if len > limits.item_size_max {
        Some(crate::protocol::ServerError::ObjectTooLarge)
    } else if buf.len() < block_end && len > limits.pending_value_max {
        Some(crate::protocol::ServerError::OutOfMemoryStoring)
    } else {
        None
    };
    if let Some(refusal) = refusal {
        let consumed = block_end.min(buf.len());
        let swallow = block_end - consumed;
        if key.base64 {
            // The refused write cannot name its decoded key without a
            // buffer; answer it without dropping the old value.
            return Parsed::Invalid {
                error: Response::ServerError(refusal),
                consumed,
                swallow,
                close: false,
                quiet: false,
            };
        }
        let mode = match flags.set_mode() {
            super::MetaSetMode::Set => crate::protocol::StoreMode::Set,
            super::MetaSetMode::Add => crate::protocol::StoreMode::Add,
            super::MetaSetMode::Replace => crate::protocol::StoreMode::Replace,
            super::MetaSetMode::Append => crate::protocol::StoreMode::Append,
            super::MetaSetMode::Prepend => crate::protocol::StoreMode::Prepend,
        };
        let (key, noreply) = (raw, false);
        let request = match refusal {
            crate::protocol::ServerError::ObjectTooLarge => {
                Request::StoreTooLarge { mode, key, noreply }
            }
            _ => Request::StoreNoMemory { mode, key, noreply },
        };
        return Parsed::Oversized {
            request,
            consumed,
            swallow,
        };
    }
    if buf.len() < block_end {
        return Parsed::Incomplete;
    }
    if &buf[next + len..block_end] != b"\r\n" {
        return error(
            Response::ClientError(ClientError::BadDataChunk),
            block_end,
            block_end,
        );
    }
    request(
        Request::MetaSet {
            key,
            flags,
            value: &buf[next..next + len],
        },
        block_end,
    )
}

/// Parses the flags, checks the key against `b`, and applies the
/// per-command rules: the `M` letters each command accepts, the opaque
/// length, and how `md`/`ma` word their flag errors.
fn flags_and_key<'a>(
    verb: Verb,
    raw: &'a [u8],
    tokens: &'a [u8],
) -> Result<(MetaKey<'a>, MetaFlags<'a>), ClientError> {
    let flags = parse_flags(raw, tokens).map_err(|e| match verb {
        // memcached 1.6.18 words every flag problem of md and ma this way.
        Verb::Delete | Verb::Arith => ClientError::MetaInvalidOrDuplicateFlag,
        _ => e,
    })?;
    match (verb, flags.mode()) {
        (Verb::Set, Some(m)) if !matches!(m, b'E' | b'A' | b'P' | b'R' | b'S') => {
            return Err(ClientError::MetaInvalidSetMode)
        }
        (Verb::Arith, Some(m)) if !matches!(m, b'I' | b'i' | b'+' | b'D' | b'd' | b'-') => {
            return Err(ClientError::MetaInvalidArithMode)
        }
        _ => {}
    }
    if flags
        .iter()
        .any(|t| t[0] == b'O' && t.len() > OPAQUE_MAX_TOKEN)
    {
        return Err(ClientError::MetaOpaqueTooLong);
    }
    let key = MetaKey {
        raw,
        base64: flags.has(b'b'),
    };
    Ok((key, flags))
}

/// memcached's flag pre-parse. An unknown or repeated flag stops it at
/// once; a bad token is remembered and parsing goes on, so the last bad
/// token decides the message.
fn parse_flags<'a>(key: &[u8], tokens: &'a [u8]) -> Result<MetaFlags<'a>, ClientError> {
    let mut letters = 0u64;
    // Any byte below 127 may appear once; bytes above always count as
    // repeated, as in memcached's table.
    let mut seen = [0u64; 2];
    let mut soft: Option<ClientError> = None;
    let mut rest = tokens;
    while let Some((t, r)) = word(rest) {
        rest = r;
        let o = t[0];
        let (slot, bit) = ((o / 64) as usize, 1u64 << (o % 64));
        if o >= 127 || seen[slot] & bit != 0 {
            return Err(ClientError::MetaDuplicateFlag);
        }
        seen[slot] |= bit;
        let arg = &t[1..];
        let problem = match o {
            b'b' => {
                let mut scratch = [0u8; KEY_MAX_LENGTH];
                super::decode_base64(key, &mut scratch)
                    .is_none()
                    .then_some(ClientError::MetaKeyDecode)
            }
            b'N' | b'T' | b'R' => parse_i32(arg)
                .is_none()
                .then_some(ClientError::MetaBadToken),
            b'C' | b'E' => parse_u64(arg)
                .is_none()
                .then_some(ClientError::MetaBadToken),
            // memcached flags a bad F without a message of its own: an
            // earlier bad token keeps its wording, else the default shows.
            b'F' => parse_u64(arg)
                .and_then(|v| u32::try_from(v).ok())
                .is_none()
                .then_some(soft.unwrap_or(ClientError::BadCommandLineFormat)),
            b'M' => (arg.len() != 1).then_some(ClientError::MetaMTokenLength),
            b'J' => parse_u64(arg)
                .is_none()
                .then_some(ClientError::MetaInvalidInitial),
            b'D' => parse_u64(arg)
                .is_none()
                .then_some(ClientError::MetaInvalidDelta),
            b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' | b'v' | b'h' | b'l' | b'u'
            | b'q' | b'I' | b'x' => None,
            _ => return Err(ClientError::MetaInvalidFlag),
        };
        if problem.is_some() {
            soft = problem;
        }
        letters |= MetaFlags::bit(o);
    }
    match soft {
        Some(e) => Err(e),
        None => Ok(MetaFlags::validated(tokens, letters)),
    }
}

/// C `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Reads a number as memcached's `strtol`-based helpers do: optional
/// leading white space and sign, at least one digit, then the end of the
/// token or white space (anything after that is ignored, so `5\r` is 5).
fn sign_digits(token: &[u8]) -> Option<(bool, &[u8])> {
    let start = token.iter().take_while(|&&b| is_c_space(b)).count();
    let token = &token[start..];
    let (neg, rest) = match token.first() {
        Some(b'-') => (true, &token[1..]),
        Some(b'+') => (false, &token[1..]),
        _ => (false, token),
    };
    let count = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 || rest.get(count).is_some_and(|&b| !is_c_space(b)) {
        return None;
    }
    Some((neg, &rest[..count]))
}

fn magnitude(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |v, &d| {
        v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A 32-bit signed number (TTLs, data length), like memcached's
/// `safe_strtol` into an `int32_t`, but refusing values outside it.
pub(super) fn parse_i32(token: &[u8]) -> Option<i32> {
    let (neg, digits) = sign_digits(token)?;
    let m = magnitude(digits)?;
    let v = if neg {
        -i64::try_from(m).ok()?
    } else {
        i64::try_from(m).ok()?
    };
    i32::try_from(v).ok()
}

/// An unsigned 64-bit number (CAS, delta, initial value); `-0` is 0.
pub(super) fn parse_u64(token: &[u8]) -> Option<u64> {
    let (neg, digits) = sign_digits(token)?;
    match (neg, magnitude(digits)?) {
        (true, 0) => Some(0),
        (true, _) => None,
        (false, v) => Some(v),
    }
}
