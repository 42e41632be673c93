//! Text request parsing: framing, tokenizing and one function per command
//! family. Everything here is allocation-free and must never panic, whatever
//! the bytes.

use memchr::memchr;

mod config;

use crate::protocol::{
    ArithOp, ClientError, CrawlerClasses, CrawlerOp, CrawlerSetting, KeyList, Limits, Parsed,
    Request, Response, StatsGroup, StoreMode, KEY_MAX_LENGTH, LINE_MAX_LENGTH,
};

/// memcached skips at most this many leading spaces when it decides whether
/// an over-long line is a multiget it should keep reading.
const MAX_LEADING_SPACES: usize = 100;

/// Largest data block a storage command may announce (`INT_MAX - 2` in
/// memcached, which adds the two terminator bytes to an `int`).
const MAX_DATA_LEN: u64 = i32::MAX as u64 - 2;

/// Parses the first request at the front of `buf`.
///
/// A command line ends at the first `\n`; one `\r` before it is dropped, and
/// (as memcached reads the line as a C string) the line ends at its first NUL
/// byte. Tokens are separated by runs of spaces; tabs are ordinary bytes.
///
/// Storage commands are returned only once their whole data block and its
/// `\r\n` are buffered. A value above [`Limits::item_size_max`] is rejected
/// from its command line alone: `consumed` then covers the part of the data
/// block already buffered and `swallow` the part still to come.
///
/// A line with no `\n` in its first [`LINE_MAX_LENGTH`] + 1 bytes closes the
/// connection without a reply, unless it is a `get`/`gets`/`gat`/`gats` line,
/// which may grow up to [`Limits::max_get_line`].
pub fn parse<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let fast = match buf.first() {
        Some(b'g') => single_get(buf),
        Some(b's') => plain_set(buf, limits),
        _ => None,
    };
    match fast {
        Some(parsed) => parsed,
        None => parse_general(buf, limits),
    }
}

/// [`parse`] without the single-key `get` fast path.
fn parse_general<'a>(buf: &'a [u8], limits: &Limits) -> Parsed<'a> {
    let newline = match find_newline(buf, limits) {
        LineEnd::At(i) => i,
        LineEnd::NotYet => return Parsed::Incomplete,
        LineEnd::TooLong => return too_long(),
    };
    let line = command_text(&buf[..newline]);
    let next = newline + 1;

    let mut tokens = Tokens::new(line);
    let Some(command) = tokens.next() else {
        return invalid(Response::Error, next, false);
    };
    match command {
        b"get" => retrieval(tokens, next, false, false),
        b"gets" => retrieval(tokens, next, true, false),
        b"gat" => retrieval(tokens, next, false, true),
        b"gats" => retrieval(tokens, next, true, true),
        b"set" => storage(tokens, buf, next, limits, StoreMode::Set),
        b"add" => storage(tokens, buf, next, limits, StoreMode::Add),
        b"replace" => storage(tokens, buf, next, limits, StoreMode::Replace),
        b"append" => storage(tokens, buf, next, limits, StoreMode::Append),
        b"prepend" => storage(tokens, buf, next, limits, StoreMode::Prepend),
        b"cas" => storage(tokens, buf, next, limits, StoreMode::Cas),
        b"delete" => delete(tokens, next),
        b"incr" => arith(tokens, next, ArithOp::Incr),
        b"decr" => arith(tokens, next, ArithOp::Decr),
        b"touch" => touch(tokens, next),
        b"flush_all" => flush_all(tokens, next),
        b"verbosity" => verbosity(tokens, next),
        b"cache_memlimit" => cache_memlimit(tokens, next),
        b"shutdown" => shutdown(tokens, next),
        b"stats" => stats(tokens, next),
        b"config" => config::config(tokens, buf, next, limits),
        b"cluster" => config::cluster(tokens, buf, next, limits),
        // memcached ignores anything after these two.
        b"mg" | b"ms" | b"md" | b"ma" | b"mn" | b"me" => {
            crate::protocol::meta::parse_command(command, tokens.rest(), buf, next, limits)
                .unwrap_or_else(|| invalid(Response::Error, next, false))
        }
        b"version" => request(Request::Version, next),
        b"quit" => request(Request::Quit, next),
        b"refresh_certs" => request(Request::RefreshCerts, next),
        b"lru_crawler" => lru_crawler(tokens, next),
        b"slabs" => slabs(tokens, next),
        _ => invalid(Response::Error, next, false),
    }
}

/// `get <key>\r\n` (or `\n`) with one key of printable, non-space bytes:
/// the most common request, recognised without the general tokenizer. It
/// yields exactly what the general path would; anything else (no line end
/// yet, other bytes, several keys, an over-long key) returns `None` and goes
/// the general way.
#[inline]
fn single_get(buf: &[u8]) -> Option<Parsed<'_>> {
    let rest = buf.strip_prefix(b"get ")?;
    let len = first_control_or_space(&rest[..rest.len().min(KEY_MAX_LENGTH + 2)]);
    if len == 0 || len > KEY_MAX_LENGTH {
        return None;
    }
    let consumed = 4
        + len
        + match &rest[len..] {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] => 1,
            _ => return None,
        };
    Some(request(
        Request::Get {
            keys: KeyList::new(&rest[..len]),
            with_cas: false,
            touch: None,
        },
        consumed,
    ))
}

/// `set <key> <flags> <exptime> <bytes>\r\n` + data block, every number
/// plain digits (at most nine) and single spaces: what clients send. Yields
/// exactly what the general path would, including `Incomplete` while the
/// data block is short; anything else (other commands or modes, `noreply`,
/// signs, over-long numbers or keys, a value above the item size, a bad
/// data terminator) returns `None` and goes the general way.
#[inline]
fn plain_set<'a>(buf: &'a [u8], limits: &Limits) -> Option<Parsed<'a>> {
    let rest = buf.strip_prefix(b"set ")?;
    let klen = first_control_or_space(&rest[..rest.len().min(KEY_MAX_LENGTH + 1)]);
    if klen == 0 || klen > KEY_MAX_LENGTH || rest.get(klen) != Some(&b' ') {
        return None;
    }
    let key = &rest[..klen];
    let mut pos = 4 + klen + 1;
    let flags = small_number(buf, &mut pos, b' ')?;
    let exptime = small_number(buf, &mut pos, b' ')?;
    let len = small_number(buf, &mut pos, b'\r')? as usize;
    if buf.get(pos) != Some(&b'\n') || len > limits.item_size_max {
        return None;
    }
    let next = pos + 1;
    let block_end = next + len + 2;
    if buf.len() < block_end {
        // A refusal for memory is the general path's.
        return (len <= limits.pending_value_max).then_some(Parsed::Incomplete);
    }
    if &buf[next + len..block_end] != b"\r\n" {
        return None;
    }
    Some(request(
        Request::Store {
            mode: StoreMode::Set,
            key,
            flags: flags as u32,
            exptime: exptime as i64,
            cas: 0,
            value: &buf[next..next + len],
            noreply: false,
        },
        block_end,
    ))
}

/// 1–9 ASCII digits at `*pos` followed by `end`; moves `*pos` past `end`.
#[inline]
fn small_number(buf: &[u8], pos: &mut usize, end: u8) -> Option<u64> {
    let mut v = 0u64;
    let start = *pos;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if b.is_ascii_digit() {
            if *pos - start > 9 {
                return None;
            }
            v = v * 10 + u64::from(b - b'0');
        } else if b == end && *pos - start > 1 {
            return Some(v);
        } else {
            return None;
        }
    }
}

/// Length of the prefix of `s` with no byte at or below `b' '` (so no
/// space, NUL, `\r` or `\n`), eight bytes at a time: the "has a byte below
/// n" test, whose lowest flagged byte is always the first match.
#[inline]
fn first_control_or_space(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let low = w.wrapping_sub(ONES * 0x21) & !w & HIGHS;
        if low != 0 {
            return i + (low.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + s[i..].iter().take_while(|&&b| b > b' ').count()
}

enum LineEnd {
    /// Index of the `\n` ending the first line.
    At(usize),
    /// No `\n` yet, and the line may still grow.
    NotYet,
    /// No `\n` within the allowed length: close the connection.
    TooLong,
}

/// Finds the end of the first line, enforcing the 2048-byte rule.
///
/// memcached closes a connection whose buffered bytes exceed 2048 without a
/// newline. Applying the rule to the first 2049 bytes, whatever else is
/// buffered, gives the same answer for a line that trickles in and makes the
/// outcome independent of how the bytes were split into reads.
fn find_newline(buf: &[u8], limits: &Limits) -> LineEnd {
    let head = &buf[..buf.len().min(LINE_MAX_LENGTH + 1)];
    if let Some(i) = memchr(b'\n', head) {
        return LineEnd::At(i);
    }
    if buf.len() <= LINE_MAX_LENGTH {
        return LineEnd::NotYet;
    }
    if !is_multiget(buf) {
        return LineEnd::TooLong;
    }
    let limit = limits.max_get_line.max(LINE_MAX_LENGTH);
    let window = &buf[head.len()..buf.len().min(limit.saturating_add(1))];
    match memchr(b'\n', window) {
        Some(i) => LineEnd::At(head.len() + i),
        None if buf.len() > limit => LineEnd::TooLong,
        None => LineEnd::NotYet,
    }
}

/// Whether an over-long line is a retrieval, which may legitimately carry
/// thousands of keys. memcached exempts only `get`/`gets`; we also exempt
/// `gat`/`gats` (see `docs/compat-text.md`).
fn is_multiget(buf: &[u8]) -> bool {
    let spaces = buf
        .iter()
        .take(MAX_LEADING_SPACES + 1)
        .take_while(|&&b| b == b' ')
        .count();
    if spaces > MAX_LEADING_SPACES {
        return false;
    }
    let rest = &buf[spaces..];
    [&b"get "[..], b"gets ", b"gat ", b"gats "]
        .iter()
        .any(|prefix| rest.starts_with(prefix))
}

/// The part of a line memcached interprets: without the `\r` before the
/// `\n`, and cut at the first NUL byte.
fn command_text(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    }
}

/// Index of the first space in `s`, eight bytes at a time. Tokens are short
/// (a key, a number), where a vectorised search costs more to set up than
/// it saves; this is the classic "has a zero byte" test on `word ^ spaces`,
/// whose lowest flagged byte is always the first match.
#[inline]
fn find_space(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word) ^ (ONES * u64::from(b' '));
        let zero = w.wrapping_sub(ONES) & !w & HIGHS;
        if zero != 0 {
            return Some(i + (zero.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..].iter().position(|&b| b == b' ').map(|p| i + p)
}

/// Space-separated tokens of a command line; empty tokens are skipped.
struct Tokens<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> Tokens<'a> {
    fn new(line: &'a [u8]) -> Self {
        Tokens { line, pos: 0 }
    }

    fn next(&mut self) -> Option<&'a [u8]> {
        let line = self.line;
        let mut start = self.pos;
        while start < line.len() && line[start] == b' ' {
            start += 1;
        }
        if start >= line.len() {
            return None;
        }
        let end = find_space(&line[start..]).map_or(line.len(), |n| start + n);
        self.pos = end;
        Some(&line[start..end])
    }

    /// What is left of the line, unsplit.
    fn rest(&self) -> &'a [u8] {
        self.line.get(self.pos..).unwrap_or_default()
    }

    /// The next (up to) `N` tokens and how many there were; the count stops
    /// at `N + 1`, which means "too many" to every caller.
    fn take<const N: usize>(&mut self) -> ([&'a [u8]; N], usize) {
        let mut out = [&[][..]; N];
        let mut n = 0;
        while n <= N {
            let Some(token) = self.next() else { break };
            if let Some(slot) = out.get_mut(n) {
                *slot = token;
            }
            n += 1;
        }
        (out, n)
    }
}

fn request(request: Request<'_>, consumed: usize) -> Parsed<'_> {
    Parsed::Request { request, consumed }
}

fn invalid(error: Response<'static>, consumed: usize, quiet: bool) -> Parsed<'static> {
    Parsed::Invalid {
        error,
        consumed,
        swallow: 0,
        close: false,
        quiet,
    }
}

fn client_error(error: ClientError, consumed: usize, quiet: bool) -> Parsed<'static> {
    invalid(Response::ClientError(error), consumed, quiet)
}

/// memcached closes such connections without a word; `error` only says why.
fn too_long() -> Parsed<'static> {
    Parsed::Invalid {
        error: Response::ClientError(ClientError::LineTooLong),
        consumed: 0,
        swallow: 0,
        close: true,
        quiet: true,
    }
}

/// memcached honours `noreply` when it is the last token, whatever the
/// token count, so `incr k noreply` fails silently (the delta is missing).
fn noreply(args: &[&[u8]]) -> bool {
    args.last() == Some(&&b"noreply"[..])
}

/// `get|gets <key>+` and `gat|gats <exptime> <key>*`.
///
/// One key over 250 bytes turns the whole command into a `CLIENT_ERROR`
/// (memcached discards the values it already gathered). `gat` with no key
/// is valid and answers `END`.
fn retrieval(mut tokens: Tokens<'_>, next: usize, with_cas: bool, touch: bool) -> Parsed<'_> {
    let exptime = if touch {
        let Some(token) = tokens.next() else {
            return invalid(Response::Error, next, false);
        };
        match parse_i64(token) {
            Some(exptime) => Some(exptime),
            None => return client_error(ClientError::InvalidExptime, next, false),
        }
    } else {
        None
    };

    let rest = tokens.rest();
    let mut first = None;
    let mut end = 0;
    let mut i = 0;
    while i < rest.len() {
        if rest[i] == b' ' {
            i += 1;
            continue;
        }
        let key_end = find_space(&rest[i..]).map_or(rest.len(), |n| i + n);
        if key_end - i > KEY_MAX_LENGTH {
            return client_error(ClientError::BadCommandLineFormat, next, false);
        }
        first.get_or_insert(i);
        end = key_end;
        i = key_end;
    }
    let keys = match first {
        Some(start) => KeyList::new(&rest[start..end]),
        None if touch => KeyList::new(&[]),
        None => return invalid(Response::Error, next, false),
    };
    request(
        Request::Get {
            keys,
            with_cas,
            touch: exptime,
        },
        next,
    )
}

/// `<cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]` + data block.
fn storage<'a>(
    mut tokens: Tokens<'a>,
    buf: &'a [u8],
    next: usize,
    limits: &Limits,
    mode: StoreMode,
) -> Parsed<'a> {
    let (args, n) = tokens.take::<6>();
    let required = if mode == StoreMode::Cas { 5 } else { 4 };
    if n != required && n != required + 1 {
        return invalid(Response::Error, next, false);
    }
    let args = &args[..n];
    let noreply = noreply(args);
    let bad_format = || client_error(ClientError::BadCommandLineFormat, next, noreply);

    let key = args[0];
    if key.len() > KEY_MAX_LENGTH {
        return bad_format();
    }
    let (Some(flags), Some(exptime), Some(len)) =
        (parse_u32(args[1]), parse_i64(args[2]), parse_i64(args[3]))
    else {
        return bad_format();
    };
    let cas = if mode == StoreMode::Cas {
        match parse_u64(args[4]) {
            Some(cas) => cas,
            None => return bad_format(),
        }
    } else {
        0
    };
    let len = match u64::try_from(len) {
        Ok(len) if len <= MAX_DATA_LEN => len as usize,
        _ => return bad_format(),
    };

    // The data block and its terminator follow the line.
    let block_end = next + len + 2;
    if len > limits.item_size_max {
        let consumed = block_end.min(buf.len());
        return Parsed::Oversized {
            request: Request::StoreTooLarge { mode, key, noreply },
            consumed,
            swallow: block_end - consumed,
        };
    }
    if buf.len() < block_end {
        if len > limits.pending_value_max {
            return Parsed::Oversized {
                request: Request::StoreNoMemory { mode, key, noreply },
                consumed: buf.len(),
                swallow: block_end - buf.len(),
            };
        }
        return Parsed::Incomplete;
    }
    // memcached reads exactly `len + 2` bytes and then checks the last two;
    // whatever follows is parsed as the next command.
    if &buf[next + len..block_end] != b"\r\n" {
        return client_error(ClientError::BadDataChunk, block_end, noreply);
    }
    request(
        Request::Store {
            mode,
            key,
            flags,
            exptime,
            cas,
            value: &buf[next..next + len],
            noreply,
        },
        block_end,
    )
}

/// `delete <key> [0] [noreply]`: memcached still accepts the hold time of
/// old clients, but only `0`.
fn delete(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    let (args, n) = tokens.take::<3>();
    if n == 0 || n > 3 {
        return invalid(Response::Error, next, false);
    }
    let args = &args[..n];
    // memcached looks for `noreply` only when there is more than the key.
    let noreply = n > 1 && noreply(args);
    if n > 1 {
        let hold_is_zero = args[1] == b"0";
        let valid = (n == 2 && (hold_is_zero || noreply)) || (n == 3 && hold_is_zero && noreply);
        if !valid {
            return client_error(ClientError::BadDeleteFormat, next, noreply);
        }
    }
    let key = args[0];
    if key.len() > KEY_MAX_LENGTH {
        return client_error(ClientError::BadCommandLineFormat, next, noreply);
    }
    request(Request::Delete { key, noreply }, next)
}

/// The shape `incr`/`decr` and `touch` share, `<key> <arg> [noreply]`:
/// checks the token count and the key, and returns the key, the argument
/// and the noreply flag (a third token other than `noreply` is ignored, as
/// memcached does).
fn key_and_arg<'a>(
    tokens: &mut Tokens<'a>,
    next: usize,
) -> Result<(&'a [u8], &'a [u8], bool), Parsed<'a>> {
    let (args, n) = tokens.take::<3>();
    if n != 2 && n != 3 {
        return Err(invalid(Response::Error, next, false));
    }
    let args = &args[..n];
    let noreply = noreply(args);
    let key = args[0];
    if key.len() > KEY_MAX_LENGTH {
        return Err(client_error(
            ClientError::BadCommandLineFormat,
            next,
            noreply,
        ));
    }
    Ok((key, args[1], noreply))
}

/// `incr|decr <key> <delta> [noreply]`.
fn arith(mut tokens: Tokens<'_>, next: usize, op: ArithOp) -> Parsed<'_> {
    let (key, delta, noreply) = match key_and_arg(&mut tokens, next) {
        Ok(parts) => parts,
        Err(e) => return e,
    };
    let Some(delta) = parse_u64(delta) else {
        return client_error(ClientError::InvalidDeltaArgument, next, noreply);
    };
    request(
        Request::Arith {
            op,
            key,
            delta,
            noreply,
        },
        next,
    )
}

/// `touch <key> <exptime> [noreply]`.
fn touch(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    let (key, exptime, noreply) = match key_and_arg(&mut tokens, next) {
        Ok(parts) => parts,
        Err(e) => return e,
    };
    let Some(exptime) = parse_i64(exptime) else {
        return client_error(ClientError::InvalidExptime, next, noreply);
    };
    request(
        Request::Touch {
            key,
            exptime,
            noreply,
        },
        next,
    )
}

/// `flush_all [delay] [noreply]`; with two arguments the second is ignored
/// unless it is `noreply`.
fn flush_all(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    let (args, n) = tokens.take::<2>();
    if n > 2 {
        return invalid(Response::Error, next, false);
    }
    let args = &args[..n];
    let noreply = noreply(args);
    let delay = if n == usize::from(noreply) {
        0
    } else {
        match parse_i64(args[0]) {
            Some(delay) => delay,
            None => return client_error(ClientError::InvalidExptime, next, noreply),
        }
    };
    request(Request::FlushAll { delay, noreply }, next)
}

/// `verbosity <level> [noreply]`.
fn verbosity(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    let (args, n) = tokens.take::<2>();
    if n != 1 && n != 2 {
        return invalid(Response::Error, next, false);
    }
    let args = &args[..n];
    let noreply = noreply(args);
    match parse_u32(args[0]) {
        Some(level) => request(Request::Verbosity { level, noreply }, next),
        None => client_error(ClientError::BadCommandLineFormat, next, noreply),
    }
}

/// `cache_memlimit <megabytes> [noreply]`; memcached answers a bad number
/// with a plain `ERROR`.
fn cache_memlimit(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    let (args, n) = tokens.take::<2>();
    if n != 1 && n != 2 {
        return invalid(Response::Error, next, false);
    }
    let args = &args[..n];
    let noreply = noreply(args);
    match parse_u32(args[0]) {
        Some(megabytes) => request(
            Request::CacheMemlimit {
                megabytes: u64::from(megabytes),
                noreply,
            },
            next,
        ),
        None => invalid(Response::Error, next, noreply),
    }
}

/// `shutdown [graceful]`. Whether it is allowed is `exec`'s call.
fn shutdown(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    let (args, n) = tokens.take::<1>();
    match n {
        0 => request(Request::Shutdown { graceful: false }, next),
        1 if args[0] == b"graceful" => request(Request::Shutdown { graceful: true }, next),
        _ => client_error(ClientError::InvalidShutdownMode, next, false),
    }
}

/// `stats [group]`; memcached ignores further arguments of these groups.
fn stats(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    let group = match tokens.next() {
        None => StatsGroup::General,
        Some(b"settings") => StatsGroup::Settings,
        Some(b"items") => StatsGroup::Items,
        Some(b"slabs") => StatsGroup::Slabs,
        Some(b"sizes") => StatsGroup::Sizes,
        Some(b"conns") => StatsGroup::Conns,
        Some(b"reset") => StatsGroup::Reset,
        Some(b"cachedump") => {
            let (Some(class), Some(limit)) = (tokens.next(), tokens.next()) else {
                return client_error(ClientError::BadCommandLine, next, false);
            };
            match (parse_u32(class), parse_u32(limit)) {
                (Some(class), Some(limit)) => StatsGroup::CacheDump { class, limit },
                _ => return client_error(ClientError::BadCommandLineFormat, next, false),
            }
        }
        Some(other) => StatsGroup::Other(other),
    };
    request(Request::Stats { group }, next)
}

/// `slabs reassign <src> <dst>` and `slabs automove <0|1|2|ratio r>
/// [noreply]`, with memcached's answers to bad input.
fn slabs(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    match tokens.next() {
        Some(b"reassign") => {
            let ([from, to], 2) = tokens.take::<2>() else {
                return invalid(Response::Error, next, false);
            };
            let class = |t: &[u8]| parse_i64(t).filter(|v| i32::try_from(*v).is_ok());
            match (class(from), class(to)) {
                (Some(from), Some(to)) => request(Request::SlabsReassign { from, to }, next),
                _ => client_error(ClientError::BadCommandLineFormat, next, false),
            }
        }
        Some(b"automove") => {
            let (args, n) = tokens.take::<3>();
            let args = &args[..n.min(3)];
            let noreply = noreply(args);
            let automove = |policy| request(Request::SlabsAutomove { policy, noreply }, next);
            match args.first().copied() {
                None => invalid(Response::Error, next, false),
                Some(b"ratio") => match args.get(1).and_then(|r| parse_f64(r)) {
                    Some(_) => automove(None),
                    None => invalid(Response::Error, next, noreply),
                },
                Some(level) => match parse_u32(level) {
                    Some(p @ 0..=2) => automove(Some(p as u8)),
                    Some(_) => invalid(Response::Error, next, noreply),
                    None => client_error(ClientError::BadCommandLineFormat, next, noreply),
                },
            }
        }
        _ => invalid(Response::Error, next, false),
    }
}

/// A decimal fraction, as `strtod` reads one (without hex or infinities).
fn parse_f64(token: &[u8]) -> Option<f64> {
    std::str::from_utf8(token)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// `lru_crawler crawl|metadump <all|hash|id,id,…>`, `lru_crawler
/// enable|disable` and `lru_crawler sleep|tocrawl <n>`.
fn lru_crawler(mut tokens: Tokens<'_>, next: usize) -> Parsed<'_> {
    let setting = |s| request(Request::LruCrawlerSet(s), next);
    let (op, classes) = match tokens.take::<2>() {
        ([b"enable", _], 1) => return setting(CrawlerSetting::Enable),
        ([b"disable", _], 1) => return setting(CrawlerSetting::Disable),
        ([knob @ (b"sleep" | b"tocrawl"), n], 2) => {
            return match parse_u32(n) {
                Some(us) if knob == b"sleep" && us > 1_000_000 => invalid(
                    Response::Line("CLIENT_ERROR sleep must be one second or less"),
                    next,
                    false,
                ),
                Some(_) => setting(CrawlerSetting::Pacing),
                None => client_error(ClientError::BadCommandLineFormat, next, false),
            };
        }
        ([op, classes], 2) => (op, classes),
        _ => return invalid(Response::Error, next, false),
    };
    let op = match op {
        b"crawl" => CrawlerOp::Crawl,
        b"metadump" => CrawlerOp::Metadump,
        _ => return invalid(Response::Error, next, false),
    };
    let classes = match classes {
        b"all" => CrawlerClasses::All,
        b"hash" => CrawlerClasses::Hash,
        list => class_ids(list),
    };
    request(Request::LruCrawler { op, classes }, next)
}

/// A comma-separated list of class ids; empty items are skipped, as
/// memcached's `strtok` does.
fn class_ids(list: &[u8]) -> CrawlerClasses {
    let mut bits = 0u128;
    for id in list.split(|&b| b == b',').filter(|t| !t.is_empty()) {
        match parse_u32(id) {
            Some(n @ 1..=127) => bits |= 1 << n,
            _ => return CrawlerClasses::Invalid,
        }
    }
    CrawlerClasses::Ids(bits)
}

/// C `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Reads a number the way memcached's `strtol`/`strtoul` wrappers do:
/// optional leading white space, an optional sign, at least one digit, then
/// the end of the token or white space (anything after it is ignored, so
/// `1\tjunk` is 1). Returns the sign and the magnitude; `None` when it is
/// not a number or does not fit in 64 bits.
fn c_number(token: &[u8]) -> Option<(bool, u64)> {
    // Fast path: plain digits, too few to overflow.
    if !token.is_empty() && token.len() <= 19 && token.iter().all(u8::is_ascii_digit) {
        let value = token
            .iter()
            .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
        return Some((false, value));
    }
    let mut i = token.iter().take_while(|&&b| is_c_space(b)).count();
    let negative = match token.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &token[i..];
    let count = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 {
        return None;
    }
    if let Some(&after) = digits.get(count) {
        if !is_c_space(after) {
            return None;
        }
    }
    let mut value: u64 = 0;
    for &d in &digits[..count] {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some((negative, value))
}

/// An unsigned 64-bit number (CAS unique, incr/decr delta). `-0` is 0, any
/// other negative number is rejected.
fn parse_u64(token: &[u8]) -> Option<u64> {
    match c_number(token)? {
        (true, 0) => Some(0),
        (true, _) => None,
        (false, value) => Some(value),
    }
}

/// An unsigned 32-bit number (client flags, verbosity, memory limit).
/// memcached 1.6.18 silently truncates larger values; we reject them.
fn parse_u32(token: &[u8]) -> Option<u32> {
    u32::try_from(parse_u64(token)?).ok()
}

/// A signed 64-bit number (exptime, flush delay, data length).
fn parse_i64(token: &[u8]) -> Option<i64> {
    match c_number(token)? {
        (true, magnitude) if magnitude <= i64::MIN.unsigned_abs() => {
            Some((magnitude as i64).wrapping_neg())
        }
        (false, value) => i64::try_from(value).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod find_space_tests {
    use super::{find_space, first_control_or_space, parse, plain_set, single_get};
    use crate::protocol::Limits;

    #[test]
    fn control_scan_agrees_with_a_byte_scan() {
        let bytes = [b' ', b'a', 0x80, 0xa0, 0x1f, 0x21, 0xff, 0x00, b'\r', 0x7f];
        for len in 0..40 {
            for seed in 0..64u64 {
                let s: Vec<u8> = (0..len)
                    .map(|i| bytes[((seed.wrapping_mul(31) + i as u64 * (seed | 1)) % 10) as usize])
                    .collect();
                let want = s.iter().take_while(|&&b| b > b' ').count();
                assert_eq!(first_control_or_space(&s), want, "{s:?}");
            }
        }
    }

    #[test]
    fn plain_set_matches_the_general_path() {
        let limits = Limits {
            item_size_max: 1024,
            ..Limits::default()
        };
        let cases: Vec<&[u8]> = vec![
            b"set a 0 0 2\r\nhi\r\n",
            b"set a 5 100 2\r\nhi\r\nget a\r\n",
            b"set a 0 0 2\r\nhi",
            b"set a 0 0 2\r\nhiXY",
            b"set a 0 0 2\r\n",
            b"set a 0 0 2\r",
            b"set a 0 0 2\n hi\r\n",
            b"set a 0 0 2 noreply\r\nhi\r\n",
            b"set a 0 -1 2\r\nhi\r\n",
            b"set a 0 0 0\r\n\r\n",
            b"set a 4294967295 0 2\r\nhi\r\n",
            b"set a 123456789 123456789 2\r\nhi\r\n",
            b"set a 1234567890 0 2\r\nhi\r\n",
            b"set a 0 0 2000\r\n",
            b"set a  0 0 2\r\nhi\r\n",
            b"set a 0 0  2\r\nhi\r\n",
            b"set a 0 0 2 \r\nhi\r\n",
            b"set a\t 0 0 2\r\nhi\r\n",
            b"set a 0x 0 2\r\nhi\r\n",
            b"set  a 0 0 2\r\nhi\r\n",
            b"set a 0 0\r\n",
            b"set \xff 0 0 1\r\nx\r\n",
        ];
        for c in cases {
            if let Some(fast) = plain_set(c, &limits) {
                let general = super::parse_general(c, &limits);
                assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{c:?}");
            }
            assert_eq!(
                format!("{:?}", parse(c, &limits)),
                format!("{:?}", super::parse_general(c, &limits)),
                "{c:?}"
            );
        }
        let taken = |c: &[u8]| plain_set(c, &limits).is_some();
        assert!(taken(b"set a 0 0 2\r\nhi\r\n"));
        assert!(taken(b"set a 0 0 2\r\nh"));
        assert!(!taken(b"set a 0 0 2 noreply\r\nhi\r\n"));
    }

    #[test]
    fn single_get_matches_the_general_path() {
        let limits = Limits::default();
        let long = format!("get {}\r\n", "k".repeat(250));
        let too_long = format!("get {}\r\n", "k".repeat(251));
        let cases: Vec<&[u8]> = vec![
            b"get a\r\n",
            b"get a\n",
            b"get a\r\nget b\r\n",
            b"get \xff\x7f\r\n",
            b"get a b\r\n",
            b"get a \r\n",
            b"get a\x00b\r\n",
            b"get a\tb\r\n",
            b"get a\r",
            b"get a",
            b"get \r\n",
            b"get  a\r\n",
            b"get a\rb\r\n",
            long.as_bytes(),
            too_long.as_bytes(),
        ];
        for c in cases {
            let fast = single_get(c);
            if let Some(fast) = fast {
                // Only well-formed single gets take the fast path, and it
                // must agree with the general parser run on its own.
                let general = super::parse_general(c, &limits);
                assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{c:?}");
            }
            // Either way, the public parser gives the general answer.
            assert_eq!(
                format!("{:?}", parse(c, &limits)),
                format!("{:?}", super::parse_general(c, &limits)),
                "{c:?}"
            );
        }
    }

    #[test]
    fn agrees_with_a_byte_scan() {
        let bytes = [b' ', b'a', 0x80, 0xa0, 0x1f, 0x21, 0xff, 0x00];
        for len in 0..40 {
            for seed in 0..64u64 {
                let s: Vec<u8> = (0..len)
                    .map(|i| bytes[((seed.wrapping_mul(31) + i as u64 * (seed | 1)) % 8) as usize])
                    .collect();
                let want = s.iter().position(|&b| b == b' ');
                assert_eq!(find_space(&s), want, "{s:?}");
            }
        }
    }
}
